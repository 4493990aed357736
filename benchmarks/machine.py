"""The machine a benchmark ran on, so every figure in docs/performance.md is dated and placed."""

from __future__ import annotations

import datetime
import os
import platform
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "pytest-agentpatterns",
    "pytest",
    "pytest-xdist",
    "vcrpy",
    "anthropic",
    "httpx2",
    "PyYAML",
)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or what ``platform`` knows elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cores() -> int:
    """CPUs this process may run on (what xdist and the timings actually get)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def versions() -> dict[str, str]:
    """Installed versions of the packages the figures depend on."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def load() -> str:
    """The 1, 5 and 15 minute load averages: other work sharing the cores during the run."""
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def describe(load_before: str | None = None) -> list[tuple[str, str]]:
    """(label, value) rows describing this machine and run."""
    packages = ", ".join(f"{k} {v}" for k, v in versions().items())
    rows = [
        ("date", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", cpu_model()),
        ("cores", str(cores())),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("packages", packages),
    ]
    if load_before is not None:
        rows.append(("load average (1, 5, 15 min)", f"{load_before} before, {load()} after"))
    return rows
