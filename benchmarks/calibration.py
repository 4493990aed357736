"""Check the statistics' promises by simulation; print every grid, write docs/calibration.md.

The measured targets of "Statistics that decide" (issue 10), each on the plugin's own code:

1. coverage of the summary's 95% accuracy interval (`interval_coverage.py`);
2. within-test error control with equally accurate patterns, and the recommendation
   against the family table (`family_errors.py`);
3. CI gates on re-recorded runs: the run-level false-fail rate, the power to catch a real
   regression next to the power the gates report, and latency_p95 on a single case
   (`gate_errors.py`, runs from `synthetic_runs.py`).

Every simulation has a fixed seed, so the page is reproducible. Run on demand::

    python benchmarks/calibration.py            # everything; writes docs/calibration.md
    python benchmarks/calibration.py --quick    # small sizes, prints only
"""

# ruff: noqa: E402  (BLAS threads are fixed by the environment before numpy is imported)
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import datetime
import math
import pickle
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import family_errors
import gate_errors
import interval_coverage
import numpy as np
from scipy import stats as sps
from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
SEED = 20251110
"""The root of every seed in this script (each cell derives its own from it)."""

ALPHA = 0.05
CASES = (6, 12, 30)
REPETITIONS = (1, 5)
MEANS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
CONCENTRATIONS = (interval_coverage.HOMOGENEOUS, 10.0, 2.0)
FINE_MEANS = tuple(round(0.5 + 0.01 * i, 2) for i in range(46))
SUITE_DESIGNS = ((12, 5), (6, 5), (12, 1))
SINGLE_RUNS = (10, 20, 100)
POWER_CLOSE = 0.05
P95_RUNS_NEEDED = math.ceil(math.log(1 - math.sqrt(1 - ALPHA)) / math.log(0.95))
"""Runs a side before one case's p95 can be bounded at alpha (a side's largest run lies
below the p95 with chance 0.95^n; two sides share the level)."""
"""Reported power counts as close when within this much of the simulated share (or 2 SE)."""


@dataclass(frozen=True)
class Sizes:
    """How many simulated runs each measurement takes."""

    graded: int = 1500
    equal: tuple[tuple[int, int], ...] = ((6, 2000), (12, 2000), (30, 500))
    equal_check: int = 40
    consistency: int = 400
    suite: tuple[tuple[tuple[int, int], int], ...] = (((12, 5), 300), ((6, 5), 150), ((12, 1), 300))
    single: int = 400
    margin: tuple[tuple[tuple[int, int], int], ...] = (
        ((6, 5), 1000),
        ((12, 1), 1000),
        ((12, 5), 1000),
        ((30, 1), 400),
    )

    def equal_runs(self, cases: int) -> int:
        return dict(self.equal)[cases]

    def suite_runs(self, design: tuple[int, int]) -> int:
        return dict(self.suite)[design]


QUICK = Sizes(
    graded=60,
    equal=((6, 60), (12, 60), (30, 10)),
    equal_check=3,
    consistency=20,
    suite=(((12, 5), 4), ((6, 5), 2), ((12, 1), 4)),
    single=20,
    margin=(((6, 5), 20), ((12, 1), 20), ((12, 5), 20), ((30, 1), 5)),
)


# --- jobs: module-level so that worker processes can run them ------------------------------


@dataclass(frozen=True)
class Job:
    """One unit of work: a figure's cell (``key``) or a chunk of it."""

    figure: str
    key: tuple[Any, ...]
    function: Callable[..., Any]
    kwargs: dict[str, Any]
    weight: float


def _run(job: Job) -> tuple[Any, float]:
    """The job's result and the CPU seconds it took."""
    start = time.process_time()
    result = job.function(**job.kwargs)
    return result, time.process_time() - start


def binary_cells(cases: int, repetitions: int) -> dict[str, Any]:
    """Exact pass/fail coverage of one design at every mean and concentration."""
    design = interval_coverage.binary_design(cases, repetitions)
    grid = {(m, c): design.coverage(m, c) for m in MEANS for c in CONCENTRATIONS}
    fine = {
        c: [design.coverage(m, c) for m in FINE_MEANS]
        for c in CONCENTRATIONS
        if repetitions > 1 or c == interval_coverage.HOMOGENEOUS
    }
    # With one run per case the data are a binomial count: where no interval at all can be
    # in the band, a miss says nothing about the method.
    reachable = {
        m: repetitions > 1 or interval_coverage.band_reachable(cases, m)
        for m in (*MEANS, *FINE_MEANS)
    }
    return {"grid": grid, "fine": fine, "methods": design.methods, "reachable": reachable}


def graded_chunk(population: int, cases: int, repetitions: int, runs: int, chunk: int) -> Any:
    pop = interval_coverage.GRADED[population]
    seed = [SEED, 1, population, cases, repetitions, chunk]
    return interval_coverage.graded_coverage(pop, cases, repetitions, runs, seed)


def equal_chunk(
    population: int, cases: int, repetitions: int, runs: int, check: int, chunk: int
) -> Any:
    pop = (family_errors.SHARED, family_errors.INTERACTION)[population]
    seed = [SEED, 2, population, cases, repetitions, chunk]
    return family_errors.equal_patterns(pop, cases, repetitions, runs, seed, check)


def consistency_chunk(tests: int, chunk: int) -> Any:
    return family_errors.consistency(tests, [SEED, 3, chunk], start=chunk * tests)


def suite_chunk(cases: int, repetitions: int, runs: int, chunk: int) -> Any:
    return gate_errors.suite_gates(cases, repetitions, runs, [SEED, 4, cases, repetitions, chunk])


def single_chunk(runs_per_side: int, runs: int, chunk: int) -> Any:
    return gate_errors.single_case(runs_per_side, runs, [SEED, 5, runs_per_side, chunk])


def margin_chunk(cases: int, repetitions: int, runs: int, chunk: int) -> Any:
    seed = [SEED, 6, cases, repetitions, chunk]
    return gate_errors.accuracy_at_margin(cases, repetitions, runs, seed)


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def jobs(sizes: Sizes, only: set[str]) -> list[Job]:
    """Every unit of work, heaviest first (chunks are fixed, so figures do not depend on
    how many processes run them)."""
    out: list[Job] = []
    if "gates" in only:
        for design in SUITE_DESIGNS:
            per_run = {(12, 5): 1.0, (6, 5): 0.4, (12, 1): 0.7}[design]
            for i, n in enumerate(_chunks(sizes.suite_runs(design), 25)):
                out.append(
                    Job(
                        "suite",
                        design,
                        suite_chunk,
                        dict(cases=design[0], repetitions=design[1], runs=n, chunk=i),
                        n * per_run,
                    )
                )
        for runs_per_side in SINGLE_RUNS:
            for i, n in enumerate(_chunks(sizes.single, 100)):
                out.append(
                    Job(
                        "single",
                        (runs_per_side,),
                        single_chunk,
                        dict(runs_per_side=runs_per_side, runs=n, chunk=i),
                        n * 0.004 * runs_per_side,
                    )
                )
        for design, total in sizes.margin:
            per_run = 0.06 if design[0] >= 30 else 0.02
            for i, n in enumerate(_chunks(total, 200)):
                kwargs = dict(cases=design[0], repetitions=design[1], runs=n, chunk=i)
                out.append(Job("margin", design, margin_chunk, kwargs, n * per_run))
    if "family" in only:
        for population in (0, 1):
            for cases in CASES:
                if population == 1 and cases != 12:
                    continue
                per_run = {6: 0.003, 12: 0.006, 30: 0.15}[cases]
                for reps in REPETITIONS:
                    total = sizes.equal_runs(cases)
                    for i, n in enumerate(_chunks(total, 250 if cases < 30 else 100)):
                        check = sizes.equal_check if i == 0 else 0
                        out.append(
                            Job(
                                "equal",
                                (population, cases, reps),
                                equal_chunk,
                                dict(
                                    population=population,
                                    cases=cases,
                                    repetitions=reps,
                                    runs=n,
                                    check=check,
                                    chunk=i,
                                ),
                                n * per_run + check * per_run * 3,
                            )
                        )
        for i, n in enumerate(_chunks(sizes.consistency, 50)):
            out.append(Job("consistency", (), consistency_chunk, dict(tests=n, chunk=i), n * 0.2))
    if "coverage" in only:
        for cases in CASES:
            for reps in REPETITIONS:
                out.append(
                    Job(
                        "binary",
                        (cases, reps),
                        binary_cells,
                        dict(cases=cases, repetitions=reps),
                        0.001 * cases**2 * reps**2,
                    )
                )
                for p in range(len(interval_coverage.GRADED)):
                    for i, n in enumerate(_chunks(sizes.graded, 500)):
                        out.append(
                            Job(
                                "graded",
                                (p, cases, reps),
                                graded_chunk,
                                dict(population=p, cases=cases, repetitions=reps, runs=n, chunk=i),
                                n * 0.002 * (1 + cases / 10),
                            )
                        )
    return sorted(out, key=lambda j: -j.weight)


def run_jobs(work: Sequence[Job], processes: int) -> dict[tuple[str, tuple[Any, ...]], Any]:
    """Run every job and add up the chunks of each cell, in a fixed order."""
    results: dict[tuple[str, tuple[Any, ...]], list[tuple[int, Any]]] = {}
    order = {id(j): i for i, j in enumerate(work)}
    done = 0
    cpu = 0.0
    start = time.monotonic()

    def collect(job: Job, outcome: tuple[Any, float]) -> None:
        nonlocal done, cpu
        result, seconds = outcome
        results.setdefault((job.figure, job.key), []).append((order[id(job)], result))
        done += 1
        cpu += seconds
        _progress(f"{done}/{len(work)} jobs ({time.monotonic() - start:.0f} s, {cpu:.0f} CPU s)")

    if processes <= 1:
        for job in work:
            collect(job, _run(job))
    else:
        with ProcessPoolExecutor(max_workers=processes) as pool:
            for job, outcome in zip(work, pool.map(_run, work), strict=True):
                collect(job, outcome)
    merged = {}
    for key, parts in results.items():
        parts.sort(key=lambda p: p[0])
        total = parts[0][1]
        for _, part in parts[1:]:
            total = total + part
        merged[key] = total
    return merged


# --- tables ---------------------------------------------------------------------------------


def upper(count: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate."""
    return 1.0 if count >= n else float(sps.beta.ppf(confidence, count + 1, n - count))


def at_most(count: int, n: int, target: float) -> bool:
    """A rate meets "at most ``target``" unless the count is evidence (one-sided binomial
    p < 0.01) that it exceeds it."""
    return n == 0 or bool(sps.binom.sf(count - 1, n, target) >= 0.01)


def outside_band(covered: int, runs: int) -> bool:
    """Whether ``covered`` of ``runs`` is evidence (one-sided binomial p < 0.01) of a
    coverage outside the band."""
    low, high = interval_coverage.BAND
    return bool(
        sps.binom.cdf(covered, runs, low) < 0.01 or sps.binom.sf(covered - 1, runs, high) < 0.01
    )


def pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}%"


def rate(count: int, n: int) -> str:
    """A share with its one-sided 95% upper bound: ``1.2% (≤ 2.0%)``."""
    return f"{pct(count / n)} (≤ {pct(upper(count, n))})"


def band_mark(x: float) -> str:
    """A coverage in percent, bold outside the band, with enough digits to show its side."""
    text = f"{100 * x:.1f}"
    if float(text) in (100 * interval_coverage.BAND[0], 100 * interval_coverage.BAND[1]):
        text = f"{100 * x:.2f}"
    return text if interval_coverage.in_band(x) else f"**{text}**"


def conc_name(c: float) -> str:
    return "homogeneous" if c == interval_coverage.HOMOGENEOUS else f"conc. {c:g}"


@dataclass
class Section:
    """One table of the page with its title, what it shows and what it found."""

    title: str
    intro: str
    table: str
    notes: list[str]


@dataclass(frozen=True)
class Target:
    target: str
    measured: str
    met: bool | None


def binary_section(results: dict[tuple[str, tuple[Any, ...]], Any]) -> tuple[Section, list[Target]]:
    rows = []
    misses = []
    discrete: list[str] = []
    unreachable: list[float] = []
    fine_shares: list[str] = []
    means_off = []
    for cases in CASES:
        for reps in REPETITIONS:
            cell = results[("binary", (cases, reps))]
            for c in CONCENTRATIONS:
                if reps == 1 and c != interval_coverage.HOMOGENEOUS:
                    continue
                grid = [cell["grid"][(m, c)] for m in MEANS]
                fine = cell["fine"][c]
                reachable = cell["reachable"]
                outside = [
                    f"{cases}x{reps}{'' if reps == 1 else ' ' + conc_name(c)} mean {m}: {pct(v)}"
                    for m, v in zip(MEANS, grid, strict=True)
                    if not interval_coverage.in_band(v) and reachable[m]
                ]
                (discrete if reps == 1 else misses).extend(outside)
                if reps == 1:
                    unreachable.extend(m for m in MEANS if not reachable[m])
                    fine_shares.append(
                        f"{cases} cases: {_share(reachable[m] for m in FINE_MEANS)} "
                        f"(this interval: {_share(interval_coverage.in_band(v) for v in fine)})"
                    )
                if not interval_coverage.in_band(float(np.mean(fine))):
                    means_off.append(f"{cases}x{reps} {conc_name(c)}: {pct(float(np.mean(fine)))}")
                label = "any (one run per case)" if reps == 1 else conc_name(c)
                rows.append(
                    [
                        f"{cases} x {reps}",
                        label,
                        *[
                            band_mark(v) + ("" if cell["reachable"][m] else " †")
                            for m, v in zip(MEANS, grid, strict=True)
                        ],
                        f"{100 * min(fine):.1f}",
                        f"{100 * max(fine):.1f}",
                        band_mark(float(np.mean(fine))),
                    ]
                )
    headers = ["cases x runs", "case spread", *[f"{m:g}" for m in MEANS], "min", "max", "mean"]
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    intro = (
        "Exact coverage (%) of the pass/fail accuracy interval of `stats.summarize`, by the mean "
        "accuracy of the population of cases (columns) and how much cases differ (each case's "
        "probability of a correct answer ~ Beta(mean, concentration); homogeneous: all equal). "
        "With one run per case the spread does not matter. min, max and mean are over the "
        "means 0.50, 0.51, ..., 0.95. Outside 93.5-96.5 in **bold**. Computed exactly by "
        "enumerating every (total correct, sum of squared per-case counts), which is all the "
        "interval depends on: no simulation error."
    )
    methods = {m for k, v in results.items() if k[0] == "binary" for m in v["methods"]}
    notes = [
        f"Methods used: {', '.join(sorted(methods))}.",
        "With one run per case the data are k pass/fail outcomes, so there are only k + 1 "
        "possible intervals and coverage is a saw-tooth in the mean (Brown, Cai & DasGupta "
        "2001). An interval whose endpoints rise with the count covers a mean on a run of "
        "consecutive counts, so its coverage there is the probability of such a window; "
        "marked † are the means where no window's probability lies in 93.5-96.5%: no such "
        "interval, however built, is in the band there. Share of the means 0.50, 0.51, ..., "
        "0.95 where the band can be reached at all: " + "; ".join(fine_shares) + ". The "
        "rows' mean coverage is what an interval can hold there.",
        "With 5 runs per case and cases that differ widely (conc. 2) at high means, the "
        "interval over case means undercovers (down to the min column): a few skewed "
        "clusters near 1 are a real limit of the method at these sizes, not discreteness.",
    ]
    n_cells = len(rows) * len(MEANS)
    n_rep = sum(1 for r in rows if not r[1].startswith("any")) * len(MEANS)
    targets = [
        Target(
            "pass/fail 95% intervals cover 93.5-96.5% at 6, 12 and 30 cases, one run per case "
            "(discrete: 7, 13 or 31 possible intervals)",
            f"{n_cells - n_rep - len(unreachable) - len(discrete)} of "
            f"{n_cells - n_rep - len(unreachable)} cells where any interval can be in the band "
            f"({len(unreachable)} of {n_cells - n_rep} cannot: †)" + _some(discrete, 4),
            not discrete,
        ),
        Target(
            "pass/fail 95% intervals cover 93.5-96.5% at 6, 12 and 30 cases x 5 runs",
            f"{n_rep - len(misses)} of {n_rep} cells in the band" + _some(misses, 3),
            not misses,
        ),
        Target(
            "pass/fail: mean coverage over means 0.50-0.95 in the band, every design and spread",
            "all in the band" if not means_off else "outside: " + "; ".join(means_off),
            not means_off,
        ),
    ]
    return Section("Coverage: pass/fail scores (exact)", intro, table, notes), targets


def _share(flags: Iterable[bool]) -> str:
    values = list(flags)
    return f"{100 * sum(values) / len(values):.0f}%"


def _some(misses: Sequence[str], shown: int = 4) -> str:
    """``; outside: a; b; N more in the grid`` (empty without misses)."""
    if not misses:
        return ""
    more = f"; {len(misses) - shown} more in the grid" if len(misses) > shown else ""
    return "; outside: " + "; ".join(misses[:shown]) + more


def graded_section(
    results: dict[tuple[str, tuple[Any, ...]], Any], sizes: Sizes
) -> tuple[Section, list[Target]]:
    rows = []
    misses = []
    edge = []
    method_notes = []
    for p, pop in enumerate(interval_coverage.GRADED):
        cells = []
        for cases in CASES:
            for reps in REPETITIONS:
                cov = results[("graded", (p, cases, reps))]
                name = f"{pop.name} at {cases}x{reps}: {pct(cov.share)}"
                if outside_band(cov.covered, cov.runs):
                    side = "above" if cov.share > interval_coverage.BAND[1] else "below"
                    misses.append(f"{name} ({side})")
                    cells.append(band_mark(cov.share))
                elif not interval_coverage.in_band(cov.share):
                    edge.append(name)
                    cells.append(band_mark(cov.share).strip("*") + " °")
                else:
                    cells.append(band_mark(cov.share))
                other = [(m, n) for m, n in cov.methods if not m.startswith("bootstrap-t")]
                if other:
                    method_notes.append(
                        f"{pop.name}, {cases}x{reps}: "
                        + ", ".join(
                            f"{n} run{'s' if n != 1 else ''} used {m}"
                            + ("" if "same" in m else " (every score 0 or 1)")
                            for m, n in other
                        )
                    )
        rows.append([pop.name, *cells])
    headers = ["population of cases", *[f"{c} x {r}" for c in CASES for r in REPETITIONS]]
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    se = 100 * float(np.sqrt(0.95 * 0.05 / sizes.graded))
    intro = (
        f"Simulated coverage (%) of the graded-score accuracy interval, {sizes.graded} runs a "
        f"cell (Monte Carlo standard error about {se:.1f} points at 95%). Columns: cases x "
        "repetitions. A case's mean score m is drawn from the population; its repetitions' "
        "scores ~ Beta(10 m, 10 (1 - m)) around it, or, for '4 fields', the share of 4 "
        "fields right, each right with the case's probability. The truth is the "
        "population's mean. In **bold**: outside 93.5-96.5 beyond simulation noise (one-sided "
        "binomial p < 0.01 against the nearer edge); marked °: outside by the point estimate "
        "only, within noise. Above the band is the safe side: where ties leave more than "
        "2.5% of the bootstrap's resamples without spread (partial credit over 6 single runs "
        "often), the bootstrap-t cannot bound that side and the interval reaches 0 or 1."
    )
    cells = len(rows) * len(CASES) * len(REPETITIONS)
    target = Target(
        "graded 95% intervals cover 93.5-96.5% at 6, 12 and 30 cases",
        f"{cells - len(misses)} of {cells} cells in the band or within noise of it"
        + _some(misses)
        + (f"; {len(edge)} more outside by the point estimate only" if edge else ""),
        not misses,
    )
    return Section("Coverage: graded scores (simulated)", intro, table, method_notes), [target]


def equal_section(results: dict[tuple[str, tuple[Any, ...]], Any]) -> tuple[Section, list[Target]]:
    rows = []
    worst_family = worst_rec = 0.0
    family_met = recommend_met = True
    checked = 0
    for population, pop in enumerate((family_errors.SHARED, family_errors.INTERACTION)):
        for cases in CASES:
            for reps in REPETITIONS:
                r = results.get(("equal", (population, cases, reps)))
                if r is None:
                    continue
                checked += r.checked
                f, c = r.family_any / r.runs, r.recommend_any / r.runs
                worst_family, worst_rec = max(worst_family, f), max(worst_rec, c)
                family_met &= at_most(r.family_any, r.runs, ALPHA)
                recommend_met &= at_most(r.recommend_any, r.runs, ALPHA)
                rows.append(
                    [
                        pop.name,
                        f"{cases} x {reps}",
                        r.runs,
                        pct(r.reachable / r.runs, 0),
                        f"{pct(f)} (≤ {pct(upper(r.family_any, r.runs))})",
                        f"{pct(c)} (≤ {pct(upper(r.recommend_any, r.runs))})",
                    ]
                )
    headers = [
        "cases",
        "cases x runs",
        "tests",
        "family level reachable",
        "family: any better/worse",
        "recommendation: any excluded",
    ]
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    intro = (
        "Four patterns equally accurate on every case (pass/fail; first rows: each case's "
        "probability shared by the four; last rows: each pattern with its own per-case "
        "deviation, equal on average). Shares of simulated tests in which the family "
        "(3 comparisons with the baseline, Bonferroni) calls any comparison better or worse, "
        "and in which the recommendation (6 pairwise tests) sets any pattern aside; in "
        "brackets the one-sided 95% upper bound. 'family level reachable': share of tests "
        "whose design can reach the family's level at all (6 paired cases cannot reach "
        "0.05/3: those comparisons say 'too few cases')."
    )
    notes = [
        f"Decisions were taken from the randomization tests directly; {checked} tests also went "
        "through `family.compare` and `recommend.recommend` and agreed exactly."
    ]
    targets = [
        Target(
            "equal patterns: the family calls any comparison better/worse at most 5%",
            f"worst cell {pct(worst_family)}",
            family_met,
        ),
        Target(
            "equal patterns: the recommendation excludes any pattern at most 5%",
            f"worst cell {pct(worst_rec)}",
            recommend_met,
        ),
    ]
    return Section(
        "Within-test error control: four equally accurate patterns", intro, table, notes
    ), targets


def consistency_section(
    results: dict[tuple[str, tuple[Any, ...]], Any],
) -> tuple[Section, list[Target]]:
    c = results[("consistency", ())]
    rows = [
        ["random test functions", c.tests],
        ["recommendations made (a pattern named)", c.recommended],
        [
            "exclusions involving the baseline pattern, checked against the table",
            c.exclusions_checked,
        ],
        ["... where the table does not show the same difference", len(c.exclusion_violations)],
        ["family comparisons with an interval", c.intervals_checked],
        ["... whose interval and verdict disagree about 0", len(c.interval_violations)],
        ["significant family comparisons", c.significant],
        [
            "... without an interval (every case differs by the same amount)",
            c.significant_without_interval,
        ],
    ]
    table = tabulate(rows, headers=["check", "count"], tablefmt="github", disable_numparse=True)
    intro = (
        "Random test functions (2-6 patterns, some equally accurate, some 0.1-0.4 apart; 1-20 "
        "cases; 1, 3 or 5 repetitions; pass/fail or graded; in a fifth of them one pattern ran "
        "only half the cases) analysed by `analysis.analyse` and read back from "
        "`report.build_report`'s JSON."
    )
    notes = [*c.exclusion_violations[:10], *c.interval_violations[:10]]
    targets = [
        Target(
            "the recommendation never names a pattern worse when the table does not",
            f"{len(c.exclusion_violations)} of {c.exclusions_checked} exclusions disagree",
            not c.exclusion_violations,
        ),
        Target(
            "a family interval excludes 0 exactly when its verdict is better/worse",
            f"{len(c.interval_violations)} of {c.intervals_checked} disagree",
            not c.interval_violations,
        ),
    ]
    return Section("The recommendation against the family table", intro, table, notes), targets


def suite_sections(
    results: dict[tuple[str, tuple[Any, ...]], Any],
) -> tuple[list[Section], list[Target]]:
    null_rows = []
    power_rows = []
    targets = []
    worst = 0.0
    suite_met = True
    worst_text = ""
    power_far = []
    for design in SUITE_DESIGNS:
        s = results.get(("suite", design))
        if s is None:
            continue
        name = f"{design[0]} x {design[1]}"
        rate = s.null_fail_runs / s.runs
        suite_met &= at_most(s.null_fail_runs, s.runs, ALPHA)
        if rate >= worst:
            worst, worst_text = (
                rate,
                f"{name}: {pct(rate)} (≤ {pct(upper(s.null_fail_runs, s.runs))})",
            )
        shares = []
        for rule in gate_errors.RULES.split(","):
            v = s.verdicts.get(rule, {})
            total = sum(v.values()) or 1
            shares.append(
                " / ".join(
                    pct(v.get(verdict, 0) / total, digits)
                    for verdict, digits in (("pass", 0), ("inconclusive", 0), ("fail", 1))
                )
            )
        null_rows.append(
            [
                name,
                s.runs,
                s.gates,
                f"{s.level:.2g}",
                f"{pct(rate)} (≤ {pct(upper(s.null_fail_runs, s.runs))})",
                *shares,
            ]
        )
        for rule in gate_errors.RULES.split(","):
            fails = s.regressed.get(rule, 0)
            share = fails / s.runs
            reported = s.power.get(rule, 0.0) / max(1, s.power_reported.get(rule, 0))
            se = float(np.sqrt(max(share * (1 - share), 0.25 / s.runs) / s.runs))
            close = abs(share - reported) <= max(POWER_CLOSE, 2 * se)
            if not close:
                power_far.append(f"{name} {rule}: simulated {pct(share)}, reported {pct(reported)}")
            v = s.regressed_verdicts.get(rule, {})
            power_rows.append(
                [
                    name,
                    rule,
                    _change(rule),
                    pct(share),
                    pct(reported),
                    "yes" if close else "**no**",
                    f"{v.get('pass', 0)} / {v.get('inconclusive', 0)} / {v.get('fail', 0)}",
                ]
            )
        power_rows.append(
            [
                name,
                "(any other pattern's gate)",
                "none",
                pct(s.others_fail_runs / s.runs),
                "",
                "",
                "",
            ]
        )
    null_table = tabulate(
        null_rows,
        headers=[
            "cases x runs",
            "CI runs",
            "gates",
            "level per gate",
            "run fails (false)",
            *[f"{r}: pass / inconcl. / fail" for r in gate_errors.RULES.split(",")],
        ],
        tablefmt="github",
        disable_numparse=True,
    )
    power_table = tabulate(
        power_rows,
        headers=[
            "cases x runs",
            "gate of the regressed pattern",
            "true change",
            "runs whose gate fails",
            "mean reported power",
            "close",
            "verdicts pass / inconcl. / fail",
        ],
        tablefmt="github",
        disable_numparse=True,
    )
    null_intro = (
        "A suite shaped like example_suite/ (5 tests, 26 test x pattern pairs; per-case "
        "difficulty; per-pattern accuracy 0.62-0.90; calls timed like the simulator's "
        "`sim-small`: lognormal time to first token plus time per output token; output tokens "
        "varying around each case's answer length; `parallel(n=5)` makes 5 calls, `loop` and "
        "`hybrid` more when the answer is wrong; cost from the shipped prices) is recorded as "
        "the baseline and re-recorded with a new seed, then gated with "
        f"`{gate_errors.RULES}` by `analysis.evaluate_gates` at alpha {ALPHA}. 'run fails': "
        "share of CI runs failed by any gate (the target is at most 5%), with its one-sided 95% "
        "upper bound; then each rule's verdicts over all its gates."
    )
    power_intro = (
        "The same CI runs with one pattern (test_arithmetic, parallel(n=5), accuracy 0.85) "
        "regressed in the current run by each rule's reference change, the change its gate's "
        "`power` field refers to: accuracy 0.85 -> 0.75, latency x1.44 (every run), cost x1.21 "
        "(every call). 'runs whose gate fails' is the simulated power; 'mean reported power' "
        "the average of what that gate reported. Close: within 5 points or 2 standard errors. "
        "Last row of each design: CI runs in which a gate of an unchanged pattern failed."
    )
    targets.append(
        Target(
            "re-recorded suite fails the whole CI run at most 5% (26 pairs x 3 rules)",
            worst_text,
            suite_met,
        )
    )
    acc = [r for r in power_rows if r[1] == "accuracy:-0.05"]
    targets.append(
        Target(
            "power to catch 0.85 -> 0.75 reported per gate",
            "; ".join(f"{r[0]}: simulated {r[3]}, reported {r[4]}" for r in acc),
            None,
        )
    )
    targets.append(
        Target(
            "the reported power is close to the simulated power",
            "all close" if not power_far else "not close: " + "; ".join(power_far),
            not power_far,
        )
    )
    return [
        Section("CI gates: unchanged code re-recorded", null_intro, null_table, []),
        Section("CI gates: power against the reported power", power_intro, power_table, []),
    ], targets


def _change(rule: str) -> str:
    r = gate_errors.REGRESSION
    return {
        "accuracy:-0.05": f"0.85 -> {r.accuracy:.2f}",
        "latency_p95:+20%": f"x{r.latency:.2f}",
        "cost:+10%": f"x{r.cost:.2f}",
    }[rule]


def single_section(
    results: dict[tuple[str, tuple[Any, ...]], Any],
) -> tuple[Section, list[Target]]:
    rows = []
    null_fail = margin_fail = margin_pass = slow_pass = 0
    runs = 0
    slow = []
    for n in SINGLE_RUNS:
        s = results.get(("single", (n,)))
        if s is None:
            continue
        runs = s.runs
        null_fail = max(null_fail, s.null_fail)
        margin_fail, margin_pass = max(margin_fail, s.margin_fail), max(margin_pass, s.margin_pass)
        slow_pass = max(slow_pass, s.slow_pass)
        slow.append(f"{n} runs: {pct(s.slow_fail / s.runs)}")
        rows.append(
            [
                n,
                s.runs,
                rate(s.null_fail, s.runs),
                pct(s.null_pass / s.runs),
                rate(s.margin_fail, s.runs),
                rate(s.margin_pass, s.runs),
                pct(s.slow_fail / s.runs),
                rate(s.slow_pass, s.runs),
            ]
        )
    table = tabulate(
        rows,
        headers=[
            "runs per side",
            "CI runs",
            "unchanged: fail",
            "unchanged: pass",
            "at the margin (x1.2): fail",
            "at the margin: pass",
            "10% of runs 5x slower: fail",
            "10% 5x slower: pass",
        ],
        tablefmt="github",
        disable_numparse=True,
    )
    intro = (
        "One test with a single case and one pattern (latency like the suite's `single`), "
        "gated by `latency_p95:+20%` alone, so each verdict is a one-sided test at the full "
        "alpha 0.05. Unchanged: the current run re-records the same model. At the margin: "
        "every current run exactly 1.2x slower, so the true p95 ratio is the margin itself, "
        "where a fail and a pass should each happen at most 5% of the time. Slower: each "
        "current run 5x slower with probability 0.1 (the p95 rises about 2.8x); a 'pass' "
        "there claims the change is within +20%. Rates against a 5% target carry their "
        "one-sided 95% upper bound. The gate bounds each side's p95 by an order statistic "
        "(exact, no model of the tail): the largest of n runs lies below the p95 with chance "
        f"0.95^n, so with fewer than {P95_RUNS_NEEDED} runs a side no bound exists at 0.05 "
        "and every verdict is inconclusive, by design rather than by chance."
    )
    targets = [
        Target(
            "single case, unchanged: latency_p95:+20% fails at most alpha",
            f"worst {pct(null_fail / max(1, runs))}",
            at_most(null_fail, runs, ALPHA),
        ),
        Target(
            "single case, 10% of runs 5x slower: fails far more often than 1.9%",
            "; ".join(slow)
            + f" (inconclusive below {P95_RUNS_NEEDED} runs a side: no exact bound exists)",
            None,
        ),
        Target(
            "single case at the margin: fails at most alpha, passes at most alpha",
            f"worst fail {pct(margin_fail / max(1, runs))}, "
            f"worst pass {pct(margin_pass / max(1, runs))}",
            at_most(margin_fail, runs, ALPHA) and at_most(margin_pass, runs, ALPHA),
        ),
        Target(
            "single case, 10% of runs 5x slower: passes ('within +20%') at most alpha",
            f"worst {pct(slow_pass / max(1, runs))}",
            at_most(slow_pass, runs, ALPHA),
        ),
    ]
    return Section("latency_p95 on a single-case test", intro, table, []), targets


def margin_section(
    results: dict[tuple[str, tuple[Any, ...]], Any], sizes: Sizes
) -> tuple[Section, list[Target]]:
    rows = []
    bad = []
    for design, _ in sizes.margin:
        m = results.get(("margin", design))
        if m is None:
            continue
        name = f"{design[0]} x {design[1]}"
        rows.append([name, m.runs, rate(m.fail, m.runs), rate(m.passed, m.runs)])
        for what, count in (("fail", m.fail), ("pass", m.passed)):
            if not at_most(count, m.runs, ALPHA):
                bad.append(f"{name} {what} {pct(count / m.runs)}")
    table = tabulate(
        rows,
        headers=["cases x runs", "CI runs", "fail", "pass"],
        tablefmt="github",
        disable_numparse=True,
    )
    intro = (
        "One test with one pattern whose accuracy drops from 0.85 to 0.80 in the current run "
        "(exactly the margin), gated by `accuracy:-0.05` alone: each verdict is a one-sided "
        "test at alpha 0.05 (the family's t statistic against Student's t at the margin), "
        "so a fail and a pass should each happen at most 5% of the time. A run identical to "
        "the baseline on every case passes by design (a replay); with one run per case at "
        "high accuracy that also happens by chance, and counts as a pass here."
    )
    target = Target(
        "an accuracy gate at its margin fails at most alpha and passes at most alpha",
        "all within" if not bad else "; ".join(bad),
        not bad,
    )
    return Section("CI gates: accuracy exactly at the margin", intro, table, []), [target]


# --- output ---------------------------------------------------------------------------------


def render(sections: Sequence[Section], targets: Sequence[Target], command: str) -> str:
    versions = ", ".join(f"{p} {_version(p)}" for p in ("pytest-agentpatterns", "numpy", "scipy"))
    target_table = tabulate(
        [
            [t.target, t.measured, "n/a" if t.met is None else ("yes" if t.met else "**no**")]
            for t in targets
        ],
        headers=["target", "measured", "met"],
        tablefmt="github",
        disable_numparse=True,
    )
    lines = [
        "# Calibration of the statistics",
        "",
        "<!-- Generated by benchmarks/calibration.py: do not edit by hand; rerun it. -->",
        "",
        f"Generated by `benchmarks/calibration.py` on {datetime.date.today().isoformat()} "
        f"({versions}).",
        "",
        f"Command: `{command}`",
        "",
        "Every figure is a share of simulated runs with fixed seeds (pass/fail coverage is "
        "computed exactly), so rerunning the command gives the same page on any machine with "
        "the same package versions. `benchmarks/README.md` says what each grid measures.",
        "",
        "## Targets",
        "",
        target_table,
        "",
    ]
    for section in sections:
        lines += [f"## {section.title}", "", section.intro, "", section.table, ""]
        if section.notes:
            lines += [*[f"- {n}" for n in section.notes], ""]
    return "\n".join(lines)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def build(
    results: dict[tuple[str, tuple[Any, ...]], Any], sizes: Sizes, only: set[str]
) -> tuple[list[Section], list[Target]]:
    sections: list[Section] = []
    targets: list[Target] = []

    def add(made: tuple[Section | list[Section], list[Target]]) -> None:
        got, t = made
        sections.extend(got if isinstance(got, list) else [got])
        targets.extend(t)

    if "gates" in only:
        add(suite_sections(results))
        add(margin_section(results, sizes))
        add(single_section(results))
    if "family" in only:
        add(consistency_section(results))
        add(equal_section(results))
    if "coverage" in only:
        add(binary_section(results))
        add(graded_section(results, sizes))
    return sections, targets


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        default="coverage,family,gates",
        help="comma-separated parts to run: coverage, family, gates. Default: %(default)s",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes; implies --no-write")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/ alone")
    parser.add_argument(
        "--jobs", type=int, default=2, help="worker processes. Default: %(default)s"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "calibration.md")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every simulated run count (e.g. 0.4 on a busy machine). Default: 1",
    )
    parser.add_argument("--graded-runs", type=int, help="simulated runs per graded coverage cell")
    parser.add_argument("--suite-runs", type=int, help="simulated CI runs per suite design")
    parser.add_argument("--single-runs", type=int, help="simulated CI runs per single-case size")
    parser.add_argument(
        "--save-results", type=Path, help="also pickle the simulated counts to this file"
    )
    parser.add_argument(
        "--load-results",
        type=Path,
        help="render from counts saved by --save-results instead of simulating",
    )
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    unknown = parts - {"coverage", "family", "gates"}
    if unknown or not parts:
        parser.error(f"--only takes coverage, family, gates; got {args.only!r}")
    args.parts = parts
    if args.quick:
        args.no_write = True
    return args


def scaled(sizes: Sizes, factor: float) -> Sizes:
    """Every run count of ``sizes`` times ``factor`` (at least 1)."""

    def n(x: int) -> int:
        return max(1, round(x * factor))

    return Sizes(
        graded=n(sizes.graded),
        equal=tuple((c, n(r)) for c, r in sizes.equal),
        equal_check=sizes.equal_check,
        consistency=n(sizes.consistency),
        suite=tuple((d, n(r)) for d, r in sizes.suite),
        single=n(sizes.single),
        margin=tuple((d, n(r)) for d, r in sizes.margin),
    )


def sizes_from(args: argparse.Namespace) -> Sizes:
    sizes = QUICK if args.quick else Sizes()
    if args.scale != 1.0:
        sizes = scaled(sizes, args.scale)
    if args.graded_runs:
        sizes = replace(sizes, graded=args.graded_runs)
    if args.suite_runs:
        sizes = replace(sizes, suite=tuple((d, args.suite_runs) for d, _ in sizes.suite))
    if args.single_runs:
        sizes = replace(sizes, single=args.single_runs)
    return sizes


def _without(argv: Sequence[str], flag: str) -> list[str]:
    """``argv`` without ``flag`` and its value (``--flag VALUE`` or ``--flag=VALUE``)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    started = time.monotonic()
    kept = _without(argv, "--save-results")  # where counts were saved is not the figures'
    command = shlex.join(["python", "benchmarks/calibration.py", *kept])
    if args.load_results:
        saved = pickle.loads(args.load_results.read_bytes())
        results, sizes, parts, command = (
            saved["results"],
            saved["sizes"],
            saved["parts"],
            saved["command"],
        )
    else:
        sizes, parts = sizes_from(args), args.parts
        results = run_jobs(jobs(sizes, parts), args.jobs)
        if args.save_results:
            saved = dict(
                results=results,
                sizes=sizes,
                parts=parts,
                command=shlex.join(["python", "benchmarks/calibration.py", *kept]),
            )
            args.save_results.write_bytes(pickle.dumps(saved))
    sections, targets = build(results, sizes, parts)
    for section in sections:
        print(f"\n## {section.title}\n\n{section.table}")
        for note in section.notes:
            print(f"- {note}")
    print("\n## Targets\n")
    print(
        tabulate(
            [
                [t.target, t.measured, "n/a" if t.met is None else ("yes" if t.met else "NO")]
                for t in targets
            ],
            headers=["target", "measured", "met"],
            tablefmt="github",
            disable_numparse=True,
        )
    )
    _progress(f"done in {time.monotonic() - started:.0f} s")
    if not args.no_write:
        args.output.write_text(render(sections, targets, command), encoding="utf-8")
        _progress(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
