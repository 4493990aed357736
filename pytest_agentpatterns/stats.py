"""One pattern's numbers for one test function: accuracy with its interval, percentiles.

Per-repetition values arrive as ``Mapping[str, Sequence[float]]``: case id -> the values of
that case's repetitions. Cases are the unit of evidence (Miller 2024, "Adding error bars to
evals"): repetitions of one case share its input, so the accuracy interval treats cases as
clusters. Comparisons between patterns live in :mod:`.family` (accuracy) and
:mod:`.ratios` (latency, cost); docs/statistics.md explains every number.

The intervals were chosen for coverage at the sizes tests have (6 to 30 cases), measured
by ``benchmarks/coverage.py``:

- binary scores, several cases with repetitions: a score (Wilson-type) interval whose
  variance is that of the mean of case means, estimated from the cases' spread, with
  Student's t on k - 1 degrees of freedom; when every case has the same mean there is no
  spread to estimate, and the Wilson interval over all runs is used;
- binary scores, one value per case or a single case: the Wilson interval;
- graded scores (``agent.score``): a studentized (bootstrap-t) interval over the case means
  (over the runs of a single case), seeded; it follows the skew that small samples of
  bounded scores have, where a t interval does not (Bowyer et al. 2025).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    _Array = NDArray[np.float64]
else:
    from .lazy_numpy import np


Values = Mapping[str, Sequence[float]]
"""Case id -> values of that case's repetitions."""

MaybeValues = Mapping[str, Sequence[float | None]]
"""Like `Values`, where a repetition's value may be unknown (a cost without a price)."""

BOOTSTRAP_RESAMPLES = 9999
"""Resamples of the graded-score bootstrap-t interval."""


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

    def excludes(self, value: float) -> bool:
        """Whether ``value`` lies outside the interval."""
        return value < self.low or value > self.high


@dataclass(frozen=True)
class Summary:
    """One pattern's numbers for one test function, cases aggregated.

    ``accuracy`` is the mean over cases of each case's mean score; ``accuracy_method``
    names how its interval was made (module docstring). The interval always contains
    ``accuracy`` and lies in [0, 1]. Latency percentiles pool every repetition.
    ``cost_per_run`` is None when any run's cost is unknown; ``cost_per_correct`` (cost per
    run / accuracy) is also None when nothing was correct.
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


def z_quantile(p: float) -> float:
    """The standard normal quantile (no scipy needed)."""
    return NormalDist().inv_cdf(p)


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile; the normal one beyond a million degrees of freedom.

    Two degrees of freedom have a closed form (the one scipy computes, bit for bit); other
    counts use ``scipy.special.stdtrit``, which ``scipy.stats.t.ppf`` calls, imported only
    here and without ``scipy.stats`` (a second's import).
    """
    if df > 1e6:
        return z_quantile(p)
    if df == 2 and 0 < p < 1:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def t_sf(x: float, df: float) -> float:
    """P(T > x) for Student's t: ``scipy.stats.t.sf``, through ``scipy.special``."""
    from scipy.special import stdtr

    return float(stdtr(df, -x))


def t_cdf(x: float, df: float) -> float:
    """P(T <= x) for Student's t: ``scipy.stats.t.cdf``, through ``scipy.special``."""
    from scipy.special import stdtr

    return float(stdtr(df, x))


def wilson_interval(successes: float, n: float, confidence: float = 0.95) -> Interval:
    """Wilson score interval for ``successes`` out of ``n`` (either may be fractional)."""
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return Interval(0.0, 1.0)
    z = z_quantile((1 + confidence) / 2)
    return _score(successes / n, z * z / n)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100, linear interpolation); NaN for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    if len(values) == 0:
        return math.nan
    # numpy.percentile's "linear" method, step for step (so the same float), without
    # numpy's per-call set-up, which cost more than the rest of a small test's summary.
    ordered = sorted(float(v) for v in values)
    if any(math.isnan(v) for v in ordered):
        return math.nan
    index = (len(ordered) - 1) * (q / 100)
    low = min(math.floor(index), len(ordered) - 1)
    a, b = ordered[low], ordered[min(low + 1, len(ordered) - 1)]
    t = index - low
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def sample_variance(values: Sequence[float]) -> float:
    """The unbiased sample variance (n - 1); 0 below two values."""
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return sum((v - mean) ** 2 for v in values) / (n - 1)


def accuracy_interval(
    cases: Sequence[Sequence[float] | _Array], confidence: float = 0.95, seed: int = 0
) -> tuple[Interval, str]:
    """The interval for the mean of per-case mean scores, and the name of its method.

    See the module docstring for the choice; the result contains the estimate and lies in
    [0, 1].
    """
    arrays = [np.asarray(c, dtype=float) for c in cases if len(c) > 0]
    if not arrays:
        return Interval(0.0, 1.0), "none"
    for a in arrays:
        _check_scores(a)
    binary = all(bool(np.all((a == 0) | (a == 1))) for a in arrays)
    clustered = len(arrays) >= 2 and any(a.size > 1 for a in arrays)
    if binary:
        if not clustered:
            pooled = np.concatenate(arrays)
            return wilson_interval(float(pooled.sum()), pooled.size, confidence), "wilson"
        return _clustered_score(arrays, confidence)
    pooled = np.concatenate(arrays)
    if float(np.ptp(pooled)) == 0:
        # Every score the same: nothing to estimate a spread from, so the widest a mean of
        # scores in [0, 1] can have (a 0/1 score's, at this mean).
        estimate = float(pooled[0])
        return _over_runs(estimate, pooled.size, confidence), "wilson (every score the same)"
    units = [a for a in arrays] if clustered else [np.array([x]) for a in arrays for x in a]
    return _bootstrap_t(units, confidence, seed), (
        "bootstrap-t over case means" if clustered or len(arrays) > 1 else "bootstrap-t over runs"
    )


def summarize(
    accuracy: Values,
    latency: Values | None = None,
    cost: MaybeValues | None = None,
    tokens: Values | None = None,
    calls: Values | None = None,
    *,
    confidence: float = 0.95,
    seed: int = 0,
) -> Summary:
    """Summarise one pattern of one test function (see `accuracy_interval`)."""
    acc: float | None = None
    interval: Interval | None = None
    method: str | None = None
    cases: dict[str, Any] = {k: v for k, v in accuracy.items() if len(v) > 0}
    n = 0
    if cases:
        one = _one_binary_case(cases)
        if one is not None:
            # The same floats numpy gives: the sum of 0s and 1s is exact, so is its mean's one
            # rounding, and a mean over one case is that case's mean.
            n, successes = len(one), sum(one)
            acc = successes / n
            interval, method = wilson_interval(successes, n, confidence), "wilson"
        else:
            cases = {k: np.asarray(v, dtype=float) for k, v in cases.items()}
            n = sum(a.size for a in cases.values())
            ordered = [cases[k] for k in sorted(cases)]
            acc = float(np.mean([a.mean() for a in ordered]))
            interval, method = accuracy_interval(ordered, confidence, seed)
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


# --- formatting ------------------------------------------------------------------------------


def format_p(p: float) -> str:
    """A p-value for people: ``p<0.001``, two significant digits, or ``p>0.5``.

    Never ``p=1``: an adjusted p-value capped at 1 says only that nothing was shown, which
    the verdict beside it already says.
    """
    if p < 0.001:
        return "p<0.001"
    return "p>0.5" if p > 0.5 else f"p={p:.2g}"


def format_difference(value: float, digits: int = 3) -> str:
    """An accuracy difference: ``+0.120``."""
    return f"{value:+.{digits}f}"


def format_ratio(value: float) -> str:
    """A ratio as a signed percentage: ``+34%`` (``x5.0`` beyond +999%)."""
    if value >= 10:
        return f"x{value:.1f}"
    return f"{(value - 1) * 100:+.0f}%"


# --- internals -------------------------------------------------------------------------------


def _score(p: float, a: float) -> Interval:
    """Roots of ``(p - x)**2 = a * x * (1 - x)``: the score interval around ``p``."""
    if a <= 0:
        return Interval(p, p)
    center = (p + a / 2) / (1 + a)
    half = math.sqrt(max(0.0, a * p * (1 - p) + a * a / 4)) / (1 + a)
    low = 0.0 if p <= 0 else max(0.0, min(p, center - half))
    high = 1.0 if p >= 1 else min(1.0, max(p, center + half))
    return Interval(low, high)


def _clustered_score(arrays: Sequence[_Array], confidence: float) -> tuple[Interval, str]:
    """Binary scores over k cases with repetitions: the design-effect score interval, or,
    with cases alike (no spread between them to scale by), Wilson's over all runs; with
    the name of the method used."""
    means = np.array([a.mean() for a in arrays])
    k = means.size
    runs = sum(a.size for a in arrays)
    estimate = float(means.mean())
    spread = float(means.var(ddof=1))
    if spread <= 1e-15:
        return _over_runs(estimate, runs, confidence), "wilson (cases alike)"
    smoothed = (estimate * runs + 0.5) / (runs + 1)
    per_unit = spread / (k * smoothed * (1 - smoothed))
    t = t_quantile((1 + confidence) / 2, k - 1)
    return _score(estimate, t * t * per_unit), "score, cases as clusters (t)"


def _over_runs(estimate: float, runs: int, confidence: float) -> Interval:
    """Wilson's score interval at ``estimate`` over ``runs`` runs."""
    z = z_quantile((1 + confidence) / 2)
    return _score(estimate, z * z / runs)


def _bootstrap_t(
    units: Sequence[_Array], confidence: float, seed: int, resamples: int = BOOTSTRAP_RESAMPLES
) -> Interval:
    """Studentized bootstrap interval for the mean of the units' means, clipped to [0, 1].

    The standard error is the units' means' alone: it already holds the repetitions' spread.
    (Flooring it at the spread within units, as this once did, took the larger of two
    estimates of one quantity when cases are alike: 98% coverage at 6 and 12 cases x 5.)
    """
    means = np.array([a.mean() for a in units])
    k = means.size
    estimate = float(means.mean())
    if k < 2:
        return Interval(0.0, 1.0)
    se = float(means.std(ddof=1)) / math.sqrt(k)
    if se == 0:
        # Units alike to the last digit: the spread within them is all there is to go by.
        se = math.sqrt(sum(float(a.var(ddof=1)) / a.size for a in units if a.size > 1)) / k
    if se == 0:
        return Interval(estimate, estimate)
    rng = np.random.default_rng(seed)
    picks = means[rng.integers(0, k, size=(resamples, k))]
    boot_means = picks.mean(axis=1)
    boot_se = picks.std(axis=1, ddof=1) / math.sqrt(k)
    # A resample of one repeated value has no spread: its studentized value is infinite, on
    # the side its mean lies. Dropping such resamples (common with few cases and tied
    # partial-credit scores, and always on the side near a bound) shrank the interval
    # towards the bound: 4-field scores over 6 cases covered 81%. Where more than the tail
    # has no spread, the bootstrap cannot bound that side, and the interval says so by
    # reaching the bound (Student's t there covered 89-93%, docs/calibration.md).
    diff = boot_means - estimate
    with np.errstate(divide="ignore", invalid="ignore"):
        studentized = np.where(
            boot_se > 0, diff / np.where(boot_se > 0, boot_se, 1.0), np.sign(diff) * np.inf
        )
    tail = (1 - confidence) / 2
    q_low, q_high = np.quantile(studentized, [tail, 1 - tail], method="inverted_cdf")
    low = estimate - float(q_high) * se if np.isfinite(q_high) else 0.0
    high = estimate - float(q_low) * se if np.isfinite(q_low) else 1.0
    return Interval(max(0.0, min(estimate, low)), min(1.0, max(estimate, high)))


def _one_binary_case(cases: Mapping[str, Sequence[float]]) -> list[float] | None:
    """The values of the only case, when there is one and every value is 0 or 1."""
    if len(cases) != 1:
        return None
    [values] = cases.values()
    if not all(type(v) in (int, float) and (v == 0 or v == 1) for v in values):
        return None
    return [float(v) for v in values]


def _pooled_mean(values: Values | None) -> float | None:
    pooled = [x for v in (values or {}).values() for x in v]
    return float(np.mean(pooled)) if pooled else None


def _check_scores(values: _Array) -> None:
    bad = values[~((values >= 0) & (values <= 1))]
    if bad.size:
        raise ValueError(f"accuracy values must be scores in [0, 1], got {bad[0]!r}")
