"""One family per test: verdicts, simultaneous intervals that agree with them, and the
recommendation that uses the same decisions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_agentpatterns import family, recommend
from pytest_agentpatterns.analysis import analyse
from pytest_agentpatterns.records import ItemResult, Repetition


def cases(*columns: list[float]) -> dict[str, list[float]]:
    """One case per position; ``columns`` are the repetitions."""
    return {f"c{i:02d}": [float(c[i]) for c in columns] for i in range(len(columns[0]))}


def binary_pattern(rng: np.random.Generator, p: np.ndarray, reps: int) -> dict[str, list[float]]:
    return {f"c{i:02d}": [float(x) for x in rng.random(reps) < pi] for i, pi in enumerate(p)}


def test_units_pair_common_cases_and_fall_back_to_runs() -> None:
    paired = family.units(cases([1, 0, 1]), cases([1, 1, 1]))
    assert paired.paired and paired.n_cases == 3 and paired.unit == "cases"
    single = family.units({"only": [1, 0, 1]}, {"only": [1, 1]})
    assert not single.paired and single.unit == "runs" and single.candidate.size == 2
    disjoint = family.units({"a": [1.0], "b": [0.0]}, {"c": [1.0], "d": [1.0]})
    assert not disjoint.paired and disjoint.unit == "cases"


def test_units_do_not_depend_on_mapping_order() -> None:
    a = {"x": [1.0, 0.0], "y": [1.0, 1.0], "z": [0.0, 0.0]}
    b = {"z": [1.0, 0.0], "x": [1.0, 1.0], "y": [0.0, 1.0]}
    one = family.units(a, b)
    two = family.units(dict(reversed(list(a.items()))), dict(reversed(list(b.items()))))
    assert np.array_equal(one.candidate - one.baseline, two.candidate - two.baseline)


def test_family_is_bonferroni_over_the_comparisons_that_have_data() -> None:
    base = cases([1, 0, 1, 0, 1, 0, 1, 0, 1, 0])
    fam = family.compare(
        "t", "single", {"single": base, "a": base, "b": base, "empty": {}}, alpha=0.05
    )
    assert fam.size == 2 and fam.level == pytest.approx(0.025)
    verdicts = {c.pattern: c.verdict for c in fam.comparisons}
    assert verdicts == {
        "a": "no difference shown",
        "b": "no difference shown",
        "empty": "not compared",
    }


def test_too_few_cases_says_so_instead_of_testing() -> None:
    strong = cases([0] * 6, [0] * 6)  # baseline always wrong
    perfect = cases([1] * 6, [1] * 6)  # candidates always right
    fam = family.compare(
        "t", "b", {"b": strong, **{f"c{i}": perfect for i in range(5)}}, alpha=0.05
    )
    assert fam.level == pytest.approx(0.01)
    for c in fam.comparisons:
        assert c.verdict == "too few cases" and c.interval is None
        assert c.needs_cases == 8 and "needs at least 8" in (c.note or "")
    eight = family.compare(
        "t",
        "b",
        {"b": cases([0] * 8, [0] * 8), **{f"c{i}": cases([1] * 8, [1] * 8) for i in range(5)}},
    )
    assert all(c.verdict == "better" for c in eight.comparisons)


def test_identical_cases_say_so_and_what_they_could_hide() -> None:
    same = cases([1] * 12, [1] * 12, [1] * 12)
    fam = family.compare("t", "b", {"b": same, "c": same})
    [c] = fam.comparisons
    assert c.verdict == "no difference shown" and c.note == "identical on every case"
    # Three repetitions per case carry binomial noise even when all were right.
    assert c.mde is not None and 0.1 < c.mde < 0.5
    assert fam.detectable() == (c.mde, c.mde)


def test_graded_scores_that_never_vary_are_stated_exactly() -> None:
    fam = family.compare("t", "b", {"b": cases([0.5] * 8), "c": cases([0.7] * 8)}, alpha=0.05)
    [c] = fam.comparisons
    assert c.interval is None and c.verdict == "better"
    assert c.note == "every case differs by exactly +0.200, with no noise"
    assert c.p_value == pytest.approx(2 / 2**8)


score_columns = st.lists(
    st.lists(st.sampled_from([0.0, 1.0, 0.5]), min_size=3, max_size=3), min_size=4, max_size=10
)


@settings(max_examples=60, deadline=None)
@given(st.lists(score_columns, min_size=2, max_size=4), st.sampled_from([0.05, 0.2]))
def test_interval_excludes_zero_exactly_when_the_verdict_is_a_difference(
    patterns: list[list[list[float]]], alpha: float
) -> None:
    k = min(len(p) for p in patterns)
    data = {f"p{j}": {f"c{i}": p[i] for i in range(k)} for j, p in enumerate(patterns)}
    fam = family.compare("t", "p0", data, alpha=alpha)
    for c in fam.comparisons:
        if c.interval is None:
            continue
        assert c.interval.low <= (c.estimate or 0) <= c.interval.high
        excludes = not (c.interval.low <= 0 <= c.interval.high)
        assert excludes == c.significant, c
        if c.significant:
            assert (c.verdict == "better") == ((c.estimate or 0) > 0)
            assert c.p_adjusted is not None and c.p_adjusted <= alpha


def items(test: str, pattern: str, data: dict[str, list[float]]) -> list[ItemResult]:
    return [
        ItemResult(
            f"{test}[{case}-{pattern}]",
            test,
            case,
            pattern,
            tuple(
                Repetition(i, "correct" if v == 1 else "incorrect", 0.1 + 0.01 * i)
                for i, v in enumerate(values)
            ),
        )
        for case, values in data.items()
    ]


def test_other_tests_never_change_a_tests_conclusions() -> None:
    rng = np.random.default_rng(5)
    p = rng.uniform(0.5, 0.9, size=12)
    arithmetic = items("t_a.py::test_a", "single", binary_pattern(rng, p, 5)) + items(
        "t_a.py::test_a", "parallel(n=5)", binary_pattern(rng, np.minimum(1, p + 0.25), 5)
    )
    other = [
        r
        for pattern in ("single", "x", "y", "z")
        for r in items("t_b.py::test_b", pattern, binary_pattern(rng, p, 5))
    ]
    alone = analyse(arithmetic)[0]
    together = next(t for t in analyse(other + arithmetic) if t.test == "t_a.py::test_a")
    assert alone.family == together.family
    assert alone.recommendation == together.recommendation


def test_recommendation_picks_the_clear_winner() -> None:
    weak = cases([0] * 10 + [1] * 2, [0] * 10 + [1] * 2)
    strong = cases([1] * 12, [1] * 12)
    rec = recommend.recommend(
        {"single": weak, "parallel": strong},
        {"single": 1.0, "parallel": 5.0},
        {"single": 1.0, "parallel": 1.0},
        baseline="single",
    )
    assert rec is not None and rec.decided and rec.pattern == "parallel"
    assert rec.contenders == ("parallel",)
    assert [(e.pattern, e.by) for e in rec.excluded] == [("single", "parallel")]


def test_recommendation_says_when_the_data_cannot_separate() -> None:
    rng = np.random.default_rng(1)
    p = np.full(8, 0.6)
    data = {"cheap": binary_pattern(rng, p, 3), "dear": binary_pattern(rng, p + 0.2, 3)}
    rec = recommend.recommend(data, {"cheap": 1.0, "dear": 9.0}, {"cheap": 1.0, "dear": 1.0})
    assert rec is not None
    if rec.decided:  # only when the cheap one is also shown within the tolerance
        assert rec.gap is not None and rec.gap.low >= -recommend.TOLERANCE
    else:
        assert rec.pattern is None and rec.more_cases and rec.more_cases > 0
        assert rec.reason.startswith("not enough evidence: run about")
        assert "separate cheap" in rec.reason


def test_recommendation_of_equal_patterns_is_the_cheapest_when_shown_close() -> None:
    same = cases(*([[1] * 40] * 5))
    rec = recommend.recommend(
        {"a": same, "b": same, "c": same}, {"a": 3.0, "b": 1.0, "c": 2.0}, {}, baseline="a"
    )
    assert rec is not None and rec.decided and rec.pattern == "b"
    assert rec.contenders == ("a", "b", "c") and not rec.excluded


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**16), st.integers(2, 5), st.sampled_from([6, 10, 14]))
def test_recommendation_never_claims_what_the_table_does_not(
    seed: int, n_patterns: int, n_cases: int
) -> None:
    rng = np.random.default_rng(seed)
    base_p = rng.uniform(0.3, 0.9, size=n_cases)
    data = {
        f"p{j}": binary_pattern(rng, np.clip(base_p + rng.choice([0, 0, 0.3]), 0, 1), 3)
        for j in range(n_patterns)
    }
    fam = family.compare("t", "p0", data)
    verdict = {c.pattern: c for c in fam.comparisons}
    rec = recommend.recommend(data, {}, {}, baseline="p0")
    assert rec is not None
    for e in rec.excluded:
        if e.pattern == "p0":  # the baseline set aside: the table shows its winner better
            assert verdict[e.by].verdict == "better"
        if e.by == "p0":  # a pattern set aside by the baseline: the table shows it worse
            assert verdict[e.pattern].verdict == "worse"


def test_levels_override_only_the_patterns_named() -> None:
    rng = np.random.default_rng(4)
    p = rng.uniform(0.3, 0.7, 14)
    data = {
        "single": binary_pattern(rng, p, 4),
        "up": binary_pattern(rng, np.clip(p + 0.3, 0, 1), 4),
        "same": binary_pattern(rng, p, 4),
    }
    plain = family.compare("t", "single", data, alpha=0.05, seed=3)
    assert not plain.sequential
    assert family.compare("t", "single", data, alpha=0.05, seed=3, levels=None) == plain
    up = next(c for c in plain.comparisons if c.pattern == "up")
    assert up.p_value is not None and up.p_value > 1e-4
    strict = family.compare("t", "single", data, alpha=0.05, seed=3, levels={"up": 1e-4})
    assert strict.sequential and "adaptive" in strict.method
    changed = {c.pattern: c for c in strict.comparisons}
    assert changed["up"].level == 1e-4 and not changed["up"].significant
    assert changed["up"].p_adjusted == pytest.approx(min(1.0, up.p_value * 0.05 / 1e-4))
    assert changed["same"] == next(c for c in plain.comparisons if c.pattern == "same")
    # At exactly its p, a comparison rejects, and its adjusted p is alpha.
    at_p = family.compare("t", "single", data, alpha=0.05, seed=3, levels={"up": up.p_value})
    exact = next(c for c in at_p.comparisons if c.pattern == "up")
    assert exact.verdict == "better" and exact.p_adjusted == pytest.approx(0.05)
    assert exact.interval is not None and 0.0 not in exact.interval
    with pytest.raises(ValueError, match="the level for up must be in"):
        family.compare("t", "single", data, levels={"up": 1.5})
