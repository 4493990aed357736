"""Under pytest-xdist: identical results whatever the distribution, one summary, one budget."""

from __future__ import annotations

import json

import pytest

from pytest_agentpatterns.sim import Simulator

pytest.importorskip("xdist")

MODULE = """
import os, pytest, anthropic
from pytest_agentpatterns import Task

CLIENT = anthropic.Anthropic(base_url=os.environ["SIM_URL"], api_key="sim-key", max_retries=0)

@pytest.fixture(scope="session", autouse=True)
def close_client():
    yield
    CLIENT.close()

def ask(q):
    m = CLIENT.messages.create(model="sim-fast", max_tokens=20,
                               messages=[{"role": "user", "content": q}])
    return m.content[0].text.strip()

t = Task(name="capital", propose=ask, verify=lambda q, o: o == "Alpha")

@pytest.mark.agentpatterns(patterns="single,parallel(n=3),hybrid(n=2)", repeat=3)
@pytest.mark.parametrize("case", [f"c{i}" for i in range(4)])
def test_capital(agent, case):
    assert agent.run(t, f"{case}: what is the capital of Testland?") == "Alpha"

@pytest.mark.xdist_group("g")
def test_other_module_item(agent):
    assert agent.run(t, "What is the capital of Testland?") in {"Alpha", "Beta"}
"""


@pytest.fixture
def recorded(pytester: pytest.Pytester, sim_env: Simulator) -> pytest.Pytester:
    """The module, recorded once against the simulator under xdist (-n 2)."""
    pytester.makepyfile(MODULE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--patterns-record=once"
    )
    result.assert_outcomes(passed=13)
    return pytester


def test_reports_identical_with_and_without_xdist(recorded: pytest.Pytester) -> None:
    pytester = recorded
    interactions = sum(
        len(json.loads(p.read_text())["interactions"])
        for p in (pytester.path / "cassettes").rglob("*.json")
    )
    # 4 cases x 3 repetitions x (1 + 3 + 2 candidates + verify calls: none make calls) + 1x1.
    assert interactions == 4 * 3 * (1 + 3 + 2) + 1  # nothing lost while recording under -n 2
    baseline = pytester.path / "baseline.json"
    runs = {
        "n0": ["-p", "no:xdist"],
        "load": ["-n", "2", "--dist", "load"],
        "loadscope": ["-n", "2", "--dist", "loadscope"],
        "loadgroup": ["-n", "2", "--dist", "loadgroup"],
        "worksteal": ["-n", "2", "--dist", "worksteal"],
        "tx": ["--tx", "2*popen", "--dist", "load"],
    }
    reports = {}
    for name, args in runs.items():
        path = pytester.path / f"{name}.json"
        extra = (
            [f"--patterns-save={baseline}"]
            if name == "n0"
            else [f"--patterns-baseline={baseline}", "--patterns-fail-on=accuracy:-0.05,calls:+0%"]
        )
        result = pytester.runpytest_subprocess(
            "-p",
            "no:cacheprovider",
            "--patterns-record=none",
            f"--patterns-json={path}",
            *args,
            *extra,
        )
        result.assert_outcomes(passed=13)
        assert result.stdout.str().count("agentpatterns summary") == 1
        data = json.loads(path.read_text())
        data.pop("gates")
        data.pop("gate_run")  # only the runs after the first have a baseline to gate against
        reports[name] = json.dumps(data, sort_keys=True)
        if name != "n0":
            result.stdout.fnmatch_lines(["gates against the baseline run: 0 failed, *"])
    assert len(set(reports.values())) == 1


def test_budget_is_one_budget_across_workers(pytester: pytest.Pytester, sim_env: Simulator) -> None:
    # Every call costs exactly its input tokens in dollars, so the budget counts calls.
    pytester.makeini("[pytest]\nagentpatterns_prices =\n    sim-fast = input:1000000 output:0\n")
    pytester.makepyfile(
        MODULE.split("t = Task")[0]
        + """
@pytest.mark.parametrize("case", range(10))
def test_one_call(agent, case):
    agent.run(Task(name="t", propose=ask), "What is the capital of Testland?")
"""
    )
    probe = pytester.path / "probe.json"
    pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--patterns-record=all",
        f"--patterns-json={probe}",
        "-k",
        "test_one_call and 0",
    )
    cost = json.loads(probe.read_text())["summary"][0]["cost_per_run"]
    path = pytester.path / "r.json"
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--patterns-record=all",
        "-n",
        "2",
        f"--patterns-budget={4.5 * cost}",
        f"--patterns-json={path}",
    )
    made = sum(
        1
        for i in json.loads(path.read_text())["items"]
        for r in i["repetitions"]
        for c in r["calls"]
        if c["status"] == 200
    )
    # One shared budget: 5 calls reach it, and each of the 2 workers may have one call in
    # flight when it is reached. Per-worker budgets would allow 5 calls on each worker.
    assert 5 <= made <= 6
    result.stdout.fnmatch_lines(
        ["[[]single[]] budget $* spent: 1 call not made; 1 repetition not*"]
    )


def test_max_concurrency_is_per_item_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import threading, pytest
from pytest_agentpatterns import Task

lock = threading.Lock()
inside = 0
peak = 0
barrier = threading.Barrier(2, timeout=10)

def propose(x):
    global inside, peak
    with lock:
        inside += 1
        peak = max(peak, inside)
    barrier.wait()
    with lock:
        inside -= 1
    return x

@pytest.mark.agentpatterns(patterns="parallel(n=6)")
@pytest.mark.parametrize("case", range(4))
def test_bounded(agent, case):
    assert agent.run(Task(name="t", propose=propose), case) == case
    assert peak == 2
"""
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--patterns-max-concurrency=2"
    )
    result.assert_outcomes(passed=4)
