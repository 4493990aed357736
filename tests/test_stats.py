from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from pytest_agentpatterns import stats
from pytest_agentpatterns.stats import Comparison, Interval


def cases(*columns: Sequence[float]) -> dict[str, list[float]]:
    """One case per position; ``columns`` are the repetitions."""
    return {f"case{i:02d}": [float(c[i]) for c in columns] for i in range(len(columns[0]))}


# --- known answers ---------------------------------------------------------------------------


def test_wilson_interval_8_of_10() -> None:
    ci = stats.wilson_interval(8, 10)
    assert ci.low == pytest.approx(0.4902, abs=1e-4)
    assert ci.high == pytest.approx(0.9433, abs=1e-4)


def test_wilson_interval_edges() -> None:
    assert stats.wilson_interval(0, 0) == Interval(0.0, 1.0)
    assert stats.wilson_interval(10, 10).high == 1.0
    assert stats.wilson_interval(0, 10).low == 0.0
    with pytest.raises(ValueError, match="successes"):
        stats.wilson_interval(11, 10)


def test_newcombe_1998_unpaired_example() -> None:
    # Newcombe (1998), 56/70 vs 48/80, method 10: 0.0524 to 0.3339.
    ci = stats.newcombe_interval(56, 70, 48, 80)
    assert ci.low == pytest.approx(0.0524, abs=1e-4)
    assert ci.high == pytest.approx(0.3339, abs=1e-4)


def test_newcombe_paired_example() -> None:
    # Fagerland, Lydersen & Laake (2017) ch. 8, Cavo et al. table [[59, 6], [16, 80]]:
    # estimate -0.0621, 95% CI -0.1186 to -0.0046.
    ci = stats.newcombe_paired_interval(59, 6, 16, 80)
    assert ci.low == pytest.approx(-0.1186, abs=1e-4)
    assert ci.high == pytest.approx(-0.0046, abs=1e-4)


def test_mcnemar_exact_b10_c2() -> None:
    assert stats.mcnemar_exact(10, 2) == pytest.approx(0.0386, abs=1e-4)
    assert stats.mcnemar_exact(0, 0) == 1.0


def test_compare_accuracy_paired_uses_exact_mcnemar() -> None:
    # 10 cases only the baseline got right, 2 only the candidate, 18 both.
    base = [1] * 10 + [0] * 2 + [1] * 18
    cand = [0] * 10 + [1] * 2 + [1] * 18
    c = stats.compare_accuracy(cases(base), cases(cand))
    assert c.paired and c.n_cases == 30
    assert c.test.startswith("exact McNemar")
    assert c.estimate == pytest.approx(-8 / 30)
    assert c.p_value == pytest.approx(0.0386, abs=1e-4)
    assert c.interval is not None
    expected = stats.newcombe_paired_interval(18, 2, 10, 0)
    assert c.interval == expected


def test_compare_accuracy_unpaired_fisher_tea_tasting(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fisher's lady tasting tea, [[3, 1], [1, 3]]: two-sided p = 0.4857.
    monkeypatch.setattr(stats, "BOSCHLOO_MAX_RUNS", 0)
    c = stats.compare_accuracy({"tea": [1, 0, 0, 0]}, {"tea": [1, 1, 1, 0]})
    assert not c.paired
    assert c.test.startswith("Fisher exact")
    assert c.p_value == pytest.approx(0.4857, abs=1e-4)
    assert c.interval == stats.newcombe_interval(3, 4, 1, 4)


def test_compare_accuracy_unpaired_large_uses_fisher() -> None:
    base = {"only": [1.0] * 60 + [0.0] * 20}
    cand = {"only": [1.0] * 45 + [0.0] * 35}
    c = stats.compare_accuracy(base, cand)
    assert c.test.startswith("Fisher exact")
    assert c.p_value == pytest.approx(sps.fisher_exact([[45, 35], [60, 20]]).pvalue)


def test_compare_accuracy_unpaired_small_uses_boschloo() -> None:
    c = stats.compare_accuracy({"x": [1.0] * 9 + [0.0]}, {"x": [1.0] * 3 + [0.0] * 7})
    assert c.test.startswith("Boschloo exact")
    assert c.p_value == pytest.approx(sps.boschloo_exact([[3, 7], [9, 1]]).pvalue)
    assert c.estimate == pytest.approx(-0.6)


def test_holm_known_vector() -> None:
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_skips_none_and_nan() -> None:
    assert stats.holm([None, 0.02, math.nan, 0.04]) == [None, 0.04, None, 0.04]
    assert stats.holm([]) == []


def test_percentile_matches_numpy_and_handles_empty() -> None:
    assert stats.percentile([1, 2, 3, 4], 50) == 2.5
    assert stats.percentile([1, 2, 3, 4, 10], 95) == pytest.approx(
        np.percentile([1, 2, 3, 4, 10], 95)
    )
    assert math.isnan(stats.percentile([], 50))
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


# --- properties ------------------------------------------------------------------------------


@given(st.integers(0, 2000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_estimate_within_unit(kn: tuple[int, int]) -> None:
    k, n = kn
    ci = stats.wilson_interval(k, n)
    assert 0.0 <= ci.low <= ci.high <= 1.0
    if n:
        assert ci.low <= k / n <= ci.high


counts = st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@given(counts, counts)
def test_newcombe_contains_difference(a: tuple[int, int], b: tuple[int, int]) -> None:
    ci = stats.newcombe_interval(a[0], a[1], b[0], b[1])
    assert -1.0 <= ci.low <= a[0] / a[1] - b[0] / b[1] <= ci.high <= 1.0


@given(st.lists(st.integers(0, 100), min_size=4, max_size=4).filter(lambda c: sum(c) > 0))
def test_newcombe_paired_contains_difference(cells: list[int]) -> None:
    both, only_a, only_b, neither = cells
    ci = stats.newcombe_paired_interval(both, only_a, only_b, neither)
    assert -1.0 <= ci.low <= (only_a - only_b) / sum(cells) <= ci.high <= 1.0


scores = st.floats(0, 1, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(st.lists(scores, max_size=25), st.integers(0, 2**32 - 1))
def test_mean_interval_contains_mean_within_bounds(values: list[float], seed: int) -> None:
    ci = stats.mean_interval(values, seed=seed, bounds=(0.0, 1.0), n_resamples=500)
    assert 0.0 <= ci.low <= ci.high <= 1.0
    if values:
        mean = float(np.mean(values))
        assert ci.low - 1e-12 <= mean <= ci.high + 1e-12


case_scores = st.dictionaries(
    st.text("abcdef", min_size=1, max_size=3),
    st.lists(st.one_of(st.sampled_from([0.0, 1.0]), scores), min_size=1, max_size=4),
    max_size=8,
)


@settings(max_examples=40, deadline=None)
@given(case_scores)
def test_summary_accuracy_interval_contains_estimate(accuracy: dict[str, list[float]]) -> None:
    s = stats.summarize(accuracy, n_resamples=500)
    if not accuracy:
        assert s.accuracy is None and s.accuracy_interval is None
        return
    assert s.accuracy is not None and s.accuracy_interval is not None
    assert 0.0 <= s.accuracy_interval.low <= s.accuracy_interval.high <= 1.0
    assert s.accuracy_interval.low - 1e-12 <= s.accuracy <= s.accuracy_interval.high + 1e-12


binary_cases = st.lists(
    st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=8), min_size=1, max_size=5
)


@settings(max_examples=200, deadline=None)
@given(binary_cases, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_summary_interval_of_few_clustered_cases_contains_estimate(
    columns: list[list[float]], confidence: float
) -> None:
    s = stats.summarize({f"c{i}": v for i, v in enumerate(columns)}, confidence=confidence)
    assert s.accuracy is not None and s.accuracy_interval is not None
    ci = s.accuracy_interval
    assert 0.0 <= ci.low <= s.accuracy <= ci.high <= 1.0
    if 0 < s.accuracy < 1:
        assert ci.high - ci.low > 0  # some outcomes differ: never a zero-width interval


def test_summary_few_alike_cases_get_a_design_effect_wilson_interval() -> None:
    # Four cases, each right 7 times in 8: the case means are all 0.875, which once gave a
    # zero-width cluster-bootstrap interval. The repetitions still carry binomial noise.
    s = stats.summarize({f"c{i}": [1.0] * 7 + [0.0] for i in range(4)})
    assert s.accuracy == 0.875 and s.accuracy_method == "wilson (design effect)"
    assert s.accuracy_interval == stats.wilson_interval(28, 32)
    # Cases that differ widely are worth fewer independent runs: the interval widens.
    spread = stats.summarize({"a": [1.0] * 8, "b": [0.0] * 8, "c": [1.0] * 8, "d": [1.0] * 8})
    assert spread.accuracy_interval is not None
    pooled = stats.wilson_interval(24, 32)
    assert spread.accuracy_interval.high - spread.accuracy_interval.low > 2 * (
        pooled.high - pooled.low
    )
    graded = stats.summarize({"a": [0.5, 0.7], "b": [0.6, 0.6], "c": [0.5, 0.7]})
    assert graded.accuracy_method == "t (per-case means)"
    assert graded.accuracy_interval is not None and graded.accuracy_interval.low < 0.6


SCENARIOS = (
    "accuracy paired binary",
    "accuracy paired graded",
    "accuracy unpaired cases",
    "accuracy single case graded",
    "ratio paired",
    "ratio unpaired cases",
    "ratio single case",
)


def simulate(
    scenario: str, rng: np.random.Generator, n_cases: int, reps: int, effect: float
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Baseline and candidate runs of one scenario; ``effect`` in [-1, 1] shifts the candidate."""
    if scenario.startswith("ratio"):
        case = rng.lognormal(0, 0.5, n_cases)
        base = case[:, None] * rng.lognormal(0, 0.3, (n_cases, reps))
        cand = case[:, None] * math.exp(effect / 2) * rng.lognormal(0, 0.3, (n_cases, reps))
    else:
        p = 1 / (1 + np.exp(-rng.normal(0.5, 1.0, n_cases)))
        q = np.clip(p + effect / 3, 0, 1)
        base = (rng.random((n_cases, reps)) < p[:, None]).astype(float)
        cand = (rng.random((n_cases, reps)) < q[:, None]).astype(float)
        if "graded" in scenario:
            base = np.clip(p[:, None] + rng.normal(0, 0.1, (n_cases, reps)), 0, 1)
            cand = np.clip(q[:, None] + rng.normal(0, 0.1, (n_cases, reps)), 0, 1)
    b = {f"c{i}": base[i].astype(float).tolist() for i in range(n_cases)}
    c = {f"c{i}": cand[i].astype(float).tolist() for i in range(n_cases)}
    if "unpaired" in scenario:
        c = {f"d{i}": v for i, v in enumerate(c.values())}
    if "single case" in scenario:
        b = {"only": [x for v in b.values() for x in v]}
        c = {"only": [x for v in c.values() for x in v]}
    return b, c


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(SCENARIOS),
    st.integers(0, 2**32 - 1),
    st.integers(2, 10),
    st.integers(1, 8),
    st.floats(-1, 1),
    st.sampled_from([0.8, 0.9, 0.95, 0.99]),
)
def test_interval_excludes_no_change_exactly_when_p_is_below_alpha(
    scenario: str, seed: int, n_cases: int, reps: int, effect: float, confidence: float
) -> None:
    if scenario in ("accuracy paired binary", "accuracy unpaired cases") and reps == 1:
        # One binary outcome per unit gets an exact test and a Newcombe interval instead:
        # not one statistic, so they agree only approximately.
        reps = 2
    base, cand = simulate(scenario, np.random.default_rng(seed), n_cases, reps, effect)
    alpha = 1 - confidence
    if scenario.startswith("ratio"):
        c = stats.compare_ratio("latency", base, cand, statistic="p95", confidence=confidence)
        null = 1.0
    else:
        c = stats.compare_accuracy(base, cand, confidence=confidence)
        null = 0.0
    assert "t-test" in c.test and c.p_value is not None and c.estimate is not None
    if c.interval is None:
        assert c.p_value == 1.0
        return
    assert c.interval.low <= c.estimate <= c.interval.high
    if (
        abs(c.p_value - alpha) < 1e-9
        or min(abs(c.interval.low - null), abs(c.interval.high - null)) < 1e-9
    ):
        return  # on the boundary, rounding decides
    assert (null not in c.interval) == (c.p_value < alpha)


p_values = st.lists(st.one_of(st.none(), st.floats(0, 1, allow_nan=False)), max_size=30)


@given(p_values)
def test_holm_properties(raw: list[float | None]) -> None:
    adjusted = stats.holm(raw)
    assert len(adjusted) == len(raw)
    pairs = [(p, a) for p, a in zip(raw, adjusted, strict=True) if p is not None]
    assert all(a is None for p, a in zip(raw, adjusted, strict=True) if p is None)
    for p, a in pairs:
        assert a is not None
        assert p <= a <= 1.0
    for p, a in pairs:
        for q, b in pairs:
            assert a is not None and b is not None
            if p <= q:
                assert a <= b


# --- pareto and recommendation ---------------------------------------------------------------


def test_recommend_cheapest_not_significantly_less_accurate() -> None:
    rng = np.random.default_rng(3)
    truth = rng.random(40) < 0.85
    good = cases([float(x) for x in truth])
    nearly = cases([float(x) for x in truth[:-1]] + [0.0])  # one case worse: not significant
    bad = cases([float(x) for x in truth[:20]] + [0.0] * 20)
    rec = stats.recommend(
        {"hybrid": good, "single": nearly, "cheap-bad": bad},
        cost={"hybrid": 0.01, "single": 0.002, "cheap-bad": 0.001},
        latency={"hybrid": 3.0, "single": 1.0, "cheap-bad": 0.5},
    )
    assert rec is not None
    name, reason = rec
    assert name == "single"
    assert reason.startswith("single: cheapest ($0.002/run) and fastest")
    assert "not significantly less accurate than hybrid" in reason


def test_recommend_best_when_all_others_worse_and_none_without_runs() -> None:
    good = cases([1.0] * 30)
    bad = cases([0.0] * 30)
    rec = stats.recommend({"a": good, "b": bad}, {"a": 1.0, "b": 0.1}, {"a": 1.0, "b": 0.1})
    assert rec is not None and rec.pattern == "a"
    assert "every other pattern is significantly less accurate" in rec.reason
    assert stats.recommend({"a": {}}, {}, {}) is None


def test_recommend_ranks_unknown_cost_last() -> None:
    same = cases([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    rec = stats.recommend({"a": same, "b": same}, {"a": None, "b": 0.5}, {"a": 0.1, "b": 9.0})
    assert rec is not None and rec.pattern == "b"


# --- design: paired or not -------------------------------------------------------------------


def test_design_paired_on_common_cases() -> None:
    d = stats.design({"a": [1.0], "b": [0.0], "c": [1.0]}, {"b": [1.0], "c": [1.0], "d": [0.0]})
    assert d.paired and d.n_cases == 2
    assert [u.tolist() for u in d.baseline] == [[0.0], [1.0]]


def test_design_single_case_is_unpaired_over_repetitions() -> None:
    d = stats.design({"only": [1.0, 0.0, 1.0]}, {"only": [1.0, 1.0]})
    assert not d.paired
    assert len(d.baseline) == 3 and len(d.candidate) == 2


def test_design_disjoint_cases_is_unpaired_over_cases() -> None:
    d = stats.design({"a": [1.0, 0.0], "b": [1.0]}, {"c": [1.0], "d": [0.0, 0.0]})
    assert not d.paired and d.n_cases == 4
    assert len(d.baseline) == 2 and len(d.candidate) == 2


def test_design_ignores_mapping_order() -> None:
    a = stats.compare_ratio(
        "latency", {"x": [1.0], "y": [2.0], "z": [3.0]}, {"z": [3.5], "x": [1.1], "y": [2.4]}
    )
    b = stats.compare_ratio(
        "latency", {"z": [3.0], "y": [2.0], "x": [1.0]}, {"y": [2.4], "x": [1.1], "z": [3.5]}
    )
    assert a == b


def test_paired_repetitions_use_t_on_case_means() -> None:
    base = cases([0.9, 0.5, 0.7, 0.8, 0.3, 0.6], [0.92, 0.52, 0.69, 0.8, 0.31, 0.6])
    cand = cases([0.2, 0.6, 0.1, 0.5, 0.3, 0.2], [0.21, 0.6, 0.12, 0.5, 0.3, 0.22])
    c = stats.compare_accuracy(base, cand)
    assert c.paired and c.test == "t-test on per-case differences, paired"
    diffs = np.array([np.mean(cand[k]) - np.mean(base[k]) for k in sorted(base)])
    assert c.estimate == pytest.approx(diffs.mean())
    assert c.p_value == pytest.approx(sps.ttest_1samp(diffs, 0).pvalue)
    low, high = sps.t.interval(0.95, diffs.size - 1, diffs.mean(), sps.sem(diffs))
    assert c.interval is not None
    assert (c.interval.low, c.interval.high) == pytest.approx((low, high))


def test_constant_nonzero_ratio_is_certain_not_no_difference() -> None:
    # parallel(n=5) costs exactly five times single in every case.
    base = {f"c{i}": [0.001 * (i + 1)] * 4 for i in range(6)}
    cand = {k: [5 * x for x in v] for k, v in base.items()}
    c = stats.compare_ratio("cost", base, cand, statistic="mean")
    assert c.estimate == pytest.approx(5.0)
    assert c.interval is not None
    assert (c.interval.low, c.interval.high) == pytest.approx((5.0, 5.0))
    assert c.p_value == 0.0 and c.note is None
    others = [replace(c, metric="other", p_value=1.0) for _ in range(83)]
    adjusted = stats.adjust([c, *others])
    assert adjusted[0].p_adjusted == 0.0 and adjusted[0].note is None
    # The same for accuracy: every case goes from always wrong to always right.
    acc = stats.compare_accuracy(cases([0.0] * 6, [0.0] * 6), cases([1.0] * 6, [1.0] * 6))
    assert acc.estimate == 1.0 and acc.p_value == 0.0 and acc.note is None


def test_no_difference_observed_only_when_every_difference_is_zero() -> None:
    same = {f"c{i}": [float(i + 1)] * 3 for i in range(6)}
    c = stats.compare_ratio("cost", same, same, statistic="mean")
    assert c.p_value == 1.0
    assert c.note == "no difference observed (every difference is exactly zero)"
    # Zero on average, but the cases differ: not "no difference observed".
    base = {f"c{i}": [1.0, 0.0] for i in range(6)}
    cand = {f"c{i}": [0.0, 0.0] if i % 2 else [1.0, 1.0] for i in range(6)}
    a = stats.compare_accuracy(base, cand)
    assert a.estimate == 0.0 and a.p_value == 1.0
    assert a.note is not None and a.note.startswith("no detectable difference")


def test_strong_paired_accuracy_survives_holm_at_six_cases() -> None:
    # 6 cases x 8 repetitions: the candidate is right 7 or 8 times in 8, the baseline once
    # or twice.
    base = {f"c{i}": [1.0] * k + [0.0] * (8 - k) for i, k in enumerate([2, 1, 2, 2, 1, 2])}
    cand = {f"c{i}": [1.0] * k + [0.0] * (8 - k) for i, k in enumerate([7, 8, 7, 8, 7, 8])}
    c = stats.compare_accuracy(base, cand)
    assert c.p_value is not None and c.p_value * 84 < 0.001
    # Wilcoxon's floor at 6 cases (2/2**6 = 0.031) could never have done that.
    assert 2 / 2**6 * 84 > 1


def test_unpaired_graded_uses_welch() -> None:
    base, cand = [0.2, 0.4, 0.5, 0.3], [0.9, 0.8, 0.7, 0.95]
    c = stats.compare_accuracy({"x": base}, {"x": cand})
    assert not c.paired and c.test == "Welch t-test on per-unit means, unpaired"
    assert c.estimate == pytest.approx(0.8375 - 0.35)
    assert c.p_value == pytest.approx(sps.ttest_ind(cand, base, equal_var=False).pvalue)


def test_accuracy_rejects_out_of_range_scores() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.compare_accuracy({"x": [2.0]}, {"x": [1.0]})


# --- ratios ----------------------------------------------------------------------------------


@pytest.mark.parametrize("statistic", ["p50", "p95", "mean"])
def test_compare_ratio_paired_detects_slowdown(statistic: stats.Statistic) -> None:
    rng = np.random.default_rng(7)
    base_times = rng.lognormal(0, 0.4, (30, 3))
    cand_times = base_times * 1.5 * rng.lognormal(0, 0.05, (30, 3))
    base = cases(*base_times.T.tolist())
    cand = cases(*cand_times.T.tolist())
    c = stats.compare_ratio("latency", base, cand, statistic=statistic)
    assert c.kind == "ratio" and c.paired and c.n_cases == 30
    assert c.estimate == pytest.approx(1.5, rel=0.1)
    assert c.interval is not None and c.estimate in c.interval
    assert 1.3 < c.interval.low and c.interval.high < 1.8
    assert c.p_value is not None and c.p_value < 1e-6
    assert c.note is None


def test_compare_ratio_paired_is_t_on_per_case_log_ratios_of_the_statistic() -> None:
    base = {"a": [1.0, 2.0, 3.0], "b": [4.0], "c": [5.0, 6.0]}
    cand = {"a": [2.0, 2.0, 9.0], "b": [1.0], "c": [5.0, 7.0]}
    c = stats.compare_ratio("latency", base, cand, statistic="p95")
    logs = np.array(
        [np.log(np.percentile(cand[k], 95) / np.percentile(base[k], 95)) for k in "abc"]
    )
    assert c.test == "t-test on per-case log ratios of the p95, paired"
    assert c.estimate == pytest.approx(math.exp(logs.mean()))
    assert c.p_value == pytest.approx(sps.ttest_1samp(logs, 0).pvalue)
    low, high = sps.t.interval(0.95, 2, logs.mean(), sps.sem(logs))
    assert c.interval is not None
    assert (c.interval.low, c.interval.high) == pytest.approx((math.exp(low), math.exp(high)))


def test_ratio_with_a_zero_on_one_side_is_undefined_and_zero_zero_cases_are_left_out() -> None:
    base = {"a": [0.0], "b": [1.0], "c": [2.0], "d": [3.0]}
    cand = {"a": [0.0], "b": [2.0], "c": [4.0], "d": [6.0]}
    c = stats.compare_ratio("cost", base, cand, statistic="mean")
    assert c.estimate == pytest.approx(2.0) and c.p_value == 0.0
    cand["a"] = [0.5]
    c = stats.compare_ratio("cost", base, cand, statistic="mean")
    assert c.estimate is None
    assert c.note == "not compared: ratio undefined: some baseline cases have a mean of 0 or less"


def test_compare_ratio_is_deterministic_given_seed() -> None:
    rng = np.random.default_rng(1)
    base = {"x": rng.lognormal(0, 0.4, 25).tolist()}
    cand = {"x": rng.lognormal(0, 0.4, 25).tolist()}
    a = stats.compare_ratio("latency", base, cand, statistic="p95", seed=11)
    b = stats.compare_ratio("latency", base, cand, statistic="p95", seed=11)
    assert a == b
    assert not a.paired and a.test == "Welch t-test on log values, unpaired"
    logs_b, logs_c = np.log(base["x"]), np.log(cand["x"])
    assert a.p_value == pytest.approx(sps.ttest_ind(logs_c, logs_b, equal_var=False).pvalue)
    assert a.estimate == pytest.approx(math.exp(logs_c.mean() - logs_b.mean()))


def test_underpowered_comparison_says_what_it_could_miss() -> None:
    base = {"x": [1.0, 1.0, 0.0, 1.0, 0.0]}
    cand = {"x": [1.0, 0.0, 1.0, 1.0, 0.0]}
    c = stats.compare_accuracy(base, cand)
    assert c.p_value is not None and c.p_value >= 0.05
    assert c.mde is not None and c.mde > 0.5
    assert c.note == f"no detectable difference (n too small: could miss up to {c.mde:.2f})"
    r = stats.compare_ratio("latency", {"x": [1.0, 1.3, 0.8]}, {"x": [1.1, 0.9, 1.2]})
    assert r.note is not None and r.note.endswith("x either way)")


def test_mde_is_normal_approximation_from_interval() -> None:
    c = stats.compare_accuracy({"x": [1.0] * 20 + [0.0] * 20}, {"x": [1.0] * 22 + [0.0] * 18})
    assert c.interval is not None and c.mde is not None
    se = (c.interval.high - c.interval.low) / (2 * sps.norm.ppf(0.975))
    assert c.mde == pytest.approx((sps.norm.ppf(0.975) + sps.norm.ppf(0.8)) * se)


def test_adjust_applies_holm_over_all_and_refreshes_notes() -> None:
    def comparison(p: float | None) -> Comparison:
        return Comparison(
            metric="accuracy",
            kind="difference",
            estimate=0.1,
            interval=Interval(0.01, 0.19),
            p_value=p,
            p_adjusted=None,
            test="t",
            paired=True,
            n_cases=30,
            mde=0.13,
        )

    out = stats.adjust([comparison(0.01), comparison(0.04), comparison(None), comparison(0.03)])
    assert [c.p_adjusted for c in out] == pytest.approx([0.03, 0.06, None, 0.06])
    assert out[0].note is None
    assert out[1].note == "no detectable difference (n too small: could miss up to 0.13)"
    assert out[2].note is None and out[2].p_adjusted is None


# --- degenerate data -------------------------------------------------------------------------


def test_degenerate_inputs_do_not_warn_or_fail() -> None:
    # pytest runs with warnings as errors, so any scipy RuntimeWarning would fail this test.
    same = cases([1.0] * 10)
    c = stats.compare_accuracy(same, same)
    assert c.estimate == 0.0 and c.p_value == 1.0
    reps = cases([1.0] * 6, [1.0] * 6)
    c = stats.compare_accuracy(reps, reps)
    assert c.estimate == 0.0 and c.p_value == 1.0
    assert c.note == "no difference observed (every difference is exactly zero)"
    flat = cases([2.0] * 8, [2.0] * 8)
    r = stats.compare_ratio("latency", flat, flat, statistic="p95")
    assert r.estimate == 1.0 and r.interval == Interval(1.0, 1.0) and r.p_value == 1.0
    r = stats.compare_ratio("latency", {"x": [1.0, 1.0]}, {"x": [1.0, 1.0]}, statistic="mean")
    assert r.estimate == 1.0 and r.p_value == 1.0
    assert stats.mean_interval([0.3, 0.3, 0.3]) == Interval(0.3, 0.3)
    assert stats.mean_interval([0.5]) == Interval(-math.inf, math.inf)
    assert stats.mean_interval([], bounds=(0.0, 1.0)) == Interval(0.0, 1.0)


def test_empty_and_unknown_inputs_are_unavailable_not_guessed() -> None:
    c = stats.compare_accuracy({}, cases([1.0, 0.0]))
    assert c.estimate is None and c.p_value is None
    assert c.note == "not compared: no runs for the baseline"
    r = stats.compare_ratio("cost", {"x": [0.01, None]}, {"x": [0.02, 0.02]})
    assert r.estimate is None and r.note == "not compared: cost unknown for some baseline runs"
    r = stats.compare_ratio("cost", {"x": [0.0, 0.0]}, {"x": [0.02, 0.02]}, statistic="mean")
    assert r.estimate is None and r.note is not None and "ratio undefined" in r.note
    r = stats.compare_ratio("latency", {"x": [1.0]}, {"x": [2.0]})
    assert r.estimate == 2.0 and r.interval is None and r.p_value == 1.0
    assert stats.adjust([r, c]) == [
        Comparison(**{**r.__dict__, "p_adjusted": 1.0}),
        c,
    ]


def test_summarize_numbers() -> None:
    accuracy = {"a": [1.0, 1.0], "b": [0.0, 1.0], "c": [1.0, 1.0]}
    latency = {"a": [1.0, 2.0], "b": [3.0, 4.0], "c": [5.0, 6.0]}
    cost = {"a": [0.01, 0.01], "b": [0.02, 0.02], "c": [0.03, 0.03]}
    s = stats.summarize(accuracy, latency, cost)
    assert s.n == 6 and s.n_cases == 3
    assert s.accuracy == pytest.approx(5 / 6)
    assert s.accuracy_method == "wilson (design effect)"
    assert s.latency_p50 == 3.5
    assert s.latency_p95 == pytest.approx(np.percentile([1, 2, 3, 4, 5, 6], 95))
    assert s.cost_per_run == pytest.approx(0.02)
    assert s.cost_per_correct == pytest.approx(0.02 / (5 / 6))
    binary = stats.summarize(cases([1, 1, 1, 1, 1, 1, 1, 1, 0, 0]))
    assert binary.accuracy_method == "wilson"
    assert binary.accuracy_interval == stats.wilson_interval(8, 10)


def test_summarize_unknown_cost_and_nothing_correct() -> None:
    s = stats.summarize(cases([0.0, 0.0]), cost={"case00": [0.01], "case01": [None]})
    assert s.cost_per_run is None and s.cost_per_correct is None
    s = stats.summarize(cases([0.0, 0.0]), cost=cases([0.01, 0.01]))
    assert s.cost_per_run == pytest.approx(0.01) and s.cost_per_correct is None
