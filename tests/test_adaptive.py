"""Adaptive runs: the decision after each round agrees with the summary's test, spends alpha
as planned, stops when it should and sends repetitions where outcomes still vary."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import binom

from pytest_agentpatterns import adaptive, family, sequential

Data = dict[str, dict[str, list[float]]]


def names(cases: int) -> list[str]:
    return [f"c{i:02d}" for i in range(cases)]


def simulate(
    rng: np.random.Generator,
    accuracies: dict[str, np.ndarray],
    settings: adaptive.Settings,
    *,
    seed: int = 0,
    intervals: bool = False,
) -> tuple[Data, list[adaptive.Decision], list[Data]]:
    """One adaptive run of binary outcomes; the data as each look saw them."""
    cases = names(len(next(iter(accuracies.values()))))
    data: Data = {p: {c: [] for c in cases} for p in accuracies}
    add = dict.fromkeys(cases, settings.first_round)
    decisions: list[adaptive.Decision] = []
    seen: list[Data] = []
    while True:
        for i, case in enumerate(cases):
            for pattern, p in accuracies.items():
                data[pattern][case] += [float(x) for x in rng.random(add[case]) < p[i]]
        seen.append({p: {c: list(v) for c, v in s.items()} for p, s in data.items()})
        decision = adaptive.decide(
            data, "base", decisions, settings, seed=seed, intervals=intervals
        )
        decisions.append(decision)
        if decision.stop is not None:
            return data, decisions, seen
        add = dict(decision.allocation)


# --- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize("most", range(2, 31))
def test_settings_for_max_look_at_most_five_times(most: int) -> None:
    s = adaptive.Settings.for_max(most, 0.05)
    assert s.first_round >= 2 and s.round_size >= 1 and s.max_repeat == most
    assert s.looks <= adaptive.LOOKS
    assert s.first_round + (s.looks - 1) * s.round_size >= most


def test_settings_for_ten_are_two_then_rounds_of_two() -> None:
    s = adaptive.Settings.for_max(10, 0.05, precision=0.2)
    assert (s.first_round, s.round_size, s.looks, s.precision) == (2, 2, 5, 0.2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.0}, "alpha must be in"),
        ({"first_round": 11}, "first_round must be between 1 and max_repeat"),
        ({"round_size": 0}, "round_size must be 1 or more"),
        ({"precision": 0.0}, "precision must be in"),
    ],
)
def test_settings_refuse_what_cannot_run(kwargs: dict[str, float], message: str) -> None:
    values: dict[str, float | None] = {
        "alpha": 0.05,
        "max_repeat": 10,
        "first_round": 2,
        "round_size": 2,
        "precision": None,
    }
    values.update(kwargs)
    with pytest.raises(ValueError, match=message):
        adaptive.Settings(**values)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_repeat of 2 or more"):
        adaptive.Settings.for_max(1, 0.05)


# --- allocation ------------------------------------------------------------------------------


def test_allocation_gives_nothing_to_constant_cases_and_follows_the_spread() -> None:
    settings = adaptive.Settings(0.05, 10, 2, 3)
    patterns = {
        "base": {
            "right": [1, 1, 1, 1],
            "wrong": [0, 0, 0, 0],
            "split": [1, 1, 1, 1],
            "noisy": [1, 0, 1, 0],
            "some": [1, 1, 1, 0],
        },
        "other": {
            "right": [1, 1, 1, 1],
            "wrong": [0, 0, 0, 0],
            "split": [0, 0, 0, 0],
            "noisy": [0, 1, 0, 1],
            "some": [1, 1, 1, 1],
        },
    }
    out = adaptive.allocate(patterns, settings)
    assert out["right"] == out["wrong"] == out["split"] == 0
    assert sum(out.values()) == 3 * 2  # round_size x the two open cases
    # In proportion to the spread, sqrt(1/3) against sqrt(1/8): 3.72 and 2.28, rounded.
    assert (out["noisy"], out["some"]) == (4, 2)
    # Mapping order never changes the allocation.
    reordered = {p: dict(reversed(list(s.items()))) for p, s in reversed(list(patterns.items()))}
    assert adaptive.allocate(reordered, settings) == out


def test_a_case_constant_on_too_few_runs_is_not_yet_settled() -> None:
    settings = adaptive.Settings(0.05, 10, 2, 2)
    assert adaptive.settled_after(settings) == 4
    early = {
        "base": {"lucky": [1, 1], "noisy": [1, 0]},
        "other": {"lucky": [1, 1], "noisy": [0, 1]},
    }
    out = adaptive.allocate(early, settings)
    # Two right answers of two: the add-half rate 2.5/3 has sd 0.37, against 0.71 for
    # "noisy" (sample variance 1/2): 4 repetitions shared 1.37 : 2.63.
    assert out == {"lucky": 1, "noisy": 3}
    later = {p: {c: v * 2 for c, v in s.items()} for p, s in early.items()}
    assert adaptive.allocate(later, settings)["lucky"] == 0  # constant on 4 runs: settled


def test_allocation_is_capped_at_max_and_passes_the_rest_on() -> None:
    settings = adaptive.Settings(0.05, 6, 2, 2)
    patterns = {
        "base": {"almost": [1, 0, 1, 0, 1], "early": [1, 0], "calm": [1, 1]},
        "other": {"almost": [0, 1, 0, 1, 0], "early": [0, 1], "calm": [1, 0]},
    }
    out = adaptive.allocate(patterns, settings)
    assert sum(out.values()) == 2 * 3
    # "almost" would get 1.87 of 6 but has room for 1; the other 5 go 2.93 : 2.07.
    assert out == {"almost": 1, "early": 3, "calm": 2}
    at_max = {p: {c: v + [1.0] * (6 - len(v)) for c, v in s.items()} for p, s in patterns.items()}
    assert set(adaptive.allocate(at_max, settings).values()) == {0}


def test_a_test_with_nothing_left_to_vary_stops_at_max_and_spends_all_of_alpha() -> None:
    settings = adaptive.Settings.for_max(10, 0.05)
    settled = adaptive.settled_after(settings)
    constant = {"base": {c: [1.0] * settled for c in names(8)}}
    constant["a"] = {
        c: [0.0] * settled if i < 2 else [1.0] * settled for i, c in enumerate(names(8))
    }
    constant["b"] = {c: [1.0] * settled for c in names(8)}
    decision = adaptive.decide(constant, "base", [], settings)
    assert decision.stop == "max" and decision.final
    assert set(decision.allocation.values()) == {0}
    for look in decision.comparisons:
        assert look.fraction == 1.0
        assert look.level == pytest.approx(0.05 / 2)  # one look, Bonferroni over 2


# --- the decision agrees with the summary ----------------------------------------------------


@pytest.mark.parametrize("run", range(8))
def test_decided_exactly_when_the_summary_test_rejects_at_the_look_level(run: int) -> None:
    rng = np.random.default_rng([11, run])
    base = rng.uniform(0.3, 0.7, 12)
    accuracies = {"base": base, "same": base.copy(), "better": np.clip(base + 0.35, 0, 1)}
    settings = adaptive.Settings.for_max(6, 0.05)
    _, decisions, seen = simulate(rng, accuracies, settings, seed=run, intervals=True)
    decided_before: set[str] = set()
    for decision, data in zip(decisions, seen, strict=True):
        levels = {look.pattern: look.level for look in decision.comparisons}
        fam = family.compare("t", "base", data, alpha=0.05, seed=run, levels=levels)
        assert fam.sequential and fam.size == 2
        for look, comparison in zip(decision.comparisons, fam.comparisons, strict=True):
            assert comparison.pattern == look.pattern
            assert comparison.p_value == look.p_value
            crossed = look.p_value is not None and look.p_value <= look.level
            assert comparison.significant == crossed
            assert look.decided == (crossed or look.pattern in decided_before)
            if look.interval is not None and comparison.interval is not None:
                assert look.interval == comparison.interval
                assert (0.0 not in look.interval) == crossed
        decided_before |= {look.pattern for look in decision.comparisons if look.decided}
    final = decisions[-1]
    fam = family.compare("t", "base", seen[-1], seed=run, levels=adaptive.final_levels(final))
    assert {c.pattern for c in fam.comparisons if c.significant} == {
        look.pattern for look in final.comparisons if look.decided
    }
    for comparison in fam.comparisons:
        if comparison.significant:
            assert comparison.p_adjusted is not None and comparison.p_adjusted <= 0.05


def test_levels_are_the_boundaries_of_the_fractions_seen() -> None:
    rng = np.random.default_rng(5)
    base = rng.uniform(0.3, 0.9, 12)
    accuracies = {"base": base, "a": base.copy(), "b": np.clip(base + 0.1, 0, 1)}
    _, decisions, _ = simulate(rng, accuracies, adaptive.Settings.for_max(6, 0.05))
    assert len(decisions) >= 3
    for pattern in ("a", "b"):
        looks = [look for d in decisions for look in d.comparisons if look.pattern == pattern]
        fractions = [look.fraction for look in looks]
        assert all(a <= b for a, b in itertools.pairwise(fractions))
        assert 0 < fractions[0] < 1
        expected = sequential.nominal_levels(fractions, 0.05 / 2)
        assert [look.level for look in looks] == pytest.approx(expected, rel=1e-9)
        if decisions[-1].stop == "max":
            assert fractions[-1] == 1.0


def test_a_decided_comparison_stays_decided_and_is_reported_so() -> None:
    settings = adaptive.Settings.for_max(10, 0.05)
    cases = names(12)
    # Graded scores: the cases differ by 1 or by 0.5 with no noise within them (so nearly
    # all the information is in already), but for one case that still varies.
    first: Data = {
        "base": {c: [0.0, 0.0] for c in cases},
        "cand": {c: [1.0, 1.0] if i % 2 else [0.5, 0.5] for i, c in enumerate(cases)},
    }
    first["cand"]["c00"] = [1.0, 0.0]
    one = adaptive.decide(first, "base", [], settings)
    (look,) = one.comparisons
    assert look.decided and look.decided_at == 1 and look.fraction < 1
    assert one.stop == "decided"
    # Had it gone on (another comparison still open), later data that no longer show the
    # difference at the next look's level leave it decided, and the summary says so.
    later: Data = {
        "base": {c: [0.0, 1.0, 0.0, 1.0] for c in cases},
        "cand": {
            c: [1.0, 0.0, 1.0, 1.0] if i % 2 else [1.0, 0.0, 0.0, 1.0] for i, c in enumerate(cases)
        },
    }
    going_on = adaptive.Decision(1, one.comparisons, None, one.allocation)
    two = adaptive.decide(later, "base", [going_on], settings)
    (again,) = two.comparisons
    assert again.p_value is not None and again.p_value > again.level
    assert again.decided and again.decided_at == 1 and two.stop == "decided"
    levels = adaptive.final_levels(two)
    assert levels["cand"] == again.p_value
    fam = family.compare("t", "base", later, levels=levels)
    assert fam.comparisons[0].verdict == "better"


# --- stopping ----------------------------------------------------------------------------------


def test_budget_spent_stops_and_spends_what_is_left() -> None:
    rng = np.random.default_rng(3)
    base = {c: [float(x) for x in rng.random(2) < 0.6] for c in names(12)}
    data = {"base": base, "a": {c: list(reversed(v)) for c, v in base.items()}}
    settings = adaptive.Settings.for_max(10, 0.05)
    decision = adaptive.decide(data, "base", [], settings, budget_spent=True)
    assert decision.stop == "budget" and decision.final
    assert decision.comparisons[0].fraction == 1.0
    assert decision.comparisons[0].level == pytest.approx(0.05)
    assert set(decision.allocation.values()) == {0}


def test_precision_stops_a_run_whose_intervals_are_narrow_enough() -> None:
    rng = np.random.default_rng(9)
    base = rng.uniform(0.3, 0.7, 12)
    accuracies = {"base": base, "a": base.copy()}
    wide = adaptive.Settings(0.05, 6, 2, 1, precision=0.8)
    _, decisions, _ = simulate(np.random.default_rng(1), accuracies, wide)
    assert decisions[-1].stop == "precise"
    last = decisions[-1].comparisons[0]
    assert last.interval is not None and last.interval.high - last.interval.low <= 0.8
    for earlier in decisions[:-1]:
        interval = earlier.comparisons[0].interval
        assert interval is None or interval.high - interval.low > 0.8
    strict = adaptive.Settings(0.05, 6, 2, 1, precision=None)
    _, without, _ = simulate(np.random.default_rng(1), accuracies, strict)
    assert len(without) > len(decisions)


def test_a_test_with_nothing_to_compare_stops_at_its_first_look() -> None:
    settings = adaptive.Settings.for_max(6, 0.05)
    alone = adaptive.decide({"base": {"c": [1.0, 0.0]}}, "base", [], settings)
    assert alone.stop == "decided" and alone.comparisons == ()
    empty = adaptive.decide({"base": {"c": [1.0, 0.0]}, "a": {}}, "base", [], settings)
    assert empty.stop == "decided" and empty.comparisons[0].p_value is None


def test_deciding_after_a_stop_or_without_the_baseline_is_refused() -> None:
    settings = adaptive.Settings.for_max(4, 0.05)
    data = {"base": {"c": [1.0] * 4}, "a": {"c": [1.0] * 4}}
    stopped = adaptive.decide(data, "base", [], settings)
    assert stopped.stop is not None
    with pytest.raises(ValueError, match="already stopped at look 1"):
        adaptive.decide(data, "base", [stopped], settings)
    with pytest.raises(ValueError, match="baseline pattern 'single' has no scores"):
        adaptive.decide(data, "single", [], settings)


# --- error rates -------------------------------------------------------------------------------


def test_equal_patterns_are_called_different_at_most_alpha_of_the_time() -> None:
    """200 adaptive runs of two equal patterns (fixed seed): rejections within what a
    binomial at alpha gives one time in a thousand; looking at every round at alpha without
    spending, the same runs would reject more."""
    sims, alpha = 200, 0.05
    settings = adaptive.Settings.for_max(6, alpha)
    rejected = naive = 0
    for run in range(sims):
        rng = np.random.default_rng([2026, run])
        base = rng.uniform(0.2, 0.9, 12)
        _, decisions, _ = simulate(rng, {"base": base, "a": base.copy()}, settings, seed=run)
        rejected += decisions[-1].comparisons[0].decided
        naive += any((d.comparisons[0].p_value or 1.0) <= alpha for d in decisions)
    assert rejected <= binom.isf(0.001, sims, alpha)
    assert naive > rejected


def test_a_real_difference_stops_early_on_average() -> None:
    """12 cases, at most 6 repetitions: +0.15 is decided before the last look in a fair
    share of runs, so they take fewer looks and repetitions than equal patterns do."""
    settings = adaptive.Settings.for_max(6, 0.05)
    looks: dict[float, list[int]] = {0.0: [], 0.15: []}
    spent: dict[float, list[int]] = {0.0: [], 0.15: []}
    stops: list[str | None] = []
    for effect in looks:
        for run in range(60):
            rng = np.random.default_rng([7, run])
            base = rng.uniform(0.3, 0.8, 12)
            accuracies = {"base": base, "a": np.clip(base + effect, 0, 1)}
            data, decisions, _ = simulate(rng, accuracies, settings, seed=run)
            looks[effect].append(len(decisions))
            spent[effect].append(sum(len(v) for s in data.values() for v in s.values()))
            if effect:
                stops.append(decisions[-1].stop)
    assert max(spent[0.15]) <= 2 * 12 * 6
    assert stops.count("decided") >= 0.2 * len(stops)
    assert np.mean(looks[0.15]) <= np.mean(looks[0.0]) - 0.2
    assert np.mean(spent[0.15]) < 0.95 * np.mean(spent[0.0])
