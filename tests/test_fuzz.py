"""Fuzzing what users type and hand in: the only outcomes are a valid parse or the module's
own clear error, never another exception and never a hang (each example has a deadline).

Specs (``Registry.parse``), gate rules (``gates.parse_rules``), option values, marker
keywords, and structurally random cassettes and saved runs, both from scratch and as one
change to a valid document.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bad_input import cassette_doc, run_doc
from vcr.stubs.httpx_stubs import _deserialize_response

from pytest_agentpatterns import cassettes, gates, options
from pytest_agentpatterns.analysis import analyse, evaluate_gates
from pytest_agentpatterns.patterns import SpecError, builtin_registry
from pytest_agentpatterns.records import ItemResult
from pytest_agentpatterns.report import load_run
from pytest_agentpatterns.schema import SchemaError, check_run

REGISTRY = builtin_registry()
FUZZ = settings(
    max_examples=300,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Pattern specs.

NAMES = st.sampled_from([*REGISTRY.patterns, "all", "paralel", "x", "Parallel", "_", ""])
KEYS = st.sampled_from(["n", "threshold", "max_iters", "m", "", "n n"])
VALUES = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        ["nan", "inf", "-inf", "1e999", "0x10", "1_000", "", "=", "(", ")", "9" * 5000]
    ),
    st.text(max_size=6),
)
ARG = st.builds(
    lambda k, eq, v: f"{k}{eq}{v}", KEYS, st.sampled_from(["=", " = ", "", "=="]), VALUES
)
SPEC = st.builds(
    lambda name, args, close: f"{name}({','.join(args)}{close}" if args is not None else name,
    NAMES,
    st.none() | st.lists(ARG, max_size=3),
    st.sampled_from([")", "", "))", ") "]),
)
SPECS = st.lists(SPEC, min_size=0, max_size=4).map(",".join)


def _parse_specs(text: str) -> None:
    try:
        specs = REGISTRY.parse(text)
    except SpecError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 600
        return
    assert specs
    for spec in specs:
        assert REGISTRY.parse_one(spec.id) == spec
        for key, value in spec.params:
            param = REGISTRY.patterns[spec.name].params[key]
            assert math.isfinite(value)
            assert param.minimum is None or value >= param.minimum
            assert param.maximum is None or value <= param.maximum


@FUZZ
@given(SPECS)
def test_spec_lists_parse_or_raise_spec_errors(text: str) -> None:
    _parse_specs(text)


@FUZZ
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_spec_text_parses_or_raises_spec_errors(text: str) -> None:
    _parse_specs(text)


# Gate rules.

METRICS = st.sampled_from([*gates.ALLOWED_METRICS, "latency", "", "Accuracy"])
MARGINS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(lambda x: f"{x:+}"),
    st.integers(-(10**6), 10**6).map(lambda x: f"{x:+d}"),
    st.sampled_from(["", "-", "+", "nan", "-0", "0", ".5", "5.", "+1e3", "9" * 400]),
    st.text(max_size=5),
)
RULE = st.builds(
    lambda m, sep, margin, pct: f"{m}{sep}{margin}{pct}",
    METRICS,
    st.sampled_from([":", "", "::", " : "]),
    MARGINS,
    st.sampled_from(["%", "", " %", "%%"]),
)
RULES = st.lists(RULE, max_size=4).map(",".join) | st.text(max_size=40)


@FUZZ
@given(RULES)
def test_gate_rules_parse_or_raise_value_errors(text: str) -> None:
    try:
        rules = gates.parse_rules(text)
    except ValueError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 800
        return
    assert gates.parse_rules(gates.format_rules(rules)) == rules
    assert all(math.isfinite(r.margin) for r in rules)


# Option values and marker keywords.

PARSERS = [
    options.repeat_count,
    options.concurrency,
    options.seed_value,
    options.non_negative_float,
    options.alpha_value,
    options.record_mode,
]


@FUZZ
@given(
    st.sampled_from(PARSERS),
    st.one_of(st.text(max_size=12), st.floats().map(str), st.integers().map(str)),
)
def test_option_values_parse_or_raise_argparse_errors(parse: Any, text: str) -> None:
    try:
        value = parse(text)
    except argparse.ArgumentTypeError:
        return
    if isinstance(value, float):
        assert math.isfinite(value)


MARKER_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    SPEC,
    st.lists(st.one_of(SPEC, st.integers()), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from([*options.MARKER_KEYWORDS, "repeats", "pattern"]),
        MARKER_VALUES,
        max_size=4,
    )
)
def test_marker_keywords_validate_or_raise_usage_errors(kwargs: dict[str, Any]) -> None:
    try:
        marker = options.marker_settings(kwargs, "t.py::test_x", REGISTRY)
    except pytest.UsageError as exc:
        assert str(exc).startswith("t.py::test_x: ")
        return
    if marker.repeat is not None:
        assert 1 <= marker.repeat <= options.MAX_REPEAT


# Structurally random documents: JSON from scratch, and valid ones with one part replaced.

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


TRICKY_TEXT = st.text() | st.sampled_from(
    ["", "é", "http://[", "ftp://h/x", "http://h", "r0/main/propose#0", "r-1/main/x#0", "NaN"]
)
NUMBERS = (
    st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, -1, 99, 600, 1e308])
)


def _alike(value: Any) -> st.SearchStrategy[Any]:
    """Values of the same JSON kind as ``value``: the mistakes a hand edit makes."""
    if isinstance(value, bool) or value is None:
        return st.booleans() | st.none()
    if isinstance(value, (int, float)):
        return NUMBERS
    if isinstance(value, str):
        return TRICKY_TEXT
    if isinstance(value, list):
        return st.lists(st.sampled_from(value) if value else JSON, max_size=3) | st.just([])
    return st.dictionaries(TRICKY_TEXT, JSON, max_size=2).map(lambda extra: {**value, **extra})


@st.composite
def one_change(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """``valid`` with one node replaced by a value of its kind or random JSON, or deleted."""
    doc = json.loads(json.dumps(valid))
    path = draw(st.sampled_from(list(_paths(doc))))
    if not path:
        return draw(JSON)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    how = draw(st.sampled_from(["alike", "alike", "random", "delete"]))
    if how == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(_alike(parent[path[-1]]) if how == "alike" else JSON)
    return doc


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _cassette_loads_or_is_refused(folder: Path, text: str | bytes) -> None:
    path = folder / "c.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    try:
        # The whole load: persister, shape check, vcrpy's Request objects, the address index.
        with cassettes.open_cassette(path, "none") as cassette:
            assert len(cassette.data) == len(json.loads(text)["interactions"])
            for request, response in cassette.data:
                # What replay does with each recording: its key, its duration, and vcrpy
                # turning it into the SDK's HTTP response.
                cassette._lookup_key(request)
                assert math.isfinite(float(response.get("duration", 0.0)))
                _deserialize_response(response, httpx2).read()
    except cassettes.CassetteError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)


@FUZZ
@given(JSON | one_change(cassette_doc()))
def test_cassettes_load_or_fail_with_cassette_errors(folder: Path, doc: Any) -> None:
    _cassette_loads_or_is_refused(folder, json.dumps(doc))


@settings(FUZZ, max_examples=100)
@given(st.binary(max_size=40) | st.text(max_size=40).map(str.encode))
def test_cassette_bytes_load_or_fail_with_cassette_errors(folder: Path, data: bytes) -> None:
    _cassette_loads_or_is_refused(folder, data)


RULES_FOR_RUNS = gates.parse_rules("accuracy:-0.1,latency_p95:+20%,cost:+10%,tokens:+5%")


@settings(FUZZ, max_examples=150)
@given(JSON | one_change(run_doc()))
def test_saved_runs_read_or_fail_with_schema_errors(doc: Any) -> None:
    try:
        items = check_run(doc)
    except SchemaError as exc:
        assert "\n" not in str(exc)
        return
    results = [ItemResult.from_dict(item) for item in items]
    # What was accepted can be analysed and gated against without an error.
    analyse(results)
    evaluate_gates(RULES_FOR_RUNS, results, results)


@settings(FUZZ, max_examples=100)
@given(st.binary(max_size=40) | JSON.map(json.dumps).map(str.encode))
def test_baseline_files_load_or_fail_with_value_errors(folder: Path, data: bytes) -> None:
    path = folder / "run.json"
    path.write_bytes(data)
    try:
        load_run(path)
    except ValueError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
