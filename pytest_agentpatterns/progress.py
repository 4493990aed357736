"""A one-line live status while recording: calls made, dollars of the budget, ETA.

While a run may make live calls (a record mode other than ``none``) and its output is a
terminal, the end of pytest's current output line shows::

    test_first.py .......   agentpatterns: 35 calls, $0.0012 of $1 budget, 7/20 items, ETA 0:21

The status is drawn after the cursor and the cursor is moved back, so pytest's own output
overwrites nothing and keeps its column count; the status is erased before pytest writes
again. It goes to standard error (flushing pytest's standard output first), which leaves
pytest's writer and captured output alone. It is updated per finished item (on the xdist
controller too, from the workers' reports): the dollars are what finished items' live calls
cost, the ETA the mean time per finished item times the items left.

Off, with nothing written, when standard output or error is not a terminal (CI logs, pipes,
``pytester``), when ``TERM=dumb``, and in replay-only runs.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

import pytest

ERASE = "\x1b[K"
"""Erase from the cursor to the end of the line (ANSI EL)."""
MIN_WIDTH = 24
"""Columns the status needs at least; with fewer left on the line it is not drawn."""
PROPERTY = "agentpatterns"


@dataclass(frozen=True)
class Status:
    """What the status line says."""

    calls: int = 0
    """Live calls made by finished items."""
    spent: float = 0.0
    """What the priced ones cost, USD."""
    unpriced: int = 0
    """Live calls whose cost is unknown."""
    budget: float | None = None
    items_done: int = 0
    items_total: int = 0
    elapsed: float = 0.0
    """Seconds since the first item started."""

    @property
    def eta(self) -> float | None:
        """Seconds left at the mean pace of the finished items; None before the first."""
        if self.items_done <= 0 or self.items_total <= 0:
            return None
        return self.elapsed / self.items_done * max(0, self.items_total - self.items_done)


def format_status(status: Status, width: int | None = None) -> str:
    """The status as one line: ``agentpatterns: 35 calls, $0.0012 of $1 budget, 7/20 items,
    ETA 0:21``. Cut to ``width`` columns by dropping, in turn, the items, the ETA and the
    dollars."""
    calls = f"{status.calls} call{'s' if status.calls != 1 else ''}"
    money = dollars(status.spent)
    if status.unpriced:
        money += f" (+{status.unpriced} unpriced)"
    money += " spent" if status.budget is None else f" of ${status.budget:g} budget"
    parts: list[tuple[int, str]] = [(0, calls), (1, money)]
    if status.items_total:
        eta = status.eta
        parts.append((3, f"{status.items_done}/{status.items_total} items"))
        parts.append((2, "ETA --" if eta is None else f"ETA {clock(eta)}"))

    def line() -> str:
        return "agentpatterns: " + ", ".join(text for _, text in parts)

    while width is not None and len(line()) > width and len(parts) > 1:
        parts.remove(max(parts))
    text = line()
    return text if width is None or len(text) <= width else text[: max(0, width)]


def dollars(amount: float) -> str:
    """``$0.0123``; a small amount with its first significant digits: ``$0.000024``."""
    if 0 < amount < 0.0001:
        return f"${amount:.6f}"
    return f"${amount:.4f}"


def clock(seconds: float) -> str:
    """``0:42``, ``3:05``, ``1:02:09``."""
    total = max(0, math.ceil(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def live_calls(result: Mapping[str, Any]) -> tuple[int, float, int]:
    """Live calls, their known cost and how many are unpriced, in one item's report dict."""
    calls = spent = unpriced = 0
    for rep in result.get("repetitions", ()):
        for call in rep.get("calls", ()):
            if call.get("replayed"):
                continue
            calls += 1
            cost = call.get("cost")
            if cost is None:
                unpriced += 1
            else:
                spent += cost
    return calls, float(spent), unpriced


def is_terminal(*streams: IO[str] | None) -> bool:
    """Whether every stream is an interactive terminal that understands ANSI erase."""
    if os.environ.get("TERM") == "dumb":
        return False
    return all(s is not None and hasattr(s, "isatty") and s.isatty() for s in streams)


class Line:
    """Draws the status after the cursor and erases it: nothing else moves."""

    def __init__(self, stream: IO[str], before: Callable[[], None] = lambda: None) -> None:
        self.stream = stream
        self.before = before
        self.drawn = False

    def draw(self, text: str) -> None:
        if not text:
            return
        self.before()
        self.stream.write(f"{ERASE}{text}\x1b[{len(text)}D")
        self.stream.flush()
        self.drawn = True

    def erase(self) -> None:
        if self.drawn:
            self.before()
            self.stream.write(ERASE)
            self.stream.flush()
            self.drawn = False


class LiveStatus:
    """The pytest plugin object: counts items and live calls from reports, draws the line."""

    def __init__(
        self,
        config: pytest.Config,
        stream: IO[str],
        budget: float | None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.line = Line(stream, before=self._flush)
        self.budget = budget
        self.now = now
        self.started: float | None = None
        self.status = Status(budget=budget)
        self.done: set[str] = set()

    def _writer(self) -> Any:
        """pytest's terminal writer (None with ``-p no:terminal``)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        return None if reporter is None else self.config.get_terminal_writer()

    def _flush(self) -> None:
        writer = self._writer()
        if writer is not None:
            writer.flush()

    def _room(self) -> int:
        writer = self._writer()
        if writer is None:
            return 0
        return int(writer.fullwidth - writer.width_of_current_line - 3)

    def _show(self) -> None:
        room = self._room()
        if room >= MIN_WIDTH:
            self.line.draw("  " + format_status(self.status, room))

    def _add_items(self, ids: Iterable[str]) -> None:
        total = max(self.status.items_total, len(set(ids)))
        self.status = _replace(self.status, items_total=total)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self._add_items(i.nodeid for i in items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self._add_items(ids)

    # Each hook pytest's terminal reporter writes in is wrapped: erase, let it write, redraw.
    # The line stays up while an item runs (its live calls are being made).

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_logstart(self) -> Any:
        self.line.erase()
        if self.started is None:
            self.started = self.now()
        yield
        self._show()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Any:
        self.line.erase()
        yield
        self._count(report)
        self._show()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_logfinish(self) -> Any:
        self.line.erase()
        yield
        self._show()

    def _count(self, report: pytest.TestReport) -> None:
        s = self.status
        if report.when == "call":
            for name, value in report.user_properties:
                if name == PROPERTY and isinstance(value, dict):
                    calls, spent, unpriced = live_calls(value)
                    s = _replace(
                        s,
                        calls=s.calls + calls,
                        spent=s.spent + spent,
                        unpriced=s.unpriced + unpriced,
                    )
        if report.when == "teardown" or (report.when == "setup" and report.skipped):
            self.done.add(report.nodeid)
        elapsed = 0.0 if self.started is None else self.now() - self.started
        self.status = _replace(s, items_done=len(self.done), elapsed=elapsed)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        self.line.erase()

    @pytest.hookimpl(tryfirst=True)
    def pytest_terminal_summary(self) -> None:
        self.line.erase()

    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self) -> None:
        self.line.erase()


def _replace(status: Status, **changes: Any) -> Status:
    from dataclasses import replace

    return replace(status, **changes)


def wanted(record_mode: str, stdout: IO[str] | None, stderr: IO[str] | None) -> bool:
    """Whether to show the live status: a run that may record, on a terminal."""
    return record_mode != "none" and is_terminal(stdout, stderr)
