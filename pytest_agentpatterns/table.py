"""Rendering the terminal summary with tabulate."""

from __future__ import annotations

from collections.abc import Iterable

from .metrics import PatternFigures, all_figures
from .records import ItemResult


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def summary_rows(figures: Iterable[PatternFigures]) -> list[list[str]]:
    """One row per (test, pattern), as text."""
    rows = []
    for f in figures:
        rows.append(
            [
                f.test,
                f.pattern + (" (baseline)" if f.pattern == f.baseline_pattern else ""),
                str(f.n),
                _num(f.accuracy, ".3f"),
                str(f.errors),
                _num(f.latency_p50, ".3f"),
                _num(f.latency_p95, ".3f"),
                _num(f.cost_per_run, ".6f"),
                _num(f.tokens_per_run, ".0f"),
                format(f.calls_per_run, ".1f"),
            ]
        )
    return rows


HEADERS = [
    "test",
    "pattern",
    "n",
    "accuracy",
    "errors",
    "latency p50 (s)",
    "latency p95 (s)",
    "cost/run ($)",
    "tokens/run",
    "calls/run",
]


def render_summary(results: Iterable[ItemResult]) -> str:
    """The summary table for the terminal."""
    from tabulate import tabulate

    return str(tabulate(summary_rows(all_figures(results)), headers=HEADERS, tablefmt="simple"))
