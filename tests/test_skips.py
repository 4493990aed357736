"""Patterns a task cannot run are skipped with a reason, and the summary says which and why."""

from __future__ import annotations

import pytest

from pytest_agentpatterns.records import ItemResult
from pytest_agentpatterns.table import render_terminal, skipped_lines

MODULE = """
import pytest
from pytest_agentpatterns import Task

plain = Task(name="plain", propose=lambda x: x)
chained = Task(name="chained", propose=lambda x: "propose", steps=[lambda x, prev: x])

@pytest.mark.parametrize("word", ["a", "b", "c"])
def test_plain(agent, word):
    assert agent.run(plain, word) == word

@pytest.mark.parametrize("word", ["a", "b"])
def test_chained(agent, word):
    out = agent.run(chained, word)
    assert out == (word if agent.pattern_id == "sequential" else "propose")
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=none", *args)


def test_sequential_without_steps_is_skipped_naming_the_role(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MODULE)
    result = run(pytester, "--patterns=single,sequential", "-rs")
    # test_plain under sequential would only repeat single's propose call: it is skipped.
    result.assert_outcomes(passed=7, skipped=3)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]3[]]*pattern sequential needs role steps, "
            "which task 'plain' does not define",
        ]
    )


def test_the_summary_lists_skipped_patterns_per_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    pytester.makepyfile(MODULE)
    result = run(pytester, "--patterns=all")
    result.assert_outcomes(passed=17, skipped=13)
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "agentpatterns summary" in line)
    summary = lines[start + 1 :]
    first = next(i for i, line in enumerate(summary) if line.startswith("skipped in "))
    block = summary[first:]
    module = "test_the_summary_lists_skipped_patterns_per_test.py"
    assert block[0] == f"skipped in {module}::test_plain:"
    assert f"skipped in {module}::test_chained:" in block
    text = "\n".join(block)
    # test_chained skips hybrid and loop only; test_plain also sequential.
    assert "sequential: needs role steps, which task 'plain' does not define (every case)" in text
    assert "hybrid(n=3): needs role verify, which task 'chained' does not define (every" in text
    assert text.count("loop(max_iters=3): needs role verify and refine") == 2
    assert all(len(line) <= 80 for line in summary if not line.startswith("===")), summary


def _item(test: str, case: str, pattern: str, skipped: str | None = None) -> ItemResult:
    return ItemResult(f"{test}[{case}-{pattern}]", test, case, pattern, (), skipped=skipped)


def test_skipped_lines_count_cases_and_wrap_to_the_width() -> None:
    reason = (
        "pattern loop(max_iters=3) needs role verify and refine, which task 't' does not define"
    )
    results = [
        _item("t.py::test_x", "a", "single"),
        _item("t.py::test_x", "b", "single"),
        _item("t.py::test_x", "a", "loop(max_iters=3)", reason),
        _item("t.py::test_y", "a", "single"),
    ]
    lines = skipped_lines(results, width=40)
    assert lines[0] == "skipped in t.py::test_x:"
    assert all(len(line) <= 40 for line in lines)
    assert lines[1].startswith("  loop(max_iters=3): needs role verify")
    assert lines[2].startswith("    ")  # a wrapped reason is indented beneath its pattern
    assert " ".join(line.strip() for line in lines[1:]).endswith("(1 of 2 cases)")
    # A test that skipped nothing has no line; nothing skipped, nothing printed.
    assert not any("test_y" in line for line in lines)
    assert skipped_lines(results[:2]) == []
    assert render_terminal([], results=results, width=40).splitlines() == lines
