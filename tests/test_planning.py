"""Planning: the variance components, power against simulation, the plan, its CLI and option."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_agentpatterns import cli, planning
from pytest_agentpatterns.family import units
from pytest_agentpatterns.records import Address, CallRecord, ItemResult, Repetition
from pytest_agentpatterns.sim import Simulator

# --- a world where the truth is known ---------------------------------------------------------


def _world(rng: np.random.Generator, cases: int, lift: float) -> tuple[np.ndarray, np.ndarray]:
    """Case accuracies: the baseline's from Beta(3, 1) (mean 0.75, hard and easy cases), the
    candidate's the same case lifted on the logit scale, so difficulty is shared."""
    base = np.clip(rng.beta(3.0, 1.0, cases), 0.02, 0.98)
    logit = np.log(base / (1 - base)) + lift
    return base, 1 / (1 + np.exp(-logit))


def _scores(rng: np.random.Generator, p: np.ndarray, repeat: int) -> dict[str, list[float]]:
    return {f"c{i}": [float(x) for x in rng.random(repeat) < q] for i, q in enumerate(p)}


def _true_diff(lift: float) -> float:
    base, cand = _world(np.random.default_rng(12345), 200_000, lift)
    return float(np.mean(cand - base))


# Cases, repetitions, logit lift, level (alpha / m): small enough that the sign-flip test is
# exact (2^k assignments), at middling to high power. 12 x 6 at 0.0125 is where a t alone was
# 15-17 points optimistic (many tied cases, the exact test reaches few levels).
SETTINGS = [
    (10, 8, 1.4, 0.05),
    (14, 5, 1.4, 0.025),
    (12, 10, 1.2, 0.05),
    (12, 6, 1.5, 0.0125),
]


@pytest.mark.parametrize(("cases", "repeat", "lift", "level"), SETTINGS)
def test_predicted_power_agrees_with_simulated_power(
    cases: int, repeat: int, lift: float, level: float
) -> None:
    """The power the plan predicts from a measured run is within 10 points of the share of
    simulated runs the real test (family.py's decision) rejects.
    benchmarks/planning.py prints the full grid, with small pilots' noise, and more
    simulations."""
    rng = np.random.default_rng(cases * 1000 + repeat)
    # A measured run: 200 cases x 4 repetitions give the components and the population.
    base, cand = _world(rng, 200, lift)
    parts = planning.components(_scores(rng, base, 4), _scores(rng, cand, 4))
    assert parts is not None and parts.paired and planning.simulated(parts, cases, repeat)
    predicted = planning.power(_true_diff(lift), parts, cases, repeat, level)
    rejected = 0
    sims = 150
    for seed in range(sims):
        base, cand = _world(rng, cases, lift)
        result = units(_scores(rng, base, repeat), _scores(rng, cand, repeat)).test(seed).result()
        rejected += result.min_p <= level and result.p <= level
    simulated = rejected / sims
    assert abs(predicted - simulated) <= 0.10, (predicted, simulated)
    assert 0.15 < simulated < 0.95  # a setting that can tell a good prediction from a bad one


def test_sign_flip_p_is_the_real_tests_p() -> None:
    """The plan's exact p-values over signed sums are those of randomization.Paired (whose t
    is monotone in the sum), ties and zero differences included."""
    from pytest_agentpatterns.randomization import Paired

    rng = np.random.default_rng(7)
    diffs = rng.integers(-3, 4, size=(40, 9))
    diffs[0] = 0
    diffs[1] = [2] * 9
    mine = planning.sign_flip_p(diffs, 3)
    for row, p in zip(diffs, mine, strict=True):
        assert p == pytest.approx(Paired(row / 3, floor=0.05).result().p), row


def test_components_measure_shared_difficulty_and_noise() -> None:
    rng = np.random.default_rng(3)
    base, cand = _world(rng, 300, 0.0)  # the same pattern twice: no true difference
    parts = planning.components(_scores(rng, base, 6), _scores(rng, cand, 6))
    assert parts is not None and parts.paired and parts.cases == 300
    # Same case accuracies on both sides: correlated near 1, nothing varies between cases.
    assert parts.correlation is not None and parts.correlation > 0.85
    assert parts.between < 0.01
    # Within a case, two Bernoulli(p) draws: E[2 p (1 - p)] over Beta(3, 1) is 0.3.
    assert parts.within == pytest.approx(0.3, abs=0.03)
    # Unrelated cases (shuffled): no correlation, and the case spread stays in the noise.
    shuffled = planning.components(_scores(rng, base, 6), _scores(rng, rng.permutation(cand), 6))
    assert shuffled is not None and shuffled.correlation is not None
    assert abs(shuffled.correlation) < 0.2 and shuffled.between > 0.04


def test_power_and_needs_are_monotone_and_consistent() -> None:
    parts = planning.Components(
        within=0.3, floor=0.3, between=0.02, correlation=0.6, paired=True, cases=12
    )
    level = 0.05 / 4
    need = planning.cases_needed(0.10, parts, 5, level)
    assert need is not None
    assert planning.power(0.10, parts, need, 5, level) >= planning.POWER
    assert planning.power(0.10, parts, need - 1, 5, level) < planning.POWER
    assert planning.cases_needed(0.10, parts, 10, level) < need  # more repetitions, fewer cases
    found = planning.detectable(parts, need, 5, level)
    assert found is not None and found <= 0.10 + 1e-6
    # Too few cases for the sign-flip test to reach the level: no power at all.
    assert planning.power(0.5, parts, 2, 5, level) == 0.0


def test_small_designs_are_simulated_with_binary_scores_only() -> None:
    """Up to SIMULATED_CASES binary cases, cases_needed searches the simulated power, and its
    answer is the first design that reaches POWER; graded scores keep the t."""
    rng = np.random.default_rng(11)
    base, cand = _world(rng, 60, 1.6)
    parts = planning.components(_scores(rng, base, 4), _scores(rng, cand, 4))
    assert parts is not None and parts.counts and planning.simulated(parts, 20, 6)
    assert not planning.simulated(parts, planning.SIMULATED_CASES + 1, 6)
    level = 0.05
    need = planning.cases_needed(0.2, parts, 6, level)
    assert need is not None and need <= planning.SIMULATED_CASES
    assert planning.power(0.2, parts, need, 6, level) >= planning.POWER
    assert planning.power(0.2, parts, need - 1, 6, level) < planning.POWER
    assert planning.power(0.2, parts, need, 6, level) == planning.power(0.2, parts, need, 6, level)
    graded = planning.components(
        {"a": [0.5, 0.7], "b": [0.2, 0.4], "c": [0.9, 1.0]},
        {"a": [0.6, 0.8], "b": [0.3, 0.3], "c": [1.0, 1.0]},
    )
    assert graded is not None and graded.counts == () and not planning.simulated(graded, 10, 2)


# --- the plan of a run ------------------------------------------------------------------------


def _item(test: str, case: str, pattern: str, outcomes: str, calls: int = 1) -> ItemResult:
    reps = tuple(
        Repetition(
            index,
            "correct" if o == "c" else "incorrect",
            0.1,
            calls=tuple(
                CallRecord(
                    Address(index, (), "propose", n),
                    "POST",
                    "http://x/v1",
                    200,
                    0.1,
                    "sim-small",
                    cost=0.001,
                )
                for n in range(calls)
            ),
        )
        for index, o in enumerate(outcomes)
    )
    return ItemResult(f"{test}[{case}-{pattern}]", test, case, pattern, reps)


def _run(test: str = "t.py::test_q") -> list[ItemResult]:
    rng = np.random.default_rng(5)
    items = []
    for i in range(12):
        p = rng.beta(3, 1)
        for pattern, lift, calls in (("single", 0.0, 1), ("parallel(n=3)", 0.1, 3)):
            outcomes = "".join("c" if x < min(1.0, p + lift) else "i" for x in rng.random(5))
            items.append(_item(test, f"c{i}", pattern, outcomes, calls))
    return items


def test_plan_prices_each_design_from_the_runs_calls() -> None:
    plan = planning.plan_from_run(_run(), 0.10, alpha=0.05, source="from x.json")
    (t,) = plan.tests
    assert (t.cases, t.repeat, t.comparisons, t.level) == (12, 5, 1, 0.05)
    assert t.calls_per_repetition == 4  # one call for single, three for parallel(n=3)
    assert t.cost_per_repetition == pytest.approx(0.004)
    first = t.designs[0]
    assert first.repeat == 5
    assert first.calls == 4 * first.cases * 5
    assert first.cost == pytest.approx(0.004 * first.cases * 5)
    parts = planning.components(
        *(
            {i.case: [r.accuracy or 0.0 for r in i.repetitions] for i in _run() if i.pattern == p}
            for p in ("single", "parallel(n=3)")
        )
    )
    assert parts is not None
    assert first.cases == planning.cases_needed(0.10, parts, 5, 0.05)
    assert t.detectable == pytest.approx(planning.detectable(parts, 12, 5, 0.05))
    text = planning.render(plan, 80)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert f"needs {first.cases} x 5" in text and "t.py::test_q" in text


def test_a_test_with_one_pattern_says_why_it_has_no_plan() -> None:
    items = [i for i in _run() if i.pattern == "single"]
    (t,) = planning.plan_from_run(items).tests
    assert t.designs == () and t.note == "only one pattern ran: nothing to compare"
    assert "nothing to compare" in planning.render(planning.plan_from_run(items))


def _save(items: list[ItemResult], path: Path) -> None:
    from pytest_agentpatterns.report import dumps

    path.write_text(
        dumps(
            {
                "kind": "pytest-agentpatterns-report",
                "schema_version": 2,
                "seed": 0,
                "alpha": 0.05,
                "items": [i.to_dict() for i in items],
            }
        )
    )


def test_cli_plan_reads_a_saved_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "run.json"
    _save(_run(), saved)
    assert cli.main(["plan", str(saved), "--diff", "0.2", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    expected = planning.plan_from_run(_run(), 0.2, alpha=0.05)
    assert data["diff"] == 0.2 and data["source"] == f"from {saved}"
    assert data["tests"][0]["designs"][0]["cases"] == expected.tests[0].designs[0].cases
    assert cli.main(["plan", str(saved)]) == 0
    assert "Plan to detect an accuracy difference of 0.10" in capsys.readouterr().out
    assert cli.main(["plan", str(tmp_path / "none.json")]) == 2
    assert "none.json: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["plan", str(saved), "--diff", "1.5"])
    assert exit_info.value.code == 2
    assert "use an accuracy difference in (0, 1]" in capsys.readouterr().err


# --- pytest --patterns-plan -----------------------------------------------------------------

MODULE = """
import os, pytest, anthropic
from pytest_agentpatterns import Task

CLIENT = anthropic.Anthropic(base_url=os.environ["SIM_URL"], api_key="sim-key", max_retries=0)


@pytest.fixture(autouse=True, scope="module")
def close_client():
    yield
    CLIENT.close()  # no socket left for the garbage collector to warn about

def propose(q):
    m = CLIENT.messages.create(
        model="sim-small", max_tokens=20, messages=[{"role": "user", "content": q}]
    )
    return m.content[0].text.strip()

TASK = Task(name="capital", propose=propose)

@pytest.mark.agentpatterns(patterns="single,parallel(n=3)", repeat=3)
@pytest.mark.parametrize("case", ["c1", "c2", "c3", "c4", "c5", "c6"])
def test_capital(agent, case):
    assert agent.run(TASK, "What is the capital of Testland?") == "Alpha"
"""


def test_patterns_plan_without_a_saved_run_runs_a_pilot(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makepyfile(test_capital=MODULE)
    requests = sim_env.request_count
    result = pytester.runpytest("--patterns-plan=0.2")
    # 6 cases x 2 patterns x 2 repetitions (not the marker's 3): 1 + 3 calls a repetition.
    assert sim_env.request_count - requests == 6 * 2 * 4
    result.assert_outcomes(passed=12)
    text = " ".join(result.stdout.str().split())
    assert (
        "Plan to detect an accuracy difference of 0.20 with 80% power (from a pilot of 6 cases "
        "x 2 repetitions; docs/statistics.md): The pilot spent 48 calls, $" in text
    )
    # Planned for the marker's 3 repetitions; the pilot's recordings are kept.
    assert "test_capital.py::test_capital needs " in text
    assert "now (6 cases x 3 repetitions)" in text
    assert "reuses them with --patterns-record=new_episodes." in text
    assert "agentpatterns summary" not in text
    # The full run reuses the pilot's two recorded repetitions and pays for the third only.
    requests = sim_env.request_count
    pytester.runpytest("--patterns-record=new_episodes").assert_outcomes(passed=12)
    assert sim_env.request_count - requests == 6 * 4
    # Under xdist the workers run the pilot's repetitions too (replayed now, nothing paid).
    requests = sim_env.request_count
    spread = pytester.runpytest("-n", "1", "--patterns-plan=0.2")
    spread.assert_outcomes(passed=12)
    assert sim_env.request_count == requests
    assert "The pilot spent 0 calls, $0 (48 more calls replayed from cassettes)." in " ".join(
        spread.stdout.str().split()
    )


def test_patterns_plan_reads_the_last_save_and_runs_nothing(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makepyfile(test_capital=MODULE)
    saved = pytester.path / "run.json"
    pytester.runpytest(f"--patterns-save={saved}").assert_outcomes(passed=12)
    requests = sim_env.request_count
    result = pytester.runpytest("--patterns-plan=0.2", "--patterns-record=none")
    assert result.ret == pytest.ExitCode.OK
    assert sim_env.request_count == requests  # nothing ran, nothing was paid for
    result.stdout.fnmatch_lines(
        [
            "*agentpatterns plan*",
            "Plan to detect an accuracy difference of 0.20 with 80% power (from",
            f"{saved};*",
            "test_capital.py::test_capital",
            "  *6 cases x 3 repetitions*",
            "*12 deselected*",
        ]
    )
    from pytest_agentpatterns.report import load_run

    expected = planning.plan_from_run(load_run(saved), 0.2, source=f"from {saved}")
    shown = result.stdout.str().replace("\n    ", " ")
    lines = planning.plan_lines(expected.tests[0])
    assert all(line in shown for line in lines)
    # Under xdist the workers run nothing either, and the controller prints the same plan.
    spread = pytester.runpytest("-n", "1", "--patterns-plan=0.2", "--patterns-record=none")
    assert spread.ret == pytest.ExitCode.OK
    assert sim_env.request_count == requests
    assert all(line in spread.stdout.str().replace("\n    ", " ") for line in lines)
