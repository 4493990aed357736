"""Latency and cost ratios: estimates with intervals, quantiles kept as quantiles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from pytest_agentpatterns import ratios


def test_paired_ratio_is_the_geometric_mean_of_per_case_ratios_with_a_t_interval() -> None:
    base = {"a": [1.0, 1.2], "b": [2.0, 2.2], "c": [0.5, 0.7], "d": [3.0, 3.0]}
    cand = {"a": [1.5, 1.7], "b": [2.0, 2.6], "c": [1.0, 1.0], "d": [3.3, 3.9]}
    r = ratios.ratio("latency_p50", base, cand, statistic="p50")
    logs = np.log([np.median(cand[k]) / np.median(base[k]) for k in sorted(base)])
    assert r.paired and r.estimate == pytest.approx(math.exp(logs.mean()))
    half = sps.t.ppf(0.975, 3) * logs.std(ddof=1) / 2
    assert r.interval is not None
    assert r.interval.low == pytest.approx(math.exp(logs.mean() - half))
    assert r.interval.high == pytest.approx(math.exp(logs.mean() + half))


def test_a_ratio_that_is_the_same_on_every_case_prints_without_an_interval() -> None:
    base = {k: [0.001, 0.001] for k in "abcdef"}
    cand = {k: [0.005, 0.005] for k in "abcdef"}
    r = ratios.ratio("cost", base, cand, statistic="mean")
    assert r.constant and r.interval is None and r.estimate == pytest.approx(5.0)


def test_single_case_p95_is_a_ratio_of_quantiles_not_of_geometric_means() -> None:
    rng = np.random.default_rng(0)
    base = rng.lognormal(0, 0.2, size=200)
    cand = base.copy()
    cand[rng.permutation(200)[:20]] *= 5  # 10% of runs five times slower
    r = ratios.ratio("latency_p95", {"only": list(base)}, {"only": list(cand)}, statistic="p95")
    expected = np.percentile(cand, 95) / np.percentile(base, 95)
    assert r.estimate == pytest.approx(expected)
    geometric = math.exp(np.log(cand).mean() - np.log(base).mean())
    assert r.estimate > 2.5 > geometric  # the tail moved; the typical run did not
    assert r.interval is not None and r.interval.low > 1.2
    assert r.method.startswith("ratio of the runs' p95")


def test_bootstrap_is_seeded() -> None:
    base = {"only": [1.0, 1.3, 0.9, 1.1, 1.6, 1.2, 1.0]}
    cand = {"only": [1.2, 1.5, 1.1, 1.4, 2.0, 1.3, 1.1]}
    one = ratios.ratio("latency_mean", base, cand, statistic="mean", seed=4)
    two = ratios.ratio("latency_mean", base, cand, statistic="mean", seed=4)
    assert one.interval is not None and one.interval == two.interval


def test_unknown_values_make_the_ratio_unavailable() -> None:
    r = ratios.ratio("cost", {"a": [0.1, None]}, {"a": [0.1, 0.1]}, statistic="mean")
    assert r.estimate is None and r.note == "cost unknown for some baseline runs"
    zero = ratios.ratio(
        "cost", {"a": [0.0], "b": [1.0]}, {"a": [1.0], "b": [1.0]}, statistic="mean"
    )
    assert zero.estimate is None and "undefined" in (zero.note or "")


def test_one_sided_p_values_read_the_same_statistic_as_the_bounds() -> None:
    base = {k: [1.0 + 0.1 * i] for i, k in enumerate("abcdefghij")}
    cand = {k: [v[0] * (1.3 + 0.05 * (i % 3))] for i, (k, v) in enumerate(base.items())}
    r = ratios.ratio("latency_mean", base, cand, statistic="mean")
    bounds = r.bounds(0.05)
    assert bounds is not None
    p = r.p_above(bounds.low)
    assert p is not None and p == pytest.approx(0.05, rel=1e-6)
    q = r.p_below(bounds.high)
    assert q is not None and q == pytest.approx(0.05, rel=1e-6)


def test_a_single_cases_p95_from_few_runs_is_not_bounded() -> None:
    """With 20 runs a side the largest run is below the p95 36% of the time, so no
    distribution-free bound exists: the ratio says so instead of resampling the tail."""
    rng = np.random.default_rng(2)
    base, cand = rng.lognormal(0, 0.3, 20), 3 * rng.lognormal(0, 0.3, 20)
    r = ratios.ratio("latency_p95", {"a": list(base)}, {"a": list(cand)}, statistic="p95")
    assert r.interval is None and r.note == "too few runs to bound a p95 at 95%"
    assert r.reachable(0.05) == (False, False)
    assert r.p_above(1.2) is not None and r.p_above(1.2) > 0.05


def test_single_case_quantile_bounds_are_exact_order_statistics() -> None:
    """Each side's bound is an order statistic whose risk is a binomial tail: a p50 of
    30 runs is bounded by the 10th and 21st smallest at the joint level."""
    base = [float(i) for i in range(1, 31)]
    cand = [2.0 * x for x in base]
    r = ratios.ratio("latency_p50", {"a": base}, {"a": cand}, statistic="p50")
    assert r.method.startswith("ratio of the runs' p50, exact order-statistic")
    split = 1 - math.sqrt(1 - 0.025)
    low_i = max(i for i in range(1, 31) if sps.binom.cdf(i - 1, 30, 0.5) <= split)
    high_j = min(j for j in range(1, 31) if sps.binom.sf(j - 1, 30, 0.5) <= split)
    assert r.interval == ratios.Interval(2 * low_i / high_j, 2 * high_j / low_i)
    lowest = 2 * low_i / high_j
    above, beyond = r.p_above(lowest * 0.999), r.p_above(lowest * 1.001)
    assert above is not None and beyond is not None and above <= 0.025 < beyond
