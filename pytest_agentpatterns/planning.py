"""Planning before paying: how many cases and repetitions a comparison needs.

A test's comparisons are paired randomization tests over cases (:mod:`.family`). The
variance of one case's difference between two patterns, averaged over r repetitions, is

    Var(d) = τ² + σ²/r

``σ²`` the variance of one repetition's difference within a case (the two patterns' own
noise) and ``τ²`` how much the true difference varies from case to case. Both are measured
on a run (a saved one or a small pilot): ``σ²`` from the spread of each case's repetitions,
``τ²`` from the spread of the case differences less what ``σ²`` explains. Cases that are
hard for both patterns cancel in the difference: that correlation is what pairing gains,
and it is measured, not assumed.

With binary scores and few cases the test is coarse: many cases tie (both patterns always
right), and the sign-flip test over the few untied cases reaches fewer levels than a t does
(12 cases x 6 repetitions at 0.0125: the t said 0.39, the test has 0.22). So up to
`SIMULATED_CASES` cases the power is that of the test itself on simulated runs: each case's
baseline accuracy drawn from what the measured run showed (an empirical-Bayes Beta posterior
per case), the candidate's the same case shifted on the logit scale by the planned
difference, plus case-to-case noise sized to the measured τ²; each simulated run's exact
sign-flip p-value comes from the distribution of its signed sum (the test's t is monotone in
it). Above that, or with graded scores, the power is a noncentral t on k - 1 degrees of
freedom with standard error ``√(Var(d) / k)`` (never below the floor the test itself uses);
it is zero when k is too small for the randomization test to reach the level at all (its
smallest p-value is ``2 / 2^k``). ``benchmarks/planning.py`` checks the predictions against
simulated runs of the real test (:func:`.family.compare`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .family import needed_cases
from .records import ItemResult
from .stats import sample_variance

if TYPE_CHECKING:
    import numpy as np
else:
    from .lazy_numpy import np

POWER = 0.8
"""The power plans are made for."""

DEFAULT_DIFF = 0.10
"""The accuracy difference ``--patterns-plan`` plans for when none is given."""

PILOT_REPEAT = 2
"""Repetitions per item of the pilot ``--patterns-plan`` runs when there is no saved run:
the fewest that show the noise within a case."""

SIMULATED_CASES = 30
"""Up to this many cases (binary scores), power is simulated with the exact test."""

SIMULATED_RUNS = 1_000
"""Simulated runs per power estimate (seeded: the same design gives the same estimate)."""

SIMULATED_SIZE = 4_000
"""Cases drawn from a measured run's posterior to stand for its population."""

MAX_CASES = 100_000
"""The most cases a plan searches; beyond it a difference counts as out of reach."""

Scores = Mapping[str, Sequence[float]]


@dataclass(frozen=True)
class Components:
    """What one comparison's data say about its variance.

    ``within``: variance of one repetition's difference inside a case (σ²); ``floor``: the
    same with each binary case's rate smoothed as the test smooths it; ``between``: the
    variance of the true per-case differences (τ²); ``correlation``: between the two
    patterns' case accuracies (None when it cannot be estimated); ``paired``: cases are the
    units (False: one case, its repetitions are).
    """

    within: float
    floor: float
    between: float
    correlation: float | None
    paired: bool
    cases: int
    spread: float = 0.0
    """The two patterns' true case accuracies' variances, summed: what an unpaired design
    would carry as noise where pairing cancels their shared part."""
    counts: tuple[tuple[int, int, int, int], ...] = ()
    """Per common case with binary scores: the baseline's successes and runs, then the
    candidate's (empty when any score is graded): what the simulated power draws from."""

    def variance(self, repeat: int) -> float:
        """Var(d) of one case's difference averaged over ``repeat`` repetitions."""
        return self.between + self.within / repeat


def components(baseline: Scores, candidate: Scores) -> Components | None:
    """Measure a comparison's variance components; None without data on both sides."""
    common = sorted(k for k in baseline.keys() & candidate.keys() if baseline[k] and candidate[k])
    if len(common) >= 2:
        return _paired(baseline, candidate, common)
    a = [x for values in baseline.values() for x in values]
    b = [x for values in candidate.values() for x in values]
    if len(a) < 2 or len(b) < 2:
        return None
    within = sample_variance(a) + sample_variance(b)
    return Components(within, max(within, _smoothed(a) + _smoothed(b)), 0.0, None, False, 1)


def _paired(baseline: Scores, candidate: Scores, common: list[str]) -> Components:
    diffs, within, floor = [], [], []
    means_a, means_b, noise_a, noise_b = [], [], [], []
    for case in common:
        a, b = list(baseline[case]), list(candidate[case])
        means_a.append(sum(a) / len(a))
        means_b.append(sum(b) / len(b))
        diffs.append(means_b[-1] - means_a[-1])
        wa, wb = sample_variance(a), sample_variance(b)
        if len(a) >= 2 and len(b) >= 2:
            within.append(wa + wb)
        floor.append(_smoothed(a) + _smoothed(b))
        noise_a.append(wa / len(a))
        noise_b.append(wb / len(b))
    k = len(common)
    noise = (sum(noise_a) + sum(noise_b)) / k
    # The true case accuracies' spread: what the case means show less the repetitions' noise
    # (which is independent between patterns, so it leaves the covariance alone).
    va = max(0.0, sample_variance(means_a) - sum(noise_a) / k)
    vb = max(0.0, sample_variance(means_b) - sum(noise_b) / k)
    ma, mb = sum(means_a) / k, sum(means_b) / k
    cov = sum((x - ma) * (y - mb) for x, y in zip(means_a, means_b, strict=True)) / (k - 1)
    correlation = max(-1.0, min(1.0, cov / math.sqrt(va * vb))) if va > 0 and vb > 0 else None
    binary = all(v in (0.0, 1.0) for c in common for v in (*baseline[c], *candidate[c]))
    counts = tuple(
        (int(sum(baseline[c])), len(baseline[c]), int(sum(candidate[c])), len(candidate[c]))
        for c in common
    )
    return Components(
        within=sum(within) / len(within) if within else sum(floor) / k,
        floor=sum(floor) / k,
        between=max(0.0, sample_variance(diffs) - noise),
        correlation=correlation,
        paired=True,
        cases=k,
        spread=va + vb,
        counts=counts if binary else (),
    )


def _smoothed(values: Sequence[float]) -> float:
    """One repetition's variance with a binary rate smoothed by half a success and half a
    failure, as the test's noise floor has it (graded scores: their sample variance)."""
    if values and all(v in (0.0, 1.0) for v in values):
        p = (sum(values) + 0.5) / (len(values) + 1)
        return p * (1 - p)
    return sample_variance(values)


def power(diff: float, parts: Components, cases: int, repeat: int, level: float) -> float:
    """Chance the test at ``level`` shows a true difference ``diff`` with this design."""
    from scipy.stats import nct
    from scipy.stats import t as student

    diff = abs(diff)
    if parts.paired:
        if cases < needed_cases(level):
            return 0.0
        if simulated(parts, cases, repeat):
            return _simulated_power(diff, parts, cases, repeat, level)
        se = math.sqrt(max(parts.variance(repeat), parts.floor / repeat) / cases)
        df = cases - 1
    else:
        if 2 / math.comb(2 * repeat, repeat) > level:
            return 0.0
        se = math.sqrt(max(parts.within, parts.floor) / repeat)
        df = max(1, 2 * repeat - 2)
    if se <= 0:
        return 1.0 if diff > 0 else level
    crit = float(student.isf(level / 2, df))
    ncp = diff / se
    value = float(nct.sf(crit, df, ncp) + nct.cdf(-crit, df, ncp))
    if not math.isfinite(value):
        # scipy's noncentral t fails far in its tails (large df and ncp), where the normal
        # shifted by ncp is as exact as the t: power then is 0 or 1 to many digits.
        from scipy.stats import norm

        value = float(norm.sf(crit - ncp) + norm.cdf(-crit - ncp))
    return value


def cases_needed(diff: float, parts: Components, repeat: int, level: float) -> int | None:
    """The fewest cases giving `POWER` against ``diff`` at ``repeat`` repetitions, or None
    when no number up to `MAX_CASES` does."""
    if not parts.paired:
        return None
    low = needed_cases(level)
    top = low - 1
    while simulated(parts, top + 1, repeat):
        top += 1
    if top >= low and power(diff, parts, top, repeat, level) >= POWER:
        return _fewest(lambda k: power(diff, parts, k, repeat, level) >= POWER, low, top)
    low = max(low, top + 1)
    if power(diff, parts, MAX_CASES, repeat, level) < POWER:
        return None
    return _fewest(lambda k: power(diff, parts, k, repeat, level) >= POWER, low, MAX_CASES)


def _fewest(enough: Callable[[int], bool], low: int, high: int) -> int:
    """The smallest k in [low, high] that is ``enough`` (it is at ``high``), by bisection."""
    if enough(low):
        return low
    while high - low > 1:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle
    return high


def simulated(parts: Components, cases: int, repeat: int) -> bool:
    """Whether the power of this design is simulated with the exact test (else a t)."""
    return (
        parts.paired
        and bool(parts.counts)
        and cases <= SIMULATED_CASES
        and cases * repeat <= 40 * SIMULATED_CASES
        and repeat <= 100
    )


@functools.lru_cache(maxsize=16)
def _population(
    counts: tuple[tuple[int, int, int, int], ...], between: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Cases standing for a measured run's population: baseline accuracies drawn from each
    case's posterior (a Beta prior fitted to the run's case accuracies), their logits,
    standard normal draws for the case-to-case noise of the difference, and its scale."""
    data = np.array(counts, dtype=float)
    hits, runs = data[:, 0], data[:, 1]
    a, b = _beta_prior(hits, runs)
    rng = np.random.default_rng(len(counts))
    pick = rng.integers(0, len(counts), SIMULATED_SIZE)
    base = np.clip(rng.beta(a + hits[pick], b + runs[pick] - hits[pick]), 1e-6, 1 - 1e-6)
    logit = np.log(base / (1 - base))
    noise = rng.standard_normal(SIMULATED_SIZE)
    own = float(np.mean(data[:, 2] / data[:, 3] - hits / runs))
    scale = 0.0
    if between > 0:
        # The logit noise whose spread of true case differences is the measured τ².
        low, high = 0.0, 8.0
        for _ in range(30):
            middle = (low + high) / 2
            shifted = _shifted(base, logit, noise, middle, own)
            if float(np.var(shifted - base)) < between:
                low = middle
            else:
                high = middle
        scale = low
    return base, logit, noise, scale


def _beta_prior(hits: np.ndarray, runs: np.ndarray) -> tuple[float, float]:
    """A Beta prior for case accuracies by moments, less the repetitions' binomial noise
    (Jeffreys' when the cases vary no more than that noise)."""
    means = hits / runs
    mean = float(means.mean())
    noise = float(np.mean(means * (1 - means) / np.maximum(runs - 1, 1)))
    var = float(means.var(ddof=1)) - noise if means.size > 1 else 0.0
    if var <= 1e-6 or not 0 < mean < 1 or mean * (1 - mean) / var <= 1:
        return 0.5, 0.5
    size = mean * (1 - mean) / var - 1
    return max(mean * size, 0.05), max((1 - mean) * size, 0.05)


def _shifted(
    base: np.ndarray, logit: np.ndarray, noise: np.ndarray, scale: float, diff: float
) -> np.ndarray:
    """Candidate accuracies: each case's logit shifted so their mean difference is ``diff``
    (as close as accuracies in [0, 1] allow)."""
    low, high = -30.0, 30.0
    for _ in range(50):
        middle = (low + high) / 2
        cand = 1 / (1 + np.exp(-(logit + middle + scale * noise)))
        if float(np.mean(cand - base)) < diff:
            low = middle
        else:
            high = middle
    return np.asarray(1 / (1 + np.exp(-(logit + low + scale * noise))))


def _simulated_power(
    diff: float, parts: Components, cases: int, repeat: int, level: float
) -> float:
    """The share of simulated runs of the design that the exact sign-flip test rejects."""
    base, logit, noise, scale = _population(parts.counts, parts.between)
    # Towards the side with room: a baseline near 1 can only be shown to drop.
    up = float(base.mean()) + diff <= 1 - 1e-3
    cand = _shifted(base, logit, noise, scale, diff if up else -diff)
    rng = np.random.default_rng([cases, repeat, SIMULATED_RUNS])
    pick = rng.integers(0, base.size, (SIMULATED_RUNS, cases))
    sums = rng.binomial(repeat, cand[pick]) - rng.binomial(repeat, base[pick])
    p = sign_flip_p(sums, repeat)
    return float(np.mean(p <= level * (1 + 1e-9) + 1e-12))


def sign_flip_p(diffs: np.ndarray, repeat: int) -> np.ndarray:
    """Exact two-sided sign-flip p-values of runs (rows) of integer case differences.

    The test's t is monotone in the absolute signed sum (the sum of squares is the same for
    every sign assignment), so its p is the share of assignments whose |sum| reaches the
    observed one. A case differing by v adds ±v with equal chance, so the sum's
    characteristic function is the product of cos(v t) over cases: one FFT per run gives
    the exact distribution (to rounding), all runs at once.
    """
    values = np.abs(np.asarray(diffs, dtype=np.int64))
    width = max(1, int(values.sum(axis=1).max()))
    size = 2 * width + 1
    angle = 2 * np.pi * np.arange(size) / size
    present = np.unique(values[values > 0])
    counts = (values[:, :, None] == present[None, None, :]).sum(axis=1).astype(float)
    cos = np.cos(present[:, None] * angle[None, :])
    # The product of powers as a matrix product of logs, its sign from the negative factors.
    magnitude = np.exp(counts @ np.log(np.maximum(np.abs(cos), 1e-300)))
    negative = (counts @ (cos < 0).astype(float)) % 2
    phi = np.where(negative > 0.5, -magnitude, magnitude)
    dist = np.fft.fft(phi, axis=1).real / size
    shifts = np.arange(size)
    sums = np.abs(np.where(shifts <= width, shifts, shifts - size))
    observed = np.abs(np.asarray(diffs).sum(axis=1))
    p = (dist * (sums[None, :] >= observed[:, None])).sum(axis=1)
    return np.where(observed == 0, 1.0, np.clip(p, 0.0, 1.0))


def repeats_needed(diff: float, parts: Components, level: float, cap: int = 10_000) -> int | None:
    """For a single case: the fewest repetitions giving `POWER` against ``diff``."""
    if power(diff, parts, 1, cap, level) < POWER:
        return None
    low, high = 1, cap
    while high - low > 1:
        middle = (low + high) // 2
        if power(diff, parts, 1, middle, level) >= POWER:
            high = middle
        else:
            low = middle
    return high


def detectable(parts: Components, cases: int, repeat: int, level: float) -> float | None:
    """The smallest difference shown with `POWER` by this design, or None (not even 1)."""
    if power(1.0, parts, cases, repeat, level) < POWER:
        return None
    low, high = 0.0, 1.0
    for _ in range(20):
        middle = (low + high) / 2
        if power(middle, parts, cases, repeat, level) >= POWER:
            high = middle
        else:
            low = middle
    return high


# --- a plan for a whole run --------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """Cases x repetitions and what running every pattern of the test that way costs."""

    cases: int
    repeat: int
    calls: float
    cost: float | None


@dataclass(frozen=True)
class TestPlan:
    """The plan for one test function.

    ``designs`` reach `POWER` against ``diff`` for every comparison at ``level`` (empty
    when no number of cases would); ``detectable`` is the smallest difference the current
    ``cases`` x ``repeat`` shows with that power (None: none at all). ``note`` says why a
    test could not be planned.
    """

    test: str
    baseline: str
    patterns: tuple[str, ...]
    comparisons: int
    level: float
    diff: float
    cases: int
    repeat: int
    designs: tuple[Design, ...] = ()
    unpaired_cases: int | None = None
    detectable: float | None = None
    within: float | None = None
    between: float | None = None
    correlation: float | None = None
    calls_per_repetition: float = 0.0
    cost_per_repetition: float | None = None
    note: str | None = None


@dataclass(frozen=True)
class Plan:
    """Plans for every test of a run, and where the data came from."""

    diff: float
    alpha: float
    source: str
    tests: tuple[TestPlan, ...] = field(default_factory=tuple)
    note: str | None = None
    """A sentence printed under the first line (a pilot's spending)."""


def plan_from_run(
    items: Iterable[ItemResult],
    diff: float = DEFAULT_DIFF,
    *,
    alpha: float = 0.05,
    repeat: int | Mapping[str, int] | None = None,
    source: str = "",
    note: str | None = None,
) -> Plan:
    """Plan every test function of a run (a saved one, or a pilot).

    ``repeat``: the repetitions the run is set to (one number, or one per test); by default
    the most any item of the test ran.
    """
    from .analysis import by_case
    from .metrics import sorted_groups

    groups = sorted_groups(items)
    tests: dict[str, list[tuple[str, list[ItemResult]]]] = {}
    for key, group_items in groups.items():
        tests.setdefault(key.test, []).append((key.pattern, group_items))
    plans = []
    for test, members in tests.items():
        baseline = members[0][1][0].baseline_pattern
        scores = {
            pattern: {
                k: [v for v in vs if v is not None] for k, vs in by_case(group, "accuracy").items()
            }
            for pattern, group in members
        }
        cases = len({r.case for _, group in members for r in group})
        ran = max((r.n for _, group in members for r in group), default=1)
        wanted = repeat.get(test, ran) if isinstance(repeat, Mapping) else (repeat or ran)
        calls, cost = _per_repetition([r for _, group in members for r in group], cases)
        plans.append(
            _plan_test(test, baseline, scores, cases, max(1, wanted), diff, alpha, calls, cost)
        )
    return Plan(diff, alpha, source, tuple(plans), note)


def pilot_summary(items: Iterable[ItemResult]) -> tuple[str, str]:
    """Where a pilot's plan comes from, and what the pilot spent (for `Plan.note`)."""
    items = list(items)
    cases = len({(i.test, i.case) for i in items})
    repeat = max((i.n for i in items), default=0)
    calls = [c for i in items for r in i.repetitions for c in r.calls]
    live = [c for c in calls if not c.replayed]
    costs = [c.cost for c in live]
    paid = "cost n/a" if any(c is None for c in costs) else f"${sum(c or 0.0 for c in costs):,.4g}"
    note = f"The pilot spent {len(live):,} call{'s' if len(live) != 1 else ''}, {paid}"
    replayed = len(calls) - len(live)
    if replayed:
        note += f" ({replayed:,} more calls replayed from cassettes)"
    note += (
        "; its recordings are kept: the full run reuses them with --patterns-record=new_episodes."
        if live
        else "."
    )
    source = (
        f"from a pilot of {cases} case{'s' if cases != 1 else ''} x {repeat} "
        f"repetition{'s' if repeat != 1 else ''}"
    )
    return source, note


def _per_repetition(items: list[ItemResult], cases: int) -> tuple[float, float | None]:
    """Calls and dollars one repetition of one case costs, every pattern together."""
    per_pattern: dict[str, list[tuple[int, float | None]]] = {}
    for item in items:
        for rep in item.repetitions:
            per_pattern.setdefault(item.pattern, []).append((len(rep.calls), rep.cost))
    calls = 0.0
    cost: float | None = 0.0
    for values in per_pattern.values():
        calls += sum(c for c, _ in values) / len(values)
        known = [d for _, d in values if d is not None]
        if cost is not None and len(known) == len(values):
            cost += sum(known) / len(known)
        else:
            cost = None
    return calls, cost


def _plan_test(
    test: str,
    baseline: str,
    scores: Mapping[str, Scores],
    cases: int,
    repeat: int,
    diff: float,
    alpha: float,
    calls: float,
    cost: float | None,
) -> TestPlan:
    patterns = tuple(scores)
    base = scores.get(baseline)
    measured = [
        parts
        for pattern in patterns
        if pattern != baseline and base is not None
        for parts in [components(base, scores[pattern])]
        if parts is not None
    ]
    common = dict(
        test=test,
        baseline=baseline,
        patterns=patterns,
        diff=diff,
        cases=cases,
        repeat=repeat,
        calls_per_repetition=calls,
        cost_per_repetition=cost,
    )
    if not measured:
        why = (
            "only one pattern ran: nothing to compare"
            if len(patterns) < 2
            else f"the baseline pattern {baseline} has no answered repetitions"
            if base is None or not any(base.values())
            else "no pattern has two answered repetitions to measure noise on"
        )
        return TestPlan(comparisons=0, level=alpha, note=why, **common)  # type: ignore[arg-type]
    m = len(measured)
    level = alpha / m
    # The noisiest comparison decides: the plan must power every one of them.
    parts = max(measured, key=lambda p: p.variance(repeat))
    designs: list[Design] = []
    unpaired = None
    if parts.paired:
        for r in dict.fromkeys((repeat, 2 * repeat)):
            needed = cases_needed(diff, parts, r, level)
            if needed is not None:
                designs.append(_design(needed, r, calls, cost))
        if parts.spread > parts.between:
            # The same data without pairing: the case difficulty both patterns share stays
            # in the noise instead of cancelling.
            split = replace(parts, between=parts.spread)
            unpaired = cases_needed(diff, split, repeat, level)
    else:
        runs = repeats_needed(diff, parts, level)
        if runs is not None:
            designs.append(_design(1, runs, calls, cost))
    return TestPlan(
        comparisons=m,
        level=level,
        designs=tuple(designs),
        unpaired_cases=unpaired,
        detectable=detectable(parts, cases, repeat, level),
        within=parts.within,
        between=parts.between,
        correlation=parts.correlation,
        **common,  # type: ignore[arg-type]
    )


def _design(cases: int, repeat: int, calls: float, cost: float | None) -> Design:
    runs = cases * repeat
    return Design(cases, repeat, calls * runs, None if cost is None else cost * runs)


# --- rendering ---------------------------------------------------------------------------------


def render(plan: Plan, width: int = 80) -> str:
    """The plan as the terminal shows it, no line longer than ``width``."""
    import textwrap

    width = max(40, width)
    lines = textwrap.wrap(
        f"Plan to detect an accuracy difference of {plan.diff:.2f} with {POWER:.0%} power "
        f"({plan.source or 'this run'}; docs/statistics.md):",
        width,
        break_on_hyphens=False,
        break_long_words=False,
    )
    if plan.note is not None:
        lines.extend(textwrap.wrap(plan.note, width, break_on_hyphens=False))
    for t in plan.tests:
        lines.append("")
        lines.append(_fit(t.test, width))
        for text in plan_lines(t):
            lines.extend(textwrap.wrap(text, width, initial_indent="  ", subsequent_indent="    "))
    return "\n".join(lines) + "\n"


def plan_lines(t: TestPlan) -> list[str]:
    """What the plan says about one test, one sentence a line."""
    now = f"{t.cases} case{'s' if t.cases != 1 else ''} x {t.repeat} repetitions"
    if t.note is not None:
        return [f"{now}: {t.note}"]
    where = f"at {t.level:.2g} ({t.comparisons} comparison{'s' if t.comparisons != 1 else ''})"
    out = []
    if t.designs:
        options = " or ".join(f"{d.cases} x {d.repeat}" for d in t.designs)
        what = "cases x repetitions" if t.cases > 1 else "case x repetitions"
        first = t.designs[0]
        money = "" if first.cost is None else f", ${first.cost:,.4g}"
        out.append(
            f"needs {options} {what} {where}: about {first.calls:,.0f} calls{money} "
            f"for {first.cases} x {first.repeat}"
        )
        if t.unpaired_cases is not None:
            out.append(f"without pairing by case it would need {t.unpaired_cases} cases")
    else:
        out.append(f"no number of cases detects {t.diff:.2f} {where}")
    if t.detectable is None:
        out.append(f"now ({now}): cannot show any difference {where}")
    else:
        out.append(f"now ({now}): detects differences of {t.detectable:.2f} or more")
    return out


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def as_dict(plan: Plan) -> dict[str, object]:
    """The plan as JSON-safe data."""
    from dataclasses import asdict

    return asdict(plan)
