"""Randomization tests: exact p-values, and intervals that are the same tests inverted."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from pytest_agentpatterns.randomization import EXACT_MAX, Paired, Unpaired


def brute_force_paired_p(d: np.ndarray, floor: float = 0.0) -> float:
    """Every sign assignment, the paired t written out plainly (an independent check)."""

    def t(x: np.ndarray) -> float:
        k = x.size
        mean = float(x.mean())
        spread = math.sqrt(float(x.var(ddof=1)) / k) if k > 1 else 0.0
        se = max(spread if spread > 1e-12 * max(1.0, abs(mean)) else 0.0, floor)
        if abs(mean) <= 1e-12:
            return 0.0
        return mean / se if se > 0 else math.copysign(math.inf, mean)

    observed = abs(t(d))
    draws = [abs(t(d * np.array(signs))) for signs in itertools.product((1, -1), repeat=d.size)]
    if observed == 0:
        return 1.0
    if math.isinf(observed):
        return sum(math.isinf(x) for x in draws) / len(draws)
    return sum(x >= observed * (1 - 1e-9) for x in draws) / len(draws)


def test_binary_paired_p_is_the_exact_mcnemar_test() -> None:
    # 14 cases, 8 discordant: 7 where only the candidate was right, 1 only the baseline.
    d = np.array([1.0] * 7 + [-1.0] + [0.0] * 6)
    result = Paired(d).result()
    assert result.exact
    assert result.p == pytest.approx(sps.binomtest(7, 8, 0.5).pvalue)


def test_every_case_differing_by_the_same_amount_is_exact_not_certain() -> None:
    result = Paired(np.full(6, 0.2)).result()
    assert math.isinf(result.t) and result.se == 0
    assert result.p == pytest.approx(2 / 2**6)  # only the two all-same-sign assignments
    assert result.min_p == pytest.approx(2 / 2**6)


def test_nothing_differs_gives_p_one() -> None:
    result = Paired(np.zeros(9)).result()
    assert result.t == 0 and result.p == 1.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([-1.0, -0.5, -0.2, 0.0, 0.2, 0.4, 1.0]), min_size=2, max_size=9),
    st.sampled_from([0.0, 0.05, 0.2]),
)
def test_paired_p_matches_brute_force(values: list[float], floor: float) -> None:
    d = np.array(values)
    assert Paired(d, floor).p_value() == pytest.approx(brute_force_paired_p(d, floor), abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(-1, 1, allow_nan=False), min_size=2, max_size=12),
    st.sampled_from([0.0, 0.03]),
    st.sampled_from([0.01, 0.05, 0.2]),
)
def test_interval_excludes_zero_exactly_when_the_test_rejects(
    values: list[float], floor: float, level: float
) -> None:
    design = Paired(np.round(np.array(values), 3), floor)
    low, high = design.interval(level, (-1.0, 1.0))
    assert low <= design.estimate <= high
    rejects = design.p_value(0.0) <= level
    assert rejects == (not (low <= 0.0 <= high))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]), min_size=2, max_size=7),
    st.lists(st.sampled_from([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]), min_size=2, max_size=7),
    st.sampled_from([0.01, 0.05, 0.3]),
)
def test_unpaired_interval_agrees_with_its_test(
    base: list[float], cand: list[float], level: float
) -> None:
    design = Unpaired(np.array(base), np.array(cand))
    low, high = design.interval(level, (-1.0, 1.0))
    assert low - 1e-9 <= design.estimate <= high + 1e-9
    assert (design.p_value(0.0) <= level) == (not (low <= 0.0 <= high))


def test_unpaired_exact_p_matches_scipy_permutation_test() -> None:
    base = np.array([0.2, 0.4, 0.4, 0.6, 0.5])
    cand = np.array([0.6, 0.8, 0.7, 1.0, 0.9, 0.8])

    def welch(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        return np.abs(sps.ttest_ind(x, y, equal_var=False, axis=axis).statistic)

    # P(|T| >= |t|) over every split of the pooled units: |Welch t|, upper tail.
    expected = sps.permutation_test(
        (cand, base),
        welch,
        permutation_type="independent",
        n_resamples=math.inf,
        vectorized=True,
        alternative="greater",
    ).pvalue
    result = Unpaired(base, cand).result()
    assert result.exact
    assert result.p == pytest.approx(expected, rel=1e-9)


def test_large_designs_sample_assignments_with_the_seed() -> None:
    rng = np.random.default_rng(3)
    d = rng.normal(0.1, 0.3, size=40)
    assert 2**40 > EXACT_MAX
    first, again, other = Paired(d, seed=1), Paired(d, seed=1), Paired(d, seed=2)
    assert not first.exact
    assert first.p_value() == again.p_value()
    assert first.interval(0.05, (-1, 1)) == again.interval(0.05, (-1, 1))
    # Another seed draws other assignments: close, not the same.
    assert other.p_value() == pytest.approx(first.p_value(), abs=0.01)
    t_p = sps.ttest_1samp(d, 0).pvalue
    assert first.p_value() == pytest.approx(t_p, abs=0.01)


def test_one_sided_p_is_half_the_two_sided_on_the_observed_side() -> None:
    design = Paired(np.array([0.2, 0.4, 0.1, 0.3, -0.1, 0.5, 0.2, 0.3]))
    two = design.p_value(0.0)
    assert design.one_sided_p(0.0, greater=True) == pytest.approx(two / 2)
    assert design.one_sided_p(0.0, greater=False) == pytest.approx(1 - two / 2)
    # Against a shift beyond the estimate the evidence points the other way.
    assert design.one_sided_p(0.5, greater=False) < 0.05


def test_wider_at_stricter_levels() -> None:
    design = Paired(np.array([0.2, 0.4, 0.0, 0.2, -0.2, 0.6, 0.4, 0.2, 0.0, 0.4]))
    loose = design.interval(0.2, (-1, 1))
    strict = design.interval(0.01, (-1, 1))
    assert strict[0] <= loose[0] and loose[1] <= strict[1]
