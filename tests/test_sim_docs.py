"""docs/simulator.md says only what holds: its snippets run as written and print what it shows.

The page's Python snippets run in order in one namespace, as a reader pasting them into one
session would. A snippet followed by an ``<!-- output -->`` block must print exactly that block;
a snippet that prints must be followed by one. ``<!-- file: NAME -->`` snippets are files of a
pytest project, run with pytest. ``<!-- fragment -->`` marks the few that are not meant to run.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_agentpatterns.sim import World, load_models

DOC = Path(__file__).parent.parent / "docs" / "simulator.md"

FENCE = re.compile(
    r"(?:<!--\s*(?P<note>[^>]*?)\s*-->\s*\n)?^```(?P<lang>\w*)\n(?P<code>.*?)^```$",
    re.DOTALL | re.MULTILINE,
)


@dataclass(frozen=True)
class Block:
    """One fenced block of the page, with the HTML comment right before it (if any)."""

    lang: str
    code: str
    note: str
    line: int


def blocks() -> list[Block]:
    text = DOC.read_text(encoding="utf-8")
    return [
        Block(m["lang"], m["code"], m["note"] or "", text.count("\n", 0, m.start("code")) + 1)
        for m in FENCE.finditer(text)
    ]


def snippets() -> list[tuple[Block, Block | None]]:
    """The runnable Python snippets, each with the output block that follows it (if any)."""
    found = blocks()
    out = []
    for i, block in enumerate(found):
        if block.lang != "python" or block.note:
            continue
        after = found[i + 1] if i + 1 < len(found) else None
        out.append((block, after if after is not None and after.note == "output" else None))
    return out


def test_the_page_is_mostly_runnable_and_its_marks_are_known() -> None:
    python = [b for b in blocks() if b.lang == "python"]
    notes = {b.note.split(":")[0] for b in blocks()}
    assert notes <= {"", "output", "fragment", "file"}
    assert len([b for b in python if b.note == "fragment"]) <= 2
    assert len(snippets()) >= 10
    assert all(b.lang == "text" for b in blocks() if b.note == "output")


def test_python_snippets_run_in_order_and_print_what_the_page_shows() -> None:
    namespace: dict[str, Any] = {"__name__": "simulator_md"}
    try:
        for block, output in snippets():
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                try:
                    exec(compile(block.code, f"{DOC.name}:{block.line}", "exec"), namespace)
                except Exception as exc:
                    pytest.fail(f"the snippet at {DOC.name}:{block.line} raised {exc!r}")
            shown = output.code if output is not None else ""
            assert printed.getvalue() == shown, (
                f"the snippet at {DOC.name}:{block.line} prints something else than the page shows"
            )
    finally:
        simulator = namespace.get("sim")
        if simulator is not None:
            simulator.stop()


def test_pytest_snippets_pass_as_a_project(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [b for b in blocks() if b.note.startswith("file:")]
    assert files
    for block in files:
        name = block.note.split(":", 1)[1].strip()
        (pytester.path / name).write_text(block.code, encoding="utf-8")
    monkeypatch.delenv("CI", raising=False)
    recorded = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=once")
    recorded.assert_outcomes(passed=1)
    replayed = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=none")
    replayed.assert_outcomes(passed=1)


def test_json_examples_are_worlds_and_models_the_simulator_loads() -> None:
    examples = [json.loads(b.code) for b in blocks() if b.lang == "json"]
    worlds = [World.from_mapping(e) for e in examples if "entries" in e]
    assert worlds and all(w.entries for w in worlds)
    models = [e for e in examples if "models" in e]
    assert models
    for data in models:
        loaded = load_models({name: p for name, p in data["models"].items()})
        assert set(data["models"]) <= set(loaded.profiles)


def test_the_console_example_is_what_the_command_prints() -> None:
    console = next(b for b in blocks() if b.lang == "console")
    command, *shown = console.code.splitlines()
    args = command.removeprefix("$ python -m pytest_agentpatterns.sim").split()
    args[args.index("--port") + 1] = "0"
    with subprocess.Popen(
        [sys.executable, "-m", "pytest_agentpatterns.sim", *args], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        printed = [proc.stdout.readline().rstrip("\n") for _ in shown]
        proc.terminate()
        proc.communicate(timeout=10)
    port = re.search(r":(\d+) ", printed[0])
    assert port is not None
    assert [line.replace(f":{port.group(1)}", ":8765") for line in printed] == shown
