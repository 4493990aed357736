"""Adaptive runs under pytest: rounds per test, fixtures, cassettes, replay, xdist."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_agentpatterns import adaptive, rounds, savings
from pytest_agentpatterns.patterns import builtin_registry
from pytest_agentpatterns.records import Address, CallRecord, ItemResult, Repetition
from pytest_agentpatterns.scheduling import scope
from pytest_agentpatterns.sim import Simulator

MODULE = """
import os, pytest, anthropic
from pathlib import Path
from pytest_agentpatterns import Task

CLIENT = anthropic.Anthropic(base_url=os.environ["SIM_URL"], api_key="sim-key", max_retries=0)
LOG = Path(__file__).with_name("fixtures.log")


@pytest.fixture(autouse=True, scope="module")
def module_fixture():
    with LOG.open("a") as log:
        log.write("module setup\\n")
    yield
    CLIENT.close()
    with LOG.open("a") as log:
        log.write("module teardown\\n")


@pytest.fixture
def function_fixture(request):
    with LOG.open("a") as log:
        log.write(f"setup {request.node.name}\\n")
    yield
    with LOG.open("a") as log:
        log.write(f"teardown {request.node.name}\\n")


def ask(q):
    m = CLIENT.messages.create(
        model="sim-small", max_tokens=20, messages=[{"role": "user", "content": q}]
    )
    return m.content[0].text.strip()


def known(q):
    ask(q)
    return "Alpha"  # always right, under every pattern


@pytest.mark.agentpatterns(patterns="single,parallel(n=3)", repeat="auto", max_repeat=6)
@pytest.mark.parametrize("case", ["c1", "c2", "c3", "easy"])
def test_capital(agent, case, function_fixture):
    task = Task(name="capital", propose=known if case == "easy" else ask)
    assert agent.run(task, "What is the capital of Testland?") == "Alpha"
"""

AFTER = """
def test_after():
    pass
"""


def _items(report: Path) -> dict[str, dict]:
    return {i["nodeid"]: i for i in json.loads(report.read_text())["items"]}


def _unflagged(report: Path) -> str:
    """The report without the calls' ``replayed`` flags (true only in the replay)."""
    return report.read_text().replace('"replayed": true', '"replayed": false')


def test_an_adaptive_test_runs_in_rounds_and_replays_them_exactly(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makepyfile(test_capital=MODULE, test_later=AFTER)
    recorded = pytester.path / "recorded.json"
    before = sim_env.request_count
    result = pytester.runpytest("-p", "no:randomly", f"--patterns-json={recorded}")
    result.assert_outcomes(passed=9)
    items = _items(recorded)
    assert len(items) == 8
    live = sim_env.request_count - before
    for nodeid, item in items.items():
        info = item["adaptive"]
        assert info["max_repeat"] == 6
        assert sum(info["rounds"]) == len(item["repetitions"]) <= 6
        assert [r["index"] for r in item["repetitions"]] == list(range(len(item["repetitions"])))
        cassette = pytester.path / "cassettes" / "test_capital" / f"{nodeid.split('::')[1]}.json"
        if "easy" in nodeid:
            # Right every time under both patterns: no round once it is settled.
            settled = adaptive.settled_after(adaptive.Settings.for_max(6, 0.05))
            assert sum(info["rounds"][:-1]) < settled
        else:
            assert json.loads(cassette.read_text())["metadata"]["rounds"] == info["rounds"]
    assert {json.dumps(i["adaptive"]["stop"]) for i in items.values()} == {
        json.dumps(next(iter(items.values()))["adaptive"]["stop"])
    }  # one decision for the whole test
    calls = sum(len(r["calls"]) for i in items.values() for r in i["repetitions"])
    assert calls == live

    # Each item is reported once; fixtures are set up and torn down once per run of an
    # item, the module's once, and the next module's test still runs.
    log = (pytester.path / "fixtures.log").read_text().splitlines()
    assert log.count("module setup") == log.count("module teardown") == 1
    runs = sum(len(i["adaptive"]["rounds"]) for i in items.values())
    assert sum(1 for line in log if line.startswith("setup ")) == runs
    assert sum(1 for line in log if line.startswith("teardown ")) == runs
    assert log[-1] == "module teardown"
    result.stdout.fnmatch_lines(["*adaptive: stopped after * look*; * of 48 repetitions*"])

    replayed = pytester.path / "replayed.json"
    pytester.runpytest(
        "-p", "no:randomly", "--patterns-record=none", f"--patterns-json={replayed}"
    ).assert_outcomes(passed=9)
    assert sim_env.request_count - before == live  # nothing went out
    assert _unflagged(replayed) == _unflagged(recorded)  # latency, cost, verdicts: all alike
    spread = pytester.path / "spread.json"
    pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "--patterns-record=none",
        f"--patterns-json={spread}",
        "-n",
        "2",
        "--patterns-adaptive",  # keeps each test's items on one worker
    ).assert_outcomes(passed=9)
    assert sim_env.request_count - before == live
    assert replayed.read_bytes() == spread.read_bytes()
    again = pytester.path / "again.json"
    pytester.runpytest(
        "-p", "no:randomly", "--patterns-record=none", f"--patterns-json={again}"
    ).assert_outcomes(passed=9)
    assert again.read_bytes() == replayed.read_bytes()


def test_rewrite_records_every_round_in_the_cassette(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makepyfile(test_capital=MODULE)
    first = pytester.path / "first.json"
    pytester.runpytest(f"--patterns-json={first}").assert_outcomes(passed=8)
    rewritten = pytester.path / "rewritten.json"
    pytester.runpytest("--patterns-record=rewrite", f"--patterns-json={rewritten}")
    # The later rounds add to the cassette the first round rewrote: all replay.
    before = sim_env.request_count
    replayed = pytester.path / "replayed.json"
    pytester.runpytest("--patterns-record=none", f"--patterns-json={replayed}").assert_outcomes(
        passed=8
    )
    assert sim_env.request_count == before
    assert {k: len(v["repetitions"]) for k, v in _items(replayed).items()} == {
        k: len(v["repetitions"]) for k, v in _items(rewritten).items()
    }


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        (
            "repeat='sometimes'",
            "*repeat='sometimes'* is not allowed: use an integer from 1 to "
            "10000, or 'auto' (adaptive)",
        ),
        ("repeat='auto', max_repeat=1", "*max_repeat=1* is not allowed: use an integer from 2*"),
        ("repeat='auto', precision=2", "*precision=2* is not allowed: use a number in (0, 1)*"),
    ],
)
def test_bad_adaptive_marker_keywords_are_refused(
    pytester: pytest.Pytester, keywords: str, message: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.agentpatterns({keywords})
        def test_x(agent):
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_bad_precision_option_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--patterns-precision=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--patterns-precision*'0' is not allowed: use a number in (0, 1)*"]
    )


def test_xdist_keeps_a_tests_pattern_items_together_and_scatters_the_rest() -> None:
    registry = builtin_registry()
    assert scope("t.py::test_a[c1-single]", registry) == "t.py::test_a"
    assert scope("t.py::test_a[case-with-dashes-parallel(n=3)]", registry) == "t.py::test_a"
    assert scope("t.py::test_b[1-2]", registry) == "t.py::test_b[1-2]"
    assert scope("t.py::test_c", registry) == "t.py::test_c"


def _rep(index: int, calls: int, cost: float) -> Repetition:
    return Repetition(
        index=index,
        outcome="correct",
        latency=0.1,
        calls=tuple(
            CallRecord(
                Address.parse(f"r{index}/main/propose#{k}"),
                "POST",
                "http://127.0.0.1/v1/messages",
                200,
                0.1,
                cost=cost,
            )
            for k in range(calls)
        ),
    )


def test_savings_price_the_repetitions_not_made_at_each_items_own_rate() -> None:
    info = {"rounds": [2], "max_repeat": 10, "looks": 2, "stop": "decided", "levels": {}}
    cheap = ItemResult(
        "t::a[c1-single]", "t::a", "c1", "single", (_rep(0, 1, 0.01), _rep(1, 1, 0.01))
    )
    dear = ItemResult("t::a[c1-p]", "t::a", "c1", "p", tuple(_rep(i, 3, 0.01) for i in range(4)))
    s = savings.of(
        [
            ItemResult(**{**vars(cheap), "adaptive": info}),
            ItemResult(**{**vars(dear), "adaptive": info}),
        ]
    )
    assert s is not None
    assert (s.repetitions, s.fixed_repetitions) == (6, 20)
    assert (s.calls, s.fixed_calls, s.saved_calls) == (14, 40, 26)
    assert s.cost == pytest.approx(0.14) and s.fixed_cost == pytest.approx(0.40)
    assert s.reason == "every comparison decided"
    assert savings.of([cheap, dear]) is None  # a fixed run


def test_adaptive_runs_refuse_an_xdist_schedule_that_splits_a_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--patterns-adaptive", "-n", "1", "--dist", "worksteal")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--patterns-adaptive with --dist worksteal: *use --dist load (the default), loadscope*"]
    )


SHARED = """
import os, pytest, anthropic
from pytest_agentpatterns import Task

CLIENT = anthropic.Anthropic(base_url=os.environ["SIM_URL"], api_key="sim-key", max_retries=0)


@pytest.fixture(scope="session", autouse=True)
def close_client():
    yield
    CLIENT.close()


def ask(q):
    m = CLIENT.messages.create(
        model="sim-fast", max_tokens=20, messages=[{"role": "user", "content": q}]
    )
    return m.content[0].text.strip()


@pytest.mark.agentpatterns(patterns="single,parallel(n=2)", repeat="auto", max_repeat=10)
@pytest.mark.parametrize("case", ["c1", "c2", "c3"])
def test_a(agent, case):
    assert agent.run(Task(name="t", propose=ask), "What is the capital of Testland?") == "Alpha"


@pytest.mark.agentpatterns(patterns="single,parallel(n=2)", repeat="auto", max_repeat=10)
@pytest.mark.parametrize("case", ["c1", "c2", "c3"])
def test_b(agent, case):
    assert agent.run(Task(name="t", propose=ask), "What is the capital of Testland?") == "Alpha"
"""

# Every call costs its input tokens in dollars, so every call costs the same.
PRICES = "[pytest]\nagentpatterns_prices =\n    sim-fast = input:1000000 output:0\n"


def test_an_adaptive_test_stops_when_its_share_of_the_budget_is_spent(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makeini(PRICES)
    pytester.makepyfile(test_shared=SHARED)
    probe = pytester.path / "probe.json"
    pytester.runpytest("-p", "no:randomly", "--patterns-record=all", f"--patterns-json={probe}")
    call = next(
        c["cost"]
        for i in json.loads(probe.read_text())["items"]
        for r in i["repetitions"]
        for c in r["calls"]
    )
    # Each test's first round: 3 cases x 2 repetitions x (1 + 2 calls) = 18 calls; a share of
    # 19 calls lets it run a second round and no third.
    budget = 2 * 19 * call
    report = pytester.path / "r.json"
    pytester.runpytest(
        "-p",
        "no:randomly",
        "--patterns-record=all",
        f"--patterns-budget={budget}",
        f"--patterns-json={report}",
    )
    items = [i for i in json.loads(report.read_text())["items"] if "test_a" in i["test"]]
    assert all(i["stopped"] is None for i in items)  # not the session's budget: the share
    assert {i["adaptive"]["stop"] for i in items} == {"budget"}
    assert {i["adaptive"]["looks"] for i in items} == {2}

    def spent(rounds: int) -> float:
        return sum(
            c["cost"]
            for i in items
            for r in i["repetitions"][: sum(i["adaptive"]["rounds"][:rounds])]
            for c in r["calls"]
        )

    assert spent(1) < budget / 2 <= spent(2)


def test_a_comparison_is_reported_at_the_last_look_that_added_information() -> None:
    settings = adaptive.Settings.for_max(6, 0.05)
    data = {"base": {"c1": [1.0, 0.0], "c2": [0.0, 1.0]}, "a": {"c1": [1.0, 1.0], "c2": [0.0, 1.0]}}
    first = adaptive.decide(data, "base", [], settings)
    spent = replace(first, comparisons=tuple(replace(c, level=0.0) for c in first.comparisons))
    group = rounds.Group("t", [], settings, "base", decisions=[first, spent])
    # The second look added nothing (level 0, no verdict possible there): the first's level.
    assert group.summary_levels() == adaptive.final_levels(first)
    assert all(level > 0 for level in group.summary_levels().values())


def test_a_marker_adaptive_test_under_xdist_load_needs_the_option_or_a_scope_dist(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makepyfile(test_capital=MODULE)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*test_capital.py::test_capital runs adaptively (repeat='auto'), and --dist load can "
            "split its items between workers: run with --patterns-adaptive*"
        ]
    )
    pytester.runpytest_subprocess(
        "-p", "no:randomly", "-n", "1", "--dist", "loadscope"
    ).assert_outcomes(passed=8)


def test_an_adaptive_test_without_calls_decides_anew_every_run(
    pytester: pytest.Pytester,
) -> None:
    """No call, no cassette: the rounds are not kept, so the next run does not replay a
    schedule for outcomes it computes afresh (it used to: "where the recording stopped")."""
    pytester.makepyfile(
        test_auto="""
        import random, pytest
        from pytest_agentpatterns import Task

        t = Task(name="t", propose=lambda x: x if random.random() < 0.7 else "wrong")

        @pytest.mark.agentpatterns(patterns="single,parallel(n=3)", repeat="auto", max_repeat=6)
        @pytest.mark.parametrize("x", ["a", "b", "c", "d"])
        def test_auto(agent, x):
            assert agent.run(t, x) == x
        """
    )
    for _ in range(2):
        result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
        assert result.ret in (0, 1)
        assert "where the recording stopped" not in result.stdout.str()
    assert not (pytester.path / "cassettes").exists()
