"""The price table: resolution of model names, cost arithmetic, overrides and warnings."""

from __future__ import annotations

import datetime
import math
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_agentpatterns.prices import (
    PRICE_LINE_FORM,
    Price,
    PriceTable,
    PriceWarnings,
    load_default_prices,
    parse_price_lines,
)
from pytest_agentpatterns.usage import Usage

TABLE = load_default_prices()
ANTHROPIC_SOURCES = {
    "https://www.anthropic.com/pricing",
    "https://docs.anthropic.com/en/docs/about-claude/pricing",
}
OPENAI_SOURCES = {"https://openai.com/api/pricing/", "https://platform.openai.com/docs/pricing"}
SIM_SOURCE = "pytest-agentpatterns simulator (fictional)"


# --- the shipped table ---------------------------------------------------------------------------


def test_table_is_dated_and_loaded_once() -> None:
    assert TABLE.date == datetime.date(2025, 11, 24)
    assert "2025-11-24" in TABLE.note
    assert load_default_prices() is TABLE


def test_every_entry_names_its_source() -> None:
    for model in TABLE.models:
        price = TABLE.lookup(model)
        assert price is not None
        if model.startswith("claude-"):
            assert price.source in ANTHROPIC_SOURCES, model
        elif model.startswith("sim-"):
            assert price.source == SIM_SOURCE, model
        else:
            assert price.source in OPENAI_SOURCES, model


@pytest.mark.parametrize(
    "model",
    [
        "claude-opus-4-5",
        "claude-opus-4-1",
        "claude-opus-4",
        "claude-sonnet-4-5",
        "claude-sonnet-4",
        "claude-3-7-sonnet",
        "claude-haiku-4-5",
        "claude-3-5-haiku",
    ],
)
def test_anthropic_cache_prices_follow_the_published_multipliers(model: str) -> None:
    price = TABLE.lookup(model)
    assert price is not None
    assert price.cache_write == pytest.approx(1.25 * price.input)
    assert price.cache_read == pytest.approx(0.1 * price.input)


def test_openai_cache_prices() -> None:
    for model in TABLE.models:
        price = TABLE.lookup(model)
        assert price is not None
        if price.source in OPENAI_SOURCES:
            assert price.cache_write == price.input, model
            assert price.cache_read <= price.input, model


@pytest.mark.parametrize(
    ("model", "input_", "output"),
    [
        ("claude-sonnet-4-5", 3.0, 15.0),
        ("claude-opus-4-1", 15.0, 75.0),
        ("claude-haiku-4-5", 1.0, 5.0),
        ("claude-3-5-haiku", 0.8, 4.0),
        ("gpt-4o", 2.5, 10.0),
        ("gpt-4o-mini", 0.15, 0.6),
        ("sim-small", 0.25, 1.25),
        ("sim-large", 3.0, 15.0),
        ("sim-fast", 0.1, 0.4),
    ],
)
def test_known_prices(model: str, input_: float, output: float) -> None:
    price = TABLE.lookup(model)
    assert price is not None
    assert (price.input, price.output) == (input_, output)


# --- resolving model names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-sonnet-4-0", "claude-sonnet-4"),
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-opus-4-5-20251101", "claude-opus-4-5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-3-haiku-20240307", "claude-3-haiku"),
        ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
        ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("anthropic:claude-haiku-4-5", "claude-haiku-4-5"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-11-20", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("o3-2025-04-16", "o3"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("o4-mini-2025-04-16", "o4-mini"),
        ("o1-2024-12-17", "o1"),
        ("gpt-5-2025-08-07", "gpt-5"),
        ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
        ("gpt-5-chat-latest", "gpt-5"),
        ("gpt-5.1-2025-11-13", "gpt-5.1"),
        ("GPT-4o-Mini", "gpt-4o-mini"),
        ("  sim-small ", "sim-small"),
    ],
)
def test_dated_and_prefixed_names_resolve_to_their_family(model: str, family: str) -> None:
    assert TABLE.resolve(model) == family
    assert TABLE.lookup(model) == TABLE.lookup(family)


def test_mini_is_not_confused_with_its_parent() -> None:
    full, mini = TABLE.lookup("gpt-4o-2024-08-06"), TABLE.lookup("gpt-4o-mini-2024-07-18")
    assert full is not None and mini is not None
    assert (full.input, mini.input) == (2.5, 0.15)
    assert TABLE.resolve("o3-mini") == "o3-mini"
    assert TABLE.resolve("gpt-4.1-nano") == "gpt-4.1-nano"


@pytest.mark.parametrize(
    "model",
    [
        "my-model",
        "o3-pro",
        "o1-pro-2025-03-19",
        "gpt-4o-realtime-preview",
        "gpt-4o-audio-preview-2024-12-17",
        "chatgpt-4o-latest",
        "claude-sonnet-4-5-fast",
        "gpt-4",
        "claude",
        "",
        None,
    ],
)
def test_unknown_models_have_no_price(model: str | None) -> None:
    """Variants are never priced as their base model: no price beats a wrong one."""
    assert TABLE.lookup(model) is None
    assert TABLE.cost(Usage(model, 10, 10)) is None
    assert model not in TABLE


# --- cost ----------------------------------------------------------------------------------------


def test_cost_with_cache_tokens_by_hand() -> None:
    usage = Usage(
        "claude-sonnet-4-5-20250929",
        input_tokens=1_000,
        output_tokens=300,
        cache_write_tokens=500,
        cache_read_tokens=2_000,
    )
    # $3 input, $15 output, $3.75 cache write, $0.30 cache read per million tokens.
    expected = (1_000 * 3 + 300 * 15 + 500 * 3.75 + 2_000 * 0.30) / 1_000_000
    assert expected == pytest.approx(0.009975)
    assert TABLE.cost(usage) == pytest.approx(expected)


def test_cost_openai_cached_by_hand() -> None:
    usage = Usage("gpt-4o-mini-2024-07-18", 133, 12, 0, 1920)
    expected = (133 * 0.15 + 12 * 0.60 + 1920 * 0.075) / 1_000_000
    assert TABLE.cost(usage) == pytest.approx(expected)


def test_cost_unknown_is_none_not_zero() -> None:
    assert TABLE.cost(None) is None
    assert TABLE.cost(Usage(None, 100, 100)) is None
    assert TABLE.cost(Usage("my-model", 100, 100)) is None
    assert TABLE.cost(Usage("sim-small", 0, 0)) == 0.0


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, True, "3"])
def test_price_rejects_bad_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match="input"):
        Price(input=bad, output=1, cache_write=1, cache_read=1, source="x")  # type: ignore[arg-type]


counts = st.integers(min_value=0, max_value=10**9)
usages = st.builds(Usage, st.sampled_from(TABLE.models), counts, counts, counts, counts)
prices = st.builds(
    Price,
    *[st.floats(min_value=0, max_value=1000, allow_nan=False)] * 4,
    source=st.just("test"),
)


COUNT_FIELDS = ["input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"]


@given(usage=usages, field=st.sampled_from(COUNT_FIELDS), more=counts)
def test_cost_is_monotone_in_each_count(usage: Usage, field: str, more: int) -> None:
    bigger = Usage(**{**usage.to_dict(), field: getattr(usage, field) + more})
    low, high = TABLE.cost(usage), TABLE.cost(bigger)
    assert low is not None and high is not None
    assert 0 <= low <= high


@given(model=st.sampled_from(TABLE.models), price=prices)
def test_zero_tokens_cost_zero(model: str, price: Price) -> None:
    assert TABLE.cost(Usage(model, 0, 0)) == 0
    assert TABLE.with_overrides({model: price}).cost(Usage(model, 0, 0, 0, 0)) == 0


@given(price=prices, usage=st.builds(Usage, st.just("m"), counts, counts, counts, counts))
def test_cost_matches_the_formula_for_any_price(price: Price, usage: Usage) -> None:
    table = PriceTable({"m": price}, datetime.date(2026, 1, 1))
    expected = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_write_tokens * price.cache_write
        + usage.cache_read_tokens * price.cache_read
    ) / 1e6
    assert table.cost(usage) == pytest.approx(expected)


# --- overrides -----------------------------------------------------------------------------------


def test_parse_price_lines() -> None:
    parsed = parse_price_lines(
        [
            "",
            "# our fine-tune",
            "my-model = input:3 output:15 cache_write:3.75 cache_read:0.3",
            "  cheap-model=input:0.1,output:0.4  ",
            "Anthropic/Claude-Sonnet-4-5 = output:12 input:2.5",
        ]
    )
    assert parsed == {
        "my-model": Price(3.0, 15.0, 3.75, 0.3, "agentpatterns_prices (ini)"),
        "cheap-model": Price(0.1, 0.4, 0.1, 0.1, "agentpatterns_prices (ini)"),
        "claude-sonnet-4-5": Price(2.5, 12.0, 2.5, 2.5, "agentpatterns_prices (ini)"),
    }


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("my-model input:3 output:15", "no '='"),
        ("= input:3 output:15", "model name"),
        ("my model = input:3 output:15", "model name"),
        ("my-model = input:3", "missing output"),
        ("my-model = cache_read:1", "missing input and output"),
        ("my-model = input:3 output:15 extra:1", "unknown price 'extra'"),
        ("my-model = input:3 output:15 input:4", "'input' given twice"),
        ("my-model = input:three output:15", "input must be a number"),
        ("my-model = input:-1 output:15", "input must be a number"),
        ("my-model = input:nan output:15", "input must be a number"),
        ("my-model = input 3 output 15", "is not KEY:NUMBER"),
    ],
)
def test_bad_price_lines_name_the_line_and_the_form(line: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_price_lines(["ok = input:1 output:2", line])
    message = str(info.value)
    assert repr(line.strip()) in message
    assert reason in message
    assert PRICE_LINE_FORM in message
    assert message.startswith("agentpatterns_prices: bad line")


def test_a_model_priced_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="priced twice"):
        parse_price_lines(["m = input:1 output:2", "M = input:1 output:3"])


def test_overrides_add_and_replace_without_touching_the_original() -> None:
    overrides = parse_price_lines(
        ["my-model = input:2 output:6", "claude-sonnet-4-5 = input:1 output:5"]
    )
    table = TABLE.with_overrides(overrides)
    assert table.cost(Usage("my-model", 1_000_000, 1_000_000)) == pytest.approx(8.0)
    # A family override also prices its dated snapshots.
    assert table.cost(Usage("claude-sonnet-4-5-20250929", 1_000_000, 0)) == pytest.approx(1.0)
    assert table.overridden == {"my-model", "claude-sonnet-4-5"}
    assert table.date == TABLE.date
    assert TABLE.lookup("my-model") is None
    assert TABLE.cost(Usage("claude-sonnet-4-5", 1_000_000, 0)) == pytest.approx(3.0)
    assert TABLE.with_overrides({}) is TABLE


def test_override_of_a_dated_name_beats_its_family() -> None:
    dated = Price(9.0, 9.0, 9.0, 9.0, "hook")
    table = TABLE.with_overrides({"gpt-4o-2024-08-06": dated})
    assert table.lookup("gpt-4o-2024-08-06") == dated
    assert table.lookup("gpt-4o-2024-11-20") == TABLE.lookup("gpt-4o")


def test_aliases_follow_an_overridden_family() -> None:
    table = TABLE.with_overrides({"gpt-5": Price(1.0, 2.0, 1.0, 0.1, "hook")})
    price = table.lookup("gpt-5-chat-latest")
    assert price is not None and price.source == "hook"


# --- the TOML loader -----------------------------------------------------------------------------

GOOD_ENTRY = 'input = 1\noutput = 2\ncache_write = 1\ncache_read = 0.1\nsource = "s"\n'


def test_from_toml() -> None:
    table = PriceTable.from_toml(
        f'date = 2026-01-02\n[models."a"]\n{GOOD_ENTRY}aliases = ["a-alias"]\n'
    )
    assert table.date == datetime.date(2026, 1, 2)
    assert table.resolve("a-alias-20260101") == "a"
    assert table.resolve("a-alias") == "a"
    assert table.models == ("a",)
    assert len(table) == 1


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("date = ", "not valid TOML"),
        (f'[models."a"]\n{GOOD_ENTRY}', "'date' must be a TOML date"),
        (f'date = "2026-01-02"\n[models."a"]\n{GOOD_ENTRY}', "'date' must be a TOML date"),
        ("date = 2026-01-02\n", r"\[models.NAME\]"),
        ('date = 2026-01-02\n[models."a"]\ninput = 1\n', "models.a: missing output"),
        (f'date = 2026-01-02\n[models."a"]\n{GOOD_ENTRY}colour = 1\n', "unknown keys colour"),
        (f'date = 2026-01-02\n[models."a"]\n{GOOD_ENTRY}aliases = "b"\n', "aliases"),
        (
            'date = 2026-01-02\n[models."a"]\n' + GOOD_ENTRY.replace("input = 1", "input = -1"),
            "models.a: price 'input'",
        ),
    ],
)
def test_from_toml_errors_name_the_problem(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        PriceTable.from_toml(text, origin="x.toml")


def test_aliases_must_point_at_a_priced_model() -> None:
    with pytest.raises(ValueError, match="unknown models: b"):
        PriceTable({"a": Price(1, 1, 1, 1, "s")}, datetime.date(2026, 1, 1), aliases={"c": "b"})


# --- warnings about unpriced models --------------------------------------------------------------


def test_each_unknown_model_is_warned_about_once() -> None:
    warnings = PriceWarnings()
    first = warnings.check(TABLE, Usage("my-model", 1, 1))
    assert first is not None
    assert "'my-model'" in first
    assert "agentpatterns_prices" in first
    assert "n/a" in first
    assert "2025-11-24" in first
    assert warnings.check(TABLE, Usage("my-model", 5, 5)) is None
    assert warnings.check(TABLE, Usage("claude-sonnet-4-5", 1, 1)) is None
    assert warnings.check(TABLE, None) is None
    assert warnings.check(TABLE, Usage(None, 1, 1)) is not None
    assert warnings.unknown_models == ("my-model", PriceWarnings.UNNAMED)


def test_unknown_model_tracking_is_thread_safe() -> None:
    warnings = PriceWarnings()
    names = [f"model-{i % 7}" for i in range(700)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        firsts = list(pool.map(warnings.note_unknown, names))
    assert sum(firsts) == 7
    assert sorted(warnings.unknown_models) == sorted({*names})
