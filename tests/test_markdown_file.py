"""``--patterns-markdown`` replaces its file; ``--patterns-markdown-append`` adds to it."""

from __future__ import annotations

import pytest

MODULE = """
import pytest
from pytest_agentpatterns import Task

t = Task(name="t", propose=lambda x: x)

@pytest.mark.parametrize("word", ["a", "b"])
def test_echo(agent, word):
    assert agent.run(t, word) == word
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=none", *args)


def test_a_second_run_replaces_the_summary(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MODULE)
    md = pytester.path / "out" / "summary.md"
    md.parent.mkdir()
    md.write_text("stale text from an earlier run\n")
    run(pytester, f"--patterns-markdown={md}").assert_outcomes(passed=2)
    first = md.read_text()
    run(pytester, f"--patterns-markdown={md}").assert_outcomes(passed=2)
    second = md.read_text()
    assert "stale" not in first
    assert first.count("## agentpatterns summary") == 1
    assert second.count("## agentpatterns summary") == 1
    # Written through a temporary file and a rename: nothing else is left in the folder.
    assert [p.name for p in md.parent.iterdir()] == ["summary.md"]


def test_append_adds_to_the_file_as_github_wants(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MODULE)
    md = pytester.path / "step-summary.md"
    md.write_text("# Earlier step\n\n")
    for _ in range(2):
        result = run(pytester, f"--patterns-markdown={md}", "--patterns-markdown-append")
        result.assert_outcomes(passed=2)
    text = md.read_text()
    assert text.startswith("# Earlier step\n\n## agentpatterns summary")
    assert text.count("## agentpatterns summary") == 2


def test_append_without_a_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MODULE)
    result = run(pytester, "--patterns-markdown-append")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --patterns-markdown-append needs --patterns-markdown=PATH, the file to append*"]
    )


def test_help_names_both_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--patterns-markdown=PATH*", "*--patterns-markdown-append*"])
