"""Within-test error control: equally accurate patterns, and the recommendation against the table.

Two measurements on one test function at a time:

- **Equal patterns.** Four patterns that are equally accurate on every case (each case's
  probability of a correct answer drawn from a population and shared by the four) run
  ``cases`` x ``repetitions``. The rate at which the test's family (`family.compare`,
  Bonferroni over its 3 comparisons with the baseline) calls any comparison better or
  worse, and the rate at which the recommendation (`recommend.recommend`, all 6 pairs)
  sets any pattern aside, should each be at most alpha. Both rates only need the tests'
  decisions, so the bulk of the runs take a fast path: the same units (`family.units`) and
  the same randomization test (`Units.test(seed).result()`) at the same levels, without
  the interval search that only the display needs. The first runs of every cell go through
  `family.compare` and `recommend.recommend` as well, and any disagreement between the two
  paths stops the benchmark.
- **Consistency.** Random test functions (2 to 6 patterns, some equally accurate, some not;
  1 to 20 cases; 1 to 5 repetitions; pass/fail or graded; sometimes a pattern that ran only
  some of the cases) go through `analysis.analyse` and `report.build_report`; in the JSON
  every pattern the recommendation excludes in favour of the baseline pattern (or the
  baseline in favour of another) must show as worse (better) in the family table, and every
  family interval must exclude 0 exactly when its verdict is better or worse.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
from synthetic_runs import SUITE, PatternSpec, TestSpec, draw_run, draw_suite

from pytest_agentpatterns import analysis, family, recommend, report

ALPHA = 0.05
PATTERNS = ("single", "parallel(n=5)", "hybrid(n=3)", "loop(max_iters=3)")
"""The four equally accurate patterns; ``single`` is the baseline pattern."""

Values = Mapping[str, Sequence[float]]


@dataclass(frozen=True)
class CasePopulation:
    """Where each case's probability of a correct answer comes from.

    ``interaction`` > 0 gives each pattern its own per-case deviation on the logit scale
    (drawn independently, so the patterns stay equally accurate on average but no longer
    on every case).
    """

    name: str
    mean: float
    concentration: float
    interaction: float = 0.0

    def draw(self, rng: np.random.Generator, cases: int, patterns: int) -> np.ndarray:
        """Per-case probabilities, one row per pattern."""
        a, b = self.mean * self.concentration, (1 - self.mean) * self.concentration
        p = np.clip(rng.beta(a, b, cases), 1e-9, 1 - 1e-9)
        if not self.interaction:
            return np.tile(p, (patterns, 1))
        logit = np.log(p / (1 - p))
        shifted = logit[None, :] + rng.normal(0.0, self.interaction, (patterns, cases))
        return np.asarray(1 / (1 + np.exp(-shifted)), dtype=float)


SHARED = CasePopulation("cases shared: p ~ Beta(mean 0.75, conc. 4)", 0.75, 4.0)
INTERACTION = CasePopulation(
    "pattern x case interaction (logit sd 0.7)", 0.75, 4.0, interaction=0.7
)


@dataclass
class EqualRates:
    """Counts over simulated tests of four equally accurate patterns."""

    runs: int = 0
    family_any: int = 0
    recommend_any: int = 0
    checked: int = 0
    reachable: int = 0

    def __add__(self, other: EqualRates) -> EqualRates:
        return EqualRates(
            self.runs + other.runs,
            self.family_any + other.family_any,
            self.recommend_any + other.recommend_any,
            self.checked + other.checked,
            self.reachable + other.reachable,
        )


def _scores(rng: np.random.Generator, p: np.ndarray, repetitions: int) -> dict[str, Values]:
    patterns: dict[str, Values] = {}
    for name, row in zip(PATTERNS, p, strict=True):
        outcomes = (rng.random((row.size, repetitions)) < row[:, None]).astype(float)
        patterns[name] = {f"case-{i:02d}": list(o) for i, o in enumerate(outcomes)}
    return patterns


def fast_decisions(
    patterns: Mapping[str, Values], baseline: str, alpha: float = ALPHA, seed: int = 0
) -> tuple[frozenset[str], frozenset[str], bool]:
    """The family's significant patterns, the recommendation's excluded patterns, and
    whether the family's level is reachable at all, from the tests alone."""
    names = sorted(patterns)
    m = len(names) - 1
    family_level = alpha / m
    pair_level = alpha / math.comb(len(names), 2)
    significant: set[str] = set()
    excluded: set[str] = set()
    reachable = False
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            first, second = (a, b) if b != baseline else (b, a)
            result = family.units(patterns[first], patterns[second]).test(seed).result()
            if baseline in (a, b):
                other = b if a == baseline else a
                reachable = reachable or result.min_p <= family_level
                if result.min_p <= family_level and result.p <= family_level:
                    significant.add(other)
            if result.min_p <= pair_level and result.p <= pair_level:
                # ``result.estimate`` is second minus first: the lower one is set aside.
                excluded.add(first if result.estimate > 0 else second)
    return frozenset(significant), frozenset(excluded), reachable


def full_decisions(
    patterns: Mapping[str, Values], baseline: str, alpha: float = ALPHA, seed: int = 0
) -> tuple[frozenset[str], frozenset[str]]:
    """The same decisions from `family.compare` and `recommend.recommend`."""
    fam = family.compare("t", baseline, patterns, alpha=alpha, seed=seed)
    significant = frozenset(c.pattern for c in fam.comparisons if c.significant)
    rec = recommend.recommend(
        patterns,
        {name: 1.0 + i for i, name in enumerate(PATTERNS)},
        {name: 1.0 for name in PATTERNS},
        baseline=baseline,
        alpha=alpha,
        seed=seed,
    )
    assert rec is not None
    return significant, frozenset(e.pattern for e in rec.excluded)


def equal_patterns(
    population: CasePopulation,
    cases: int,
    repetitions: int,
    runs: int,
    seed: Sequence[int],
    check: int = 0,
) -> EqualRates:
    """Simulate ``runs`` tests of four equally accurate patterns; the first ``check`` go
    through the full path too (a disagreement raises AssertionError)."""
    rng = np.random.default_rng(list(seed))
    rates = EqualRates()
    for run in range(runs):
        p = population.draw(rng, cases, len(PATTERNS))
        patterns = _scores(rng, p, repetitions)
        significant, excluded, reachable = fast_decisions(patterns, PATTERNS[0])
        if run < check:
            full = full_decisions(patterns, PATTERNS[0])
            assert full == (significant, excluded), (full, significant, excluded)
            rates.checked += 1
        rates.runs += 1
        rates.reachable += reachable
        rates.family_any += bool(significant)
        rates.recommend_any += bool(excluded)
    return rates


# --- consistency of the recommendation with the table ------------------------------------------


@dataclass
class Consistency:
    """Counts of checks and violations over random test functions."""

    tests: int = 0
    exclusions_checked: int = 0
    exclusion_violations: list[str] = field(default_factory=list)
    intervals_checked: int = 0
    interval_violations: list[str] = field(default_factory=list)
    significant_without_interval: int = 0
    significant: int = 0
    recommended: int = 0

    def __add__(self, other: Consistency) -> Consistency:
        return Consistency(
            self.tests + other.tests,
            self.exclusions_checked + other.exclusions_checked,
            self.exclusion_violations + other.exclusion_violations,
            self.intervals_checked + other.intervals_checked,
            self.interval_violations + other.interval_violations,
            self.significant_without_interval + other.significant_without_interval,
            self.significant + other.significant,
            self.recommended + other.recommended,
        )


KINDS = tuple(p.name for p in SUITE[1].patterns)
"""single, sequential, parallel(n=5), hybrid(n=3), escalate(...), loop(max_iters=3)."""


@dataclass(frozen=True)
class Designs:
    """What random test functions may look like: case counts, repetitions, patterns."""

    cases: tuple[int, ...] = (1, 2, 3, 6, 8, 12, 12, 16, 20)
    repetitions: tuple[int, ...] = (1, 3, 5)
    max_patterns: int = 6


def random_test(
    rng: np.random.Generator, index: int, designs: Designs = Designs()
) -> tuple[TestSpec, int, int]:
    """A random test function: patterns with equal or different accuracies, its design."""
    m = int(rng.integers(2, designs.max_patterns + 1))
    names = [KINDS[0], *rng.choice(KINDS[1:], m - 1, replace=False).tolist()]
    base = float(rng.uniform(0.45, 0.9))
    specs = []
    for name in names:
        if name == KINDS[0] or rng.random() < 0.4:
            acc = base
        else:
            acc = base + float(rng.choice([-0.4, -0.3, -0.2, -0.1, 0.1, 0.2, 0.3, 0.4]))
        specs.append(PatternSpec(name, float(np.clip(acc, 0.03, 0.97))))
    cases = int(rng.choice(designs.cases))
    repetitions = int(rng.choice(designs.repetitions))
    if cases == 1 and repetitions == 1:
        repetitions = 5
    graded = bool(rng.random() < 0.3)
    return TestSpec(f"test_random_{index:04d}", tuple(specs), graded), cases, repetitions


def consistency(
    tests: int, seed: Sequence[int], start: int = 0, designs: Designs = Designs()
) -> Consistency:
    """Analyse ``tests`` random test functions and check the JSON report's consistency."""
    rng = np.random.default_rng(list(seed))
    out = Consistency()
    settings = SimpleNamespace(seed=0, alpha=ALPHA)
    for index in range(start, start + tests):
        spec, cases, repetitions = random_test(rng, index, designs)
        suite = draw_suite(rng, cases, repetitions, (spec,))
        items = draw_run(suite, rng)
        if cases >= 4 and rng.random() < 0.2:
            # One pattern ran only some of the cases (a deselected or skipped case).
            dropped = spec.patterns[int(rng.integers(0, len(spec.patterns)))].name
            keep = {c.id for c in suite.cases[spec.name][: cases // 2]}
            items = [i for i in items if i.pattern != dropped or i.case in keep]
        analyses = analysis.analyse(items, seed=0, alpha=ALPHA)
        data = json.loads(json.dumps(report.build_report(items, settings, analyses)))
        for test in data["analysis"]:
            _check(test, out)
    return out


def _check(test: Mapping[str, Any], out: Consistency) -> None:
    out.tests += 1
    name, baseline = test["test"], test["baseline_pattern"]
    verdicts = {}
    for row in test["patterns"]:
        for c in row["comparisons"]:
            if c["metric"] != "accuracy":
                continue
            verdicts[row["pattern"]] = c["verdict"]
            significant = c["verdict"] in ("better", "worse")
            out.significant += significant
            interval = c["interval"]
            if interval is None:
                out.significant_without_interval += significant
                continue
            out.intervals_checked += 1
            excludes = interval["low"] > 0 or interval["high"] < 0
            direction = (c["verdict"] == "better") == (interval["low"] > 0) if significant else True
            if excludes != significant or not direction:
                out.interval_violations.append(
                    f"{name} {row['pattern']}: verdict {c['verdict']}, interval "
                    f"[{interval['low']:.4f}, {interval['high']:.4f}]"
                )
    rec = test["recommendation"]
    if rec is None:
        return
    out.recommended += rec["pattern"] is not None
    for e in rec["excluded"]:
        if baseline not in (e["pattern"], e["by"]):
            continue
        out.exclusions_checked += 1
        other, want = (e["by"], "better") if e["pattern"] == baseline else (e["pattern"], "worse")
        if verdicts.get(other) != want:
            out.exclusion_violations.append(
                f"{name}: recommendation excludes {e['pattern']} (beaten by {e['by']}), "
                f"the table says {other} is {verdicts.get(other)!r}"
            )
