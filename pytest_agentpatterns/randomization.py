"""Randomization tests of a difference in means, and the intervals that invert them.

"No difference" between two patterns means their outcomes are exchangeable. When both ran
the same cases (`Paired`), each per-case difference is then as likely to have either sign;
when they ran different units (`Unpaired`), any split of the pooled units into the two
sides is as likely as the observed one. The statistic is the usual t (paired, or Welch's);
its null distribution comes from the sign assignments or splits themselves (all of them up
to `EXACT_MAX`, a seeded random sample above), not from Student's t. So the test is exact
with binary outcomes, with a handful of cases, and when every case differs by the same
amount, where a t-test would claim certainty.

The interval at a level is the set of shifts the same test does not reject (found by
bisection from the estimate outwards, Hartigan's construction). So an interval excludes 0
exactly when the test rejects, whatever the data.

Paired, the standard error is never below ``floor``: the noise the repetitions within
cases show on their own, however alike the case means happen to be.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    _Array = NDArray[np.float64]
else:
    from .lazy_numpy import np


EXACT_MAX = 65_536
"""Up to this many sign assignments (or splits), every one is enumerated."""

RANDOM_DRAWS = 19_999
"""Above it, this many random ones (seeded), plus the observed data."""

_TIE = 1e-9
"""Relative tolerance under which two |t| values count as equal (float noise)."""


@dataclass(frozen=True)
class Result:
    """The test of "no difference" (shift 0): estimate, standard error, t and p.

    ``t`` is ``±inf`` when the data show a difference and no noise at all, 0 when nothing
    differs. ``p`` is two-sided. ``min_p`` is the smallest p any data of this design could
    give (two over the number of assignments), so a level below it can never be reached.
    """

    estimate: float
    se: float
    t: float
    p: float
    exact: bool
    min_p: float
    df: int


class _Design:
    """Shared machinery: the draws' statistics as a function of the shift."""

    exact: bool
    min_p: float
    df: int
    estimate: float

    def _t(self, shift: float) -> tuple[_Array, float]:
        """|t| of every draw (the first is the observed data) and the observed t."""
        raise NotImplementedError

    def se(self, shift: float = 0.0) -> float:
        raise NotImplementedError

    def p_value(self, shift: float = 0.0) -> float:
        """Two-sided p of H0 "the true difference is ``shift``"."""
        draws, observed = self._t(shift)
        if observed == 0:
            return 1.0
        target = abs(observed)
        if math.isinf(target):
            hits = int(np.sum(np.isinf(draws)))
        else:
            hits = int(np.sum(draws >= target * (1 - _TIE)))
        return max(1, hits) / draws.size

    def one_sided_p(self, shift: float, greater: bool) -> float:
        """P-value of H1 "the true difference is above ``shift``" (``greater``) or below.

        The draws are symmetric about the shift, so this is half the two-sided p on the
        observed side and one minus that on the other.
        """
        _, observed = self._t(shift)
        if observed == 0:
            return 1.0
        half = self.p_value(shift) / 2
        return half if (observed > 0) == greater else 1.0 - half

    def result(self) -> Result:
        _, observed = self._t(0.0)
        return Result(
            self.estimate, self.se(), observed, self.p_value(), self.exact, self.min_p, self.df
        )

    def interval(
        self, level: float, bounds: tuple[float, float], points: tuple[float, ...] = (0.0,)
    ) -> tuple[float, float]:
        """The shifts not rejected at two-sided ``level``, clipped to ``bounds``.

        The interval always contains the estimate. For each of ``points`` (0, a gate's
        margin) it agrees exactly with the test there: it contains the point when the test
        does not reject it and excludes it when the test does, even where the p-value
        jumps exactly at the point or the acceptance region has a hole.
        """
        low, high = bounds
        center = self.estimate
        lower = self._edge(center, low, level)
        upper = self._edge(center, high, level)
        for point in points:
            accepted = self.p_value(point) > level
            inside = lower <= point <= upper
            if accepted and not inside:
                lower, upper = min(lower, point), max(upper, point)
            elif not accepted and inside:
                gap = 1e-9 * max(1.0, abs(point))
                if point < center:
                    lower = point + gap
                else:
                    upper = point - gap
        return lower, upper

    def _edge(self, inside: float, limit: float, level: float) -> float:
        """Bisect between an accepted shift and ``limit`` for the edge of acceptance."""
        if self.p_value(limit) > level:
            return limit
        outside = limit
        scale = max(abs(limit - inside), 1e-12)
        for _ in range(60):
            if abs(outside - inside) <= 1e-6 * scale:
                break
            middle = (inside + outside) / 2
            if self.p_value(middle) > level:
                inside = middle
            else:
                outside = middle
        return inside


@dataclass(eq=False)
class Paired(_Design):
    """Sign-flip test of the mean of per-case differences ``diffs``."""

    diffs: _Array
    floor: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        d = np.asarray(self.diffs, dtype=float)
        if d.size == 0:
            raise ValueError("a paired test needs at least one case")
        self.diffs = d
        k = d.size
        self.exact = 2**k <= EXACT_MAX
        if self.exact:
            codes = np.arange(2**k, dtype=np.int64)
            bits = (codes[:, None] >> np.arange(k, dtype=np.int64)) & 1
            signs = np.asarray(1.0 - 2.0 * bits, dtype=float)
        else:
            rng = np.random.default_rng(self.seed)
            drawn = rng.choice(np.array([-1.0, 1.0]), size=(RANDOM_DRAWS, k))
            signs = np.asarray(np.concatenate([np.ones((1, k)), drawn]), dtype=float)
        self._signed_sum = signs @ d
        self._sign_total = signs.sum(axis=1)
        self.min_p = min(1.0, 2.0 / 2.0**k)
        self.df = k - 1
        self.estimate = float(d.mean())

    def _stats(self, shift: float) -> tuple[_Array, _Array]:
        d = self.diffs
        k = d.size
        sums = self._signed_sum - shift * self._sign_total
        sum_sq = float(((d - shift) ** 2).sum())
        means = sums / k
        if k > 1:
            var = np.maximum(0.0, (sum_sq - k * means * means) / (k - 1))
            spread = np.sqrt(var / k)
            spread[spread <= 1e-12 * np.maximum(1.0, np.abs(means))] = 0.0
        else:
            spread = np.zeros_like(means)
        return means, np.maximum(spread, self.floor)

    def se(self, shift: float = 0.0) -> float:
        return float(self._stats(shift)[1][0])

    def _t(self, shift: float) -> tuple[_Array, float]:
        means, se = self._stats(shift)
        t = _ratio(means, se)
        return np.abs(t), float(t[0])


@dataclass(eq=False)
class Unpaired(_Design):
    """Permutation test of ``mean(candidate) - mean(baseline)`` with Welch's t."""

    baseline: _Array
    candidate: _Array
    seed: int = 0

    def __post_init__(self) -> None:
        b = np.asarray(self.baseline, dtype=float)
        c = np.asarray(self.candidate, dtype=float)
        if b.size == 0 or c.size == 0:
            raise ValueError("an unpaired test needs units on both sides")
        self.baseline, self.candidate = b, c
        n, nc = b.size + c.size, c.size
        splits = math.comb(n, nc)
        self.exact = splits <= EXACT_MAX
        if self.exact:
            chosen = np.array(list(itertools.combinations(range(n), nc)), dtype=np.int64)
            mask = np.zeros((chosen.shape[0], n), dtype=bool)
            np.put_along_axis(mask, chosen, True, axis=1)
        else:
            rng = np.random.default_rng(self.seed)
            order = np.argsort(rng.random((RANDOM_DRAWS, n)), axis=1)
            drawn = np.zeros((RANDOM_DRAWS, n), dtype=bool)
            np.put_along_axis(drawn, order[:, :nc], True, axis=1)
            mask = np.concatenate([(np.arange(n) < nc)[None, :], drawn])
        self._mask = mask.astype(float)
        self._nc, self._nb = nc, b.size
        self.min_p = min(1.0, 2.0 / splits)
        self.df = max(1, n - 2)
        self.estimate = float(c.mean() - b.mean())
        # Pooled values with the candidate first; a shift moves the candidate's values.
        self._pooled = np.concatenate([c, b])
        self._is_cand = np.concatenate([np.ones(nc), np.zeros(b.size)])

    def _stats(self, shift: float) -> tuple[_Array, _Array]:
        values = self._pooled - shift * self._is_cand
        m = self._mask
        total, total_sq = float(values.sum()), float((values * values).sum())
        sum_c = m @ values
        sq_c = m @ (values * values)
        sum_b, sq_b = total - sum_c, total_sq - sq_c
        nc, nb = self._nc, self._nb
        mean_c, mean_b = sum_c / nc, sum_b / nb
        var_c = np.maximum(0.0, sq_c - nc * mean_c**2) / max(1, nc - 1) / nc if nc > 1 else 0.0
        var_b = np.maximum(0.0, sq_b - nb * mean_b**2) / max(1, nb - 1) / nb if nb > 1 else 0.0
        diff = mean_c - mean_b
        se = np.sqrt(np.asarray(var_c + var_b, dtype=float) + np.zeros_like(diff))
        se[se <= 1e-12 * np.maximum(1.0, np.abs(diff))] = 0.0
        return diff, se

    def se(self, shift: float = 0.0) -> float:
        return float(self._stats(shift)[1][0])

    def _t(self, shift: float) -> tuple[_Array, float]:
        diff, se = self._stats(shift)
        t = _ratio(diff, se)
        return np.abs(t), float(t[0])


def _ratio(means: _Array, se: _Array) -> _Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, means / np.where(se > 0, se, 1.0), np.sign(means) * np.inf)
    t = np.asarray(t, dtype=float)
    t[np.abs(means) <= 1e-12] = 0.0
    return t
