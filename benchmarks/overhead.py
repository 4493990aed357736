"""Figure 3: what the plugin costs a suite that does not use it.

A suite of trivial test functions (none requests ``agent``) runs in fresh pytest processes
with the plugin active and with ``-p no:agentpatterns``, alternating; the figure is the
median over pairs of the wall-time ratio. Every item is its own function, so the plugin's
per-function (``pytest_generate_tests``) and per-item hooks run as often as they can.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from measure import Ratio, median, run_pytest

PER_MODULE = 100


def write_suite(root: Path, items: int) -> None:
    """``items`` trivial test functions, ``PER_MODULE`` to a module."""
    for start in range(0, items, PER_MODULE):
        count = min(PER_MODULE, items - start)
        body = "".join(f"\n\ndef test_{start + i}():\n    assert True\n" for i in range(count))
        (root / f"test_trivial_{start // PER_MODULE:03d}.py").write_text(body.lstrip())


@dataclass(frozen=True)
class OverheadResult:
    """Figure 3: suite wall time with the plugin over without it."""

    items: int
    with_plugin: float
    without_plugin: float
    ratio: Ratio
    best_of: float
    cpu_ratio: Ratio


def measure(items: int, runs: int) -> OverheadResult:
    """Alternate ``runs`` sessions with and without the plugin (after one warm-up each)."""
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        root = Path(tmp)
        write_suite(root, items)
        common = ["-q", "-p", "no:xdist"]
        variants = {"with": common, "without": [*common, "-p", "no:agentpatterns"]}
        times: dict[str, list[float]] = {"with": [], "without": []}
        cpu: dict[str, list[float]] = {"with": [], "without": []}
        for args in variants.values():
            run_pytest(args, root)
        for i in range(runs):
            order = ["with", "without"] if i % 2 == 0 else ["without", "with"]
            for name in order:
                run = run_pytest(variants[name], root)
                if run.items != items:
                    raise RuntimeError(f"expected {items} items, pytest said: {run.outcomes()}")
                times[name].append(run.seconds)
                cpu[name].append(run.cpu_seconds)
    return OverheadResult(
        items=items,
        with_plugin=median(times["with"]),
        without_plugin=median(times["without"]),
        ratio=Ratio.of(times["with"], times["without"]),
        best_of=min(times["with"]) / min(times["without"]),
        cpu_ratio=Ratio.of(cpu["with"], cpu["without"]),
    )
