"""The live-spend budget, shared by every process of a run.

Without xdist the spend is kept in memory. Under xdist the controller creates a ledger
file and hands its path to the workers, which charge it under an exclusive file lock, so
``--patterns-budget`` is one budget for the whole run, as without xdist. (Remote gateways
that cannot see the controller's file system each keep their own ledger: per worker.)
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no fcntl; the spend stays per process
    fcntl = None  # type: ignore[assignment]


class Ledger:
    """Dollars spent on live calls: in memory, or in a locked file shared between processes."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None and fcntl is not None and path.exists() else None
        self._spent = 0.0
        self._lock = threading.Lock()

    def spent(self) -> float:
        with self._lock:
            if self.path is None:
                return self._spent
            with open(self.path, "r+", encoding="ascii") as handle:
                fcntl.flock(handle, fcntl.LOCK_SH)
                return _read(handle.read())

    def charge(self, cost: float) -> None:
        with self._lock:
            if self.path is None:
                self._spent += cost
                return
            with open(self.path, "r+", encoding="ascii") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                total = _read(handle.read()) + cost
                handle.seek(0)
                handle.write(repr(total))
                handle.truncate()
                handle.flush()
                os.fsync(handle.fileno())


def _read(text: str) -> float:
    return float(text) if text.strip() else 0.0
