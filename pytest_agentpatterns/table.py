"""Rendering the summary and the gates with tabulate: a terminal that fits, and Markdown.

The terminal shows one compact block per test function (pattern, n, accuracy with its
interval, the verdict against the baseline with its simultaneous interval, latency p50,
cost per run, marks), the recommendation on one line, and what was not shown once per
test. It fits the terminal's width: columns are abbreviated, then split over two lines,
and as a last resort a line is cut (the JSON report keeps everything). ``-v`` adds the
latency and cost ratios and every gate. Markdown carries every column, gates first.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

from . import diagnostics, family, gates, ratios, savings, stats
from .analysis import PatternAnalysis, TestAnalysis
from .records import ItemResult

LEGEND = (
    "P: on the Pareto front (accuracy, cost, latency p50). R: recommended. "
    "Accuracy intervals are 95% per pattern; intervals against the baseline are "
    "simultaneous within each test (docs/statistics.md)."
)

MARKDOWN_HEADERS = [
    "pattern",
    "n",
    "accuracy [95% CI]",
    "vs baseline [simultaneous CI]",
    "p (adjusted)",
    "latency p50 (s)",
    "latency p95 (s)",
    "cost/run ($)",
    "cost/correct ($)",
    "tokens/run",
    "calls/run",
    "latency p50 ratio [95% CI]",
    "latency p95 ratio [95% CI]",
    "cost ratio [95% CI]",
    "marks",
]

GATE_HEADERS = ["verdict", "gate", "test", "pattern", "change [CI]", "detects", "power"]


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _cost(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2g}"


def accuracy_text(summary: stats.Summary, digits: int = 2) -> str:
    """``0.750 [0.59, 0.86]``."""
    if summary.accuracy is None:
        return "n/a"
    text = f"{summary.accuracy:.3f}"
    if summary.accuracy_interval is not None:
        i = summary.accuracy_interval
        text += f" [{i.low:.{digits}f}, {i.high:.{digits}f}]"
    return text


def verdict_text(c: family.AccuracyComparison | None, *, words: bool = True) -> str:
    """``better +0.233 [+0.07, +0.39]``; the baseline row reads ``baseline``."""
    if c is None:
        return "baseline"
    if c.verdict == "not compared":
        return "n/a"
    est = "" if c.estimate is None else f"{c.estimate:+.3f}"
    if c.verdict == "too few cases":
        return f"too few cases {est}".strip()
    word = {"better": "better", "worse": "worse", "no difference shown": "no diff"}[c.verdict]
    if c.interval is None:
        shown = f"{est} (every case)" if c.note and "every case" in c.note else est
    elif c.interval.low == c.interval.high:
        shown = f"{est} (identical)"
    else:
        shown = f"{est} {interval_text(c.interval)}"
    return f"{word} {shown}" if words else shown


def interval_text(interval: stats.Interval, digits: int = 2) -> str:
    """``[+0.07, +0.39]``: enough decimals that no bound reads on the wrong side of 0."""
    for d in range(digits, digits + 3):
        texts = [_signed(v, d) for v in (interval.low, interval.high)]
        if all(
            _reads_right(v, text)
            for v, text in zip((interval.low, interval.high), texts, strict=True)
        ):
            break
    return f"[{texts[0]}, {texts[1]}]"


def _signed(value: float, digits: int) -> str:
    return "0" if abs(value) < 1e-6 else f"{value:+.{digits}f}"


def _reads_right(value: float, text: str) -> bool:
    """A non-zero bound must not print as zero."""
    return abs(value) < 1e-6 or float(text) != 0


def ratio_text(r: ratios.Ratio) -> str:
    """``+55% [+31%, +84%]``, ``+400% (every case)`` or ``n/a (why)``."""
    if r.estimate is None:
        return f"n/a ({r.note})" if r.note else "n/a"
    text = stats.format_ratio(r.estimate)
    if r.constant:
        return f"{text} (every case)"
    if r.interval is not None:
        text += f" [{stats.format_ratio(r.interval.low)}, {stats.format_ratio(r.interval.high)}]"
    return text


def marks(t: TestAnalysis, p: PatternAnalysis) -> str:
    out = []
    if p.pareto:
        out.append("P")
    rec = t.recommendation
    if rec is not None and rec.decided and rec.pattern == p.figures.pattern:
        out.append("R")
    return " ".join(out)


def short_id(pattern: str) -> str:
    """``escalate(n=3,threshold=0.67)`` -> ``escalate(3,0.67)``."""
    return re.sub(r"(?<=[(,])\w+=", "", pattern)


def recommendation_line(t: TestAnalysis, *, short: bool = False) -> str | None:
    """``recommended: ...``: the full reason, or its compact form for the terminal."""
    rec = t.recommendation
    if rec is None:
        return None
    if short and rec.short:
        return f"recommended: {rec.short}"
    if rec.decided:
        return f"recommended: {rec.reason}"
    return f"recommended: none yet ({rec.reason})"


def family_notes(t: TestAnalysis) -> list[str]:
    """What a test's family could not show, once per test (not once per row)."""
    fam = t.family
    if fam is None:
        return []
    notes = []
    undecided = fam.undecided()
    span = fam.detectable()
    if undecided:
        names = ", ".join(c.pattern for c in undecided)
        what = (
            f"differences smaller than about {_span(span)} could go unseen (80% power at "
            f"{_levels_text(fam)}, {fam.size} comparison{'s' if fam.size != 1 else ''})"
            if span
            else "the data could not say how large a difference could go unseen"
        )
        notes.append(f"no difference shown for {names}: {what}")
    few = [c for c in fam.comparisons if c.verdict == "too few cases"]
    if few:
        first = few[0]
        notes.append(f"too few cases for {', '.join(c.pattern for c in few)}: {first.note}")
    for c in fam.comparisons:
        if c.verdict == "not compared":
            notes.append(f"{c.pattern} not compared: {c.note}")
    return notes


def _levels_text(fam: family.Family) -> str:
    """The level the undecided comparisons were judged at (an adaptive run's last look's)."""
    if not fam.sequential:
        return f"{family.format_level(fam.level)} each"
    levels = sorted({c.level for c in fam.undecided()})
    shown = " to ".join(family.format_level(x) for x in (levels[0], levels[-1])[: len(levels)])
    return f"{shown} (the last look's)"


def _span(span: tuple[float, float] | None) -> str:
    if span is None:
        return "?"
    low, high = span
    return f"{low:.2f}" if abs(high - low) < 0.005 else f"{low:.2f}-{high:.2f}"


# --- the terminal ----------------------------------------------------------------------------


def render_terminal(
    analyses: Sequence[TestAnalysis],
    gate_run: gates.GateRun | None = None,
    notes: Sequence[str] = (),
    *,
    width: int = 80,
    verbose: bool = False,
    results: Sequence[ItemResult] = (),
) -> str:
    """The summary for the terminal, no line longer than ``width``.

    ``results`` are the run's items: the patterns they skipped are listed after the tests.
    """
    width = max(40, width)
    lines: list[str] = []
    for t in analyses:
        if lines:
            lines.append("")
        lines.extend(_test_block(t, width, verbose))
    if analyses:
        lines.append("")
        lines.extend(textwrap.wrap(LEGEND, width))
    skipped = skipped_lines(results, width)
    if skipped:
        if lines:
            lines.append("")
        lines.extend(skipped)
    if gate_run is not None and gate_run.results:
        lines.append("")
        lines.extend(_gates_block(gate_run, width, verbose))
    for note in notes:
        lines.extend(textwrap.wrap(note, width, subsequent_indent="  ") or [""])
    return "\n".join(_fit(line, width) for line in lines) + "\n"


def skipped_lines(results: Sequence[ItemResult], width: int = 80) -> list[str]:
    """Per test, each pattern that was skipped and why, one wrapped line per reason."""
    cases: dict[str, set[str]] = {}
    reasons: dict[str, dict[tuple[str, str], set[str]]] = {}
    for r in results:
        cases.setdefault(r.test, set()).add(r.case)
        if r.skipped is not None:
            reasons.setdefault(r.test, {}).setdefault((r.pattern, r.skipped), set()).add(r.case)
    lines: list[str] = []
    for test, skipped in reasons.items():
        lines.append(_fit_middle(f"skipped in {test}:", width))
        for (pattern, reason), which in skipped.items():
            total = len(cases[test])
            count = f"{len(which)} of {total} cases" if len(which) < total else "every case"
            said = reason.removeprefix(f"pattern {pattern} ")
            lines.extend(
                textwrap.wrap(
                    f"{pattern}: {said} ({count})",
                    width,
                    initial_indent="  ",
                    subsequent_indent="    ",
                )
            )
    return lines


def _test_block(t: TestAnalysis, width: int, verbose: bool) -> list[str]:
    header = t.test
    facts = [f"{t.n_cases} case{'s' if t.n_cases != 1 else ''}"]
    facts.append(t.baseline_text())
    full = f"{header} ({', '.join(facts)})"
    if len(full) <= width:
        lines = [full]
    else:
        lines = [_fit_middle(header, width), _fit(f"  ({', '.join(facts)})", width)]
    lines.extend(_pattern_table(t, width))
    if verbose:
        rec = recommendation_line(t)
        if rec:
            lines.extend(textwrap.wrap(rec, width, initial_indent="  ", subsequent_indent="    "))
    else:
        rec = recommendation_line(t, short=True)
        if rec and len(rec) + 2 > width:
            rec = short_id(rec)
        if rec:
            # One line where it fits; wrapped, never cut, where it does not: a cut could
            # drop the very pattern it names.
            lines.extend(textwrap.wrap(rec, width, initial_indent="  ", subsequent_indent="    "))
    for note in family_notes(t) + savings.lines(t.adaptive):
        lines.extend(textwrap.wrap(note, width, initial_indent="  ", subsequent_indent="    "))
    if verbose:
        lines.extend(_verbose_lines(t, width))
    return lines


def _pattern_table(t: TestAnalysis, width: int) -> list[str]:
    from tabulate import tabulate

    vs = f"vs {t.baseline}" if t.baseline else "vs baseline"
    headers = ["pattern", "n", "accuracy [95% CI]", vs, "p50 s", "$/run", "marks"]
    rows = [
        [
            p.figures.pattern,
            str(p.figures.n),
            accuracy_text(p.summary),
            verdict_text(p.accuracy) if t.baseline else "",
            _num(p.figures.latency_p50, ".3f"),
            _cost(p.figures.cost_per_run),
            marks(t, p),
        ]
        for p in t.patterns
    ]
    compared = any(p.accuracy is not None for p in t.patterns)
    for shorten in (False, True):
        shown = [[short_id(r[0]) if shorten else r[0], *r[1:]] for r in rows]
        cols = list(range(7)) if compared else [0, 1, 2, 4, 5, 6]
        text = _indent(
            tabulate(
                [[r[i] for i in cols] for r in shown],
                headers=[headers[i] for i in cols],
                tablefmt="simple",
                disable_numparse=True,
            )
        )
        if max(len(line) for line in text) <= width:
            return text
    # Two lines per pattern: the figures, then the verdict against the baseline beneath.
    first = [[short_id(r[0]), r[1], r[2], r[4], r[5], r[6]] for r in rows]
    table = _indent(
        tabulate(
            first,
            headers=["pattern", "n", "accuracy [95% CI]", "p50 s", "$/run", "marks"],
            tablefmt="simple",
            disable_numparse=True,
        )
    )
    out = table[:2]
    for line, row in zip(table[2:], rows, strict=True):
        out.append(line)
        if row[3] and row[3] != "baseline":
            out.append(f"    {vs}: {row[3]}")
    return out


def _verbose_lines(t: TestAnalysis, width: int) -> list[str]:
    out = []
    for p in t.patterns:
        parts = []
        if p.accuracy is not None and p.accuracy.p_value is not None:
            parts.append(
                f"accuracy {p.accuracy.method}, p={p.accuracy.p_value:.2g} "
                f"(adjusted {p.accuracy.p_adjusted:.2g})"
            )
        for r in p.ratios:
            parts.append(f"{r.metric.replace('_', ' ')} {ratio_text(r)}")
        if p.summary.accuracy_method:
            parts.append(f"accuracy interval: {p.summary.accuracy_method}")
        if parts:
            out.extend(
                textwrap.wrap(
                    f"{p.figures.pattern}: " + "; ".join(parts),
                    width,
                    initial_indent="  ",
                    subsequent_indent="    ",
                )
            )
    for line in diagnostics.lines(t.diagnostics):
        out.extend(
            textwrap.wrap(
                line, width, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False
            )
        )
    return out


def _gates_block(run: gates.GateRun, width: int, verbose: bool) -> list[str]:
    head = (
        f"gates against the baseline run: {run.count('fail')} failed, "
        f"{run.count('inconclusive')} inconclusive, {run.count('pass')} passed"
        + (f", {run.count('not evaluated')} not evaluated" if run.count("not evaluated") else "")
    )
    budget = (
        f"the run's alpha {run.alpha:g} is split over its {run.evaluated} gates "
        f"(Bonferroni): each at {run.level:.2g}"
        if run.evaluated
        else "no gate could be evaluated"
    )
    lines = textwrap.wrap(head, width) + textwrap.wrap(budget, width, initial_indent="  ")
    for g in run.results:
        show = g.verdict in ("fail", "not evaluated") or verbose
        if not show:
            continue
        label = {"fail": "FAILED", "pass": "passed", "inconclusive": "inconclusive"}.get(
            g.verdict, "not evaluated"
        )
        said = g.reason if g.verdict == "not evaluated" else g.message
        lines.extend(
            textwrap.wrap(
                f"{label} {g.rule} {g.test} [{g.pattern}]: {said}",
                width,
                initial_indent="  ",
                subsequent_indent="    ",
            )
        )
        if g.regressed and g.verdict == "fail":
            cases = ", ".join(f"{c} ({b:.2f}->{n:.2f})" for c, b, n in g.regressed)
            lines.extend(
                textwrap.wrap(
                    f"cases that dropped: {cases}",
                    width,
                    initial_indent="    ",
                    subsequent_indent="      ",
                )
            )
    hidden = run.count("inconclusive") if not verbose else 0
    if hidden:
        detectable = _gate_span(run)
        lines.extend(
            textwrap.wrap(
                f"{hidden} inconclusive: the data showed these changes neither within nor "
                f"beyond their margins{detectable}; -v lists them, "
                "--patterns-fail-on-inconclusive makes them fail",
                width,
                initial_indent="  ",
                subsequent_indent="    ",
            )
        )
    return lines


def _gate_span(run: gates.GateRun) -> str:
    drops = [
        -g.mde
        for g in run.results
        if g.verdict == "inconclusive" and g.mde is not None and not g.rule.relative
    ]
    if not drops:
        return ""
    return f" (accuracy gates could only show drops of {min(drops):.2f} to {max(drops):.2f})"


def _indent(text: str) -> list[str]:
    return ["  " + line.rstrip() for line in text.splitlines()]


def _fit_middle(text: str, width: int) -> str:
    """A node id too long for the line loses its middle, so file and name both show."""
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: keep // 2] + "…" + text[len(text) - (keep - keep // 2) :]


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


# --- Markdown ---------------------------------------------------------------------------------


def render_markdown(
    analyses: Sequence[TestAnalysis],
    gate_run: gates.GateRun | None = None,
    notes: Sequence[str] = (),
) -> str:
    """Everything, as GitHub Markdown: gate verdicts first, then one section per test."""
    from tabulate import tabulate

    parts = ["## agentpatterns summary"]
    if gate_run is not None and gate_run.results:
        parts.append(f"### Gates: {gate_run.verdict_line().removeprefix('agentpatterns: ')}")
        parts.append(
            f"The run's alpha {gate_run.alpha:g} is split over its {gate_run.evaluated} "
            f"gates (Bonferroni): each is tested at {gate_run.level:.2g}, so the run fails "
            f"unchanged code at most {gate_run.alpha:g} of the time."
        )
        parts.append(tabulate(gate_rows(gate_run.results), headers=GATE_HEADERS, tablefmt="github"))
    for t in analyses:
        facts = f"{t.n_cases} cases, {t.baseline_text()}"
        parts.append(f"### {t.test} ({facts})")
        parts.append(
            tabulate(
                summary_rows(t), headers=MARKDOWN_HEADERS, tablefmt="github", disable_numparse=True
            )
        )
        extra = []
        rec = recommendation_line(t)
        if rec:
            extra.append(f"**{rec[0].upper()}{rec[1:]}**")
        if t.family is not None:
            extra.append(f"Accuracy against {t.baseline}: {t.family.method}.")
        extra.extend(family_notes(t))
        extra.extend(savings.lines(t.adaptive))
        extra.extend(diagnostics.lines(t.diagnostics))
        parts.append("\n".join(f"- {e}" for e in extra))
    parts.append(LEGEND)
    parts.extend(notes)
    return "\n\n".join(p for p in parts if p) + "\n"


def summary_rows(t: TestAnalysis) -> list[list[str]]:
    """Every figure of every pattern of one test, for Markdown."""
    rows = []
    for p in t.patterns:
        f, s, c = p.figures, p.summary, p.accuracy
        by_metric = {r.metric: r for r in p.ratios}
        p_adj = "" if c is None or c.p_adjusted is None else stats.format_p(c.p_adjusted)
        rows.append(
            [
                f.pattern + (" (baseline)" if f.pattern == t.baseline else ""),
                str(f.n),
                accuracy_text(s),
                "" if f.pattern == t.baseline else verdict_text(c),
                p_adj,
                _num(f.latency_p50, ".3f"),
                _num(f.latency_p95, ".3f"),
                _num(f.cost_per_run, ".6f"),
                _num(s.cost_per_correct, ".6f"),
                _num(f.tokens_per_run, ".0f"),
                format(f.calls_per_run, ".1f"),
                *(
                    ratio_text(by_metric[m]) if m in by_metric else ""
                    for m in ("latency_p50", "latency_p95", "cost")
                ),
                marks(t, p),
            ]
        )
    return rows


def gate_rows(results: Sequence[gates.GateResult]) -> list[list[str]]:
    """One row per gate, failures first."""
    order = {"fail": 0, "inconclusive": 1, "pass": 2, "not evaluated": 3}
    rows = []
    for g in sorted(results, key=lambda g: order[g.verdict]):
        change = "n/a"
        if g.estimate is not None:
            fmt = stats.format_ratio if g.rule.relative else stats.format_difference
            change = fmt(g.estimate)
            if g.interval is not None:
                change += f" [{fmt(g.interval.low)}, {fmt(g.interval.high)}]"
        detects = ""
        if g.mde is not None:
            detects = (
                stats.format_ratio(g.mde) if g.rule.relative else stats.format_difference(g.mde, 2)
            )
        power = "" if g.power is None else f"{g.power:.0%}"
        verdict = g.verdict.upper() if g.verdict == "fail" else g.verdict
        if g.reason:
            verdict += f": {g.reason}"
        rows.append([verdict, str(g.rule), g.test, g.pattern, change, detects, power])
    return rows
