"""Per-pattern summaries: accuracy intervals (cases as clusters), percentiles, Pareto."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from pytest_agentpatterns import stats
from pytest_agentpatterns.stats import Interval


def cases(*columns: Sequence[float]) -> dict[str, list[float]]:
    """One case per position; ``columns`` are the repetitions."""
    return {f"case{i:02d}": [float(c[i]) for c in columns] for i in range(len(columns[0]))}


# --- known answers ---------------------------------------------------------------------------


def test_wilson_interval_8_of_10() -> None:
    ci = stats.wilson_interval(8, 10)
    assert ci.low == pytest.approx(0.4902, abs=1e-4)
    assert ci.high == pytest.approx(0.9433, abs=1e-4)


@pytest.mark.parametrize(("k", "n"), [(0, 7), (3, 7), (7, 7), (41, 120)])
def test_wilson_interval_matches_scipy(k: int, n: int) -> None:
    expected = sps.binomtest(k, n).proportion_ci(method="wilson")
    ci = stats.wilson_interval(k, n)
    assert ci.low == pytest.approx(max(0.0, expected.low), abs=1e-12)
    assert ci.high == pytest.approx(min(1.0, expected.high), abs=1e-12)


def test_wilson_interval_edges() -> None:
    assert stats.wilson_interval(0, 0) == Interval(0.0, 1.0)
    assert stats.wilson_interval(10, 10).high == 1.0
    assert stats.wilson_interval(0, 10).low == 0.0
    with pytest.raises(ValueError, match="successes"):
        stats.wilson_interval(11, 10)


def test_percentile_matches_numpy_and_handles_empty() -> None:
    assert stats.percentile([1, 2, 3, 4], 50) == 2.5
    assert stats.percentile([1, 2, 3, 4, 10], 95) == pytest.approx(
        np.percentile([1, 2, 3, 4, 10], 95)
    )
    assert math.isnan(stats.percentile([], 50))
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


@given(
    st.lists(st.floats(allow_nan=False, min_value=-1e12, max_value=1e12), min_size=1, max_size=30),
    st.one_of(st.sampled_from([0.0, 50.0, 95.0, 100.0]), st.floats(0, 100)),
)
def test_percentile_is_numpys_linear_percentile_to_the_bit(values: list[float], q: float) -> None:
    assert stats.percentile(values, q) == float(np.percentile(np.asarray(values), q))


def test_percentile_of_values_with_nan_is_nan() -> None:
    assert math.isnan(stats.percentile([1.0, math.nan, 2.0], 50))


def test_t_quantile_without_and_with_scipy() -> None:
    assert stats.t_quantile(0.975, 5) == pytest.approx(sps.t.ppf(0.975, 5))
    assert stats.t_quantile(0.975, 1e9) == pytest.approx(sps.norm.ppf(0.975))
    assert stats.z_quantile(0.975) == pytest.approx(1.959964, abs=1e-6)


# --- the accuracy interval -------------------------------------------------------------------


def test_single_outcome_per_case_is_a_wilson_interval() -> None:
    s = stats.summarize(cases([1, 1, 1, 1, 1, 1, 1, 1, 0, 0]))
    assert s.accuracy_method == "wilson"
    assert s.accuracy_interval == stats.wilson_interval(8, 10)


def test_cases_with_equal_means_fall_back_to_wilson_over_all_runs() -> None:
    # Four cases, each right 7 times in 8: no spread to estimate a design effect from.
    s = stats.summarize({f"c{i}": [1.0] * 7 + [0.0] for i in range(4)})
    assert s.accuracy == 0.875 and s.accuracy_method == "wilson (cases alike)"
    assert s.accuracy_interval == stats.wilson_interval(28, 32)


@pytest.mark.parametrize("shape", [[[0.05] * 3], [[0.05]] * 3, [[0.3, 0.3], [0.3, 0.3]]])
def test_graded_scores_all_the_same_get_the_widest_interval_not_a_point(
    shape: list[list[float]],
) -> None:
    """No spread to estimate: the interval is the one a 0/1 score at this mean would have
    (the largest variance a score in [0, 1] can have), never a zero-width interval."""
    s = stats.summarize({f"c{i}": v for i, v in enumerate(shape)})
    runs = sum(len(v) for v in shape)
    mean = shape[0][0]
    assert s.accuracy_method == "wilson (every score the same)"
    expected = stats.wilson_interval(mean * runs, runs)
    assert s.accuracy_interval is not None
    assert s.accuracy_interval.low == pytest.approx(expected.low)
    assert s.accuracy_interval.high == pytest.approx(expected.high)
    assert s.accuracy_interval.high - s.accuracy_interval.low > 0.2


def test_clustered_binary_interval_is_the_design_effect_score_interval() -> None:
    data = cases([1, 1, 0, 1, 0, 1], [1, 0, 0, 1, 1, 1], [1, 1, 0, 1, 0, 1])
    means = np.array([np.mean(v) for v in data.values()])
    p, k, runs = means.mean(), means.size, 18
    smoothed = (p * runs + 0.5) / (runs + 1)
    a = sps.t.ppf(0.975, k - 1) ** 2 * means.var(ddof=1) / (k * smoothed * (1 - smoothed))
    # The roots of (p - x)^2 = a x (1 - x).
    roots = np.roots([1 + a, -(2 * p + a), p * p])
    s = stats.summarize(data)
    assert s.accuracy_interval is not None
    assert (s.accuracy_interval.low, s.accuracy_interval.high) == pytest.approx(sorted(roots))


def test_more_spread_between_cases_gives_a_wider_interval() -> None:
    alike = stats.summarize(cases([1, 1, 1, 0, 1, 1], [1, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1]))
    apart = stats.summarize(cases([1, 1, 1, 1, 0, 1], [1, 1, 1, 1, 0, 1], [1, 1, 1, 1, 0, 1]))
    assert alike.accuracy == pytest.approx(apart.accuracy)
    assert alike.accuracy_interval is not None and apart.accuracy_interval is not None
    assert apart.accuracy_interval.half_width > alike.accuracy_interval.half_width


def test_graded_scores_get_a_seeded_bootstrap_t_interval() -> None:
    skewed = {f"c{i}": [v] for i, v in enumerate([0.05, 0.1, 0.1, 0.15, 0.2, 0.9])}
    one = stats.summarize(skewed, seed=3)
    again = stats.summarize(skewed, seed=3)
    assert one.accuracy_method == "bootstrap-t over case means"
    assert one.accuracy_interval == again.accuracy_interval
    assert one.accuracy_interval is not None and one.accuracy is not None
    # The long right tail pulls the upper end further from the mean than the lower end.
    assert one.accuracy_interval.high - one.accuracy > one.accuracy - one.accuracy_interval.low
    single_case = stats.summarize({"only": [0.2, 0.4, 0.3, 0.9, 0.35]})
    assert single_case.accuracy_method == "bootstrap-t over runs"


scores = st.floats(0, 1, allow_nan=False)
case_scores = st.dictionaries(
    st.text("abcdef", min_size=1, max_size=3),
    st.lists(st.one_of(st.sampled_from([0.0, 1.0]), scores), min_size=1, max_size=4),
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(case_scores)
def test_summary_accuracy_interval_contains_estimate(accuracy: dict[str, list[float]]) -> None:
    s = stats.summarize(accuracy)
    if not accuracy:
        assert s.accuracy is None and s.accuracy_interval is None
        return
    assert s.accuracy is not None and s.accuracy_interval is not None
    assert 0.0 <= s.accuracy_interval.low <= s.accuracy_interval.high <= 1.0
    assert s.accuracy_interval.low - 1e-12 <= s.accuracy <= s.accuracy_interval.high + 1e-12


binary_cases = st.lists(
    st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=8), min_size=1, max_size=5
)


@settings(max_examples=150, deadline=None)
@given(binary_cases, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_binary_interval_is_never_a_point_when_outcomes_differ(
    columns: list[list[float]], confidence: float
) -> None:
    s = stats.summarize({f"c{i}": v for i, v in enumerate(columns)}, confidence=confidence)
    assert s.accuracy is not None and s.accuracy_interval is not None
    ci = s.accuracy_interval
    assert 0.0 <= ci.low <= s.accuracy <= ci.high <= 1.0
    assert ci.high - ci.low > 0


def test_summary_coverage_at_twelve_cases() -> None:
    """A small fixed-seed check of the 95% interval; benchmarks/calibration.py has the grid."""
    rng = np.random.default_rng(2026)
    hits = 0
    runs = 600
    for _ in range(runs):
        p = rng.beta(0.75 * 10, 0.25 * 10, size=12)
        data = {f"c{i}": [float(x) for x in rng.random(5) < pi] for i, pi in enumerate(p)}
        ci = stats.summarize(data).accuracy_interval
        assert ci is not None
        hits += ci.low <= 0.75 <= ci.high
    # 95% coverage: 600 runs put the observed rate within about +-2.2 points of the truth.
    assert 0.925 <= hits / runs <= 0.975


def test_summarize_numbers() -> None:
    accuracy = {"a": [1.0, 1.0], "b": [0.0, 1.0], "c": [1.0, 1.0]}
    latency = {"a": [1.0, 2.0], "b": [3.0, 4.0], "c": [5.0, 6.0]}
    cost = {"a": [0.01, 0.01], "b": [0.02, 0.02], "c": [0.03, 0.03]}
    s = stats.summarize(accuracy, latency, cost)
    assert s.n == 6 and s.n_cases == 3
    assert s.accuracy == pytest.approx(5 / 6)
    assert s.latency_p50 == 3.5
    assert s.latency_p95 == pytest.approx(np.percentile([1, 2, 3, 4, 5, 6], 95))
    assert s.cost_per_run == pytest.approx(0.02)
    assert s.cost_per_correct == pytest.approx(0.02 / (5 / 6))


def test_summarize_unknown_cost_and_nothing_correct() -> None:
    s = stats.summarize(cases([0.0, 0.0]), cost={"case00": [0.01], "case01": [None]})
    assert s.cost_per_run is None and s.cost_per_correct is None
    s = stats.summarize(cases([0.0, 0.0]), cost=cases([0.01, 0.01]))
    assert s.cost_per_run == pytest.approx(0.01) and s.cost_per_correct is None


def test_scores_outside_the_unit_interval_are_refused() -> None:
    with pytest.raises(ValueError, match="scores in \\[0, 1\\]"):
        stats.summarize({"a": [1.5]})


def test_formatting() -> None:
    assert stats.format_p(0.0004) == "p<0.001" and stats.format_p(0.0123) == "p=0.012"
    # An adjusted p capped at 1 is never printed as p=1.
    assert stats.format_p(1.0) == stats.format_p(0.62) == "p>0.5"
    assert stats.format_p(0.5) == "p=0.5"
    assert stats.format_ratio(1.34) == "+34%" and stats.format_ratio(0.5) == "-50%"
    assert stats.format_ratio(21.0) == "x21.0"
    assert stats.format_difference(0.1) == "+0.100"


def test_bootstrap_t_keeps_resamples_without_spread() -> None:
    """Five perfect cases and one half right: a third of the resamples are all perfect, so
    the studentized bootstrap cannot bound the mean from below. Dropping those resamples
    put the lower bound near 0.8 and undercovered small graded samples (81% at 6 cases)."""
    s = stats.summarize({f"c{i}": [1.0] for i in range(5)} | {"c5": [0.5]})
    assert s.accuracy_method == "bootstrap-t over case means"
    assert s.accuracy_interval is not None and s.accuracy_interval.low == 0.0
    spread = stats.summarize({f"c{i}": [0.25 * (i % 5)] for i in range(12)})
    assert spread.accuracy_interval is not None and 0.1 < spread.accuracy_interval.low < 0.5


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([0, 1, 0.0, 1.0]), min_size=1, max_size=300))
def test_one_pass_fail_case_is_summarised_as_numpy_would(values: list[float]) -> None:
    """A single case of 0s and 1s is summarised without numpy, to the same floats."""
    import numpy as np

    from pytest_agentpatterns.stats import Interval, accuracy_interval, summarize

    summary = summarize({"case": values})
    array = np.asarray(values, dtype=float)
    accuracy = float(np.mean([array.mean()]))
    interval, method = accuracy_interval([array])
    assert summary.accuracy == accuracy
    assert summary.accuracy_interval == Interval(
        min(interval.low, accuracy), max(interval.high, accuracy)
    )
    assert (summary.n, summary.n_cases, summary.accuracy_method) == (len(values), 1, method)
