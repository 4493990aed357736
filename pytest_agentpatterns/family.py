"""Accuracy comparisons within one test function: one family, one decision.

A test function is one question ("which pattern should we ship for this task?"), so its
comparisons form one family, adjusted within it and never with other tests': adding a
test file never changes another test's conclusions. The family is each pattern's
accuracy against the baseline pattern's; latency and cost are estimates with intervals
(:mod:`.ratios`), not tests in it.

Each comparison is a randomization t-test (:mod:`.randomization`) at level alpha / m
(Bonferroni over the m comparisons), and its interval is the same test inverted at that
level: the simultaneous interval excludes 0 exactly when the verdict is "better" or
"worse". A comparison whose design could not reach the level whatever the data (too few
cases) says so instead of testing. docs/statistics.md explains each choice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from . import randomization
from .stats import Interval, t_quantile

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    _Array = NDArray[np.float64]
else:
    from .lazy_numpy import np

Values = Mapping[str, Sequence[float]]
"""Case id -> the scores (1/0 or graded) of that case's repetitions."""

Verdict = Literal["better", "worse", "no difference shown", "too few cases", "not compared"]

POWER = 0.8
"""Power at which the smallest detectable difference is stated."""

NEVER = 2**31
"""The cases a design needs when no number of them could reach its level."""


@dataclass(frozen=True, eq=False)
class Units:
    """What a comparison analyses: paired cases, or unpaired units, with their noise floor.

    Paired, ``baseline[i]`` and ``candidate[i]`` are the mean scores of the same case and
    ``floor`` the standard error of the mean difference that the repetitions within cases
    show on their own. Unpaired, the units are cases (each side ran at least two) or
    single repetitions (a side ran one case).
    """

    paired: bool
    baseline: _Array
    candidate: _Array
    floor: float
    n_cases: int
    unit: Literal["cases", "runs"]

    def test(self, seed: int) -> randomization.Paired | randomization.Unpaired:
        if self.paired:
            return randomization.Paired(self.candidate - self.baseline, self.floor, seed)
        return randomization.Unpaired(self.baseline, self.candidate, seed)


@dataclass(frozen=True)
class AccuracyComparison:
    """One pattern's accuracy against the baseline pattern's, within its test's family.

    ``estimate`` is candidate minus baseline (the mean of per-case differences when
    paired). ``interval`` is simultaneous for the family: at ``level`` = alpha / m, the
    randomization test inverted, so it excludes 0 exactly when ``verdict`` is "better" or
    "worse". It is None when every case differs by exactly the same amount and the
    repetitions show no noise (``note`` says so; the exact test still decides).
    ``p_value`` is two-sided and unadjusted, ``p_adjusted`` = min(1, m * p). ``mde`` is the
    smallest difference this comparison would detect with 80% power at ``level``.
    """

    pattern: str
    baseline: str
    verdict: Verdict
    estimate: float | None
    interval: Interval | None
    p_value: float | None
    p_adjusted: float | None
    level: float
    method: str
    paired: bool
    n_cases: int
    n_baseline: int = 0
    n_candidate: int = 0
    mde: float | None = None
    needs_cases: int | None = None
    note: str | None = None

    @property
    def significant(self) -> bool:
        return self.verdict in ("better", "worse")


@dataclass(frozen=True)
class Family:
    """The accuracy comparisons of one test function against its baseline pattern."""

    test: str
    baseline: str
    alpha: float
    size: int
    comparisons: tuple[AccuracyComparison, ...]
    sequential: bool = False
    """The levels came from an adaptive run's stopping look, not from ``alpha / m``."""

    @property
    def level(self) -> float:
        """The level each comparison is tested at (Bonferroni); with ``sequential``, the
        level of the fixed design, each comparison's own is in its ``level``."""
        return self.alpha / max(1, self.size)

    @property
    def method(self) -> str:
        many = f"{self.size} comparison{'s' if self.size != 1 else ''}"
        if self.sequential:
            return (
                f"randomization t-tests, Bonferroni over {many} (each at "
                f"{format_level(self.level)}, spent over an adaptive run's looks)"
            )
        return f"randomization t-tests, Bonferroni over {many} (each at {format_level(self.level)})"

    def undecided(self) -> list[AccuracyComparison]:
        """The comparisons that showed no difference, though they could have."""
        return [c for c in self.comparisons if c.verdict == "no difference shown"]

    def detectable(self) -> tuple[float, float] | None:
        """The smallest and largest detectable difference among undecided comparisons."""
        mdes = [c.mde for c in self.undecided() if c.mde is not None]
        if not mdes:
            return None
        return min(mdes), max(mdes)


def format_level(level: float) -> str:
    """A significance level for people: ``0.05``, ``0.0083``."""
    return f"{level:.2g}"


def units(baseline: Values, candidate: Values) -> Units:
    """Choose the units of a comparison.

    Paired over the common cases when at least two cases ran under both patterns;
    otherwise unpaired over cases when each side has at least two, over repetitions when a
    side ran a single case. Cases are taken in sorted order, so results never depend on the
    order of a mapping.
    """
    base = {k: np.asarray(v, dtype=float) for k, v in baseline.items() if len(v) > 0}
    cand = {k: np.asarray(v, dtype=float) for k, v in candidate.items() if len(v) > 0}
    for side in (base, cand):
        for values in side.values():
            _check_scores(values)
    common = sorted(base.keys() & cand.keys())
    if len(common) >= 2:
        b = [base[k] for k in common]
        c = [cand[k] for k in common]
        return Units(True, _means(b), _means(c), paired_floor(b, c), len(common), "cases")
    n_cases = len(base.keys() | cand.keys())
    if len(base) >= 2 and len(cand) >= 2:
        return Units(
            False,
            _means([base[k] for k in sorted(base)]),
            _means([cand[k] for k in sorted(cand)]),
            0.0,
            n_cases,
            "cases",
        )
    flat_b = np.concatenate([base[k] for k in sorted(base)]) if base else np.zeros(0)
    flat_c = np.concatenate([cand[k] for k in sorted(cand)]) if cand else np.zeros(0)
    return Units(False, flat_b, flat_c, 0.0, n_cases, "runs")


def paired_floor(baseline: Sequence[_Array], candidate: Sequence[_Array]) -> float:
    """The standard error of the mean per-case difference from within-case noise alone.

    Binary scores with repetitions use each case's proportion smoothed by half a success
    and half a failure (Jeffreys), so a case that was always right still carries the noise
    of its few repetitions. With one binary outcome per case on both sides, the floor is
    Agresti and Min's (2005): half a pair added to each cell of the paired 2x2 table.
    Graded scores use each case's sample variance.
    """
    k = len(baseline)
    if k == 0:
        return 0.0
    binary = all(_is_binary(a) for a in (*baseline, *candidate))
    if binary and all(a.size == 1 for a in (*baseline, *candidate)):
        b = np.array([float(a[0]) for a in baseline])
        c = np.array([float(a[0]) for a in candidate])
        only_b = float(np.sum((b == 1) & (c == 0))) + 0.5
        only_c = float(np.sum((b == 0) & (c == 1))) + 0.5
        n = k + 2.0
        var = ((only_b + only_c) - (only_c - only_b) ** 2 / n) / n
        return math.sqrt(max(0.0, var) / k)
    total = 0.0
    for side in (baseline, candidate):
        for values in side:
            total += _within(values, binary)
    return math.sqrt(total) / k


def compare(
    test: str,
    baseline_id: str,
    patterns: Mapping[str, Values],
    *,
    alpha: float = 0.05,
    seed: int = 0,
    levels: Mapping[str, float] | None = None,
) -> Family:
    """Every pattern's accuracy against ``baseline_id``'s, adjusted within this test.

    ``patterns`` maps pattern id -> case -> repetition scores, the baseline included.
    Candidates without data on either side are "not compared" and do not count towards m.
    ``levels`` overrides the level of the patterns it names (an adaptive run's stopping
    look, :func:`.adaptive.final_levels`); the others keep ``alpha / m``. A comparison's
    adjusted p is then scaled so that it is at most alpha exactly when the verdict is
    significant.
    """
    base = patterns.get(baseline_id, {})
    candidates = [p for p in patterns if p != baseline_id]
    designs: dict[str, Units | str] = {}
    for pattern in candidates:
        u = units(base, patterns[pattern])
        if u.baseline.size == 0 or u.candidate.size == 0:
            sides = [
                s for s, a in (("baseline", u.baseline), ("candidate", u.candidate)) if not a.size
            ]
            designs[pattern] = f"no runs for the {' and '.join(sides)}"
        else:
            designs[pattern] = u
    size = sum(1 for d in designs.values() if isinstance(d, Units))
    level = alpha / max(1, size)
    out = []
    for pattern in candidates:
        d = designs[pattern]
        if isinstance(d, str):
            out.append(
                AccuracyComparison(
                    pattern,
                    baseline_id,
                    "not compared",
                    None,
                    None,
                    None,
                    None,
                    level,
                    "none",
                    False,
                    0,
                    note=d,
                )
            )
            continue
        own = level if levels is None else levels.get(pattern, level)
        if not (0 <= own <= 1):
            raise ValueError(f"the level for {pattern} must be in [0, 1], got {own!r}")
        scale = size if own == level else (alpha / own if own > 0 else math.inf)
        out.append(_decide(pattern, baseline_id, d, own, scale, seed))
    overridden = levels is not None and any(
        p in levels and isinstance(designs.get(p), Units) for p in candidates
    )
    return Family(test, baseline_id, alpha, size, tuple(out), overridden)


@dataclass(frozen=True)
class Pair:
    """Two patterns compared at a level: ``b`` minus ``a``, as `compare` would.

    ``reachable`` is False when the design could not reach the level whatever the data
    (too few cases); then there is no interval. ``sd`` is the per-case standard deviation
    of the differences (paired only), for planning more cases.
    """

    estimate: float
    interval: Interval | None
    rejects: bool
    reachable: bool
    paired: bool
    n_cases: int
    sd: float | None


def pairwise(a: Values, b: Values, *, level: float, seed: int = 0) -> Pair | None:
    """``mean(b) - mean(a)`` tested at ``level``; None when a side has no scores."""
    u = units(a, b)
    if u.baseline.size == 0 or u.candidate.size == 0:
        return None
    t = u.test(seed)
    result = t.result()
    reachable = result.min_p <= level
    interval = None
    if reachable and not _zero_spread(result):
        interval = Interval(*t.interval(level, (-1.0, 1.0)))
    sd = None
    if u.paired:
        diffs = u.candidate - u.baseline
        spread = float(diffs.std(ddof=1)) if diffs.size > 1 else 0.0
        sd = max(spread, u.floor * math.sqrt(diffs.size))
    return Pair(
        result.estimate,
        interval,
        reachable and result.p <= level,
        reachable,
        u.paired,
        u.n_cases,
        sd,
    )


def needed_cases(level: float) -> int:
    """Paired cases a sign-flip test needs before any data could reach ``level`` (level 0,
    an adaptive look that added no information: no number of cases)."""
    if level <= 0:
        return NEVER
    return max(2, math.ceil(math.log2(2 / level) - 1e-12))


def _decide(
    pattern: str, baseline: str, u: Units, level: float, scale: float, seed: int
) -> AccuracyComparison:
    test = u.test(seed)
    result = test.result()
    kind = "paired" if u.paired else "unpaired"
    method = (
        f"sign-flip t-test, {kind} over {u.unit}"
        if u.paired
        else f"permutation Welch t-test, {kind} over {u.unit}"
    )
    common = dict(
        level=level,
        method=method,
        paired=u.paired,
        n_cases=u.n_cases,
        n_baseline=int(u.baseline.size),
        n_candidate=int(u.candidate.size),
    )
    p_adj = min(1.0, result.p * scale)
    if result.min_p > level:
        need = needed_cases(level) if u.paired else None
        what = (
            f"{u.n_cases} paired cases cannot show a difference at {format_level(level)}; "
            f"it needs at least {need}"
            if u.paired
            else f"{u.baseline.size} and {u.candidate.size} {u.unit} cannot show a "
            f"difference at {format_level(level)}"
        )
        return AccuracyComparison(
            pattern,
            baseline,
            "too few cases",
            result.estimate,
            None,
            result.p,
            p_adj,
            needs_cases=need,
            note=what,
            **common,  # type: ignore[arg-type]
        )
    rejects = result.p <= level
    verdict: Verdict = (
        ("better" if result.estimate > 0 else "worse") if rejects else "no difference shown"
    )
    note = None
    interval: Interval | None = None
    identical = u.paired and bool(np.all(u.candidate == u.baseline))
    if identical:
        # Every case scored the same under both patterns: the exact test's interval is the
        # single point 0, and `mde` says how large a difference such data could hide.
        note = "identical on every case"
        interval = Interval(0.0, 0.0)
    elif _zero_spread(result):
        note = f"every case differs by exactly {result.estimate:+.3f}, with no noise"
    else:
        interval = Interval(*test.interval(level, (-1.0, 1.0)))
    mde = _mde(result, level)
    return AccuracyComparison(
        pattern,
        baseline,
        verdict,
        result.estimate,
        interval,
        result.p,
        p_adj,
        mde=mde,
        note=note,
        **common,  # type: ignore[arg-type]
    )


def _mde(result: randomization.Result, level: float) -> float | None:
    """Smallest true difference detected with `POWER` at ``level`` (t approximation)."""
    if result.se <= 0 or result.df < 1:
        return None
    k = t_quantile(1 - level / 2, result.df) + t_quantile(POWER, result.df)
    return min(1.0, k * result.se)


def _zero_spread(result: randomization.Result) -> bool:
    return result.se == 0


def _means(arrays: Sequence[_Array]) -> _Array:
    return np.array([float(a.mean()) for a in arrays], dtype=float)


def _is_binary(values: _Array) -> bool:
    return bool(np.all((values == 0) | (values == 1)))


def _within(values: _Array, binary: bool) -> float:
    """The variance of one case's mean score that its repetitions show."""
    n = values.size
    if n < 2:
        return 0.0
    if binary:
        p = (float(values.sum()) + 0.5) / (n + 1)
        return p * (1 - p) / n
    return float(values.var(ddof=1)) / n


def _check_scores(values: _Array) -> None:
    bad = values[~((values >= 0) & (values <= 1))]
    if bad.size:
        raise ValueError(f"accuracy values must be scores in [0, 1], got {bad[0]!r}")
