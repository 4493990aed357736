"""Replay speed where users feel it (issue 14): every figure side by side in one run.

Sections (``--only`` picks some):

- ``process``: whole replay processes, interpreter start-up and cassette open included,
  plugin against the SDK floor (``httpx2.MockTransport``), at 10, 1,000 and 10,000
  interactions; also the time inside the process (imports, open, calls) and peak memory;
- ``open``: opening a 10,000-interaction cassette against ``json.loads`` of the same file;
- ``items``: 1,000 trivial items that request ``agent`` against the same tests without the
  plugin (a plain ``agent`` fixture), and against plain functions (CPU time of whole pytest
  sessions);
- ``suite``: replaying ``example_suite/`` with this tree against ``main`` as issue 14 found
  it (``BASELINE``; its package exported with ``git archive`` and put first on
  ``PYTHONPATH``);
- ``fanout``: a ``parallel(n=64)`` repetition against a ``single`` one (``fanout.py``);
- ``xdist``: replaying ``example_suite/`` with ``-n 0``, ``-n 2`` and ``-n 4``.

Variants are interleaved and repeated; a ratio is the median of per-round ratios, with the
lowest and highest round. It writes its sections of docs/performance.md and docs/xdist.md
between ``<!-- speed:begin -->`` and ``<!-- speed:end -->`` markers::

    python benchmarks/speed.py            # everything, about ten minutes on 2 cores
    python benchmarks/speed.py --quick    # small sizes, prints only
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import fanout
import machine
import replay_cost
from measure import Ratio, median, pytest_env, run_pytest
from tabulate import tabulate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BEGIN, END = "<!-- speed:begin -->", "<!-- speed:end -->"
SECTIONS = ("process", "open", "items", "suite", "fanout", "xdist")
BASELINE = "f76dc9a"
"""What the example suite is measured against: ``main`` when issue 14 was filed."""


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    figure: str
    result: str
    goal: str
    met: str
    details: str


def _met(ratio: Ratio, goal: float) -> str:
    return "yes" if ratio.median <= goal else "**no**"


def _progress(message: str) -> None:
    print(f"[speed] {message}", file=sys.stderr, flush=True)


# Whole processes -------------------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    """One child process: wall and CPU seconds, peak memory, seconds inside."""

    wall: float
    cpu: float
    max_rss_mb: float
    inside: float


def run_process(variant: str, size: int, cassette: Path) -> Process:
    command = [sys.executable, str(HERE / "replay_process.py"), variant, str(size), str(cassette)]
    started = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=HERE, env=pytest_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = child.stdout.read(), child.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"{' '.join(command)} exited {child.returncode}:\n{err.decode()}")
    said = json.loads(out.decode().strip().splitlines()[-1])
    return Process(wall, usage.ru_utime + usage.ru_stime, said["peak_mb"], said["inside"])


def process_rows(sizes: Sequence[int], rounds: int, notes: list[str]) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="speed-process-") as tmp:
        for size in sizes:
            _progress(f"process: {size:,} interactions")
            cassette = Path(tmp) / f"plugin-{size}.json"
            replay_cost.write_plugin_cassette(cassette, size)
            runs: dict[str, list[Process]] = {"plugin": [], "floor": []}
            for variant in runs:
                run_process(variant, size, cassette)  # warm the OS caches and bytecode
            for index in range(rounds):
                order = ["plugin", "floor"] if index % 2 == 0 else ["floor", "plugin"]
                for variant in order:
                    runs[variant].append(run_process(variant, size, cassette))
            plugin, floor = runs["plugin"], runs["floor"]
            cpu = Ratio.of([p.cpu for p in plugin], [f.cpu for f in floor])
            wall = Ratio.of([p.wall for p in plugin], [f.wall for f in floor])
            inside = Ratio.of([p.inside for p in plugin], [f.inside for f in floor])
            memory = Ratio.of([p.max_rss_mb for p in plugin], [f.max_rss_mb for f in floor])
            rows.append(
                Row(
                    f"whole replay process, {size:,} interactions: plugin / floor (CPU)",
                    cpu.text(),
                    "≤ 1.5x",
                    _met(cpu, 1.5),
                    f"CPU plugin {median([p.cpu for p in plugin]):.2f} s, floor "
                    f"{median([f.cpu for f in floor]):.2f} s (start-up included); wall time: "
                    f"{wall.text()}; inside the process (imports, open, calls): {inside.text()}",
                )
            )
            if size == max(sizes):
                rows.append(
                    Row(
                        f"peak memory, {size:,} interactions: plugin / floor",
                        memory.text(),
                        "≤ 1.3x",
                        _met(memory, 1.3),
                        f"plugin {median([p.max_rss_mb for p in plugin]):.0f} MB, floor "
                        f"{median([f.max_rss_mb for f in floor]):.0f} MB (peak RSS of the "
                        "process, VmHWM)",
                    )
                )
    notes.append(
        "Whole replay processes: `benchmarks/replay_process.py` (plugin: the cassette opened as "
        "for an item in `--patterns-record=none` mode, every call replayed through the "
        "Anthropic SDK; floor: the same calls answered by `httpx2.MockTransport`, the plugin "
        "not imported)."
    )
    return rows


# Cassette open -----------------------------------------------------------------------------


def open_rows(size: int, rounds: int) -> list[Row]:
    from pytest_agentpatterns import transport
    from pytest_agentpatterns.cassettes import open_cassette

    _progress(f"open: {size:,} interactions")
    opens: list[float] = []
    loads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="speed-open-") as tmp:
        path = Path(tmp) / "cassette.json"
        replay_cost.write_plugin_cassette(path, size)
        transport.install()
        try:

            def plugin() -> None:
                with open_cassette(path, "none"):
                    pass

            def floor() -> None:
                json.loads(path.read_bytes())

            timed: dict[str, Callable[[], None]] = {"plugin": plugin, "json": floor}
            for function in timed.values():
                function()
            for index in range(rounds):
                for name in ("plugin", "json") if index % 2 == 0 else ("json", "plugin"):
                    started = time.perf_counter()
                    timed[name]()
                    (opens if name == "plugin" else loads).append(time.perf_counter() - started)
        finally:
            transport.uninstall()
    ratio = Ratio.of(opens, loads)
    return [
        Row(
            f"cassette open, {size:,} interactions: open_cassette / json.loads",
            ratio.text(),
            "≤ 3x",
            _met(ratio, 3.0),
            f"open {median(opens) * 1e3:,.0f} ms, json.loads {median(loads) * 1e3:,.0f} ms "
            "(read, parse, check, index, patch; closing included)",
        )
    ]


# Agent items -------------------------------------------------------------------------------


FIXTURE_HEAD = """import pytest


class Task:
    def __init__(self, propose):
        self.propose = propose


class Runner:
    def run(self, task, x):
        return task.propose(x)


@pytest.fixture
def agent():
    return Runner()
"""


def write_item_suites(root: Path, items: int) -> dict[str, Path]:
    """``items`` trivial tests that run a one-step task through ``agent``; the same test text
    with a plain ``agent`` fixture that calls the step (``fixture``); and the step called
    directly in plain test functions (``plain``). 100 to a module."""
    dirs = {name: root / name for name in ("agent", "fixture", "plain")}
    for where in dirs.values():
        where.mkdir()
    step = "def propose(x):\n    return x + 1\n"
    for module in range(0, items, 100):
        count = min(100, items - module)
        texts = {
            "agent": f"from pytest_agentpatterns import Task\n\n{step}\n\n"
            'task = Task(name="trivial", propose=propose)\n',
            "fixture": f"{FIXTURE_HEAD}\n\n{step}\n\ntask = Task(propose)\n",
            "plain": step,
        }
        for i in range(module, module + count):
            same = f"\n\ndef test_{i}(agent):\n    assert agent.run(task, {i}) == {i + 1}\n"
            texts["agent"] += same
            texts["fixture"] += same
            texts["plain"] += f"\n\ndef test_{i}():\n    assert propose({i}) == {i + 1}\n"
        for name, text in texts.items():
            (dirs[name] / f"test_{name}_{module // 100:03d}.py").write_text(text)
    return dirs


def item_rows(items: int, runs: int, notes: list[str]) -> list[Row]:
    _progress(f"items: {items:,} trivial agent items")
    names = ("agent", "fixture", "plain")
    cpu: dict[str, list[float]] = {name: [] for name in names}
    wall: dict[str, list[float]] = {name: [] for name in names}
    env = pytest_env(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    with tempfile.TemporaryDirectory(prefix="speed-items-") as tmp:
        dirs = write_item_suites(Path(tmp), items)
        flags = {"agent": ["-q", "-p", "pytest_agentpatterns.plugin"], "fixture": ["-q"]}
        for name in names:
            run_pytest(flags.get(name, ["-q"]), dirs[name], env=env)
        for index in range(runs):
            for name in names if index % 2 == 0 else names[::-1]:
                run = run_pytest(flags.get(name, ["-q"]), dirs[name], env=env)
                if run.outcomes() != {"passed": items}:
                    raise RuntimeError(f"{name}: {run.outcomes()}")
                cpu[name].append(run.cpu_seconds)
                wall[name].append(run.seconds)
    ratio = Ratio.of(cpu["agent"], cpu["fixture"])
    plain = Ratio.of(cpu["agent"], cpu["plain"])
    extra = (median(cpu["agent"]) - median(cpu["fixture"])) / items
    notes.append(
        "Agent items: pytest with `PYTEST_DISABLE_PLUGIN_AUTOLOAD=1` (only this plugin loaded, "
        "with `-p pytest_agentpatterns.plugin`), so no other installed plugin dilutes the ratio; "
        "the summary table printed for every test is part of the cost. The same work without "
        "the plugin is the same test text (`assert agent.run(task, i) == i + 1`) with a plain "
        "`agent` fixture whose `run` calls the step: pytest's own cost for a fixture and for "
        "rewriting that assert is then on both sides. Plain functions calling the step "
        "directly (`assert propose(i) == i + 1`) are shown for reference."
    )
    return [
        Row(
            f"{items:,} trivial agent items: CPU with the plugin / the same tests without it",
            ratio.text(),
            "≤ 1.5x",
            _met(ratio, 1.5),
            f"CPU {median(cpu['agent']):.2f} s against {median(cpu['fixture']):.2f} s "
            f"({extra * 1e3:.2f} ms more per item); wall {median(wall['agent']):.2f} s against "
            f"{median(wall['fixture']):.2f} s; against plain functions "
            f"({median(cpu['plain']):.2f} s CPU): {plain.text()}",
        )
    ]


# The example suite -------------------------------------------------------------------------


def _copy_suite(root: Path) -> Path:
    suite = root / "example_suite"
    shutil.copytree(ROOT / "example_suite", suite, ignore=shutil.ignore_patterns("__pycache__"))
    return suite


def _export_main(root: Path) -> tuple[Path, str]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", BASELINE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    target = root / "main"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", BASELINE, "pytest_agentpatterns"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target, commit


def _imported_from(env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", "import pytest_agentpatterns as p; print(p.__file__)"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


REPLAY = ["-q", "-p", "no:randomly", "--patterns-record=none"]


def suite_rows(runs: int, notes: list[str]) -> list[Row]:
    _progress("suite: example_suite/ against main")
    seconds: dict[str, list[float]] = {"branch": [], "main": []}
    cpu: dict[str, list[float]] = {"branch": [], "main": []}
    startup: list[float] = []
    with tempfile.TemporaryDirectory(prefix="speed-suite-") as tmp:
        suite = _copy_suite(Path(tmp))
        exported, commit = _export_main(Path(tmp))
        envs = {"branch": pytest_env(), "main": pytest_env(PYTHONPATH=str(exported))}
        if not _imported_from(envs["main"], suite).startswith(str(exported)):
            raise RuntimeError("main's export is not what the child imports")
        items = 0
        for env in envs.values():
            items = run_pytest([*REPLAY, "-p", "no:xdist"], suite, env=env).items
        for index in range(runs):
            for name in ("branch", "main") if index % 2 == 0 else ("main", "branch"):
                run = run_pytest([*REPLAY, "-p", "no:xdist"], suite, env=envs[name])
                seconds[name].append(run.seconds)
                cpu[name].append(run.cpu_seconds)
            startup.append(run_pytest(COLLECT, suite, env=envs["branch"]).cpu_seconds)
        calls = _interactions(suite / "cassettes")
    ratio = Ratio.of(seconds["branch"], seconds["main"])
    cpu_ratio = Ratio.of(cpu["branch"], cpu["main"])
    notes.append(
        f"Example suite: `pytest {' '.join(REPLAY)} -p no:xdist` in a copy of example_suite/ "
        f"({items} items), this tree against `main` at {commit} (whose package was put first "
        "on `PYTHONPATH`)."
    )
    return [
        Row(
            "example-suite replay wall time: this tree / main",
            ratio.text(),
            "≤ 0.6x",
            _met(ratio, 0.6),
            f"{median(seconds['branch']):.2f} s against {median(seconds['main']):.2f} s "
            f"(main at {commit}); CPU: {cpu_ratio.text()}; of this tree's "
            f"{median(cpu['branch']):.2f} s CPU, start-up and collection alone "
            f"(`--collect-only`) take {median(startup):.2f} s, which leaves "
            f"{(median(cpu['branch']) - median(startup)) / calls * 1e3:.2f} ms per interaction "
            f"replayed ({calls:,} in its cassettes; items' own work included)",
        )
    ]


def _interactions(cassettes: Path) -> int:
    """How many interactions the suite's cassettes hold."""
    return sum(
        len(json.loads(path.read_text()).get("interactions", []))
        for path in cassettes.rglob("*.json")
    )


@dataclass(frozen=True)
class Xdist:
    """Median wall times per ``-n``, and the CPU of what every worker repeats."""

    walls: dict[str, float]
    startup_cpu: float
    """Start-up and collection alone (``--collect-only``): what each worker does again."""
    replay_cpu: float
    """The whole ``-n 0`` replay."""


COLLECT = ["--collect-only", "-q", "-p", "no:randomly", "--patterns-record=none", "-p", "no:xdist"]


def xdist_rows(runs: int, notes: list[str]) -> tuple[list[Row], Xdist]:
    _progress("xdist: example_suite/ with -n 0, 2, 4")
    workers = ("0", "2", "4")
    seconds: dict[str, list[float]] = {n: [] for n in workers}
    cpu: dict[str, list[float]] = {n: [] for n in workers}
    startup: list[float] = []
    with tempfile.TemporaryDirectory(prefix="speed-xdist-") as tmp:
        suite = _copy_suite(Path(tmp))
        for n in workers:
            run_pytest([*REPLAY, "-n", n], suite)
        for index in range(runs):
            order = workers if index % 2 == 0 else workers[::-1]
            for n in order:
                run = run_pytest([*REPLAY, "-n", n], suite)
                seconds[n].append(run.seconds)
                cpu[n].append(run.cpu_seconds)
            startup.append(run_pytest(COLLECT, suite).cpu_seconds)
    rows = []
    for n in ("2", "4"):
        ratio = Ratio.of(seconds[n], seconds["0"])
        rows.append(
            Row(
                f"example-suite replay, -n {n} / -n 0 (wall time)",
                ratio.text(),
                "(reported)",
                "",
                f"-n {n}: {median(seconds[n]):.2f} s wall, {median(cpu[n]):.2f} s CPU; -n 0: "
                f"{median(seconds['0']):.2f} s wall, {median(cpu['0']):.2f} s CPU; start-up "
                f"and collection, which each worker repeats: {median(startup):.2f} s CPU",
            )
        )
    notes.append(
        f"xdist: `pytest {' '.join(REPLAY)} -n N` on {machine.cores()} cores; start-up and "
        f"collection: `pytest {' '.join(COLLECT)}`."
    )
    walls = {f"-n {n}": median(seconds[n]) for n in workers}
    return rows, Xdist(walls, median(startup), median(cpu["0"]))


def fanout_rows(cases: int, width: int) -> list[Row]:
    _progress(f"fanout: parallel(n={width})")
    result = fanout.measure(cases, latency=0.2, width=width)
    return [
        Row(
            f"parallel(n={width}) repetition / single repetition, 200 ms model, recording",
            result.vs_single.text(),
            "≤ 1.2x",
            _met(result.vs_single, 1.2),
            f"parallel {result.parallel * 1e3:.0f} ms, single {result.single * 1e3:.0f} ms; "
            f"{width} plain threads and the SDK, no plugin: {result.raw_threads.text()}; the "
            f"SDK alone takes {result.sdk_cpu * 1e3:.1f} ms of CPU per call here, so {width} "
            f"calls at once need {width * result.sdk_cpu * 1e3:.0f} ms of CPU in one process, "
            f"most of it under one GIL: {width * result.sdk_cpu / result.latency:.2f}x the "
            "model's latency, to be done within the 1.2x the goal allows for the wait and the "
            "CPU together",
        )
    ]


# Output ------------------------------------------------------------------------------------


def replace_section(path: Path, body: str) -> None:
    """Put ``body`` between the speed markers of ``path`` (appended when it has none)."""
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{body.strip()}\n{END}"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


PREFIXES = {
    "process": ("whole replay process", "peak memory", "Whole replay processes"),
    "open": ("cassette open",),
    "items": ("1,000 trivial", "Agent items"),
    "suite": ("example-suite replay wall", "Example suite"),
    "fanout": ("parallel(",),
    "xdist": ("example-suite replay, -n", "xdist"),
}


def _section_of(text: str) -> str | None:
    for section, prefixes in PREFIXES.items():
        if text.startswith(prefixes):
            return section
    return None


def earlier(path: Path, rerun: Sequence[str]) -> tuple[list[Row], list[str], list[str]]:
    """The rows, notes and header lines of sections an earlier run wrote and this one does
    not re-run (``--only``), so a partial run updates only what it measured."""
    text = path.read_text() if path.exists() else ""
    found = re.search(re.escape(BEGIN) + "(.*?)" + re.escape(END), text, re.S)
    if not found:
        return [], [], []
    rows, notes, headers = [], [], []
    for line in found.group(1).splitlines():
        if line.startswith("| ") and not line.startswith("| figure"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            if len(cells) == 5 and _section_of(cells[0]) not in (*rerun, None):
                rows.append(Row(*cells))
        elif line.startswith("- ") and _section_of(line[2:]) not in (*rerun, None):
            notes.append(line[2:])
        elif line.startswith("Generated by"):
            headers.append(line)
    return rows, notes, headers


def _ordered(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: SECTIONS.index(_section_of(r.figure) or "xdist"))


def header(command: str) -> str:
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Generated by `benchmarks/speed.py` on {date} ({machine.cpu_model()}, "
        f"{machine.cores()} cores, load average {machine.load()} at the end); command: "
        f"`{command}`. Do not edit by hand."
    )


def performance_section(
    rows: list[Row], notes: list[str], command: str, before: Sequence[str] = ()
) -> str:
    table = tabulate(
        [[r.figure, r.result, r.goal, r.met, r.details] for r in rows],
        headers=["figure", "result", "goal", "met", "details"],
        tablefmt="github",
    )
    bullets = "\n".join(f"- {n}" for n in notes)
    heads = "\n\n".join([*(f"{h} (other sections)" for h in before), header(command)])
    return f"## Replay speed (issue 14)\n\n{heads}\n\n{table}\n\n{bullets}\n"


def xdist_section(xdist: Xdist, command: str) -> str:
    walls = xdist.walls
    fastest = min(walls, key=lambda k: walls[k])
    table = tabulate(
        [[k, f"{v:.2f} s", f"{v / walls['-n 0']:.2f}x"] for k, v in walls.items()],
        headers=["example-suite replay", "wall time (median)", "against -n 0"],
        tablefmt="github",
    )
    advice = "On this machine the fastest was " + (
        "`-n 0`: each worker starts Python, imports the plugin and the SDKs and collects "
        "the suite again, which costs more than the replay it takes over."
        if fastest == "-n 0"
        else f"`{fastest}`."
    )
    advice += (
        f" Start-up and collection alone (`pytest --collect-only`) took {xdist.startup_cpu:.2f} s "
        f"of CPU, which every worker repeats, against {xdist.replay_cpu:.2f} s for the whole "
        "replay without `-n`; most of it is importing the SDKs the tests import."
    )
    return (
        "## When to use `-n`\n\n"
        f"{header(command)}\n\n{table}\n\n{advice}\n\n"
        "- **Recording live** (`--patterns-record=new_episodes` or `all` against an API): use "
        "`-n`. Items wait on the network; workers overlap the waits, and the budget and call cap "
        "stay one for the run (above).\n"
        "- **Replaying from cassettes**: a replayed call costs about a millisecond or less, so "
        "workers pay off only when the suite's replay time is several times one worker's "
        "start-up, and never with more workers than cores; "
        + (
            "for suites like the example suite, run without `-n`.\n"
            if fastest == "-n 0"
            else f"for suites like the example suite, `{fastest}` took "
            f"{walls[fastest] / walls['-n 0']:.2f}x the wall time of `-n 0` here (and more "
            "CPU: each worker's start-up comes on top).\n"
        )
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="small sizes, prints only")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of in-process figures")
    parser.add_argument("--runs", type=int, default=3, help="pytest sessions per variant")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    args.sizes = [10, 100] if args.quick else [10, 1000, 10000]
    args.items = 200 if args.quick else 1000
    args.width = 8 if args.quick else 64
    args.cases = 3 if args.quick else 8
    if args.quick:
        args.no_write = True
        args.rounds, args.runs = 2, 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join(["python", "benchmarks/speed.py", *(argv or sys.argv[1:])])
    rows: list[Row] = []
    notes: list[str] = []
    xdist: Xdist | None = None
    if "process" in args.only:
        rows += process_rows(args.sizes, args.runs + 2, notes)
    if "open" in args.only:
        rows += open_rows(max(args.sizes), args.rounds)
    if "items" in args.only:
        rows += item_rows(args.items, args.runs, notes)
    if "suite" in args.only:
        rows += suite_rows(args.runs, notes)
    if "fanout" in args.only:
        rows += fanout_rows(args.cases, args.width)
    if "xdist" in args.only:
        more, xdist = xdist_rows(args.runs, notes)
        rows += more
    before: list[str] = []
    if set(args.only) != set(SECTIONS) and not args.no_write:
        old_rows, old_notes, before = earlier(ROOT / "docs" / "performance.md", args.only)
        before = [h.removesuffix(" (other sections)") for h in before]
        before = [h for h in before if "--only" not in h] or before[:1]
        rows, notes = _ordered(old_rows + rows), old_notes + notes
    section = performance_section(rows, notes, command, before)
    print(section)
    if not args.no_write:
        replace_section(ROOT / "docs" / "performance.md", section)
        if xdist is not None:
            replace_section(ROOT / "docs" / "xdist.md", xdist_section(xdist, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
