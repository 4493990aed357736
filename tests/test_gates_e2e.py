"""Saving a run, comparing against it, and gates that fail the session: end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# A task whose latency and accuracy are driven from the environment, so a second run can be
# made worse. Sleeping gives real wall-clock latencies with the noise of a real machine; the
# sleep is long enough (20 ms) that a loaded machine's scheduling delays, a few ms at worst,
# cannot pass for the +20% a gate looks for between the baseline and an unchanged run.
MODULE = """
import os, random, time, pytest
from pytest_agentpatterns import Task

SLOW = float(os.environ.get("SLOW", "1.0"))
WRONG = float(os.environ.get("WRONG", "0.0"))
rng = random.Random(os.environ.get("SEED", "0"))

def propose(x):
    time.sleep(0.02 * SLOW * (1 + 0.1 * rng.random()))
    return "wrong" if rng.random() < WRONG else x

t = Task(name="echo", propose=propose)

@pytest.mark.agentpatterns(repeat=3)
@pytest.mark.parametrize("case", [f"c{i}" for i in range(10)])
def test_echo(agent, case):
    assert agent.run(t, case) == case
"""


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=none", *args)


def test_gate_fails_on_real_regression_and_passes_unchanged(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(MODULE)
    baseline = pytester.path / "baseline.json"
    _run(pytester, f"--patterns-save={baseline}").assert_outcomes(passed=10)
    saved = json.loads(baseline.read_text())
    assert saved["kind"] == "pytest-agentpatterns-report" and len(saved["items"]) == 10

    rules = "--patterns-fail-on=accuracy:-0.05,latency_p50:+20%"
    monkeypatch.setenv("SEED", "1")
    unchanged = _run(pytester, f"--patterns-baseline={baseline}", rules)
    assert unchanged.ret == pytest.ExitCode.OK
    unchanged.stdout.fnmatch_lines(["gates against the baseline run: 0 failed, *"])
    assert unchanged.stdout.lines[-1].startswith("agentpatterns: 0 gates failed")

    monkeypatch.setenv("SLOW", "3.0")
    monkeypatch.setenv("WRONG", "0.5")
    worse = _run(pytester, f"--patterns-baseline={baseline}", rules)
    assert worse.ret == pytest.ExitCode.TESTS_FAILED
    worse.stdout.fnmatch_lines(
        [
            "gates against the baseline run: 2 failed, 0 inconclusive, 0 passed",
            "*alpha 0.05 is split over its 2 gates (Bonferroni): each at 0.025",
            "  FAILED accuracy:-0.05",
            "*::test_echo",
            "    [[]single[]]: accuracy -0.500 [[]*[]] drops beyond the -0.05 margin",
            "    cases that dropped: c4 (1.00->0.00), *",
            "  FAILED latency_p50:+20%",
            "*::test_echo",
            "    [[]single[]]: latency_p50 +*% [[]*[]] exceeds the +20% margin",
        ]
    )
    worse.assert_outcomes(passed=10)  # the items pass; the session fails on the gates
    # The run's last line is the gate verdict, after pytest's own counts.
    assert worse.stdout.lines[-1] == "agentpatterns: 2 gates failed, 0 inconclusive, 0 passed"


def test_gate_not_evaluated_is_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MODULE)
    baseline = pytester.path / "baseline.json"
    baseline.write_text(
        json.dumps({"kind": "pytest-agentpatterns-report", "schema_version": 1, "items": []})
    )
    result = _run(pytester, f"--patterns-baseline={baseline}", "--patterns-fail-on=cost:+10%")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "  no gate could be evaluated",
            "  not evaluated cost:+10% *",
            "*: not in the baseline run",
        ]
    )
    data_line = result.stdout.lines[-1]
    assert data_line == "agentpatterns: 0 gates failed, 0 inconclusive, 0 passed, 1 not evaluated"


def test_markdown_report_has_the_same_numbers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MODULE)
    md = pytester.path / "summary.md"
    path = pytester.path / "r.json"
    html = pytester.path / "report.html"
    _run(
        pytester,
        f"--patterns-markdown={md}",
        f"--patterns-json={path}",
        f"--patterns-html={html}",
        "--patterns=single,parallel(n=2)",
    )
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "parallel(n=2)" in page
    text = md.read_text()
    assert text.startswith("## agentpatterns summary")
    assert "| pattern " in text and "| parallel(n=2) " in text
    data = json.loads(path.read_text())
    [parallel] = [p for p in data["analysis"][0]["patterns"] if p["pattern"] == "parallel(n=2)"]
    assert f"{parallel['summary']['accuracy']:.3f}" in text
    assert {c["metric"] for c in parallel["comparisons"]} == {
        "accuracy",
        "latency_p50",
        "latency_p95",
        "cost",
    }


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--patterns-fail-on=accuracy:x", "--patterns-baseline=b.json"],
            "*--patterns-fail-on='accuracy:x'*",
        ),
        (["--patterns-fail-on=latency_p95:+20"], "*--patterns-fail-on*"),
        (
            ["--patterns-fail-on=accuracy:-0.05"],
            "*--patterns-fail-on needs --patterns-baseline=PATH*",
        ),
        (["--patterns-baseline=missing.json"], "*baseline file missing.json does not exist*"),
        (["--patterns-baseline=bad.json"], "*baseline file bad.json is unreadable*"),
        (
            ["--patterns-baseline=b.json", "--patterns-save=b.json"],
            "*would overwrite the baseline*",
        ),
        (["--patterns-alpha=0.7"], "*'0.7' is not allowed: use a number in (0, 0.5)*"),
    ],
)
def test_gate_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile("def test_x(): pass")
    (pytester.path / "b.json").write_text(
        json.dumps({"kind": "pytest-agentpatterns-report", "schema_version": 1, "items": []})
    )
    (pytester.path / "bad.json").write_text("{not json")
    before = (pytester.path / "b.json").read_text()
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert (pytester.path / "b.json").read_text() == before


def test_saved_run_round_trips(tmp_path: Path) -> None:
    from pytest_agentpatterns.records import Address, CallRecord, ItemResult, Repetition
    from pytest_agentpatterns.report import KIND, dumps, load_run

    call = CallRecord(
        Address(0, ("parallel[1]",), "propose", 0),
        "POST",
        "http://h/v1/messages",
        200,
        0.25,
        "sim-fast",
        10,
        5,
        0,
        0,
        1e-6,
    )
    item = ItemResult(
        "t.py::test_x[a-single]",
        "t.py::test_x",
        "a",
        "single",
        (Repetition(0, "correct", 0.3, calls=(call,)),),
    )
    path = tmp_path / "run.json"
    path.write_text(dumps({"kind": KIND, "schema_version": 1, "items": [item.to_dict()]}))
    assert load_run(path) == [item]
