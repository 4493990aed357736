"""The HTML report (``--patterns-html``): one self-contained page of tables and SVG charts.

Everything is inline (CSS, SVG drawn here), with no script and no external reference, so the
file opens anywhere, offline, and the same run always renders to the same bytes.
docs/html-report.md describes what the page shows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from . import casegrid, pareto, ratios, savings, stats
from .analysis import PatternAnalysis, TestAnalysis
from .family import AccuracyComparison
from .gates import GateResult, GateRun
from .metrics import percentile
from .recommend import Recommendation
from .records import ItemResult
from .table import family_notes

PALETTE = (
    "#4e79a7",
    "#e08a3c",
    "#5a9e5a",
    "#c9504f",
    "#6fa8a3",
    "#a9799f",
    "#c7a640",
    "#8c6d5c",
    "#7f8c99",
    "#d98a9c",
)
"""Muted categorical colours, given to patterns in order of first appearance."""

FONT = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
    '"Noto Sans", "Liberation Sans", sans-serif'
)

MAX_DOTS = 400
"""Latency dots drawn per pattern at most; more are thinned evenly over the sorted values."""

# Average advance of a 12px sans-serif character (DejaVu Sans, the widest common default),
# regular and bold, for placing and fitting labels.
_CHAR_WIDTH = 6.9
_BOLD_WIDTH = 7.8

CSS = (
    """
:root {
  --fg: #1f2933; --muted: #616e7c; --faint: #9aa5b1; --line: #e4e7eb; --bg: #f4f6f8;
  --card: #ffffff; --accent: #3e6a9e; --good: #2f7d4f; --good-bg: #eaf5ee;
  --bad: #b23b3b; --bad-bg: #fbeeee; --rec: #b7791f; --rec-bg: #fdf6e7;
  color-scheme: light;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.5 FONT; -webkit-font-smoothing: antialiased; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 20px 56px; }
header { margin-bottom: 8px; }
h1 { font-size: 26px; font-weight: 650; letter-spacing: -0.01em; margin: 0 0 4px; }
h2 { font-size: 19px; font-weight: 620; margin: 0 0 12px; overflow-wrap: anywhere; }
h3 { font-size: 13px; font-weight: 620; text-transform: uppercase; letter-spacing: 0.04em;
  color: var(--muted); margin: 22px 0 8px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
.lede { color: var(--muted); margin: 0; }
.lede b { color: var(--fg); font-weight: 600; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 20px 22px; margin: 20px 0; box-shadow: 0 1px 2px rgba(31, 41, 51, 0.05); }
.muted { color: var(--muted); font-weight: 400; }
.small { font-size: 12.5px; }
.banner { border-radius: 8px; padding: 10px 14px; margin: 16px 0; font-weight: 560; }
.banner a { color: inherit; }
.banner.fail { background: var(--bad-bg); color: var(--bad); border: 1px solid #efc9c9; }
.banner.pass { background: var(--good-bg); color: var(--good); border: 1px solid #c7e3d1; }
.notes { background: #fffaf0; border: 1px solid #f0e0bd; border-radius: 8px;
  padding: 10px 14px 10px 32px; margin: 16px 0; color: #6b4e16; }
.notes li { margin: 2px 0; overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px;
  font-variant-numeric: tabular-nums; }
caption { text-align: left; color: var(--muted); font-size: 12.5px; padding: 0 0 6px; }
th, td { padding: 6px 6px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: middle; white-space: nowrap; }
thead th { font-size: 12px; font-weight: 600; color: var(--muted); white-space: normal;
  line-height: 1.3; border-bottom: 1.5px solid #cbd2d9; vertical-align: bottom; }
tbody th { font-weight: 560; white-space: normal; min-width: 8.5em; }
td.name { white-space: normal; min-width: 8em; }
td.num, th.num { text-align: right; }
tr:last-child > td, tr:last-child > th { border-bottom: none; }
tr.recommended > * { background: var(--rec-bg); }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin-right: 7px; vertical-align: 0; }
.badge { display: inline-block; font-size: 11px; font-weight: 600; line-height: 1;
  padding: 3px 6px; border-radius: 9px; margin-left: 6px; vertical-align: 1px;
  white-space: nowrap; }
td > .badge:first-child { margin-left: 0; }
.badge.baseline { background: #e8ecf1; color: #3e4c59; }
.badge.recommended { background: #f6e3bb; color: #7a4f0c; }
.badge.fail { background: var(--bad); color: #fff; }
.badge.pass { background: var(--good-bg); color: var(--good); }
.badge.skip { background: #eef0f3; color: var(--muted); }
.ci { color: var(--muted); font-size: 12.5px; margin-left: 4px; }
.sub { display: block; color: var(--muted); font-size: 11.5px; line-height: 1.35; }
.sub .p { color: var(--faint); white-space: nowrap; }
.nw { white-space: nowrap; }
.minibar { vertical-align: -1px; margin-left: 4px; }
.bad-count { color: var(--bad); font-weight: 600; }
.pareto-yes { color: var(--fg); }
.pareto-no { color: var(--faint); }
.pareto-unknown { color: var(--muted); font-weight: 650; cursor: help; }
td.better .est { color: var(--good); font-weight: 650; }
td.worse .est { color: var(--bad); font-weight: 650; }
td.na { color: var(--faint); }
tr.gate-fail > * { background: var(--bad-bg); }
tr.gate-fail .message { color: var(--bad); }
tr.gate-na > * { color: var(--muted); }
.message { white-space: normal; font-size: 12.5px; min-width: 16em; overflow-wrap: anywhere; }
.recommendation { background: var(--rec-bg); border: 1px solid #f0dcb0; border-radius: 8px;
  padding: 10px 14px; margin: 0 0 16px; }
.recommendation b { color: #7a4f0c; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(440px, 100%), 1fr));
  gap: 24px; margin-top: 8px; }
figure { margin: 0; min-width: 0; }
figcaption { font-weight: 600; font-size: 13.5px; margin-bottom: 6px; }
figcaption .muted { font-size: 12.5px; }
figure svg { display: block; width: 100%; height: auto; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; color: var(--muted);
  font-size: 12px; margin-top: 4px; }
.legend svg { display: inline-block; width: auto; vertical-align: -2px; margin-right: 4px; }
.overview td, .overview th { white-space: normal; }
details { margin-top: 8px; color: var(--muted); font-size: 12.5px; }
details summary { cursor: pointer; }
details li { overflow-wrap: anywhere; }
footer { color: var(--faint); font-size: 12px; margin-top: 28px; }
svg text { font-family: FONT; }
svg .axis { stroke: #9aa5b1; stroke-width: 1; }
svg .grid { stroke: #edf0f3; stroke-width: 1; }
svg .tick { fill: #616e7c; font-size: 11px; }
svg .axis-title { fill: #52606d; font-size: 12px; }
svg .label { fill: #323f4b; font-size: 12px; paint-order: stroke; stroke: #ffffff;
  stroke-width: 3.5px; stroke-linejoin: round; }
svg .row-label { fill: #323f4b; font-size: 12px; }
svg .pareto-front { fill: none; stroke: #52606d; stroke-width: 1.6; stroke-dasharray: 6 4; }
svg .rec-ring { fill: none; stroke: #b7791f; stroke-width: 2.2; }
@media (max-width: 1180px) {
  th, td { padding: 6px 5px; }
  .acc-detail { display: block; }
  .sub { white-space: normal; }
}
@media (max-width: 960px) {
  main { padding: 18px 10px 40px; }
  h1 { font-size: 22px; }
  .card { padding: 14px 12px; margin: 14px 0; }
  table.stack, table.stack tbody, table.stack tr, table.stack th, table.stack td,
  table.stack caption { display: block; width: auto; min-width: 0; }
  table.stack thead { position: absolute; width: 1px; height: 1px; overflow: hidden;
    clip-path: inset(50%); white-space: nowrap; }
  table.stack tr { padding: 6px 0 8px; border-bottom: 1.5px solid #cbd2d9; }
  table.stack tr:last-child { border-bottom: none; }
  table.stack th, table.stack td { border: none; padding: 2px 4px; white-space: normal;
    text-align: right; overflow-wrap: anywhere; }
  table.stack tbody th { text-align: left; font-size: 14px; padding: 4px; }
  table.stack td::before { content: attr(data-label); float: left; margin-right: 12px;
    color: var(--muted); font-size: 12px; text-align: left; }
  table.stack td.message { text-align: left; }
  table.stack td.message::before { float: none; display: block; }
  svg .tick { font-size: 12.5px; }
  svg .axis-title { font-size: 13px; }
}
@media print { body { background: #fff; } .card { box-shadow: none; break-inside: avoid; } }
""".replace("FONT", FONT)
    + casegrid.CSS
)


def render_html(
    analyses: Sequence[TestAnalysis],
    results: Sequence[ItemResult],
    gate_results: Sequence[GateResult] = (),
    notes: Sequence[str] = (),
    *,
    alpha: float = 0.05,
    gate_run: GateRun | None = None,
) -> str:
    """The whole report as one HTML document: tables, charts, recommendation, gates and notes.

    ``results`` supply what the analyses summarise away (per-repetition latencies, skipped
    patterns, call counts); ``gate_run`` the run-level alpha the gates shared.
    """
    if gate_run is not None and not gate_results:
        gate_results = gate_run.results
    colours = _colours(analyses)
    body = [_header(analyses, results, gate_results)]
    if notes:
        body.append(
            '<ul class="notes" aria-label="Notes">'
            + "".join(f"<li>{_e(n)}</li>" for n in notes)
            + "</ul>"
        )
    if len(analyses) > 1:
        body.append(_overview(analyses))
    for index, analysis in enumerate(analyses, 1):
        body.append(_test_section(index, analysis, results, colours, alpha))
    if not analyses:
        body.append('<section class="card"><p class="muted">No pattern results.</p></section>')
    if gate_results:
        body.append(_gates_section(gate_results, gate_run))
    body.append(
        "<footer>Generated by pytest-agentpatterns. Accuracy intervals are 95% per pattern; "
        "accuracy against the baseline is one family per test, its intervals simultaneous "
        "(Bonferroni) and in agreement with the verdicts; latency and cost ratios are "
        "estimates with 95% intervals. The Pareto front is over accuracy, cost per run and "
        f"latency p50, {_e(pareto.RULE)}. docs/statistics.md explains each number.</footer>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>agentpatterns report</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


# --- text and numbers ------------------------------------------------------------------------


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _sig(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits in fixed notation (no exponent)."""
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return "n/a"
    exponent = math.floor(math.log10(abs(value)))
    return f"{value:.{max(0, digits - 1 - exponent)}f}"


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def _money(value: float | None) -> str:
    return "n/a" if value is None else "$" + _sig(value)


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else _sig(value) + " s"


def _count(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _interval(interval: stats.Interval | None, fmt: Callable[[float], str]) -> str:
    if interval is None:
        return ""
    return f"[{fmt(interval.low)}, {fmt(interval.high)}]"


def _reason(recommendation: Recommendation) -> str:
    """The reason without its leading ``pattern:``, which the page already shows."""
    prefix = f"{recommendation.pattern}: "
    reason = recommendation.reason
    return reason[len(prefix) :] if reason.startswith(prefix) else reason


def _recommended(t: TestAnalysis) -> str | None:
    """The recommended pattern, when the data decided one."""
    rec = t.recommendation
    return rec.pattern if rec is not None and rec.decided else None


def _test_name(test: str) -> str:
    """The test id, its module muted; it may break after ``::`` and ``/``."""
    path, sep, name = test.rpartition("::")
    if not sep:
        return _breakable(test)
    return f'<span class="muted">{_breakable(path)}::</span><wbr>{_breakable(name)}'


def _breakable(text: str) -> str:
    """``text`` escaped, with line-break opportunities after commas and slashes, so a long
    pattern id (``escalate(n=3,threshold=0.67)``) or path wraps in a narrow column."""
    return _e(text).replace(",", ",<wbr>").replace("/", "/<wbr>")


def _td(label: str, content: str, cls: str = "", attrs: str = "") -> str:
    """A data cell; ``label`` is its column's title, shown beside it when rows stack on a
    narrow screen."""
    cls_attr = f' class="{cls}"' if cls else ""
    return f'<td{cls_attr} data-label="{_e(label)}"{attrs}>{content}</td>'


def _colours(analyses: Sequence[TestAnalysis]) -> dict[str, str]:
    colours: dict[str, str] = {}
    for t in analyses:
        for p in t.patterns:
            colours.setdefault(p.figures.pattern, PALETTE[len(colours) % len(PALETTE)])
    return colours


# --- page parts ------------------------------------------------------------------------------


def _header(
    analyses: Sequence[TestAnalysis],
    results: Sequence[ItemResult],
    gate_results: Sequence[GateResult],
) -> str:
    run = [r for r in results if r.skipped is None]
    reps = [rep for r in run for rep in r.repetitions]
    calls = [c for rep in reps for c in rep.calls]
    patterns = {p.figures.pattern for t in analyses for p in t.patterns}
    parts = [
        f"<b>{_plural(len(analyses), 'test function')}</b>",
        f"<b>{_plural(len(patterns), 'pattern')}</b>",
        f"{_plural(len(run), 'item')}",
        f"{_plural(len(reps), 'repetition')}",
        f"{_plural(len(calls), 'call')}",
    ]
    costs = [rep.cost for rep in reps]
    if reps and all(c is not None for c in costs):
        parts.append(f"total cost {_money(math.fsum(c for c in costs if c is not None))}")
    elif reps:
        parts.append("total cost n/a (unpriced models)")
    if calls:
        replayed = sum(1 for c in calls if c.replayed)
        if replayed == len(calls):
            parts.append("all calls replayed from cassettes")
        elif replayed:
            parts.append(f"{replayed} of {len(calls)} calls replayed from cassettes")
        else:
            parts.append("all calls live")
    skipped = sum(1 for r in results if r.skipped is not None)
    if skipped:
        parts.append(f"{_plural(skipped, 'item')} skipped")
    out = [
        "<header>",
        "<h1>agentpatterns report</h1>",
        f'<p class="lede">{" · ".join(parts)}</p>',
        "</header>",
    ]
    if gate_results:
        failed = sum(1 for g in gate_results if g.verdict == "fail")
        unevaluated = sum(1 for g in gate_results if g.verdict == "not evaluated")
        inconclusive = sum(1 for g in gate_results if g.verdict == "inconclusive")
        extra = f"; {inconclusive} inconclusive" if inconclusive else ""
        extra += f"; {unevaluated} not evaluated" if unevaluated else ""
        if failed:
            text = f"{failed} of {_plural(len(gate_results), 'gate')} failed{extra}"
            out.append(f'<p class="banner fail"><a href="#gates">{text}</a></p>')
        else:
            text = f"No gate failed ({_plural(len(gate_results), 'gate')}{extra})"
            out.append(f'<p class="banner pass"><a href="#gates">{text}</a></p>')
    return "\n".join(out)


def _overview(analyses: Sequence[TestAnalysis]) -> str:
    rows = []
    for index, t in enumerate(analyses, 1):
        best = max(
            (p for p in t.patterns if p.summary.accuracy is not None),
            key=lambda p: p.summary.accuracy or 0.0,
            default=None,
        )
        best_text = (
            "n/a"
            if best is None
            else f"{_breakable(best.figures.pattern)} ({best.summary.accuracy or 0.0:.2f})"
        )
        decided = _recommended(t)
        rec = (
            "—"
            if t.recommendation is None
            else _breakable(decided)
            if decided
            else '<span class="muted">none yet</span>'
        )
        rows.append(
            f'<tr><th scope="row"><a href="#test-{index}">{_test_name(t.test)}</a></th>'
            + _td("patterns", str(len(t.patterns)), "num")
            + _td("baseline", _breakable(t.baseline or "—"))
            + _td("most accurate", best_text)
            + _td("recommended", f"<b>{rec}</b>")
            + "</tr>"
        )
    return (
        '<section class="card" aria-labelledby="overview-h"><h2 id="overview-h">Tests</h2>'
        '<div class="table-wrap"><table class="overview stack"><thead><tr>'
        '<th scope="col">test function</th><th scope="col" class="num">patterns</th>'
        '<th scope="col">baseline</th><th scope="col">most accurate</th>'
        '<th scope="col">recommended</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></div></section>"
    )


def _test_section(
    index: int,
    t: TestAnalysis,
    results: Sequence[ItemResult],
    colours: dict[str, str],
    alpha: float,
) -> str:
    recommended = _recommended(t)
    out = [
        f'<section class="card" id="test-{index}" aria-labelledby="test-{index}-h">',
        f'<h2 id="test-{index}-h">{_test_name(t.test)}</h2>',
    ]
    if t.recommendation is not None and recommended is not None:
        out.append(
            f'<p class="recommendation">Recommended: <b>{_e(recommended)}</b> '
            f"— {_e(_reason(t.recommendation))}</p>"
        )
    elif t.recommendation is not None:
        out.append(
            f'<p class="recommendation">No recommendation yet — {_e(t.recommendation.reason)}</p>'
        )
    out.append(_summary_table(t, colours, recommended))
    skipped = _skipped(t.test, results, {p.figures.pattern for p in t.patterns})
    if skipped:
        out.append(
            '<p class="small muted">Not run: '
            + "; ".join(f"<b>{_e(p)}</b> ({_e(r)})" for p, r in skipped.items())
            + "</p>"
        )
    out.append('<div class="charts">')
    out.append(_scatter(t, colours, recommended, index))
    out.append(_latency_chart(t, results, colours, recommended, index))
    out.append("</div>")
    if any(p.accuracy is not None or p.ratios for p in t.patterns):
        out.append(_comparison_table(t))
    patterns = [p.figures.pattern for p in t.patterns]
    out.append(casegrid.case_grid(t.test, patterns, results, f"test-{index}"))
    out.extend(f'<p class="adaptive">{_e(line)}</p>' for line in savings.lines(t.adaptive))
    out.extend(_diagnostics_section(t, colours, index))
    out.append("</section>")
    return "\n".join(out)


def _skipped(test: str, results: Sequence[ItemResult], ran: set[str]) -> dict[str, str]:
    """Patterns of ``test`` that never ran, by name, each with its first item's reason.

    Sorted so the page does not depend on the order results arrived in (xdist).
    """
    out: dict[str, str] = {}
    for r in sorted(results, key=lambda r: (r.pattern, r.nodeid)):
        if r.test == test and r.skipped is not None and r.pattern not in ran:
            out.setdefault(r.pattern, r.skipped)
    return out


def _pattern_cell(pattern: str, colour: str, baseline: bool, recommended: bool) -> str:
    badges = ""
    if baseline:
        badges += '<span class="badge baseline">baseline</span>'
    if recommended:
        badges += '<span class="badge recommended">recommended</span>'
    return (
        f'<th scope="row"><span class="swatch" style="background:{colour}" aria-hidden="true">'
        f"</span>{_breakable(pattern)}{badges}</th>"
    )


def _minibar(summary: stats.Summary, colour: str) -> str:
    """A small [0, 1] strip with the accuracy interval and estimate, beside the numbers."""
    if summary.accuracy is None:
        return ""
    scale = _Scale(0.0, 1.0, 4.0, 52.0)
    parts = [
        '<svg class="minibar" width="56" height="10" viewBox="0 0 56 10" '
        'aria-hidden="true" focusable="false">',
        '<line x1="4" y1="5" x2="52" y2="5" stroke="#e4e7eb" stroke-width="2"/>',
    ]
    if summary.accuracy_interval is not None:
        low = scale(_clamp(summary.accuracy_interval.low, 0.0, 1.0))
        high = scale(_clamp(summary.accuracy_interval.high, 0.0, 1.0))
        parts.append(
            f'<line x1="{_f(low)}" y1="5" x2="{_f(high)}" y2="5" stroke="{colour}" '
            'stroke-width="4" stroke-linecap="round" opacity="0.45"/>'
        )
    x = scale(_clamp(summary.accuracy, 0.0, 1.0))
    parts.append(f'<circle cx="{_f(x)}" cy="5" r="3.5" fill="{colour}"/></svg>')
    return "".join(parts)


def _pareto_cell(p: PatternAnalysis, unknown: dict[str, tuple[str, ...]]) -> str:
    """On the front, dominated, or on it only because a measure could not be compared."""
    name = p.figures.pattern
    if not p.pareto:
        mark = '<span class="pareto-no" title="dominated">&ndash;</span>'
    elif name in unknown:
        why = f"not dominated, but not compared on {' or '.join(unknown[name])} (unknown)"
        mark = f'<span class="pareto-unknown" title="{_e(why)}">?</span>'
    else:
        mark = '<span class="pareto-yes" title="on the Pareto front">●</span>'
    return _td("Pareto", mark, "num")


def _summary_table(t: TestAnalysis, colours: dict[str, str], recommended: str | None) -> str:
    unknown = pareto.not_compared(
        {
            p.figures.pattern: (p.summary.accuracy, p.figures.cost_per_run, p.figures.latency_p50)
            for p in t.patterns
        }
    )
    rows = []
    for p in t.patterns:
        f, s = p.figures, p.summary
        name = f.pattern
        accuracy = "n/a"
        if s.accuracy is not None:
            accuracy = (
                f'{s.accuracy:.3f}<span class="acc-detail">'
                f'<span class="ci">{_interval(s.accuracy_interval, lambda v: f"{v:.2f}")}</span>'
                + _minibar(s, colours[name])
                + "</span>"
            )
        method = f' title="{_e(s.accuracy_method)}"' if s.accuracy_method else ""
        errors = f'<span class="bad-count">{f.errors}</span>' if f.errors else "0"
        row_class = ' class="recommended"' if name == recommended else ""
        rows.append(
            f"<tr{row_class}>"
            + _pattern_cell(name, colours[name], name == t.baseline, name == recommended)
            + _td("n (cases)", f'{f.n} <span class="muted small">({f.cases})</span>', "num")
            + _td("accuracy [95% CI]", accuracy, "num", method)
            + _td("errors", errors, "num")
            + _td("latency p50", _seconds(f.latency_p50), "num")
            + _td("latency p95", _seconds(f.latency_p95), "num")
            + _td("cost / run", _money(f.cost_per_run), "num")
            + _td("cost / correct", _money(s.cost_per_correct), "num")
            + _td("tokens / run", _count(f.tokens_per_run, ",.0f"), "num")
            + _td("calls / run", f"{f.calls_per_run:.1f}", "num")
            + _pareto_cell(p, unknown)
            + "</tr>"
        )
    head = "".join(
        f'<th scope="col"{cls}>{text}</th>'
        for text, cls in (
            ("pattern", ""),
            ('n <span class="muted">(cases)</span>', ' class="num"'),
            ("accuracy [95% CI]", ' class="num"'),
            ("errors", ' class="num"'),
            ("latency p50", ' class="num"'),
            ("latency p95", ' class="num"'),
            ("cost / run", ' class="num"'),
            ("cost / correct", ' class="num"'),
            ("tokens / run", ' class="num"'),
            ("calls / run", ' class="num"'),
            (
                f'<abbr title="on the Pareto front of accuracy, cost and latency p50, '
                f'{_e(pareto.RULE)}">Pareto</abbr>',
                ' class="num"',
            ),
        )
    )
    return (
        '<div class="table-wrap"><table class="summary stack">'
        "<caption>Per pattern, cases aggregated: n repetitions (cases), accuracy with its "
        "95% interval, latency percentiles over all repetitions, means per run.</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
    )


def _accuracy_cell(c: AccuracyComparison, label: str) -> str:
    """The verdict, the difference and its simultaneous interval; coloured when shown."""
    if c.estimate is None:
        return _td(label, "n/a", "na", f' title="{_e(c.note or "not compared")}"')
    cls = "num"
    if c.verdict == "better":
        cls += " better"
    elif c.verdict == "worse":
        cls += " worse"
    interval = ""
    if c.interval is not None and c.interval.low != c.interval.high:
        interval = f'<span class="nw">[{c.interval.low:+.3f}, {c.interval.high:+.3f}]</span>'
    elif c.note and c.verdict != "too few cases":
        interval = _e(c.note)  # wraps: "identical on every case", "every case differs by …"
    p = (
        f' · <span class="p">{_e(stats.format_p(c.p_adjusted))} adj.</span>'
        if c.p_adjusted is not None and c.significant
        else ""
    )
    how = f"{c.method}; {c.n_cases} cases; tested at {c.level:.2g}" + (
        f"; {c.note}" if c.note else ""
    )
    return _td(
        label,
        f'<span class="est">{_e(f"{c.estimate:+.3f}")}</span>'
        f'<span class="sub">{_e(c.verdict)}</span>'
        f'<span class="sub">{interval}{p}</span>',
        cls,
        f' title="{_e(how)}"',
    )


def _ratio_cell(r: ratios.Ratio, label: str) -> str:
    """A latency or cost ratio with its 95% interval: an estimate, never coloured."""
    if r.estimate is None:
        return _td(label, "n/a", "na", f' title="{_e(r.note or "not compared")}"')
    if r.constant:
        sub = "every case"
    elif r.interval is not None:
        sub = f"[{stats.format_ratio(r.interval.low)}, {stats.format_ratio(r.interval.high)}]"
    else:
        sub = r.note or ""
    return _td(
        label,
        f'<span class="est">{_e(stats.format_ratio(r.estimate))}</span>'
        f'<span class="sub"><span class="nw">{_e(sub)}</span></span>',
        "num",
        f' title="{_e(r.method)}"',
    )


def _comparison_table(t: TestAnalysis) -> str:
    titles = {
        "latency_p50": "latency p50 ratio",
        "latency_p95": "latency p95 ratio",
        "cost": "cost ratio",
    }
    metrics = [m for m in titles if any(r.metric == m for p in t.patterns for r in p.ratios)]
    rows = []
    for p in t.patterns:
        if p.accuracy is None and not p.ratios:
            continue
        by_metric = {r.metric: r for r in p.ratios}
        cells = (
            _accuracy_cell(p.accuracy, "accuracy difference")
            if p.accuracy is not None
            else _td("accuracy difference", "")
        ) + "".join(
            _ratio_cell(by_metric[m], titles[m]) if m in by_metric else _td(titles[m], "")
            for m in metrics
        )
        rows.append(
            f'<tr><th scope="row">{_breakable(p.figures.pattern)} '
            f'<span class="muted">vs {_breakable(t.baseline)}</span></th>{cells}</tr>'
        )
    head = '<th scope="col" class="num">accuracy difference</th>' + "".join(
        f'<th scope="col" class="num">{_e(titles[m])}</th>' for m in metrics
    )
    notes = [f"<li>{_e(n)}</li>" for n in family_notes(t)]
    details = ""
    if notes:
        details = (
            f"<details><summary>What the comparisons could not show ({len(notes)})</summary>"
            f"<ul>{''.join(notes)}</ul></details>"
        )
    family = t.family
    how = (
        f"one family per test: {_e(family.method)}"
        if family is not None
        else "no accuracy comparisons"
    )
    return (
        "<h3>Against the baseline pattern</h3>"
        '<div class="table-wrap"><table class="comparisons stack">'
        f"<caption>Accuracy difference against {_e(t.baseline)} with its verdict and "
        f"simultaneous interval ({how}; coloured when shown better or worse). Latency and "
        "cost as ratios with 95% intervals: estimates, not tests.</caption>"
        f'<thead><tr><th scope="col">pattern</th>{head}</tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></div>"
        + details
    )


def _gates_section(gate_results: Sequence[GateResult], run: GateRun | None = None) -> str:
    """Every gate, failed first, then inconclusive (with what each could have shown)."""
    order = {"fail": 0, "inconclusive": 1, "not evaluated": 2, "pass": 3}
    rows = []
    for g in sorted(gate_results, key=lambda g: order.get(g.verdict, 4)):
        fmt = stats.format_ratio if g.rule.relative else stats.format_difference
        change = "n/a"
        if g.estimate is not None:
            change = _e(fmt(g.estimate))
            if g.interval is not None:
                low, high = fmt(g.interval.low), fmt(g.interval.high)
                change += f'<span class="sub nw">[{_e(low)}, {_e(high)}]</span>'
        detects = "" if g.mde is not None else "—"
        if g.mde is not None:
            detects = _e(fmt(g.mde))
            if g.power is not None:
                detects += f'<span class="sub nw">power {g.power:.0%}</span>'
        if g.verdict == "fail":
            cls, badge = ' class="gate-fail"', '<span class="badge fail">FAIL</span>'
        elif g.verdict == "pass":
            cls, badge = "", '<span class="badge pass">pass</span>'
        else:
            cls, badge = ' class="gate-na"', f'<span class="badge skip">{_e(g.verdict)}</span>'
        evidence = _e(g.message)
        if g.regressed and g.verdict == "fail":
            evidence += (
                '<span class="sub">cases that dropped: '
                + _e(", ".join(f"{c} ({b:.2f}→{n:.2f})" for c, b, n in g.regressed))
                + "</span>"
            )
        rows.append(
            f'<tr{cls}><th scope="row">{_e(g.rule)}</th>'
            + _td("test", _test_name(g.test), "name")
            + _td("pattern", _breakable(g.pattern), "name")
            + _td("change [CI]", change, "num")
            + _td("detects", detects, "num")
            + _td("verdict", badge)
            + _td("evidence", evidence, "message")
            + "</tr>"
        )
    counts = {v: sum(1 for g in gate_results if g.verdict == v) for v in order}
    summary = (
        f"{counts['fail']} failed, {counts['inconclusive']} inconclusive, "
        f"{counts['pass']} passed"
        + (f", {counts['not evaluated']} not evaluated" if counts["not evaluated"] else "")
    )
    budget = ""
    if run is not None:
        budget = (
            f'<p class="small muted">The run\'s alpha {run.alpha:g} is split over its '
            f"{run.evaluated} gates (Bonferroni): each is tested at {run.level:.2g}, so the "
            f"run fails unchanged code at most {run.alpha:g} of the time. “Detects” is the "
            "smallest regression each gate would catch with 80% power, and its power "
            "against a regression twice its tolerance.</p>"
        )
    return (
        '<section class="card" id="gates" aria-labelledby="gates-h">'
        f'<h2 id="gates-h">Gates against the baseline run '
        f'<span class="muted">{summary}</span></h2>'
        + budget
        + '<div class="table-wrap"><table class="gates stack"><thead><tr>'
        '<th scope="col">gate</th><th scope="col">test</th><th scope="col">pattern</th>'
        '<th scope="col" class="num">change [CI]</th><th scope="col" class="num">detects</th>'
        '<th scope="col">verdict</th><th scope="col">evidence</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></div></section>"
    )


# --- charts ----------------------------------------------------------------------------------


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _nice_step(rough: float) -> float:
    exponent = math.floor(math.log10(rough))
    base = 10.0**exponent
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if rough <= m * base * (1 + 1e-9):
            return m * base
    return 10.0 * base


@dataclass(frozen=True)
class _Scale:
    """Maps a data domain ``[lo, hi]`` onto pixels ``[a, b]``, linear or base-10 log."""

    lo: float
    hi: float
    a: float
    b: float
    log: bool = False

    def __call__(self, value: float) -> float:
        if self.log:
            t = (math.log10(value) - math.log10(self.lo)) / (
                math.log10(self.hi) - math.log10(self.lo)
            )
        else:
            t = (value - self.lo) / (self.hi - self.lo)
        return self.a + t * (self.b - self.a)

    def ticks(self) -> list[float]:
        if self.log:
            out = []
            for k in range(math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi)) + 1):
                for m in (1, 2, 5):
                    v = m * 10.0**k
                    if self.lo <= v <= self.hi:
                        out.append(v)
            return out
        step = _nice_step((self.hi - self.lo) / 5)
        first = math.ceil(self.lo / step - 1e-9)
        last = math.floor(self.hi / step + 1e-9)
        return [round(i * step, 12) for i in range(first, last + 1)]


def _linear_domain(low: float, high: float) -> tuple[float, float]:
    """A domain from ``low`` (0 or above) to a round number above ``high``."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    step = _nice_step((high - low) / 5)
    return math.floor(low / step + 1e-9) * step, math.ceil(high / step - 1e-9) * step


def _x_scale(values: Sequence[float], a: float, b: float) -> _Scale:
    """Log when the values are positive and span more than a factor of 8, else from 0."""
    low, high = min(values), max(values)
    if low > 0 and high / low > 8:
        return _Scale(low / 1.5, high * 1.5, a, b, log=True)
    lo, hi = _linear_domain(0.0, high * 1.08)
    return _Scale(lo, hi, a, b)


def _tick_text(value: float, unit: str) -> str:
    text = _trim(_sig(value, 3)) if value else "0"
    return "$" + text if unit == "$" else text + unit


@dataclass(frozen=True)
class _Point:
    pattern: str
    x: float
    y: float
    low: float | None
    high: float | None
    pareto: bool
    baseline: bool
    recommended: bool


def _f(value: float) -> str:
    return f"{value:.1f}"


_LABEL_SPOTS = (
    (10.0, 4.0, "start"),
    (-10.0, 4.0, "end"),
    (9.0, -9.0, "start"),
    (9.0, 17.0, "start"),
    (-9.0, -9.0, "end"),
    (-9.0, 17.0, "end"),
    (0.0, -13.0, "middle"),
    (0.0, 23.0, "middle"),
)

_Box = tuple[float, float, float, float]


def _overlap(a: _Box, b: _Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _place_labels(
    points: Sequence[tuple[str, float, float, float | None, float | None, float]],
    bounds: _Box,
    canvas: _Box,
    path: Sequence[tuple[float, float]] = (),
) -> list[tuple[float, float, str]]:
    """A spot for each label (x, y, anchor): inside ``bounds``, clear of points, error bars,
    the segments of ``path`` and the labels placed before it, and never off ``canvas``.

    Each point is (text, x, y, error bar top, error bar bottom, character width). Greedy over
    the points in order; each takes the first spot with the least weighted overlap.
    """
    obstacles: list[tuple[_Box, float]] = []
    for _, cx, cy, top, bottom, _ in points:
        obstacles.append(((cx - 7, cy - 7, cx + 7, cy + 7), 3.0))
        if top is not None and bottom is not None:
            obstacles.append(((cx - 5, top, cx + 5, bottom), 1.5))
    for (x1, y1), (x2, y2) in itertools.pairwise(path):
        steps = max(1, math.ceil(math.hypot(x2 - x1, y2 - y1) / 6))
        for i in range(steps + 1):  # a slanted segment as a chain of small boxes
            x, y = x1 + (x2 - x1) * i / steps, y1 + (y2 - y1) * i / steps
            obstacles.append(((x - 3, y - 3, x + 3, y + 3), 4.0))
    placed: list[tuple[float, float, str]] = []
    for text, cx, cy, _, _, char_width in points:
        width = char_width * len(text)
        best: tuple[float, int] | None = None
        best_box: _Box = (0, 0, 0, 0)
        for rank, (dx, dy, anchor) in enumerate(_LABEL_SPOTS):
            x, y = cx + dx, cy + dy
            left = x if anchor == "start" else x - width if anchor == "end" else x - width / 2
            box = (left, y - 11, left + width, y + 3)
            area = (box[2] - box[0]) * (box[3] - box[1])
            outside = area - _overlap(box, bounds)
            cut = area - _overlap(box, canvas)  # part of the text the chart would not show
            cost = 1e6 * cut + 6 * outside + sum(w * _overlap(box, o) for o, w in obstacles)
            if best is None or (cost, rank) < best:
                best = (cost, rank)
                best_box = box
        assert best is not None
        dx, dy, anchor = _LABEL_SPOTS[best[1]]
        placed.append((cx + dx, cy + dy, anchor))
        obstacles.append((best_box, 2.0))
    return placed


def _marker(point: _Point, colour: str) -> str:
    """A square for the baseline, a circle otherwise; filled on the Pareto front, hollow off
    it; the recommendation's ring drawn first, so it frames the marker and never covers it."""
    parts = []
    if point.recommended:
        parts.append('<circle class="rec-ring" r="11"/>')
    paint = (
        f'fill="{colour}" stroke="#ffffff" stroke-width="1.5"'
        if point.pareto
        else f'fill="#ffffff" stroke="{colour}" stroke-width="2.4"'
    )
    if point.baseline:
        parts.append(f'<rect class="mark" x="-6" y="-6" width="12" height="12" rx="1.5" {paint}/>')
    else:
        parts.append(f'<circle class="mark" r="6" {paint}/>')
    return "".join(parts)


def _scatter(t: TestAnalysis, colours: dict[str, str], recommended: str | None, index: int) -> str:
    """Accuracy against cost per run (or latency p50 when a cost is unknown), Pareto front."""
    width, height = 480.0, 360.0
    left, right, top, bottom = 54.0, 16.0, 16.0, 48.0
    unpriced = [p.figures.pattern for p in t.patterns if p.figures.cost_per_run is None]
    by_cost = not unpriced

    def x_of(p: PatternAnalysis) -> float | None:
        return p.figures.cost_per_run if by_cost else p.figures.latency_p50

    plotted = [p for p in t.patterns if p.summary.accuracy is not None and x_of(p) is not None]
    missing = [p.figures.pattern for p in t.patterns if p not in plotted]
    points = []
    for p in plotted:
        interval = p.summary.accuracy_interval
        points.append(
            _Point(
                p.figures.pattern,
                x_of(p) or 0.0,
                p.summary.accuracy or 0.0,
                None if interval is None else _clamp(interval.low, 0.0, 1.0),
                None if interval is None else _clamp(interval.high, 0.0, 1.0),
                p.pareto,
                p.figures.pattern == t.baseline,
                p.figures.pattern == recommended,
            )
        )
    if by_cost:
        title = "Accuracy vs cost per run"
        x_title, unit = "cost per run (USD)", "$"
    else:
        title = "Accuracy vs latency p50"
        x_title, unit = "latency p50 (s)", " s"
    subtitle = ""
    if not by_cost:
        subtitle = f"cost n/a for {', '.join(unpriced)}, so latency instead"
    if not points:
        return _figure(title, subtitle, '<p class="muted">Nothing to plot.</p>', "")
    xs = _x_scale([pt.x for pt in points], left, width - right)
    if xs.log:
        x_title += ", log scale"
    lows = [pt.low if pt.low is not None else pt.y for pt in points] + [pt.y for pt in points]
    y_lo = max(0.0, math.floor((min(lows) - 0.04) * 10 + 1e-9) / 10)
    y_step = _nice_step((1.0 - y_lo) / 5)
    y_lo = math.floor(y_lo / y_step + 1e-9) * y_step
    ys = _Scale(y_lo, 1.0, height - bottom, top)

    svg = [
        f'<svg viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-labelledby="scatter-{index}-t scatter-{index}-d">',
        f'<title id="scatter-{index}-t">{_e(title)}: {_e(t.test)}</title>',
        f'<desc id="scatter-{index}-d">Each pattern plotted at its {_e(x_title)} and '
        "accuracy, with the 95% accuracy interval as error bars; filled markers are on the "
        "Pareto front, hollow ones are dominated; the dashed line joins the front's patterns "
        "that trade accuracy against the horizontal axis.</desc>",
    ]
    svg.extend(_axes(xs, ys, unit, x_title, "accuracy (95% CI)", width, height, left, bottom))
    line = _front_line(points, pareto.COST if by_cost else pareto.LATENCY)
    vertices = [(xs(pt.x), ys(pt.y)) for pt in line]
    if line:
        names = " ".join(pt.pattern for pt in line)
        coordinates = " ".join(f"{_f(x)},{_f(y)}" for x, y in vertices)
        svg.append(
            f'<polyline class="pareto-front" data-patterns="{_e(names)}" points="{coordinates}"/>'
        )
    for pt in points:
        if pt.low is None or pt.high is None:
            continue
        cx, y1, y2 = xs(pt.x), ys(pt.low), ys(pt.high)
        colour = colours[pt.pattern]
        svg.append(
            f'<g class="errorbar" stroke="{colour}" stroke-width="1.6" opacity="0.75">'
            f'<line x1="{_f(cx)}" y1="{_f(y1)}" x2="{_f(cx)}" y2="{_f(y2)}"/>'
            f'<line x1="{_f(cx - 4)}" y1="{_f(y1)}" x2="{_f(cx + 4)}" y2="{_f(y1)}"/>'
            f'<line x1="{_f(cx - 4)}" y1="{_f(y2)}" x2="{_f(cx + 4)}" y2="{_f(y2)}"/></g>'
        )
    x_text = _money if by_cost else _seconds
    measure = "cost per run" if by_cost else "latency p50"
    spots = _place_labels(
        [
            (
                pt.pattern,
                xs(pt.x),
                ys(pt.y),
                None if pt.high is None else ys(pt.high),
                None if pt.low is None else ys(pt.low),
                _BOLD_WIDTH if pt.recommended or pt.baseline else _CHAR_WIDTH,
            )
            for pt in points
        ],
        (left, top, width - right, height - bottom),
        (0.0, 0.0, width, height),
        vertices,
    )
    for pt, (x, y, anchor) in zip(points, spots, strict=True):
        weight = ' font-weight="600"' if pt.recommended or pt.baseline else ""
        svg.append(
            f'<text class="label" x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}"{weight} '
            f'aria-hidden="true">{_e(pt.pattern)}</text>'
        )
    # Markers above labels and lines; the baseline and the recommendation above the rest.
    for pt in sorted(points, key=lambda pt: (pt.baseline, pt.recommended)):
        ci = f" [{pt.low:.2f}, {pt.high:.2f}]" if pt.low is not None and pt.high is not None else ""
        marks = "".join(
            (
                ", baseline" if pt.baseline else "",
                ", recommended" if pt.recommended else "",
                ", on the Pareto front" if pt.pareto else ", dominated",
            )
        )
        tip = f"{pt.pattern}: accuracy {pt.y:.3f}{ci}, {measure} {x_text(pt.x)}{marks}"
        svg.append(
            f'<g class="point" data-pattern="{_e(pt.pattern)}" '
            f'transform="translate({_f(xs(pt.x))},{_f(ys(pt.y))})"><title>{_e(tip)}</title>'
            f"{_marker(pt, colours[pt.pattern])}</g>"
        )
    svg.append("</svg>")
    if missing:
        subtitle += ("; " if subtitle else "") + f"not plotted (no data): {', '.join(missing)}"
    axis = "cost per run" if by_cost else "latency p50"
    legend = _legend(
        [
            ('<rect x="1" y="1" width="10" height="10" rx="1.5" fill="#7f8c99"/>', "baseline"),
            (
                '<circle cx="6" cy="6" r="3.5" fill="#7f8c99"/>'
                '<circle cx="6" cy="6" r="5.2" fill="none" stroke="#b7791f" stroke-width="1.6"/>',
                "recommended",
            ),
            ('<circle cx="6" cy="6" r="4.5" fill="#7f8c99"/>', "on the Pareto front"),
            (
                '<circle cx="6" cy="6" r="4" fill="#ffffff" stroke="#7f8c99" stroke-width="2"/>',
                "dominated",
            ),
            (
                '<line x1="0" y1="6" x2="24" y2="6" stroke="#52606d" stroke-width="1.6" '
                'stroke-dasharray="5 3"/>',
                f"front of accuracy and {axis}",
            ),
            (
                '<line x1="6" y1="1" x2="6" y2="11" stroke="#7f8c99" stroke-width="1.6"/>',
                "95% interval",
            ),
        ]
    )
    off_line = sorted(pt.pattern for pt in points if pt.pareto and pt not in line)
    if off_line:
        why = "latency p50" if by_cost else "cost per run (or an unknown cost, not compared)"
        legend += (
            f'<p class="small muted">Also on the front, off the line for what this chart does '
            f"not show ({why}): {_e(', '.join(off_line))}.</p>"
        )
    return _figure(title, subtitle, "".join(svg), legend)


def _front_line(points: Sequence[_Point], x: pareto.Criterion) -> list[_Point]:
    """The points the dashed line joins, in order along the x axis: those on the Pareto front
    that no other point on it beats on the chart's two axes alone (compared as shown).

    Consecutive points then rise in both accuracy and x, and the open box between them holds
    no pattern (one there would beat an end of the segment), so straight segments pass
    through no pattern that is not on the line.
    """
    on_front = {pt.pattern: (pt.y, pt.x) for pt in points if pt.pareto}
    joined = pareto.front(on_front, (pareto.ACCURACY, x))
    return sorted(
        (pt for pt in points if pt.pattern in joined), key=lambda pt: (pt.x, pt.y, pt.pattern)
    )


def _axes(
    xs: _Scale,
    ys: _Scale,
    x_unit: str,
    x_title: str,
    y_title: str,
    width: float,
    height: float,
    left: float,
    bottom: float,
) -> list[str]:
    out = ['<g aria-hidden="true">']
    for v in ys.ticks():
        y = ys(v)
        out.append(
            f'<line class="grid" x1="{_f(xs.a)}" y1="{_f(y)}" x2="{_f(xs.b)}" y2="{_f(y)}"/>'
        )
        out.append(
            f'<text class="tick" x="{_f(left - 8)}" y="{_f(y + 4)}" text-anchor="end">'
            f"{_trim(f'{v:.2f}')}</text>"
        )
    for v in xs.ticks():
        x = xs(v)
        out.append(
            f'<line class="grid" x1="{_f(x)}" y1="{_f(ys.a)}" x2="{_f(x)}" y2="{_f(ys.b)}"/>'
        )
        out.append(_x_tick(x, ys.a + 17, _tick_text(v, x_unit), width))
    out.append(
        f'<line class="axis" x1="{_f(xs.a)}" y1="{_f(ys.a)}" x2="{_f(xs.b)}" y2="{_f(ys.a)}"/>'
    )
    out.append(
        f'<line class="axis" x1="{_f(xs.a)}" y1="{_f(ys.a)}" x2="{_f(xs.a)}" y2="{_f(ys.b)}"/>'
    )
    out.append(
        f'<text class="axis-title" x="{_f((xs.a + xs.b) / 2)}" y="{_f(height - 10)}" '
        f'text-anchor="middle">{_e(x_title)}</text>'
    )
    mid = (ys.a + ys.b) / 2
    out.append(
        f'<text class="axis-title" transform="translate(16,{_f(mid)}) rotate(-90)" '
        f'text-anchor="middle">{_e(y_title)}</text>'
    )
    out.append("</g>")
    return out


def _x_tick(x: float, y: float, text: str, width: float) -> str:
    """An x-axis tick label, centred unless that would run off the chart's edge."""
    half = 3.1 * len(text)
    anchor = "end" if x + half > width - 2 else "start" if x - half < 2 else "middle"
    return f'<text class="tick" x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}">{_e(text)}</text>'


def _legend(entries: Sequence[tuple[str, str]]) -> str:
    """Legend entries: an SVG icon (12px high, as wide as its drawing) and a text each."""
    spans = []
    for icon, text in entries:
        width = 24 if 'x2="24"' in icon else 12
        spans.append(
            f'<span><svg width="{width}" height="12" aria-hidden="true" focusable="false">'
            f"{icon}</svg>{_e(text)}</span>"
        )
    return '<div class="legend">' + "".join(spans) + "</div>"


def _figure(title: str, subtitle: str, svg: str, legend: str) -> str:
    sub = f' <span class="muted">({_e(subtitle)})</span>' if subtitle else ""
    return f"<figure><figcaption>{_e(title)}{sub}</figcaption>{svg}{legend}</figure>"


def _thin(values: Sequence[float], limit: int) -> list[float]:
    ordered = sorted(values)
    if len(ordered) <= limit:
        return ordered
    step = (len(ordered) - 1) / (limit - 1)
    return [ordered[round(i * step)] for i in range(limit)]


def _latency_chart(
    t: TestAnalysis,
    results: Sequence[ItemResult],
    colours: dict[str, str],
    recommended: str | None,
    index: int,
) -> str:
    """Per pattern, a box plot of the repetitions' latencies over a strip of every one."""
    rows: list[tuple[str, list[float]]] = []
    for p in t.patterns:
        values = [
            rep.latency
            for r in results
            if r.test == t.test and r.pattern == p.figures.pattern and r.skipped is None
            for rep in r.repetitions
        ]
        rows.append((p.figures.pattern, values))
    title = "Latency per repetition"
    subtitle = "box: p25 to p75, line: median, whiskers: 1.5 IQR, ◆ p95"
    known = [v for _, values in rows for v in values]
    if not known:
        return _figure(title, "", '<p class="muted">No latencies recorded.</p>', "")
    width, top, bottom, right = 480.0, 8.0, 46.0, 16.0
    row_h = _clamp(240.0 / len(rows), 28.0, 40.0)
    label_w = min(190.0, max(_BOLD_WIDTH * len(name) for name, _ in rows) + 22.0)
    height = top + row_h * len(rows) + bottom
    lo, hi = _linear_domain(0.0, max(known) * 1.04)
    xs = _Scale(lo, hi, label_w, width - right)
    ys = _Scale(0.0, 1.0, top + row_h * len(rows), top)
    svg = [
        f'<svg viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-labelledby="latency-{index}-t latency-{index}-d">',
        f'<title id="latency-{index}-t">{_e(title)}: {_e(t.test)}</title>',
        f'<desc id="latency-{index}-d">For each pattern, a dot per repetition and a box plot '
        "of the latencies in seconds.</desc>",
        '<g aria-hidden="true">',
    ]
    for v in xs.ticks():
        x = xs(v)
        svg.append(f'<line class="grid" x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" y2="{_f(ys.a)}"/>')
        svg.append(_x_tick(x, ys.a + 17, _tick_text(v, " s"), width))
    svg.append(
        f'<line class="axis" x1="{_f(xs.a)}" y1="{_f(ys.a)}" x2="{_f(xs.b)}" y2="{_f(ys.a)}"/>'
    )
    svg.append(
        f'<text class="axis-title" x="{_f((xs.a + xs.b) / 2)}" y="{_f(height - 8)}" '
        'text-anchor="middle">latency (s)</text></g>'
    )
    for i, (name, values) in enumerate(rows):
        mid = top + row_h * (i + 0.5)
        colour = colours[name]
        svg.append(f'<g class="latency-row" data-pattern="{_e(name)}">')
        if i % 2 == 0:
            svg.append(
                f'<rect x="0" y="{_f(mid - row_h / 2)}" width="{width:.0f}" '
                f'height="{_f(row_h)}" fill="#f7f8fa"/>'
            )
        weight = ' font-weight="600"' if name in (t.baseline, recommended) else ""
        label = name if len(name) * _BOLD_WIDTH <= label_w - 14 else _shorten(name, label_w)
        svg.append(
            f'<text class="row-label" x="{_f(label_w - 12)}" y="{_f(mid + 4)}" '
            f'text-anchor="end"{weight}>{_e(label)}</text>'
        )
        if not values:
            svg.append(f"<title>{_e(name)}: no latencies</title></g>")
            continue
        q1, med, q3 = (percentile(values, q) for q in (25, 50, 75))
        p95 = percentile(values, 95)
        iqr = q3 - q1
        low_w = min(v for v in values if v >= q1 - 1.5 * iqr)
        high_w = max(v for v in values if v <= q3 + 1.5 * iqr)
        svg.append(
            f"<title>{_e(name)}: {len(values)} repetitions; min {_seconds(min(values))}, "
            f"p25 {_seconds(q1)}, median {_seconds(med)}, p75 {_seconds(q3)}, "
            f"p95 {_seconds(p95)}, max {_seconds(max(values))}</title>"
        )
        for j, v in enumerate(_thin(values, MAX_DOTS)):
            jitter = ((j * 0.6180339887) % 1.0 - 0.5) * row_h * 0.55
            svg.append(
                f'<circle cx="{_f(xs(v))}" cy="{_f(mid + jitter)}" r="2.1" '
                f'fill="{colour}" opacity="0.35"/>'
            )
        box_h = _clamp(row_h * 0.4, 12.0, 16.0)
        svg.append(
            f'<line x1="{_f(xs(low_w))}" y1="{_f(mid)}" x2="{_f(xs(high_w))}" y2="{_f(mid)}" '
            f'stroke="{colour}" stroke-width="1.4"/>'
            f'<line x1="{_f(xs(low_w))}" y1="{_f(mid - 5)}" x2="{_f(xs(low_w))}" '
            f'y2="{_f(mid + 5)}" stroke="{colour}" stroke-width="1.4"/>'
            f'<line x1="{_f(xs(high_w))}" y1="{_f(mid - 5)}" x2="{_f(xs(high_w))}" '
            f'y2="{_f(mid + 5)}" stroke="{colour}" stroke-width="1.4"/>'
            f'<rect x="{_f(xs(q1))}" y="{_f(mid - box_h / 2)}" '
            f'width="{_f(max(1.0, xs(q3) - xs(q1)))}" height="{_f(box_h)}" rx="2" '
            f'fill="{colour}" fill-opacity="0.22" stroke="{colour}" stroke-width="1.4"/>'
            f'<line x1="{_f(xs(med))}" y1="{_f(mid - box_h / 2)}" x2="{_f(xs(med))}" '
            f'y2="{_f(mid + box_h / 2)}" stroke="{colour}" stroke-width="2.6"/>'
            f'<path d="M{_f(xs(p95))},{_f(mid - 4.5)} l4.5,4.5 l-4.5,4.5 l-4.5,-4.5 z" '
            'fill="#323f4b"/></g>'
        )
    svg.append("</svg>")
    return _figure(title, subtitle, "".join(svg), "")


def _shorten(name: str, label_w: float) -> str:
    keep = max(4, int((label_w - 14) / _BOLD_WIDTH) - 1)
    return name[:keep] + "…"


# --- pattern diagnostics ---------------------------------------------------------------------


def _diagnostics_section(t: TestAnalysis, colours: dict[str, str], index: int) -> list[str]:
    """The diagnostics' charts and figures (:mod:`.diagnostics`)."""
    from .diagnostics import Point

    out: list[str] = []
    d = t.diagnostics
    if not d:
        return out
    figures = []
    for n, e in enumerate(d.ensembles):
        subtitle = f"{e.repetitions} repetitions sub-sampled; best k = {e.best}"
        if e.vote_only:
            subtitle += "; the vote before escalating"
        figures.append(
            _curve_chart(
                f"{e.pattern}: accuracy vs ensemble size",
                subtitle,
                [(e.pattern, colours.get(e.pattern, PALETTE[0]), e.points, False)],
                "ensemble size k",
                f"ensemble-{index}-{n}",
                mark=e.best,
            )
        )
    for n, loop in enumerate(d.loops):
        passed = tuple(Point(i + 1, v) for i, v in enumerate(loop.passed))
        figures.append(
            _curve_chart(
                f"{loop.pattern}: after each iteration",
                f"{loop.repetitions} repetitions; solid: accuracy, dashed: verifier passed",
                [
                    ("accuracy", colours.get(loop.pattern, PALETTE[0]), loop.points, False),
                    ("verifier passed", "#616e7c", passed, True),
                ],
                "iteration",
                f"loop-{index}-{n}",
            )
        )
    if figures:
        out.append('<div class="charts diagnostics">' + "".join(figures) + "</div>")
    for e in d.escalations:
        saved = e.saved
        what = "dollars" if e.cost is not None and e.cost_always else "calls"
        tail = (
            f"{saved:.0%} of the {what} of always running the chain saved"
            if saved is not None
            else "no repetition escalated, so the chain's cost is unknown"
        )
        text = (
            f"{e.pattern}: escalated on {e.escalated} of {e.repetitions} repetitions "
            f"({e.rate:.0%}); {tail}"
        )
        out.append(f'<p class="small escalation">{_e(text)}</p>')
    out.extend(f'<p class="small muted">{_e(note)}</p>' for note in d.notes)
    return out


def _curve_chart(
    title: str,
    subtitle: str,
    series: Sequence[tuple[str, str, Sequence[Any], bool]],
    x_title: str,
    key: str,
    mark: int | None = None,
) -> str:
    """A small line chart of a rate (0 to 1) against a count, intervals as whiskers."""
    width, height = 480.0, 230.0
    left, right, top, bottom = 54.0, 16.0, 12.0, 46.0
    counts = [p.x for _, _, points, _ in series for p in points]
    if not counts:
        return _figure(title, subtitle, '<p class="muted">Nothing to plot.</p>', "")
    low, high = min(counts), max(counts)
    xs = _Scale(low - 0.5, high + 0.5, left, width - right)
    ys = _Scale(0.0, 1.0, height - bottom, top)
    step = max(1, math.ceil((high - low + 1) / 12))
    svg = [
        f'<svg viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-labelledby="{key}-t {key}-d">',
        f'<title id="{key}-t">{_e(title)}</title>',
        f'<desc id="{key}-d">{_e(subtitle)}; error bars are 95% intervals.</desc>',
        '<g aria-hidden="true">',
    ]
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = ys(v)
        svg.append(
            f'<line class="grid" x1="{_f(xs.a)}" y1="{_f(y)}" x2="{_f(xs.b)}" y2="{_f(y)}"/>'
        )
        svg.append(
            f'<text class="tick" x="{_f(left - 8)}" y="{_f(y + 4)}" text-anchor="end">'
            f"{_trim(f'{v:.2f}')}</text>"
        )
    for k in range(low, high + 1, step):
        svg.append(_x_tick(xs(k), ys.a + 17, str(k), width))
    svg.append(
        f'<line class="axis" x1="{_f(xs.a)}" y1="{_f(ys.a)}" x2="{_f(xs.b)}" y2="{_f(ys.a)}"/>'
        f'<text class="axis-title" x="{_f((xs.a + xs.b) / 2)}" y="{_f(height - 8)}" '
        f'text-anchor="middle">{_e(x_title)}</text></g>'
    )
    for name, colour, points, dashed in series:
        known = [p for p in points if p.accuracy is not None]
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        coordinates = " ".join(f"{_f(xs(p.x))},{_f(ys(p.accuracy))}" for p in known)
        svg.append(
            f'<g class="curve" data-series="{_e(name)}"><polyline points="{coordinates}" '
            f'fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
        )
        for p in known:
            cx, cy = xs(p.x), ys(p.accuracy)
            if p.interval is not None:
                y1, y2 = ys(_clamp(p.interval.low, 0, 1)), ys(_clamp(p.interval.high, 0, 1))
                svg.append(
                    f'<line x1="{_f(cx)}" y1="{_f(y1)}" x2="{_f(cx)}" y2="{_f(y2)}" '
                    f'stroke="{colour}" stroke-width="1.3" opacity="0.6"/>'
                )
            radius = "5" if mark is not None and p.x == mark else "3.2"
            label = f"{name} at {p.x}: {p.accuracy:.3f}"
            if p.interval is not None:
                label += f" [{p.interval.low:.2f}, {p.interval.high:.2f}]"
            svg.append(
                f'<circle cx="{_f(cx)}" cy="{_f(cy)}" r="{radius}" fill="{colour}">'
                f"<title>{_e(label)}</title></circle>"
            )
        svg.append("</g>")
    svg.append("</svg>")
    return _figure(title, subtitle, "".join(svg), "")
