"""Rendering the summary, the comparisons and the gates with tabulate (terminal, Markdown)."""

from __future__ import annotations

from collections.abc import Sequence

from . import gates, stats
from .analysis import TestAnalysis

SUMMARY_HEADERS = [
    "test",
    "pattern",
    "n",
    "accuracy [95% CI]",
    "errors",
    "latency p50 (s)",
    "latency p95 (s)",
    "cost/run ($)",
    "cost/correct ($)",
    "tokens/run",
    "calls/run",
    "pareto",
]

COMPARISON_HEADERS = [
    "test",
    "pattern vs baseline",
    "accuracy diff [95% CI]",
    "latency p50 ratio",
    "latency p95 ratio",
    "cost ratio",
]

GATE_HEADERS = ["gate", "test", "pattern", "change [CI]", "p", "verdict"]


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _accuracy(summary: stats.Summary) -> str:
    if summary.accuracy is None:
        return "n/a"
    text = f"{summary.accuracy:.3f}"
    if summary.accuracy_interval is not None:
        i = summary.accuracy_interval
        text += f" [{i.low:.2f}, {i.high:.2f}]"
    return text


def _comparison(c: stats.Comparison) -> str:
    if c.estimate is None or c.interval is None:
        return f"n/a ({c.note})" if c.note else "n/a"
    text = (
        f"{stats.format_change(c.estimate, c.kind)} "
        f"[{stats.format_change(c.interval.low, c.kind)}, "
        f"{stats.format_change(c.interval.high, c.kind)}]"
    )
    p = c.p_adjusted if c.p_adjusted is not None else c.p_value
    if p is not None:
        text += f" {stats.format_p(p)}"
    return text


def comparison_notes(analyses: Sequence[TestAnalysis]) -> list[str]:
    """What each non-significant or impossible comparison could not show, one line each."""
    notes = []
    for t in analyses:
        for p in t.patterns:
            for c in p.comparisons:
                if c.note:
                    notes.append(f"{t.test} {p.figures.pattern} {c.metric}: {c.note}")
    return notes


def summary_rows(analyses: Sequence[TestAnalysis]) -> list[list[str]]:
    """One row per (test, pattern)."""
    rows = []
    for t in analyses:
        for p in t.patterns:
            f, s = p.figures, p.summary
            rows.append(
                [
                    t.test,
                    f.pattern + (" (baseline)" if f.pattern == t.baseline else ""),
                    str(f.n),
                    _accuracy(s),
                    str(f.errors),
                    _num(f.latency_p50, ".3f"),
                    _num(f.latency_p95, ".3f"),
                    _num(f.cost_per_run, ".6f"),
                    _num(s.cost_per_correct, ".6f"),
                    _num(f.tokens_per_run, ".0f"),
                    format(f.calls_per_run, ".1f"),
                    "*" if p.pareto else "",
                ]
            )
    return rows


def comparison_rows(analyses: Sequence[TestAnalysis]) -> list[list[str]]:
    """One row per non-baseline pattern: each metric against the baseline pattern."""
    rows = []
    for t in analyses:
        for p in t.patterns:
            if not p.comparisons:
                continue
            rows.append(
                [t.test, f"{p.figures.pattern} vs {t.baseline}"]
                + [_comparison(c) for c in p.comparisons]
            )
    return rows


def gate_rows(results: Sequence[gates.GateResult]) -> list[list[str]]:
    rows = []
    for g in results:
        change = "n/a"
        if g.estimate is not None:
            kind: stats.Kind = "ratio" if g.rule.relative else "difference"
            change = stats.format_change(g.estimate, kind)
            if g.interval is not None:
                change += (
                    f" [{stats.format_change(g.interval.low, kind)}, "
                    f"{stats.format_change(g.interval.high, kind)}]"
                )
        p = stats.format_p(g.p_value) if g.p_value is not None else "n/a"
        verdict = g.verdict.upper() if g.verdict == "fail" else g.verdict
        if g.reason:
            verdict += f": {g.reason}"
        rows.append([str(g.rule), g.test, g.pattern, change, p, verdict])
    return rows


def render(
    analyses: Sequence[TestAnalysis],
    gate_results: Sequence[gates.GateResult] = (),
    notes: Sequence[str] = (),
    tablefmt: str = "simple",
) -> str:
    """The whole summary: patterns, comparisons, recommendations, gates and notes."""
    from tabulate import tabulate

    markdown = tablefmt == "github"
    parts = []

    def heading(text: str) -> None:
        parts.append(f"### {text}" if markdown else text)

    if markdown:
        parts.append("## agentpatterns summary")
    parts.append(tabulate(summary_rows(analyses), headers=SUMMARY_HEADERS, tablefmt=tablefmt))
    comparisons = comparison_rows(analyses)
    if comparisons:
        heading("Against the baseline pattern (95% CI; p-values Holm-adjusted over all rows):")
        parts.append(tabulate(comparisons, headers=COMPARISON_HEADERS, tablefmt=tablefmt))
        parts.append("\n".join(f"- {n}" for n in comparison_notes(analyses)))
    recommendations = [
        f"{t.test}: {t.recommendation.pattern} ({t.recommendation.reason})"
        for t in analyses
        if t.recommendation is not None
    ]
    if recommendations:
        heading("Recommended (cheapest, then fastest, not significantly less accurate):")
        parts.extend(f"- {r}" if markdown else f"  {r}" for r in recommendations)
    if gate_results:
        failed = sum(1 for g in gate_results if g.verdict == "fail")
        heading(f"Gates against the baseline run: {failed} failed of {len(gate_results)}")
        parts.append(tabulate(gate_rows(gate_results), headers=GATE_HEADERS, tablefmt=tablefmt))
        for g in gate_results:
            if g.verdict == "fail":
                parts.append(f"FAILED gate {g.rule} for {g.test} [{g.pattern}]: {g.message}")
    parts.extend(notes)
    return "\n\n".join(parts) + "\n"
