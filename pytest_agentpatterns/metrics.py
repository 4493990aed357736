"""Per-(test, pattern) figures from item results: accuracy, latency, cost, tokens, calls."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .records import ItemResult, Repetition


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile with linear interpolation (numpy's default method)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class GroupKey:
    """A test function and a pattern: one row of the summary."""

    test: str
    pattern: str


@dataclass(frozen=True)
class PatternFigures:
    """The figures of one test function under one pattern, cases aggregated."""

    test: str
    pattern: str
    n: int
    cases: int
    answered: int
    accuracy: float | None
    errors: int
    latency_p50: float | None
    latency_p95: float | None
    cost_per_run: float | None
    cost_known: bool
    tokens_per_run: float | None
    calls_per_run: float
    baseline_pattern: str
    judge_cost_per_run: float | None = None
    """USD per repetition an LLM judge spent (apart from ``cost_per_run``); None when no judge
    ran or a judge call's cost is unknown."""


def group_results(results: Iterable[ItemResult]) -> dict[GroupKey, list[ItemResult]]:
    """Group item results by (test, pattern), in first-seen order, skipping skipped items."""
    groups: dict[GroupKey, list[ItemResult]] = {}
    for result in results:
        if result.skipped is not None:
            continue
        groups.setdefault(GroupKey(result.test, result.pattern), []).append(result)
    return groups


def figures(key: GroupKey, items: Sequence[ItemResult]) -> PatternFigures:
    """Aggregate the repetitions of all cases of one (test, pattern)."""
    reps = [r for item in items for r in item.repetitions]
    answered = [r.accuracy for r in reps if r.accuracy is not None]
    per_case = [[r.accuracy for r in item.repetitions if r.accuracy is not None] for item in items]
    case_means = [sum(scores) / len(scores) for scores in per_case if scores]
    latencies = [r.latency for r in reps]
    costs = [r.cost for r in reps]
    cost_known = bool(reps) and all(c is not None for c in costs)
    tokens = [r.tokens for r in reps]
    tokens_known = bool(reps) and all(t is not None for t in tokens)
    n = len(reps)
    return PatternFigures(
        test=key.test,
        pattern=key.pattern,
        n=n,
        cases=len(items),
        answered=len(answered),
        # Cases weigh the same however many repetitions answered, as in the statistics.
        accuracy=sum(case_means) / len(case_means) if case_means else None,
        errors=sum(1 for r in reps if r.outcome == "error"),
        latency_p50=percentile(latencies, 50) if latencies else None,
        latency_p95=percentile(latencies, 95) if latencies else None,
        cost_per_run=sum(c for c in costs if c is not None) / n if cost_known else None,
        cost_known=cost_known,
        tokens_per_run=sum(t for t in tokens if t is not None) / n if tokens_known else None,
        calls_per_run=sum(len(r.task_calls) for r in reps) / n if n else 0.0,
        baseline_pattern=items[0].baseline_pattern,
        judge_cost_per_run=_judge_cost(reps),
    )


def _judge_cost(reps: Sequence[Repetition]) -> float | None:
    if not any(r.judge_calls for r in reps):
        return None
    costs = [r.judge_cost for r in reps]
    if any(c is None for c in costs):
        return None
    return sum(c for c in costs if c is not None) / len(reps)


def sorted_groups(results: Iterable[ItemResult]) -> dict[GroupKey, list[ItemResult]]:
    """Groups sorted by test and pattern, items within sorted by case, so output is stable."""
    groups = group_results(results)

    def order(key: GroupKey) -> tuple[str, bool, str]:
        return (key.test, key.pattern != groups[key][0].baseline_pattern, key.pattern)

    return {key: sorted(groups[key], key=lambda r: r.case) for key in sorted(groups, key=order)}
