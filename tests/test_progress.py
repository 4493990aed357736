"""The live status while recording: its text, how it is drawn, and that it stays off the
output unless that is a terminal."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_agentpatterns.progress import (
    ERASE,
    Line,
    Status,
    clock,
    format_status,
    is_terminal,
    live_calls,
    wanted,
)
from pytest_agentpatterns.sim import Simulator


def test_the_status_says_calls_dollars_of_the_budget_items_and_eta() -> None:
    status = Status(calls=35, spent=0.00123, budget=1.0, items_done=7, items_total=20, elapsed=14.0)
    assert status.eta == pytest.approx(26.0)
    assert format_status(status) == (
        "agentpatterns: 35 calls, $0.0012 of $1 budget, 7/20 items, ETA 0:26"
    )


def test_without_a_budget_unpriced_calls_and_before_the_first_item() -> None:
    status = Status(calls=1, spent=0.5, unpriced=2, items_total=4)
    assert status.eta is None
    assert format_status(status) == (
        "agentpatterns: 1 call, $0.5000 (+2 unpriced) spent, 0/4 items, ETA --"
    )


def test_a_narrow_line_drops_items_then_eta_then_dollars() -> None:
    status = Status(calls=3, spent=0.25, budget=2.0, items_done=1, items_total=3, elapsed=5.0)
    full = format_status(status)
    assert full == "agentpatterns: 3 calls, $0.2500 of $2 budget, 1/3 items, ETA 0:10"
    assert format_status(status, len(full)) == full
    assert format_status(status, len(full) - 1) == (
        "agentpatterns: 3 calls, $0.2500 of $2 budget, ETA 0:10"
    )
    assert format_status(status, 50) == "agentpatterns: 3 calls, $0.2500 of $2 budget"
    assert format_status(status, 30) == "agentpatterns: 3 calls"
    assert format_status(status, 10) == "agentpatte"


@given(
    calls=st.integers(0, 10**6),
    spent=st.floats(0, 1e4),
    budget=st.none() | st.floats(0.01, 1e4),
    done=st.integers(0, 10**4),
    more=st.integers(0, 10**4),
    elapsed=st.floats(0, 1e6),
    width=st.integers(0, 200),
)
def test_the_status_never_passes_its_width(
    calls: int,
    spent: float,
    budget: float | None,
    done: int,
    more: int,
    elapsed: float,
    width: int,
) -> None:
    status = Status(calls, spent, 0, budget, done, done + more, elapsed)
    text = format_status(status, width)
    assert len(text) <= width
    assert "\n" not in text


def test_clock() -> None:
    assert [clock(s) for s in (0, 0.2, 42, 185, 3729)] == [
        "0:00",
        "0:01",
        "0:42",
        "3:05",
        "1:02:09",
    ]


def test_only_live_calls_count() -> None:
    result = {
        "repetitions": [
            {"calls": [{"replayed": False, "cost": 0.25}, {"replayed": True, "cost": 1.0}]},
            {"calls": [{"replayed": False, "cost": None}, {"replayed": False, "cost": 0.5}]},
        ]
    }
    assert live_calls(result) == (3, 0.75, 1)


def test_the_line_is_drawn_after_the_cursor_and_erased() -> None:
    stream = io.StringIO()
    flushed: list[str] = []
    line = Line(stream, before=lambda: flushed.append("flush"))
    line.erase()  # nothing drawn: nothing written
    assert stream.getvalue() == "" and flushed == []
    line.draw("  status")
    assert stream.getvalue() == f"{ERASE}  status\x1b[8D"
    line.erase()
    line.erase()
    assert stream.getvalue() == f"{ERASE}  status\x1b[8D{ERASE}"
    assert flushed == ["flush", "flush"]  # pytest's output goes out before each write


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_wanted_only_while_recording_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    assert wanted("once", _Tty(), _Tty())
    assert not wanted("none", _Tty(), _Tty())
    assert not wanted("once", io.StringIO(), _Tty())
    assert not wanted("once", _Tty(), io.StringIO())
    monkeypatch.setenv("TERM", "dumb")
    assert not is_terminal(_Tty(), _Tty())


MODULE = """
import pytest
from pytest_agentpatterns import Task

@pytest.mark.agentpatterns(repeat=2)
@pytest.mark.parametrize("x", list("abc"))
def test_x(agent, x):
    assert agent.run(Task(name="t", propose=str.upper), x) == x.upper()
"""


def test_nothing_is_printed_when_the_output_is_not_a_terminal(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(MODULE)
    result = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=once")
    result.assert_outcomes(passed=3)
    printed = result.stdout.str() + result.stderr.str()
    assert ERASE not in printed
    assert "agentpatterns: 0 calls" not in printed


LIVE = """
import os, anthropic, pytest
from pytest_agentpatterns import Task

CLIENT = anthropic.Anthropic(base_url=os.environ["SIM_URL"], api_key="sim-key", max_retries=0)

def ask(question):
    m = CLIENT.messages.create(model="sim-fast", max_tokens=20,
                               messages=[{"role": "user", "content": question}])
    return m.content[0].text

t = Task(name="t", propose=ask)

@pytest.mark.agentpatterns(repeat=2)
@pytest.mark.parametrize("x", list("abc"))
def test_x(agent, x):
    agent.run(t, f"What is the capital of Testland? {x}")
"""

# The plugin's status object, drawing into a file that says it is a terminal.
CONFTEST = """
import io
from pytest_agentpatterns.progress import LiveStatus

class Tty(io.StringIO):
    def isatty(self):
        return True

def pytest_configure(config):
    config.stash_tty = Tty()
    config.pluginmanager.register(LiveStatus(config, config.stash_tty, budget=1.0))

def pytest_unconfigure(config):
    with open("status.txt", "w") as handle:
        handle.write(config.stash_tty.getvalue())
"""


def test_the_line_counts_live_calls_and_dollars_after_each_item(
    pytester: pytest.Pytester, sim_env: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    pytester.makepyfile(test_live=LIVE)
    pytester.makeconftest(CONFTEST)
    args = ("-p", "no:cacheprovider", "-p", "no:randomly", "--patterns-budget=1")
    pytester.runpytest(*args, "--patterns-record=once").assert_outcomes(passed=3)
    text = (pytester.path / "status.txt").read_text()
    shown = re.findall(r"agentpatterns: (\d) calls, \$(\d\.\d+) of \$1 budget, (\d)/3 items", text)
    seen = [(int(calls), int(items)) for calls, _, items in shown]
    # Each item adds its two live calls and their cost once its test has run.
    assert seen[0] == (0, 0) and seen[-1] == (6, 3)
    assert seen == sorted(seen) and {(2, 1), (4, 2)} <= set(seen)
    assert {calls for calls, _ in seen} == {0, 2, 4, 6}
    assert 0 < float(shown[-1][1]) < 1
    assert text.endswith(ERASE)  # erased before pytest's summary
    # Replayed, the calls are not live: nothing is spent.
    pytester.runpytest(*args, "--patterns-record=once").assert_outcomes(passed=3)
    text = (pytester.path / "status.txt").read_text()
    assert "agentpatterns: 0 calls, $0.0000 of $1 budget, 3/3 items" in text


def test_on_a_terminal_the_line_follows_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MODULE)
    primary, secondary = os.openpty()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(COLUMNS="120", TERM="xterm")
    with subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=pytester.path,
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env=env,
    ) as proc:
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal closed (Linux raises EIO)
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=60)
    os.close(primary)
    text = b"".join(chunks).decode()
    assert proc.returncode == 0, text
    assert f"{ERASE}  agentpatterns: 0 calls, $0.0000 spent, 0/3 items, ETA --" in text
    assert f"{ERASE}  agentpatterns: 0 calls, $0.0000 spent, 3/3 items, ETA 0:00" in text
    # Erased before pytest's closing lines: the summary reads as without the status.
    assert "3 passed" in text.split(ERASE)[-1]
