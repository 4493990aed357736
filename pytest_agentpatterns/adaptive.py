"""Adaptive runs: after each round of repetitions, decide whether a test has seen enough.

A test's comparisons (:mod:`.family`) are looked at after every round. Each is the same
randomization test the summary runs, at the nominal level of a group-sequential boundary
(:mod:`.sequential`): O'Brien-Fleming-type alpha spending over the information the
comparison has gathered, at ``alpha / m`` per comparison (Bonferroni over the test's m
comparisons), so the test's chance of calling any equal pair different stays at most alpha
however many looks it takes. A comparison that crosses its boundary is decided and stays so.

The test stops when every comparison is decided, when every interval is narrower than the
precision asked for, when its budget share is spent, or when no case can run more. Until
then the next round goes to the cases whose outcomes still vary, in proportion to their
spread (Neyman 1934); a case always right or always wrong under every pattern gets none.
Stopping is per test, never per item: a test's items are one family and one decision.
docs/statistics.md ("Adaptive runs: the stopping rule") explains each choice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from . import family, planning, randomization, sequential
from .stats import Interval, sample_variance

_Test = randomization.Paired | randomization.Unpaired

Scores = Mapping[str, Sequence[float]]
"""Case id -> the scores of that case's repetitions so far."""

Stop = Literal["decided", "precise", "budget", "max"]

LOOKS = 5
"""`Settings.for_max` plans at most this many looks when every case needs every round."""


@dataclass(frozen=True)
class Settings:
    """How an adaptive run proceeds.

    ``first_round`` repetitions of every case come first; each later round adds about
    ``round_size`` repetitions per case still open (more to noisy cases, none to settled
    ones), up to ``max_repeat``. ``precision``: stop once every comparison is decided or
    its interval is at most this wide (None: never for that reason).
    """

    alpha: float
    max_repeat: int
    first_round: int
    round_size: int
    precision: float | None = None

    def __post_init__(self) -> None:
        if not (0 < self.alpha < 1):
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if self.max_repeat < 1:
            raise ValueError(f"max_repeat must be 1 or more, got {self.max_repeat!r}")
        if not (1 <= self.first_round <= self.max_repeat):
            raise ValueError(
                f"first_round must be between 1 and max_repeat ({self.max_repeat}), "
                f"got {self.first_round!r}"
            )
        if self.round_size < 1:
            raise ValueError(f"round_size must be 1 or more, got {self.round_size!r}")
        if self.precision is not None and not (0 < self.precision <= 2):
            raise ValueError(f"precision must be in (0, 2], got {self.precision!r}")

    @classmethod
    def for_max(cls, max_repeat: int, alpha: float, precision: float | None = None) -> Settings:
        """At least two repetitions first (a case's spread needs two), then rounds so that
        a case that needs every round is looked at no more than `LOOKS` times."""
        if max_repeat < 2:
            raise ValueError(f"an adaptive run needs max_repeat of 2 or more, got {max_repeat!r}")
        first = max(2, math.ceil(max_repeat / LOOKS))
        rest = max_repeat - first
        size = max(1, math.ceil(rest / (LOOKS - 1)))
        return cls(alpha, max_repeat, first, size, precision)

    @property
    def looks(self) -> int:
        """Looks a case gets when it runs ``round_size`` more in every round."""
        return 1 + math.ceil((self.max_repeat - self.first_round) / self.round_size)


@dataclass(frozen=True)
class Look:
    """One comparison at one look.

    ``fraction``: its information now over what every case at ``max_repeat`` would give
    (1 at the last look, which spends what is left of its alpha). ``level``: the nominal
    two-sided level of this look's boundary, Bonferroni included. ``interval``: the repeated
    confidence interval, the family's randomization interval at ``level`` (None when the
    level cannot be reached yet or the data show no spread). ``decided``: the test gave
    ``p_value <= level`` at this look or an earlier one (``decided_at``, 1-based).
    """

    pattern: str
    fraction: float
    level: float
    p_value: float | None
    estimate: float | None
    interval: Interval | None
    decided: bool
    decided_at: int | None = None
    boundary: float = math.inf
    n_cases: int = 0


@dataclass(frozen=True)
class Decision:
    """What a test does after a look: stop (and why) or run ``allocation`` more.

    ``allocation`` maps every case to the repetitions to add next round, under every
    pattern (all 0 once stopped). ``final``: this look spent the rest of alpha (no case
    can run more, or the budget is spent).
    """

    look: int
    comparisons: tuple[Look, ...]
    stop: Stop | None
    allocation: Mapping[str, int] = field(default_factory=dict)
    final: bool = False


def decide(
    patterns: Mapping[str, Scores],
    baseline: str,
    previous: Sequence[Decision],
    settings: Settings,
    *,
    budget_spent: bool = False,
    seed: int = 0,
    intervals: bool = True,
) -> Decision:
    """Look at a test's comparisons after a round and decide whether to go on.

    ``patterns`` maps pattern -> case -> scores so far, the baseline included;
    ``previous`` the decisions of the earlier looks, in order. ``seed`` is the summary's
    (:func:`.family.compare`'s), so a comparison is decided here exactly when the summary's
    test at this look's level would call it better or worse. A test with nothing to
    compare (one pattern, or no runs on a side) has every comparison decided: it stops at
    its first look. ``intervals=False`` leaves
    out the repeated intervals of looks that go on, unless the precision rule needs them
    (they cost most of a look's time; a simulation of many runs does without).
    """
    if baseline not in patterns:
        known = ", ".join(sorted(patterns)) or "none"
        raise ValueError(f"baseline pattern {baseline!r} has no scores; patterns: {known}")
    if previous and previous[-1].stop is not None:
        raise ValueError(f"the test already stopped at look {previous[-1].look}")
    number = len(previous) + 1
    allocation = allocate(patterns, settings)
    final = budget_spent or not any(allocation.values())
    base = patterns[baseline]
    candidates = [p for p in patterns if p != baseline]
    designs = {p: family.units(base, patterns[p]) for p in candidates}
    compared = [p for p in candidates if designs[p].baseline.size and designs[p].candidate.size]
    alpha = settings.alpha / max(1, len(compared))
    want = intervals or settings.precision is not None
    looks: list[Look] = []
    tests: dict[str, tuple[family.Units, _Test]] = {}
    for pattern in candidates:
        if pattern not in compared:
            looks.append(Look(pattern, 0.0, 0.0, None, None, None, False))
            continue
        history = [look for d in previous for look in d.comparisons if look.pattern == pattern]
        u = designs[pattern]
        test = u.test(seed)
        tests[pattern] = (u, test)
        look = _look(
            pattern,
            u,
            test,
            base,
            patterns[pattern],
            history,
            number,
            alpha,
            settings.max_repeat,
            final,
        )
        looks.append(replace(look, interval=_interval(u, test, look.level)) if want else look)
    active = [look for look in looks if look.pattern in tests]
    stop: Stop | None = None
    if all(look.decided for look in active):
        stop = "decided"
    elif settings.precision is not None and all(
        look.decided or _width(look.interval) <= settings.precision for look in active
    ):
        stop = "precise"
    elif budget_spent:
        stop = "budget"
    elif final:
        stop = "max"
    if stop is not None:
        allocation = dict.fromkeys(allocation, 0)
        if not want:
            looks = [
                replace(look, interval=_interval(*tests[look.pattern], look.level))
                if look.pattern in tests
                else look
                for look in looks
            ]
    return Decision(number, tuple(looks), stop, allocation, final)


def final_levels(decision: Decision) -> dict[str, float]:
    """Pattern -> the level the summary reports it at (``family.compare(levels=...)``).

    The stopping look's level; for a comparison decided at an earlier look whose p has
    since risen above this look's level, its p, so the summary still calls it what the
    earlier look decided (its verdict was earned there; the data since are reported, not
    retested).
    """
    out = {}
    for look in decision.comparisons:
        level = look.level
        if look.decided and look.p_value is not None and look.p_value > level:
            level = look.p_value
        out[look.pattern] = level
    return out


def allocate(patterns: Mapping[str, Scores], settings: Settings) -> dict[str, int]:
    """Case -> repetitions to add next round under every pattern (Neyman allocation).

    ``round_size`` x (cases still open) in all, shared in proportion to each case's
    within-case standard deviation across the patterns, none beyond ``max_repeat``. A case
    constant under every pattern (always right, always wrong, or the same grade) is settled
    and gets 0 once every pattern ran it :func:`settled_after` times; before that it is
    weighed by the spread its outcomes could still have (add-half estimate, see below), since
    two right answers out of two are what a 0.85 case gives most of the time. A case at the
    maximum gets 0. Integer shares: floors, then the largest remainders, ties to the first
    case in sorted order.
    """
    cases = sorted({case for scores in patterns.values() for case in scores})
    sd: dict[str, float] = {}
    room: dict[str, int] = {}
    for case in cases:
        runs = [list(scores[case]) for scores in patterns.values() if scores.get(case)]
        room[case] = max(0, settings.max_repeat - max((len(r) for r in runs), default=0))
        # A pattern with a single repetition of the case shows no spread yet: assume the
        # largest a score in [0, 1] can have.
        spreads = [sample_variance(r) if len(r) >= 2 else 0.25 for r in runs]
        sd[case] = math.sqrt(sum(spreads) / len(spreads)) if spreads else 0.5
        fewest = min((len(r) for r in runs), default=0)
        if sd[case] == 0 and fewest < settled_after(settings):
            # Constant so far, on too few runs to call it settled: the spread of a rate
            # estimated with half a success added, (k + 1/2) / (n + 1) (Jeffreys-like).
            rate = (fewest + 0.5) / (fewest + 1)
            sd[case] = math.sqrt(rate * (1 - rate))
    open_cases = [c for c in cases if sd[c] > 0 and room[c] > 0]
    shares = dict.fromkeys(cases, 0.0)
    left = float(settings.round_size * len(open_cases))
    free = list(open_cases)
    while free and left > 0:
        total = sum(sd[c] for c in free)
        capped = [c for c in free if left * sd[c] / total >= room[c]]
        if not capped:
            for c in free:
                shares[c] = left * sd[c] / total
            break
        for c in capped:
            shares[c] = float(room[c])
            left -= room[c]
            free.remove(c)
    out = {c: min(room[c], math.floor(shares[c] + 1e-9)) for c in cases}
    short = round(sum(shares.values())) - sum(out.values())
    remainders = sorted(
        (c for c in open_cases if out[c] < room[c]), key=lambda c: (-(shares[c] - out[c]), c)
    )
    for c in remainders[: max(0, short)]:
        out[c] += 1
    return out


def settled_after(settings: Settings) -> int:
    """Runs of a case under every pattern after which, if constant, it gets no more: twice
    the first round (4 with the default first round of 2), at most ``max_repeat``."""
    return min(settings.max_repeat, 2 * settings.first_round)


def information_fraction(baseline: Scores, candidate: Scores, max_repeat: int) -> float:
    """The comparison's information now over what every case at ``max_repeat`` would give.

    The mean per-case difference over the k paired cases has variance
    ``(1/k^2) sum(tau^2 + va/ra + vb/rb)``: ``tau^2`` the between-case variance of the true
    differences (:func:`.planning.components`), ``va``, ``vb`` the case's within-case
    variance under each pattern, ``ra``, ``rb`` its repetitions. Information is the inverse,
    so the fraction is ``sum(tau^2 + (va + vb) / max_repeat) / sum(tau^2 + va/ra + vb/rb)``,
    at most 1. A case constant under both patterns adds nothing now or later. Unpaired, the
    fraction is that of the repetitions run.
    """
    common = sorted(k for k in baseline.keys() & candidate.keys() if baseline[k] and candidate[k])
    if len(common) < 2:
        runs_a = sum(len(v) for v in baseline.values())
        runs_b = sum(len(v) for v in candidate.values())
        full_a = max(1, len([v for v in baseline.values() if v])) * max_repeat
        full_b = max(1, len([v for v in candidate.values() if v])) * max_repeat
        if runs_a == 0 or runs_b == 0:
            return 0.0
        return min(1.0, (1 / full_a + 1 / full_b) / (1 / runs_a + 1 / runs_b))
    parts = planning.components(baseline, candidate)
    between = parts.between if parts is not None else 0.0
    pooled = parts.within / 2 if parts is not None else 0.0
    now = full = 0.0
    for case in common:
        a, b = list(baseline[case]), list(candidate[case])
        va = sample_variance(a) if len(a) >= 2 else pooled
        vb = sample_variance(b) if len(b) >= 2 else pooled
        now += between + va / len(a) + vb / len(b)
        full += between + (va + vb) / max_repeat
    if now <= 0:
        return 1.0
    return min(1.0, full / now)


def _look(
    pattern: str,
    u: family.Units,
    test: _Test,
    baseline: Scores,
    candidate: Scores,
    history: Sequence[Look],
    number: int,
    alpha: float,
    max_repeat: int,
    final: bool,
) -> Look:
    """The comparison at this look, without its interval."""
    earlier = [look.fraction for look in history]
    last = earlier[-1] if earlier else 0.0
    fraction = 1.0 if final else max(last, information_fraction(baseline, candidate, max_repeat))
    boundary = sequential.boundaries([*earlier, fraction], alpha)[-1]
    level = sequential.level_of(boundary)
    result = test.result()
    crossed = level > 0 and result.p <= level
    before = next((look.decided_at for look in history if look.decided), None)
    decided_at = before if before is not None else (number if crossed else None)
    return Look(
        pattern,
        fraction,
        level,
        result.p,
        result.estimate,
        None,
        decided_at is not None,
        decided_at,
        boundary,
        u.n_cases,
    )


def _interval(u: family.Units, test: _Test, level: float) -> Interval | None:
    """The repeated confidence interval: the family's randomization interval at ``level``."""
    result = test.result()
    if result.min_p > level:
        return None
    if u.paired and bool((u.candidate == u.baseline).all()):
        return Interval(0.0, 0.0)
    if result.se <= 0:
        return None
    return Interval(*test.interval(level, (-1.0, 1.0)))


def _width(interval: Interval | None) -> float:
    return math.inf if interval is None else interval.high - interval.low
