"""Adaptive runs (issue 12): whole simulated runs stopped by ``adaptive.decide``.

The scenario, stated once and not tuned: a test of 25 cases and 2 patterns (the baseline and
one candidate), binary outcomes, at most 10 repetitions, alpha 0.05,
``Settings.for_max(10, 0.05)`` (2 repetitions first, then rounds of about 2 per open case,
shared by spread: 5 looks when every case needs every round, more when the shares are
uneven). Each simulated run draws its own cases, as in ``benchmarks/planning.py``:
the baseline's accuracy on a case from Beta(3, 1) (mean 0.75: most cases easy, some hard,
as LLM task suites are), the candidate's the same case lifted on the logit scale by the lift
whose mean accuracy difference is the effect. Every round runs the allocated repetitions
under both patterns and calls :func:`pytest_agentpatterns.adaptive.decide`, until it stops.

- (a) no difference: the share of runs that call the equal pair different, with its 95%
  Clopper-Pearson interval (goal: at most alpha);
- (b) +0.15: the adaptive run's power (share decided "better") and mean repetitions, against
  the fixed design with the same power: every case at r repetitions, one test at alpha
  (:func:`pytest_agentpatterns.family.compare`), the smallest r whose simulated power is at
  least the adaptive power (goal: at least 30% fewer repetitions);
- (c) +0.05: too small to decide in 25 cases x 10; the share of runs that stop at "max".

(a) and (b) run ``--sims`` adaptive runs each (default 1,000), (c) and the fixed designs
(each r tried) half as many.

Repetitions are counted under both patterns (calls scale with them alike in both designs).
It writes its table into docs/performance.md between ``<!-- adaptive:begin -->`` and
``<!-- adaptive:end -->``::

    python benchmarks/adaptive.py               # about 10 minutes on 2 cores
    python benchmarks/adaptive.py --sims 100 --no-write
"""

from __future__ import annotations

import argparse
import datetime
import math
import re
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pytest_agentpatterns import adaptive, family

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- adaptive:begin -->", "<!-- adaptive:end -->"

CASES = 25
MAX_REPEAT = 10
ALPHA = 0.05
BASELINE, CANDIDATE = "single", "candidate"
SAVINGS_GOAL = 0.30


def world(rng: np.random.Generator, cases: int, lift: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-case accuracies of the baseline and the candidate (``benchmarks/planning.py``)."""
    base = np.clip(rng.beta(3.0, 1.0, cases), 0.02, 0.98)
    logit = np.log(base / (1 - base)) + lift
    return base, 1 / (1 + np.exp(-logit))


def lift_for(effect: float) -> float:
    """The logit lift whose mean accuracy difference is ``effect`` (bisection)."""
    if effect == 0:
        return 0.0
    base, _ = world(np.random.default_rng(12345), 400_000, 0.0)
    logit = np.log(base / (1 - base))
    low, high = 0.0, 10.0
    for _ in range(60):
        middle = (low + high) / 2
        if float(np.mean(1 / (1 + np.exp(-(logit + middle))) - base)) < effect:
            low = middle
        else:
            high = middle
    return (low + high) / 2


@dataclass(frozen=True)
class Run:
    """One simulated adaptive run: how it stopped and what it cost."""

    stop: str
    looks: int
    repetitions: int
    better: bool
    worse: bool
    first_only: int
    """Cases that ran no more than the first round."""


def adaptive_run(args: tuple[float, int, int]) -> Run:
    lift, seed, index = args
    rng = np.random.default_rng([seed, index, int(lift * 1000)])
    settings = adaptive.Settings.for_max(MAX_REPEAT, ALPHA)
    p_base, p_cand = world(rng, CASES, lift)
    names = [f"c{i:02d}" for i in range(CASES)]
    data: dict[str, dict[str, list[float]]] = {
        BASELINE: {c: [] for c in names},
        CANDIDATE: {c: [] for c in names},
    }
    add = dict.fromkeys(names, settings.first_round)
    previous: list[adaptive.Decision] = []
    while True:
        for i, case in enumerate(names):
            n = add.get(case, 0)
            data[BASELINE][case] += [float(x) for x in rng.random(n) < p_base[i]]
            data[CANDIDATE][case] += [float(x) for x in rng.random(n) < p_cand[i]]
        decision = adaptive.decide(data, BASELINE, previous, settings, seed=index, intervals=False)
        previous.append(decision)
        if decision.stop is not None:
            break
        add = dict(decision.allocation)
    look = decision.comparisons[0]
    estimate = look.estimate or 0.0
    return Run(
        decision.stop,
        decision.look,
        sum(len(v) for scores in data.values() for v in scores.values()),
        look.decided and estimate > 0,
        look.decided and estimate < 0,
        sum(len(v) <= settings.first_round for v in data[BASELINE].values()),
    )


def fixed_run(args: tuple[float, int, int, int]) -> bool:
    """The fixed design at ``r`` repetitions: does the summary's test call it "better"?

    The run's outcomes are drawn for the most repetitions any design takes and the first r
    are used, so every r is tested on common data."""
    lift, seed, index, r = args
    rng = np.random.default_rng([seed, index, int(lift * 1000), 1])
    p_base, p_cand = world(rng, CASES, lift)
    most = 2 * MAX_REPEAT
    base = rng.random((CASES, most)) < p_base[:, None]
    cand = rng.random((CASES, most)) < p_cand[:, None]
    baseline = {f"c{i:02d}": [float(x) for x in base[i, :r]] for i in range(CASES)}
    candidate = {f"c{i:02d}": [float(x) for x in cand[i, :r]] for i in range(CASES)}
    result = family.units(baseline, candidate).test(index).result()
    return result.min_p <= ALPHA and result.p <= ALPHA and result.estimate > 0


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    from scipy.stats import beta

    low = 0.0 if k == 0 else float(beta.ppf(0.025, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))
    return low, high


def _mean_se(values: list[int]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else 0.0


def _progress(message: str) -> None:
    print(f"[adaptive] {message}", file=sys.stderr, flush=True)


def simulate(pool: ProcessPoolExecutor, lift: float, sims: int, seed: int) -> list[Run]:
    jobs = [(lift, seed, i) for i in range(sims)]
    return list(pool.map(adaptive_run, jobs, chunksize=10))


def fixed_power(
    pool: ProcessPoolExecutor, lift: float, sims: int, seed: int, target: float
) -> tuple[int | None, dict[int, float]]:
    """The smallest r whose fixed design reaches ``target`` power, and the powers measured.

    Bisection over r from 1 to 2 x `MAX_REPEAT` (power grows with r; on common data it
    does so run by run but for the randomization draws)."""
    powers: dict[int, float] = {}

    def power(r: int) -> float:
        if r not in powers:
            jobs = [(lift, seed, i, r) for i in range(sims)]
            powers[r] = sum(pool.map(fixed_run, jobs, chunksize=10)) / sims
        return powers[r]

    low, high = 0, 2 * MAX_REPEAT
    if power(high) < target:
        return None, powers
    while high - low > 1:
        middle = (low + high) // 2
        if power(middle) >= target:
            high = middle
        else:
            low = middle
    return high, powers


def rows(sims: int, fixed_sims: int, seed: int, workers: int) -> tuple[list[str], list[str]]:
    table: list[str] = []
    notes: list[str] = []
    with ProcessPoolExecutor(workers) as pool:
        # (a) no difference
        start = time.perf_counter()
        null = simulate(pool, 0.0, sims, seed)
        wrong = sum(r.better or r.worse for r in null)
        low, high = clopper_pearson(wrong, sims)
        calls, calls_se = _mean_se([r.repetitions for r in null])
        rate = wrong / sims
        table.append(
            f"| (a) no difference | {sims:,} | rejection rate {rate:.3f} "
            f"[{low:.3f}, {high:.3f}] | ≤ {ALPHA:g} | {'yes' if rate <= ALPHA else '**no**'} | "
            f"{calls:.0f} ± {calls_se:.0f} repetitions of {2 * CASES * MAX_REPEAT} at most; "
            f"stopped: {_stops(null)}; mean looks {np.mean([r.looks for r in null]):.2f}; "
            f"{_first_only(null)} |"
        )
        _progress(f"(a) done in {time.perf_counter() - start:.0f} s")
        # (b) +0.15
        start = time.perf_counter()
        lift = lift_for(0.15)
        runs = simulate(pool, lift, sims, seed)
        power = sum(r.better for r in runs) / sims
        calls, calls_se = _mean_se([r.repetitions for r in runs])
        r_fixed, powers = fixed_power(pool, lift, fixed_sims, seed, power)
        if r_fixed is None:
            result = f"power {power:.3f}; no fixed design up to {2 * MAX_REPEAT} repetitions"
            met, saving_text = "**no**", "n/a"
        else:
            fixed_calls = 2 * CASES * r_fixed
            saving = 1 - calls / fixed_calls
            saving_text = f"{saving:.0%}"
            met = "yes" if saving >= SAVINGS_GOAL else "**no**"
            result = (
                f"saves {saving_text}: {calls:.0f} ± {calls_se:.0f} repetitions against "
                f"{fixed_calls} ({CASES} x {r_fixed}, both patterns)"
            )
        power_lo, power_hi = clopper_pearson(sum(r.better for r in runs), sims)
        shown = ", ".join(f"r={r}: {powers[r]:.3f}" for r in sorted(powers))
        table.append(
            f"| (b) +0.15 | {sims:,} adaptive, {fixed_sims:,} fixed | {result} | "
            f"≥ {SAVINGS_GOAL:.0%} | {met} | adaptive power {power:.3f} [{power_lo:.3f}, "
            f"{power_hi:.3f}], stopped: {_stops(runs)}, mean looks "
            f"{np.mean([r.looks for r in runs]):.2f}, {_first_only(runs)}; fixed power {shown} |"
        )
        _progress(f"(b) done in {time.perf_counter() - start:.0f} s")
        # (c) +0.05
        start = time.perf_counter()
        few = max(1, sims // 2)
        small = simulate(pool, lift_for(0.05), few, seed)
        at_max = sum(r.stop == "max" for r in small) / few
        calls, calls_se = _mean_se([r.repetitions for r in small])
        table.append(
            f"| (c) +0.05 | {few:,} | stopped at max in {at_max:.0%} | (reported) |  | "
            f"power {sum(r.better for r in small) / few:.3f}; stopped: {_stops(small)}; "
            f"{calls:.0f} ± {calls_se:.0f} repetitions; {_first_only(small)} |"
        )
        _progress(f"(c) done in {time.perf_counter() - start:.0f} s")
    notes.append(
        f"Logit lifts: {lift_for(0.15):.3f} for +0.15, {lift_for(0.05):.3f} for +0.05 (mean "
        "accuracy difference over the Beta(3, 1) cases)."
    )
    notes.append(
        "Fixed design: every case at r repetitions under both patterns, the summary's paired "
        f"sign-flip test at {ALPHA:g}; the smallest r (bisection over 1 to {2 * MAX_REPEAT}, "
        "on common simulated data) whose power is at least the adaptive power."
    )
    notes.append(
        "Repetitions are counted under both patterns (± one standard error of the mean). "
        "Cases that stay at the first round's repetitions are those whose outcomes did not "
        "vary under either pattern (or that the rounds never reached before the run stopped)."
    )
    return table, notes


def _first_only(runs: list[Run]) -> str:
    share = np.mean([r.first_only for r in runs])
    return f"{share:.1f} of {CASES} cases never past the first round"


def _stops(runs: list[Run]) -> str:
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.stop] = counts.get(r.stop, 0) + 1
    return ", ".join(f"{k} {v / len(runs):.0%}" for k, v in sorted(counts.items()))


def render(table: list[str], notes: list[str], command: str, seconds: float) -> str:
    import platform

    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Adaptive runs (issue 12)",
        "",
        f"Generated by `benchmarks/adaptive.py` on {now} (Python "
        f"{platform.python_version()}, {seconds:.0f} s); command: `{command}`. Do not edit by "
        "hand.",
        "",
        f"Scenario: a test of {CASES} cases and 2 patterns, binary outcomes, at most "
        f"{MAX_REPEAT} repetitions, alpha {ALPHA:g}, `Settings.for_max({MAX_REPEAT}, "
        f"{ALPHA:g})` (2 repetitions first, then rounds of about 2 per open case shared by "
        "spread, until every case is settled or at the maximum); each run draws its cases' "
        "baseline accuracies from Beta(3, 1) (mean 0.75) and "
        "lifts them on the logit scale to the stated mean difference (docs/statistics.md, "
        '"Adaptive runs: the stopping rule").',
        "",
        "| scenario | runs | result | goal | met | details |",
        "|---|---|---|---|---|---|",
        *table,
        "",
        *(f"- {n}" for n in notes),
    ]
    return "\n".join(lines)


def write(path: Path, body: str) -> None:
    text = path.read_text()
    block = f"{BEGIN}\n{body.strip()}\n{END}"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--sims", type=int, default=1000, help="runs of (a) and (b); (c) runs half (default 1000)"
    )
    parser.add_argument(
        "--fixed-sims", type=int, default=None, help="fixed-design runs per r (default: --sims/2)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    start = time.perf_counter()
    fixed = args.fixed_sims or max(1, args.sims // 2)
    table, notes = rows(args.sims, fixed, args.seed, args.workers)
    command = "python benchmarks/adaptive.py" + (
        " " + shlex.join(sys.argv[1:]) if argv is None and sys.argv[1:] else ""
    )
    body = render(table, notes, command, time.perf_counter() - start)
    print(body)
    if not args.no_write:
        write(ROOT / "docs" / "performance.md", body)


if __name__ == "__main__":
    main()
