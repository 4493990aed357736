"""From item results to the comparison a user reads: summaries, families, Pareto, gates.

Each test function is analysed on its own: its patterns' summaries, its family of accuracy
comparisons against the baseline pattern (:mod:`.family`), latency and cost ratios as
estimates (:mod:`.ratios`), its Pareto front and its recommendation (:mod:`.recommend`).
Nothing about one test depends on which other tests ran. Cases are the unit of evidence:
values are grouped by case (repetitions within it) before they reach those modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from . import diagnostics, family, gates, pareto, ratios, recommend, savings, stats
from .metrics import GroupKey, PatternFigures, figures, sorted_groups
from .records import ItemResult, Repetition

MetricOf = Callable[[Repetition], float | None]

METRICS: dict[str, MetricOf] = {
    "accuracy": lambda r: r.accuracy,
    "latency": lambda r: r.latency,
    "cost": lambda r: r.cost,
    "tokens": lambda r: None if r.tokens is None else float(r.tokens),
    "calls": lambda r: float(len(r.task_calls)),
}

GATE_METRIC = {
    "accuracy": "accuracy",
    "latency_p50": "latency",
    "latency_p95": "latency",
    "latency_mean": "latency",
    "cost": "cost",
    "tokens": "tokens",
    "calls": "calls",
}

RATIOS: tuple[tuple[str, str, ratios.Statistic], ...] = (
    ("latency_p50", "latency", "p50"),
    ("latency_p95", "latency", "p95"),
    ("cost", "cost", "mean"),
)
"""The estimates shown for each pattern against the baseline: name, metric, statistic."""


def by_case(items: Iterable[ItemResult], metric: str) -> dict[str, list[float | None]]:
    """Per case, the metric's value of each repetition (errors left out of accuracy)."""
    of = METRICS[metric]
    out: dict[str, list[float | None]] = {}
    for item in items:
        values = [of(r) for r in item.repetitions]
        if metric == "accuracy":
            values = [v for v in values if v is not None]
        out.setdefault(item.case, []).extend(values)
    return out


def _known(values: dict[str, list[float | None]]) -> dict[str, list[float]]:
    return {k: [v for v in vs if v is not None] for k, vs in values.items()}


@dataclass(frozen=True)
class PatternAnalysis:
    """One pattern of one test: its figures, its summary and how it compares.

    ``accuracy`` is its comparison with the baseline pattern within the test's family
    (None for the baseline itself); ``ratios`` its latency p50, latency p95 and cost
    against the baseline, as estimates.
    """

    figures: PatternFigures
    summary: stats.Summary
    pareto: bool
    accuracy: family.AccuracyComparison | None = None
    ratios: tuple[ratios.Ratio, ...] = ()


@dataclass(frozen=True)
class TestAnalysis:
    """One test function: each pattern, its family, its front and a recommendation."""

    test: str
    baseline: str
    patterns: tuple[PatternAnalysis, ...]
    recommendation: recommend.Recommendation | None
    family: family.Family | None = None
    n_cases: int = 0
    diagnostics: Any = None
    """Ensemble-size, escalation and loop figures (:class:`.diagnostics.Diagnostics`)."""
    adaptive: savings.Savings | None = None
    """What an adaptive run used and saved; None when the test ran a fixed count."""
    planned_baseline: str = ""
    """The pattern the items named as baseline, also when it did not run (``baseline`` is
    then empty: every item of it was skipped, or it was not selected)."""

    def baseline_text(self) -> str:
        """``baseline X``, or why there is none: the summaries' heading says it."""
        if self.baseline:
            return f"baseline {self.baseline}"
        if self.planned_baseline:
            return f"baseline {self.planned_baseline} did not run: nothing compared"
        return "no baseline pattern ran"

    def pattern(self, pattern_id: str) -> PatternAnalysis | None:
        return next((p for p in self.patterns if p.figures.pattern == pattern_id), None)


def analyse(
    results: Iterable[ItemResult], *, seed: int = 0, alpha: float = 0.05
) -> list[TestAnalysis]:
    """One `TestAnalysis` per test function, each computed from its own items only."""
    groups = sorted_groups(results)
    tests: dict[str, list[tuple[GroupKey, list[ItemResult]]]] = {}
    for key, items in groups.items():
        tests.setdefault(key.test, []).append((key, items))
    return [_analyse_test(test, members, seed, alpha) for test, members in tests.items()]


def _analyse_test(
    test: str,
    members: list[tuple[GroupKey, list[ItemResult]]],
    seed: int,
    alpha: float,
) -> TestAnalysis:
    baseline_id = members[0][1][0].baseline_pattern
    base_items = next((items for key, items in members if key.pattern == baseline_id), None)
    accuracy = {key.pattern: _known(by_case(items, "accuracy")) for key, items in members}
    fam = None
    levels = _levels(members)
    if base_items is not None and len(members) > 1:
        fam = family.compare(
            test,
            baseline_id,
            accuracy,
            alpha=alpha,
            seed=seed,
            levels=levels,
        )
    by_pattern = {c.pattern: c for c in fam.comparisons} if fam else {}
    patterns = []
    for key, items in members:
        summary = stats.summarize(
            accuracy[key.pattern],
            _known(by_case(items, "latency")),
            by_case(items, "cost"),
            seed=seed,
        )
        estimates: tuple[ratios.Ratio, ...] = ()
        if base_items is not None and key.pattern != baseline_id:
            estimates = tuple(
                ratios.ratio(
                    name,
                    by_case(base_items, metric),
                    by_case(items, metric),
                    statistic=statistic,
                    seed=seed,
                )
                for name, metric, statistic in RATIOS
            )
        patterns.append(
            PatternAnalysis(
                figures(key, items), summary, False, by_pattern.get(key.pattern), estimates
            )
        )
    front = pareto.front(
        {
            p.figures.pattern: (
                p.summary.accuracy,
                p.figures.cost_per_run,
                p.figures.latency_p50,
            )
            for p in patterns
        }
    )
    recommendation = recommend.recommend(
        accuracy,
        {p.figures.pattern: p.figures.cost_per_run for p in patterns},
        {p.figures.pattern: p.figures.latency_p50 for p in patterns},
        baseline=baseline_id if base_items is not None else None,
        alpha=alpha,
        seed=seed,
        cap=min(levels.values()) if levels else None,
    )
    cases = {case for values in accuracy.values() for case in values}
    every = [i for _, items in members for i in items]
    return TestAnalysis(
        test,
        baseline_id if base_items is not None else "",
        tuple(replace(p, pareto=p.figures.pattern in front) for p in patterns),
        recommendation,
        fam,
        len(cases),
        diagnostics.analyse(every, seed=seed),
        savings.of(every),
        planned_baseline=baseline_id,
    )


def _levels(members: list[tuple[GroupKey, list[ItemResult]]]) -> dict[str, float] | None:
    """An adaptive test's comparisons are judged at its last look's levels."""
    for _, items in members:
        for item in items:
            if item.adaptive is not None and item.adaptive.get("levels"):
                return dict(item.adaptive["levels"])
    return None


def evaluate_gates(
    rules: Sequence[gates.GateRule],
    current: Iterable[ItemResult],
    baseline: Iterable[ItemResult],
    *,
    alpha: float = 0.05,
    seed: int = 0,
    fail_on_inconclusive: bool = False,
) -> gates.GateRun:
    """Every rule for every (test, pattern) of the current run, against the saved run,
    with one error budget for the whole run."""
    saved = sorted_groups(baseline)
    checks = []
    for key, items in sorted_groups(current).items():
        base_items = saved.get(key)
        for rule in rules:
            metric = GATE_METRIC[rule.metric]
            checks.append(
                gates.Check(
                    rule,
                    key.test,
                    key.pattern,
                    by_case(base_items, metric) if base_items else None,
                    by_case(items, metric),
                )
            )
    return gates.evaluate_run(
        checks, alpha=alpha, seed=seed, fail_on_inconclusive=fail_on_inconclusive
    )
