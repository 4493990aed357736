"""The HTML report: one self-contained, escaped, deterministic page with its charts."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Sequence
from html.parser import HTMLParser

from pytest_agentpatterns import analysis
from pytest_agentpatterns.gates import parse_rules
from pytest_agentpatterns.html import render_html
from pytest_agentpatterns.records import Address, CallRecord, ItemResult, Outcome, Repetition

TEST = "tests/test_triage.py::test_triage"

# pattern -> (accuracy, cost per run, latency, calls): parallel dominates sequential
# (more accurate, cheaper, faster); single, hybrid and parallel trade accuracy for cost.
PROFILES: dict[str, tuple[float, float, float, int]] = {
    "single": (0.5, 1e-5, 0.30, 1),
    "sequential": (0.5, 6e-5, 0.90, 2),
    "parallel(n=5)": (1.0, 5e-5, 0.45, 5),
    "hybrid(n=3)": (0.8, 3e-5, 0.60, 4),
}
FRONT = {"single", "parallel(n=5)", "hybrid(n=3)"}


def _item(
    test: str,
    case: int,
    pattern: str,
    accuracy: float,
    cost: float | None,
    latency: float,
    calls: int,
    *,
    repeat: int = 6,
    error: bool = False,
) -> ItemResult:
    """An item whose repetitions are right in ``accuracy`` of cases, with spread latencies."""
    reps = []
    for i in range(repeat):
        records = tuple(
            CallRecord(
                Address(i, (f"branch[{k}]",) if calls > 1 else (), "propose", 0),
                "POST",
                "http://127.0.0.1:8000/v1/messages",
                200,
                latency / calls,
                "sim-small",
                120,
                30,
                cost=None if cost is None else cost / calls,
                replayed=True,
            )
            for k in range(calls)
        )
        correct = ((i * 7 + case * 3) % 10) < accuracy * 10
        outcome: Outcome = "error" if error else "correct" if correct else "incorrect"
        reps.append(
            Repetition(
                i,
                outcome,
                latency * (1 + 0.15 * ((i + case) % 4)),
                calls=records,
                error="boom" if error else None,
            )
        )
    return ItemResult(f"{test}[case-{case}-{pattern}]", test, f"case-{case}", pattern, tuple(reps))


def _suite(
    test: str = TEST,
    profiles: dict[str, tuple[float, float, float, int]] = PROFILES,
    unpriced: Sequence[str] = (),
    cases: int = 4,
) -> list[ItemResult]:
    return [
        _item(test, c, p, acc, None if p in unpriced else cost, lat, calls)
        for p, (acc, cost, lat, calls) in profiles.items()
        for c in range(cases)
    ]


def _render(results: list[ItemResult], **kwargs: object) -> str:
    analyses = analysis.analyse(results)
    return render_html(analyses, results, **kwargs)  # type: ignore[arg-type]


class _Balance(HTMLParser):
    """Checks that every non-void element is closed, in order."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "col", "wbr", "source"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.titles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def _points(svg: str) -> dict[str, tuple[str, str]]:
    pattern = re.compile(
        r'<g class="point" data-pattern="([^"]*)" transform="translate\(([^,]+),([^)]+)\)">'
    )
    return {m[1]: (m[2], m[3]) for m in pattern.finditer(svg)}


def _scatters(html: str) -> list[str]:
    return re.findall(r'<svg viewBox="0 0 480 360" role="img".*?</svg>', html, flags=re.S)


def test_one_self_contained_document() -> None:
    html = _render(_suite())
    assert html.startswith("<!DOCTYPE html>\n<html")
    assert html.endswith("</html>\n")
    assert html.count("<html") == 1 and html.count("<body") == 1
    lowered = html.lower()
    for external in ("http://", "https://", "src=", "<script", "<link", "@import", "url("):
        assert external not in lowered, external
    parser = _Balance()
    parser.feed(html)
    parser.close()
    assert parser.problems == []
    assert parser.stack == []


def test_accessible_title_headers_and_point_titles() -> None:
    html = _render(_suite())
    assert "<title>agentpatterns report</title>" in html
    assert '<th scope="col">pattern</th>' in html
    assert '<th scope="row">' in html
    for svg in _scatters(html):
        assert 'role="img"' in svg
        assert len(re.findall(r'<g class="point"[^>]*><title>[^<]+</title>', svg)) == len(PROFILES)


def test_every_pattern_appears_in_tables_and_charts() -> None:
    html = _render(_suite())
    (scatter,) = _scatters(html)
    assert set(_points(scatter)) == set(PROFILES)
    rows = re.findall(r'<g class="latency-row" data-pattern="([^"]*)">', html)
    assert rows == ["single", "hybrid(n=3)", "parallel(n=5)", "sequential"]
    for pattern in PROFILES:
        assert f"</span>{pattern}" in html  # the summary row's name, after its swatch
    assert "Against the baseline pattern" in html
    assert "No recommendation yet — not enough evidence" in html  # four cases cannot decide


def test_latency_strip_has_a_dot_per_repetition() -> None:
    html = _render(_suite())
    row = re.search(r'<g class="latency-row" data-pattern="single">.*?</g>', html, flags=re.S)
    assert row is not None
    assert row[0].count("<circle") == 4 * 6
    assert "24 repetitions" in row[0]


def _polyline(scatter: str) -> tuple[list[str], list[tuple[float, float]]]:
    polylines = re.findall(
        r'<polyline class="pareto-front" data-patterns="([^"]*)" points="([^"]*)"/>', scatter
    )
    assert len(polylines) == 1
    names, text = polylines[0]
    vertices = [(float(x), float(y)) for x, y in (v.split(",") for v in text.split())]
    return names.split(), vertices


def _distance(p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    """Distance from point p to segment ab, in pixels."""
    (px, py), (ax, ay), (bx, by) = p, a, b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy or 1.0)))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def test_pareto_line_joins_exactly_the_front_in_cost_order() -> None:
    results = _suite()
    analyses = analysis.analyse(results)
    front = {p.figures.pattern for p in analyses[0].patterns if p.pareto}
    assert front == FRONT  # the data are built so; sequential is dominated
    (scatter,) = _scatters(render_html(analyses, results))
    names, vertices = _polyline(scatter)
    points = {n: (float(x), float(y)) for n, (x, y) in _points(scatter).items()}
    assert names == ["single", "hybrid(n=3)", "parallel(n=5)"]  # cheapest first
    assert vertices == [points[n] for n in names]
    # Filled on the front, hollow (white) when dominated.
    assert re.search(
        r'data-pattern="sequential"[^>]*>.*?<circle class="mark" r="6" fill="#ffffff"', scatter
    )
    assert re.search(
        r'data-pattern="hybrid\(n=3\)"[^>]*>.*?<circle class="mark" r="6" fill="#[0-9a-f]{6}" stroke="#ffffff"',
        scatter,
    )


def test_pareto_line_passes_through_no_pattern_off_the_front() -> None:
    """Accuracy ties are common: a dominated pattern as accurate as single and a little
    dearer sat on the old staircase; a faster, dearer, less accurate one on its drop."""
    profiles = {
        **PROFILES,
        "sequential": (0.5, 2e-5, 0.90, 2),  # as accurate as single, dearer, slower: dominated
        "loop(max_iters=3)": (0.5, 4e-5, 0.20, 2),  # fastest: on the front, below the line
        "escalate": (0.8, 4.5e-5, 0.70, 3),  # as accurate as hybrid, dearer, slower: dominated
    }
    results = _suite(profiles=profiles)
    analyses = analysis.analyse(results)
    front = {p.figures.pattern for p in analyses[0].patterns if p.pareto}
    assert front == {"single", "hybrid(n=3)", "parallel(n=5)", "loop(max_iters=3)"}
    html = render_html(analyses, results)
    (scatter,) = _scatters(html)
    names, vertices = _polyline(scatter)
    assert names == ["single", "hybrid(n=3)", "parallel(n=5)"]
    points = {n: (float(x), float(y)) for n, (x, y) in _points(scatter).items()}
    for name in points.keys() - set(names):
        gap = min(_distance(points[name], a, b) for a, b in itertools.pairwise(vertices))
        assert gap > 8, (name, gap)  # clear of the marker (radius 6) and its outline
    assert (
        "Also on the front, off the line for what this chart does not show (latency p50): loop(max_iters=3)."
        in html
    )


def test_user_text_is_escaped() -> None:
    evil = "tests/x.py::test_<script>alert(1)</script>"
    results = _suite(
        test=evil, profiles={"single": PROFILES["single"], "sequential": PROFILES["sequential"]}
    )
    html = _render(results, notes=['note: <script>alert("n")</script> & <img src=x>'])
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "note: &lt;script&gt;alert(&quot;n&quot;)&lt;/script&gt; &amp; &lt;img src=x&gt;" in html


def test_output_is_deterministic() -> None:
    first = _render(_suite())
    second = _render(_suite())
    assert first == second
    assert first.encode() == render_html(analysis.analyse(_suite()), _suite()).encode()


def test_output_does_not_depend_on_result_order() -> None:
    """xdist workers report in any order: the page must not change."""
    results = _suite(unpriced=["sequential"])
    results.append(
        ItemResult(
            f"{TEST}[case-0-loop(max_iters=3)]",
            TEST,
            "case-0",
            "loop(max_iters=3)",
            (),
            skipped="b",
        )
    )
    results.insert(
        0, ItemResult(f"{TEST}[case-0-escalate]", TEST, "case-0", "escalate", (), skipped="a")
    )
    assert _render(results) == _render(results[::-1])


def test_unknown_costs_fall_back_to_latency() -> None:
    html = _render(_suite(unpriced=["hybrid(n=3)"]))
    (scatter,) = _scatters(html)
    assert "Accuracy vs latency p50" in html
    assert "Accuracy vs cost per run" not in html
    assert "cost n/a for hybrid(n=3)" in html
    assert "latency p50 (s)" in scatter
    assert set(_points(scatter)) == set(PROFILES)


def test_costs_known_plot_against_cost() -> None:
    html = _render(_suite())
    assert "Accuracy vs cost per run" in html
    assert "cost per run (USD" in html


def test_baseline_and_recommendation_are_marked() -> None:
    results = _suite(cases=12)  # enough cases for the data to decide
    analyses = analysis.analyse(results)
    recommended = analyses[0].recommendation
    assert recommended is not None and recommended.decided
    html = render_html(analyses, results)
    assert '<span class="badge baseline">baseline</span>' in html
    assert '<span class="badge recommended">recommended</span>' in html
    assert f"Recommended: <b>{recommended.pattern}</b>" in html
    (scatter,) = _scatters(html)
    ring = re.search(
        r'data-pattern="([^"]*)"[^>]*><title>[^<]*</title><circle class="rec-ring"', scatter
    )
    assert ring is not None and ring[1] == recommended.pattern
    assert re.search(
        r'data-pattern="single"[^>]*><title>[^<]*</title>(<circle class="rec-ring" r="11"/>)?<rect',
        scatter,
    )


def test_gates_are_listed_and_failures_highlighted() -> None:
    baseline = _suite(cases=12)
    worse = {**PROFILES, "parallel(n=5)": (0.5, 5e-5, 0.9, 5)}
    current = _suite(profiles=worse, cases=12)
    run = analysis.evaluate_gates(parse_rules("accuracy:-0.05,latency_p95:+20%"), current, baseline)
    gates = run.results
    assert any(g.failed for g in gates)
    html = _render(current, gate_run=run)
    failed = sum(g.failed for g in gates)
    assert f"{failed} of {len(gates)} gates failed" in html
    assert html.count('<tr class="gate-fail">') == failed
    assert 'id="gates"' in html
    assert f"each is tested at {run.level:.2g}" in html


def test_unplottable_pattern_and_skips_are_reported() -> None:
    results = _suite(
        profiles={"single": PROFILES["single"], "parallel(n=5)": PROFILES["parallel(n=5)"]}
    )
    results += [
        _item(TEST, c, "loop(max_iters=3)", 1.0, 1e-5, 0.5, 1, error=True) for c in range(4)
    ]
    results.append(
        ItemResult(
            f"{TEST}[case-0-hybrid(n=3)]",
            TEST,
            "case-0",
            "hybrid(n=3)",
            (),
            skipped="pattern hybrid(n=3) needs role verify",
        )
    )
    html = _render(results)
    assert "not plotted (no data): loop(max_iters=3)" in html
    assert "Not run: <b>hybrid(n=3)</b> (pattern hybrid(n=3) needs role verify)" in html
    assert '<span class="bad-count">24</span>' in html


def test_no_results_is_still_a_page() -> None:
    html = render_html([], [])
    assert "No pattern results." in html
    assert html.endswith("</html>\n")


def test_baseline_that_is_also_recommended_is_drawn_on_top() -> None:
    """Equal accuracy everywhere: single, the baseline, is the cheapest and recommended. Its
    square is drawn after every other marker, inside its ring, so nothing covers it."""
    same = {p: (0.8, cost, lat, calls) for p, (_, cost, lat, calls) in PROFILES.items()}
    results = _suite(profiles=same)
    analyses = analysis.analyse(results)
    assert analyses[0].recommendation is not None
    assert analyses[0].recommendation.pattern == analyses[0].baseline == "single"
    (scatter,) = _scatters(render_html(analyses, results))
    groups = re.findall(r'<g class="point" data-pattern="([^"]*)"[^>]*>(.*?)</g>', scatter)
    assert [name for name, _ in groups][-1] == "single"
    body = dict(groups)["single"]
    assert body.index('<circle class="rec-ring"') < body.index('<rect class="mark"')
    # Labels lie under the markers.
    assert scatter.rindex('<text class="label"') < scatter.index('<g class="point"')


def test_a_measure_that_could_not_be_compared_is_a_question_mark() -> None:
    html = _render(_suite(unpriced=["hybrid(n=3)"]))
    cell = re.search(
        r'<td class="num" data-label="Pareto"><span class="pareto-unknown" title="([^"]*)">\?</span>',
        html,
    )
    assert cell is not None
    assert cell[1] == "not dominated, but not compared on cost per run (unknown)"
    assert html.count('class="pareto-unknown"') == 1
    assert (
        "compared as shown (accuracy to 3 decimals, cost and latency to 3 significant digits)"
        in html
    )


def _cells(table: str, tag: str) -> list[str]:
    return re.findall(rf"<{tag}\b[^>]*>(.*?)</{tag}>", table, flags=re.S)


def _text(cell: str) -> str:
    return re.sub(r"<[^>]+>", "", cell).replace("&amp;", "&").strip()


def test_every_cell_is_labelled_by_its_column_for_narrow_screens() -> None:
    """Below 960 px the tables stack, one block per row, each value beside its data-label:
    every label must name the column the value is in."""
    baseline = _suite(cases=6)
    current = _suite(profiles={**PROFILES, "parallel(n=5)": (0.5, 5e-5, 0.9, 5)}, cases=6)
    gates = analysis.evaluate_gates(parse_rules("accuracy:-0.05,cost:+10%"), current, baseline)
    html = _render(current + _suite(test="tests/test_b.py::test_b"), gate_run=gates)
    tables = re.findall(r'<table class="(\w+) stack">(.*?)</table>', html, flags=re.S)
    assert {kind for kind, _ in tables} == {"overview", "summary", "comparisons", "gates", "cases"}
    for kind, table in tables:
        head = re.search(r"<thead><tr>(.*?)</tr></thead>", table, flags=re.S)
        assert head is not None
        columns = [re.sub(r"\s+", " ", _text(c)) for c in _cells(head[1], "th")]
        for row in re.findall(r"<tbody>(.*?)</tbody>", table, flags=re.S)[0].split("</tr>")[:-1]:
            labels = re.findall(r'<td[^>]*data-label="([^"]*)"', row)
            assert row.count("<td") == len(labels), kind
            assert labels == columns[1:], kind


def test_a_gate_verdict_is_shown_as_it_is_named() -> None:
    """A verdict the page has no special style for (a later "inconclusive") still reads as
    itself, never as another verdict."""
    baseline = _suite(cases=6)
    (gate, *_) = analysis.evaluate_gates(parse_rules("accuracy:-0.05"), baseline, baseline).results
    unusual = dataclasses.replace(gate, verdict="inconclusive", message="x " * 200)  # type: ignore[arg-type]
    html = _render(baseline, gate_results=[unusual])
    assert '<span class="badge skip">inconclusive</span>' in html
    assert "not evaluated</span>" not in html
