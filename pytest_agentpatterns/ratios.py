"""Latency and cost of a pattern relative to another: ratios estimated with intervals.

These are estimates, not tests in a test function's family (:mod:`.family`): how much
slower or dearer a pattern is matters for the choice, but the decision a test makes is
about accuracy. The same machinery gives the CI gates (:mod:`.gates`) their one-sided
tests of a ratio against a margin.

Cases are the units when several ran: each case's statistic (the p50 or p95 of its
repetitions, or their mean) is compared on the log scale, paired by case when both ran the
same cases. A single case has only its runs: the ratio of the two runs' statistics (a
quantile stays a quantile, never a geometric mean). For a quantile its interval and tests
are exact and distribution-free, from order statistics (each side's bound on its quantile
is a binomial fact about its runs; the two bounds are combined at a joint level), so a p95
from a few runs says it cannot be bounded rather than trusting a bootstrap of the tail;
a mean gets a seeded bootstrap interval. A ratio that is the same on every case is that
ratio: it prints without an interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from .stats import Interval, t_cdf, t_quantile, t_sf

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    _Array = NDArray[np.float64]
else:
    from .lazy_numpy import np

Statistic = Literal["p50", "p95", "mean"]
MaybeValues = Mapping[str, Sequence[float | None]]
"""Case id -> per-repetition values, where a value may be unknown (None or NaN)."""

QUANTILES: dict[str, float] = {"p50": 50.0, "p95": 95.0}
BOOTSTRAP_RESAMPLES = 9_999
_SAME = 1e-9


@dataclass(frozen=True)
class Ratio:
    """Candidate over baseline on one metric, with its interval, or why there is none.

    ``constant`` means the ratio is the same on every case (the interval is omitted).
    ``log_center``, ``log_se`` and ``df`` describe the t statistic on the log scale when
    the design has one (cases); a single case's ratio has a bootstrap distribution in
    ``bootstrap`` instead (log ratios, sorted). ``note`` says why there is no estimate.
    """

    metric: str
    statistic: Statistic
    estimate: float | None
    interval: Interval | None
    confidence: float
    method: str
    paired: bool
    n_cases: int
    constant: bool = False
    log_center: float | None = None
    log_se: float | None = None
    df: float | None = None
    bootstrap: tuple[float, ...] | None = None
    note: str | None = None
    runs: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    """A single case's quantile: the sorted (baseline, candidate) runs its bounds use."""

    def p_above(self, bound: float) -> float | None:
        """One-sided p-value of H1 "the true ratio is above ``bound``" (None: untestable)."""
        return self._p(bound, greater=True)

    def p_below(self, bound: float) -> float | None:
        """One-sided p-value of H1 "the true ratio is below ``bound``"."""
        return self._p(bound, greater=False)

    def bounds(self, level: float) -> Interval | None:
        """The two-sided interval at confidence ``1 - 2 * level`` (one-sided ``level`` each
        side), from the same statistic as `p_above`/`p_below`."""
        if self.estimate is None:
            return None
        if self.constant:
            return Interval(self.estimate, self.estimate)
        if self.log_se is not None and self.df is not None and self.log_center is not None:
            half = t_quantile(1 - level, self.df) * self.log_se
            return Interval(math.exp(self.log_center - half), math.exp(self.log_center + half))
        if self.runs is not None:
            low, high = _order_bounds(self._q(), *self.runs, level)
            if low == 0 and math.isinf(high):
                return None
            return Interval(min(low, self.estimate), max(high, self.estimate))
        if self.bootstrap:
            dist = np.asarray(self.bootstrap)
            low, high = np.quantile(dist, [level, 1 - level])
            return Interval(math.exp(float(low)), math.exp(float(high)))
        return None

    def _p(self, bound: float, greater: bool) -> float | None:
        if self.estimate is None or not bound > 0:
            return None
        if self.constant:
            beyond = self.estimate > bound if greater else self.estimate < bound
            return 0.0 if beyond and not _same(self.estimate, bound) else 1.0
        target = math.log(bound)
        if self.log_se is not None and self.df is not None and self.log_center is not None:
            if self.log_se == 0:
                return 1.0
            z = (self.log_center - target) / self.log_se
            return t_sf(z, self.df) if greater else t_cdf(z, self.df)
        if self.runs is not None:
            base, cand = self.runs
            if greater:
                return _order_p(self._q(), cand, base, bound)
            return _order_p(self._q(), base, cand, 1 / bound)
        if self.bootstrap:
            dist = np.asarray(self.bootstrap)
            share = float(np.mean(dist <= target) if greater else np.mean(dist >= target))
            return max(share, 1 / (dist.size + 1))
        return None

    def _q(self) -> float:
        return QUANTILES[self.statistic] / 100

    def reachable(self, level: float) -> tuple[bool, bool]:
        """Whether a single case's quantile tests (above, below the bound) could reject at
        ``level`` with any data: each needs an upper bound on one side's quantile."""
        if self.runs is None:
            return True, True
        base, cand = self.runs
        q, split = self._q(), _split(level)
        return q ** len(base) <= split, q ** len(cand) <= split


def _split(level: float) -> float:
    """Each of two independent bounds' risk so that both hold with ``1 - level``."""
    return 1 - math.sqrt(1 - level)


def _lower_risks(q: float, n: int) -> _Array:
    """Risk that the i-th smallest of n runs (i = 1..n) lies above the q quantile."""
    from scipy.special import bdtr  # binomial cdf, without importing scipy.stats

    return np.asarray(bdtr(np.arange(n), n, q), dtype=float)


def _upper_risks(q: float, n: int) -> _Array:
    """Risk that the j-th smallest of n runs (j = 1..n) lies below the q quantile."""
    from scipy.special import bdtrc  # binomial survival function

    return np.asarray(bdtrc(np.arange(n), n, q), dtype=float)


def _order_bounds(
    q: float, base: Sequence[float], cand: Sequence[float], level: float
) -> tuple[float, float]:
    """Bounds on the ratio of the q quantiles that hold together with ``1 - 2 * level``
    (0 or inf where the runs are too few to bound it)."""
    a = _split(level)
    b, c = np.sort(np.asarray(base)), np.sort(np.asarray(cand))

    def lower_of(x: _Array) -> float:  # the largest order statistic still below q, risk a
        ok = np.nonzero(_lower_risks(q, x.size) <= a)[0]
        return float(x[ok[-1]]) if ok.size else 0.0

    def upper_of(x: _Array) -> float:
        ok = np.nonzero(_upper_risks(q, x.size) <= a)[0]
        return float(x[ok[0]]) if ok.size else math.inf

    lc, uc, lb, ub = lower_of(c), upper_of(c), lower_of(b), upper_of(b)
    low = lc / ub if lc > 0 and math.isfinite(ub) else 0.0
    high = uc / lb if math.isfinite(uc) and lb > 0 else math.inf
    return low, high


def _order_p(
    q: float, high_side: Sequence[float], low_side: Sequence[float], bound: float
) -> float:
    """P-value of "the q quantile of ``high_side`` exceeds ``bound`` times that of
    ``low_side``": the smallest level at which a lower bound of the first over an upper
    bound of the second (each at the split risk) exceeds ``bound``. The bounds only move
    out as the level falls, so the rejections are nested and the p-value is valid."""
    h, lo = np.sort(np.asarray(high_side)), np.sort(np.asarray(low_side))
    risk_h = _lower_risks(q, h.size)  # h[i] lies above the quantile with this risk
    risk_l = _upper_risks(q, lo.size)  # lo[j] lies below the quantile with this risk
    best = 1.0
    for i in range(h.size):
        beaten = np.nonzero(h[i] > bound * lo * (1 + _SAME))[0]
        if beaten.size:
            a = max(float(risk_h[i]), float(risk_l[beaten[-1]]))
            best = min(best, 1 - (1 - a) ** 2)
    return best


def ratio(
    metric: str,
    baseline: MaybeValues,
    candidate: MaybeValues,
    *,
    statistic: Statistic,
    confidence: float = 0.95,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Ratio:
    """Candidate over baseline ``statistic`` (p50, p95 or mean) with its interval.

    Paired over common cases when at least two ran under both: the geometric mean of the
    per-case ratios of the statistic, with a t interval on the log ratios. Unpaired over
    cases (each side ran two or more): the ratio of the geometric means, Welch's interval.
    A single case: the ratio of the statistic over all runs, with a seeded percentile
    bootstrap interval (each side resampled on its own). Any unknown value makes the
    ratio unavailable rather than guessed.
    """
    if statistic not in ("p50", "p95", "mean"):
        raise ValueError(f"statistic must be one of p50, p95, mean; got {statistic!r}")

    def empty(note: str, paired: bool = False, n: int = 0) -> Ratio:
        return Ratio(metric, statistic, None, None, confidence, "none", paired, n, note=note)

    known_b, known_c = _known(baseline), _known(candidate)
    if known_b is None or known_c is None:
        side = "baseline" if known_b is None else "candidate"
        return empty(f"{metric} unknown for some {side} runs")
    base = {k: np.asarray(v) for k, v in known_b.items() if v}
    cand = {k: np.asarray(v) for k, v in known_c.items() if v}
    if not base or not cand:
        sides = [s for s, d in (("baseline", base), ("candidate", cand)) if not d]
        return empty(f"no runs for the {' and '.join(sides)}")
    common = sorted(base.keys() & cand.keys())
    what = "mean" if statistic == "mean" else statistic
    if len(common) >= 2:
        b = _each(statistic, [base[k] for k in common])
        c = _each(statistic, [cand[k] for k in common])
        informative = (b != 0) | (c != 0)
        b, c = b[informative], c[informative]
        if np.any(b <= 0) or np.any(c <= 0):
            return empty(f"ratio undefined: some cases have a {what} of 0", True, len(common))
        if b.size < 2:
            return empty("ratio undefined: fewer than two cases above 0", True, len(common))
        logs = np.log(c) - np.log(b)
        method = f"t interval on per-case log ratios of the {what}, paired"
        return _from_logs(metric, statistic, logs, None, confidence, method, True, len(common))
    if len(base) >= 2 and len(cand) >= 2:
        b = _each(statistic, [base[k] for k in sorted(base)])
        c = _each(statistic, [cand[k] for k in sorted(cand)])
        n_cases = len(base.keys() | cand.keys())
        if np.any(b <= 0) or np.any(c <= 0):
            return empty(f"ratio undefined: some cases have a {what} of 0", False, n_cases)
        method = f"Welch t interval on per-case log {what}, unpaired"
        return _from_logs(
            metric, statistic, np.log(c), np.log(b), confidence, method, False, n_cases
        )
    runs_b = np.concatenate(list(base.values()))
    runs_c = np.concatenate(list(cand.values()))
    n_cases = len(base.keys() | cand.keys())
    sb, sc = _stat(statistic, runs_b), _stat(statistic, runs_c)
    if not (sb > 0 and sc > 0):
        return empty(f"ratio undefined: a {what} of 0", False, n_cases)
    estimate = sc / sb
    exact = statistic != "mean"
    method = (
        f"ratio of the runs' {what}, exact order-statistic bounds, unpaired"
        if exact
        else f"ratio of the runs' {what}, seeded percentile bootstrap, unpaired"
    )
    if _all_same(runs_b) and _all_same(runs_c):
        return Ratio(
            metric, statistic, estimate, None, confidence, method, False, n_cases, constant=True
        )
    if runs_b.size < 2 or runs_c.size < 2:
        return Ratio(
            metric,
            statistic,
            estimate,
            None,
            confidence,
            method,
            False,
            n_cases,
            note="too few runs for an interval",
        )
    if exact:
        runs = (tuple(float(x) for x in runs_b), tuple(float(x) for x in runs_c))
        est = Ratio(
            metric, statistic, estimate, None, confidence, method, False, n_cases, runs=runs
        )
        shown = est.bounds((1 - confidence) / 2)
        if shown is None or shown.low == 0 or math.isinf(shown.high):
            return replace(est, note=f"too few runs to bound a {what} at {confidence:.0%}")
        return Ratio(
            metric, statistic, estimate, shown, confidence, method, False, n_cases, runs=runs
        )
    dist = _bootstrap_log_ratio(statistic, runs_b, runs_c, seed, resamples)
    tail = (1 - confidence) / 2
    low, high = np.quantile(dist, [tail, 1 - tail])
    interval = Interval(min(math.exp(float(low)), estimate), max(math.exp(float(high)), estimate))
    return Ratio(
        metric,
        statistic,
        estimate,
        interval,
        confidence,
        method,
        False,
        n_cases,
        bootstrap=tuple(float(x) for x in dist),
    )


def _from_logs(
    metric: str,
    statistic: Statistic,
    logs: _Array,
    baseline_logs: _Array | None,
    confidence: float,
    method: str,
    paired: bool,
    n_cases: int,
) -> Ratio:
    if baseline_logs is None:
        center = float(logs.mean())
        if _all_same(logs):
            return Ratio(
                metric,
                statistic,
                math.exp(center),
                None,
                confidence,
                method,
                paired,
                n_cases,
                constant=True,
            )
        se = float(logs.std(ddof=1)) / math.sqrt(logs.size)
        df = float(logs.size - 1)
    else:
        a, b = logs, baseline_logs
        center = float(a.mean() - b.mean())
        if _all_same(a) and _all_same(b):
            return Ratio(
                metric,
                statistic,
                math.exp(center),
                None,
                confidence,
                method,
                paired,
                n_cases,
                constant=True,
            )
        va, vb = float(a.var(ddof=1)) / a.size, float(b.var(ddof=1)) / b.size
        se = math.sqrt(va + vb)
        df = (
            (va + vb) ** 2
            / ((va**2 / (a.size - 1) if va else 0.0) + (vb**2 / (b.size - 1) if vb else 0.0))
            if va + vb > 0
            else float(a.size + b.size - 2)
        )
    half = t_quantile((1 + confidence) / 2, df) * se
    return Ratio(
        metric,
        statistic,
        math.exp(center),
        Interval(math.exp(center - half), math.exp(center + half)),
        confidence,
        method,
        paired,
        n_cases,
        log_center=center,
        log_se=se,
        df=df,
    )


def _bootstrap_log_ratio(
    statistic: Statistic, base: _Array, cand: _Array, seed: int, resamples: int
) -> _Array:
    rng = np.random.default_rng(seed)
    rb = base[rng.integers(0, base.size, size=(resamples, base.size))]
    rc = cand[rng.integers(0, cand.size, size=(resamples, cand.size))]
    if statistic == "mean":
        sb, sc = rb.mean(axis=1), rc.mean(axis=1)
    else:
        q = QUANTILES[statistic]
        sb, sc = np.percentile(rb, q, axis=1), np.percentile(rc, q, axis=1)
    with np.errstate(divide="ignore"):
        logs = np.log(sc) - np.log(sb)
    return np.sort(logs[np.isfinite(logs)])


def _each(statistic: Statistic, units: Sequence[_Array]) -> _Array:
    return np.array([_stat(statistic, u) for u in units], dtype=float)


def _stat(statistic: Statistic, values: _Array) -> float:
    if statistic == "mean":
        return float(values.mean())
    return float(np.percentile(values, QUANTILES[statistic]))


def _known(values: MaybeValues) -> dict[str, list[float]] | None:
    out: dict[str, list[float]] = {}
    for case, reps in values.items():
        if any(x is None or (isinstance(x, float) and math.isnan(x)) for x in reps):
            return None
        out[case] = [float(x) for x in reps if x is not None]
    return out


def _all_same(values: _Array) -> bool:
    if values.size == 0:
        return True
    return bool(np.all(np.abs(values - values[0]) <= _SAME * max(1.0, float(np.abs(values).max()))))


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= _SAME * max(1.0, abs(a), abs(b))
