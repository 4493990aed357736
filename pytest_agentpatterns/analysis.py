"""From item results to the comparison a user reads: summaries, tests, Pareto front, gates.

Cases are the unit of evidence: values are grouped by case (repetitions within it) before
they reach :mod:`.stats` and :mod:`.gates`, which decide paired or unpaired analyses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from . import gates, pareto, stats
from .metrics import GroupKey, PatternFigures, figures, sorted_groups
from .records import ItemResult, Repetition

MetricOf = Callable[[Repetition], float | None]

METRICS: dict[str, MetricOf] = {
    "accuracy": lambda r: r.accuracy,
    "latency": lambda r: r.latency,
    "cost": lambda r: r.cost,
    "tokens": lambda r: None if r.tokens is None else float(r.tokens),
    "calls": lambda r: float(len(r.calls)),
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
    """One pattern of one test: its figures, its summary and how it compares."""

    figures: PatternFigures
    summary: stats.Summary
    pareto: bool
    comparisons: tuple[stats.Comparison, ...] = ()


@dataclass(frozen=True)
class TestAnalysis:
    """One test function: each pattern, against the baseline pattern, and a recommendation."""

    test: str
    baseline: str
    patterns: tuple[PatternAnalysis, ...]
    recommendation: stats.Recommendation | None


def analyse(
    results: Iterable[ItemResult], *, seed: int = 0, alpha: float = 0.05, n_resamples: int = 2000
) -> list[TestAnalysis]:
    """Summaries and comparisons for every test, Holm-adjusted over all comparisons shown."""
    groups = sorted_groups(results)
    tests: dict[str, list[tuple[GroupKey, list[ItemResult]]]] = {}
    for key, items in groups.items():
        tests.setdefault(key.test, []).append((key, items))
    drafts: list[TestAnalysis] = []
    for test, members in tests.items():
        baseline_id = members[0][1][0].baseline_pattern
        base_items = next((items for key, items in members if key.pattern == baseline_id), None)
        patterns = []
        for key, items in members:
            accuracy = _known(by_case(items, "accuracy"))
            summary = stats.summarize(
                accuracy,
                _known(by_case(items, "latency")),
                by_case(items, "cost"),
                seed=seed,
                n_resamples=n_resamples,
            )
            comparisons: tuple[stats.Comparison, ...] = ()
            if base_items is not None and key.pattern != baseline_id:
                comparisons = _compare(base_items, items, seed, alpha, n_resamples)
            patterns.append(PatternAnalysis(figures(key, items), summary, False, comparisons))
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
        recommendation = (
            None
            if len(patterns) < 2
            else stats.recommend(
                {key.pattern: _known(by_case(items, "accuracy")) for key, items in members},
                {p.figures.pattern: p.figures.cost_per_run for p in patterns},
                {p.figures.pattern: p.figures.latency_p50 for p in patterns},
                alpha=alpha,
                seed=seed,
                n_resamples=n_resamples,
            )
        )
        drafts.append(
            TestAnalysis(
                test,
                baseline_id if base_items is not None else "",
                tuple(replace(p, pareto=p.figures.pattern in front) for p in patterns),
                recommendation,
            )
        )
    return _holm(drafts, alpha)


def _compare(
    base: Sequence[ItemResult],
    items: Sequence[ItemResult],
    seed: int,
    alpha: float,
    n_resamples: int,
) -> tuple[stats.Comparison, ...]:
    accuracy = stats.compare_accuracy(
        _known(by_case(base, "accuracy")),
        _known(by_case(items, "accuracy")),
        seed=seed,
        alpha=alpha,
        n_resamples=n_resamples,
    )
    measures: tuple[tuple[str, str, stats.Statistic], ...] = (
        ("latency_p50", "latency", "p50"),
        ("latency_p95", "latency", "p95"),
        ("cost", "cost", "mean"),
    )
    ratios = tuple(
        stats.compare_ratio(
            name,
            by_case(base, metric),
            by_case(items, metric),
            statistic=statistic,
            seed=seed,
            alpha=alpha,
            n_resamples=n_resamples,
        )
        for name, metric, statistic in measures
    )
    return (accuracy, *ratios)


def _holm(drafts: list[TestAnalysis], alpha: float) -> list[TestAnalysis]:
    flat = [c for t in drafts for p in t.patterns for c in p.comparisons]
    adjusted = iter(stats.adjust(flat, alpha=alpha))
    out = []
    for t in drafts:
        patterns = tuple(
            replace(p, comparisons=tuple(next(adjusted) for _ in p.comparisons)) for p in t.patterns
        )
        out.append(replace(t, patterns=patterns))
    return out


def evaluate_gates(
    rules: Sequence[gates.GateRule],
    current: Iterable[ItemResult],
    baseline: Iterable[ItemResult],
    *,
    alpha: float = 0.05,
    seed: int = 0,
) -> list[gates.GateResult]:
    """Every rule for every (test, pattern) of the current run, against the saved run."""
    saved = sorted_groups(baseline)
    results = []
    for key, items in sorted_groups(current).items():
        base_items = saved.get(key)
        for rule in rules:
            metric = GATE_METRIC[rule.metric]
            results.append(
                gates.evaluate(
                    rule,
                    by_case(base_items, metric) if base_items else None,
                    by_case(items, metric),
                    alpha=alpha,
                    seed=seed,
                    test=key.test,
                    pattern=key.pattern,
                )
            )
    return results
