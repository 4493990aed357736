"""Statistics for comparing orchestration patterns: summaries, comparisons, Holm, Pareto.

Per-repetition values arrive as ``Mapping[str, Sequence[float]]``: case id -> the values of
that case's repetitions. Cases are the unit of evidence: when the same cases ran under both
patterns the comparison is paired by case; otherwise it is unpaired, over cases when each side
has at least two, over repetitions when a single case was run. Wherever a comparison allows
it, its p-value and its interval come from one t statistic (`Location`), so an interval that
excludes "no change" always comes with p below 1 - confidence, and vice versa.
docs/statistics.md explains each number and test.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import stats as sps

Values = Mapping[str, Sequence[float]]
"""Case id -> values of that case's repetitions."""

MaybeValues = Mapping[str, Sequence[float | None]]
"""Like `Values`, where a repetition's value may be unknown (a cost without a price)."""

Statistic = Literal["p50", "p95", "mean"]
Kind = Literal["difference", "ratio"]

POWER = 0.8
"""Power at which the minimal detectable effect ("could miss up to X") is computed."""

N_RESAMPLES = 9999
"""Default number of bootstrap resamples."""

BOSCHLOO_MAX_RUNS = 100
"""Unpaired binary comparisons use Boschloo's exact test up to this many runs, Fisher's above."""

_QUANTILES: dict[str, float] = {"p50": 50.0, "p95": 95.0}
_TOLERANCE = 1e-12
"""Relative size below which a difference is rounding, not data."""
_Array = NDArray[np.float64]
_VectorStatistic = Callable[..., NDArray[np.float64]]


@dataclass(frozen=True)
class Interval:
    """A confidence interval ``[low, high]``."""

    low: float
    high: float

    def __contains__(self, value: object) -> bool:
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    @property
    def half_width(self) -> float:
        """Half the interval's width."""
        return (self.high - self.low) / 2


@dataclass(frozen=True)
class Location:
    """A mean (or a difference of means) with its standard error and degrees of freedom.

    The t-test and the t interval of a comparison are both read from one `Location`, so they
    agree: ``null`` lies outside ``interval(c)`` exactly when ``p_value(null) < 1 - c``. For a
    ratio the location is on the log scale. ``se`` 0 means the data show no variation at all:
    then any ``null`` other than ``center`` is rejected with p 0. ``df`` 0 means there is
    nothing to estimate a spread from: no interval, p 1.
    """

    center: float
    se: float
    df: float

    @property
    def testable(self) -> bool:
        """There is a spread to test against (at least one degree of freedom)."""
        return self.df > 0 and math.isfinite(self.se)

    def interval(self, confidence: float = 0.95) -> Interval | None:
        """The two-sided t interval at ``confidence``; None when not `testable`."""
        if not self.testable:
            return None
        half = float(sps.t.ppf((1 + confidence) / 2, self.df)) * self.se
        return Interval(self.center - half, self.center + half)

    def p_value(self, null: float = 0.0) -> float:
        """Two-sided p-value of H0: the true location is ``null``."""
        if not self.testable:
            return 1.0
        if self.se == 0:
            return 1.0 if _same(self.center, null) else 0.0
        return min(1.0, 2 * float(sps.t.sf(abs(self.center - null) / self.se, self.df)))

    def p_greater(self, null: float) -> float:
        """One-sided p-value of H1: the true location is above ``null``."""
        if not self.testable:
            return 1.0
        if self.se == 0:
            return 0.0 if self.center > null and not _same(self.center, null) else 1.0
        return float(sps.t.sf((self.center - null) / self.se, self.df))

    def p_less(self, null: float) -> float:
        """One-sided p-value of H1: the true location is below ``null``."""
        if not self.testable:
            return 1.0
        if self.se == 0:
            return 0.0 if self.center < null and not _same(self.center, null) else 1.0
        return float(sps.t.cdf((self.center - null) / self.se, self.df))

    @classmethod
    def paired(cls, diffs: _Array) -> Location:
        """The paired t statistic of per-case ``diffs`` (cases are the units)."""
        n = diffs.size
        center = float(diffs.mean())
        if n < 2:
            return cls(center, math.inf, 0.0)
        se = math.sqrt(float(diffs.var(ddof=1)) / n)
        return cls(center, _snap_se(se, center), float(n - 1))

    @classmethod
    def welch(cls, baseline: _Array, candidate: _Array) -> Location:
        """Welch's t for ``mean(candidate) - mean(baseline)`` (pooled when a side has one unit)."""
        nb, nc = baseline.size, candidate.size
        center = float(candidate.mean() - baseline.mean())
        if nb + nc < 3:
            return cls(center, math.inf, 0.0)
        if min(nb, nc) == 1:
            df = float(nb + nc - 2)
            ss = float(((baseline - baseline.mean()) ** 2).sum())
            ss += float(((candidate - candidate.mean()) ** 2).sum())
            se = math.sqrt(ss / df * (1 / nb + 1 / nc))
            return cls(center, _snap_se(se, center), df)
        vb = float(baseline.var(ddof=1)) / nb
        vc = float(candidate.var(ddof=1)) / nc
        if vb + vc == 0:
            return cls(center, 0.0, float(nb + nc - 2))
        df = (vb + vc) ** 2 / (vb**2 / (nb - 1) + vc**2 / (nc - 1))
        return cls(center, _snap_se(math.sqrt(vb + vc), center), df)


@dataclass(frozen=True)
class Summary:
    """One pattern's numbers for one test function, cases aggregated.

    ``accuracy`` is the mean over cases of each case's mean score; ``accuracy_method`` says how
    its interval was made: "wilson" (binary, one value per case or a single case),
    "wilson (design effect)" (binary, several cases with repetitions), "bootstrap" (graded,
    one value per case or a single case) or "t (per-case means)" (graded, several cases with
    repetitions). The interval always contains ``accuracy`` and lies in [0, 1]. Latency
    percentiles pool every repetition. ``cost_per_run`` is None when any run's cost is
    unknown; ``cost_per_correct`` (cost per run / accuracy) is also None when nothing was
    correct. ``tokens_per_run`` and ``calls_per_run`` are means over runs, None without data.
    """

    n: int
    n_cases: int
    accuracy: float | None
    accuracy_interval: Interval | None
    accuracy_method: str | None
    latency_p50: float | None
    latency_p95: float | None
    cost_per_run: float | None
    cost_per_correct: float | None
    tokens_per_run: float | None = None
    calls_per_run: float | None = None


@dataclass(frozen=True)
class Comparison:
    """A candidate pattern against the baseline pattern on one metric.

    ``kind`` is "difference" (candidate - baseline, accuracy) or "ratio" (candidate / baseline,
    latency and cost). ``p_value`` is two-sided, ``p_adjusted`` its Holm adjustment (set by
    `adjust`). ``n_cases`` counts the cases analysed (the common cases when paired);
    ``n_baseline``/``n_candidate`` the independent units on each side (cases, or repetitions
    when a single case was run). ``mde`` is the minimal detectable effect at 80% power (a
    difference, or a ratio >= 1 meaning that factor either way); ``note`` says, in words, what
    a non-significant or unavailable result means.
    """

    metric: str
    kind: Kind
    estimate: float | None
    interval: Interval | None
    p_value: float | None
    p_adjusted: float | None
    test: str
    paired: bool
    n_cases: int
    n_baseline: int = 0
    n_candidate: int = 0
    mde: float | None = None
    note: str | None = None


class Recommendation(NamedTuple):
    """The recommended pattern and a one-line reason."""

    pattern: str
    reason: str


@dataclass(frozen=True, eq=False)
class Design:
    """The units a comparison analyses, as made by `design`.

    Each unit is one array of repetition values: a case, or a single repetition when only one
    case was run. When ``paired``, ``baseline[i]`` and ``candidate[i]`` are the same case.
    """

    paired: bool
    baseline: tuple[_Array, ...]
    candidate: tuple[_Array, ...]
    n_cases: int

    @property
    def single_valued(self) -> bool:
        """Every unit holds exactly one value."""
        return all(u.size == 1 for u in self.baseline + self.candidate)

    def means(self) -> tuple[_Array, _Array]:
        """Per-unit means of the baseline and the candidate."""
        return self._means

    @cached_property
    def _means(self) -> tuple[_Array, _Array]:
        return _unit_means(self.baseline), _unit_means(self.candidate)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval, on the units of ``design``.

    ``location`` is the t statistic behind both (on the log scale for a ratio) when the
    estimate is a mean of per-unit values; tests at any null or margin are read from it.
    ``method`` names that test.
    """

    design: Design
    estimate: float | None
    interval: Interval | None
    note: str | None = None
    location: Location | None = None
    method: str | None = None


# --- one-sample summaries --------------------------------------------------------------------


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for ``successes`` out of ``n``; ``[0, 1]`` when ``n`` is 0."""
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return Interval(0.0, 1.0)
    ci = sps.binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    low = 0.0 if successes == 0 else max(0.0, float(ci.low))
    high = 1.0 if successes == n else min(1.0, float(ci.high))
    return Interval(low, high)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100, linear interpolation); NaN for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    if len(values) == 0:
        return math.nan
    return float(np.percentile(np.asarray(values, dtype=float), q))


def mean_interval(
    values: Sequence[float],
    confidence: float = 0.95,
    seed: int = 0,
    *,
    bounds: tuple[float, float] | None = None,
    n_resamples: int = N_RESAMPLES,
) -> Interval:
    """Bootstrap (BCa) interval for the mean of independent ``values``.

    With fewer than two values nothing is known: the result is ``bounds`` (e.g. ``(0, 1)`` for
    scores) or ``(-inf, inf)``. Identical values give a zero-width interval. The result is
    clipped to ``bounds`` when given.
    """
    arr = np.asarray(values, dtype=float)
    unknown = Interval(*bounds) if bounds is not None else Interval(-math.inf, math.inf)
    if arr.size < 2:
        return unknown
    estimate = float(arr.mean())
    interval = _bootstrap((arr,), _mean_stat, estimate, confidence, seed, "BCa", n_resamples)
    if interval is None:
        return unknown
    if bounds is not None:
        interval = Interval(max(bounds[0], interval.low), min(bounds[1], interval.high))
    return interval


def clustered_accuracy_interval(
    cases: Sequence[Sequence[float] | _Array], confidence: float = 0.95
) -> tuple[Interval, str]:
    """Interval for the mean of per-case mean scores, cases as clusters, and its method name.

    Binary scores: a Wilson interval at the effective sample size (Korn & Graubard 1998): the
    pooled repetitions shrunk by the design effect the spread of case means shows, and by
    ``(z / t_{k-1})**2`` for having only k cases; never more than the repetitions themselves.
    Graded scores: a t interval over the per-case means, whose standard error is never below
    what the repetitions within cases show alone. Both contain the estimate and stay in
    [0, 1], however few cases there are and however alike they happen to be.
    """
    arrays = [np.asarray(c, dtype=float) for c in cases if len(c) > 0]
    if not arrays:
        return Interval(0.0, 1.0), "wilson (design effect)"
    means = _unit_means(tuple(arrays))
    k = means.size
    estimate = float(means.mean())
    between = float(means.var(ddof=1)) / k if k > 1 else 0.0
    binary = all(bool(np.all((a == 0) | (a == 1))) for a in arrays)
    t = float(sps.t.ppf((1 + confidence) / 2, k - 1)) if k > 1 else math.inf
    if binary:
        z = float(sps.norm.ppf((1 + confidence) / 2))
        n_srs = k * k / sum(1 / a.size for a in arrays)
        n_eff = n_srs
        if between > 0 and 0 < estimate < 1:
            n_eff = min(n_srs, estimate * (1 - estimate) / between * (z / t) ** 2)
        return _wilson(estimate, n_eff, z), "wilson (design effect)"
    se = math.sqrt(max(between, _within_variance(tuple(arrays)) / k**2))
    low = max(0.0, min(estimate, estimate - t * se))
    high = min(1.0, max(estimate, estimate + t * se))
    return Interval(low, high), "t (per-case means)"


def summarize(
    accuracy: Values,
    latency: Values | None = None,
    cost: MaybeValues | None = None,
    tokens: Values | None = None,
    calls: Values | None = None,
    *,
    confidence: float = 0.95,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
) -> Summary:
    """Summarise one pattern of one test function.

    Binary accuracy with one repetition per case, or a single case, gets a Wilson interval;
    graded scores a bootstrap interval; several cases with several repetitions an interval
    that treats cases as clusters (`clustered_accuracy_interval`).
    """
    cases = {k: np.asarray(v, dtype=float) for k, v in accuracy.items() if len(v) > 0}
    n = sum(a.size for a in cases.values())
    acc: float | None = None
    interval: Interval | None = None
    method: str | None = None
    if n:
        pooled = np.concatenate(list(cases.values()))
        _check_scores(pooled)
        means = np.array([a.mean() for a in cases.values()])
        acc = float(means.mean())
        binary = bool(np.all((pooled == 0) | (pooled == 1)))
        clustered = len(cases) >= 2 and any(a.size > 1 for a in cases.values())
        if clustered:
            interval, method = clustered_accuracy_interval(list(cases.values()), confidence)
        elif binary:
            method = "wilson"
            interval = wilson_interval(int(pooled.sum()), n, confidence)
        else:
            method = "bootstrap"
            interval = mean_interval(
                pooled.tolist(), confidence, seed, bounds=(0.0, 1.0), n_resamples=n_resamples
            )
        interval = Interval(min(interval.low, acc), max(interval.high, acc))
    lat = [x for v in (latency or {}).values() for x in v]
    p50 = percentile(lat, 50) if lat else None
    p95 = percentile(lat, 95) if lat else None
    cost_per_run: float | None = None
    cost_per_correct: float | None = None
    costs = [x for v in (cost or {}).values() for x in v]
    if costs and all(c is not None and math.isfinite(c) for c in costs):
        known = [float(c) for c in costs if c is not None]
        cost_per_run = sum(known) / len(known)
        if acc is not None and acc > 0:
            cost_per_correct = cost_per_run / acc
    return Summary(
        n=n,
        n_cases=len(cases),
        accuracy=acc,
        accuracy_interval=interval,
        accuracy_method=method,
        latency_p50=p50,
        latency_p95=p95,
        cost_per_run=cost_per_run,
        cost_per_correct=cost_per_correct,
        tokens_per_run=_pooled_mean(tokens),
        calls_per_run=_pooled_mean(calls),
    )


# --- two-sample building blocks --------------------------------------------------------------


def newcombe_interval(
    successes_a: int, n_a: int, successes_b: int, n_b: int, confidence: float = 0.95
) -> Interval:
    """Newcombe's hybrid score interval (1998, method 10) for ``p_a - p_b``, independent samples."""
    if n_a == 0 or n_b == 0:
        return Interval(-1.0, 1.0)
    pa, pb = successes_a / n_a, successes_b / n_b
    la = wilson_interval(successes_a, n_a, confidence)
    lb = wilson_interval(successes_b, n_b, confidence)
    d = pa - pb
    low = d - math.sqrt((pa - la.low) ** 2 + (lb.high - pb) ** 2)
    high = d + math.sqrt((la.high - pa) ** 2 + (pb - lb.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high))


def newcombe_paired_interval(
    both: int, only_a: int, only_b: int, neither: int, confidence: float = 0.95
) -> Interval:
    """Newcombe's square-and-add interval (1998, method 10) for ``p_a - p_b``, paired outcomes.

    ``both``, ``only_a``, ``only_b`` and ``neither`` count the pairs where both, only A, only B
    and neither succeeded.
    """
    n = both + only_a + only_b + neither
    if n == 0:
        return Interval(-1.0, 1.0)
    ka, kb = both + only_a, both + only_b
    pa, pb = ka / n, kb / n
    la = wilson_interval(ka, n, confidence)
    lb = wilson_interval(kb, n, confidence)
    phi = 0.0
    margins = ka * (n - ka) * kb * (n - kb)
    if margins > 0:
        cross = both * neither - only_a * only_b
        # Newcombe's continuity correction: a positive cross-product difference loses n/2
        # (stopping at zero); a negative one is kept.
        if cross > n / 2:
            phi = (cross - n / 2) / math.sqrt(margins)
        elif cross < 0:
            phi = cross / math.sqrt(margins)
    da, ua = pa - la.low, la.high - pa
    db, ub = pb - lb.low, lb.high - pb
    d = pa - pb
    low = d - math.sqrt(max(0.0, da**2 - 2 * phi * da * ub + ub**2))
    high = d + math.sqrt(max(0.0, db**2 - 2 * phi * db * ua + ua**2))
    return Interval(max(-1.0, low), min(1.0, high))


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pair counts."""
    if only_a + only_b == 0:
        return 1.0
    return float(sps.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def design(baseline: Values, candidate: Values) -> Design:
    """Choose the units of a comparison.

    Paired by case when at least two cases ran under both patterns (only those cases count);
    otherwise unpaired: over cases when each side has at least two, over repetitions when a
    side ran a single case. Cases are taken in sorted id order, so results do not depend on
    mapping order.
    """
    base = {k: np.asarray(v, dtype=float) for k, v in baseline.items() if len(v) > 0}
    cand = {k: np.asarray(v, dtype=float) for k, v in candidate.items() if len(v) > 0}
    common = sorted(base.keys() & cand.keys())
    if len(common) >= 2:
        return Design(
            True, tuple(base[k] for k in common), tuple(cand[k] for k in common), len(common)
        )
    n_cases = len(base.keys() | cand.keys())
    if len(base) >= 2 and len(cand) >= 2:
        return Design(False, _by_case(base), _by_case(cand), n_cases)
    return Design(False, _by_repetition(base), _by_repetition(cand), n_cases)


def accuracy_difference(
    baseline: Values,
    candidate: Values,
    *,
    confidence: float = 0.95,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
) -> Estimate:
    """Candidate accuracy minus baseline accuracy, with its interval.

    Binary single outcomes get Newcombe intervals (paired or independent). Otherwise a t
    interval: paired, over per-case differences of mean score; unpaired, Welch's over per-unit
    means. Its `Location` is kept for tests. ``seed`` and ``n_resamples`` are accepted for
    compatibility; no resampling is done.
    """
    d = design(baseline, candidate)
    if not d.baseline or not d.candidate:
        return Estimate(d, None, None, _no_runs(d))
    for units in (d.baseline, d.candidate):
        _check_scores(np.concatenate(units))
    base_means, cand_means = d.means()
    if _binary(d) and d.single_valued:
        if d.paired:
            counts = paired_counts(base_means, cand_means)
            estimate = (counts[2] - counts[1]) / d.n_cases
            cells = (counts[0], counts[2], counts[1], counts[3])  # candidate first
            return Estimate(d, estimate, newcombe_paired_interval(*cells, confidence))
        kb, nb = int(base_means.sum()), base_means.size
        kc, nc = int(cand_means.sum()), cand_means.size
        return Estimate(d, kc / nc - kb / nb, newcombe_interval(kc, nc, kb, nb, confidence))
    if d.paired:
        location = Location.paired(cand_means - base_means)
        method = "t-test on per-case differences"
    else:
        location = Location.welch(base_means, cand_means)
        method = "Welch t-test on per-unit means"
    interval = location.interval(confidence)
    if interval is not None:
        interval = Interval(max(-1.0, interval.low), min(1.0, interval.high))
    note = None if interval else "too few units for an interval"
    return Estimate(d, location.center, interval, note, location, method)


def ratio_estimate(
    metric: str,
    baseline: MaybeValues,
    candidate: MaybeValues,
    *,
    statistic: Statistic,
    confidence: float = 0.95,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
) -> Estimate:
    """Candidate over baseline ``statistic`` (p50, p95 or mean), with its t interval.

    Each unit's statistic is taken (a case's p95 over its repetitions; a single run's value
    when units are runs) and compared on the log scale. Paired, the estimate is the geometric
    mean over cases of the per-case ratios, with a paired t interval; unpaired, the ratio of
    the sides' geometric means, with Welch's interval. Cases where both sides' statistic is 0
    say nothing about a ratio and are left out; a statistic of 0 on one side only, or a
    baseline statistic of 0 overall, makes the ratio undefined. ``seed`` and ``n_resamples``
    are accepted for compatibility; no resampling is done.
    """
    if statistic not in ("p50", "p95", "mean"):
        raise ValueError(f"statistic must be one of p50, p95, mean; got {statistic!r}")
    known = _known(baseline), _known(candidate)
    if known[0] is None or known[1] is None:
        side = "baseline" if known[0] is None else "candidate"
        return Estimate(design({}, {}), None, None, f"{metric} unknown for some {side} runs")
    d = design(known[0], known[1])
    if not d.baseline or not d.candidate:
        return Estimate(d, None, None, _no_runs(d))
    if statistic == "mean":
        denominator = float(d.means()[0].mean())
    else:
        denominator = float(np.percentile(np.concatenate(d.baseline), _QUANTILES[statistic]))
    if not denominator > 0:
        return Estimate(d, None, None, f"ratio undefined: baseline {statistic} is {denominator:g}")
    base = _unit_statistic(d.baseline, statistic)
    cand = _unit_statistic(d.candidate, statistic)
    what = "mean" if statistic == "mean" else statistic
    if d.paired:
        informative = (base != 0) | (cand != 0)
        base, cand = base[informative], cand[informative]
    for side, values in (("baseline", base), ("candidate", cand)):
        if np.any(values <= 0):
            units = "cases" if d.paired or not d.single_valued else "runs"
            return Estimate(
                d, None, None, f"ratio undefined: some {side} {units} have a {what} of 0 or less"
            )
    if d.paired:
        if base.size < 2:
            return Estimate(d, None, None, "ratio undefined: fewer than two cases above 0")
        location = Location.paired(np.log(cand) - np.log(base))
        method = f"t-test on per-case log ratios of the {what}"
    else:
        location = Location.welch(np.log(base), np.log(cand))
        method = (
            "Welch t-test on log values"
            if d.single_valued
            else f"Welch t-test on per-case log {what}"
        )
    log_interval = location.interval(confidence)
    interval = (
        None
        if log_interval is None
        else Interval(math.exp(log_interval.low), math.exp(log_interval.high))
    )
    note = None if interval else "too few units for an interval"
    return Estimate(d, math.exp(location.center), interval, note, location, method)


def paired_counts(
    baseline: Sequence[float] | _Array, candidate: Sequence[float] | _Array
) -> tuple[int, int, int, int]:
    """Pairs of binary outcomes counted as (both, baseline only, candidate only, neither)."""
    b = np.asarray(baseline) == 1
    c = np.asarray(candidate) == 1
    return (
        int(np.sum(b & c)),
        int(np.sum(b & ~c)),
        int(np.sum(~b & c)),
        int(np.sum(~b & ~c)),
    )


# --- comparisons -----------------------------------------------------------------------------


def compare_accuracy(
    baseline: Values,
    candidate: Values,
    *,
    confidence: float = 0.95,
    alpha: float = 0.05,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
) -> Comparison:
    """Accuracy difference (candidate - baseline) with interval and two-sided p-value.

    Paired, one binary outcome per case: exact McNemar. Paired otherwise: t-test on per-case
    differences of mean score (see `accuracy_difference`). Unpaired binary: Boschloo's exact
    test (Fisher's beyond `BOSCHLOO_MAX_RUNS` runs). Unpaired otherwise: Welch's t-test on
    per-unit means. The t-tests are read from the same statistic as the interval.
    """
    est = accuracy_difference(
        baseline, candidate, confidence=confidence, seed=seed, n_resamples=n_resamples
    )
    d = est.design
    if est.estimate is None:
        return _unavailable("accuracy", "difference", est)
    base_means, cand_means = d.means()
    p: float
    if est.location is not None:
        test, p = est.method or "t-test", est.location.p_value(0.0)
    elif d.paired:
        _, only_b, only_c, _ = paired_counts(base_means, cand_means)
        test, p = "exact McNemar", mcnemar_exact(only_c, only_b)
    else:
        kb, nb = int(base_means.sum()), base_means.size
        kc, nc = int(cand_means.sum()), cand_means.size
        table = [[kc, nc - kc], [kb, nb - kb]]
        if nb + nc <= BOSCHLOO_MAX_RUNS:
            test, p = "Boschloo exact", _boschloo(table)
        else:
            test, p = "Fisher exact", float(sps.fisher_exact(table).pvalue)
    return _comparison("accuracy", "difference", est, p, test, confidence, alpha)


def compare_ratio(
    metric: str,
    baseline: MaybeValues,
    candidate: MaybeValues,
    *,
    statistic: Statistic = "p50",
    confidence: float = 0.95,
    alpha: float = 0.05,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
) -> Comparison:
    """Ratio of ``statistic`` (candidate / baseline) with interval and two-sided p-value.

    The p-value is the t-test behind `ratio_estimate`'s interval: paired, on per-case log
    ratios of the statistic; unpaired, Welch's on the units' log statistic. Any unknown value
    (None) makes the comparison unavailable rather than guessed.
    """
    est = ratio_estimate(
        metric,
        baseline,
        candidate,
        statistic=statistic,
        confidence=confidence,
        seed=seed,
        n_resamples=n_resamples,
    )
    if est.estimate is None or est.location is None:
        return _unavailable(metric, "ratio", est)
    p = est.location.p_value(0.0)
    return _comparison(metric, "ratio", est, p, est.method or "t-test", confidence, alpha)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values, in input order; None (and NaN) stay None."""
    present = [i for i, p in enumerate(p_values) if p is not None and not math.isnan(p)]
    adjusted: list[float | None] = [None] * len(p_values)
    m = len(present)
    running = 0.0
    for rank, i in enumerate(sorted(present, key=lambda j: (p_values[j], j))):
        p = p_values[i]
        assert p is not None
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def adjust(comparisons: Sequence[Comparison], alpha: float = 0.05) -> list[Comparison]:
    """Holm-adjust the p-values of all ``comparisons`` together and refresh their notes."""
    adjusted = holm([c.p_value for c in comparisons])
    out = []
    for c, p in zip(comparisons, adjusted, strict=True):
        note = _power_note(c.kind, p, c.mde, alpha, c.estimate) if p is not None else c.note
        out.append(replace(c, p_adjusted=p, note=note))
    return out


# --- choosing a pattern ----------------------------------------------------------------------


def recommend(
    accuracy: Mapping[str, Values],
    cost: Mapping[str, float | None],
    latency: Mapping[str, float | None],
    *,
    alpha: float = 0.05,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
) -> Recommendation | None:
    """The cheapest, then fastest, pattern not significantly less accurate than the best.

    ``accuracy`` maps pattern -> case -> repetition scores; ``cost`` is cost per run (None:
    unknown, ranked after every known cost) and ``latency`` the p50 in seconds. "Significantly
    less accurate" is `compare_accuracy` against the most accurate pattern at ``alpha``,
    unadjusted (so the choice errs towards accuracy). None when no pattern has runs.
    """
    accs = {
        name: float(np.mean([np.mean(v) for v in cases.values() if len(v)]))
        for name, cases in accuracy.items()
        if any(len(v) for v in cases.values())
    }
    if not accs:
        return None

    def rank(name: str) -> tuple[float, float, float, str]:
        c, lat = cost.get(name), latency.get(name)
        return (
            math.inf if c is None else c,
            math.inf if lat is None else lat,
            -accs[name],
            name,
        )

    best = min(accs, key=lambda name: (-accs[name], *rank(name)))
    eligible = [best]
    for name in sorted(accs):
        if name == best:
            continue
        cmp = compare_accuracy(
            accuracy[best], accuracy[name], alpha=alpha, seed=seed, n_resamples=n_resamples
        )
        worse = cmp.p_value is not None and cmp.p_value < alpha and (cmp.estimate or 0) < 0
        if not worse:
            eligible.append(name)
    chosen = min(eligible, key=rank)
    if len(eligible) == 1:
        return Recommendation(
            chosen,
            f"{chosen}: the most accurate ({accs[chosen]:.2f}); every other pattern is "
            f"significantly less accurate (alpha={alpha:g})",
        )
    qualities = []
    costs = [cost.get(n) for n in eligible]
    lats = [latency.get(n) for n in eligible]
    c, lat = cost.get(chosen), latency.get(chosen)
    if c is not None and all(x is None or c <= x for x in costs):
        qualities.append(f"cheapest (${c:.4g}/run)")
    if lat is not None and all(x is None or lat <= x for x in lats):
        qualities.append(f"fastest (p50 {lat:.3g} s)")
    what = " and ".join(qualities) or "first by cost, then latency"
    group = f"of the {len(eligible)} patterns not significantly less accurate"
    if chosen == best:
        reason = f"the most accurate ({accs[best]:.2f}) and {what} {group}"
    else:
        reason = f"{what} {group} than {best} ({accs[best]:.2f})"
    return Recommendation(chosen, f"{chosen}: {reason}")


# --- formatting ------------------------------------------------------------------------------


def format_p(p: float) -> str:
    """A p-value for people: ``p<0.001`` or two significant digits."""
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


def format_change(value: float, kind: Kind) -> str:
    """A difference as ``+0.120``, a ratio as a signed percentage ``+34%``."""
    if kind == "difference":
        return f"{value:+.3f}"
    return f"{(value - 1) * 100:+.0f}%"


# --- internals -------------------------------------------------------------------------------


def _comparison(
    metric: str, kind: Kind, est: Estimate, p: float, test: str, confidence: float, alpha: float
) -> Comparison:
    d = est.design
    mde = _mde(kind, est, confidence, alpha)
    note = _power_note(kind, p, mde, alpha, est.estimate) or est.note
    return Comparison(
        metric=metric,
        kind=kind,
        estimate=est.estimate,
        interval=est.interval,
        p_value=p,
        p_adjusted=None,
        test=test + (", paired" if d.paired else ", unpaired"),
        paired=d.paired,
        n_cases=d.n_cases,
        n_baseline=len(d.baseline),
        n_candidate=len(d.candidate),
        mde=mde,
        note=note,
    )


def _unavailable(metric: str, kind: Kind, est: Estimate) -> Comparison:
    d = est.design
    return Comparison(
        metric=metric,
        kind=kind,
        estimate=None,
        interval=None,
        p_value=None,
        p_adjusted=None,
        test="none",
        paired=d.paired,
        n_cases=d.n_cases,
        n_baseline=len(d.baseline),
        n_candidate=len(d.candidate),
        note=f"not compared: {est.note}",
    )


def _mde(kind: Kind, est: Estimate, confidence: float, alpha: float) -> float | None:
    """Minimal detectable effect at `POWER`: from the t statistic's standard error when there
    is one, else from the standard error the interval implies (a normal approximation)."""
    loc = est.location
    if loc is not None:
        if not loc.testable:
            return None
        k = float(sps.t.ppf(1 - alpha / 2, loc.df) + sps.t.ppf(POWER, loc.df))
        return k * loc.se if kind == "difference" else math.exp(k * loc.se)
    interval = est.interval
    if interval is None:
        return None
    z_conf = float(sps.norm.ppf((1 + confidence) / 2))
    k = float(sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(POWER))
    if kind == "difference":
        return k * (interval.high - interval.low) / (2 * z_conf)
    if not (0 < interval.low and math.isfinite(interval.high)):
        return None
    se = (math.log(interval.high) - math.log(interval.low)) / (2 * z_conf)
    return math.exp(k * se)


def _power_note(
    kind: Kind, p: float | None, mde: float | None, alpha: float, estimate: float | None
) -> str | None:
    if p is None or p < alpha:
        return None
    null = 0.0 if kind == "difference" else 1.0
    no_spread = mde is not None and (mde < 1e-9 if kind == "difference" else mde < 1 + 1e-9)
    if no_spread and estimate is not None and _same(estimate, null):
        return "no difference observed (every difference is exactly zero)"
    if mde is None or no_spread:
        return "no detectable difference (n too small to say how large a change could be missed)"
    if kind == "difference":
        return f"no detectable difference (n too small: could miss up to {mde:.2f})"
    return f"no detectable difference (n too small: could miss up to {mde:.2f}x either way)"


def _no_runs(d: Design) -> str:
    sides = [s for s, u in (("baseline", d.baseline), ("candidate", d.candidate)) if not u]
    return f"no runs for the {' and '.join(sides)}"


def _by_case(cases: Mapping[str, _Array]) -> tuple[_Array, ...]:
    return tuple(cases[k] for k in sorted(cases))


def _by_repetition(cases: Mapping[str, _Array]) -> tuple[_Array, ...]:
    return tuple(np.array([x]) for k in sorted(cases) for x in cases[k])


def _pooled_mean(values: Values | None) -> float | None:
    pooled = [x for v in (values or {}).values() for x in v]
    return float(np.mean(pooled)) if pooled else None


def _unit_means(units: tuple[_Array, ...]) -> _Array:
    return np.fromiter((float(u.sum()) / u.size for u in units), dtype=float, count=len(units))


def _binary(d: Design) -> bool:
    return all(bool(np.all((u == 0) | (u == 1))) for u in d.baseline + d.candidate)


def _check_scores(values: _Array) -> None:
    bad = values[~((values >= 0) & (values <= 1))]
    if bad.size:
        raise ValueError(f"accuracy values must be scores in [0, 1], got {bad[0]!r}")


def _known(values: MaybeValues) -> dict[str, list[float]] | None:
    """The values as floats, or None when any is unknown (None or NaN)."""
    out: dict[str, list[float]] = {}
    for case, reps in values.items():
        if any(x is None or math.isnan(x) for x in reps):
            return None
        out[case] = [float(x) for x in reps if x is not None]
    return out


def _same(a: float, b: float) -> bool:
    """Equal up to rounding."""
    return abs(a - b) <= _TOLERANCE * max(1.0, abs(a), abs(b))


def _snap_se(se: float, center: float) -> float:
    """A standard error that is only rounding noise (constant data) becomes exactly 0."""
    return 0.0 if se <= _TOLERANCE * max(1.0, abs(center)) else se


def _within_variance(units: tuple[_Array, ...]) -> float:
    """Sum over units of the variance of a unit's mean that its own repetitions show."""
    return sum(float(u.var(ddof=1)) / u.size for u in units if u.size > 1)


def _wilson(p: float, n: float, z: float) -> Interval:
    """Wilson score interval for a proportion ``p`` at a (possibly fractional) sample size."""
    if n <= 0:
        return Interval(0.0, 1.0)
    z2n = z * z / n
    center = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / n + z2n / (4 * n))
    low = 0.0 if p <= 0 else max(0.0, min(p, float(center - half)))
    high = 1.0 if p >= 1 else min(1.0, max(p, float(center + half)))
    return Interval(low, high)


def _unit_statistic(units: tuple[_Array, ...], statistic: Statistic) -> _Array:
    """Each unit's mean or percentile (linear interpolation)."""
    if statistic == "mean":
        return _unit_means(units)
    q = _QUANTILES[statistic]
    return np.array([float(np.percentile(u, q)) for u in units], dtype=float)


def _mean_stat(x: _Array, axis: int = -1) -> _Array:
    return np.asarray(np.mean(x, axis=axis), dtype=float)


def _bootstrap(
    data: tuple[NDArray[np.generic], ...],
    statistic: _VectorStatistic,
    estimate: float,
    confidence: float,
    seed: int,
    method: Literal["BCa", "percentile"],
    n_resamples: int,
) -> Interval | None:
    """A seeded scipy bootstrap interval, widened to contain ``estimate``; None below 2 units."""
    if any(len(sample) < 2 for sample in data):
        return None
    batch = max(1, 4_000_000 // max(1, sum(len(s) for s in data)))
    with warnings.catch_warnings():
        # BCa warns (and gives NaN) on degenerate bootstrap distributions; handled below.
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", sps.DegenerateDataWarning)
        res = sps.bootstrap(
            data,
            statistic,
            vectorized=True,
            confidence_level=confidence,
            n_resamples=n_resamples,
            method=method,
            batch=batch,
            rng=np.random.default_rng(seed),
        )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        dist = np.asarray(res.bootstrap_distribution, dtype=float)
        dist = dist[np.isfinite(dist)]
        if dist.size == 0:
            return Interval(estimate, estimate)
        tail = (1 - confidence) / 2 * 100
        low, high = (float(x) for x in np.percentile(dist, [tail, 100 - tail]))
    return Interval(min(low, estimate), max(high, estimate))


def _boschloo(table: list[list[int]]) -> float:
    if min(sum(table[0]), sum(table[1])) == 0 or {
        table[0][0] + table[1][0],
        table[0][1] + table[1][1],
    } & {0}:
        return 1.0
    return float(sps.boschloo_exact(np.array(table)).pvalue)
