"""Looking at a comparison more than once: group-sequential levels for adaptive runs.

An adaptive run (:mod:`.adaptive`) looks at each test's comparisons after every round of
repetitions and stops once they are decided. Testing each look at the full level would call
an equally good pattern better or worse far more often than alpha. Here each comparison
spends its share of the test's alpha, ``alpha / m`` (Bonferroni over its m comparisons, as
a fixed run does), over the planned looks with the Lan-DeMets (1983) O'Brien-Fleming-type
spending function ``f(t) = 2 - 2 Phi(z_{1-a/2} / sqrt(t))``: almost nothing at the first
looks, most of it at the last.

The boundaries are exact, from the randomization test itself (Mehta et al. 1994). A paired
comparison's sign-flip test assigns the same signs to the same cases at every look, so the
assignments carry the joint distribution of the looks' statistics under "no difference".
Look j rejects the assignments with the largest |t| that no earlier look rejected, as many
as keep the share of assignments rejected by any look so far within ``f(j/K)``. That set is
the fixed test at a *nominal level*, the share of assignments whose |t| reaches its
boundary: the comparison is tested at look j with the same randomization test as a fixed
run (:mod:`.family`) at that level. Every comparison of the test is tested at the smallest
of their nominal levels, so no comparison rejects more than its own boundary allows.

Whatever the allocation of repetitions (it never looks at which pattern had which
outcome), the chance that any look calls an equally accurate pattern better or worse is at
most ``alpha / m`` per comparison, at most alpha per test. A run that stops early is a run
whose later looks never happen, which can only lower it. Comparisons whose looks do not
share their assignments (unpaired designs, a case missing at a look) fall back to testing
each look at its increment of spending, ``f(t_j) - f(t_{j-1})`` (Bonferroni over the looks).

A stopped run reports the verdict and interval of its last look: the fixed test and its
inverted interval at that look's level, so an interval excludes 0 exactly when its verdict
is better or worse, as everywhere else.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .records import ItemResult

if TYPE_CHECKING:
    from numpy.typing import NDArray

MAX_LOOKS = 4
"""The most looks an adaptive test takes: with O'Brien-Fleming spending, more looks add
little chance of stopping early and take from the level of the last look."""

_TIE = 1e-9
"""Relative tolerance under which two |t| values tie (as in randomization.py)."""


def spent(t: float, level: float) -> float:
    """Alpha spent by information fraction ``t`` (Lan-DeMets, O'Brien-Fleming type)."""
    if t >= 1.0:
        return level
    if t <= 0.0:
        return 0.0
    from scipy.stats import norm

    z = float(norm.isf(level / 2))
    return min(level, float(2 * norm.sf(z / math.sqrt(t))))


def look_level(look: int, looks: int, level: float) -> float:
    """The increment of spending at look ``look`` (1-based) of ``looks``."""
    if not 1 <= look <= looks:
        raise ValueError(f"look must be from 1 to {looks}, got {look}")
    return spent(look / looks, level) - spent((look - 1) / looks, level)


def default_looks(max_repeat: int) -> int:
    """How many looks a test with at most ``max_repeat`` repetitions takes: at least two
    repetitions a round, so the first round shows which cases still vary; at most
    `MAX_LOOKS`."""
    return max(1, min(MAX_LOOKS, max_repeat // 2))


def schedule(max_repeat: int, looks: int) -> tuple[int, ...]:
    """Repetitions per case after each look: evenly spaced, the last one ``max_repeat``."""
    if looks < 1 or max_repeat < looks:
        raise ValueError(f"{looks} looks need at least {looks} repetitions, got {max_repeat}")
    return tuple(math.ceil(j * max_repeat / looks) for j in range(1, looks + 1))


def exact_levels(statistics: Sequence[NDArray[Any]], level: float, looks: int) -> list[float]:
    """The nominal level of each look from the joint randomization distribution.

    ``statistics[i]`` holds |t| of every sign assignment at look i + 1 (the same
    assignments, in the same order, at every look). Look j's boundary is the largest |t|
    that rejects, among assignments no earlier look rejected, at most as many as keep the
    share rejected by any look within ``spent(j / looks)`` (ties are never split). Its
    nominal level is the share of all assignments at or above that boundary.
    """
    import numpy as np

    if not statistics:
        return []
    n = statistics[0].size
    rejected = np.zeros(n, dtype=bool)
    out = []
    for j, values in enumerate(statistics, 1):
        room = math.floor(spent(j / looks, level) * n + 1e-9) - int(rejected.sum())
        boundary = _boundary(values[~rejected], room)
        if boundary is None:
            out.append(0.0)
            continue
        hits = values >= boundary * (1 - _TIE) if math.isfinite(boundary) else np.isinf(values)
        out.append(float(hits.sum()) / n)
        rejected |= hits
    return out


def _boundary(values: NDArray[Any], room: int) -> float | None:
    """The smallest |t| such that the values at or above it (ties whole) fit in ``room``;
    None when not even the largest does."""
    import numpy as np

    if room <= 0 or values.size == 0:
        return None
    ascending = np.sort(values)
    chosen = None
    for i in range(min(room, ascending.size)):
        value = float(ascending[-1 - i])
        if value <= 0:
            break
        lowest = value * (1 - _TIE) if math.isfinite(value) else math.inf
        count = ascending.size - int(np.searchsorted(ascending, lowest, side="left"))
        if count > room:
            break
        chosen = value
    return chosen


# --- the looks of a test -----------------------------------------------------------------------


def scores(items: Iterable[ItemResult]) -> dict[str, dict[str, list[float]]]:
    """Pattern -> case -> the scores of its answered repetitions."""
    out: dict[str, dict[str, list[float]]] = {}
    for item in items:
        if item.skipped is not None:
            continue
        values = [r.accuracy for r in item.repetitions if r.accuracy is not None]
        out.setdefault(item.pattern, {}).setdefault(item.case, []).extend(values)
    return out


def compared(accuracy: Mapping[str, Mapping[str, Sequence[float]]], baseline: str) -> int:
    """The comparisons a test's family holds: patterns with answers, against a baseline
    with answers (as :func:`.family.compare` counts them)."""
    if not any(accuracy.get(baseline, {}).values()):
        return 0
    return sum(1 for p, cases in accuracy.items() if p != baseline and any(cases.values()))


def at_look(items: Iterable[ItemResult], look: int) -> list[ItemResult]:
    """The items as they were at look ``look``: each cut to the repetitions it had then
    (``adaptive["looks"]``); items without looks are taken whole."""
    out = []
    for item in items:
        looks = (item.adaptive or {}).get("looks")
        if looks:
            upto = looks[min(look, len(looks)) - 1]
            item = replace(item, repetitions=item.repetitions[:upto])
        out.append(item)
    return out


@dataclass(frozen=True)
class Levels:
    """The levels one look of a test uses.

    ``comparison_level``: what each comparison against the baseline is tested at;
    ``family_alpha``: what :func:`.family.compare` is given for that (it splits it over the
    m comparisons); ``recommend_alpha``: what :func:`.recommend.recommend` is given (split
    over the pairs; each pair's level is at most the comparisons' and spends its own share
    of alpha over the looks, Bonferroni).
    """

    look: int
    looks: int
    comparison_level: float
    family_alpha: float
    recommend_alpha: float


def levels(
    items: Sequence[ItemResult], look: int, looks: int, *, alpha: float, seed: int = 0
) -> Levels | None:
    """The levels of look ``look`` of ``looks`` for a test's items (with their looks);
    None when the test has nothing to compare."""
    now = at_look(items, look)
    accuracy = scores(now)
    live = [i for i in now if i.skipped is None]
    if not live:
        return None
    baseline = live[0].baseline_pattern
    m = compared(accuracy, baseline)
    if m == 0:
        return None
    share = alpha / m
    level = 1.0
    for pattern in accuracy:
        if pattern != baseline and any(accuracy[pattern].values()):
            level = min(level, _nominal(items, baseline, pattern, look, looks, share, seed))
    patterns = sum(1 for cases in accuracy.values() if any(cases.values()))
    pairs = math.comb(patterns, 2)
    pair_level = min(level, look_level(look, looks, alpha / pairs))
    return Levels(look, looks, level, level * m, pair_level * pairs)


def _nominal(
    items: Sequence[ItemResult],
    baseline: str,
    pattern: str,
    look: int,
    looks: int,
    share: float,
    seed: int,
) -> float:
    """One comparison's nominal level at ``look``: exact when its looks share their sign
    assignments, else the look's increment of spending."""
    from .family import units

    if looks == 1:
        return share
    statistics = []
    size = None
    for j in range(1, look + 1):
        accuracy = scores(at_look(items, j))
        u = units(accuracy.get(baseline, {}), accuracy.get(pattern, {}))
        if not u.paired or (size is not None and u.n_cases != size):
            return look_level(look, looks, share)
        size = u.n_cases
        statistics.append(u.test(seed).statistics())
    return exact_levels(statistics, share, looks)[-1]


def final_levels(items: Sequence[ItemResult], alpha: float, seed: int = 0) -> tuple[float, float]:
    """The alpha a test's family and recommendation use: ``alpha`` for a fixed run, its
    last look's levels for an adaptive one (its items carry their looks)."""
    info = next((i.adaptive for i in items if i.adaptive and i.skipped is None), None)
    if not info:
        return alpha, alpha
    looks = max(len((i.adaptive or {}).get("looks", ())) for i in items) or 1
    planned = max(int(info.get("planned_looks", looks)), looks)
    chosen = levels(items, looks, planned, alpha=alpha, seed=seed)
    if chosen is None:
        return alpha, alpha
    # A look whose boundary admits nothing tests at a level nothing reaches (not at 0).
    return max(chosen.family_alpha, UNREACHABLE), max(chosen.recommend_alpha, UNREACHABLE)


UNREACHABLE = 1e-15
"""The level reported for a look that could reject nothing."""


@lru_cache(maxsize=64)
def design_level(looks: int, level: float) -> float:
    """The nominal level of the last of ``looks`` equally spaced looks under O'Brien-Fleming
    spending, for a statistic whose looks are Brownian (the normal theory the exact
    boundaries approach): what a run that goes to its maximum is tested at, about."""
    if looks == 1:
        return level
    import numpy as np
    from scipy.optimize import brentq
    from scipy.stats import multivariate_normal, norm

    t = np.arange(1, looks + 1) / looks
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    bounds: list[float] = []
    for j in range(1, looks + 1):
        target = spent(j / looks, level)

        def crossed(c: float, j: int = j) -> float:
            limits = np.array([*bounds, c])
            inside = _rectangle(limits, cov[:j, :j], multivariate_normal)
            return (1.0 - inside) - target

        bounds.append(float(brentq(crossed, 0.1, 12.0, xtol=1e-7)))
    return float(2 * norm.sf(bounds[-1]))


def _rectangle(limits: Any, cov: Any, mvn: Any) -> float:
    """P(|Z_i| < limits_i for every i) for a centred normal vector with covariance ``cov``."""
    import itertools

    import numpy as np

    k = len(limits)
    if k == 1:
        from scipy.stats import norm

        return float(1 - 2 * norm.sf(limits[0]))
    total = 0.0
    for corner in itertools.product((0, 1), repeat=k):
        upper = np.where(np.array(corner) == 1, limits, -limits)
        sign = (-1) ** (k - sum(corner))
        total += sign * float(mvn.cdf(upper, mean=np.zeros(k), cov=cov))
    return total
