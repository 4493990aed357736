"""The HTML report's case-by-pattern grid, with the evidence behind each cell.

Per test function: one row per case, one column per pattern, each cell the case's accuracy
under that pattern (coloured from red at 0 to green at 1). Below it, one ``<details>`` per case
opens to its repetitions under each pattern: outcome, output, message, verify verdicts, and the
calls (address, branch, role, model, tokens, cost, duration, and prompt and response excerpts),
all as the JSON report keeps them: scrubbed, and cut to ``--patterns-evidence-chars``.

Inline HTML and CSS only, no script; rendered by :mod:`.html` into its page.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .records import CallRecord, ItemResult, Repetition

MAX_REPETITIONS = 20
"""Repetitions shown per case and pattern; the JSON report keeps them all."""

CSS = """
table.cases td.cell, table.cases thead th.num { text-align: center; }
table.cases td.cell { font-weight: 600; }
table.cases td.cell .sub { font-weight: 400; }
@media (max-width: 960px) {
  table.stack.cases td.cell { text-align: right; }
  table.cases td.cell .sub { display: inline; margin-left: 8px; }
}
.evidence > details { margin: 4px 0; }
.evidence summary b { color: var(--fg); }
.evidence ol, .evidence ul { margin: 4px 0; padding-left: 20px; }
.evidence li { margin: 4px 0; }
.evidence .ev { margin: 2px 0; color: var(--fg); overflow-wrap: anywhere; }
.evidence .ev > span { color: var(--muted); margin-right: 4px; }
.evidence pre { margin: 2px 0; padding: 4px 6px; background: var(--bg); border-radius: 4px;
  white-space: pre-wrap; overflow-wrap: anywhere; font-size: 12px; color: var(--fg); }
.evidence .outcome-correct { color: var(--good); font-weight: 600; }
.evidence .outcome-incorrect, .evidence .outcome-error { color: var(--bad); font-weight: 600; }
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _breakable(text: str) -> str:
    return _e(text).replace(",", ",<wbr>").replace("/", "/<wbr>")


def _accuracy(item: ItemResult) -> tuple[float | None, int]:
    answered = [r.accuracy for r in item.repetitions if r.accuracy is not None]
    return (sum(answered) / len(answered) if answered else None), len(answered)


def _colour(accuracy: float | None) -> str:
    """Red at 0, amber at 0.5, green at 1; grey when nothing was answered."""
    if accuracy is None:
        return "background:#eef0f3"
    return f"background:hsl({round(120 * accuracy)}, 62%, 86%)"


def case_grid(test: str, patterns: Sequence[str], items: Sequence[ItemResult], anchor: str) -> str:
    """The grid and the evidence for one test function; empty when it has no items.

    ``patterns`` gives the columns' order; ``anchor`` prefixes element ids so that several
    tests on one page never share one.
    """
    mine = [i for i in items if i.test == test and i.skipped is None and i.pattern in patterns]
    if not mine:
        return ""
    cases = sorted({i.case for i in mine})
    cell = {(i.case, i.pattern): i for i in mine}
    rows = []
    for n, case in enumerate(cases):
        cells = []
        for pattern in patterns:
            item = cell.get((case, pattern))
            cells.append(_cell(item, pattern, f"{anchor}-c{n}"))
        rows.append(
            f'<tr><th scope="row"><a href="#{anchor}-c{n}">{_breakable(case or "(no case)")}</a>'
            "</th>" + "".join(cells) + "</tr>"
        )
    head = '<th scope="col">case</th>' + "".join(
        f'<th scope="col" class="num">{_breakable(p)}</th>' for p in patterns
    )
    grid = (
        '<div class="table-wrap"><table class="cases stack">'
        "<caption>Accuracy per case and pattern (mean over its answered repetitions; "
        "red 0, green 1). Each case opens below to its repetitions and calls.</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
    )
    details = "".join(
        _case_details(
            case, [cell[case, p] for p in patterns if (case, p) in cell], f"{anchor}-c{n}"
        )
        for n, case in enumerate(cases)
    )
    return f'<h3>Cases</h3>{grid}<div class="evidence">{details}</div>'


def _cell(item: ItemResult | None, pattern: str, target: str) -> str:
    label = _e(pattern)
    if item is None:
        return f'<td class="cell na" data-label="{label}">—</td>'
    accuracy, answered = _accuracy(item)
    errors = item.errors
    shown = "n/a" if accuracy is None else f"{accuracy:.2f}"
    sub = f"{answered} answered" + (
        f", {errors} error{'s' if errors != 1 else ''}" if errors else ""
    )
    title = f"{item.case} under {pattern}: {shown} over {answered} answered of {item.n}"
    return (
        f'<td class="cell" data-label="{label}" style="{_colour(accuracy)}" title="{_e(title)}">'
        f'<a href="#{target}">{shown}</a><span class="sub">{_e(sub)}</span></td>'
    )


def _case_details(case: str, items: Sequence[ItemResult], anchor: str) -> str:
    parts = []
    for item in items:
        accuracy, _ = _accuracy(item)
        shown = "n/a" if accuracy is None else f"{accuracy:.2f}"
        reps = item.repetitions[:MAX_REPETITIONS]
        more = len(item.repetitions) - len(reps)
        body = "".join(_repetition(r) for r in reps)
        if more > 0:
            body += f'<li class="muted">{more} more in the JSON report</li>'
        parts.append(
            f"<details><summary><b>{_breakable(item.pattern)}</b> {shown} "
            f'<span class="muted">({item.n} repetitions)</span></summary><ol>{body}</ol></details>'
        )
    summary = " · ".join(
        f"{_e(i.pattern)} {_accuracy(i)[0]:.2f}"
        if _accuracy(i)[0] is not None
        else f"{_e(i.pattern)} n/a"
        for i in items
    )
    return (
        f'<details id="{anchor}"><summary><b>{_breakable(case or "(no case)")}</b> '
        f'<span class="muted">{summary}</span></summary>{"".join(parts)}</details>'
    )


def _money(value: float | None) -> str:
    return "cost n/a" if value is None else f"${value:.6g}"


def _repetition(rep: Repetition) -> str:
    head = (
        f'<b>r{rep.index}</b> <span class="outcome-{_e(rep.outcome)}">{_e(rep.outcome)}</span>'
        + (f" {rep.score:g}" if rep.score is not None else "")
        + f" · {rep.latency:.3g} s · {_money(rep.cost)} · {_plural(len(rep.task_calls), 'call')}"
        + (f" · judge {_money(rep.judge_cost)}" if rep.judge_calls else "")
        + ("" if rep.verified is None else f" · {'verified' if rep.verified else 'unverified'}")
    )
    lines = [head]
    if rep.output is not None:
        lines.append(_ev("output", f"<pre>{_e(rep.output)}</pre>"))
    if rep.message is not None:
        lines.append(_ev("message", f"<pre>{_e(rep.message)}</pre>"))
    if rep.verdicts:
        said = "; ".join(
            f"{_e(v.branch)} {'pass' if v.ok else 'FAIL'}"
            + ("" if v.score is None else f" {v.score:g}")
            + ("" if not v.feedback else f" “{_e(v.feedback)}”")
            for v in rep.verdicts
        )
        lines.append(_ev("verify", said))
    if rep.calls:
        calls = "".join(_call(c) for c in rep.calls)
        count = _plural(len(rep.calls), "call")
        lines.append(f"<details><summary>{count}</summary><ol>{calls}</ol></details>")
    return "<li>" + "".join(lines) + "</li>"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _ev(label: str, content: str) -> str:
    return f'<div class="ev"><span>{label}</span>{content}</div>'


def _call(call: CallRecord) -> str:
    a = call.address
    tokens = "tokens n/a" if call.tokens is None else f"{call.tokens} tokens"
    if call.input_tokens is not None and call.output_tokens is not None:
        tokens += f" ({call.input_tokens} in, {call.output_tokens} out)"
    facts = [
        f"<code>{_breakable(str(a))}</code>",
        f"role {_e(a.role)}",
        f"branch {_e(a.branch_text)}",
        _e(call.model or "model n/a"),
        tokens,
        _money(call.cost),
        f"{call.duration:.3g} s" + (" (recorded)" if call.replayed else ""),
    ]
    if call.status is not None and call.status >= 400:
        facts.append(f"status {call.status}")
    if call.error:
        facts.append(_e(call.error))
    out = [" · ".join(facts)]
    if call.prompt is not None:
        out.append(_ev("prompt", f"<pre>{_e(call.prompt)}</pre>"))
    if call.response is not None:
        out.append(_ev("response", f"<pre>{_e(call.response)}</pre>"))
    return "<li>" + "".join(out) + "</li>"
