"""The budget and the call cap hold under concurrency, and a stopped item says so in one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pytest_agentpatterns.budget import Ledger, Limits, worst_case_usage
from pytest_agentpatterns.sim import Simulator

pytest.importorskip("xdist")

MODULE = """
import os, pytest, anthropic
from pytest_agentpatterns import Task

CLIENT = anthropic.Anthropic(base_url=os.environ["SIM_URL"], api_key="sim-key", max_retries=0)
MODEL = os.environ.get("MODEL", "sim-fast")

@pytest.fixture(scope="session", autouse=True)
def close_client():
    yield
    CLIENT.close()

def ask(q):
    m = CLIENT.messages.create(model=MODEL, max_tokens=20,
                               messages=[{"role": "user", "content": q}])
    return m.content[0].text.strip()

@pytest.mark.agentpatterns(patterns=os.environ.get("PATTERN", "parallel(n=16)"), repeat=2)
@pytest.mark.parametrize("case", range(4))
def test_case(agent, case):
    agent.run(Task(name="t", propose=ask), "What is the capital of Testland?")
"""

# Every call costs its input tokens in dollars (output is free), so every call costs the
# same, and its worst case (its request's size, 20 output tokens at $0) is dearer.
PRICES = "[pytest]\nagentpatterns_prices =\n    sim-fast = input:1000000 output:0\n"


def _live_calls(sim: Simulator, since: int) -> int:
    return sum(1 for record in sim.log[since:] if record.status == 200)


def _one_call_cost(pytester: pytest.Pytester) -> float:
    probe = pytester.path / "probe.json"
    pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "--patterns-record=all",
        f"--patterns-json={probe}",
        "-k",
        "test_case and 0",
        "--patterns=single",
    )
    [item] = json.loads(probe.read_text())["items"]
    costs = {c["cost"] for r in item["repetitions"] for c in r["calls"]}
    [cost] = costs
    return float(cost)


@pytest.mark.parametrize("workers", [["-p", "no:xdist"], ["-n", "4"]], ids=["n0", "n4"])
def test_concurrent_calls_overshoot_the_budget_by_at_most_one_call(
    pytester: pytest.Pytester, sim_env: Simulator, workers: list[str]
) -> None:
    pytester.makeini(PRICES)
    pytester.makepyfile(MODULE)
    cost = _one_call_cost(pytester)
    budget = 12.5 * cost
    since = len(sim_env.log)
    report = pytester.path / "r.json"
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--patterns-record=all",
        f"--patterns-budget={budget}",
        f"--patterns-json={report}",
        *workers,
    )
    # 4 items x 2 repetitions x 16 concurrent calls were wanted; the budget allows 12.5 calls.
    # Calls go out until the spend reaches the budget: the 13th overshoots by less than one
    # call, and no 14th is sent, whatever the concurrency or the number of workers.
    assert _live_calls(sim_env, since) == math.ceil(budget / cost) == 13
    items = json.loads(report.read_text())["items"]
    stopped = [i for i in items if i["stopped"]]
    assert stopped and all(i["stopped"].startswith(f"budget ${budget:g} spent: ") for i in stopped)
    assert "Traceback" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        [f"[[]parallel(n=16)[]] budget ${budget:g} spent: * not made; * not counted (from r* on)"]
    )


def test_an_unpriced_model_is_capped_by_max_calls(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_env: Simulator
) -> None:
    pytester.makepyfile(MODULE)
    monkeypatch.setenv("MODEL", "acme-unpriced-1")
    monkeypatch.setenv("PATTERN", "parallel(n=4)")
    since = len(sim_env.log)
    report = pytester.path / "r.json"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=all", "--patterns-max-calls=5",
        f"--patterns-json={report}",
    )  # fmt: skip
    assert _live_calls(sim_env, since) == 5
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["[[]parallel(n=4)[]] max calls 5 made: * not made; *"])
    assert "Traceback" not in result.stdout.str()
    # The item that made the 5 calls kept its first repetition (4 calls) and was stopped in
    # the second; the others made none.
    counted = [
        len(r["calls"]) for i in json.loads(report.read_text())["items"] for r in i["repetitions"]
    ]
    assert counted == [4]


def test_an_unpriced_model_counts_against_the_budget(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_env: Simulator
) -> None:
    pytester.makepyfile(MODULE)
    monkeypatch.setenv("MODEL", "acme-unpriced-1")
    since = len(sim_env.log)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=all", "--patterns-budget=0.001"
    )
    made = _live_calls(sim_env, since)
    # Priced at the dearest known model's rates, the unpriced calls spend the budget: the
    # run stops long before the 128 calls it wanted.
    assert 1 <= made < 128
    result.stdout.fnmatch_lines(["*budget $0.001 spent: * not made;*"])


def test_max_calls_from_the_ini_and_its_validation(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nagentpatterns_max_calls = 0\n")
    pytester.makepyfile("def test_x(): pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*agentpatterns_max_calls*'0' is not allowed: use an integer >= 1*"]
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--patterns-max-calls=x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_worst_case_reads_the_output_limit_and_choices() -> None:
    body = json.dumps({"model": "m", "max_tokens": 300, "messages": []}).encode()
    usage = worst_case_usage(body)
    assert (usage.model, usage.output_tokens) == ("m", 300)
    assert usage.input_tokens == len(body)
    chat = json.dumps({"model": "m", "max_completion_tokens": 50, "n": 3}).encode()
    assert worst_case_usage(chat).output_tokens == 150
    assert worst_case_usage(b'{"model": "m"}').output_tokens == 4096
    assert worst_case_usage(b"not json").model is None


def test_ledger_reserves_waits_and_refuses(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    path.write_text("")
    for ledger in (Ledger(), Ledger(path)):
        limits = Limits(budget=10.0, max_calls=4)
        assert ledger.try_reserve(limits, 8.0, True) is True  # alone: goes, whatever its size
        assert ledger.try_reserve(limits, 3.0, True) is False  # would not fit beside it: waits
        assert ledger.try_reserve(limits, 2.0, True) is True  # fits beside it
        ledger.settle(8.0, 1.0)
        ledger.settle(2.0, 9.5)
        assert ledger.totals().spent == 10.5
        assert ledger.try_reserve(limits, 0.1, True) == "budget $10 spent"
        assert ledger.try_reserve(Limits(max_calls=2), 0.0, True) == "max calls 2 made"
        assert ledger.try_reserve(Limits(max_calls=2), 0.0, False) is True  # a retry
    # The file is the ledger every xdist worker shares.
    assert json.loads(path.read_text())["calls"] == 2
