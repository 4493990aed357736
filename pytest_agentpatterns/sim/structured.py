"""Structured answers: fit a known answer into a JSON Schema, or make a conforming value up.

A simulated model asked for a tool call or a JSON response format says the world's answer where
it fits the schema and makes the rest up from the request's RNG. Every value it returns is
checked with ``jsonschema``; a schema it cannot satisfy is the caller's 400.
"""

from __future__ import annotations

import importlib
import json
import math
import random
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

ATTEMPTS = 8
"""How many made-up values are tried before a schema is declared unsatisfiable."""

MAX_DEPTH = 6
"""Nesting depth past which made-up objects get only required properties and arrays none."""

WORDS = (
    "amber", "basalt", "cedar", "delta", "ember", "fjord", "granite", "harbor", "indigo",
    "juniper", "kelp", "lagoon", "meadow", "nectar", "orchid", "pebble", "quartz", "river",
    "sierra", "tundra", "umber", "valley", "willow", "yarrow", "zephyr",
)  # fmt: skip
"""Vocabulary of made-up strings: plainly not an answer anyone expects."""


KINDS = ("object", "array", "string", "integer", "number", "boolean", "null")
"""The JSON Schema types."""


class SchemaError(ValueError):
    """A schema the simulator cannot use: invalid, or no value it makes up satisfies it."""


class _NoFit:
    """The answer does not fit here."""


NO_FIT = _NoFit()


def check_schema(schema: Any) -> None:
    """Raise ``SchemaError`` unless ``schema`` is a valid JSON Schema object."""
    from jsonschema import exceptions, validators

    if not isinstance(schema, Mapping):
        raise SchemaError(f"a schema must be a JSON object, not {type(schema).__name__}")
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(dict(schema))
    except exceptions.SchemaError as exc:
        raise SchemaError(exc.message) from None
    maker = _Maker(schema, random.Random(0))
    for ref in _refs(schema):
        maker.resolve({"$ref": ref})


def _refs(node: Any) -> list[Any]:
    """Every ``$ref`` in a schema, however deep."""
    if isinstance(node, Mapping):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for key, value in node.items() if key != "enum" for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def parse_hint(text: str) -> Any:
    """A world answer as a JSON value: its JSON reading when it has one, else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def conform(schema: Mapping[str, Any], hint: Any, rng: random.Random) -> tuple[Any, bool]:
    """A value valid against ``schema``, and whether ``hint`` is in it.

    The hint itself when valid; else the hint converted or placed inside (a property, an item)
    with the rest made up; else a value made up entirely.
    """
    maker = _Maker(schema, rng)
    for _ in range(ATTEMPTS):
        value = maker.fit(schema, hint, 0)
        if isinstance(value, _NoFit):
            break
        if maker.valid(schema, value):
            return value, True
    for _ in range(ATTEMPTS):
        value = maker.make(schema, 0)
        if maker.valid(schema, value):
            return value, False
    raise SchemaError(
        f"the simulator cannot make a value valid against this schema: {maker.why(schema, value)}"
    )


def malform(text: str, rng: random.Random) -> str:
    """JSON text made invalid the ways models get it wrong: fenced, chatty, or cut short."""
    kind = rng.randrange(3)
    if kind == 0:
        return f"```json\n{text}\n```"
    if kind == 1:
        return f"Here is the JSON you asked for:\n{text}"
    return text[:-1] if len(text) > 1 else text + "{"


class _Maker:
    """Fits hints and makes values up for one root schema (whose ``$ref`` it resolves)."""

    def __init__(self, root: Mapping[str, Any], rng: random.Random) -> None:
        from jsonschema import validators

        cls = validators.validator_for(root, default=validators.Draft202012Validator)
        self._validator = cls(root, format_checker=cls.FORMAT_CHECKER)
        self.root = root
        self.rng = rng

    def valid(self, schema: Any, value: Any) -> bool:
        return bool(self._validator.evolve(schema=schema).is_valid(value))

    def why(self, schema: Any, value: Any) -> str:
        error = next(iter(self._validator.evolve(schema=schema).iter_errors(value)), None)
        if error is None:
            return "no value found"
        where = "/".join(str(p) for p in error.absolute_path) or "the value"
        return f"{where}: {error.message}"

    def resolve(self, schema: Any) -> dict[str, Any]:
        """The schema with local ``$ref``s followed (sibling keywords kept) and booleans read."""
        seen = 0
        out: dict[str, Any] = {} if schema is True else dict(schema) if schema else {}
        if schema is False:
            raise SchemaError("a schema is false: no value is valid")
        while "$ref" in out:
            seen += 1
            if seen > 32:
                raise SchemaError("a $ref chain is too long or circular")
            ref = out.pop("$ref")
            out = {**self._pointer(ref), **out}
        return out

    def _pointer(self, ref: Any) -> dict[str, Any]:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaError(f"only local $ref ('#/...') are supported, not {ref!r}")
        node: Any = self.root
        for part in filter(None, ref[1:].split("/")):
            key = part.replace("~1", "/").replace("~0", "~")
            try:
                node = node[int(key)] if isinstance(node, list) else node[key]
            except (KeyError, IndexError, ValueError, TypeError):
                raise SchemaError(f"$ref {ref!r} points nowhere") from None
        if not isinstance(node, Mapping):
            raise SchemaError(f"$ref {ref!r} is not a schema object")
        return dict(node)

    @staticmethod
    def merge(base: Mapping[str, Any], branch: Mapping[str, Any]) -> dict[str, Any]:
        """``base`` without its combinators, with ``branch``'s keywords over it."""
        out = {k: v for k, v in base.items() if k not in ("anyOf", "oneOf", "allOf")}
        for key, value in branch.items():
            if key == "properties" and isinstance(out.get(key), Mapping):
                out[key] = {**out[key], **value}
            elif key == "required" and isinstance(out.get(key), list):
                out[key] = [*out[key], *(r for r in value if r not in out[key])]
            else:
                out[key] = value
        return out

    def merge_all(self, s: dict[str, Any]) -> dict[str, Any]:
        """``s`` with its ``allOf`` parts merged in."""
        merged = s
        for part in s["allOf"]:
            merged = self.merge(merged, self.resolve(part))
        return merged

    @staticmethod
    def types(schema: Mapping[str, Any]) -> list[str]:
        kind = schema.get("type")
        if isinstance(kind, str):
            return [kind]
        if isinstance(kind, list) and kind:
            return [str(k) for k in kind]
        if {"properties", "required", "additionalProperties"} & set(schema):
            return ["object"]
        if {"items", "prefixItems", "minItems", "maxItems"} & set(schema):
            return ["array"]
        if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"} & set(
            schema
        ):
            return ["number"]
        return ["string"]

    # fitting a hint

    def fit(self, schema: Any, hint: Any, depth: int) -> Any:
        s = self.resolve(schema)
        if self.valid(s, hint):
            return hint
        for candidate in self._coercions(s, hint):
            if self.valid(s, candidate):
                return candidate
        for branch in [*s.get("anyOf", ()), *s.get("oneOf", ())]:
            value = self.fit(self.merge(s, self.resolve(branch)), hint, depth)
            if not isinstance(value, _NoFit) and self.valid(s, value):
                return value
        if s.get("allOf"):
            return self.fit(self.merge_all(s), hint, depth)
        if depth >= MAX_DEPTH:
            return NO_FIT
        kinds = self.types(s)
        if "object" in kinds:
            value = self._fit_object(s, hint, depth)
            if not isinstance(value, _NoFit):
                return value
        if "array" in kinds:
            return self._fit_array(s, hint, depth)
        return NO_FIT

    @staticmethod
    def _coercions(schema: Mapping[str, Any], hint: Any) -> list[Any]:
        out: list[Any] = []
        if isinstance(hint, str):
            text = hint.strip()
            if re.fullmatch(r"-?\d+", text):
                out.append(int(text))
            elif re.fullmatch(r"-?\d+\.\d*(?:[eE][+-]?\d+)?|-?\d+[eE][+-]?\d+", text):
                out.append(float(text))
            if text.casefold() in ("true", "false"):
                out.append(text.casefold() == "true")
            for option in [*schema.get("enum", ()), schema.get("const")]:
                if isinstance(option, str) and option.casefold() == text.casefold():
                    out.append(option)
            if text != hint:
                out.append(text)
        elif isinstance(hint, bool):
            out.append("true" if hint else "false")
        elif isinstance(hint, int | float):
            out.append(json.dumps(hint))
            if isinstance(hint, float) and hint.is_integer():
                out.append(int(hint))
        return out

    def _fit_object(self, s: dict[str, Any], hint: Any, depth: int) -> Any:
        props: Mapping[str, Any] = s.get("properties") or {}
        names = self._object_names(s)
        value: dict[str, Any] = {}
        if isinstance(hint, Mapping):
            placed = False
            extra = s.get("additionalProperties", True)
            for name, item in hint.items():
                sub = props.get(name, extra)
                if sub is False:
                    continue
                fitted = self.fit(sub, item, depth + 1)
                if not isinstance(fitted, _NoFit):
                    value[name], placed = fitted, True
            if not placed:
                return NO_FIT
            for name in names:
                if name not in value:
                    value[name] = self.make(props.get(name, {}), depth + 1)
            return value
        slot, fitted, best = "", NO_FIT, 5
        for name, sub in props.items():
            rank, candidate = self._rank(sub, hint, depth + 1)
            if rank < best:
                slot, fitted, best = name, candidate, rank
        if isinstance(fitted, _NoFit):
            return NO_FIT
        for name in names:
            value[name] = fitted if name == slot else self.make(props.get(name, {}), depth + 1)
        value[slot] = fitted
        return value

    def _rank(self, schema: Any, hint: Any, depth: int) -> tuple[int, Any]:
        """How well ``hint`` fits one property: 0 an option it lists ... 4 not at all."""
        s = self.resolve(schema)
        options = [*s.get("enum", ()), *([s["const"]] if "const" in s else [])]
        if self.valid(s, hint):
            return (0 if hint in options else 1), hint
        for candidate in self._coercions(s, hint):
            if self.valid(s, candidate):
                return 2, candidate
        fitted = self.fit(s, hint, depth)
        return (3, fitted) if not isinstance(fitted, _NoFit) else (4, NO_FIT)

    def _fit_array(self, s: dict[str, Any], hint: Any, depth: int) -> Any:
        items = s.get("items", {})
        if items is False or s.get("prefixItems"):
            return NO_FIT
        if isinstance(hint, list):
            out = []
            for item in hint:
                fitted = self.fit(items, item, depth + 1)
                out.append(self.make(items, depth + 1) if isinstance(fitted, _NoFit) else fitted)
            return out
        fitted = self.fit(items, hint, depth + 1)
        if isinstance(fitted, _NoFit):
            return NO_FIT
        extra = max(0, int(s.get("minItems", 1)) - 1)
        return [fitted, *(self.make(items, depth + 1) for _ in range(extra))]

    @staticmethod
    def _object_names(s: Mapping[str, Any]) -> list[str]:
        """The properties a made-up object has: the required ones, or all when none is."""
        required = [str(r) for r in s.get("required", ())]
        return required or list(s.get("properties") or {})

    # making a value up

    def make(self, schema: Any, depth: int) -> Any:
        s = self.resolve(schema)
        if "const" in s:
            return s["const"]
        if s.get("enum"):
            return self.rng.choice(list(s["enum"]))
        branches = [*s.get("anyOf", ()), *s.get("oneOf", ())]
        if branches:
            resolved = [self.resolve(b) for b in branches]
            nulls = [b for b in resolved if self.types(b) == ["null"]]
            if nulls and depth >= MAX_DEPTH:
                return None
            choices = [b for b in resolved if self.types(b) != ["null"]] or resolved
            return self.make(self.merge(s, self.rng.choice(choices)), depth)
        if s.get("allOf"):
            return self.make(self.merge_all(s), depth)
        kinds = self.types(s)
        if "null" in kinds and (depth >= MAX_DEPTH or kinds == ["null"]):
            return None
        kind = next(k for k in kinds if k != "null")
        maker = getattr(self, f"_make_{kind}" if kind in KINDS else "_make_string")
        return maker(s, depth)

    def _make_object(self, s: dict[str, Any], depth: int) -> dict[str, Any]:
        props: Mapping[str, Any] = s.get("properties") or {}
        extra = s.get("additionalProperties", True)
        names = self._object_names(s) if depth < MAX_DEPTH else list(s.get("required", ()))
        value = {name: self.make(props.get(name, extra), depth + 1) for name in names}
        least = int(s.get("minProperties", 0))
        for name in props:
            if len(value) >= least:
                break
            value.setdefault(name, self.make(props[name], depth + 1))
        while len(value) < least and extra is not False:
            value[f"field_{len(value)}"] = self.make(extra, depth + 1)
        return value

    def _make_array(self, s: dict[str, Any], depth: int) -> list[Any]:
        prefix = list(s.get("prefixItems", ()))
        items = s.get("items", {})
        low = int(s.get("minItems", 0))
        high = int(s.get("maxItems", low + 3))
        if depth >= MAX_DEPTH:
            count = low
        else:
            start = max(low, min(1, high))
            count = self.rng.randint(start, max(start, min(high, start + 2)))
        if items is False:
            count = min(count, len(prefix))
        out: list[Any] = []
        seen: set[str] = set()
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else items
            for _ in range(ATTEMPTS):
                value = self.make(sub, depth + 1)
                key = json.dumps(value, sort_keys=True)
                if not s.get("uniqueItems") or key not in seen:
                    break
            seen.add(key)
            out.append(value)
        return out

    def _make_string(self, s: dict[str, Any], depth: int) -> str:
        rng = self.rng
        fmt = s.get("format")
        pattern = s.get("pattern")
        if isinstance(fmt, str) and fmt in _FORMATS:
            text = _FORMATS[fmt](rng)
        elif isinstance(pattern, str):
            text = sample_pattern(pattern, rng)
        else:
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
        low = int(s.get("minLength", 0))
        while len(text) < low:
            text += rng.choice("abcdefghijklmnopqrstuvwxyz")
        if "maxLength" in s:
            text = text[: int(s["maxLength"])]
        return text

    def _make_integer(self, s: dict[str, Any], depth: int) -> int:
        low, high = _bounds(s)
        lo = math.ceil(low) if low is not None else None
        hi = math.floor(high) if high is not None else None
        lo = lo if lo is not None else (0 if hi is None or hi >= 0 else hi - 100)
        hi = hi if hi is not None else lo + 100
        step = s.get("multipleOf")
        if isinstance(step, int) and step > 0:
            first, last = math.ceil(lo / step), math.floor(hi / step)
            return self.rng.randint(first, max(first, last)) * step
        return self.rng.randint(lo, max(lo, hi))

    def _make_number(self, s: dict[str, Any], depth: int) -> float | int:
        if isinstance(s.get("multipleOf"), int):
            return self._make_integer(s, depth)
        low, high = _bounds(s)
        lo = low if low is not None else (0.0 if high is None or high >= 0 else high - 100)
        hi = high if high is not None else lo + 100
        step = s.get("multipleOf")
        if isinstance(step, float) and step > 0:
            first, last = math.ceil(lo / step), math.floor(hi / step)
            return round(self.rng.randint(first, max(first, last)) * step, 10)
        value = round(self.rng.uniform(lo, hi), 2)
        return min(max(value, lo), hi)

    def _make_boolean(self, s: dict[str, Any], depth: int) -> bool:
        return self.rng.random() < 0.5

    def _make_null(self, s: dict[str, Any], depth: int) -> None:
        return None


def _bounds(s: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """Inclusive bounds from minimum/maximum and (2020-12, numeric) exclusive ones."""
    low = s.get("minimum")
    high = s.get("maximum")
    ex_low, ex_high = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
    if isinstance(ex_low, int | float) and not isinstance(ex_low, bool):
        nudged = ex_low + (1 if s.get("type") == "integer" else 0.01)
        low = nudged if low is None else max(low, nudged)
    if isinstance(ex_high, int | float) and not isinstance(ex_high, bool):
        nudged = ex_high - (1 if s.get("type") == "integer" else 0.01)
        high = nudged if high is None else min(high, nudged)
    return low, high


def _date(rng: random.Random) -> str:
    return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _time(rng: random.Random) -> str:
    return f"{rng.randint(0, 23):02d}:{rng.randrange(0, 60, 5):02d}:00Z"


_FORMATS: dict[str, Callable[[random.Random], str]] = {
    "date": _date,
    "time": _time,
    "date-time": lambda rng: f"{_date(rng)}T{_time(rng)}",
    "email": lambda rng: f"{rng.choice(WORDS)}{rng.randint(1, 99)}@example.com",
    "idn-email": lambda rng: f"{rng.choice(WORDS)}{rng.randint(1, 99)}@example.com",
    "uri": lambda rng: f"https://example.com/{rng.choice(WORDS)}",
    "iri": lambda rng: f"https://example.com/{rng.choice(WORDS)}",
    "uri-reference": lambda rng: f"/{rng.choice(WORDS)}",
    "uuid": lambda rng: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    "ipv4": lambda rng: ".".join(str(rng.randint(1, 254)) for _ in range(4)),
    "ipv6": lambda rng: f"2001:db8::{rng.getrandbits(16):x}",
    "hostname": lambda rng: f"{rng.choice(WORDS)}.example.com",
    "idn-hostname": lambda rng: f"{rng.choice(WORDS)}.example.com",
    "duration": lambda rng: f"P{rng.randint(1, 30)}D",
}


def sample_pattern(pattern: str, rng: random.Random) -> str:
    """A string matching the regular expression ``pattern``, drawn from ``rng``.

    Covers literals, classes, categories, alternation, groups, repeats and anchors; for the rest
    (look-arounds, back-references) it returns plain words, which the caller's check rejects.
    """
    try:
        parsed = importlib.import_module("re._parser").parse(pattern)
        return "".join(_sample(parsed, rng, {}))
    except (re.error, _Unsupported, ImportError, IndexError):
        return rng.choice(WORDS)


class _Unsupported(Exception):
    """A regular-expression construct the sampler does not draw from."""


_PRINTABLE = [chr(c) for c in range(0x20, 0x7F)]
_CATEGORIES = {
    "CATEGORY_DIGIT": [chr(c) for c in range(0x30, 0x3A)],
    "CATEGORY_NOT_DIGIT": [c for c in _PRINTABLE if not c.isdigit()],
    "CATEGORY_SPACE": [" "],
    "CATEGORY_NOT_SPACE": [c for c in _PRINTABLE if c != " "],
    "CATEGORY_WORD": [c for c in _PRINTABLE if c.isalnum() or c == "_"],
    "CATEGORY_NOT_WORD": [c for c in _PRINTABLE if not (c.isalnum() or c == "_")],
}


def _sample(parsed: Any, rng: random.Random, groups: dict[int, str]) -> list[str]:
    out: list[str] = []
    for op, arg in parsed:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "NOT_LITERAL":
            out.append(rng.choice([c for c in _PRINTABLE if ord(c) != arg]))
        elif name == "ANY":
            out.append(rng.choice([c for c in _PRINTABLE if c != "\n"]))
        elif name == "IN":
            out.append(rng.choice(_class(arg)))
        elif name == "BRANCH":
            out.extend(_sample(rng.choice(arg[1]), rng, groups))
        elif name == "SUBPATTERN":
            text = "".join(_sample(arg[3], rng, groups))
            if arg[0] is not None:
                groups[arg[0]] = text
            out.append(text)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, body = arg
            high = low + 3 if high > low + 3 else high
            for _ in range(rng.randint(low, high)):
                out.extend(_sample(body, rng, groups))
        elif name == "ATOMIC_GROUP":
            out.extend(_sample(arg, rng, groups))
        elif name == "GROUPREF":
            out.append(groups.get(arg, ""))
        elif name == "AT":
            continue
        else:
            raise _Unsupported(name)
    return out


def _class(items: Any) -> list[str]:
    chars: set[str] = set()
    negate = False
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            chars.add(chr(arg))
        elif name == "RANGE":
            chars.update(chr(c) for c in range(arg[0], min(arg[1], arg[0] + 256) + 1))
        elif name == "CATEGORY":
            chars.update(_CATEGORIES.get(str(arg), ()))
        else:
            raise _Unsupported(name)
    if negate:
        return [c for c in _PRINTABLE if c not in chars] or ["~"]
    return sorted(chars) or ["a"]
