"""Prices: what each call cost, from its usage, model, provider and date.

A call is priced by the first of these that knows its model:

1. overrides: the ini option ``agentpatterns_prices`` (:func:`parse_price_lines`) and the
   ``pytest_agentpatterns_prices`` hook;
2. the bundled simulator's fictional models (``sim/prices.toml``, :func:`load_default_prices`);
3. `genai-prices <https://pypi.org/project/genai-prices/>`_: the data bundled with the
   installed version, priced at the call's date, with cache reads and writes (5-minute and
   1-hour), long-context tiers and service tiers. Never fetched from the network, and never
   data another library fetched: a replay prices calls the same way every time.

A model none of them prices has no cost (``None``), never a cost of zero. genai-prices is
imported on the first lookup, not with the plugin.
"""

from __future__ import annotations

import datetime
import email.utils
import functools
import importlib.metadata
import math
import re
import threading
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .usage import Usage

if TYPE_CHECKING:
    from genai_prices.types import ModelInfo, ModelPrice, Provider

__all__ = [
    "INI_OPTION",
    "PRICE_LINE_FORM",
    "SIM_PRICES",
    "Price",
    "PriceTier",
    "PriceWarnings",
    "Prices",
    "call_time",
    "library_version",
    "load_default_prices",
    "parse_price_lines",
    "prices_from_toml",
]

INI_OPTION = "agentpatterns_prices"
PRICE_LINE_FORM = (
    "MODEL [> TOKENS] = input:USD output:USD [cache_write:USD] [cache_read:USD] "
    "[cache_write_1h:USD]"
)
SIM_PRICES = "sim/prices.toml"
"""The simulator's prices, a data file inside the package."""

_FIELDS = ("input", "output", "cache_write", "cache_read", "cache_write_1h")
_PER_TOKENS = 1_000_000


def _check(name: str, value: object) -> None:
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"price {name!r} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class PriceTier:
    """Rates (USD per million tokens) for every token of a call whose input is above ``above``.

    "Input" counts uncached input, cache writes and cache reads together, as providers count
    it for long-context rates; crossing the threshold prices *all* the call's tokens at the
    tier's rates (the providers' rule, and genai-prices').
    """

    above: int
    input: float
    output: float
    cache_write: float
    cache_read: float
    cache_write_1h: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.above, int) or isinstance(self.above, bool) or self.above < 0:
            raise ValueError(f"tier 'above' must be a whole number of tokens, got {self.above!r}")
        for name in _FIELDS:
            value = getattr(self, name)
            if value is not None or name != "cache_write_1h":
                _check(name, value)


@dataclass(frozen=True)
class Price:
    """USD per million tokens of each kind, and where the figures come from.

    ``cache_write`` is the 5-minute cache write; ``cache_write_1h`` the 1-hour one (``None``:
    the same as ``cache_write``). ``tiers`` are long-context rates (:class:`PriceTier`).
    """

    input: float
    output: float
    cache_write: float
    cache_read: float
    source: str
    cache_write_1h: float | None = None
    tiers: tuple[PriceTier, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in _FIELDS:
            value = getattr(self, name)
            if value is not None or name != "cache_write_1h":
                _check(name, value)
        if not all(isinstance(tier, PriceTier) for tier in self.tiers):
            raise ValueError("price 'tiers' must be PriceTier values")
        starts = [tier.above for tier in self.tiers]
        if len(set(starts)) != len(starts):
            raise ValueError(f"price tiers must start at different token counts, got {starts}")
        object.__setattr__(self, "tiers", tuple(sorted(self.tiers, key=lambda t: t.above)))

    def cost(self, usage: Usage) -> float:
        """USD for ``usage`` at these prices (genai-prices' arithmetic, tiers included)."""
        return _price_cost(self, usage)


@functools.lru_cache(maxsize=4096)
def _price_cost(price: Price, usage: Usage) -> float:
    """Cached: genai-prices' arithmetic takes about a millisecond, and replays repeat usages."""
    result = _model_price(price).calc_price(_library_usage(usage))
    return float(result["total_price"])


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


@functools.lru_cache(maxsize=256)
def _model_price(price: Price) -> ModelPrice:
    """``price`` as a genai-prices ``ModelPrice``, so overrides use the library's arithmetic."""
    from genai_prices.types import ModelPrice, Tier, TieredPrices

    def rate(get: Callable[[Price | PriceTier], float]) -> Decimal | TieredPrices:
        base = _decimal(get(price))
        if not price.tiers:
            return base
        return TieredPrices(
            base=base, tiers=[Tier(start=t.above, price=_decimal(get(t))) for t in price.tiers]
        )

    def one_hour(p: Price | PriceTier) -> float:
        return p.cache_write if p.cache_write_1h is None else p.cache_write_1h

    return ModelPrice(
        input_mtok=rate(lambda p: p.input),
        output_mtok=rate(lambda p: p.output),
        cache_write_mtok=rate(lambda p: p.cache_write),
        cache_read_mtok=rate(lambda p: p.cache_read),
        cache_write_1h_mtok=rate(one_hour),
    )


def _library_usage(usage: Usage) -> Any:
    """``usage`` in genai-prices' terms, where ``input_tokens`` counts all input tokens."""
    from genai_prices import Usage as LibraryUsage

    return LibraryUsage(
        input_tokens=usage.input_tokens + usage.cache_write_tokens + usage.cache_read_tokens,
        output_tokens=usage.output_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_1h_tokens=min(usage.cache_write_1h_tokens, usage.cache_write_tokens),
    )


# --- genai-prices ---------------------------------------------------------------------------------


def library_version() -> str:
    """The installed genai-prices version, whose bundled data prices calls."""
    return importlib.metadata.version("genai-prices")


@functools.cache
def _snapshot() -> Any:
    """The installed genai-prices data, as shipped.

    Built here rather than taken from ``genai_prices.calc_price``, which uses whatever snapshot
    was set process-wide (``UpdatePrices`` fetches one from the network): our prices never
    depend on that.
    """
    from genai_prices.data import providers
    from genai_prices.data_snapshot import DataSnapshot

    return DataSnapshot(providers=providers, from_auto_update=False)


_PREFIX = re.compile(r"^(?:anthropic|openai|azure|azure_ai|bedrock|vertex_ai)[:/]", re.IGNORECASE)
_BEDROCK = re.compile(r"^(?:[a-z]{2,6}\.)?anthropic\.(?P<name>.+?)(?:-v\d+(?::\d+)?)?$")
_VERSION_SUFFIX = re.compile(r"(?:-\d{8}|@\d{8}|-\d{4}-\d{2}-\d{2}|-latest)$")


def _library_names(model: str) -> Iterator[str]:
    name = model.strip()
    yield name
    bare = _PREFIX.sub("", name)
    if bare != name:
        yield bare
    bedrock = _BEDROCK.match(bare.lower())
    if bedrock:
        yield bedrock.group("name")


@functools.lru_cache(maxsize=1024)
def _library_model(model: str, provider: str | None) -> tuple[Provider, ModelInfo] | None:
    """genai-prices' provider and model for ``model``: at ``provider`` if it has it, else at
    whichever provider genai-prices matches the name to (an OpenAI-compatible endpoint)."""
    snapshot = _snapshot()
    for name in _library_names(model):
        for provider_id in dict.fromkeys((provider, None)):
            try:
                found: tuple[Provider, ModelInfo] = snapshot.find_provider_model(
                    name, None, provider_id, None
                )
            except LookupError:
                continue
            return found
    return None


@functools.lru_cache(maxsize=4096)
def _library_cost(usage: Usage, when: datetime.datetime) -> float | None:
    """USD for ``usage`` made at ``when`` by genai-prices, or ``None`` if it has no price."""
    if usage.model is None:
        return None
    found = _library_model(usage.model, usage.provider)
    if found is None:
        return None
    provider, info = found
    context = {"service_tier": usage.service_tier} if usage.service_tier else None
    result = info.calc_price(
        _library_usage(usage), provider, genai_request_timestamp=when, price_context=context
    )
    return float(result.total_price)


def _library_price(model_price: ModelPrice, source: str) -> Price:
    """A genai-prices ``ModelPrice`` (token prices only) as a :class:`Price`."""
    from genai_prices.types import TieredPrices

    def value(key: str) -> Decimal | TieredPrices | None:
        found: Decimal | TieredPrices | None = getattr(model_price, key, None)
        return found

    def at(key: str, above: int | None, fallback: float) -> float:
        rate = value(key)
        if rate is None:
            return fallback
        if not isinstance(rate, TieredPrices):
            return float(rate)
        applicable = rate.base
        for tier in rate.tiers:
            if above is not None and tier.start <= above:
                applicable = tier.price
        return float(applicable)

    def rates(above: int | None) -> dict[str, float]:
        input_ = at("input_mtok", above, 0.0)
        write = at("cache_write_mtok", above, input_)
        return {
            "input": input_,
            "output": at("output_mtok", above, 0.0),
            "cache_write": write,
            "cache_read": at("cache_read_mtok", above, input_),
            "cache_write_1h": at("cache_write_1h_mtok", above, write),
        }

    starts = sorted(
        {
            tier.start
            for key in ("input_mtok", "output_mtok", "cache_write_mtok", "cache_read_mtok")
            if isinstance(rate := value(key), TieredPrices)
            for tier in rate.tiers
        }
    )
    tiers = tuple(PriceTier(above=start, **rates(start)) for start in starts)
    return Price(**rates(None), source=source, tiers=tiers)


# --- dates ----------------------------------------------------------------------------------------


def call_time(when: datetime.datetime | str | None) -> datetime.datetime | None:
    """The moment a call was made, from a datetime or an HTTP ``Date`` header; ``None`` if not
    known. A naive datetime is taken as UTC."""
    if when is None:
        return None
    if isinstance(when, str):
        return _http_date(when)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when


@functools.lru_cache(maxsize=1024)
def _http_date(text: str) -> datetime.datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# --- the prices a run uses ------------------------------------------------------------------------


def _normalise(model: str) -> str:
    name = model.strip().lower().rsplit("/", 1)[-1]
    return re.sub(r"^(?:anthropic|openai|azure|azure_ai|bedrock|vertex_ai):", "", name)


def _candidates(model: str) -> Iterator[str]:
    """Override names that price ``model``, most specific first."""
    name = _normalise(model)
    yield name
    bedrock = _BEDROCK.match(name)
    if bedrock:
        name = bedrock.group("name")
        yield name
    stripped = _VERSION_SUFFIX.sub("", name)
    if stripped != name:
        yield stripped


REFERENCE_MODELS = ("claude-opus-5", "claude-sonnet-5", "gpt-5.2")
"""Current flagship models whose prices bound an unpriced model's budget estimate."""


class Prices:
    """The prices of a run: overrides by model name over genai-prices; immutable.

    An override named for a family (``claude-sonnet-5``) also prices its dated names
    (``claude-sonnet-5-20261001``, ``claude-sonnet-5@20261001``), Bedrock ids and
    ``anthropic/``-style prefixed names; an override for a dated name prices only it.
    ``clock`` gives the time to price a call at when its own time is not known.
    """

    def __init__(
        self,
        overrides: Mapping[str, Price] | None = None,
        *,
        overridden: Iterable[str] = (),
        clock: Callable[[], datetime.datetime] = _now,
    ) -> None:
        self._overrides = MappingProxyType({_normalise(k): v for k, v in (overrides or {}).items()})
        self.overridden = frozenset(_normalise(name) for name in overridden)
        self.clock = clock
        self._resolved: dict[str, str | None] = {}

    @property
    def models(self) -> tuple[str, ...]:
        """The model names priced by override (built-in or the user's), sorted."""
        return tuple(sorted(self._overrides))

    def with_overrides(self, overrides: Mapping[str, Price]) -> Prices:
        """New prices where ``overrides`` add models or replace what prices them."""
        if not overrides:
            return self
        return Prices(
            {**self._overrides, **{_normalise(k): v for k, v in overrides.items()}},
            overridden=self.overridden | {_normalise(k) for k in overrides},
            clock=self.clock,
        )

    def resolve(self, model: str | None) -> str | None:
        """The override entry that prices ``model``, or ``None`` if no override does."""
        if not model:
            return None
        if model not in self._resolved:
            found = next((name for name in _candidates(model) if name in self._overrides), None)
            self._resolved[model] = found
        return self._resolved[model]

    def lookup(
        self,
        model: str | None,
        *,
        provider: str | None = None,
        when: datetime.datetime | str | None = None,
        service_tier: str | None = None,
    ) -> Price | None:
        """The price of ``model`` served by ``provider`` at ``when``, or ``None`` if unknown."""
        if not model:
            return None
        name = self.resolve(model)
        if name is not None:
            return self._overrides[name]
        found = _library_model(model, provider)
        if found is None:
            return None
        library_provider, info = found
        context = {"service_tier": service_tier} if service_tier else None
        model_price = info.get_prices(call_time(when) or self.clock(), context)
        source = f"genai-prices {library_version()}: {library_provider.id} {info.id}"
        return _library_price(model_price, source)

    def cost(
        self, usage: Usage | None, when: datetime.datetime | str | None = None
    ) -> float | None:
        """USD for ``usage`` made at ``when`` (a datetime or an HTTP ``Date`` header; unknown:
        now); ``None`` when the usage is unknown or its model has no price."""
        if usage is None or not usage.model:
            return None
        name = self.resolve(usage.model)
        if name is not None:
            return self._overrides[name].cost(usage)
        return _library_cost(usage, call_time(when) or self.clock())

    def dearest(self, usage: Usage) -> float | None:
        """What ``usage`` would cost at the dearest price known: the overrides' and those of
        `REFERENCE_MODELS`. The budget charges an unpriced model's calls at it, so they count
        against ``--patterns-budget`` rather than run free."""
        costs = [
            self.cost(replace(usage, model=name)) for name in (*self._overrides, *REFERENCE_MODELS)
        ]
        known = [c for c in costs if c is not None]
        return max(known) if known else None

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.lookup(model) is not None

    def __repr__(self) -> str:
        return f"Prices({len(self._overrides)} overrides over genai-prices)"


# --- the simulator's prices (TOML) ----------------------------------------------------------------


def prices_from_toml(text: str, origin: str = SIM_PRICES) -> dict[str, Price]:
    """Prices from TOML in the ``sim/prices.toml`` format; errors name ``origin``.

    The file has a ``date``, a ``source`` and a ``[models.NAME]`` table per model with
    ``input``, ``output``, ``cache_write``, ``cache_read`` and optionally ``cache_write_1h``.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{origin}: not valid TOML: {exc}") from exc
    date = data.get("date")
    if not isinstance(date, datetime.date) or isinstance(date, datetime.datetime):
        raise ValueError(f"{origin}: top-level 'date' must be a TOML date, got {date!r}")
    source = data.get("source")
    if not isinstance(source, str) or not source:
        raise ValueError(f"{origin}: top-level 'source' must be a non-empty string")
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise ValueError(f"{origin}: needs a [models.NAME] table per model")
    prices: dict[str, Price] = {}
    for name, entry in models.items():
        where = f"{origin}: models.{name}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: must be a table")
        unknown = sorted(set(entry) - set(_FIELDS))
        if unknown:
            raise ValueError(f"{where}: unknown keys {', '.join(unknown)}")
        missing = [key for key in _FIELDS[:4] if key not in entry]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        try:
            prices[name] = Price(source=f"{source}, {date.isoformat()}", **entry)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
    return prices


@functools.cache
def load_default_prices() -> Prices:
    """genai-prices with the simulator's prices as built-in overrides (read once per process)."""
    text = resources.files("pytest_agentpatterns").joinpath(SIM_PRICES).read_text("utf-8")
    return Prices(prices_from_toml(text, origin=f"pytest_agentpatterns/{SIM_PRICES}"))


# --- the ini option -------------------------------------------------------------------------------

_PAIR = re.compile(r"^(?P<key>[a-z_0-9]+):(?P<value>\S+)$")
_SUBJECT = re.compile(r"^(?P<model>[^\s>]+)(?:\s*>\s*(?P<above>\S+))?$")


def parse_price_lines(
    lines: Sequence[str], source: str = f"{INI_OPTION} (ini)"
) -> dict[str, Price]:
    """Parse ``agentpatterns_prices`` lines into overrides (USD per million tokens).

    ``MODEL = input:3 output:15 [cache_write:…] [cache_read:…] [cache_write_1h:…]`` prices a
    model: ``input`` and ``output`` are required, ``cache_write`` and ``cache_read`` default
    to the input price, ``cache_write_1h`` to ``cache_write``. ``MODEL > TOKENS = …`` adds a
    long-context tier: the rates for every token of a call whose input is above TOKENS; a
    price it leaves out is the model's own. Blank lines and ``#`` comments are skipped. A bad
    line raises ``ValueError`` naming the line and the allowed form.
    """
    bases: dict[str, tuple[str, dict[str, float]]] = {}
    tiers: dict[str, list[tuple[str, int, dict[str, float]]]] = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        model, above, values = _parse_price_line(line)
        key = _normalise(model)
        if above is None:
            if key in bases:
                raise _line_error(line, f"model {model!r} is priced twice")
            missing = [name for name in ("input", "output") if name not in values]
            if missing:
                raise _line_error(line, f"missing {' and '.join(missing)}")
            bases[key] = (line, values)
        else:
            if any(start == above for _, start, _ in tiers.get(key, [])):
                raise _line_error(line, f"the tier above {above} of {model!r} is given twice")
            tiers.setdefault(key, []).append((line, above, values))
    for key, entries in tiers.items():
        if key not in bases:
            line = entries[0][0]
            raise _line_error(line, f"a tier needs the model's own line, '{key} = input:…'")
    result: dict[str, Price] = {}
    for key, (_, values) in bases.items():
        base = Price(
            input=values["input"],
            output=values["output"],
            cache_write=values.get("cache_write", values["input"]),
            cache_read=values.get("cache_read", values["input"]),
            cache_write_1h=values.get("cache_write_1h"),
            source=source,
        )
        result[key] = replace(
            base,
            tiers=tuple(_tier(base, above, values) for _, above, values in tiers.get(key, [])),
        )
    return result


def _tier(base: Price, above: int, values: Mapping[str, float]) -> PriceTier:
    """A tier line's rates; what it leaves out is the model's own rate."""
    return PriceTier(
        above=above,
        input=values.get("input", base.input),
        output=values.get("output", base.output),
        cache_write=values.get("cache_write", base.cache_write),
        cache_read=values.get("cache_read", base.cache_read),
        cache_write_1h=values.get("cache_write_1h", base.cache_write_1h),
    )


def _parse_price_line(line: str) -> tuple[str, int | None, dict[str, float]]:
    subject, sep, rest = line.partition("=")
    subject = subject.strip()
    if not sep:
        raise _line_error(line, "no '='")
    match = _SUBJECT.match(subject)
    if not match:
        raise _line_error(line, "the model name must be one word before '=' (or 'MODEL > TOKENS')")
    above: int | None = None
    if match.group("above") is not None:
        text = match.group("above").replace("_", "")
        if not text.isdigit():
            raise _line_error(line, f"the tier threshold must be a token count, got {text!r}")
        above = int(text)
    values: dict[str, float] = {}
    for token in rest.replace(",", " ").split():
        pair = _PAIR.match(token)
        if not pair:
            raise _line_error(line, f"{token!r} is not KEY:NUMBER")
        key = pair.group("key")
        if key not in _FIELDS:
            raise _line_error(line, f"unknown price {key!r} (allowed: {', '.join(_FIELDS)})")
        if key in values:
            raise _line_error(line, f"{key!r} given twice")
        try:
            value = float(pair.group("value"))
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise _line_error(line, f"{key} must be a number >= 0, got {pair.group('value')!r}")
        values[key] = value
    if not values:
        raise _line_error(line, "missing input and output")
    return match.group("model"), above, values


def _line_error(line: str, reason: str) -> ValueError:
    return ValueError(
        f"{INI_OPTION}: bad line {line!r}: {reason}. "
        f"Expected '{PRICE_LINE_FORM}' (USD per million tokens), "
        "e.g. 'my-model = input:3 output:15 cache_write:3.75 cache_read:0.3' "
        "or 'my-model > 200000 = input:6 output:22.5'"
    )


# --- warnings about unpriced models ---------------------------------------------------------------


class PriceWarnings:
    """Thread-safe record of models seen without a price, so each is warned about once."""

    UNNAMED = "(no model name)"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, None] = {}

    def note_unknown(self, model: str | None) -> bool:
        """Record ``model`` as unpriced; ``True`` only the first time it is recorded."""
        name = model or self.UNNAMED
        with self._lock:
            if name in self._seen:
                return False
            self._seen[name] = None
            return True

    def check(self, prices: Prices, usage: Usage | None) -> str | None:
        """The warning text the first time ``usage`` names a model ``prices`` cannot price."""
        if usage is None or prices.lookup(usage.model, provider=usage.provider) is not None:
            return None
        if not self.note_unknown(usage.model):
            return None
        return self.message(usage.model)

    @property
    def unknown_models(self) -> tuple[str, ...]:
        """Unpriced model names, in the order first seen."""
        with self._lock:
            return tuple(self._seen)

    @staticmethod
    def message(model: str | None) -> str:
        """One line for the user: which model, what happens, and how to price it."""
        name = model or PriceWarnings.UNNAMED
        example = model or "MODEL"
        return (
            f"pytest-agentpatterns: no price for model {name!r} (genai-prices "
            f"{library_version()} does not know it): its tokens are counted, its cost is n/a. "
            f"Price it with the ini option {INI_OPTION}, e.g. "
            f"'{example} = input:3 output:15 cache_write:3.75 cache_read:0.3' (USD per 1M tokens)."
        )
