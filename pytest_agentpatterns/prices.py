"""The price table: USD per million tokens per model family, shipped as ``prices.toml``.

Loaded in one place (:func:`load_default_prices`), overridable from the ini option
``agentpatterns_prices`` (:func:`parse_price_lines`) and the ``pytest_agentpatterns_prices`` hook.
A model without a price has no cost (``None``), never a cost of zero.
"""

from __future__ import annotations

import datetime
import functools
import math
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

from .usage import Usage

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "INI_OPTION",
    "PRICE_LINE_FORM",
    "Price",
    "PriceTable",
    "PriceWarnings",
    "load_default_prices",
    "parse_price_lines",
]

INI_OPTION = "agentpatterns_prices"
PRICE_LINE_FORM = "MODEL = input:USD output:USD [cache_write:USD] [cache_read:USD]"
_FIELDS = ("input", "output", "cache_write", "cache_read")
_PER_TOKENS = 1_000_000


@dataclass(frozen=True)
class Price:
    """USD per million tokens of each kind, and where the figures come from."""

    input: float
    output: float
    cache_write: float
    cache_read: float
    source: str

    def __post_init__(self) -> None:
        for name in _FIELDS:
            value = getattr(self, name)
            if (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"price {name!r} must be a finite number >= 0, got {value!r}")

    def cost(self, usage: Usage) -> float:
        """USD for ``usage`` at these prices."""
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_write_tokens * self.cache_write
            + usage.cache_read_tokens * self.cache_read
        ) / _PER_TOKENS


# Provider prefixes ("anthropic/", "openai:"), Bedrock ids ("us.anthropic.NAME-v1:0") and
# version suffixes (dates, "@date" on Vertex AI, "-latest") that do not change the price.
_PROVIDER_PREFIX = re.compile(r"^(?:anthropic|openai|azure|azure_ai|bedrock|vertex_ai):")
_BEDROCK = re.compile(r"^(?:[a-z]{2,6}\.)?anthropic\.(?P<name>.+?)(?:-v\d+(?::\d+)?)?$")
_VERSION_SUFFIX = re.compile(r"(?:-\d{8}|@\d{8}|-\d{4}-\d{2}-\d{2}|-latest)$")


def _normalise(model: str) -> str:
    name = model.strip().lower().rsplit("/", 1)[-1]
    return _PROVIDER_PREFIX.sub("", name)


def _candidates(model: str) -> Iterator[str]:
    """Names to try for ``model``, most specific first."""
    name = _normalise(model)
    yield name
    bedrock = _BEDROCK.match(name)
    if bedrock:
        name = bedrock.group("name")
        yield name
    stripped = _VERSION_SUFFIX.sub("", name)
    if stripped != name:
        yield stripped


class PriceTable:
    """Prices by model family, with the date they were taken; immutable.

    :meth:`lookup` matches names exactly after removing provider prefixes and version
    suffixes, never by bare prefix: ``gpt-4o-mini`` is not ``gpt-4o``, and an unknown
    variant such as ``o3-pro`` has no price rather than the price of ``o3``.
    """

    def __init__(
        self,
        prices: Mapping[str, Price],
        date: datetime.date,
        *,
        aliases: Mapping[str, str] | None = None,
        note: str = "",
        overridden: Iterable[str] = (),
    ) -> None:
        self._prices = MappingProxyType({_normalise(k): v for k, v in prices.items()})
        self._aliases = MappingProxyType(
            {_normalise(k): _normalise(v) for k, v in (aliases or {}).items()}
        )
        missing = sorted(v for v in self._aliases.values() if v not in self._prices)
        if missing:
            raise ValueError(f"price aliases point to unknown models: {', '.join(missing)}")
        self.date = date
        self.note = note
        self.overridden = frozenset(_normalise(name) for name in overridden)

    @classmethod
    def from_toml(cls, text: str, origin: str = "prices.toml") -> PriceTable:
        """Build a table from TOML text in the ``prices.toml`` format; errors name ``origin``."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{origin}: not valid TOML: {exc}") from exc
        date = data.get("date")
        if not isinstance(date, datetime.date) or isinstance(date, datetime.datetime):
            raise ValueError(f"{origin}: top-level 'date' must be a TOML date, got {date!r}")
        models = data.get("models")
        if not isinstance(models, dict) or not models:
            raise ValueError(f"{origin}: needs a [models.NAME] table per model")
        prices: dict[str, Price] = {}
        aliases: dict[str, str] = {}
        for name, entry in models.items():
            prices[name], entry_aliases = _price_entry(entry, f"{origin}: models.{name}")
            for alias in entry_aliases:
                aliases[alias] = name
        note = data.get("note", "")
        return cls(prices, date, aliases=aliases, note=note if isinstance(note, str) else "")

    @property
    def models(self) -> tuple[str, ...]:
        """The priced model family names, sorted."""
        return tuple(sorted(self._prices))

    def resolve(self, model: str | None) -> str | None:
        """The table entry that prices ``model``, or ``None`` if it has no price."""
        if not model:
            return None
        for name in _candidates(model):
            if name in self._prices:
                return name
            if name in self._aliases:
                return self._aliases[name]
        return None

    def lookup(self, model: str | None) -> Price | None:
        """The price of ``model`` (dated names and aliases resolve to their family)."""
        name = self.resolve(model)
        return None if name is None else self._prices[name]

    def cost(self, usage: Usage | None) -> float | None:
        """USD for ``usage``; ``None`` when usage is unknown or its model has no price."""
        if usage is None:
            return None
        price = self.lookup(usage.model)
        return None if price is None else price.cost(usage)

    def with_overrides(self, overrides: Mapping[str, Price]) -> PriceTable:
        """A new table where ``overrides`` add models or replace existing entries."""
        if not overrides:
            return self
        prices = dict(self._prices)
        prices.update({_normalise(k): v for k, v in overrides.items()})
        return PriceTable(
            prices,
            self.date,
            aliases=self._aliases,
            note=self.note,
            overridden=self.overridden | {_normalise(k) for k in overrides},
        )

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.resolve(model) is not None

    def __len__(self) -> int:
        return len(self._prices)

    def __repr__(self) -> str:
        return f"PriceTable({len(self)} models, date={self.date.isoformat()})"


def _price_entry(entry: Any, where: str) -> tuple[Price, list[str]]:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: must be a table")
    unknown = sorted(set(entry) - {*_FIELDS, "source", "aliases"})
    if unknown:
        raise ValueError(f"{where}: unknown keys {', '.join(unknown)}")
    missing = [key for key in (*_FIELDS, "source") if key not in entry]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    aliases = entry.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ValueError(f"{where}: 'aliases' must be a list of strings")
    if not isinstance(entry["source"], str):
        raise ValueError(f"{where}: 'source' must be a string")
    try:
        price = Price(**{key: entry[key] for key in (*_FIELDS, "source")})
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    return price, aliases


@functools.cache
def load_default_prices() -> PriceTable:
    """The price table shipped with the plugin (read once per process)."""
    text = resources.files("pytest_agentpatterns").joinpath("prices.toml").read_text("utf-8")
    return PriceTable.from_toml(text, origin="pytest_agentpatterns/prices.toml")


_PAIR = re.compile(r"^(?P<key>[a-z_]+):(?P<value>\S+)$")


def parse_price_lines(
    lines: Sequence[str], source: str = f"{INI_OPTION} (ini)"
) -> dict[str, Price]:
    """Parse ``agentpatterns_prices`` lines: ``MODEL = input:3 output:15 [cache_write:…] …``.

    Prices are USD per million tokens; ``input`` and ``output`` are required, the cache prices
    default to the input price. Blank lines and ``#`` comments are skipped. A bad line raises
    ``ValueError`` naming the line and the allowed form.
    """
    result: dict[str, Price] = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        model, values = _parse_price_line(line)
        key = _normalise(model)
        if key in result:
            raise _line_error(line, f"model {model!r} is priced twice")
        result[key] = Price(
            input=values["input"],
            output=values["output"],
            cache_write=values.get("cache_write", values["input"]),
            cache_read=values.get("cache_read", values["input"]),
            source=source,
        )
    return result


def _parse_price_line(line: str) -> tuple[str, dict[str, float]]:
    model, sep, rest = line.partition("=")
    model = model.strip()
    if not sep:
        raise _line_error(line, "no '='")
    if not model or any(c.isspace() for c in model):
        raise _line_error(line, "the model name must be one word before '='")
    values: dict[str, float] = {}
    for token in rest.replace(",", " ").split():
        match = _PAIR.match(token)
        if not match:
            raise _line_error(line, f"{token!r} is not KEY:NUMBER")
        key = match.group("key")
        if key not in _FIELDS:
            raise _line_error(line, f"unknown price {key!r} (allowed: {', '.join(_FIELDS)})")
        if key in values:
            raise _line_error(line, f"{key!r} given twice")
        try:
            value = float(match.group("value"))
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise _line_error(line, f"{key} must be a number >= 0, got {match.group('value')!r}")
        values[key] = value
    missing = [key for key in ("input", "output") if key not in values]
    if missing:
        raise _line_error(line, f"missing {' and '.join(missing)}")
    return model, values


def _line_error(line: str, reason: str) -> ValueError:
    return ValueError(
        f"{INI_OPTION}: bad line {line!r}: {reason}. "
        f"Expected '{PRICE_LINE_FORM}' (USD per million tokens), "
        "e.g. 'my-model = input:3 output:15 cache_write:3.75 cache_read:0.3'"
    )


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

    def check(self, table: PriceTable, usage: Usage | None) -> str | None:
        """The warning text the first time ``usage`` names a model ``table`` cannot price."""
        if usage is None or table.lookup(usage.model) is not None:
            return None
        if not self.note_unknown(usage.model):
            return None
        return self.message(usage.model, table)

    @property
    def unknown_models(self) -> tuple[str, ...]:
        """Unpriced model names, in the order first seen."""
        with self._lock:
            return tuple(self._seen)

    @staticmethod
    def message(model: str | None, table: PriceTable) -> str:
        """One line for the user: which model, what happens, and how to price it."""
        name = model or PriceWarnings.UNNAMED
        example = model or "MODEL"
        return (
            f"pytest-agentpatterns: no price for model {name!r} in the price table "
            f"(dated {table.date.isoformat()}): its tokens are counted, its cost is n/a. "
            f"Price it with the ini option {INI_OPTION}, e.g. "
            f"'{example} = input:3 output:15 cache_write:3.75 cache_read:0.3' (USD per 1M tokens)."
        )
