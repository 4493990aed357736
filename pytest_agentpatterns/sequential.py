"""Looking at a comparison more than once: alpha spending over the looks of an adaptive run.

An adaptive run (:mod:`.adaptive`) looks at each test's comparisons after every round of
repetitions and stops once they are decided. Testing each look at the full level would
reject an equally good pattern far more often than alpha. Here each comparison spends its
share of the test's alpha, ``alpha / m`` (Bonferroni over the m comparisons, as a fixed run
does), over the planned looks with the Lan-DeMets (1983) O'Brien-Fleming-type spending
function ``f(t) = 2 - 2 Φ(z_{1-a/2} / √t)``: almost nothing at the first looks, most of it
at the last. Look j tests with the same randomization test as a fixed run (:mod:`.family`)
at the increment it spends, ``f(j/K) - f((j-1)/K)``.

The increments add up to ``alpha / m`` per comparison, so whatever the looks' statistics
and however the rounds were allocated, the chance that any look calls any equally accurate
pattern better or worse is at most alpha (Bonferroni over the looks: no normal
approximation, no assumption about how the looks are correlated). A run that stops early
is a run whose later looks never happen, which can only lower that chance.

The verdict and interval a stopped run reports are those of its last look, at that look's
increment: the same test and the same inverted interval as a fixed run, at a smaller level.
So an interval excludes 0 exactly when its verdict is better or worse, as everywhere else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import ItemResult

MAX_LOOKS = 4
"""The most looks an adaptive test takes: with O'Brien-Fleming spending, more looks add
little chance of stopping early and take from the level of the last look."""


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
    """The level look ``look`` (1-based) of ``looks`` tests at: its increment of spending."""
    if not 1 <= look <= looks:
        raise ValueError(f"look must be from 1 to {looks}, got {look}")
    return spent(look / looks, level) - spent((look - 1) / looks, level)


def default_looks(max_repeat: int) -> int:
    """How many looks a test with at most ``max_repeat`` repetitions takes.

    At least two repetitions a round, so the first round shows which cases still vary;
    at most `MAX_LOOKS`.
    """
    return max(1, min(MAX_LOOKS, max_repeat // 2))


def schedule(max_repeat: int, looks: int) -> tuple[int, ...]:
    """Repetitions per case after each look: evenly spaced, the last one ``max_repeat``."""
    if looks < 1 or max_repeat < looks:
        raise ValueError(f"{looks} looks need at least {looks} repetitions, got {max_repeat}")
    return tuple(math.ceil(j * max_repeat / looks) for j in range(1, looks + 1))


@dataclass(frozen=True)
class Levels:
    """The levels one look of a test uses.

    ``family_alpha`` is what :func:`.family.compare` is given (it splits it over the m
    comparisons, so each is tested at its own increment); ``recommend_alpha`` is what
    :func:`.recommend.recommend` is given (split over the pairs, never above the
    comparisons' level).
    """

    look: int
    looks: int
    alpha: float
    comparison_level: float
    family_alpha: float
    recommend_alpha: float


def levels(
    look: int, looks: int, alpha: float, comparisons: int, patterns: int | None = None
) -> Levels:
    """The levels of look ``look`` of ``looks`` for a test with ``comparisons`` comparisons
    against its baseline and ``patterns`` patterns in all (for the recommendation's pairs)."""
    m = max(1, comparisons)
    level = look_level(look, looks, alpha / m)
    pairs = math.comb(patterns, 2) if patterns is not None and patterns >= 2 else 0
    pair_level = level
    if pairs:
        pair_level = min(level, look_level(look, looks, alpha / pairs))
    return Levels(look, looks, alpha, level, level * m, pair_level * max(1, pairs))


def final_levels(
    items: Sequence[ItemResult], accuracy: Mapping[str, Mapping[str, Sequence[float]]], alpha: float
) -> tuple[float, float]:
    """The alpha a test's family and recommendation use: ``alpha`` for a fixed run, the last
    look's share of it for an adaptive one (its items carry their looks)."""
    info = next((i.adaptive for i in items if i.adaptive and i.skipped is None), None)
    if not info:
        return alpha, alpha
    looks = max(len(i.adaptive.get("looks", ())) for i in items if i.adaptive) or 1
    planned = max(int(info.get("planned_looks", looks)), looks)
    baseline = items[0].baseline_pattern
    answered = [p for p, cases in accuracy.items() if any(cases.values())]
    m = 0 if baseline not in answered else len(answered) - 1
    chosen = levels(looks, planned, alpha, m, len(answered))
    return chosen.family_alpha, chosen.recommend_alpha
