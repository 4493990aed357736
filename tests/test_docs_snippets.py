"""Every Python snippet in README.md and docs/*.md runs as written, or is marked a fragment.

The marks are HTML comments right before a fenced block, as in docs/simulator.md:

- ``<!-- file: NAME -->``: the block is (part of) a file of the page's pytest project; blocks
  naming the same file are joined in order. Each page's project is a folder of one sandbox,
  and all the folders run in one pytest session against the bundled simulator (the SDKs find
  it through ``ANTHROPIC_BASE_URL`` / ``OPENAI_BASE_URL``, as getting-started.md sets them),
  recording live, then replaying. Every test must pass.
- ``<!-- output -->``: a ``text`` block that the Python snippet before it must print exactly.
- ``<!-- fragment -->``: a signature or an excerpt, not meant to run. They are counted here.

Every other Python block runs, in the order of its page, in one namespace per page, in the
sandbox once the pytest session is over (so it can read the ``run.json`` that session saved).
docs/simulator.md runs in tests/test_sim_docs.py, with the same marks.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_agentpatterns.sim import Simulator

ROOT = Path(__file__).resolve().parent.parent
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
RUN_ELSEWHERE = {"simulator.md": "tests/test_sim_docs.py"}
MAX_FRAGMENTS = 6
"""Fragments allowed across the pages: a new one must be a deliberate choice."""

FENCE = re.compile(
    r"(?:<!--\s*(?P<note>[^>]*?)\s*-->\s*\n)?^```(?P<lang>\w*)\n(?P<code>.*?)^```$",
    re.DOTALL | re.MULTILINE,
)


@dataclass(frozen=True)
class Block:
    """One fenced block of a page, with the HTML comment right before it (if any)."""

    page: Path
    lang: str
    code: str
    note: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def file(self) -> str | None:
        if not self.note.startswith("file:"):
            return None
        return self.note.split(":", 1)[1].strip()


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [
        Block(page, m["lang"], m["code"], m["note"] or "", text.count("\n", 0, m.start("code")))
        for m in FENCE.finditer(text)
    ]


def runnable(page: Path) -> list[tuple[Block, Block | None]]:
    """The page's Python snippets that run as they are, each with its output block, if any."""
    found = blocks(page)
    out = []
    for i, block in enumerate(found):
        if block.lang != "python" or block.file or block.note in ("fragment", "output"):
            continue
        after = found[i + 1] if i + 1 < len(found) else None
        out.append((block, after if after is not None and after.note == "output" else None))
    return out


def _ours() -> list[Path]:
    return [p for p in PAGES if p.name not in RUN_ELSEWHERE]


def test_every_python_block_runs_or_is_a_counted_fragment() -> None:
    python = [b for page in PAGES for b in blocks(page) if b.lang == "python"]
    fragments = [b.where for b in python if b.note == "fragment"]
    files = [b for b in python if b.file]
    plain = [b for page in _ours() for b, _ in runnable(page)]
    assert len(fragments) <= MAX_FRAGMENTS, fragments
    assert len(python) == len(fragments) + len(files) + len(plain) + sum(
        len(runnable(p)) for p in PAGES if p.name in RUN_ELSEWHERE
    )
    # Most of the docs' code runs: fragments stay the exception.
    assert len(fragments) * 5 < len(python)
    outputs = [b for page in PAGES for b in blocks(page) if b.note == "output"]
    assert all(b.lang == "text" for b in outputs)


@pytest.fixture
def docs_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    """The simulator with its shipped world, where getting-started.md's SDK clients find it."""
    with Simulator(seed=0, time_scale=0.0) as sim:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", sim.anthropic_base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sim-key")
        monkeypatch.setenv("OPENAI_BASE_URL", sim.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sim-key")
        monkeypatch.delenv("CI", raising=False)
        yield sim


def _write_projects(root: Path) -> dict[str, list[str]]:
    """Each page's ``file:`` blocks into a folder named for the page; the test files of each."""
    tests: dict[str, list[str]] = {}
    for page in _ours():
        parts: dict[str, list[str]] = {}
        for block in blocks(page):
            if block.file:
                parts.setdefault(block.file, []).append(block.code)
        if not parts:
            continue
        folder = root / page.stem.lower().replace("-", "_")
        folder.mkdir()
        for name, codes in parts.items():
            (folder / name).write_text("\n\n".join(codes), encoding="utf-8")
        tests[folder.name] = sorted(n for n in parts if n.startswith("test_"))
    return tests


def test_the_docs_code_runs_as_written(
    pytester: pytest.Pytester, docs_sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    projects = _write_projects(pytester.path)
    assert projects, "no page has a pytest project"
    # The default import mode, as a reader runs them: a module may import its neighbour.
    args = ("-p", "no:cacheprovider", "-rfE", *projects)
    recorded = pytester.runpytest(*args, "--patterns-record=once")
    outcomes = recorded.parseoutcomes()
    assert recorded.ret == 0 and "failed" not in outcomes and "errors" not in outcomes, (
        recorded.stdout.str()
    )
    for folder, names in projects.items():
        for name in names:
            recorded.stdout.fnmatch_lines([f"{folder}/{name} *"])
    replayed = pytester.runpytest(*args, "--patterns-record=none", "--patterns-save=run.json")
    assert replayed.parseoutcomes() == outcomes, replayed.stdout.str()

    monkeypatch.chdir(pytester.path)
    problems = []
    for page in _ours():
        namespace: dict[str, Any] = {"__name__": page.stem}
        for block, output in runnable(page):
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                try:
                    exec(compile(block.code, block.where, "exec"), namespace)
                except Exception as exc:
                    problems.append(f"{block.where} raised {exc!r}")
                    continue
            if output is not None and printed.getvalue() != output.code:
                problems.append(
                    f"{block.where} printed {printed.getvalue()!r}, the page shows {output.code!r}"
                )
    assert problems == []
