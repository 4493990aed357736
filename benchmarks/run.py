"""Run the performance benchmarks, print one table and write it to docs/performance.md.

Every figure is a ratio (or rate) measured side by side in this one run, variants
interleaved and repeated, medians taken, so it holds on a small, noisy machine. Run on
demand, never from the test suite::

    python benchmarks/run.py            # everything, about four minutes
    python benchmarks/run.py --quick    # a smoke run with small sizes; writes nothing
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import fanout
import machine
import overhead
import replay_cost
import throughput
from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
REPLAY_GOAL = 1.5
FANOUT_GOAL = 1.1
OVERHEAD_GOAL = 1.10


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    figure: str
    result: str
    goal: str
    met: str
    details: str

    def cells(self) -> list[str]:
        return [self.figure, self.result, self.goal, self.met, self.details]


HEADERS = ["figure", "result", "goal", "met", "details"]


def _met(value: float, goal: float) -> str:
    return "yes" if value <= goal else "**no**"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f} ms"


def replay_rows(args: argparse.Namespace, notes: list[str]) -> list[Row]:
    """Figure 1 at every cassette size."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="replay-cost-") as tmp:
        for position, size in enumerate(args.sizes):
            vcrpy_calls = max(2, min(args.calls, args.vcrpy_budget // size))
            vcrpy_rounds = args.rounds if size <= 1000 else min(args.rounds, args.vcrpy_rounds)
            _progress(f"figure 1: replay cost at {size:,} interactions")
            result = replay_cost.measure_size(
                size,
                Path(tmp),
                rounds=args.rounds,
                calls=args.calls,
                vcrpy_calls=vcrpy_calls,
                vcrpy_rounds=vcrpy_rounds,
                warm_up=position == 0,
            )
            plugin, vcrpy = result.vs_floor["plugin"], result.vs_floor["vcrpy"]
            per_call, load = result.per_call, result.load
            rows.append(
                Row(
                    f"1. replay per call, {size:,}-interaction cassette: plugin / floor",
                    plugin.text(),
                    f"≤ {REPLAY_GOAL}x",
                    _met(plugin.median, REPLAY_GOAL),
                    f"plugin {_us(per_call['plugin'])}, floor {_us(per_call['floor'])} per "
                    f"call ({args.calls} calls a round); cassette open {_ms(load['plugin'])}",
                )
            )
            rows.append(
                Row(
                    f"1. replay per call, {size:,}-interaction cassette: vcrpy / floor",
                    vcrpy.text(),
                    "(reference)",
                    "",
                    f"vcrpy {_us(per_call['vcrpy'])} per call ({vcrpy_calls} calls a round); "
                    f"cassette open {_ms(load['vcrpy'])}",
                )
            )
            if vcrpy_calls < args.calls or vcrpy_rounds < args.rounds:
                notes.append(
                    f"At {size:,} interactions stock vcrpy was measured on {vcrpy_calls} calls "
                    f"in each of {vcrpy_rounds} rounds (the plugin and the floor: {args.calls} "
                    f"calls in each of {args.rounds}): one vcrpy call scans the whole cassette."
                )
    return rows


def fanout_row(args: argparse.Namespace) -> Row:
    """Figure 2."""
    _progress("figure 2: fan-out efficiency")
    result = fanout.measure(args.fanout_cases, latency=args.fanout_latency)
    return Row(
        f"2. parallel(n={result.width}) repetition / single repetition, "
        f"{result.latency * 1e3:.0f} ms model, recording",
        result.vs_single.text(),
        f"≤ {FANOUT_GOAL}x",
        _met(result.vs_single.median, FANOUT_GOAL),
        f"parallel {_ms(result.parallel)}, single {_ms(result.single)} "
        f"({result.vs_nominal:.2f}x the model's latency); plain threads and the SDK, no "
        f"plugin: {result.raw_threads.text()}",
    )


def overhead_row(args: argparse.Namespace) -> Row:
    """Figure 3."""
    _progress("figure 3: plugin overhead on a plain suite")
    result = overhead.measure(args.overhead_items, args.overhead_runs)
    return Row(
        f"3. {result.items:,} trivial items: with plugin / -p no:agentpatterns",
        result.ratio.text(),
        f"≤ {OVERHEAD_GOAL:.2f}x",
        _met(result.ratio.median, OVERHEAD_GOAL),
        f"with {result.with_plugin:.2f} s, without {result.without_plugin:.2f} s (median "
        f"session wall time); best of each: {result.best_of:.2f}x; CPU time: "
        f"{result.cpu_ratio.text()}",
    )


def throughput_rows(args: argparse.Namespace, notes: list[str]) -> list[Row]:
    """Figure 4."""
    _progress("figure 4: suite throughput")
    result = throughput.measure(
        ROOT / "example_suite",
        args.suite_runs,
        synthetic=args.synthetic_suite,
        cases=args.synthetic_cases,
        repeat=args.synthetic_repeat,
    )
    outcomes = ", ".join(f"{n} {word}" for word, n in result.outcomes.items())
    notes.append(f"Figure 4 replayed {result.suite}: {result.items} items ({outcomes}).")
    if result.items_per_second["-n 2"] < result.items_per_second["-n 0"]:
        notes.append(
            f"-n 2 was slower than -n 0 here: its sessions took {result.cpu_seconds['-n 2']:.1f} "
            f"s of CPU against {result.cpu_seconds['-n 0']:.1f} s (each worker starts Python, "
            f"imports the plugin and the SDKs and collects the suite), on {machine.cores()} "
            "cores."
        )
    return [
        Row(
            f"4. replay throughput, {name}",
            f"{result.items_per_second[name]:.1f} items/s",
            "",
            "",
            f"{result.items} items in {result.seconds[name]:.2f} s, CPU "
            f"{result.cpu_seconds[name]:.2f} s (medians of {result.runs} sessions, start-up "
            "and collection included)",
        )
        for name in result.seconds
    ]


def _progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def render_markdown(
    machine_rows: Sequence[tuple[str, str]], table: str, notes: Sequence[str], command: str
) -> str:
    """docs/performance.md: what ran where, the table, and the notes of this run."""
    machine_table = tabulate(machine_rows, headers=["machine", ""], tablefmt="github")
    lines = [
        "# Performance",
        "",
        "Generated by `benchmarks/run.py`; do not edit by hand. Each figure is a ratio or a rate",
        "measured side by side in one run (variants interleaved, repeated, medians taken; the",
        "range after a ratio is the lowest and highest round), so it holds on a small, noisy",
        "machine. `benchmarks/README.md` says what each figure measures and how to rerun it.",
        "",
        f"Command: `{command}`",
        "",
        machine_table,
        "",
        "## Results",
        "",
        table,
        "",
    ]
    if notes:
        lines += ["## Notes", "", *[f"- {note}" for note in notes], ""]
    return "\n".join(lines)


def _old(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])

    def sizes(text: str) -> list[int]:
        try:
            values = [int(part.replace("_", "")) for part in text.split(",") if part]
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
        if not values or min(values) < 1:
            raise argparse.ArgumentTypeError("sizes must be positive integers")
        return values

    figure = parser.add_argument_group("what to run")
    figure.add_argument("--only", type=sizes, default=[1, 2, 3, 4], help="figures to run, e.g. 1,3")
    figure.add_argument(
        "--quick", action="store_true", help="small sizes for a smoke run; implies --no-write"
    )
    figure.add_argument(
        "--no-write", action="store_true", help="print the table, leave docs/ alone"
    )
    figure.add_argument("--output", type=Path, default=ROOT / "docs" / "performance.md")
    one = parser.add_argument_group("1. replay cost per call")
    one.add_argument("--sizes", type=sizes, default=[10, 1000, 10000], help="cassette sizes")
    one.add_argument("--rounds", type=int, default=7, help="rounds per size")
    one.add_argument("--calls", type=int, default=200, help="calls per variant and round")
    one.add_argument(
        "--vcrpy-budget",
        type=int,
        default=20000,
        help="vcrpy gets max(2, min(--calls, BUDGET // size)) calls a round",
    )
    one.add_argument(
        "--vcrpy-rounds", type=int, default=2, help="vcrpy's rounds at sizes above 1,000"
    )
    two = parser.add_argument_group("2. fan-out")
    two.add_argument("--fanout-cases", type=int, default=20, help="repetitions per pattern")
    two.add_argument("--fanout-latency", type=float, default=0.2, help="model latency (s)")
    three = parser.add_argument_group("3. plugin overhead")
    three.add_argument("--overhead-items", type=int, default=1000)
    three.add_argument("--overhead-runs", type=int, default=5, help="sessions per variant")
    four = parser.add_argument_group("4. suite throughput")
    four.add_argument("--suite-runs", type=int, default=3, help="sessions per worker count")
    four.add_argument(
        "--synthetic-suite",
        action="store_true",
        help="use the synthetic suite even if example_suite/ exists",
    )
    four.add_argument("--synthetic-cases", type=int, default=40)
    four.add_argument("--synthetic-repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if args.quick:
        args.no_write = True
        args.sizes, args.rounds, args.calls = [10, 100], 3, 30
        args.fanout_cases, args.overhead_items, args.overhead_runs = 3, 200, 2
        args.suite_runs, args.synthetic_suite, args.synthetic_cases = 1, True, 6
        args.synthetic_repeat = 2
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = machine.load()
    rows: list[Row] = []
    notes: list[str] = []
    if 1 in args.only:
        rows += replay_rows(args, notes)
    if 2 in args.only:
        rows.append(fanout_row(args))
    if 3 in args.only:
        rows.append(overhead_row(args))
    if 4 in args.only:
        rows += throughput_rows(args, notes)
    notes.append(f"The whole run took {time.perf_counter() - started:.0f} s.")
    machine_rows = machine.describe(load_before)
    table = tabulate([r.cells() for r in rows], headers=HEADERS, tablefmt="github")
    print(tabulate(machine_rows, tablefmt="plain"))
    print()
    print(table)
    for note in notes:
        print(f"- {note}")
    if not args.no_write:
        command = shlex.join(["python", "benchmarks/run.py", *argv])
        args.output.parent.mkdir(parents=True, exist_ok=True)
        text = render_markdown(machine_rows, table, notes, command)
        # Sections other scripts generate (benchmarks/speed.py) are kept as they are.
        marked = r"<!-- (\w+):begin -->.*?<!-- \1:end -->"
        blocks = [m.group(0) for m in re.finditer(marked, _old(args.output), re.S)]
        text += "".join(f"\n{block}\n" for block in blocks)
        args.output.write_text(text)
        print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
