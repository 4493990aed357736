"""Pattern diagnostics: accuracy against ensemble size, escalation, loop iterations."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from pytest_agentpatterns import diagnostics
from pytest_agentpatterns.records import Address, CallRecord, ItemResult, Repetition
from pytest_agentpatterns.sim import Simulator

T = "t.py::test_q"


def _call(index: int, branch: tuple[str, ...], role: str, cost: float | None) -> CallRecord:
    return CallRecord(Address(index, branch, role, 0), "POST", "http://x/v1", 200, 0.1, cost=cost)


def _rep(
    index: int,
    correct: bool,
    data: dict[str, Any] | None,
    calls: tuple[CallRecord, ...] = (),
    verified: bool | None = None,
) -> Repetition:
    outcome = "correct" if correct else "incorrect"
    return Repetition(index, outcome, 0.1, calls=calls, verified=verified, diagnostics=data)


def _item(case: str, pattern: str, reps: tuple[Repetition, ...]) -> ItemResult:
    return ItemResult(f"{T}[{case}-{pattern}]", T, case, pattern, reps)


def test_ensemble_curve_is_the_case_mean_at_each_k_and_best_k_the_smallest_top() -> None:
    # Case a: k=1 right half the time, k=2 and k=3 always; case b: rises then falls.
    items = [
        _item(
            "a",
            "parallel(n=3)",
            (
                _rep(0, True, {"ensemble": [0.5, 1.0, 1.0]}),
                _rep(1, True, {"ensemble": [0.5, 1.0, 1.0]}),
            ),
        ),
        _item("b", "parallel(n=3)", (_rep(0, False, {"ensemble": [0.5, 1.0, 0.0]}),)),
        _item("a", "single", (_rep(0, True, None),)),
    ]
    d = diagnostics.analyse(items)
    assert d is not None and d.test == T and not d.escalations and not d.loops
    (e,) = d.ensembles
    assert e.pattern == "parallel(n=3)" and e.repetitions == 3 and not e.vote_only
    assert [p.x for p in e.points] == [1, 2, 3]
    assert [p.accuracy for p in e.points] == [0.5, 1.0, 0.5]  # cases weigh equally
    assert e.best == 2
    for p in e.points:
        assert p.interval is not None and p.interval.low <= p.accuracy <= p.interval.high
    data = diagnostics.as_dict(d)["ensembles"][0]
    assert data["best_k"] == 2 and data["points"][1]["k"] == 2
    assert json.loads(json.dumps(data)) == data


def test_escalation_rate_and_what_always_running_the_chain_would_cost() -> None:
    vote = tuple(_call(0, ("escalate", str(i)), "propose", 0.01) for i in range(3))
    chain = (_call(0, ("chain",), "step", 0.05), _call(0, ("chain",), "step", 0.05))
    reps = (
        _rep(0, True, {"ensemble": [1.0, 1.0, 1.0], "escalated": False}, vote),
        _rep(1, True, {"ensemble": [0.0, 0.0, 1.0], "escalated": True}, vote + chain),
        _rep(2, False, {"ensemble": [1.0, 1.0, 1.0], "escalated": False}, vote),
        _rep(3, True, {"ensemble": [1.0, 1.0, 1.0], "escalated": False}, vote),
    )
    d = diagnostics.analyse([_item("a", "escalate(n=3,threshold=0.67)", reps)])
    assert d is not None
    (e,) = d.escalations
    assert (e.repetitions, e.escalated, e.rate) == (4, 1, 0.25)
    assert e.calls == pytest.approx((3 * 3 + 5) / 4)
    assert e.calls_always == pytest.approx(5.0)  # every repetition: the vote and the chain
    assert e.cost == pytest.approx((0.03 * 4 + 0.10) / 4)
    assert e.cost_always == pytest.approx(0.13)
    assert e.saved == pytest.approx(1 - 0.055 / 0.13)
    assert d.ensembles[0].vote_only


def test_escalation_that_never_escalated_cannot_price_the_chain() -> None:
    reps = (_rep(0, True, {"escalated": False}, (_call(0, ("escalate", "0"), "propose", 0.01),)),)
    d = diagnostics.analyse([_item("a", "escalate(n=1,threshold=0.67)", reps)])
    assert d is not None
    (e,) = d.escalations
    assert e.rate == 0.0 and e.calls_always is None and e.saved is None


def test_loop_accuracy_and_pass_rate_after_each_iteration() -> None:
    loop = "loop(max_iters=3)"
    reps_a = (
        _rep(0, True, {"loop": {"iterations": 1, "passed": True, "accuracy": [1.0, 1.0, 1.0]}}),
        _rep(1, True, {"loop": {"iterations": 3, "passed": True, "accuracy": [0.0, 0.0, 1.0]}}),
    )
    reps_b = (
        _rep(0, False, {"loop": {"iterations": 3, "passed": False, "accuracy": [0.0, 0.0, 0.0]}}),
        _rep(1, True, {"loop": {"iterations": 2, "passed": True, "accuracy": [0.0, 1.0, 1.0]}}),
    )
    d = diagnostics.analyse([_item("a", loop, reps_a), _item("b", loop, reps_b)])
    assert d is not None
    (lp,) = d.loops
    assert lp.repetitions == 4
    assert lp.passed == (0.25, 0.5, 0.75)
    # Per iteration: case means (a: 1, 0.5; ...) averaged over the two cases.
    assert [p.accuracy for p in lp.points] == [0.25, 0.5, 0.75]
    out = diagnostics.as_dict(d)["loops"][0]
    assert [p["iteration"] for p in out["points"]] == [1, 2, 3]


def test_a_note_is_reported_once_per_pattern_and_nothing_without_diagnostics() -> None:
    note = {"note": "the test body makes calls outside agent.run"}
    items = [_item("a", "parallel(n=2)", (_rep(0, True, note), _rep(1, True, note)))]
    d = diagnostics.analyse(items)
    assert d is not None and d.notes == ("parallel(n=2): " + note["note"],)
    assert diagnostics.analyse([_item("a", "single", (_rep(0, True, None),))]) is None


@pytest.mark.parametrize(("n", "k"), [(3, 1), (3, 2), (5, 3), (12, 6), (16, 1)])
def test_subsets_are_every_combination_or_a_seeded_sample(n: int, k: int) -> None:
    chosen = diagnostics.subsets(n, k, seed=4)
    assert all(len(s) == k and len(set(s)) == k and max(s) < n for s in chosen)
    if math.comb(n, k) <= diagnostics.SUBSETS:
        assert len(set(chosen)) == math.comb(n, k)
    else:
        assert len(chosen) == diagnostics.SUBSETS
        assert chosen == diagnostics.subsets(n, k, seed=4)


# --- from a real run: record with the simulator, replay from the cassettes ---------------------

MODULE = """
import os, pytest, anthropic
from pytest_agentpatterns import Task

CLIENT = anthropic.Anthropic(base_url=os.environ["SIM_URL"], api_key="sim-key", max_retries=0)


@pytest.fixture(autouse=True, scope="module")
def close_client():
    yield
    CLIENT.close()  # no socket left for the garbage collector to warn about
Q = "What is the capital of Testland?"

def ask(model):
    def call(q, *rest):
        m = CLIENT.messages.create(
            model=model, max_tokens=20, messages=[{"role": "user", "content": q}]
        )
        return m.content[0].text.strip()
    return call

TASK = Task(
    name="capital",
    propose=ask("sim-small"),
    steps=[ask("sim-large")],
    verify=lambda q, out: out == "Alpha",
    refine=lambda q, out, feedback: ask("sim-small")(q),
)

@pytest.mark.agentpatterns(
    patterns="single,parallel(n=3),escalate(n=3,threshold=0.9),loop(max_iters=3)", repeat=3
)
@pytest.mark.parametrize("case", ["c1", "c2"])
def test_capital(agent, case):
    assert agent.run(TASK, Q) == "Alpha"
"""


def test_recorded_run_reports_diagnostics_and_replay_reproduces_them(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makepyfile(test_capital=MODULE)
    first, second = pytester.path / "first.json", pytester.path / "second.json"
    args = ("-p", "no:cacheprovider", "-p", "no:randomly")
    recorded = pytester.runpytest(*args, "--patterns-record=all", f"--patterns-json={first}")
    outcomes = recorded.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 8
    requests = sim_env.request_count
    pytester.runpytest(*args, "--patterns-record=none", f"--patterns-json={second}")
    assert sim_env.request_count == requests  # replay sends nothing
    report, again = json.loads(first.read_text()), json.loads(second.read_text())
    assert report["analysis"][0]["diagnostics"] == again["analysis"][0]["diagnostics"]
    assert [r["diagnostics"] for i in report["items"] for r in i["repetitions"]] == [
        r["diagnostics"] for i in again["items"] for r in i["repetitions"]
    ]
    (analysis,) = report["analysis"]
    d = analysis["diagnostics"]
    (escalate, parallel) = sorted(d["ensembles"], key=lambda e: e["pattern"])
    assert parallel["pattern"] == "parallel(n=3)" and escalate["vote_only"]
    assert [p["k"] for p in parallel["points"]] == [1, 2, 3]
    assert parallel["repetitions"] == 6
    # k = n is the pattern itself: its curve ends at the pattern's own accuracy.
    own = [
        rep["outcome"] == "correct"
        for item in report["items"]
        if item["pattern"] == "parallel(n=3)"
        for rep in item["repetitions"]
    ]
    assert parallel["points"][-1]["accuracy"] == pytest.approx(sum(own) / len(own))

    (esc,) = d["escalations"]
    assert esc["repetitions"] == 6 and 0 <= esc["escalated"] <= 6
    chains = sum(
        any(Address.parse(c["address"]).branch[:1] == ("chain",) for c in rep["calls"])
        for item in report["items"]
        if item["pattern"].startswith("escalate")
        for rep in item["repetitions"]
    )
    assert esc["escalated"] == chains
    (loop,) = d["loops"]
    assert len(loop["points"]) == 3 and loop["passed"] == sorted(loop["passed"])
    assert d["notes"] == []


def _suite() -> list[ItemResult]:
    """Two cases under single, parallel(n=3) and loop(max_iters=2), with diagnostics."""
    items = []
    for case in ("a", "b"):
        items.append(_item(case, "single", (_rep(0, True, None), _rep(1, False, None))))
        ensemble = {"ensemble": [0.5, 1.0, 0.5]}
        items.append(_item(case, "parallel(n=3)", (_rep(0, True, ensemble),) * 2))
        loop = {"loop": {"iterations": 2, "passed": True, "accuracy": [0.0, 1.0]}}
        items.append(_item(case, "loop(max_iters=2)", (_rep(0, True, loop, verified=True),) * 2))
    return items


def test_markdown_and_verbose_summary_carry_the_diagnostics_lines() -> None:
    from pytest_agentpatterns.analysis import analyse
    from pytest_agentpatterns.table import render_markdown, render_terminal

    (t,) = analyse(_suite())
    said = diagnostics.lines(t.diagnostics)
    assert said[0].startswith("parallel(n=3), accuracy by ensemble size: k=1 0.50 [")
    assert said[0].endswith("best k=2 (4 repetitions sub-sampled)")
    assert said[1].startswith("loop(max_iters=2), after each iteration: accuracy #1 0.00")
    assert said[1].endswith("verifier passed 0.00, 1.00")
    markdown = render_markdown([t], None, [])
    assert all(f"- {line}" in markdown for line in said)
    verbose = render_terminal([t], width=200, verbose=True)
    quiet = render_terminal([t], width=200, verbose=False)
    assert all(f"  {line}" in verbose for line in said)
    assert "by ensemble size" not in quiet


def test_html_report_draws_the_k_curve_and_the_loop() -> None:
    from pytest_agentpatterns.analysis import analyse
    from pytest_agentpatterns.html import render_html

    items = _suite()
    page = render_html(analyse(items), items)
    assert "parallel(n=3): accuracy vs ensemble size" in page
    assert "best k = 2" in page
    assert page.count('<g class="curve" data-series="accuracy">') == 1  # the loop's
    assert '<g class="curve" data-series="verifier passed">' in page
    assert "parallel(n=3) at 2: 1.000" in page  # the best k's point, with its value


def test_saved_diagnostics_are_read_back_and_checked() -> None:
    from pytest_agentpatterns.schema import SchemaError, check_run

    items = _suite()
    document = {
        "kind": "pytest-agentpatterns-report",
        "schema_version": 2,
        "items": [i.to_dict() for i in items],
    }
    read = [ItemResult.from_dict(i) for i in check_run(json.loads(json.dumps(document)))]
    assert diagnostics.analyse(read) == diagnostics.analyse(items)
    document["items"][1]["repetitions"][0]["diagnostics"] = {"ensemble": ["most"]}
    with pytest.raises(SchemaError, match=r"items\[1\]\.repetitions\[0\]\.diagnostics\.ensemble"):
        check_run(document)


def test_a_body_running_agent_run_twice_gets_a_note_not_silence(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_twice="""
        import pytest
        from pytest_agentpatterns import Task

        t = Task(name="t", propose=lambda x: x)

        @pytest.mark.agentpatterns(patterns="parallel(n=3)", repeat=2)
        @pytest.mark.parametrize("c", range(3))
        def test_once(agent, c):
            assert agent.run(t, "a") == "a"

        @pytest.mark.agentpatterns(patterns="parallel(n=3)", repeat=2)
        @pytest.mark.parametrize("c", range(3))
        def test_twice(agent, c):
            assert agent.run(t, "a") + agent.run(t, "b") == "ab"
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--patterns-json=run.json")
    result.assert_outcomes(passed=6)
    report = json.loads((pytester.path / "run.json").read_text())
    found = {a["test"].split("::")[1]: a["diagnostics"] for a in report["analysis"]}
    assert found["test_once"]["ensembles"] and not found["test_once"]["notes"]
    assert found["test_twice"]["notes"] == [
        "parallel(n=3): the test body does not run agent.run exactly once"
    ]
