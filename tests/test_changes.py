"""What changed between two runs: the pure comparison, and a failing gate that names it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pytest_agentpatterns import cli, diffing
from pytest_agentpatterns.changes import Change, changes_by_group, what_changed
from pytest_agentpatterns.records import Address, CallRecord, ItemResult, Repetition
from pytest_agentpatterns.sim import Simulator


def _call(
    role: str = "propose", model: str = "m1", prompt: str = "sha256:a", replayed: bool = True
) -> CallRecord:
    return CallRecord(
        Address(0, (), role, 0),
        "POST",
        "http://h/v1/messages",
        200,
        0.1,
        model=model,
        prompt_hash=prompt,
        replayed=replayed,
    )


def _item(
    case: str, *calls: CallRecord, reps: int = 2, pattern: str = "single", **kw: object
) -> ItemResult:
    repetitions = tuple(Repetition(i, "correct", 0.1, calls=calls) for i in range(reps))
    return ItemResult(f"t.py::t[{case}-{pattern}]", "t.py::t", case, pattern, repetitions, **kw)  # type: ignore[arg-type]


def test_nothing_changed() -> None:
    items = [_item("a", _call()), _item("b", _call())]
    assert what_changed(items, items) == ()


def test_model_and_prompt_changes_are_told_apart() -> None:
    before = [_item("a", _call()), _item("b", _call(prompt="sha256:b"))]
    after = [_item("a", _call(model="m2")), _item("b", _call(model="m2", prompt="sha256:B"))]
    assert what_changed(before, after) == (
        Change("model", "model of propose: m1 -> m2"),
        Change("prompt", "prompt of propose changed in 1 of 2 cases (b)"),
    )


def test_settings_cases_recording_and_roles() -> None:
    before = [_item("a", _call()), _item("b", _call()), _item("c", _call())]
    after = [
        _item(
            "a",
            _call(replayed=False),
            _call("verify", replayed=False),
            reps=5,
            thresholds={"min_accuracy": 0.8},
        ),
        _item(
            "d",
            _call(replayed=False),
            _call("verify", replayed=False),
            reps=5,
            thresholds={"min_accuracy": 0.8},
        ),
    ]
    assert [str(c) for c in what_changed(before, after)] == [
        "roles that made calls: +verify",
        "cases added: d",
        "cases removed: b, c",
        "repetitions per case 2 -> 5",
        "calls replayed -> live",
        "marker thresholds none -> min_accuracy=0.8",
    ]


def test_old_baselines_without_prompt_hashes_are_not_compared_on_prompts() -> None:
    before = [_item("a", _call(prompt=None))]  # type: ignore[arg-type]
    after = [_item("a", _call(prompt="sha256:x"))]
    assert what_changed(before, after) == ()


def test_changes_by_group_pairs_test_and_pattern() -> None:
    before = [_item("a", _call()), _item("a", _call(), pattern="parallel(n=5)")]
    after = [_item("a", _call(model="m2")), _item("a", _call(), pattern="hybrid(n=3)")]
    assert changes_by_group(before, after) == {
        ("t.py::t", "single"): (Change("model", "model of propose: m1 -> m2"),)
    }


# --- as users meet it: a gate that fails says what changed ------------------------------------

WORLD = {
    "entries": [{"id": "q", "match": "capital of testland", "answer": "Alpha", "wrong": ["Beta"]}]
}

MODULE = """
import os, anthropic, pytest
from pytest_agentpatterns import Task

URL = os.environ["SIM_URL"]
MODEL = os.environ["MODEL"]
PREFIX = os.environ.get("PREFIX", "")
CLIENT = anthropic.Anthropic(base_url=URL, api_key="sim-key", max_retries=0)

def ask(question):
    m = CLIENT.messages.create(model=MODEL, max_tokens=20,
                               messages=[{"role": "user", "content": PREFIX + question}])
    return m.content[0].text.strip()

capital = Task(name="capital", propose=ask)

@pytest.mark.agentpatterns(repeat=4)
@pytest.mark.parametrize("case", [f"c{i}" for i in range(8)])
def test_capital(agent, case):
    assert agent.run(capital, f"What is the capital of Testland? ({case})") == "Alpha"
"""


@pytest.fixture
def own_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    with Simulator(world=WORLD, seed=11, time_scale=0.0) as sim:
        monkeypatch.setenv("SIM_URL", sim.base_url)
        yield sim


def test_a_failed_gate_and_the_diff_say_the_model_and_the_prompt_changed(
    pytester: pytest.Pytester,
    own_sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytester.makepyfile(test_capital=MODULE)
    baseline = pytester.path / "baseline.json"
    monkeypatch.setenv("MODEL", "sim-perfect")
    pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--patterns-record=once",
        "--patterns-cassette-dir=before",
        f"--patterns-save={baseline}",
    ).assert_outcomes(passed=8)
    monkeypatch.setenv("MODEL", "sim-small")
    monkeypatch.setenv("PREFIX", "Answer in one word. ")
    report = pytester.path / "report.json"
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--patterns-record=once",
        "--patterns-cassette-dir=after",
        f"--patterns-baseline={baseline}",
        "--patterns-fail-on=accuracy:-0.05",
        f"--patterns-json={report}",
        "--patterns-html=report.html",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = result.stdout.str().replace("\n    ", " ").replace("\n      ", " ")
    assert "since the baseline: model of propose: sim-perfect -> sim-small" in text
    assert "prompt of propose changed in 8 of 8 cases (c0, c1, c2, c3, c4 and 3 more)" in text
    [gate] = json.loads(report.read_text())["gates"]
    assert gate["verdict"] == "fail"
    assert gate["changes"] == [
        "model of propose: sim-perfect -> sim-small",
        "prompt of propose changed in 8 of 8 cases (c0, c1, c2, c3, c4 and 3 more)",
    ]
    assert (
        "model of propose: sim-perfect -&gt; sim-small"
        in (pytester.path / "report.html").read_text()
    )
    # python -m pytest_agentpatterns diff names the same changes and the cases gone wrong,
    # each with what its first wrong repetition said.
    capsys.readouterr()
    monkeypatch.setenv("COLUMNS", "200")
    assert cli.main(["diff", str(baseline), str(report)]) == 0
    out = capsys.readouterr().out.splitlines()
    worse = [line.strip() for line in out if line.strip().startswith("worse ")]
    assert worse and all(" -> 0." in line for line in worse)
    first = out.index(next(line for line in out if line.strip().startswith("worse ")))
    assert out[first + 1].strip() == "now: AssertionError: assert 'Beta' == 'Alpha'"
    assert "    changed: model of propose: sim-perfect -> sim-small" in out
    assert (
        "    changed: prompt of propose changed in 8 of 8 cases (c0, c1, c2, c3, c4 and 3 more)"
        in out
    )
    # Its gates, like the run's, end a failure with what changed.
    assert cli.main(["diff", str(baseline), str(report), "--fail-on=accuracy:-0.05"]) == 1
    assert (
        "since the baseline: model of propose: sim-perfect -> sim-small" in capsys.readouterr().out
    )
    data = diffing.to_dict(
        diffing.diff_runs(cli.load_saved(baseline).items, cli.load_saved(report).items), "a", "b"
    )
    [pair] = data["pairs"]
    assert [c["kind"] for c in pair["changes"]] == ["model", "prompt"]
    assert all(
        c["evidence_after"] == "AssertionError: assert 'Beta' == 'Alpha'" for c in pair["cases"]
    )
