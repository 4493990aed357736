"""Bad input, tried as a careless user would: each gets one clear line, never a traceback.

Every case is a full pytest run (pytester) with one thing wrong: an option, an ini key, the
marker, a pattern spec, a gate rule, a cassette file or a baseline file. A usage error must
stop the run at start-up with exit code 4; a bad cassette must fail its one item. Either way
one line of the output names what was wrong, where, and what is allowed, and the output holds
no traceback and no INTERNALERROR.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_agentpatterns.schema import RUN_SCHEMA_VERSION

NEWER = RUN_SCHEMA_VERSION + 1
"""A schema version from a later release of the plugin."""

MODULE = """
import pytest
from pytest_agentpatterns import Task

t = Task(name="t", propose=lambda x: x)

{marker}
def test_x(agent):
    assert agent.run(t, 1) == 1
"""

USAGE = pytest.ExitCode.USAGE_ERROR
FAILED = pytest.ExitCode.TESTS_FAILED


@dataclass(frozen=True)
class Case:
    """One bad input and the words that must appear together on one line of the output."""

    id: str
    words: tuple[str, ...]
    args: tuple[str, ...] = ()
    ini: str = ""
    marker: str = ""
    cassette: str | bytes | None = None
    baseline: str | None = None
    exit: pytest.ExitCode = USAGE


# Valid documents; each bad one below changes one thing.


def call_doc() -> dict[str, Any]:
    return {
        "address": "r0/main/propose#0",
        "method": "POST",
        "url": "http://127.0.0.1/v1/messages",
        "status": 200,
        "duration": 0.25,
        "model": "sim-fast",
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_write_tokens": 0,
        "cache_read_tokens": 0,
        "cost": 1e-6,
        "replayed": False,
        "error": None,
    }


def run_doc() -> dict[str, Any]:
    repetition = {
        "index": 0,
        "outcome": "correct",
        "latency": 0.3,
        "score": None,
        "error": None,
        "verified": None,
        "calls": [call_doc()],
    }
    item = {
        "nodeid": "test_x.py::test_x[single]",
        "test": "test_x.py::test_x",
        "case": "",
        "pattern": "single",
        "baseline_pattern": "single",
        "skipped": None,
        "thresholds": {"min_accuracy": 0.5},
        "repetitions": [repetition],
    }
    return {
        "kind": "pytest-agentpatterns-report",
        "schema_version": 1,
        "plugin": "pytest-agentpatterns",
        "summary": [],
        "analysis": [],
        "gates": [],
        "items": [item],
    }


def cassette_doc() -> dict[str, Any]:
    request = {
        "method": "POST",
        "uri": "http://127.0.0.1:1/v1/messages",
        "body": '{"model": "sim-fast"}',
        "headers": {
            "content-type": ["application/json"],
            "x-agentpatterns-address": ["r0/main/propose#0"],
        },
    }
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {"content-type": ["application/json"]},
        "body": {"string": '{"type": "message"}'},
        "duration": 0.5,
    }
    return {
        "version": 1,
        "interactions": [{"request": request, "response": response}],
        "metadata": {"overhead": {"r0": 0.001}},
    }


def edit(doc: dict[str, Any], path: str, value: Any = ..., *, delete: bool = False) -> str:
    """``doc`` as JSON text with the field at ``path`` (``a.b[0].c``) set or deleted."""
    data = copy.deepcopy(doc)
    keys: list[Any] = []
    for part in path.replace("]", "").replace("[", ".").split("."):
        keys.append(int(part) if part.isdigit() else part)
    target = data
    for key in keys[:-1]:
        target = target[key]
    if delete:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return json.dumps(data)


def rep(path: str) -> str:
    return f"items.0.repetitions.0.{path}"


def bad_baseline(case_id: str, words: tuple[str, ...], text: str) -> Case:
    return Case(case_id, ("--patterns-baseline", "base.json", "malformed", *words), baseline=text)


def bad_cassette(case_id: str, words: tuple[str, ...], text: str | bytes) -> Case:
    return Case(
        case_id,
        ("cassette", "test_x[single].json", *words, "--patterns-record=rewrite"),
        cassette=text,
        exit=FAILED,
    )


def gate(rule: str, *words: str) -> Case:
    return Case(
        f"gate {rule}",
        ("--patterns-fail-on", rule[:20], *words, "allowed: accuracy:-D"),
        args=(f"--patterns-fail-on={rule}", "--patterns-baseline=base.json"),
    )


def option(arg: str, *words: str) -> Case:
    return Case(arg, words, args=(arg,))


def ini(line: str, *words: str) -> Case:
    return Case(f"ini {line}", words, ini=line)


def marker(text: str, *words: str) -> Case:
    return Case(
        f"marker {text}",
        ("test_x.py::test_x", *words),
        marker=f"@pytest.mark.agentpatterns({text})",
    )


SPEC_RANGE = "must be an integer from 1 to 64"
REPEAT = "use an integer from 1 to 10000"
MISSING = "missing (a required field)"

CASES: list[Case] = [
    # Pattern specs on the command line.
    option("--patterns=paralel", "--patterns=paralel", "unknown pattern", "allowed: single"),
    option("--patterns=parallel(n=0)", "--patterns=parallel(n=0)", SPEC_RANGE),
    option("--patterns=parallel(n=1000000000)", "n=1000000000", SPEC_RANGE),
    option("--patterns=parallel(n=x)", "parallel(n=x)", SPEC_RANGE),
    option("--patterns=parallel(n=2.5)", "parallel(n=2.5)", SPEC_RANGE),
    option("--patterns=hybrid(n=65)", "hybrid(n=65)", SPEC_RANGE),
    option("--patterns=escalate(n=100)", "escalate(n=100)", SPEC_RANGE),
    option("--patterns=loop(max_iters=0)", "loop(max_iters=0)", "max_iters must be", "1 to 64"),
    option("--patterns=loop(max_iters=1e9)", "loop(max_iters=1e9)", "max_iters must be"),
    option(
        "--patterns=escalate(threshold=nan)",
        "threshold=nan",
        "a finite number from 0 to 1",
    ),
    option("--patterns=escalate(threshold=inf)", "threshold=inf", "finite number from 0 to 1"),
    option("--patterns=escalate(threshold=-0.1)", "threshold=-0.1", "from 0 to 1"),
    option("--patterns=parallel(m=2)", "no parameter 'm'", "allowed: n"),
    option("--patterns=parallel(n=2", "unclosed '('", "parallel(n=8)"),
    option("--patterns=parallel(n=2))", "unbalanced ')'", "parallel(n=8)"),
    option("--patterns=parallel(n=2,n=3)", "'n' given twice", "parallel(n=8)"),
    option("--patterns=parallel(n)", "malformed argument 'n'", "write key=value"),
    option("--patterns=", "--patterns=", "no pattern given", "allowed: single"),
    option("--patterns=single;parallel", "malformed pattern spec", "allowed: single"),
    # Other options.
    option("--patterns-repeat=0", "--patterns-repeat", "'0'", REPEAT),
    option("--patterns-repeat=two", "--patterns-repeat", "'two'", REPEAT),
    option("--patterns-repeat=1000000000", "--patterns-repeat", REPEAT),
    option("--patterns-max-concurrency=0", "--patterns-max-concurrency", "from 1 to 512"),
    option("--patterns-max-concurrency=100000", "--patterns-max-concurrency", "from 1 to 512"),
    option("--patterns-record=sometimes", "--patterns-record", "allowed: none, once"),
    option("--patterns-budget=-1", "--patterns-budget", "'-1'", "a finite number >= 0"),
    option("--patterns-budget=nan", "--patterns-budget", "'nan'", "a finite number >= 0"),
    option("--patterns-budget=inf", "--patterns-budget", "'inf'", "a finite number >= 0"),
    option("--patterns-budget=lots", "--patterns-budget", "'lots'", "a finite number >= 0"),
    option("--patterns-alpha=0.7", "--patterns-alpha", "'0.7'", "a number in (0, 0.5)"),
    option("--patterns-alpha=nan", "--patterns-alpha", "'nan'", "a number in (0, 0.5)"),
    option("--patterns-seed=abc", "--patterns-seed", "'abc'", "integer from 0 to"),
    option("--patterns-seed=-1", "--patterns-seed", "'-1'", "integer from 0 to"),
    # Paths, checked before any test runs.
    option("--patterns-json=adir", "--patterns-json=adir", "is a folder", "path of a file"),
    option("--patterns-json=afile/r.json", "--patterns-json=afile/r.json", "afile is a file"),
    option("--patterns-save=adir", "--patterns-save=adir", "is a folder"),
    option("--patterns-markdown=adir", "--patterns-markdown=adir", "is a folder"),
    option("--patterns-html=afile/r.html", "--patterns-html=afile/r.html", "afile is a file"),
    option("--patterns-trace=adir", "--patterns-trace=adir", "is a folder"),
    Case(
        "json over the baseline",
        ("--patterns-json=base.json", "would overwrite the baseline", "another path"),
        args=("--patterns-json=base.json", "--patterns-baseline=base.json"),
    ),
    Case(
        "save over the baseline",
        ("--patterns-save=base.json", "would overwrite the baseline", "another path"),
        args=("--patterns-save=base.json", "--patterns-baseline=base.json"),
    ),
    Case(
        "two reports one file",
        ("--patterns-html=r.json", "--patterns-json writes the same file", "its own path"),
        args=("--patterns-json=r.json", "--patterns-html=r.json"),
    ),
    option("--patterns-cassette-dir=afile", "--patterns-cassette-dir", "afile is a file"),
    option("--patterns-cassette-dir=afile/sub", "--patterns-cassette-dir", "afile is a file"),
    option("--patterns-fail-on=accuracy:-0.05", "--patterns-fail-on needs --patterns-baseline"),
    option("--patterns-baseline=missing.json", "baseline file missing.json does not exist"),
    option("--patterns-baseline=adir", "--patterns-baseline", "adir is unreadable"),
    # Ini keys.
    ini("agentpatterns_patterns = paralel", "ini agentpatterns_patterns", "unknown pattern"),
    ini("agentpatterns_patterns = parallel(n=0)", "ini agentpatterns_patterns", SPEC_RANGE),
    ini("agentpatterns_repeat = 0", "ini agentpatterns_repeat", "'0'", REPEAT),
    ini("agentpatterns_repeat = many", "ini agentpatterns_repeat", "'many'", REPEAT),
    ini("agentpatterns_record = sometimes", "ini agentpatterns_record", "allowed: none"),
    ini("agentpatterns_budget = -5", "ini agentpatterns_budget", "a finite number >= 0"),
    ini("agentpatterns_max_concurrency = 0", "ini agentpatterns_max_concurrency", "1 to 512"),
    ini("agentpatterns_fail_on = latency:+5%", "ini agentpatterns_fail_on", "unknown metric"),
    ini("agentpatterns_cassette_dir = afile", "ini agentpatterns_cassette_dir", "is a file"),
    ini("agentpatterns_prices = sim-x = input:abc", "ini agentpatterns_prices", "sim-x"),
    # The marker.
    marker("repaet=3", "unknown agentpatterns marker keyword 'repaet'", "allowed: patterns"),
    marker("'parallel'", "takes keywords only", "allowed: patterns"),
    marker("repeat=0", "repeat=0", REPEAT),
    marker("repeat='3'", "repeat='3'", REPEAT),
    marker("repeat=True", "repeat=True", REPEAT),
    marker("repeat=10**9", "repeat=1000000000", REPEAT),
    marker("min_accuracy=1.5", "min_accuracy=1.5", "a number from 0 to 1"),
    marker("min_accuracy=float('nan')", "min_accuracy=nan", "a number from 0 to 1"),
    marker("max_cost=-1", "max_cost=-1", "a finite number >= 0"),
    marker("max_latency=float('inf')", "max_latency=inf", "a finite number >= 0"),
    marker("max_cost='cheap'", "max_cost='cheap'", "a finite number >= 0"),
    marker("patterns='paralel'", "patterns='paralel'", "unknown pattern", "allowed: single"),
    marker("patterns=['single', 3]", "patterns=['single', 3]", "a spec string or a list"),
    marker("patterns=42", "patterns=42", "a spec string or a list"),
    marker("patterns=''", "patterns=''", "no pattern given", "allowed: single"),
    marker("patterns='parallel(n=1000000000)'", "parallel(n=1000000000)", SPEC_RANGE),
    marker("baseline_pattern='nonesuch'", "baseline_pattern='nonesuch'", "unknown pattern"),
    marker("baseline_pattern=3", "baseline_pattern=3", "one pattern spec as a string"),
    # Gate rules (with a baseline to compare against).
    gate("latency:+5%", "unknown metric 'latency'"),
    gate("accuracy:+0.05", "write it with a minus sign"),
    gate("accuracy:-5%", "not a percentage"),
    gate("accuracy:-2", "at most 1"),
    gate("cost:10", "write it in percent"),
    gate("cost:-10%", "margins are zero or more"),
    gate("accuracy", "expected METRIC:MARGIN"),
    gate("cost:+10%,cost:+20%", "given twice"),
    gate("cost:+10%,,", "empty rule"),
    gate("cost:+nan%", "is not a number"),
    gate("cost:+" + "9" * 400 + "%", "is too large"),
    # Cassettes: the item fails with one message naming the file and the field.
    bad_cassette("cassette not json", ("unreadable", "JSONDecodeError"), "{not json"),
    bad_cassette("cassette empty", ("unreadable", "the file is empty"), ""),
    bad_cassette("cassette not utf-8", ("unreadable", "UnicodeDecodeError"), b"\xff\xfe{}"),
    bad_cassette("cassette a list", ("malformed", "expected an object, got a list"), "[]"),
    bad_cassette(
        "cassette no interactions",
        ("malformed", "interactions:", MISSING),
        edit(cassette_doc(), "interactions", delete=True),
    ),
    bad_cassette(
        "cassette interactions not a list",
        ("malformed", "interactions: expected a list, got an object"),
        edit(cassette_doc(), "interactions", {}),
    ),
    bad_cassette(
        "cassette interaction a string",
        ("malformed", "interactions[0]: expected an object"),
        edit(cassette_doc(), "interactions.0", "GET /"),
    ),
    bad_cassette(
        "cassette no response",
        ("malformed", "interactions[0].response:", MISSING),
        edit(cassette_doc(), "interactions.0.response", delete=True),
    ),
    bad_cassette(
        "cassette request without uri",
        ("malformed", "interactions[0].request.uri:", MISSING),
        edit(cassette_doc(), "interactions.0.request.uri", delete=True),
    ),
    bad_cassette(
        "cassette request unknown field",
        ("malformed", "request.url: unknown field", "allowed: method, uri, body, headers"),
        edit(cassette_doc(), "interactions.0.request.url", "http://x"),
    ),
    bad_cassette(
        "cassette headers a list",
        ("malformed", "request.headers: expected an object, got a list"),
        edit(cassette_doc(), "interactions.0.request.headers", []),
    ),
    bad_cassette(
        "cassette bad address",
        ("malformed", "x-agentpatterns-address", "a call address such as r0/main/propose#0"),
        edit(cassette_doc(), "interactions.0.request.headers.x-agentpatterns-address", ["r0-x"]),
    ),
    bad_cassette(
        "cassette no status",
        ("malformed", "interactions[0].response.status:", MISSING),
        edit(cassette_doc(), "interactions.0.response.status", delete=True),
    ),
    bad_cassette(
        "cassette status code text",
        ("malformed", 'response.status.code: expected an integer from 100 to 599, got "200"'),
        edit(cassette_doc(), "interactions.0.response.status.code", "200"),
    ),
    bad_cassette(
        "cassette body a string",
        ("malformed", 'response.body: expected an object, got "hi"'),
        edit(cassette_doc(), "interactions.0.response.body", "hi"),
    ),
    bad_cassette(
        "cassette duration text",
        ("malformed", 'response.duration: expected a number >= 0, got "slow"'),
        edit(cassette_doc(), "interactions.0.response.duration", "slow"),
    ),
    bad_cassette(
        "cassette negative duration",
        ("malformed", "response.duration: expected a number >= 0, got -1"),
        edit(cassette_doc(), "interactions.0.response.duration", -1),
    ),
    bad_cassette(
        "cassette version 2",
        ("malformed", "version: expected 1, got 2"),
        edit(cassette_doc(), "version", 2),
    ),
    bad_cassette(
        "cassette overhead text",
        ("malformed", "metadata.overhead.r0: expected a number >= 0"),
        edit(cassette_doc(), "metadata.overhead.r0", "x"),
    ),
    # Baselines: a usage error naming the file and the field's path.
    Case(
        "baseline not json",
        ("--patterns-baseline", "base.json is unreadable", "Expecting"),
        baseline="{not json",
    ),
    bad_baseline("baseline a list", ("expected an object", "--patterns-save"), "[]"),
    bad_baseline(
        "baseline wrong kind",
        ('kind: expected "pytest-agentpatterns-report"', 'got "other"'),
        edit(run_doc(), "kind", "other"),
    ),
    bad_baseline(
        "baseline schema_version text",
        ('schema_version: expected an integer >= 1, got "1"',),
        edit(run_doc(), "schema_version", "1"),
    ),
    bad_baseline(
        "baseline schema_version missing",
        ("schema_version:", MISSING),
        edit(run_doc(), "schema_version", delete=True),
    ),
    bad_baseline(
        "baseline schema_version 0",
        ("schema_version: expected an integer >= 1, got 0",),
        edit(run_doc(), "schema_version", 0),
    ),
    bad_baseline("baseline no items", ("items:", MISSING), edit(run_doc(), "items", delete=True)),
    bad_baseline(
        "baseline items an object",
        ("items: expected a list, got an object",),
        edit(run_doc(), "items", {}),
    ),
    bad_baseline(
        "baseline item a number",
        ("items[0]: expected an object, got 3",),
        edit(run_doc(), "items.0", 3),
    ),
    bad_baseline(
        "baseline item without nodeid",
        ("items[0].nodeid:", MISSING),
        edit(run_doc(), "items.0.nodeid", delete=True),
    ),
    bad_baseline(
        "baseline latency text",
        ('items[0].repetitions[0].latency: expected a number >= 0, got "fast"',),
        edit(run_doc(), rep("latency"), "fast"),
    ),
    bad_baseline(
        "baseline latency NaN",
        ("items[0].repetitions[0].latency: expected a number >= 0, got NaN",),
        edit(run_doc(), rep("latency"), float("nan")),
    ),
    bad_baseline(
        "baseline outcome unknown",
        ('repetitions[0].outcome: expected "correct" or "incorrect"', 'got "great"'),
        edit(run_doc(), rep("outcome"), "great"),
    ),
    bad_baseline(
        "baseline scored without score",
        ("repetitions[0].score: missing", "a number from 0 to 1"),
        edit(run_doc(), rep("outcome"), "scored"),
    ),
    bad_baseline(
        "baseline address",
        ("calls[0].address: expected a call address", 'got "xyz"'),
        edit(run_doc(), rep("calls.0.address"), "xyz"),
    ),
    bad_baseline(
        "baseline cost text",
        ('calls[0].cost: expected a number >= 0 or null, got "$1"',),
        edit(run_doc(), rep("calls.0.cost"), "$1"),
    ),
    bad_baseline(
        "baseline threshold above 1",
        ("items[0].thresholds.min_accuracy: expected a number from 0 to 1, got 2",),
        edit(run_doc(), "items.0.thresholds.min_accuracy", 2),
    ),
    bad_baseline(
        "baseline thresholds text",
        ('items[0].thresholds: expected an object, got "high"',),
        edit(run_doc(), "items.0.thresholds", "high"),
    ),
    bad_baseline(
        "baseline newer and broken",
        ("items[0].nodeid:", MISSING, f"schema_version {NEWER}", "upgrade pytest-agentpatterns"),
        edit(json.loads(edit(run_doc(), "schema_version", NEWER)), "items.0.nodeid", delete=True),
    ),
]


def _setup(pytester: pytest.Pytester, case: Case) -> list[str]:
    pytester.makepyfile(test_x=MODULE.format(marker=case.marker))
    if case.ini:
        pytester.makeini(f"[pytest]\n{case.ini}\n")
    (pytester.path / "adir").mkdir()
    (pytester.path / "afile").write_text("not a folder\n")
    base = pytester.path / "base.json"
    base.write_text(case.baseline if case.baseline is not None else json.dumps(run_doc()))
    args = ["-p", "no:cacheprovider", "--patterns-record=none", *case.args]
    if case.baseline is not None:
        args.append("--patterns-baseline=base.json")
    if case.cassette is not None:
        path = pytester.path / "cassettes" / "test_x" / "test_x[single].json"
        path.parent.mkdir(parents=True)
        if isinstance(case.cassette, bytes):
            path.write_bytes(case.cassette)
        else:
            path.write_text(case.cassette)
    return args


def assert_one_clear_line(result: pytest.RunResult, words: tuple[str, ...]) -> str:
    """One line of the output holds every word; no traceback anywhere."""
    lines = result.outlines + result.errlines
    text = "\n".join(lines)
    assert "Traceback" not in text, text
    assert "INTERNALERROR" not in text, text
    found = [line for line in lines if all(word in line for word in words)]
    assert found, f"no line holds all of {words}:\n{text}"
    return found[0]


def test_the_corpus_is_large_and_distinct() -> None:
    assert len(CASES) >= 72
    assert len({c.id for c in CASES}) == len(CASES)
    setups = {(c.args, c.ini, c.marker, c.cassette, c.baseline) for c in CASES}
    assert len(setups) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_clear_line(pytester: pytest.Pytester, case: Case) -> None:
    result = pytester.runpytest(*_setup(pytester, case))
    assert result.ret == case.exit, "\n".join(result.outlines + result.errlines)
    line = assert_one_clear_line(result, case.words)
    if case.exit == USAGE:
        assert re.match(r"ERROR: |\S+: error: ", line), line
        assert not any(" passed" in x or " failed" in x for x in result.outlines)
    else:
        result.assert_outcomes(failed=1)
        assert isinstance(case.cassette, (str, bytes))
        written = case.cassette if isinstance(case.cassette, bytes) else case.cassette.encode()
        cassette = pytester.path / "cassettes" / "test_x" / "test_x[single].json"
        assert cassette.read_bytes() == written, "a bad cassette must be left untouched"
    baseline = case.baseline if case.baseline is not None else json.dumps(run_doc())
    assert (pytester.path / "base.json").read_text() == baseline


# The valid documents the corpus starts from are accepted, so each failure above comes from
# the one thing changed.


def test_the_valid_cassette_replays(pytester: pytest.Pytester) -> None:
    case = Case("valid", (), cassette=json.dumps(cassette_doc()), exit=pytest.ExitCode.OK)
    result = pytester.runpytest(*_setup(pytester, case))
    result.assert_outcomes(passed=1)


def test_the_valid_baseline_is_compared_against(pytester: pytest.Pytester) -> None:
    case = Case("valid", (), baseline=json.dumps(run_doc()), exit=pytest.ExitCode.OK)
    result = pytester.runpytest(*_setup(pytester, case), "--patterns-fail-on=accuracy:-0.5")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["gates against the baseline run: *", "*split over its 1 gates*"])


def with_unknown_fields(value: Any, depth: int = 0) -> Any:
    """``value`` with a field no version has written added to every object in it."""
    if isinstance(value, dict):
        extended = {k: with_unknown_fields(v, depth + 1) for k, v in value.items()}
        extended[f"added_in_v2_{depth}"] = {"nested": [1, "two", None]}
        return extended
    if isinstance(value, list):
        return [with_unknown_fields(v, depth + 1) for v in value]
    return value


def test_a_newer_baseline_with_unknown_fields_is_read(tmp_path: Any) -> None:
    from pytest_agentpatterns.records import ItemResult
    from pytest_agentpatterns.report import load_run

    newer = with_unknown_fields(run_doc())
    newer["schema_version"] = NEWER
    assert newer["items"][0]["repetitions"][0]["calls"][0]["added_in_v2_6"]
    path = tmp_path / "newer.json"
    path.write_text(json.dumps(newer))
    assert load_run(path) == [ItemResult.from_dict(run_doc()["items"][0])]


def test_a_saved_run_with_fields_from_a_newer_version_gates_a_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_x=MODULE.format(marker="@pytest.mark.agentpatterns(repeat=3)"))
    saved = pytester.path / "saved.json"
    args = ("-p", "no:cacheprovider", "--patterns-record=none")
    pytester.runpytest(*args, f"--patterns-save={saved}").assert_outcomes(passed=1)
    newer = with_unknown_fields(json.loads(saved.read_text()))
    newer["schema_version"] = NEWER
    baseline = pytester.path / "newer.json"
    baseline.write_text(json.dumps(newer))
    result = pytester.runpytest(
        *args, f"--patterns-baseline={baseline}", "--patterns-fail-on=accuracy:-0.5"
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["gates against the baseline run: 0 failed, *"])


# Marker errors are found while collecting; they still stop the run as usage errors.

BAD_MARKERS = """
import pytest
from pytest_agentpatterns import Task

t = Task(name="t", propose=lambda x: x)

@pytest.mark.agentpatterns(repeat=0)
def test_a(agent):
    agent.run(t, 1)

@pytest.mark.agentpatterns(patterns="paralel")
def test_b(agent):
    agent.run(t, 1)

def test_c(agent):
    open("ran", "w").close()
"""


@pytest.mark.parametrize(
    "args", [(), ("-n", "2"), ("-p", "no:xdist"), ("--collect-only",)], ids=str
)
def test_every_bad_marker_is_named_and_nothing_runs(
    pytester: pytest.Pytester, args: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_m=BAD_MARKERS)
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == USAGE
    assert_one_clear_line(result, ("ERROR: test_m.py::test_a", "repeat=0", REPEAT))
    assert_one_clear_line(result, ("test_m.py::test_b", "unknown pattern 'paralel'"))
    assert not (pytester.path / "ran").exists()


def test_paths_are_checked_before_any_test_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_m=BAD_MARKERS.split("@pytest.mark")[0]
        + "\n"
        + "def test_c(agent):\n    open('ran', 'w').close()\n"
    )
    (pytester.path / "adir").mkdir()
    result = pytester.runpytest("-p", "no:cacheprovider", "--patterns-html=adir")
    assert result.ret == USAGE
    assert_one_clear_line(result, ("--patterns-html=adir", "is a folder"))
    assert not (pytester.path / "ran").exists()
    result = pytester.runpytest("-p", "no:cacheprovider", "--patterns-json=out/deeper/r.json")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "out" / "deeper" / "r.json").is_file()


@pytest.mark.parametrize(
    "registration,words",
    [
        ("registry.add_pattern('Best', run)", ("pattern name 'Best' is not allowed", "lower-case")),
        ("registry.add_pattern('single', run)", ("pattern 'single' is already registered",)),
        (
            "registry.add_pattern('best', run, params={'k': Param(int, 0, 1, 8)})",
            ("Param(default=0) is not allowed", "an integer from 1 to 8"),
        ),
    ],
)
def test_a_bad_registration_is_a_usage_error(
    pytester: pytest.Pytester, registration: str, words: tuple[str, ...]
) -> None:
    pytester.makeconftest(
        f"""
from pytest_agentpatterns.patterns import Param

async def run(flow):
    return await flow.propose()

def pytest_agentpatterns_register(registry):
    {registration}
"""
    )
    pytester.makepyfile(test_x=MODULE.format(marker=""))
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == USAGE
    assert_one_clear_line(result, ("ERROR: pytest_agentpatterns_register:", *words))


SHARED = """
import pytest
from pytest_agentpatterns import Task

t = Task(name="t", propose=lambda x: x)

@pytest.mark.parametrize("c", [1, 2, 3], ids={ids!r})
def test_k(agent, c):
    open(f"ran-{{c}}", "w").close()
    assert agent.run(t, c) == c
"""


@pytest.mark.parametrize(
    ("ids", "words"),
    [
        (
            ["a b", "a_b", "c"],
            ("test_k[a b-single]", "test_k[a_b-single]", "share one cassette", "ids"),
        ),
        (["x:y", "x?y", "z"], ("test_k[x:y-single]", "test_k[x?y-single]", "share one cassette")),
        (["a" * 300, "b", "c"], ("bytes long", "more than the 255", "shorter id")),
    ],
    ids=["whitespace", "colon-and-question-mark", "too-long"],
)
def test_cases_whose_cassettes_cannot_be_told_apart_stop_the_run(
    pytester: pytest.Pytester, ids: list[str], words: tuple[str, ...]
) -> None:
    """Two items would write one file (the second failing against the first's recording),
    or a name would be too long for a file: one usage error before anything runs."""
    pytester.makepyfile(test_k=SHARED.format(ids=ids))
    result = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=none")
    assert result.ret == USAGE, "\n".join(result.outlines + result.errlines)
    assert_one_clear_line(result, words)
    assert not list(pytester.path.glob("ran-*")) and not (pytester.path / "cassettes").exists()
