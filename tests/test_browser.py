"""The HTML report in a real browser: the example suite's page in headless Chromium.

At 400, 1280 and 1920 px wide, nothing overflows its card (tables, charts, chart text), the
baseline and recommended markers are on top, and the page makes no request beyond its own
file. Screenshots are kept (``AGENTPATTERNS_SCREENSHOTS=DIR``, else pytest's temporary
directory); ``AGENTPATTERNS_DOCS_SCREENSHOT=docs/report-screenshot.png`` also writes the
image docs/html-report.md shows.

Playwright for Python (the ``browser`` and ``dev`` extras) drives the system's Chromium
(Debian: ``apt-get install chromium``; ``AGENTPATTERNS_CHROMIUM`` names another
executable); it downloads no browser. Without either, every test here is skipped and says
why. ``tox -e browser`` runs this module.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_agentpatterns.analysis import analyse, evaluate_gates
from pytest_agentpatterns.gates import parse_rules
from pytest_agentpatterns.html import render_html
from pytest_agentpatterns.report import load_run

ROOT = Path(__file__).resolve().parent.parent
WIDTHS = (400, 1280, 1920)
CHROMIUM = (
    os.environ.get("AGENTPATTERNS_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

try:
    from playwright.sync_api import BrowserContext, Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    PLAYWRIGHT = False
else:
    PLAYWRIGHT = True

pytestmark = [
    pytest.mark.skipif(
        not PLAYWRIGHT,
        reason="needs Playwright for Python: pip install -e '.[browser]' (no browser download)",
    ),
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="needs a Chromium executable: apt-get install chromium "
        "(or AGENTPATTERNS_CHROMIUM=/path/to/chromium)",
    ),
]

# Every table, chart and legend must fit inside its card, and every chart's text inside its
# chart; the page must not scroll sideways. Returns what does not fit.
OVERFLOW_JS = """() => {
  const bad = [];
  const inside = (a, b) => a.left >= b.left - 0.5 && a.right <= b.right + 0.5;
  const name = (el) => {
    const section = el.closest('section');
    const cls = el.getAttribute('class') || '';
    return `${section ? section.id : ''} ${el.tagName.toLowerCase()}.${cls}`;
  };
  for (const card of document.querySelectorAll('.card')) {
    const box = card.getBoundingClientRect();
    for (const el of card.querySelectorAll('.table-wrap, table, .charts, figure, figure > svg, .legend')) {
      const r = el.getBoundingClientRect();
      if (el.scrollWidth > el.clientWidth || !inside(r, box))
        bad.push(`${name(el)}: scrollWidth ${el.scrollWidth}, clientWidth ${el.clientWidth}, ` +
                 `right ${Math.round(r.right)}, card right ${Math.round(box.right)}`);
    }
  }
  for (const svg of document.querySelectorAll('figure > svg')) {
    const box = svg.getBoundingClientRect();
    for (const text of svg.querySelectorAll('text')) {
      if (!inside(text.getBoundingClientRect(), box))
        bad.push(`${name(svg)}: text "${text.textContent}" runs off the chart`);
    }
  }
  const doc = document.documentElement;
  if (doc.scrollWidth > doc.clientWidth)
    bad.push(`page: scrollWidth ${doc.scrollWidth} > clientWidth ${doc.clientWidth}`);
  return bad;
}"""

# The baseline's and the recommendation's markers: what the browser shows at their centres.
HIDDEN_MARKERS_JS = """() => {
  const bad = [];
  let checked = 0;
  for (const title of document.querySelectorAll('g.point > title')) {
    const text = title.textContent;
    if (!text.includes(', baseline') && !text.includes(', recommended')) continue;
    const group = title.parentElement;
    const mark = group.querySelector('.mark');
    mark.scrollIntoView({block: 'center'});
    const r = mark.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    checked += 1;
    if (!hit || !group.contains(hit))
      bad.push(`${group.dataset.pattern}: covered by ${hit ? hit.outerHTML.slice(0, 80) : 'nothing'}`);
  }
  return [checked, bad];
}"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example suite's report as the plugin writes it, and the same run gated against
    itself (rendered from the saved run), with a long "inconclusive" verdict added."""
    out = tmp_path_factory.mktemp("report")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_BASE_URL")}
    env["CI"] = "true"  # replay the committed cassettes only
    run = out / "run.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "example_suite",
            "--patterns=all",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--patterns-save={run}",
            f"--patterns-html={out / 'report.html'}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = load_run(run)
    gates = evaluate_gates(
        parse_rules("accuracy:-0.05,latency_p95:+20%,cost:+10%"), results, results
    ).results
    long_verdict = dataclasses.replace(
        gates[0],
        verdict="inconclusive",  # type: ignore[arg-type]
        message=gates[0].message + "; " + "the smallest regression these data could show is "
        "larger than the margin, so the gate cannot say either way" * 2,
    )
    (out / "gates.html").write_text(
        render_html(analyse(results), results, [long_verdict, *gates]), encoding="utf-8"
    )
    return {"report": out / "report.html", "gates": out / "gates.html"}


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Headless Chromium with a fresh profile that blocks every request but file:// ones."""
    profile = tmp_path_factory.mktemp("profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        context.route("**/*", _only_files)
        yield context
        context.close()


def _only_files(route: Any) -> None:
    if route.request.url.startswith("file://"):
        route.continue_()
    else:
        route.abort()


def _open(context: BrowserContext, path: Path, width: int) -> tuple[Page, list[str]]:
    """The page at ``width`` px, loaded, and every request it made (the first is itself)."""
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, requests


def _screenshots() -> Path | None:
    folder = os.environ.get("AGENTPATTERNS_SCREENSHOTS")
    return Path(folder) if folder else None


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["report", "gates"])
def test_the_report_fits_at_every_width(
    chromium: BrowserContext, pages: dict[str, Path], name: str, width: int, tmp_path: Path
) -> None:
    page, requests = _open(chromium, pages[name], width)
    try:
        assert page.title() == "agentpatterns report"
        assert page.locator("section.card").count() >= 5
        assert page.evaluate(OVERFLOW_JS) == []
        checked, hidden = page.evaluate(HIDDEN_MARKERS_JS)
        assert checked >= 5  # every test has a baseline and a recommendation on its chart
        assert hidden == []
        assert requests == [pages[name].as_uri()]  # nothing but the page itself
        folder = _screenshots() or tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        shot = folder / f"{name}-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        docs = os.environ.get("AGENTPATTERNS_DOCS_SCREENSHOT")
        if docs and name == "report" and width == 1280:
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(
                path=docs, full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": 2000}
            )
    finally:
        page.close()


def test_the_guard_sees_a_request_leave(chromium: BrowserContext, tmp_path: Path) -> None:
    """The checks above would notice: a page that fetches anything records the request."""
    leaky = tmp_path / "leaky.html"
    leaky.write_text(
        '<!DOCTYPE html><html><head><link rel="stylesheet" href="https://fonts.example/a.css">'
        '</head><body><img src="http://127.0.0.1:9/x.png"></body></html>',
        encoding="utf-8",
    )
    page, requests = _open(chromium, leaky, 400)
    page.close()
    assert requests[0] == leaky.as_uri()
    assert set(requests[1:]) == {"https://fonts.example/a.css", "http://127.0.0.1:9/x.png"}


def test_the_overflow_check_sees_an_overflow(chromium: BrowserContext, tmp_path: Path) -> None:
    """A table wider than its card, at 400 px, is reported."""
    wide = tmp_path / "wide.html"
    wide.write_text(
        '<!DOCTYPE html><html><body><section class="card" id="c"><div class="table-wrap" '
        'style="overflow-x:auto"><table style="width:900px"><tr><td>x</td></tr></table>'
        "</div></section></body></html>",
        encoding="utf-8",
    )
    page, _ = _open(chromium, wide, 400)
    try:
        problems = page.evaluate(OVERFLOW_JS)
    finally:
        page.close()
    assert any(p.startswith("c div.table-wrap: scrollWidth 900") for p in problems)
    assert any(p.startswith("c table.") and "card right" in p for p in problems)


# Every piece of evidence, once opened, inside its card: long outputs, prompts and messages wrap.
EVIDENCE_JS = """() => {
  const bad = [];
  const all = document.querySelectorAll('.evidence details');
  all.forEach((d) => { d.open = true; });
  for (const card of document.querySelectorAll('.card')) {
    const box = card.getBoundingClientRect();
    for (const el of card.querySelectorAll('.evidence pre, .evidence .ev, .evidence li')) {
      const r = el.getBoundingClientRect();
      if (r.right > box.right + 0.5 || el.scrollWidth > el.clientWidth + 1)
        bad.push(`${card.id} ${el.tagName.toLowerCase()}: right ${Math.round(r.right)}, ` +
                 `card right ${Math.round(box.right)}`);
    }
  }
  return [all.length, bad.slice(0, 10)];
}"""


@pytest.mark.parametrize("width", WIDTHS)
def test_the_evidence_opens_and_fits_at_every_width(
    chromium: BrowserContext, pages: dict[str, Path], width: int
) -> None:
    page, requests = _open(chromium, pages["report"], width)
    try:
        assert page.locator("table.cases").count() >= 5  # one grid per test function
        opened, bad = page.evaluate(EVIDENCE_JS)
        assert opened > 100
        assert bad == []
        assert page.evaluate(OVERFLOW_JS) == []
        assert requests == [pages["report"].as_uri()]
    finally:
        page.close()
