"""The plugin as users run it: inline test modules run with pytester."""

from __future__ import annotations

import json

import pytest

TASK = """
import asyncio, threading
import pytest
from pytest_agentpatterns import Task, Verdict
"""


# Inline modules whose bodies assert the behaviour under test: an incorrect repetition must
# fail the item (without a threshold, an AssertionError only counts as an incorrect answer).
STRICT = TASK + "pytestmark = pytest.mark.agentpatterns(min_accuracy=1.0)\n"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=none", *args)


def report(pytester: pytest.Pytester, *args: str) -> dict:  # type: ignore[type-arg]
    path = pytester.path / "report.json"
    run(pytester, f"--patterns-json={path}", *args)
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_all_patterns_make_one_item_per_case_and_pattern(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        STRICT
        + """
t = Task(name="t", propose=lambda x: x.upper(), steps=[lambda x, p: x.upper()],
         verify=lambda x, o: True, refine=lambda x, o, f: o)

@pytest.mark.parametrize("word", ["a", "b"])
def test_upper(agent, word):
    assert agent.run(t, word) == word.upper()
"""
    )
    result = run(pytester, "--patterns=all", "-v")
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(
        [
            "*test_upper[[]a-single[]] PASSED*",
            "*test_upper[[]a-parallel(n=5)[]] PASSED*",
            "*test_upper[[]b-escalate(n=3,threshold=0.67)[]] PASSED*",
            "*test_upper[[]b-loop(max_iters=3)[]] PASSED*",
        ]
    )
    run(pytester, "--patterns=all", "-k", "parallel").assert_outcomes(passed=2)


def test_default_is_single_then_marker_then_cli(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        STRICT
        + """
t = Task(name="t", propose=lambda x: x, steps=[lambda x, prev: x])

def test_plain(agent):
    assert agent.run(t, 1) == 1

@pytest.mark.agentpatterns(patterns="sequential,parallel(n=2)")
def test_marked(agent):
    assert agent.run(t, 1) == 1
"""
    )
    result = run(pytester, "-v")
    result.stdout.fnmatch_lines(
        [
            "*test_plain[[]single[]]*",
            "*test_marked[[]sequential[]]*",
            "*test_marked[[]parallel(n=2)[]]*",
        ]
    )
    result.assert_outcomes(passed=3)
    run(pytester, "--patterns=hybrid(n=2)", "-rs").stdout.fnmatch_lines(
        ["SKIPPED [[]2[]]*pattern hybrid(n=2) needs role verify, which task 't' does not define"]
    )


def test_ini_patterns_and_repeat(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nagentpatterns_patterns = single,parallel(n=3)\nagentpatterns_repeat = 4\n"
    )
    pytester.makepyfile(
        TASK + "t = Task(name='t', propose=lambda x: x)\ndef test_x(agent):\n    agent.run(t, 1)\n"
    )
    data = report(pytester)
    assert sorted(i["pattern"] for i in data["items"]) == ["parallel(n=3)", "single"]
    assert {len(i["repetitions"]) for i in data["items"]} == {4}


def test_sequential_chain_feeds_each_step(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        STRICT
        + """
async def extract(x, prev):
    assert prev is None
    return x + ":e"
def decide(x, prev):
    return prev + ":d"
t = Task(name="t", propose=lambda x: "p", steps=[extract, decide])

@pytest.mark.agentpatterns(patterns="single,sequential")
def test_chain(agent):
    out = agent.run(t, "in")
    assert out == ("p" if agent.pattern_id == "single" else "in:e:d")
"""
    )
    run(pytester).assert_outcomes(passed=2)


def test_parallel_branches_really_run_at_once_threads(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        STRICT
        + """
barrier = threading.Barrier(6, timeout=10)
def propose(x):
    barrier.wait()  # opens only when all six branches are inside at once
    return x
t = Task(name="t", propose=propose)

@pytest.mark.agentpatterns(patterns="parallel(n=6)", repeat=3)
def test_fanout(agent):
    assert agent.run(t, 7) == 7
"""
    )
    run(pytester).assert_outcomes(passed=1)


def test_parallel_branches_really_run_at_once_asyncio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        STRICT
        + """
barrier = None
async def propose(x):
    global barrier
    if barrier is None:
        barrier = asyncio.Barrier(4)
    await asyncio.wait_for(barrier.wait(), 10)
    return x
t = Task(name="t", propose=propose)

@pytest.mark.agentpatterns(patterns="hybrid(n=4)")
def test_fanout(agent):
    global barrier
    barrier = None
    t2 = Task(name="t", propose=propose, verify=lambda x, o: True)
    assert agent.run(t2, 7) == 7
"""
    )
    run(pytester).assert_outcomes(passed=1)


def test_max_concurrency_bounds_branches(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        STRICT
        + """
lock = threading.Lock()
inside = 0
peak = 0
barrier = threading.Barrier(2, timeout=10)
def propose(x):
    global inside, peak
    with lock:
        inside += 1
        peak = max(peak, inside)
    barrier.wait()  # pairs get through: two at once is reachable
    with lock:
        inside -= 1
    return x
t = Task(name="t", propose=propose)

@pytest.mark.agentpatterns(patterns="parallel(n=6)")
def test_bounded(agent):
    assert agent.run(t, 1) == 1
    assert peak == 2
"""
    )
    run(pytester, "--patterns-max-concurrency=2").assert_outcomes(passed=1)


def test_aggregators(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        STRICT
        + """
import itertools
def make(agg, verify=None):
    answers = itertools.cycle(["b", "a", "a", "c", "c"])
    lock = threading.Lock()
    def propose(x):
        with lock:
            return next(answers)
    return Task(name="t", propose=propose, aggregate=agg, verify=verify)

@pytest.mark.agentpatterns(patterns="parallel(n=5)", max_cost=1)
@pytest.mark.parametrize("agg,expected", [
    ("majority", "a"), ("first", None), ("best", "c"), (sorted, ["a", "a", "b", "c", "c"]),
], ids=["majority", "first", "best", "callable"])
def test_agg(agent, agg, expected):
    t = make(agg, verify=lambda x, o: 0.9 if o == "c" else 0.1)
    out = agent.run(t, 0)
    if expected is None:
        assert out in {"a", "b", "c"}
    else:
        assert out == expected
"""
    )
    run(pytester).assert_outcomes(passed=4)


def test_hybrid_verifies_in_vote_order_and_marks_unverified(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        STRICT
        + """
import itertools
seen = []
def make(accept):
    answers = itertools.cycle(["a", "b", "b"])
    lock = threading.Lock()
    def propose(x):
        with lock:
            return next(answers)
    def verify(x, o):
        seen.append(o)
        return o in accept
    return Task(name="t", propose=propose, verify=verify)

@pytest.mark.agentpatterns(patterns="hybrid(n=3)")
def test_first_ranked_passes(agent):
    seen.clear()
    assert agent.run(make({"b"}), 0) == "b"
    assert seen == ["b"] and agent.verified is True

@pytest.mark.agentpatterns(patterns="hybrid(n=3)")
def test_second_ranked_passes(agent):
    seen.clear()
    assert agent.run(make({"a"}), 0) == "a"
    assert seen == ["b", "a"] and agent.verified is True

@pytest.mark.agentpatterns(patterns="hybrid(n=3)")
def test_none_passes(agent):
    seen.clear()
    assert agent.run(make(set()), 0) == "b"
    assert seen == ["b", "a"] and agent.verified is False
"""
    )
    run(pytester).assert_outcomes(passed=3)


def test_escalate_runs_chain_only_below_threshold(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        STRICT
        + """
import itertools
def make(answers):
    it = itertools.cycle(answers)
    lock = threading.Lock()
    def propose(x):
        with lock:
            return next(it)
    return Task(name="t", propose=propose, steps=[lambda x, p: "chain"])

@pytest.mark.agentpatterns(patterns="escalate(n=3,threshold=0.67)")
def test_agree(agent):
    assert agent.run(make(["a", "a", "b"]), 0) == "a"

@pytest.mark.agentpatterns(patterns="escalate(n=3,threshold=0.67)")
def test_disagree(agent):
    assert agent.run(make(["a", "b", "c"]), 0) == "chain"
"""
    )
    run(pytester).assert_outcomes(passed=2)


def test_loop_refines_until_verify_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        STRICT
        + """
calls = []
def propose(x):
    calls.append("propose"); return 0
def verify(x, o):
    calls.append(f"verify {o}")
    return Verdict(ok=o >= 2, feedback=f"too small: {o}")
async def refine(x, o, fb):
    calls.append(f"refine {fb}"); return o + 1
t = Task(name="t", propose=propose, verify=verify, refine=refine)

@pytest.mark.agentpatterns(patterns="loop(max_iters=3)")
def test_passes_on_third(agent):
    calls.clear()
    assert agent.run(t, 0) == 2
    assert calls == ["propose", "verify 0", "refine too small: 0", "verify 1",
                     "refine too small: 1", "verify 2"]
    assert agent.verified is True

@pytest.mark.agentpatterns(patterns="loop(max_iters=2)")
def test_gives_up(agent):
    assert agent.run(t, 0) == 1
    assert agent.verified is False
"""
    )
    run(pytester).assert_outcomes(passed=2)


def test_repetition_outcomes_and_error_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        TASK
        + """
t = Task(name="t", propose=lambda x: x)

@pytest.mark.agentpatterns(repeat=4)
def test_mixed(agent):
    i = agent.repetition
    if i == 0:
        raise KeyError("boom in repetition zero")
    assert agent.run(t, i) == 1
"""
    )
    path = pytester.path / "r.json"
    # -rN: no short summary, which repeats the whole message when CI is set.
    result = run(pytester, f"--patterns-json={path}", "-rN")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]single[]] 1 of 4 repetitions raised an error*",
            "*KeyError: 'boom in repetition zero'*",
        ]
    )
    # The one traceback: its raise line and its KeyError line, nothing repeated.
    assert result.stdout.str().count("boom in repetition zero") == 2
    reps = json.loads(path.read_text())["items"][0]["repetitions"]
    assert [r["outcome"] for r in reps] == ["error", "correct", "incorrect", "incorrect"]


def test_min_accuracy_fails_item_with_numbers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        TASK
        + """
t = Task(name="t", propose=lambda x: x)

@pytest.mark.agentpatterns(repeat=5, min_accuracy=0.8)
def test_flaky(agent):
    assert agent.run(t, agent.repetition) < 3

@pytest.mark.agentpatterns(repeat=5, min_accuracy=0.6)
def test_enough(agent):
    assert agent.run(t, agent.repetition) < 3
"""
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*accuracy 0.600 over 5 repetitions is below min_accuracy=0.8*"])


def test_graded_scores_and_max_latency(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        TASK
        + """
t = Task(name="t", propose=lambda x: x)

@pytest.mark.agentpatterns(repeat=2, min_accuracy=0.5)
def test_scored(agent):
    agent.run(t, 1)
    agent.score(0.25 if agent.repetition == 0 else 0.75)

@pytest.mark.agentpatterns(max_latency=0)
def test_too_slow(agent):
    import time
    agent.run(Task(name="slow", propose=lambda x: time.sleep(0.01)), 1)

def test_bad_score(agent):
    agent.score(1.5)
"""
    )
    path = pytester.path / "r.json"
    result = run(pytester, f"--patterns-json={path}")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*latency p95 0.0*s is above max_latency=0s*"])
    result.stdout.fnmatch_lines(["*agent.score() takes a number in [[]0, 1[]], got 1.5*"])
    items = {i["nodeid"].split("::")[1]: i for i in json.loads(path.read_text())["items"]}
    scored = items["test_scored[single]"]["repetitions"]
    assert [(r["outcome"], r["score"]) for r in scored] == [("scored", 0.25), ("scored", 0.75)]


def test_max_cost_unknown_is_not_silently_passed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        TASK
        + """
t = Task(name="t", propose=lambda x: x)

@pytest.mark.agentpatterns(max_cost=0.5)
def test_free(agent):
    agent.run(t, 1)
"""
    )
    # No calls at all: cost is known to be zero, within the limit.
    run(pytester).assert_outcomes(passed=1)


def test_missing_role_skips_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        TASK
        + """
t = Task(name="triage", propose=lambda x: x)
def test_x(agent):
    agent.run(t, 1)
"""
    )
    result = run(pytester, "--patterns=hybrid,loop,single", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*pattern hybrid(n=3) needs role verify, which task 'triage' does not define*",
            "*pattern loop(max_iters=3) needs role verify and refine*",
        ]
    )


def test_summary_table_and_json_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        TASK
        + """
t = Task(name="t", propose=lambda x: x)
@pytest.mark.agentpatterns(repeat=3)
@pytest.mark.parametrize("x", [1, 2])
def test_x(agent, x):
    assert agent.run(t, x) == 1
"""
    )
    path = pytester.path / "r.json"
    result = run(pytester, "--patterns=single,parallel(n=2)", f"--patterns-json={path}")
    result.stdout.fnmatch_lines(
        [
            "*agentpatterns summary*",
            "*test_x (2 cases, baseline single)",
            "  pattern*n*accuracy [[]95% CI[]]*p50 s*$/run*marks",
            "  single*6*0.500 [[]*[]]*",
            "  parallel(2)*6*0.500 [[]*[]]*",
            "    vs single: too few cases +0.000",
        ]
    )
    data = json.loads(path.read_text())
    assert data["schema_version"] == 2
    assert [(s["pattern"], s["n"], s["accuracy"]) for s in data["summary"]] == [
        ("single", 6, 0.5),
        ("parallel(n=2)", 6, 0.5),
    ]
    assert sorted({i["case"] for i in data["items"]}) == ["1", "2"]


def test_custom_pattern_and_aggregator_through_hook(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
from pytest_agentpatterns.patterns import Param

async def best_of(flow):
    outs = await flow.fork("best_of", int(flow.params["k"]), lambda i: flow.propose())
    return await flow.aggregate(outs)

def pytest_agentpatterns_register(registry):
    registry.add_pattern("best_of", best_of, params={"k": Param(int, 2, 1)})
    registry.add_aggregator("longest", lambda outs: max(outs, key=len))
"""
    )
    pytester.makepyfile(
        STRICT
        + """
import itertools
it = itertools.cycle(["a", "bbb", "cc"])
lock = threading.Lock()
def propose(x):
    with lock:
        return next(it)
t = Task(name="t", propose=propose, aggregate="longest")
def test_x(agent):
    assert agent.run(t, 0) == "bbb"
"""
    )
    path = pytester.path / "r.json"
    result = run(pytester, "--patterns=best_of(k=3)", "-v", f"--patterns-json={path}")
    result.stdout.fnmatch_lines(["*test_x[[]best_of(k=3)[]] PASSED*"])
    result.assert_outcomes(passed=1)
    run(pytester, "--patterns=best_of(k=0)").stderr.fnmatch_lines(
        ["*best_of(k=0) is not allowed: k must be an integer >= 1*"]
    )


def test_help_lists_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "run LLM tasks under orchestration patterns:",
            "*--patterns=SPEC[[],SPEC[]]*",
            "*--patterns-repeat=N*",
        ]
    )


def test_async_test_body_uses_arun(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        STRICT
        + """
async def propose(x):
    await asyncio.sleep(0)
    return x * 2
t = Task(name="t", propose=propose)

@pytest.mark.agentpatterns(patterns="parallel(n=3)", repeat=2)
async def test_async(agent):
    assert await agent.arun(t, 2) == 4
    assert agent.run(t, 3) == 6  # the sync API also works inside a running loop
"""
    )
    run(pytester).assert_outcomes(passed=1)


def test_a_test_functions_parameters_are_its_signatures() -> None:
    import functools
    import inspect

    from pytest_agentpatterns.plugin import _parameters

    def plain(agent, case, flag=1, *args, only, other=2, **extra):  # type: ignore[no-untyped-def]
        local = [agent, case]
        return local

    async def coroutine(agent, sim):  # type: ignore[no-untyped-def]
        pass

    @functools.wraps(plain)
    def wrapped(*args, **kwargs):  # type: ignore[no-untyped-def]
        pass

    class Tests:
        def method(self, agent):  # type: ignore[no-untyped-def]
            pass

    for function in (plain, coroutine, wrapped, Tests().method, functools.partial(plain, 1)):
        assert set(_parameters(function)) == set(inspect.signature(function).parameters)
