"""Prices: genai-prices for real models, the simulator's file, overrides, dates and warnings.

Expected costs are computed here from genai-prices' own published per-million-token figures
(read from the library's data, for the call's date), never from totals typed in by hand.
"""

from __future__ import annotations

import datetime
import json
import math
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import genai_prices
import pytest
from genai_prices.data import providers as LIBRARY
from genai_prices.data_snapshot import DataSnapshot, set_custom_snapshot
from genai_prices.types import ModelPrice, TieredPrices
from hypothesis import given
from hypothesis import strategies as st

from pytest_agentpatterns import prices as prices_module
from pytest_agentpatterns.prices import (
    PRICE_LINE_FORM,
    Price,
    Prices,
    PriceTier,
    PriceWarnings,
    call_time,
    library_version,
    load_default_prices,
    parse_price_lines,
    prices_from_toml,
)
from pytest_agentpatterns.sim import Simulator
from pytest_agentpatterns.usage import Usage

PRICES = load_default_prices()
UTC = datetime.UTC
TODAY = datetime.datetime(2026, 12, 1, 12, tzinfo=UTC)
SIM_SOURCE = "pytest-agentpatterns simulator (fictional)"


# --- what genai-prices publishes -----------------------------------------------------------------


def published(
    provider: str, model: str, when: datetime.datetime = TODAY, tier: str | None = None
) -> ModelPrice:
    """genai-prices' own figures for ``model`` at ``provider`` on ``when``."""
    info = next(m for p in LIBRARY if p.id == provider for m in p.models if m.id == model)
    return info.get_prices(when, {"service_tier": tier} if tier else None)


def rate(figures: ModelPrice, key: str, total_input: int) -> Decimal | None:
    value = getattr(figures, key, None)
    if isinstance(value, TieredPrices):
        chosen = value.base
        for tier in value.tiers:
            if total_input > tier.start:
                chosen = tier.price
        return chosen
    return value


def expected_cost(usage: Usage, figures: ModelPrice) -> float:
    """The providers' rule: uncached input, 5-minute and 1-hour cache writes, cache reads and
    output each at their rate; past a long-context threshold (all input tokens counted) every
    token at the tier's rate. A missing cache rate is the input rate."""
    total_input = usage.input_tokens + usage.cache_write_tokens + usage.cache_read_tokens

    def at(key: str, missing: Decimal) -> Decimal:
        found = rate(figures, key, total_input)
        return missing if found is None else found

    input_ = at("input_mtok", Decimal(0))
    write = at("cache_write_mtok", input_)
    write_1h = at("cache_write_1h_mtok", write)
    read = at("cache_read_mtok", input_)
    output = at("output_mtok", Decimal(0))
    usd = (
        usage.input_tokens * input_
        + (usage.cache_write_tokens - usage.cache_write_1h_tokens) * write
        + usage.cache_write_1h_tokens * write_1h
        + usage.cache_read_tokens * read
        + usage.output_tokens * output
    ) / 1_000_000
    return float(usd)


MIXED = {
    "input_tokens": 1_200,
    "output_tokens": 350,
    "cache_write_tokens": 4_000,
    "cache_read_tokens": 9_000,
    "cache_write_1h_tokens": 1_500,
}


# --- current models are priced by genai-prices ---------------------------------------------------

CURRENT = [
    ("claude-sonnet-5", "anthropic", "claude-sonnet-5"),
    ("claude-opus-5", "anthropic", "claude-opus-5"),
    ("claude-haiku-5-5", "anthropic", "claude-haiku-5-5"),
    ("claude-sonnet-5-5", "anthropic", "claude-sonnet-5-5"),
    ("claude-opus-5-5", "anthropic", "claude-opus-5-5"),
    ("claude-haiku-4-5", "anthropic", "claude-haiku-4-5"),
    ("claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5"),
    ("claude-opus-4-5", "anthropic", "claude-opus-4-5"),
    ("gpt-5.2", "openai", "gpt-5.2"),
    ("gpt-5.4", "openai", "gpt-5.4"),
    ("gpt-5.5", "openai", "gpt-5.5"),
    ("gpt-6-sol", "openai", "gpt-6-sol"),
    ("gpt-5-mini", "openai", "gpt-5-mini"),
    ("gpt-4.1", "openai", "gpt-4.1"),
    ("gpt-4o-mini", "openai", "gpt-4o-mini"),
    ("o3", "openai", "o3"),
    ("o4-mini", "openai", "o4-mini"),
]


@pytest.mark.parametrize(("model", "provider", "library_id"), CURRENT)
def test_current_models_cost_what_genai_prices_publishes(
    model: str, provider: str, library_id: str
) -> None:
    usage = Usage(model, **MIXED, provider=provider)
    cost = PRICES.cost(usage, TODAY)
    assert cost is not None and cost > 0
    assert cost == pytest.approx(expected_cost(usage, published(provider, library_id)), rel=1e-12)
    price = PRICES.lookup(model, provider=provider, when=TODAY)
    assert price is not None
    assert price.source == f"genai-prices {library_version()}: {provider} {library_id}"


@pytest.mark.parametrize(
    ("model", "provider", "library_provider", "library_id"),
    [
        ("claude-sonnet-5-20261001", "anthropic", "anthropic", "claude-sonnet-5"),
        ("claude-sonnet-5@20261001", "google", "google", "claude-sonnet-5"),
        ("claude-sonnet-4-5-20250929", "anthropic", "anthropic", "claude-sonnet-4-5"),
        ("anthropic/claude-opus-5", "anthropic", "anthropic", "claude-opus-5"),
        ("gpt-5.2-2025-12-11", "openai", "openai", "gpt-5.2"),
        ("gpt-5.2-chat-latest", "openai", "openai", "gpt-5.2"),
        ("gpt-4o-2024-08-06", "azure", "azure", "gpt-4o"),
        ("CLAUDE-SONNET-5", "anthropic", "anthropic", "claude-sonnet-5"),
        # Served through an OpenAI-compatible endpoint: genai-prices knows the maker.
        ("deepseek-chat", "openai", "deepseek", "deepseek-chat"),
    ],
)
def test_names_as_responses_give_them(
    model: str, provider: str, library_provider: str, library_id: str
) -> None:
    price = PRICES.lookup(model, provider=provider, when=TODAY)
    assert price is not None
    assert price.source.endswith(f": {library_provider} {library_id}")


def test_bedrock_ids_are_priced_at_bedrock() -> None:
    model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    price = PRICES.lookup(model, provider="aws", when=TODAY)
    assert price is not None and ": aws " in price.source
    usage = Usage(model, 1_000, 100, provider="aws")
    info_id = price.source.rsplit(" ", 1)[1]
    assert PRICES.cost(usage, TODAY) == pytest.approx(
        expected_cost(usage, published("aws", info_id))
    )


# --- cache writes and reads ----------------------------------------------------------------------


@pytest.mark.parametrize("model", ["claude-sonnet-5", "claude-opus-5", "claude-haiku-5-5"])
def test_one_hour_cache_writes_cost_the_one_hour_rate(model: str) -> None:
    figures = published("anthropic", model)
    assert figures.cache_write_1h_mtok != figures.cache_write_mtok  # so this test can tell
    five_minutes = Usage(model, 100, 10, 3_000, 0, 0, provider="anthropic")
    one_hour = Usage(model, 100, 10, 3_000, 0, 3_000, provider="anthropic")
    for usage in (five_minutes, one_hour):
        assert PRICES.cost(usage, TODAY) == pytest.approx(expected_cost(usage, figures))
    delta = (rate(figures, "cache_write_1h_mtok", 0) or 0) - (
        rate(figures, "cache_write_mtok", 0) or 0
    )
    assert (PRICES.cost(one_hour, TODAY) or 0) - (PRICES.cost(five_minutes, TODAY) or 0) == (
        pytest.approx(float(delta) * 3_000 / 1e6)
    )


@pytest.mark.parametrize(
    ("model", "provider"), [("claude-sonnet-5", "anthropic"), ("gpt-5.2", "openai")]
)
def test_cache_reads_cost_the_cached_input_rate(model: str, provider: str) -> None:
    figures = published(provider, model)
    usage = Usage(model, 0, 0, 0, 1_000_000, provider=provider)
    assert PRICES.cost(usage, TODAY) == pytest.approx(float(figures.cache_read_mtok))
    assert figures.cache_read_mtok < figures.input_mtok


def test_openai_cache_writes_cost_the_input_rate() -> None:
    figures = published("openai", "gpt-5.2")
    assert getattr(figures, "cache_write_mtok", None) is None
    usage = Usage("gpt-5.2", 0, 0, 1_000_000, 0, provider="openai")
    assert PRICES.cost(usage, TODAY) == pytest.approx(float(figures.input_mtok))


# --- long-context tiers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "provider"),
    [("claude-sonnet-4-5", "anthropic"), ("claude-haiku-5-5", "anthropic"), ("gpt-5.4", "openai")],
)
def test_long_context_tier_prices_every_token_past_the_threshold(model: str, provider: str) -> None:
    figures = published(provider, model)
    assert isinstance(figures.input_mtok, TieredPrices)
    threshold = figures.input_mtok.tiers[0].start
    # Cached tokens count towards the threshold: uncached input alone stays below it.
    below = Usage(model, threshold - 1_000, 500, 0, 1_000, provider=provider)
    above = Usage(model, threshold - 1_000, 500, 0, 1_001, provider=provider)
    low, high = PRICES.cost(below, TODAY), PRICES.cost(above, TODAY)
    assert low == pytest.approx(expected_cost(below, figures))
    assert high == pytest.approx(expected_cost(above, figures))
    base_rate = figures.input_mtok.base
    tier_rate = figures.input_mtok.tiers[0].price
    assert tier_rate > base_rate
    uncached = (threshold - 1_000) / 1e6
    assert high is not None and low is not None
    assert high - low > float(tier_rate - base_rate) * uncached * 0.99


def test_long_context_tier_is_what_the_lookup_reports() -> None:
    figures = published("anthropic", "claude-sonnet-4-5")
    price = PRICES.lookup("claude-sonnet-4-5", provider="anthropic", when=TODAY)
    assert price is not None and len(price.tiers) == 1
    [tier] = price.tiers
    assert isinstance(figures.output_mtok, TieredPrices)
    assert tier.above == figures.output_mtok.tiers[0].start
    assert Decimal(repr(tier.output)) == figures.output_mtok.tiers[0].price


# --- the call's date -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "changed"),
    [("o3", datetime.date(2025, 6, 10)), ("claude-opus-4-6", datetime.date(2026, 3, 13))],
)
def test_a_call_is_priced_at_its_own_date(model: str, changed: datetime.date) -> None:
    provider = "openai" if model.startswith("o") else "anthropic"
    before = datetime.datetime.combine(changed, datetime.time(23, 59), UTC) - datetime.timedelta(
        days=1
    )
    after = datetime.datetime.combine(changed, datetime.time(0, 1), UTC)
    usage = Usage(model, 250_000, 2_000, 0, 10_000, provider=provider)
    old = PRICES.cost(usage, before)
    new = PRICES.cost(usage, after)
    assert old == pytest.approx(expected_cost(usage, published(provider, model, before)))
    assert new == pytest.approx(expected_cost(usage, published(provider, model, after)))
    assert old != new
    # The same instants as HTTP Date headers, the form a cassette keeps.
    assert PRICES.cost(usage, before.strftime("%a, %d %b %Y %H:%M:%S GMT")) == old
    assert PRICES.cost(usage, after.strftime("%a, %d %b %Y %H:%M:%S GMT")) == new


def test_call_time_reads_http_dates_and_takes_naive_times_as_utc() -> None:
    assert call_time("Tue, 01 Dec 2026 10:00:00 GMT") == datetime.datetime(
        2026, 12, 1, 10, tzinfo=UTC
    )
    assert call_time(datetime.datetime(2026, 12, 1, 10)) == datetime.datetime(
        2026, 12, 1, 10, tzinfo=UTC
    )
    for bad in (None, "", "yesterday", "Tue, 99 Dec 2026 10:00:00 GMT"):
        assert call_time(bad) is None


def test_an_unknown_date_is_priced_at_the_clock() -> None:
    before_change = datetime.datetime(2025, 1, 1, tzinfo=UTC)
    prices = Prices(clock=lambda: before_change)
    usage = Usage("o3", 1_000, 1_000, provider="openai")
    expected = expected_cost(usage, published("openai", "o3", before_change))
    assert prices.cost(usage) == pytest.approx(expected)
    assert prices.cost(usage, "not a date") == pytest.approx(expected)
    assert prices.cost(usage, TODAY) != pytest.approx(expected)


def test_service_tier_prices_from_the_date_it_was_published() -> None:
    usage = Usage("gpt-5.2", 10_000, 1_000, 0, 5_000, provider="openai", service_tier="flex")
    flex = published("openai", "gpt-5.2", TODAY, "flex")
    standard = published("openai", "gpt-5.2", TODAY)
    assert flex.input_mtok < standard.input_mtok
    assert PRICES.cost(usage, TODAY) == pytest.approx(expected_cost(usage, flex))
    early = datetime.datetime(2026, 1, 5, tzinfo=UTC)
    assert PRICES.cost(usage, early) == pytest.approx(
        expected_cost(usage, published("openai", "gpt-5.2", early, "flex"))
    )
    assert PRICES.cost(usage, early) == pytest.approx(expected_cost(usage, standard))


# --- offline and deterministic -------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every attempt to open a connection or resolve a name is recorded and refused."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise OSError("network access attempted in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts
    assert attempts == []


def forget_everything() -> None:
    """Clear every cache of the prices module, so the next lookup starts from the data."""
    for cached in (
        prices_module._snapshot,
        prices_module._library_model,
        prices_module._library_cost,
        prices_module._price_cost,
        prices_module._model_price,
        load_default_prices,
    ):
        cached.cache_clear()


def test_prices_are_computed_without_the_network(no_network: list[str]) -> None:
    forget_everything()
    fresh = load_default_prices()
    for model, provider, _ in CURRENT:
        assert fresh.cost(Usage(model, **MIXED, provider=provider), TODAY) is not None
    assert fresh.cost(Usage("sim-small", 10, 10)) is not None
    assert fresh.cost(Usage("acme-unpriced-1", 10, 10)) is None


def test_data_fetched_by_someone_else_does_not_change_prices() -> None:
    """genai-prices can swap in data fetched from the network (``UpdatePrices``); replays must
    price the same way whatever another library in the process did."""
    usage = Usage("claude-sonnet-5", **MIXED, provider="anthropic")
    before = PRICES.cost(usage, TODAY)
    cheap = ModelPrice(input_mtok=Decimal(0), output_mtok=Decimal(0))
    fetched = [
        type(p)(
            **{
                **p.__dict__,
                "models": [type(m)(**{**m.__dict__, "prices": cheap}) for m in p.models],
            }
        )
        for p in LIBRARY
    ]
    set_custom_snapshot(DataSnapshot(providers=fetched, from_auto_update=True))
    forget_everything()
    try:
        assert (
            genai_prices.calc_price(
                genai_prices.Usage(input_tokens=10, output_tokens=10), "claude-sonnet-5"
            ).total_price
            == 0
        )
        assert PRICES.cost(usage, TODAY) == before
    finally:
        set_custom_snapshot(None)


# --- models without a price ----------------------------------------------------------------------


@pytest.mark.parametrize("model", ["acme-unpriced-1", "my-finetune", "claude", "", None])
def test_unknown_models_have_no_price_never_zero(model: str | None) -> None:
    assert PRICES.lookup(model) is None
    assert PRICES.cost(Usage(model, 10, 10, provider="anthropic"), TODAY) is None
    assert model not in PRICES


def test_unknown_usage_costs_nothing_known() -> None:
    assert PRICES.cost(None) is None
    assert PRICES.cost(Usage("sim-small", 0, 0)) == 0.0


def test_each_unknown_model_is_warned_about_once() -> None:
    warnings = PriceWarnings()
    first = warnings.check(PRICES, Usage("my-model", 1, 1))
    assert first is not None
    assert "'my-model'" in first and "agentpatterns_prices" in first and "n/a" in first
    assert f"genai-prices {library_version()}" in first
    assert warnings.check(PRICES, Usage("my-model", 5, 5)) is None
    assert warnings.check(PRICES, Usage("claude-sonnet-5", 1, 1, provider="anthropic")) is None
    assert warnings.check(PRICES, None) is None
    assert warnings.check(PRICES, Usage(None, 1, 1)) is not None
    assert warnings.unknown_models == ("my-model", PriceWarnings.UNNAMED)


def test_unknown_model_tracking_is_thread_safe() -> None:
    warnings = PriceWarnings()
    names = [f"model-{i % 7}" for i in range(700)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        firsts = list(pool.map(warnings.note_unknown, names))
    assert sum(firsts) == 7
    assert sorted(warnings.unknown_models) == sorted({*names})


# --- the simulator's prices ----------------------------------------------------------------------


def test_every_simulator_model_has_a_price_from_its_file() -> None:
    models = json.loads(
        resources.files("pytest_agentpatterns").joinpath("sim/models.json").read_text()
    )["models"]
    assert set(PRICES.models) == set(models)
    for name in models:
        price = PRICES.lookup(name)
        assert price is not None and price.source.startswith(SIM_SOURCE), name


@pytest.mark.parametrize(
    ("model", "figures"),
    [
        ("sim-small", (0.25, 1.25, 0.3125, 0.025)),
        ("sim-large", (3.0, 15.0, 3.75, 0.3)),
        ("sim-fast", (0.1, 0.4, 0.125, 0.01)),
    ],
)
def test_recorded_simulator_costs_keep_their_prices(model: str, figures: tuple[float, ...]) -> None:
    """The example suite's and the tests' cost figures were recorded at these prices."""
    price = PRICES.lookup(model)
    assert price is not None
    assert (price.input, price.output, price.cache_write, price.cache_read) == figures


GOOD_ENTRY = "input = 1\noutput = 2\ncache_write = 1\ncache_read = 0.1\n"


def test_prices_from_toml() -> None:
    parsed = prices_from_toml(
        f'date = 2026-01-02\nsource = "s"\n[models."a"]\n{GOOD_ENTRY}cache_write_1h = 2\n'
    )
    assert parsed == {"a": Price(1, 2, 1, 0.1, "s, 2026-01-02", cache_write_1h=2)}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("date = ", "not valid TOML"),
        (f'source = "s"\n[models."a"]\n{GOOD_ENTRY}', "'date' must be a TOML date"),
        (f'date = "2026-01-02"\nsource = "s"\n[models."a"]\n{GOOD_ENTRY}', "TOML date"),
        (f'date = 2026-01-02\n[models."a"]\n{GOOD_ENTRY}', "'source'"),
        ('date = 2026-01-02\nsource = "s"\n', r"\[models.NAME\]"),
        ('date = 2026-01-02\nsource = "s"\n[models."a"]\ninput = 1\n', "models.a: missing output"),
        (f'date = 2026-01-02\nsource = "s"\n[models."a"]\n{GOOD_ENTRY}colour = 1\n', "colour"),
        (
            'date = 2026-01-02\nsource = "s"\n[models."a"]\n'
            + GOOD_ENTRY.replace("input = 1", "input = -1"),
            "models.a: price 'input'",
        ),
    ],
)
def test_prices_from_toml_errors_name_the_problem(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        prices_from_toml(text, origin="x.toml")


# --- overrides -----------------------------------------------------------------------------------

INI = "agentpatterns_prices (ini)"


def test_parse_price_lines() -> None:
    parsed = parse_price_lines(
        [
            "",
            "# our fine-tune",
            "my-model = input:3 output:15 cache_write:3.75 cache_read:0.3 cache_write_1h:6",
            "  cheap-model=input:0.1,output:0.4  ",
            "Anthropic/Claude-Sonnet-5 = output:12 input:2.5",
            "my-model > 200_000 = input:6 output:22.5",
            "my-model>1000000 = input:9",
        ]
    )
    assert parsed == {
        "my-model": Price(
            3.0,
            15.0,
            3.75,
            0.3,
            INI,
            cache_write_1h=6.0,
            tiers=(
                PriceTier(200_000, 6.0, 22.5, 3.75, 0.3, 6.0),
                PriceTier(1_000_000, 9.0, 15.0, 3.75, 0.3, 6.0),
            ),
        ),
        "cheap-model": Price(0.1, 0.4, 0.1, 0.1, INI),
        "claude-sonnet-5": Price(2.5, 12.0, 2.5, 2.5, INI),
    }


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("my-model input:3 output:15", "no '='"),
        ("= input:3 output:15", "model name"),
        ("my model = input:3 output:15", "model name"),
        ("my-model = input:3", "missing output"),
        ("my-model = cache_read:1", "missing input and output"),
        ("my-model =", "missing input and output"),
        ("my-model = input:3 output:15 extra:1", "unknown price 'extra'"),
        ("my-model = input:3 output:15 input:4", "'input' given twice"),
        ("my-model = input:three output:15", "input must be a number"),
        ("my-model = input:-1 output:15", "input must be a number"),
        ("my-model = input:nan output:15", "input must be a number"),
        ("my-model = input 3 output 15", "is not KEY:NUMBER"),
        ("my-model > lots = input:6", "token count"),
        ("other-model > 1000 = input:6", "needs the model's own line"),
        ("ok > 10 = input:6\nok > 10 = input:7", "given twice"),
    ],
)
def test_bad_price_lines_name_the_line_and_the_form(line: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_price_lines(["ok = input:1 output:2", *line.split("\n")])
    message = str(info.value)
    assert repr(line.split("\n")[-1].strip()) in message or "other-model" in message
    assert reason in message
    assert PRICE_LINE_FORM in message
    assert message.startswith("agentpatterns_prices: bad line")


def test_a_model_priced_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="priced twice"):
        parse_price_lines(["m = input:1 output:2", "M = input:1 output:3"])


def test_overrides_beat_genai_prices_and_the_simulator_file() -> None:
    overrides = parse_price_lines(
        [
            "my-model = input:2 output:6",
            "claude-sonnet-5 = input:1 output:5",
            "sim-small = input:0 output:1",
        ]
    )
    prices = PRICES.with_overrides(overrides)
    million = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    assert prices.cost(Usage("my-model", **million)) == pytest.approx(8.0)
    assert prices.cost(Usage("sim-small", **million)) == pytest.approx(1.0)
    # A family override also prices its dated, Vertex AI and Bedrock names.
    for name in ("claude-sonnet-5", "claude-sonnet-5-20261001", "claude-sonnet-5@20261001"):
        assert prices.cost(Usage(name, **million, provider="anthropic"), TODAY) == pytest.approx(
            6.0
        )
    assert prices.overridden == {"my-model", "claude-sonnet-5", "sim-small"}
    assert PRICES.lookup("my-model") is None
    assert PRICES.with_overrides({}) is PRICES
    library = PRICES.cost(Usage("claude-sonnet-5", **million, provider="anthropic"), TODAY)
    assert library == pytest.approx(
        expected_cost(
            Usage("claude-sonnet-5", **million), published("anthropic", "claude-sonnet-5")
        )
    )


def test_override_of_a_dated_name_beats_its_family() -> None:
    dated = Price(9.0, 9.0, 9.0, 9.0, "hook")
    prices = PRICES.with_overrides({"claude-sonnet-5-20261001": dated})
    assert prices.lookup("claude-sonnet-5-20261001") == dated
    other = prices.lookup("claude-sonnet-5-20270101", provider="anthropic")
    assert other is not None and other.source.startswith("genai-prices")


def test_override_tiers_and_one_hour_writes_follow_the_providers_rule() -> None:
    [(name, price)] = parse_price_lines(
        ["big = input:3 output:15 cache_write:3.75 cache_read:0.3 cache_write_1h:6"]
    ).items()
    price = Price(
        3,
        15,
        3.75,
        0.3,
        "test",
        cache_write_1h=6,
        tiers=(PriceTier(200_000, 6, 22.5, 7.5, 0.6, 12),),
    )
    figures = ModelPrice(
        input_mtok=TieredPrices(Decimal(3), [genai_prices.types.Tier(200_000, Decimal(6))]),
        output_mtok=TieredPrices(Decimal(15), [genai_prices.types.Tier(200_000, Decimal("22.5"))]),
        cache_write_mtok=TieredPrices(
            Decimal("3.75"), [genai_prices.types.Tier(200_000, Decimal("7.5"))]
        ),
        cache_read_mtok=TieredPrices(
            Decimal("0.3"), [genai_prices.types.Tier(200_000, Decimal("0.6"))]
        ),
        cache_write_1h_mtok=TieredPrices(
            Decimal(6), [genai_prices.types.Tier(200_000, Decimal(12))]
        ),
    )
    for usage in (
        Usage("big", 150_000, 1_000, 20_000, 29_999, 5_000),
        Usage("big", 150_000, 1_000, 20_000, 30_001, 5_000),
    ):
        assert price.cost(usage) == pytest.approx(expected_cost(usage, figures))
    assert name == "big"


counts = st.integers(min_value=0, max_value=10**7)
rates = st.floats(min_value=0, max_value=1000, allow_nan=False)


@st.composite
def usages(draw: st.DrawFn, model: str = "m") -> Usage:
    written = draw(counts)
    return Usage(
        model, draw(counts), draw(counts), written, draw(counts), draw(st.integers(0, written))
    )


@st.composite
def any_price(draw: st.DrawFn) -> Price:
    starts = draw(st.lists(st.integers(0, 10**7), unique=True, max_size=3))
    tiers = tuple(
        PriceTier(s, *[draw(rates) for _ in range(4)], draw(st.none() | rates)) for s in starts
    )
    return Price(*[draw(rates) for _ in range(4)], "test", draw(st.none() | rates), tiers)


def figures_of(price: Price) -> ModelPrice:
    """The same rates in genai-prices' own format, built independently of prices.py."""

    def tiered(get: Any) -> Any:
        base = Decimal(repr(float(get(price))))
        if not price.tiers:
            return base
        return TieredPrices(
            base,
            [genai_prices.types.Tier(t.above, Decimal(repr(float(get(t))))) for t in price.tiers],
        )

    return ModelPrice(
        input_mtok=tiered(lambda p: p.input),
        output_mtok=tiered(lambda p: p.output),
        cache_write_mtok=tiered(lambda p: p.cache_write),
        cache_read_mtok=tiered(lambda p: p.cache_read),
        cache_write_1h_mtok=tiered(
            lambda p: p.cache_write if p.cache_write_1h is None else p.cache_write_1h
        ),
    )


@given(price=any_price(), usage=usages())
def test_override_cost_follows_the_rule_for_any_price(price: Price, usage: Usage) -> None:
    assert Prices({"m": price}).cost(usage) == pytest.approx(
        expected_cost(usage, figures_of(price))
    )


COUNT_FIELDS = ["input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"]


@given(
    model=st.sampled_from([m for m, _, _ in CURRENT]),
    usage=usages(),
    field=st.sampled_from(COUNT_FIELDS),
    more=counts,
)
def test_cost_is_monotone_in_each_count(model: str, usage: Usage, field: str, more: int) -> None:
    provider = "openai" if model.startswith(("gpt", "o")) else "anthropic"
    smaller = Usage(**{**usage.to_dict(), "model": model, "provider": provider})
    bigger = Usage(**{**smaller.to_dict(), field: getattr(smaller, field) + more})
    low, high = PRICES.cost(smaller, TODAY), PRICES.cost(bigger, TODAY)
    assert low is not None and high is not None
    assert 0 <= low <= high


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, True, "3"])
def test_price_rejects_bad_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match="input"):
        Price(input=bad, output=1, cache_write=1, cache_read=1, source="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input"):
        PriceTier(above=1, input=bad, output=1, cache_write=1, cache_read=1)  # type: ignore[arg-type]


def test_price_tiers_are_sorted_and_distinct() -> None:
    price = Price(1, 1, 1, 1, "s", tiers=(PriceTier(500, 3, 3, 3, 3), PriceTier(100, 2, 2, 2, 2)))
    assert [t.above for t in price.tiers] == [100, 500]
    with pytest.raises(ValueError, match="different token counts"):
        Price(1, 1, 1, 1, "s", tiers=(PriceTier(100, 3, 3, 3, 3), PriceTier(100, 2, 2, 2, 2)))
    with pytest.raises(ValueError, match="whole number"):
        PriceTier(-1, 1, 1, 1, 1)


# --- as users run it -----------------------------------------------------------------------------

SIM_MODULE = """
import os, pytest, anthropic, openai
from pytest_agentpatterns import Task

URL = os.environ["SIM_URL"]
Q = "What is the capital of Testland?"

def ask_anthropic(model):
    def ask(q):
        with anthropic.Anthropic(base_url=URL, api_key="sk-ant-test-0123456789abcdef",
                                 max_retries=0) as c:
            m = c.messages.create(model=model, max_tokens=20,
                                  messages=[{"role": "user", "content": q}])
        return m.content[0].text.strip()
    return ask

def ask_openai(model):
    def ask(q):
        with openai.OpenAI(base_url=URL + "/v1", api_key="sk-proj-test-0123456789abcdef",
                           max_retries=0) as c:
            r = c.chat.completions.create(model=model, messages=[{"role": "user", "content": q}])
        return r.choices[0].message.content.strip()
    return ask
"""


def _calls(path: Path) -> list[dict[str, Any]]:
    report = json.loads(path.read_text())
    return [
        call for item in report["items"] for rep in item["repetitions"] for call in rep["calls"]
    ]


def test_real_model_names_are_priced_by_genai_prices_and_overrides_win(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makepyfile(
        SIM_MODULE
        + """
@pytest.mark.parametrize("model", ["claude-sonnet-5", "claude-opus-5", "claude-haiku-5-5"])
def test_anthropic(agent, model):
    agent.run(Task(name="t", propose=ask_anthropic(model)), Q)

def test_openai(agent):
    agent.run(Task(name="t", propose=ask_openai("gpt-5.2")), Q)
"""
    )
    path = pytester.path / "r.json"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=all", f"--patterns-json={path}"
    )
    result.assert_outcomes(passed=4)
    assert "no price" not in result.stdout.str()
    calls = {call["model"]: call for call in _calls(path)}
    assert set(calls) == {"claude-sonnet-5", "claude-opus-5", "claude-haiku-5-5", "gpt-5.2"}
    for model, call in calls.items():
        provider = "openai" if model.startswith("gpt") else "anthropic"
        usage = Usage(
            model,
            call["input_tokens"],
            call["output_tokens"],
            call["cache_write_tokens"],
            call["cache_read_tokens"],
        )
        assert call["cost"] == pytest.approx(
            expected_cost(usage, published(provider, model, TODAY))
        )

    # The ini option overrides genai-prices; the hook overrides the ini option.
    pytester.makeini(
        "[pytest]\nagentpatterns_prices =\n"
        "    claude-sonnet-5 = input:1000000 output:0\n"
        "    gpt-5.2 = input:0 output:1000000\n"
    )
    pytester.makeconftest(
        """
from pytest_agentpatterns.prices import Price

def pytest_agentpatterns_prices(prices):
    assert prices["gpt-5.2"].output == 1_000_000
    prices["gpt-5.2"] = Price(input=2_000_000, output=0, cache_write=0, cache_read=0, source="hook")
"""
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=all", f"--patterns-json={path}"
    )
    result.assert_outcomes(passed=4)
    calls = {call["model"]: call for call in _calls(path)}
    assert calls["claude-sonnet-5"]["cost"] == pytest.approx(
        calls["claude-sonnet-5"]["input_tokens"]
    )
    assert calls["gpt-5.2"]["cost"] == pytest.approx(2 * calls["gpt-5.2"]["input_tokens"])


def test_replay_prices_calls_at_their_recorded_date_without_the_network(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    """o3's price fell on 2025-06-10: a cassette recorded before then replays at the old price."""
    pytester.makepyfile(
        SIM_MODULE
        + """
def test_o3(agent):
    agent.run(Task(name="t", propose=ask_openai("o3")), Q)
"""
    )
    path = pytester.path / "r.json"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=all", f"--patterns-json={path}"
    )
    result.assert_outcomes(passed=1)
    [live] = _calls(path)
    [cassette] = (pytester.path / "cassettes").rglob("*.json")
    data = json.loads(cassette.read_text())
    [interaction] = data["interactions"]
    [recorded_date] = interaction["response"]["headers"]["date"]
    when = call_time(recorded_date)
    assert when is not None and abs(when - datetime.datetime.now(UTC)) < datetime.timedelta(hours=1)
    usage = Usage("o3", live["input_tokens"], live["output_tokens"], 0, live["cache_read_tokens"])
    assert live["cost"] == pytest.approx(expected_cost(usage, published("openai", "o3", when)))

    interaction["response"]["headers"]["date"] = ["Sat, 01 Mar 2025 12:00:00 GMT"]
    cassette.write_text(json.dumps(data))
    pytester.makeconftest(
        """
import socket, pytest

@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted during replay")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
"""
    )
    for _ in range(2):
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--patterns-record=none", f"--patterns-json={path}"
        )
        result.assert_outcomes(passed=1)
        [replayed] = _calls(path)
        assert replayed["replayed"] is True
        march = datetime.datetime(2025, 3, 1, 12, tzinfo=UTC)
        assert replayed["cost"] == pytest.approx(
            expected_cost(usage, published("openai", "o3", march))
        )
        assert replayed["cost"] > live["cost"]


def test_unknown_model_warns_once_and_shows_na(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makepyfile(
        SIM_MODULE
        + """
@pytest.mark.agentpatterns(patterns="parallel(n=3)", repeat=2)
@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_unpriced(agent, api):
    ask = ask_anthropic if api == "anthropic" else ask_openai
    agent.run(Task(name="t", propose=ask("acme-unpriced-2")), Q)

def test_priced(agent):
    agent.run(Task(name="t", propose=ask_anthropic("claude-sonnet-5")), Q)
"""
    )
    path = pytester.path / "r.json"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=all", f"--patterns-json={path}"
    )
    result.assert_outcomes(passed=3)
    out = result.stdout.str()
    assert out.count("no price for model 'acme-unpriced-2'") == 1
    assert "claude-sonnet-5'" not in out
    result.stdout.fnmatch_lines(["*::test_unpriced*", "  parallel(n=3) * n/a *"])
    costs = {call["model"]: call["cost"] for call in _calls(path) if call["model"]}
    assert costs["acme-unpriced-2"] is None and costs["claude-sonnet-5"] > 0


# --- the figures printed in docs/prices.md -------------------------------------------------------

DOCS = Path(__file__).parent.parent / "docs" / "prices.md"
DOC_DAY = datetime.datetime(2026, 12, 1, tzinfo=UTC)
DOC_MODELS = [
    ("claude-opus-5", "anthropic"),
    ("claude-sonnet-5", "anthropic"),
    ("claude-haiku-5-5", "anthropic"),
    ("claude-sonnet-4-5", "anthropic"),
    ("gpt-5.2", "openai"),
    ("gpt-5.4", "openai"),
    ("sim-small", "simulator"),
    ("sim-large", "simulator"),
]


def _doc_block(name: str) -> str:
    text = DOCS.read_text()
    return text.split(f"<!-- {name}: begin -->\n", 1)[1].split(f"<!-- {name}: end -->", 1)[0]


def price_table() -> str:
    """The table of docs/prices.md, from what ``Prices.lookup`` reports on DOC_DAY."""

    def rates(p: Price | PriceTier) -> list[str]:
        one_hour = p.cache_write if p.cache_write_1h is None else p.cache_write_1h
        return [f"{v:g}" for v in (p.input, p.output, p.cache_write, one_hour, p.cache_read)]

    names = ["input", "output", "cache write 5m", "cache write 1h", "cache read"]
    rows = [
        f"Priced on {DOC_DAY.date().isoformat()} with genai-prices {library_version()}.",
        "",
        "| model | provider | " + " | ".join(names) + " | long context |",
        "| --- " * 8 + "|",
    ]
    for model, provider in DOC_MODELS:
        price = PRICES.lookup(model, provider=provider, when=DOC_DAY)
        assert price is not None, model
        tiers = "; ".join(
            f"above {t.above} input tokens: "
            + ", ".join(f"{n} {v}" for n, v in zip(names, rates(t), strict=True))
            for t in price.tiers
        )
        cells = [f"`{model}`", provider, *rates(price), tiers or "none"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def test_the_documented_price_table_is_what_calls_are_charged() -> None:
    documented = _doc_block("price-table")
    generated_with = documented.split("genai-prices ", 1)[1].split(".\n", 1)[0]
    if generated_with != library_version():
        pytest.skip(
            f"docs/prices.md was generated with genai-prices {generated_with}; "
            f"{library_version()} is installed. Regenerate it from:\n{price_table()}"
        )
    assert documented == price_table(), f"Regenerate docs/prices.md's table:\n{price_table()}"
    # Each row is also what a call is charged: a million tokens of each kind, one at a time.
    for model, provider in DOC_MODELS:
        price = PRICES.lookup(model, provider=provider, when=DOC_DAY)
        assert price is not None
        kinds = {
            "input": Usage(model, 1_000_000, 0, provider=provider),
            "output": Usage(model, 0, 1_000_000, provider=provider),
            "cache_write": Usage(model, 0, 0, 1_000_000, provider=provider),
            "cache_read": Usage(model, 0, 0, 0, 1_000_000, provider=provider),
        }
        for kind, usage in kinds.items():
            figure = getattr(price, kind)
            if price.tiers and price.tiers[0].above < 1_000_000 and kind != "output":
                figure = getattr(price.tiers[0], kind)
            assert PRICES.cost(usage, DOC_DAY) == pytest.approx(figure), (model, kind)


def test_the_documented_python_example_prints_what_it_says(
    capsys: pytest.CaptureFixture[str],
) -> None:
    block = _doc_block("price-example").split("```python\n", 1)[1].split("```", 1)[0]
    code = "\n".join(line for line in block.splitlines() if not line.startswith("# "))
    printed = [line[2:] for line in block.splitlines() if line.startswith("# ")]
    exec(compile(code, str(DOCS), "exec"), {})
    assert capsys.readouterr().out.split() == printed
