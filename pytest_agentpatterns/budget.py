"""The live-spend budget and the live-call cap, shared by every process of a run.

A live call *reserves* its worst case before it is sent and *settles* to its real cost
when it ends, so concurrent calls cannot all slip under the budget at once. A call is let
through when nothing is reserved and less than the budget is spent, or when its worst case
fits beside what is spent and reserved; otherwise it waits for calls in flight to settle.
So the run overshoots the budget by at most one call (the one sent alone after the last
check), whatever the concurrency.

Without xdist the ledger is kept in memory. Under xdist the controller creates a ledger
file and hands its path to the workers, which read and write it under an exclusive file
lock, so ``--patterns-budget`` and ``--patterns-max-calls`` are one limit for the whole run.
(Remote gateways that cannot see the controller's file system each keep their own ledger.)
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .usage import Usage

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no fcntl; the ledger stays per process
    fcntl = None  # type: ignore[assignment]

DEFAULT_OUTPUT_TOKENS = 4096
"""Output tokens reserved for a request that sets no output limit."""
BYTES_PER_INPUT_TOKEN = 1
"""Input tokens are bounded by the request body's size: a token is at least one byte."""


@dataclass(frozen=True)
class Totals:
    """What the ledger holds: dollars spent and reserved, and live calls let through."""

    spent: float = 0.0
    reserved: float = 0.0
    calls: int = 0


@dataclass(frozen=True)
class Limits:
    """``--patterns-budget`` (USD) and ``--patterns-max-calls``; None means no limit."""

    budget: float | None = None
    max_calls: int | None = None

    def refusal(self, totals: Totals, amount: float, new_call: bool) -> str | None:
        """Why a call reserving ``amount`` must not be made, or None."""
        if self.max_calls is not None and new_call and totals.calls >= self.max_calls:
            return f"max calls {self.max_calls} made"
        if self.budget is not None and totals.spent >= self.budget:
            return f"budget ${self.budget:g} spent"
        return None

    def fits(self, totals: Totals, amount: float) -> bool:
        """Whether a call reserving ``amount`` may go now (else it waits for others)."""
        if self.budget is None or totals.reserved <= 0:
            return True
        return totals.spent + totals.reserved + amount <= self.budget


class Ledger:
    """Dollars spent and reserved, and calls made: in memory, or in a locked shared file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None and fcntl is not None and path.exists() else None
        self._totals = Totals()
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)

    def totals(self) -> Totals:
        """The current totals (for messages and tests)."""
        with self._locked() as (totals, _):
            return totals

    def spent(self) -> float:
        """Dollars spent on live calls so far."""
        return self.totals().spent

    def try_reserve(self, limits: Limits, amount: float, new_call: bool) -> str | bool:
        """Reserve ``amount`` if ``limits`` allow it now: True when reserved, False when
        the call must wait for calls in flight to settle, or the reason it is refused."""
        with self._locked() as (totals, write):
            refusal = limits.refusal(totals, amount, new_call)
            if refusal is not None:
                return refusal
            if not limits.fits(totals, amount):
                return False
            write(Totals(totals.spent, totals.reserved + amount, totals.calls + int(new_call)))
            return True

    def settle(self, reserved: float, cost: float) -> None:
        """Replace a reservation by what the call really cost."""
        with self._locked() as (totals, write):
            write(Totals(totals.spent + cost, max(0.0, totals.reserved - reserved), totals.calls))
            self.changed.notify_all()

    def charge(self, cost: float) -> None:
        """Add ``cost`` to the spend (a call that reserved nothing)."""
        self.settle(0.0, cost)

    @contextmanager
    def _locked(self) -> Iterator[tuple[Totals, Any]]:
        with self._lock:
            if self.path is None:

                def keep(totals: Totals) -> None:
                    self._totals = totals

                yield self._totals, keep
                return
            with open(self.path, "r+", encoding="ascii") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                yield _read(handle.read()), lambda totals: _write(handle, totals)


def _read(text: str) -> Totals:
    if not text.strip():
        return Totals()
    data = json.loads(text)
    return Totals(float(data["spent"]), float(data["reserved"]), int(data["calls"]))


def _write(handle: IO[str], totals: Totals) -> None:
    handle.seek(0)
    handle.write(
        json.dumps({"spent": totals.spent, "reserved": totals.reserved, "calls": totals.calls})
    )
    handle.truncate()
    handle.flush()
    os.fsync(handle.fileno())


def worst_case_usage(body: bytes | None) -> Usage:
    """The most a request can use: its output limit (times ``n`` choices) and, as input,
    one token per byte of its body. A request with no output limit reserves
    :data:`DEFAULT_OUTPUT_TOKENS`."""
    data: Any = None
    if body:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            data = None
    data = data if isinstance(data, dict) else {}
    model = data.get("model") if isinstance(data.get("model"), str) else None
    limit = next(
        (
            data[key]
            for key in ("max_tokens", "max_completion_tokens", "max_output_tokens")
            if _is_count(data.get(key))
        ),
        DEFAULT_OUTPUT_TOKENS,
    )
    choices = data.get("n") if _is_count(data.get("n")) and data.get("n") else 1
    input_tokens = math.ceil(len(body or b"") / BYTES_PER_INPUT_TOKEN)
    return Usage(model=model, input_tokens=input_tokens, output_tokens=limit * choices)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
