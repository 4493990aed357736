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

MEANS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
"""Population means 0.50, 0.55, ..., 0.95."""


@pytest.mark.parametrize(
    ("cases", "repetitions", "concentration"),
    [
        (6, 1, interval_coverage.HOMOGENEOUS),
        (12, 1, interval_coverage.HOMOGENEOUS),
        (6, 5, interval_coverage.HOMOGENEOUS),
        (6, 5, 2.0),
        (12, 5, 2.0),
    ],
    ids=["6x1", "12x1", "6x5-homogeneous", "6x5-conc2", "12x5-conc2"],
)
def test_pass_fail_interval_covers_nominally_on_average(
    cases: int, repetitions: int, concentration: float
) -> None:
    """Exact coverage over population means 0.50-0.95. Pass/fail counts are discrete, so
    coverage is a saw-tooth in the mean and no interval keeps every mean inside 93.5-96.5%
    at 6 or 12 cases (docs/calibration.md shows the cells); what holds is coverage near
    nominal on average (at most 1.5 points above the band with one run per case, where the
    score interval errs on the safe side) and never far below it."""
    design = interval_coverage.binary_design(cases, repetitions)
    coverage = [design.coverage(m, concentration) for m in MEANS]
    mean = sum(coverage) / len(coverage)
    assert interval_coverage.BAND[0] <= mean <= 0.97, (mean, coverage)
    assert min(coverage) > 0.86, coverage


def test_exact_pass_fail_coverage_agrees_with_simulation() -> None:
    """The enumeration is checked against a plain simulation of the same design."""
    import numpy as np

    from pytest_agentpatterns import stats

    exact = interval_coverage.binary_design(6, 5).coverage(0.8, 2.0)
    rng = np.random.default_rng(11)
    runs = covered = 400
    covered = 0
    for _ in range(runs):
        p = rng.beta(0.8 * 2.0, 0.2 * 2.0, 6)
        outcomes = (rng.random((6, 5)) < p[:, None]).astype(float)
        interval = stats.summarize({f"c{i}": list(o) for i, o in enumerate(outcomes)})
        assert interval.accuracy_interval is not None
        covered += 0.8 in interval.accuracy_interval
    assert abs(covered / runs - exact) < 4 * (exact * (1 - exact) / runs) ** 0.5


@pytest.mark.parametrize(
    ("population", "cases", "repetitions", "both_edges"),
    [(4, 6, 1, False), (2, 6, 1, True), (1, 6, 5, True)],
    ids=["4 fields-6x1", "skewed-6x1", "Beta 0.75-6x5"],
)
def test_graded_interval_covers_within_the_band(
    population: int, cases: int, repetitions: int, both_edges: bool
) -> None:
    """Small graded samples, where ties are common. Partial credit over 6 single runs is
    often tied so hard that the bootstrap cannot bound one side; the interval then reaches
    the bound, so coverage there errs above the band, never below it."""
    pop = interval_coverage.GRADED[population]
    runs = 200
    cov = interval_coverage.graded_coverage(pop, cases, repetitions, runs, [7, population, cases])
    assert cov.runs == runs
    lo, hi = interval_coverage.BAND
    assert not below(cov.covered, runs, lo), f"{pop.name} {cases}x{repetitions}: {cov.share:.3f}"
    if both_edges:
        assert not above(cov.covered, runs, hi), f"{pop.name}: {cov.share:.3f}"


# --- within-test error control ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("population", "cases", "repetitions", "runs"),
    [(family_errors.SHARED, 6, 5, 60), (family_errors.INTERACTION, 12, 5, 120)],
    ids=["shared-6x5", "interaction-12x5"],
)
def test_equally_accurate_patterns_are_rarely_told_apart(
    population: family_errors.CasePopulation, cases: int, repetitions: int, runs: int
) -> None:
    """Four equally accurate patterns: the family calls any better/worse, and the
    recommendation sets any aside, at most 5% of the time (the first runs are checked
    against `family.compare` and `recommend.recommend`)."""
    rates = family_errors.equal_patterns(
        population, cases, repetitions, runs, [8, cases, repetitions], check=3
    )
    assert rates.runs == runs and rates.checked == 3
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
    c = family_errors.consistency(14, [9], designs=designs)
    assert c.tests == 14
    assert c.exclusions_checked >= 3 and c.significant >= 5, "too few decisions to check"
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
    runs, false_fails = 4, 0
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
    assert len(reported) == 3
    for rule, powers in reported.items():
        expected = float(np.mean(powers))
        # The simulated count must be plausible under the mean reported power.
        low = sps.binom.cdf(failed[rule], runs, expected)
        high = sps.binom.sf(failed[rule] - 1, runs, expected)
        assert min(low, high) >= EVIDENCE, (rule, failed[rule], runs, expected)


def test_a_gate_that_cannot_fail_reports_no_power() -> None:
    """6 paired cases cannot reach the level of 78 gates: every such gate is inconclusive
    whatever the data, and its power is 0 (it reported up to 21% before)."""
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
    too_few = [g for g in run.results if g.reason and g.reason.startswith("n too small")]
    assert len(too_few) == 78
    assert {g.power for g in too_few} == {0.0}


def test_accuracy_gate_at_its_margin() -> None:
    """accuracy:-0.05 alone (level 0.05) when accuracy drops by exactly 0.05 over 12
    cases x 1 run: each verdict is a one-sided test at alpha, so a fail and a pass each
    happen at most 5% of the time (sign flips of the shifted differences passed 15%)."""
    runs = 100
    m = gate_errors.accuracy_at_margin(12, 1, runs, [15, 12, 1])
    assert m.runs == runs
    assert not above(m.fail, runs, ALPHA), m
    assert not above(m.passed, runs, ALPHA), m


def test_single_case_p95_gate_from_few_runs_is_inconclusive() -> None:
    """One case, latency_p95:+20% alone (level 0.05), 20 runs a side: no exact bound on a
    p95 exists, so unchanged, at the margin and with 10% of runs 5x slower the gate neither
    fails nor passes (a bootstrap passed and failed about 10% at the margin)."""
    runs = 8
    s = gate_errors.single_case(20, runs, [14, 20])
    assert s.runs == runs
    decided = s.null_fail + s.null_pass + s.margin_fail + s.margin_pass
    assert decided + s.slow_fail + s.slow_pass == 0, s


def test_single_case_p95_gate_with_enough_runs_sees_a_slow_tail() -> None:
    """With 100 runs a side the p95 can be bounded: 10% of runs 5x slower fails the gate
    far more often than the 1.9% of a geometric mean, and never passes."""
    runs = 12
    s = gate_errors.single_case(100, runs, [16, 100], margin=False)
    assert s.runs == runs
    assert above(s.slow_fail, runs, 0.019) and s.slow_pass == 0, s
    assert not above(s.null_fail, runs, ALPHA), s
