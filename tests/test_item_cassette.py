"""An item's cassette opens only when the item needs one (item_cassette.py)."""

from __future__ import annotations

import json

import pytest

ONLY_PLUGIN = ("-p", "pytest_agentpatterns.plugin", "-p", "no:cacheprovider")


@pytest.fixture
def no_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only this plugin in the child, so no other plugin imports an HTTP client first."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def test_items_without_calls_open_no_cassette(pytester: pytest.Pytester, no_autoload: None) -> None:
    pytester.makepyfile(
        test_plain="""
        import sys
        from pytest_agentpatterns import Task

        task = Task(name="t", propose=lambda x: x + 1)

        def test_one(agent):
            assert agent.run(task, 1) == 2

        def test_two(agent):
            assert agent.run(task, 2) == 3
            assert "vcr" not in sys.modules
            assert "httpx" not in sys.modules and "httpx2" not in sys.modules
        """
    )
    for mode in ("once", "none"):
        result = pytester.runpytest_subprocess(*ONLY_PLUGIN, f"--patterns-record={mode}")
        result.assert_outcomes(passed=2)
    assert not (pytester.path / "cassettes").exists()


CALLS_AFTER_IMPORT = """
import sys
from pytest_agentpatterns import Task

SECRET = "sk-test-" + "q" * 40

def ask(x):
    import httpx2  # the first HTTP client of the process, imported inside the item

    def answer(request):
        return httpx2.Response(200, json={"echo": x})

    client = httpx2.Client(transport=httpx2.MockTransport(answer))
    response = client.post(
        "https://api.example.test/v1/echo",
        json={"x": x},
        headers={"authorization": "Bearer " + SECRET},
    )
    return response.json()["echo"] + 1

task = Task(name="t", propose=ask)

def test_first(agent):
    assert "httpx2" not in sys.modules
    assert agent.run(task, 1) == 2

def test_second(agent):
    assert agent.run(task, 2) == 3
"""


def test_a_client_imported_during_an_item_is_recorded_and_replayed(
    pytester: pytest.Pytester, no_autoload: None
) -> None:
    pytester.makepyfile(test_lazy=CALLS_AFTER_IMPORT)
    recorded = pytester.runpytest_subprocess(*ONLY_PLUGIN, "--patterns-record=once")
    recorded.assert_outcomes(passed=2)
    cassettes = pytester.path / "cassettes" / "test_lazy"
    first = json.loads((cassettes / "test_first[single].json").read_text())
    assert [i["request"]["uri"] for i in first["interactions"]] == [
        "https://api.example.test/v1/echo"
    ]
    assert "q" * 40 not in (cassettes / "test_first[single].json").read_text()
    assert (cassettes / "test_second[single].json").exists()

    replayed = pytester.runpytest_subprocess(
        *ONLY_PLUGIN, "--patterns-record=none", "-k", "test_first"
    )
    replayed.assert_outcomes(passed=1)


def test_a_replay_only_item_that_imports_a_client_misses_with_the_cassette_named(
    pytester: pytest.Pytester, no_autoload: None
) -> None:
    pytester.makepyfile(test_lazy=CALLS_AFTER_IMPORT)
    result = pytester.runpytest_subprocess(*ONLY_PLUGIN, "--patterns-record=none", "-k", "first")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no recording for call r0/main/propose#0 in cassette*"])
