"""The shapes of the JSON files the plugin reads back: saved runs and cassettes.

A file a user hands in (``--patterns-baseline``, a cassette) is checked field by field before
anything uses it, so a wrong one gets one line naming the field's path, what it holds and what
is allowed (``items[3].repetitions[0].latency: expected a number >= 0, got "fast"``), never
a traceback from deep inside the analysis. Saved runs are read forward-compatibly: fields this
version does not know are ignored at every level (docs/report-schema.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .records import Address

Check = Callable[[Any, str], Any]
"""Checks ``value`` found at ``path``; returns what is kept of it, or raises SchemaError."""

RUN_KIND = "pytest-agentpatterns-report"
RUN_SCHEMA_VERSION = 2
CASSETTE_VERSION = 1


class SchemaError(ValueError):
    """A document with a missing or wrongly shaped field; the message starts with its path."""

    def __init__(self, path: str, problem: str, expected: str | None = None) -> None:
        super().__init__(f"{path or 'the document'}: {problem}")
        self.path = path
        self.problem = problem
        self.expected = expected


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    try:
        text = json.dumps(value)
    except ValueError:
        text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _fail(path: str, expected: str, value: Any) -> SchemaError:
    return SchemaError(path, f"expected {expected}, got {_got(value)}", expected)


def _join(path: str, key: str) -> str:
    """``path.key``; a key that is not a plain name is quoted (JSON), so the path stays one
    readable line whatever the file holds."""
    shown = key if key.isidentifier() else json.dumps(key)
    return f"{path}.{shown}" if path else shown


def string(value: Any, path: str) -> str:
    """A JSON string."""
    if not isinstance(value, str):
        raise _fail(path, "a string", value)
    return value


def boolean(value: Any, path: str) -> bool:
    """``true`` or ``false``."""
    if not isinstance(value, bool):
        raise _fail(path, "true or false", value)
    return value


def _range(kind: str, low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{kind} from {low:g} to {high:g}"
    if low is not None:
        return f"{kind} >= {low:g}"
    return kind


def integer(low: int | None = None, high: int | None = None) -> Check:
    """A JSON integer (not a boolean) within the bounds."""
    expected = _range("an integer", low, high)

    def check(value: Any, path: str) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (low is not None and value < low)
            or (high is not None and value > high)
        ):
            raise _fail(path, expected, value)
        return value

    return check


def number(low: float | None = None, high: float | None = None) -> Check:
    """A finite JSON number (not a boolean) within the bounds."""
    expected = _range("a number", low, high)

    def check(value: Any, path: str) -> float | int:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or (low is not None and value < low)
            or (high is not None and value > high)
        ):
            raise _fail(path, expected, value)
        return value

    return check


def one_of(*choices: Any) -> Check:
    """One of the given JSON values."""
    expected = " or ".join(json.dumps(c) for c in choices)

    def check(value: Any, path: str) -> Any:
        if isinstance(value, bool) or value not in choices:
            raise _fail(path, expected, value)
        return value

    return check


def nullable(inner: Check) -> Check:
    """``null`` or what ``inner`` accepts."""

    def check(value: Any, path: str) -> Any:
        if value is None:
            return None
        try:
            return inner(value, path)
        except SchemaError as exc:
            if exc.path != path or exc.expected is None:
                raise
            raise _fail(path, f"{exc.expected} or null", value) from None

    return check


def list_of(inner: Check) -> Check:
    """A JSON list whose every element ``inner`` accepts."""

    def check(value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise _fail(path, "a list", value)
        return [inner(v, f"{path}[{i}]") for i, v in enumerate(value)]

    return check


def non_empty(inner: Check) -> Check:
    """What ``inner`` accepts, if not empty."""

    def check(value: Any, path: str) -> Any:
        kept = inner(value, path)
        if not kept:
            raise _fail(path, "at least one value", value)
        return kept

    return check


def map_of(inner: Check, key: Check | None = None) -> Check:
    """A JSON object whose every value ``inner`` accepts (and every name ``key``, if given)."""

    def check(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _fail(path, "an object", value)
        if key is not None:
            for name in value:
                key(name, _join(path, name))
        return {k: inner(v, _join(path, k)) for k, v in value.items()}

    return check


def either(first: Check, second: Check, expected: str) -> Check:
    """What ``first`` or ``second`` accepts."""

    def check(value: Any, path: str) -> Any:
        for inner in (first, second):
            try:
                return inner(value, path)
            except SchemaError:
                pass
        raise _fail(path, expected, value)

    return check


def record(
    required: Mapping[str, Check],
    optional: Mapping[str, Check] | None = None,
    *,
    closed: bool = False,
    then: Callable[[dict[str, Any], str], None] | None = None,
) -> Check:
    """A JSON object with ``required`` and ``optional`` fields; returns only those fields.

    Unknown fields are ignored (forward compatibility), or refused when ``closed``. ``then``
    checks the fields together once each is known to be well shaped.
    """
    optional = dict(optional or {})
    known = [*required, *optional]

    def check(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _fail(path, "an object", value)
        kept: dict[str, Any] = {}
        for key, inner in required.items():
            if key not in value:
                raise SchemaError(_join(path, key), "missing (a required field)")
            kept[key] = inner(value[key], _join(path, key))
        for key, inner in optional.items():
            if key in value:
                kept[key] = inner(value[key], _join(path, key))
        if closed:
            for key in value:
                if key not in kept:
                    raise SchemaError(
                        _join(path, key), f"unknown field; allowed: {', '.join(known)}"
                    )
        if then is not None:
            then(kept, path)
        return kept

    return check


def _address(value: Any, path: str) -> str:
    text = string(value, path)
    try:
        exact = str(Address.parse(text)) == text
    except ValueError:
        exact = False
    if not exact:
        raise _fail(path, "a call address such as r0/main/propose#0", value)
    return text


def _scored_has_score(repetition: dict[str, Any], path: str) -> None:
    if repetition["outcome"] == "scored" and repetition.get("score") is None:
        raise SchemaError(
            _join(path, "score"), "missing: a scored repetition needs a number from 0 to 1"
        )


_TOKENS = nullable(integer(0))

_CALL = record(
    {
        "address": _address,
        "method": string,
        "url": string,
        "status": nullable(integer(100, 599)),
        "duration": number(0),
    },
    {
        "model": nullable(string),
        "input_tokens": _TOKENS,
        "output_tokens": _TOKENS,
        "cache_write_tokens": _TOKENS,
        "cache_read_tokens": _TOKENS,
        "cost": nullable(number(0)),
        "replayed": boolean,
        "error": nullable(string),
        "prompt_hash": nullable(string),
        "prompt": nullable(string),
        "response": nullable(string),
    },
)

_VERDICT = record(
    {"branch": string, "ok": boolean},
    {"score": nullable(number()), "feedback": nullable(string)},
)

_RATE = nullable(number(0, 1))

_DIAGNOSTICS = record(
    {},
    {
        "ensemble": list_of(_RATE),
        "escalated": boolean,
        "loop": record({"iterations": integer(0), "passed": boolean, "accuracy": list_of(_RATE)}),
        "note": string,
    },
)
"""What :mod:`.diagnostics` kept of a repetition (docs/report-schema.md)."""

_REPETITION = record(
    {
        "index": integer(0),
        "outcome": one_of("correct", "incorrect", "scored", "error"),
        "latency": number(0),
    },
    {
        "score": nullable(number(0, 1)),
        "calls": list_of(_CALL),
        "error": nullable(string),
        "verified": nullable(boolean),
        "output": nullable(string),
        "message": nullable(string),
        "verdicts": list_of(_VERDICT),
        "diagnostics": nullable(_DIAGNOSTICS),
    },
    then=_scored_has_score,
)

_ITEM = record(
    {
        "nodeid": string,
        "test": string,
        "case": string,
        "pattern": string,
        "repetitions": list_of(_REPETITION),
    },
    {
        "baseline_pattern": string,
        "skipped": nullable(string),
        "thresholds": record(
            {}, {"min_accuracy": number(0, 1), "max_cost": number(0), "max_latency": number(0)}
        ),
        "adaptive": nullable(
            record(
                {
                    "rounds": list_of(integer(0)),
                    "max_repeat": integer(1),
                    "looks": integer(0),
                    "stop": nullable(string),
                },
                {"levels": map_of(number(0, 1))},
            )
        ),
    },
)


def check_run(data: Any) -> list[dict[str, Any]]:
    """The items of a saved run (``--patterns-save``), each cut to the fields this version
    knows; SchemaError naming the first wrong field.

    A run saved by a later version (a higher ``schema_version``) is read the same way, since
    versions only add fields; if it still does not fit, the error says to upgrade.
    """
    saved = "a run saved by --patterns-save or --patterns-json"
    if not isinstance(data, dict):
        raise _fail("", f"an object ({saved})", data)
    if data.get("kind") != RUN_KIND:
        raise _fail("kind", f"{json.dumps(RUN_KIND)} ({saved})", data.get("kind"))
    version = record({"schema_version": integer(1)})(data, "")["schema_version"]
    try:
        items: list[dict[str, Any]] = record({"items": list_of(_ITEM)})(data, "")["items"]
    except SchemaError as exc:
        if version > RUN_SCHEMA_VERSION:
            raise SchemaError(
                exc.path,
                f"{exc.problem} (the file has schema_version {version}; this "
                f"plugin reads {RUN_SCHEMA_VERSION}: upgrade pytest-agentpatterns)",
            ) from None
        raise
    return items


def _url(value: Any, path: str) -> str:
    text = string(value, path)
    try:
        parts = urlsplit(text)
        absolute = parts.scheme in ("http", "https") and bool(parts.netloc)
    except ValueError:
        absolute = False
    if not absolute:
        raise _fail(path, "an http(s) URL", value)
    return text


def _ascii(value: Any, path: str) -> str:
    text = string(value, path)
    if not text.isascii():
        raise _fail(path, "an ASCII string", value)
    return text


def _one_address(request: dict[str, Any], path: str) -> None:
    for name, value in request["headers"].items():
        if name.lower() == "x-agentpatterns-address":
            where = _join(_join(path, "headers"), name)
            _address(value if isinstance(value, str) else value[0], where)


# vcrpy keeps a request header's first value, and turns a response header's list into
# repeated headers: request headers are a string or a non-empty list, response headers a list
# of ASCII strings (what HTTP headers are, and all the HTTP client takes).
_REQUEST = record(
    {
        "method": string,
        "uri": _url,
        "body": nullable(string),
        "headers": map_of(
            either(string, non_empty(list_of(string)), "a string or a non-empty list of strings")
        ),
    },
    closed=True,
    then=_one_address,
)

_RESPONSE = record(
    {
        "status": record({"code": integer(100, 599), "message": _ascii}),
        "headers": map_of(list_of(_ascii), key=_ascii),
        "body": record({"string": string}),
    },
    {"duration": number(0)},
)

_CASSETTE = record(
    {
        "version": one_of(CASSETTE_VERSION),
        "interactions": list_of(record({"request": _REQUEST, "response": _RESPONSE})),
    },
    {"metadata": record({}, {"overhead": map_of(number(0)), "rounds": list_of(integer(0))})},
)


def check_cassette(data: Any) -> Any:
    """``data`` itself when it has a cassette's shape (vcrpy's, with this plugin's durations
    and metadata); SchemaError naming the first wrong field otherwise."""
    _CASSETTE(data, "")
    return data
