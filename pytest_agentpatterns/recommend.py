"""Choosing a pattern from one test's data: the cheapest of those that could be the best.

Multiple comparisons with the best, in the spirit of Hsu (1981): every pair of patterns is
compared with the randomization test the summary uses (:mod:`.family`), at alpha over the
number of pairs, so a pattern is set aside only when another is *shown* more accurate.
Those left are the contenders; the recommendation is the cheapest of them, then the
fastest. The pairwise level is never above the summary's per-comparison level and the
test is the same (pairs with the baseline are compared baseline first, as the summary
does), so whatever the recommendation says about the baseline pattern, the summary's
table says too.

When the cheapest contender is not the most accurate pattern and the data cannot rule out
that it is more than `TOLERANCE` less accurate, no pattern is recommended: the reason says
so, and about how many more cases would separate the two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .family import Pair, Values, needed_cases, pairwise
from .stats import Interval, z_quantile

TOLERANCE = 0.05
"""An accuracy gap small enough to trade for cost: the cheapest contender is recommended
when the data show it at most this much less accurate than the most accurate pattern."""


@dataclass(frozen=True)
class Excluded:
    """A pattern set aside: ``by`` was shown more accurate, ``interval`` their difference
    (``by`` minus ``pattern``) at the pairwise level."""

    pattern: str
    by: str
    interval: Interval | None


@dataclass(frozen=True)
class Recommendation:
    """The recommended pattern (None when the data cannot decide yet) and why.

    ``reason`` is one full sentence; ``short`` a compact form for the terminal.
    ``contenders`` are the patterns no other was shown to beat; ``best`` the most accurate
    by point estimate; ``cheapest`` the cheapest contender; ``gap`` the interval of
    cheapest minus best at ``level``; ``more_cases`` about how many more cases would
    separate them when undecided.
    """

    pattern: str | None
    reason: str
    decided: bool
    best: str
    contenders: tuple[str, ...]
    excluded: tuple[Excluded, ...]
    level: float
    cheapest: str | None = None
    gap: Interval | None = None
    more_cases: int | None = None
    short: str = ""


def recommend(
    accuracy: Mapping[str, Values],
    cost: Mapping[str, float | None],
    latency: Mapping[str, float | None],
    *,
    baseline: str | None = None,
    alpha: float = 0.05,
    seed: int = 0,
    cap: float | None = None,
) -> Recommendation | None:
    """The cheapest, then fastest, pattern that no other is shown to beat on accuracy.

    ``accuracy`` maps pattern -> case -> repetition scores; ``cost`` is cost per run (None:
    unknown, ranked after every known cost); ``latency`` the p50. None with fewer than two
    patterns that have scores. ``cap`` bounds the pairwise level (an adaptive run's summary
    judges at its last look's levels, which can be below alpha over the pairs).
    """
    means = {
        name: _mean_of_case_means(cases)
        for name, cases in accuracy.items()
        if any(len(v) for v in cases.values())
    }
    if len(means) < 2:
        return None
    names = sorted(means)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    level = alpha / len(pairs) if cap is None else min(alpha / len(pairs), cap)

    def rank(name: str) -> tuple[float, float, float, str]:
        c, lat = cost.get(name), latency.get(name)
        return (
            math.inf if c is None else c,
            math.inf if lat is None else lat,
            -means[name],
            name,
        )

    def compare(x: str, y: str) -> Pair | None:
        """``y`` minus ``x``, computed baseline first as the summary does."""
        if y == baseline:
            pair = pairwise(accuracy[y], accuracy[x], level=level, seed=seed)
            if pair is None:
                return None
            flipped = (
                None if pair.interval is None else Interval(-pair.interval.high, -pair.interval.low)
            )
            return Pair(
                -pair.estimate,
                flipped,
                pair.rejects,
                pair.reachable,
                pair.paired,
                pair.n_cases,
                pair.sd,
            )
        return pairwise(accuracy[x], accuracy[y], level=level, seed=seed)

    beaten: dict[str, Excluded] = {}
    for a, b in pairs:
        pair = compare(a, b)
        if pair is None or not pair.rejects:
            continue
        loser, winner = (a, b) if pair.estimate > 0 else (b, a)
        shown = pair.interval
        if shown is not None and pair.estimate < 0:
            shown = Interval(-shown.high, -shown.low)
        beaten.setdefault(loser, Excluded(loser, winner, shown))
    contenders = tuple(n for n in names if n not in beaten)
    best = min(means, key=lambda n: (-means[n], *rank(n)))
    cheapest = min(contenders, key=rank)
    excluded = tuple(beaten[n] for n in names if n in beaten)
    common = dict(
        best=best, contenders=contenders, excluded=excluded, level=level, cheapest=cheapest
    )
    group = f"the {len(contenders)} patterns no other is shown to beat"
    if len(contenders) == 1:
        return Recommendation(
            cheapest,
            f"{cheapest}: the most accurate ({means[cheapest]:.2f}) and the only pattern no "
            f"other is shown to beat (pairwise tests at {level:.2g})",
            True,
            short=f"{cheapest}: the only pattern no other is shown to beat",
            **common,  # type: ignore[arg-type]
        )
    what = _qualities(cheapest, contenders, cost, latency)
    if cheapest == best:
        return Recommendation(
            cheapest,
            f"{cheapest}: the most accurate ({means[best]:.2f}) and {what} of {group}",
            True,
            short=f"{cheapest}: most accurate, {_terse(what)} of {len(contenders)} contenders",
            **common,  # type: ignore[arg-type]
        )
    pair = compare(best, cheapest)
    gap = None if pair is None else pair.interval
    if gap is not None and gap.low >= -TOLERANCE:
        return Recommendation(
            cheapest,
            f"{cheapest}: {what} of {group}; at most {-gap.low:.2f} less accurate than "
            f"{best} ({means[best]:.2f})",
            True,
            gap=gap,
            short=f"{cheapest}: {_terse(what)} of {len(contenders)} contenders, within "
            f"{-gap.low:.2f} of {best}",
            **common,  # type: ignore[arg-type]
        )
    more = _more_cases(pair, level)
    cases = "case" if more == 1 else "cases"
    run = f"run about {more} more {cases}" if more is not None else "run more cases"
    could = (
        f"{cheapest} could be up to {-gap.low:.2f} less accurate"
        if gap is not None
        else f"{pair.n_cases if pair else 0} cases cannot separate them at {level:.2g}"
    )
    return Recommendation(
        None,
        f"not enough evidence: {run} to separate {cheapest} ({what} of {group}) from "
        f"{best} (the most accurate, {means[best]:.2f}); {could}",
        False,
        gap=gap,
        more_cases=more,
        short=f"none yet: ~{more if more is not None else '?'} more {cases} to separate "
        f"{cheapest} from {best}",
        **common,  # type: ignore[arg-type]
    )


def _qualities(
    chosen: str,
    group: tuple[str, ...],
    cost: Mapping[str, float | None],
    latency: Mapping[str, float | None],
) -> str:
    qualities = []
    c, lat = cost.get(chosen), latency.get(chosen)
    others_c = [cost.get(n) for n in group]
    others_l = [latency.get(n) for n in group]
    if c is not None and all(x is None or c <= x for x in others_c):
        qualities.append(f"cheapest (${c:.2g}/run)")
    if lat is not None and all(x is None or lat <= x for x in others_l):
        qualities.append(f"fastest (p50 {lat:.2g} s)")
    return " and ".join(qualities) or "first by cost, then latency"


def _terse(what: str) -> str:
    """``cheapest ($1.3e-05/run) and fastest (p50 0.3 s)`` -> ``cheapest and fastest``."""
    words = [w for w in ("cheapest", "fastest") if w in what]
    return " and ".join(words) or "first by cost"


def _more_cases(pair: Pair | None, level: float) -> int | None:
    """Cases needed, beyond those run, for the comparison to be decided with 80% power.

    Decided means shown different when the gap is as large as seen, or shown within
    `TOLERANCE` otherwise: the target is the larger of the two. Never fewer than the
    design needs to reach the level at all.
    """
    if pair is None:
        return None
    if level <= 0:
        return None  # no number of cases reaches a level of 0
    k = pair.n_cases
    floor_cases = needed_cases(level) if pair.paired else k + 1
    needed = floor_cases
    if pair.sd is not None and pair.sd > 0:
        target = max(abs(pair.estimate), TOLERANCE)
        z = z_quantile(1 - level / 2) + z_quantile(0.8)
        needed = max(needed, math.ceil((z * pair.sd / target) ** 2))
    return max(1, needed - k)


def _mean_of_case_means(cases: Values) -> float:
    means = [sum(v) / len(v) for v in cases.values() if len(v)]
    return sum(means) / len(means)
