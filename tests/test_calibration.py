"""The statistics' measured targets, on small grids with fixed seeds.

benchmarks/calibration.py runs the full grids and writes docs/calibration.md; these tests
run the same simulations (the benchmark modules themselves) on fewer cells and runs, and
assert each target with a tolerance for the simulation size: a rate "at most 5%" fails only
when the count is evidence (one-sided binomial, p < 0.01) of a higher rate; a coverage
"within 93.5-96.5%" fails only when the count is evidence of a share outside the band.
Pass/fail coverage is computed exactly, so it is asserted without tolerance.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from scipy import stats as sps

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))  # the benchmark modules import each other by name

import family_errors  # noqa: E402
import gate_errors  # noqa: E402
import interval_coverage  # noqa: E402
import synthetic_runs  # noqa: E402

from pytest_agentpatterns import analysis, gates  # noqa: E402

ALPHA = 0.05
EVIDENCE = 0.01
"""One-sided p below which a simulated count is taken as evidence against a target."""


def above(count: int, runs: int, rate: float) -> bool:
    """Whether ``count`` of ``runs`` is evidence that the true rate exceeds ``rate``."""
    return bool(sps.binom.sf(count - 1, runs, rate) < EVIDENCE)


def below(count: int, runs: int, rate: float) -> bool:
    """Whether ``count`` of ``runs`` is evidence that the true rate is below ``rate``."""
    return bool(sps.binom.cdf(count, runs, rate) < EVIDENCE)


def test_tolerance_helpers_reject_only_clear_evidence() -> None:
    assert not above(10, 200, 0.05) and above(20, 200, 0.05)
    assert not below(185, 200, 0.935) and below(175, 200, 0.935)


# --- coverage of the summary's accuracy interval -----------------------------------------------

MEANS = (0.5, 0.7, 0.8, 0.9, 0.95)
SPREADS = (interval_coverage.HOMOGENEOUS, 10.0, 2.0)


def _outside(coverage: dict[tuple[float, float], float]) -> dict[tuple[float, float], float]:
    return {k: round(v, 4) for k, v in coverage.items() if not interval_coverage.in_band(v)}


@pytest.mark.parametrize(
    ("cases", "repetitions"), [(6, 1), (6, 5), (12, 1), (12, 5), (30, 1)], ids=lambda x: str(x)
)
def test_pass_fail_interval_covers_within_the_band(cases: int, repetitions: int) -> None:
    """Exact coverage at mid and high accuracies, homogeneous and heterogeneous cases
    (with one run per case, how cases differ does not matter)."""
    design = interval_coverage.binary_design(cases, repetitions)
    spreads = SPREADS if repetitions > 1 else (interval_coverage.HOMOGENEOUS,)
    coverage = {(m, c): design.coverage(m, c) for m in MEANS for c in spreads}
    assert all(0.5 < v <= 1 for v in coverage.values())
    outside = _outside(coverage)
    assert not outside, (
        f"{cases} cases x {repetitions}: (mean, concentration) -> coverage {outside}"
    )


def _simulated_pass_fail(
    cases: int, repetitions: int, mean: float, concentration: float, runs: int, seed: int
) -> int:
    """How many of ``runs`` simulated tests' pass/fail intervals cover ``mean``."""
    import numpy as np

    from pytest_agentpatterns import stats

    rng = np.random.default_rng(seed)
    covered = 0
    for _ in range(runs):
        if concentration == interval_coverage.HOMOGENEOUS:
            p = np.full(cases, mean)
        else:
            p = rng.beta(mean * concentration, (1 - mean) * concentration, cases)
        outcomes = (rng.random((cases, repetitions)) < p[:, None]).astype(float)
        values = {f"c{i:02d}": list(o) for i, o in enumerate(outcomes)}
        interval = stats.summarize(values).accuracy_interval
        assert interval is not None
        covered += mean in interval
    return covered


@pytest.mark.parametrize(
    ("mean", "concentration"),
    [(m, c) for m in (0.8, 0.95) for c in (interval_coverage.HOMOGENEOUS, 2.0)],
    ids=lambda x: str(x),
)
def test_pass_fail_interval_covers_within_the_band_at_30_cases_x_5(
    mean: float, concentration: float
) -> None:
    """30 x 5 is simulated here (its exact enumeration is for the benchmark)."""
    runs = 300
    covered = _simulated_pass_fail(30, 5, mean, concentration, runs, seed=int(100 * mean))
    lo, hi = interval_coverage.BAND
    assert not below(covered, runs, lo), f"{covered}/{runs}"
    assert not above(covered, runs, hi), f"{covered}/{runs}"


def test_exact_pass_fail_coverage_agrees_with_simulation() -> None:
    """The enumeration is checked against a plain simulation of the same design."""
    exact = interval_coverage.binary_design(6, 5).coverage(0.8, 2.0)
    runs = 1500
    covered = _simulated_pass_fail(6, 5, 0.8, 2.0, runs, seed=11)
    assert abs(covered / runs - exact) < 4 * (exact * (1 - exact) / runs) ** 0.5


GRADED_CELLS = [(1, 6, 5), (1, 30, 1), (2, 6, 1), (2, 12, 5), (3, 12, 5), (4, 6, 1), (4, 12, 1)]
"""(population, cases, repetitions): every graded population of the benchmark but the
symmetric one, each at one or two designs."""


@pytest.mark.parametrize(
    ("population", "cases", "repetitions"),
    GRADED_CELLS,
    ids=[
        f"{interval_coverage.GRADED[p].name.split(':')[0].split(',')[0]}-{k}x{r}"
        for p, k, r in GRADED_CELLS
    ],
)
def test_graded_interval_covers_within_the_band(
    population: int, cases: int, repetitions: int
) -> None:
    pop = interval_coverage.GRADED[population]
    runs = 200
    cov = interval_coverage.graded_coverage(pop, cases, repetitions, runs, [7, population, cases])
    assert cov.runs == runs
    lo, hi = interval_coverage.BAND
    assert not below(cov.covered, runs, lo), f"{pop.name} {cases}x{repetitions}: {cov.share:.3f}"
    assert not above(cov.covered, runs, hi), f"{pop.name} {cases}x{repetitions}: {cov.share:.3f}"


# --- within-test error control ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("population", "cases", "repetitions", "runs"),
    [
        (family_errors.SHARED, 6, 5, 100),
        (family_errors.SHARED, 12, 1, 250),
        (family_errors.SHARED, 12, 5, 250),
        (family_errors.INTERACTION, 12, 5, 200),
    ],
    ids=["shared-6x5", "shared-12x1", "shared-12x5", "interaction-12x5"],
)
def test_equally_accurate_patterns_are_rarely_told_apart(
    population: family_errors.CasePopulation, cases: int, repetitions: int, runs: int
) -> None:
    """Four equally accurate patterns: the family calls any better/worse, and the
    recommendation sets any aside, at most 5% of the time (the first runs are checked
    against `family.compare` and `recommend.recommend`)."""
    rates = family_errors.equal_patterns(
        population, cases, repetitions, runs, [8, cases, repetitions], check=6
    )
    assert rates.runs == runs and rates.checked == 6
    assert not above(rates.family_any, runs, ALPHA), rates
    assert not above(rates.recommend_any, runs, ALPHA), rates
    if cases == 6:
        # 6 paired cases cannot reach 0.05 / 3: nothing is ever called, by design.
        assert rates.reachable == 0 and rates.family_any == 0
    else:
        assert rates.reachable == runs


def test_fast_decisions_see_a_real_difference() -> None:
    """The fast path is not blind: a pattern 0.4 less accurate is found by both paths."""
    import numpy as np

    rng = np.random.default_rng(3)
    p = np.clip(rng.beta(3, 1, 12), 0.5, 0.99)
    patterns = {}
    for name, shift in zip(family_errors.PATTERNS, (0.0, 0.0, -0.45, 0.0), strict=True):
        q = np.clip(p + shift, 0.0, 1.0)
        outcomes = (rng.random((12, 5)) < q[:, None]).astype(float)
        patterns[name] = {f"c{i}": list(o) for i, o in enumerate(outcomes)}
    fast = family_errors.fast_decisions(patterns, "single")
    assert fast[0] == {"hybrid(n=3)"} and "hybrid(n=3)" in fast[1]
    assert family_errors.full_decisions(patterns, "single") == fast[:2]


def test_the_recommendation_never_contradicts_the_table() -> None:
    """Random test functions with enough cases for decisions, read back from the JSON."""
    designs = family_errors.Designs(cases=(1, 8, 10, 12), repetitions=(3, 5), max_patterns=4)
    c = family_errors.consistency(25, [9], designs=designs)
    assert c.tests == 25
    assert c.exclusions_checked >= 5 and c.significant >= 10, "too few decisions to check"
    assert not c.exclusion_violations, c.exclusion_violations
    assert not c.interval_violations, c.interval_violations


# --- CI gates -----------------------------------------------------------------------------------

SMALL_SUITE = (synthetic_runs.SUITE[0], synthetic_runs.SUITE[4])
"""test_arithmetic (holds the regressed pattern) and test_triage: 8 pairs, 24 gates."""


def test_rerecorded_suite_rarely_fails_and_power_is_as_reported() -> None:
    """Re-recording the same model fails the CI run at most alpha; the regressed pattern's
    gates fail about as often as the power they report (12 cases x 5 runs)."""
    import numpy as np

    rules = gates.parse_rules(gate_errors.RULES)
    rng = np.random.default_rng(12)
    runs, false_fails = 16, 0
    failed: dict[str, int] = {}
    reported: dict[str, list[float]] = {}
    for _ in range(runs):
        suite = synthetic_runs.draw_suite(rng, 12, 5, SMALL_SUITE)
        saved = synthetic_runs.draw_run(suite, rng)
        run = analysis.evaluate_gates(rules, synthetic_runs.draw_run(suite, rng), saved)
        assert run.evaluated == 24 and run.level == pytest.approx(ALPHA / 24)
        false_fails += run.failed
        changed = synthetic_runs.draw_run(
            suite, rng, {synthetic_runs.REGRESSED: gate_errors.REGRESSION}
        )
        run = analysis.evaluate_gates(rules, changed, saved)
        for g in run.results:
            if g.pattern == synthetic_runs.REGRESSED[1] and "arithmetic" in g.test:
                failed[str(g.rule)] = failed.get(str(g.rule), 0) + g.failed
                assert g.power is not None
                reported.setdefault(str(g.rule), []).append(g.power)
    assert not above(false_fails, runs, ALPHA)
    for rule, powers in reported.items():
        expected = float(np.mean(powers))
        # The simulated count must be plausible under the mean reported power.
        low = sps.binom.cdf(failed[rule], runs, expected)
        high = sps.binom.sf(failed[rule] - 1, runs, expected)
        assert min(low, high) >= EVIDENCE, (rule, failed[rule], runs, expected)


def test_a_gate_that_cannot_fail_reports_no_power() -> None:
    """6 paired cases cannot reach the level of 78 gates: such a gate is inconclusive
    whatever the data, its power is 0, and the power it reports must be close to that
    (within the benchmark's 0.05)."""
    import numpy as np

    rules = gates.parse_rules(gate_errors.RULES)
    rng = np.random.default_rng(13)
    suite = synthetic_runs.draw_suite(rng, 6, 5)
    saved = synthetic_runs.draw_run(suite, rng)
    changed = synthetic_runs.draw_run(
        suite, rng, {synthetic_runs.REGRESSED: gate_errors.REGRESSION}
    )
    run = analysis.evaluate_gates(rules, changed, saved)
    assert run.evaluated == 78 and run.count("fail") == 0
    powers = {
        f"{g.test.split('::')[1]} {g.pattern} {g.rule}": round(g.power, 3)
        for g in run.results
        if g.power is not None
    }
    too_high = {k: p for k, p in powers.items() if p > 0.05}
    assert not too_high, f"{len(too_high)} of {len(powers)} gates: {too_high}"


@pytest.mark.parametrize(
    ("cases", "repetitions", "runs"), [(12, 1, 150), (12, 5, 100)], ids=["12x1", "12x5"]
)
def test_accuracy_gate_at_its_margin(cases: int, repetitions: int, runs: int) -> None:
    """accuracy:-0.05 alone (level 0.05) when accuracy drops by exactly 0.05: each verdict
    is a one-sided test at alpha, so a fail and a pass each happen at most 5% of the time."""
    m = gate_errors.accuracy_at_margin(cases, repetitions, runs, [15, cases, repetitions])
    assert m.runs == runs
    assert not above(m.fail, runs, ALPHA), m
    assert not above(m.passed, runs, ALPHA), m


@pytest.mark.parametrize("runs_per_side", [10, 20])
def test_single_case_latency_p95_gate(runs_per_side: int) -> None:
    """One case, latency_p95:+20% alone (level 0.05): unchanged runs fail at most alpha,
    and so do runs exactly at the margin (every run 1.2x slower), where a pass must be as
    rare; with 10% of runs 5x slower it fails far more often than 1.9% and claims the
    change is within the margin at most alpha."""
    runs = 50
    s = gate_errors.single_case(runs_per_side, runs, [14, runs_per_side])
    assert s.runs == runs
    assert not above(s.null_fail, runs, ALPHA), s
    assert not above(s.margin_fail, runs, ALPHA), s
    assert not above(s.margin_pass, runs, ALPHA), s
    assert above(s.slow_fail, runs, 0.019), s
    assert not above(s.slow_pass, runs, ALPHA), s
