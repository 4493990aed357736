"""The HTML report: one self-contained, escaped, deterministic page with its charts."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

import pytest

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
    analyses = analysis.analyse(results, n_resamples=200)
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
    return re.findall(r'<svg viewBox="0 0 600 400" role="img".*?</svg>', html, flags=re.S)


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
    assert "Recommended: <b>" in html


def test_latency_strip_has_a_dot_per_repetition() -> None:
    html = _render(_suite())
    row = re.search(r'<g class="latency-row" data-pattern="single">.*?</g>', html, flags=re.S)
    assert row is not None
    assert row[0].count("<circle") == 4 * 6
    assert "24 repetitions" in row[0]


def test_pareto_front_is_a_step_line_through_exactly_the_front() -> None:
    results = _suite()
    analyses = analysis.analyse(results, n_resamples=200)
    front = {p.figures.pattern for p in analyses[0].patterns if p.pareto}
    assert front == FRONT  # the data are built so; sequential is dominated
    (scatter,) = _scatters(render_html(analyses, results))
    polylines = re.findall(
        r'<polyline class="pareto-front" data-patterns="([^"]*)" points="([^"]*)"/>', scatter
    )
    assert len(polylines) == 1
    names, text = polylines[0]
    vertices = [tuple(v.split(",")) for v in text.split()]
    points = _points(scatter)
    on_line = {name for name, xy in points.items() if xy in vertices}
    assert on_line == front
    assert set(names.split()) == front
    # Ends at front points; every segment is horizontal or vertical (a staircase).
    assert vertices[0] in {points[n] for n in front}
    assert vertices[-1] in {points[n] for n in front}
    for (x1, y1), (x2, y2) in itertools.pairwise(vertices):
        assert x1 == x2 or y1 == y2
    # In cost order: cheapest front point first.
    assert vertices[0] == points["single"] and vertices[-1] == points["parallel(n=5)"]


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
    assert (
        first.encode()
        == render_html(analysis.analyse(_suite(), n_resamples=200), _suite()).encode()
    )


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
    results = _suite()
    analyses = analysis.analyse(results, n_resamples=200)
    recommended = analyses[0].recommendation
    assert recommended is not None
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
    gates = analysis.evaluate_gates(
        parse_rules("accuracy:-0.05,latency_p95:+20%"), current, baseline
    )
    assert any(g.failed for g in gates)
    html = _render(current, gate_results=gates)
    failed = sum(g.failed for g in gates)
    assert f"{failed} of {len(gates)} gates failed" in html
    assert html.count('<tr class="gate-fail">') == failed
    assert 'id="gates"' in html


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


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="needs a chromium executable on PATH to render the page (apt-get install chromium)",
)
def test_renders_in_headless_chromium(tmp_path: Path) -> None:
    results = _suite() + _suite(test="tests/test_math.py::test_sum", unpriced=["sequential"])
    page = tmp_path / "report.html"
    page.write_text(_render(results), encoding="utf-8")
    png = tmp_path / "report.png"
    chromium = shutil.which("chromium")
    assert chromium is not None
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={png}",
            "--window-size=1280,2000",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 50_000
