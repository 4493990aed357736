"""The Pareto front of patterns over accuracy, cost per run and latency p50, compared as shown.

Values are compared at the precision the reports print them (accuracy to 3 decimals, cost and
latency to 3 significant digits), so float noise that no reader can see, such as
0.7999999999999999 against 0.8, never decides who is on the front. Rounding each value to a
fixed key, rather than comparing within a tolerance, keeps "as good as" transitive, so the
front is well defined: every pattern off it is dominated by one on it.

An unknown value (None or NaN: an unpriced model, a pattern whose every repetition failed) is
not compared: a pattern never beats, nor loses to, another on a measure one of them lacks. A
measure both lack says nothing either way. So a missing value never makes a pattern best.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Criterion:
    """One measure of the front: its name, which way is better, and how the reports show it.

    ``digits`` are decimal places, or significant digits when ``significant`` is set.
    """

    name: str
    higher_is_better: bool
    digits: int
    significant: bool

    def shown(self, value: float | None) -> float | None:
        """``value`` rounded as the reports print it; None when it is unknown."""
        if value is None or math.isnan(value):
            return None
        spec = f".{self.digits}g" if self.significant else f".{self.digits}f"
        return float(format(value, spec))


ACCURACY = Criterion("accuracy", higher_is_better=True, digits=3, significant=False)
COST = Criterion("cost per run", higher_is_better=False, digits=3, significant=True)
LATENCY = Criterion("latency p50", higher_is_better=False, digits=3, significant=True)
CRITERIA = (ACCURACY, COST, LATENCY)
"""The measures of the front, in the order a point lists its values."""

RULE = (
    "compared as shown (accuracy to 3 decimals, cost and latency to 3 significant digits): "
    "equal values are ties, patterns tied on every measure are all on the front, and an "
    "unknown value is not compared, so it never makes a pattern best"
)
"""How ties and unknown values are decided, for the reports to say."""

Point = Sequence[float | None]


def dominates(a: Point, b: Point, criteria: Sequence[Criterion] = CRITERIA) -> bool:
    """True when ``a`` is, as shown, at least as good as ``b`` on every measure and better on one.

    A measure unknown for one of the two makes them incomparable; unknown for both, it is
    skipped.
    """
    better = False
    for criterion, x, y in zip(criteria, a, b, strict=True):
        sx, sy = criterion.shown(x), criterion.shown(y)
        if sx is None and sy is None:
            continue
        if sx is None or sy is None:
            return False
        if sx == sy:
            continue
        if (sx > sy) != criterion.higher_is_better:
            return False
        better = True
    return better


def front(points: Mapping[str, Point], criteria: Sequence[Criterion] = CRITERIA) -> frozenset[str]:
    """The names of the points no other point dominates (none when there are no points)."""
    return frozenset(
        name
        for name, point in points.items()
        if not any(dominates(other, point, criteria) for o, other in points.items() if o != name)
    )


def not_compared(
    points: Mapping[str, Point], criteria: Sequence[Criterion] = CRITERIA
) -> dict[str, tuple[str, ...]]:
    """Per point, the measures it lacks that another point has: what it was not compared on.

    Points that lack nothing (or lack only what every point lacks) are left out.
    """
    known = [
        any(c.shown(p[i]) is not None for p in points.values()) for i, c in enumerate(criteria)
    ]
    out: dict[str, tuple[str, ...]] = {}
    for name, point in points.items():
        missing = tuple(
            c.name for i, c in enumerate(criteria) if known[i] and c.shown(point[i]) is None
        )
        if missing:
            out[name] = missing
    return out
