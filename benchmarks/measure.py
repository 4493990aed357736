"""Timing helpers shared by the benchmarks: medians, paired ratios and timed pytest runs."""

from __future__ import annotations

import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Ratio:
    """A ratio measured side by side: the median of per-round ratios, with their range."""

    median: float
    low: float
    high: float
    rounds: int

    @classmethod
    def of(cls, numerators: Sequence[float], denominators: Sequence[float]) -> Ratio:
        """Pair round i of the variant with round i of its reference, then take the median."""
        ratios = [n / d for n, d in zip(numerators, denominators, strict=True)]
        if not ratios:
            return cls(math.nan, math.nan, math.nan, 0)
        return cls(statistics.median(ratios), min(ratios), max(ratios), len(ratios))

    def text(self) -> str:
        """``1.23x (1.10-1.40, 7 rounds)``, or ``not measured``."""
        if not self.rounds:
            return "not measured"
        digits = 0 if self.low >= 100 else 2
        low, high, middle = (f"{x:,.{digits}f}" for x in (self.low, self.high, self.median))
        return f"{middle}x ({low}-{high}, {self.rounds} rounds)"


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values (a figure that could not be measured)."""
    return statistics.median(values) if values else float("nan")


PYCACHE = Path(tempfile.gettempdir()) / "agentpatterns-bench-pycache"
IGNORED_ENV = ("CI", "PYTEST_ADDOPTS", "PYTHONDONTWRITEBYTECODE")


def pytest_env(**extra: str) -> dict[str, str]:
    """The child environment: no CI or PYTEST_ADDOPTS, and bytecode cached as users have it.

    Bytecode goes to a cache outside the source tree (``PYTHONPYCACHEPREFIX``), so no run
    pays for compiling the plugin and none writes into the repository.
    """
    env = {k: v for k, v in os.environ.items() if k not in IGNORED_ENV}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.update(extra)
    return env


FINAL_LINE = re.compile(r"\b\d+ (passed|failed|skipped|errors?)\b.* in [\d.]+s")


@dataclass(frozen=True)
class Run:
    """One pytest subprocess: its wall time and what it printed."""

    seconds: float
    cpu_seconds: float
    output: str

    def outcomes(self) -> dict[str, int]:
        """Counts from pytest's final line (``12 passed, 1 skipped in 0.31s``)."""
        finals = [line for line in self.output.splitlines() if FINAL_LINE.search(line)]
        if not finals:
            return {}
        found = re.findall(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?)", finals[-1])
        return {word.rstrip("s") if word == "errors" else word: int(n) for n, word in found}

    @property
    def items(self) -> int:
        """How many items ran (every outcome counted)."""
        return sum(self.outcomes().values())


def run_pytest(
    args: Sequence[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    ok: Sequence[int] = (0,),
    timeout: float = 600,
) -> Run:
    """Run ``python -m pytest ARGS`` in ``cwd`` and time it; raise on an exit code not ``ok``."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    cpu_before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env or pytest_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before
    if done.returncode not in ok:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode} in {cwd}:\n{tail}")
    return Run(elapsed, cpu, done.stdout)


def _children_cpu() -> float:
    """User plus system CPU seconds of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
