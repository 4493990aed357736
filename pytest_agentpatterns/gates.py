"""CI gates: a run fails unchanged code at most alpha, and says when it cannot tell.

A rule such as ``latency_p95:+20%`` is checked for every test function and pattern of the
run against the saved baseline run. Each check is two one-sided tests at a share of the
run's alpha (Bonferroni: alpha over the number of gates the run evaluates), so the whole run
fails unchanged code at most alpha however many gates it has:

- **fail**: the data show the change beyond the margin (the interval lies beyond it);
- **pass**: the data show the change within the margin (the interval lies within it), or
  the run is identical to the baseline on every case;
- **inconclusive**: neither; the gate states the smallest regression it could have shown.

The interval a gate shows is its two tests inverted (confidence 1 - 2 * level), so the
verdict can be read off it. Accuracy uses the statistic of :mod:`.family` (its cases needed
for a decision too) against Student's t at the margin; latency, cost, tokens and calls the
ratios of :mod:`.ratios` (a quantile stays a quantile). A gate whose design cannot reach its
level reports a power of 0. A gate
that cannot be evaluated (not in the baseline, an unknown cost) says why and does not count.
docs/statistics.md and docs/ci.md explain the rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from . import family, randomization, ratios
from .stats import Interval, t_cdf, t_quantile, t_sf

if TYPE_CHECKING:
    import numpy as np
else:
    from .lazy_numpy import np

Verdict = Literal["pass", "fail", "inconclusive", "not evaluated"]

ALLOWED_METRICS: tuple[str, ...] = (
    "accuracy",
    "latency_p50",
    "latency_p95",
    "latency_mean",
    "cost",
    "tokens",
    "calls",
)
"""Metrics a gate may name: accuracy takes an absolute drop, the others a relative rise."""

STATISTICS: Mapping[str, ratios.Statistic] = {
    "latency_p50": "p50",
    "latency_p95": "p95",
    "latency_mean": "mean",
    "cost": "mean",
    "tokens": "mean",
    "calls": "mean",
}
"""Which statistic of the per-run values each relative metric compares."""

ALLOWED_FORMS = (
    "allowed: accuracy:-D (a tolerated absolute drop D in [0, 1], e.g. accuracy:-0.05; "
    "accuracy:0 fails on any shown drop) or METRIC:+P% (a tolerated relative rise of P >= 0 "
    "percent, e.g. latency_p95:+20%) with METRIC one of "
    + ", ".join(m for m in ALLOWED_METRICS if m != "accuracy")
    + "; rules separated by commas"
)
"""What `parse_rules` accepts, quoted in its errors."""

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


@dataclass(frozen=True)
class GateRule:
    """One gate: ``metric`` may regress by at most ``margin``.

    For accuracy (``relative`` False) ``margin`` is the tolerated change in accuracy, zero or
    negative (-0.05 tolerates a drop of five points). For the other metrics (``relative``
    True) it is the tolerated relative rise as a fraction (0.2 for +20%).
    """

    metric: str
    margin: float
    relative: bool

    def __post_init__(self) -> None:
        if self.metric not in ALLOWED_METRICS:
            raise ValueError(f"unknown gate metric {self.metric!r}; {ALLOWED_FORMS}")
        if self.relative != (self.metric != "accuracy"):
            kind = "relative" if self.metric != "accuracy" else "absolute"
            raise ValueError(f"the {self.metric} margin is {kind}; {ALLOWED_FORMS}")
        if not math.isfinite(self.margin):
            raise ValueError(f"gate margin must be finite, got {self.margin!r}")
        if self.relative and self.margin < 0:
            raise ValueError(f"the {self.metric} margin must be zero or more; {ALLOWED_FORMS}")
        if not self.relative and not -1 <= self.margin <= 0:
            raise ValueError(f"the accuracy margin must be in [-1, 0]; {ALLOWED_FORMS}")

    def __str__(self) -> str:
        if self.relative:
            # "or 0.0": a margin of -0% is +0% (it read back as "+-0%", which does not parse)
            return f"{self.metric}:+{_plain(round(self.margin * 100, 9) or 0.0)}%"
        if self.margin == 0:
            return f"{self.metric}:0"
        return f"{self.metric}:-{_plain(-self.margin)}"

    @property
    def margin_text(self) -> str:
        """The margin as written in a rule (``+20%``, ``-0.05``)."""
        return str(self).partition(":")[2]


POWER = 0.8
"""Power at which a gate's smallest detectable regression is stated."""


@dataclass(frozen=True)
class GateResult:
    """The verdict of one rule for one test function and pattern.

    ``estimate`` is the change (an accuracy difference, current - baseline, or a ratio
    current / baseline) and ``interval`` its two one-sided tests inverted at ``level`` each,
    so the gate fails exactly when the interval lies beyond the margin and passes exactly
    when it lies within. ``p_value`` is the one-sided p of "beyond the margin". ``mde`` is
    the smallest regression this gate would catch with 80% power (an accuracy change, or a
    ratio); ``power`` the chance it fails if the true regression were twice its tolerance
    (see `reference_change`). ``regressed`` names the cases whose accuracy dropped most
    (with baseline and current means). A "not evaluated" result says why in ``reason``.
    ``changes`` says what differs from the baseline run for this test and pattern (models,
    prompts, settings: :mod:`.changes`); a failed gate's message ends with them.
    """

    rule: GateRule
    test: str
    pattern: str
    verdict: Verdict
    estimate: float | None
    interval: Interval | None
    p_value: float | None
    message: str
    method: str | None = None
    paired: bool | None = None
    n_cases: int = 0
    reason: str | None = None
    level: float | None = None
    mde: float | None = None
    power: float | None = None
    regressed: tuple[tuple[str, float, float], ...] = ()
    changes: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        """True when the gate failed."""
        return self.verdict == "fail"


@dataclass(frozen=True)
class GateRun:
    """Every gate of a run, with the run's alpha and the level each gate was tested at."""

    alpha: float
    level: float
    results: tuple[GateResult, ...] = ()
    fail_on_inconclusive: bool = False

    def count(self, verdict: Verdict) -> int:
        return sum(1 for g in self.results if g.verdict == verdict)

    @property
    def evaluated(self) -> int:
        return len(self.results) - self.count("not evaluated")

    @property
    def failed(self) -> bool:
        """Whether the run fails: a gate failed, or was inconclusive when that fails too."""
        return self.count("fail") > 0 or (
            self.fail_on_inconclusive and self.count("inconclusive") > 0
        )

    def verdict_line(self) -> str:
        """``agentpatterns: 2 gates failed, 3 inconclusive, 21 passed`` (the run's last line)."""
        parts = [
            f"{self.count('fail')} gate{'s' if self.count('fail') != 1 else ''} failed",
            f"{self.count('inconclusive')} inconclusive",
            f"{self.count('pass')} passed",
        ]
        if self.count("not evaluated"):
            parts.append(f"{self.count('not evaluated')} not evaluated")
        text = "agentpatterns: " + ", ".join(parts)
        if self.fail_on_inconclusive and self.count("inconclusive"):
            text += " (inconclusive fails: --patterns-fail-on-inconclusive)"
        return text


def parse_rules(text: str) -> tuple[GateRule, ...]:
    """Parse ``accuracy:-0.05,latency_p95:+20%,cost:+10%``; empty text means no gates.

    Raises ValueError naming the bad rule and listing what is allowed.
    """
    if not text.strip():
        return ()
    rules: list[GateRule] = []
    for item in text.split(","):
        rule = _parse_rule(item.strip())
        if any(r.metric == rule.metric for r in rules):
            raise ValueError(f"gate for {rule.metric} given twice; {ALLOWED_FORMS}")
        rules.append(rule)
    return tuple(rules)


def format_rules(rules: Iterable[GateRule]) -> str:
    """The canonical text of ``rules``; `parse_rules` reads it back to the same rules."""
    return ",".join(str(r) for r in rules)


def reference_change(rule: GateRule) -> float:
    """The regression a gate's ``power`` is stated against: twice its tolerance.

    accuracy:-0.05 -> a drop of 0.10 (0.85 to 0.75); accuracy:0 -> 0.05; latency_p95:+20%
    -> a ratio of 1.2**2 = 1.44; +0% -> 1.1.
    """
    if not rule.relative:
        return 2 * rule.margin if rule.margin < 0 else -0.05
    return (1 + rule.margin) ** 2 if rule.margin > 0 else 1.1


@dataclass(frozen=True)
class Check:
    """One gate to evaluate: a rule for a (test, pattern), with both runs' values per case.

    ``baseline`` is None when the test or pattern is missing from the baseline run.
    """

    rule: GateRule
    test: str
    pattern: str
    baseline: Mapping[str, Sequence[float | None]] | None
    current: Mapping[str, Sequence[float | None]]


def evaluate_run(
    checks: Sequence[Check],
    *,
    alpha: float = 0.05,
    seed: int = 0,
    fail_on_inconclusive: bool = False,
) -> GateRun:
    """Evaluate every check with one run-level error budget.

    The gates that can be evaluated share ``alpha`` equally (Bonferroni), so the run fails
    unchanged code at most ``alpha``; the count depends on which data exist, never on what
    they show.
    """
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha!r}")
    prepared = [(c, _prepare(c.rule, c.baseline, c.current, seed)) for c in checks]
    evaluable = sum(1 for _, p in prepared if not isinstance(p, str))
    level = alpha / max(1, evaluable)
    results = tuple(
        _skip(c.rule, c.test, c.pattern, p)
        if isinstance(p, str)
        else _decide(c.rule, c.test, c.pattern, p, level)
        for c, p in prepared
    )
    return GateRun(alpha, level, results, fail_on_inconclusive)


def evaluate(
    rule: GateRule,
    baseline: Mapping[str, Sequence[float | None]] | None,
    current: Mapping[str, Sequence[float | None]],
    *,
    level: float = 0.05,
    seed: int = 0,
    test: str = "",
    pattern: str = "",
) -> GateResult:
    """One gate on its own, its two one-sided tests at ``level``."""
    prep = _prepare(rule, baseline, current, seed)
    if isinstance(prep, str):
        return _skip(rule, test, pattern, prep)
    return _decide(rule, test, pattern, prep, level)


# --- parsing ---------------------------------------------------------------------------------


def _parse_rule(item: str) -> GateRule:
    def bad(problem: str) -> ValueError:
        return ValueError(f"bad gate rule {_short(item)}: {problem}; {ALLOWED_FORMS}")

    if not item:
        raise bad("empty rule")
    metric, sep, margin = (part.strip() for part in item.partition(":"))
    if not sep:
        raise bad("expected METRIC:MARGIN")
    if metric not in ALLOWED_METRICS:
        raise bad(f"unknown metric {_short(metric)}")
    percent = margin.endswith("%")
    number = margin[:-1].strip() if percent else margin
    if not _NUMBER.fullmatch(number):
        raise bad(f"margin {_short(margin)} is not a number")
    value = float(number)
    if not math.isfinite(value):
        raise bad("the margin is too large")
    if metric == "accuracy":
        if percent:
            raise bad("accuracy takes an absolute drop, not a percentage (e.g. accuracy:-0.05)")
        if value > 0:
            raise bad("the accuracy margin is a drop: write it with a minus sign")
        if value < -1:
            raise bad("an accuracy drop is at most 1")
        return GateRule(metric, value + 0.0, relative=False)
    if not percent:
        raise bad(f"the {metric} margin is relative: write it in percent (e.g. {metric}:+20%)")
    if value < 0:
        raise bad(
            f"a negative {metric} margin would demand an improvement; margins are zero or more"
        )
    return GateRule(metric, value / 100, relative=True)


def _short(text: str, limit: int = 40) -> str:
    """``text`` quoted for an error message, cut short when long."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _plain(x: float) -> str:
    return str(np.format_float_positional(x, trim="-"))


# --- tests -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Accuracy:
    units: family.Units
    design: object = field(repr=False)
    identical: bool
    regressed: tuple[tuple[str, float, float], ...]


@dataclass(frozen=True, eq=False)
class _Ratio:
    ratio: ratios.Ratio
    identical: bool


def _prepare(
    rule: GateRule,
    baseline: Mapping[str, Sequence[float | None]] | None,
    current: Mapping[str, Sequence[float | None]],
    seed: int,
) -> _Accuracy | _Ratio | str:
    """What the gate tests, or why it cannot be evaluated (a reason)."""
    if baseline is None:
        return "not in the baseline run"
    for name, values in (("baseline", baseline), ("current run", current)):
        if not any(len(v) for v in values.values()):
            return f"no {rule.metric} values in the {name}"
        if _has_unknown(values):
            return f"{rule.metric} unknown for some runs in the {name}"
    if rule.metric == "accuracy":
        base, cur = _floats(baseline), _floats(current)
        units = family.units(base, cur)
        if units.baseline.size == 0 or units.candidate.size == 0:
            return "no accuracy values to compare"
        identical = (
            units.paired
            and bool(np.all(units.candidate == units.baseline))
            and all(sorted(base[k]) == sorted(cur[k]) for k in base.keys() & cur.keys())
        )
        return _Accuracy(units, units.test(seed), identical, _regressed(base, cur))
    est = ratios.ratio(
        rule.metric,
        baseline,
        current,
        statistic=STATISTICS[rule.metric],
        seed=seed,
        resamples=40_000,
    )
    if est.estimate is None:
        return est.note or "no estimate"
    identical = est.constant and est.estimate == 1.0
    return _Ratio(est, identical)


def _skip(rule: GateRule, test: str, pattern: str, reason: str) -> GateResult:
    return GateResult(
        rule,
        test,
        pattern,
        "not evaluated",
        None,
        None,
        None,
        f"{rule.metric}: not evaluated: {reason}",
        reason=reason,
    )


def _decide(
    rule: GateRule, test: str, pattern: str, prep: _Accuracy | _Ratio, level: float
) -> GateResult:
    if isinstance(prep, _Accuracy):
        return _decide_accuracy(rule, test, pattern, prep, level)
    return _decide_ratio(rule, test, pattern, prep, level)


def _decide_accuracy(
    rule: GateRule, test: str, pattern: str, prep: _Accuracy, level: float
) -> GateResult:
    u = prep.units
    design = prep.design
    assert isinstance(design, (randomization.Paired, randomization.Unpaired))
    estimate = design.estimate
    method = (
        "one-sided t-tests against the margin, paired over cases"
        if u.paired
        else f"one-sided Welch t-tests against the margin, unpaired over {u.unit}"
    )
    common = dict(
        method=method, paired=u.paired, n_cases=u.n_cases, level=level, regressed=prep.regressed
    )
    margin = rule.margin
    if prep.identical:
        return GateResult(
            rule,
            test,
            pattern,
            "pass",
            0.0,
            Interval(0.0, 0.0),
            1.0,
            f"{rule.metric} identical to the baseline on every case",
            **common,  # type: ignore[arg-type]
        )
    se = design.se()
    df = max(1, design.df)
    mde, power = _power(rule, se, df, level)
    if design.min_p / 2 > level:
        mde, power = None, 0.0  # no data of this design can reach the level
        reason = _too_few(u, level)
        return GateResult(
            rule,
            test,
            pattern,
            "inconclusive",
            estimate,
            None,
            None,
            f"{rule.metric} {estimate:+.3f}: inconclusive: {reason}",
            reason=reason,
            mde=mde,
            power=power,
            **common,  # type: ignore[arg-type]
        )
    p_fail, p_pass, interval = _margin_t(estimate, se, df, margin, level)
    verdict: Verdict = "fail" if p_fail <= level else "pass" if p_pass <= level else "inconclusive"
    return GateResult(
        rule,
        test,
        pattern,
        verdict,
        estimate,
        interval,
        p_fail,
        _message(rule, verdict, estimate, interval, mde),
        mde=mde,
        power=power,
        **common,  # type: ignore[arg-type]
    )


def _margin_t(
    estimate: float, se: float, df: int, margin: float, level: float
) -> tuple[float, float, Interval]:
    """One-sided p-values of "below the margin" and "above it", and the interval at
    confidence ``1 - 2 * level`` that agrees with them.

    The randomization test of "no difference" is exact because, with no difference, each
    case's difference is as likely to have either sign. Shifted to a margin it is not: the
    per-case differences of pass/fail scores less the margin (-1.05, -0.05, 0.95 at
    ``-0.05``) are not symmetric, and flipping their signs passed 15% of 12-case tests run
    exactly at the margin with a 5% level. Against a margin the statistic (the same
    standard error, noise floor included) is referred to Student's t instead, the usual
    non-inferiority test, which keeps each verdict's error near its level.
    """
    if se > 0:
        t = (estimate - margin) / se
        p_fail, p_pass = t_cdf(t, df), t_sf(t, df)
        half = t_quantile(1 - level, df) * se
        low, high = estimate - half, estimate + half
    else:
        below, above = estimate < margin, estimate > margin
        p_fail, p_pass = (0.0 if below else 1.0), (0.0 if above else 1.0)
        low = high = estimate
    return p_fail, p_pass, Interval(max(-1.0, low), min(1.0, high))


def _decide_ratio(
    rule: GateRule, test: str, pattern: str, prep: _Ratio, level: float
) -> GateResult:
    est = prep.ratio
    bound = 1 + rule.margin
    assert est.estimate is not None
    common = dict(
        method=f"one-sided: {est.method}", paired=est.paired, n_cases=est.n_cases, level=level
    )
    if prep.identical or (est.constant and est.estimate <= bound):
        shown = (
            "identical to the baseline on every case"
            if prep.identical
            else "the same on every case"
        )
        return GateResult(
            rule,
            test,
            pattern,
            "pass",
            est.estimate,
            Interval(est.estimate, est.estimate),
            1.0,
            f"{rule.metric} {_pct(est.estimate)} ({shown}) within the {rule.margin_text} margin",
            **common,  # type: ignore[arg-type]
        )
    if est.constant:
        return GateResult(
            rule,
            test,
            pattern,
            "fail",
            est.estimate,
            Interval(est.estimate, est.estimate),
            0.0,
            f"{rule.metric} {_pct(est.estimate)} on every case exceeds the "
            f"{rule.margin_text} margin",
            **common,  # type: ignore[arg-type]
        )
    se = _log_se(est)
    df = est.df if est.df is not None else 1e6
    mde, power = _power(rule, se, df, level) if se is not None else (None, None)
    too_small = _too_small_ratio(est, level)
    if too_small is not None:
        mde, power = None, 0.0  # no data of this design can reach the level
        return GateResult(
            rule,
            test,
            pattern,
            "inconclusive",
            est.estimate,
            None,
            None,
            f"{rule.metric} {_pct(est.estimate)}: inconclusive: {too_small}",
            reason=too_small,
            mde=mde,
            power=power,
            **common,  # type: ignore[arg-type]
        )
    p_fail = est.p_above(bound)
    p_pass = est.p_below(bound)
    interval = est.bounds(level)
    if p_fail is None or p_pass is None or interval is None:
        reason = est.note or "no interval"
        return GateResult(
            rule,
            test,
            pattern,
            "inconclusive",
            est.estimate,
            None,
            None,
            f"{rule.metric} {_pct(est.estimate)}: inconclusive: {reason}",
            reason=reason,
            mde=mde,
            power=power,
            **common,  # type: ignore[arg-type]
        )
    verdict: Verdict = "fail" if p_fail <= level else "pass" if p_pass <= level else "inconclusive"
    return GateResult(
        rule,
        test,
        pattern,
        verdict,
        est.estimate,
        interval,
        p_fail,
        _message(rule, verdict, est.estimate, interval, mde),
        mde=mde,
        power=power,
        **common,  # type: ignore[arg-type]
    )


def _power(rule: GateRule, se: float, df: float, level: float) -> tuple[float | None, float | None]:
    """The smallest regression caught with `POWER`, and the power at `reference_change`."""
    if not se > 0:
        return None, None
    from scipy.special import stdtrit  # scipy.stats.t.ppf, without importing scipy.stats

    crit = float(stdtrit(df, 1 - level))
    reach = crit + float(stdtrit(df, POWER))
    if rule.relative:
        log_margin = math.log1p(rule.margin)
        mde = math.exp(log_margin + reach * se)
        shift = (math.log(reference_change(rule)) - log_margin) / se
    else:
        mde = max(-1.0, rule.margin - reach * se)
        shift = (rule.margin - reference_change(rule)) / se
    power = t_sf(crit - shift, df)
    return mde, power


def _log_se(est: ratios.Ratio) -> float | None:
    if est.log_se is not None:
        return est.log_se
    if est.bootstrap:
        return float(np.std(est.bootstrap, ddof=1))
    return None


def _too_few(u: family.Units, level: float) -> str:
    if u.paired:
        need = math.ceil(math.log2(1 / level) - 1e-12)
        return (
            f"n too small: {u.n_cases} paired cases; a one-sided test at {level:.2g} needs "
            f"at least {need}"
        )
    return (
        f"n too small: {u.baseline.size} baseline and {u.candidate.size} current {u.unit} "
        f"could not show a regression at {level:.2g}, whatever they were"
    )


def _too_small_ratio(est: ratios.Ratio, level: float) -> str | None:
    """Why a ratio's data are too few to decide at ``level``: paired cases whose signs
    alone could not reach it, or too few runs."""
    if est.paired:
        if 0.5**est.n_cases <= level:
            return None
        need = math.ceil(math.log2(1 / level) - 1e-12)
        return (
            f"n too small: {est.n_cases} paired cases; a one-sided test at {level:.2g} needs "
            f"at least {need}"
        )
    if est.bootstrap is not None and len(est.bootstrap) * level < 20:
        return "too few resamples for this level"
    if est.runs is not None and not any(est.reachable(level)):
        q = ratios.QUANTILES[est.statistic] / 100
        need = math.ceil(math.log(1 - math.sqrt(1 - level)) / math.log(q) - 1e-9)
        base, cand = est.runs
        return (
            f"n too small: {len(base)} baseline and {len(cand)} current runs of one case "
            f"cannot bound its {est.statistic} at {level:.2g}; an exact bound needs at least "
            f"{need} runs a side"
        )
    return None


def _regressed(
    baseline: Mapping[str, Sequence[float]], current: Mapping[str, Sequence[float]]
) -> tuple[tuple[str, float, float], ...]:
    """Cases whose mean score dropped, largest drop first (at most five)."""
    drops = []
    for case in sorted(baseline.keys() & current.keys()):
        b, c = baseline[case], current[case]
        if b and c:
            mb, mc = sum(b) / len(b), sum(c) / len(c)
            if mc < mb:
                drops.append((case, mb, mc))
    drops.sort(key=lambda d: (d[2] - d[1], d[0]))
    return tuple(drops[:5])


# --- values and messages ---------------------------------------------------------------------


def _has_unknown(values: Mapping[str, Sequence[float | None]]) -> bool:
    return any(x is None or math.isnan(x) for reps in values.values() for x in reps)


def _floats(values: Mapping[str, Sequence[float | None]]) -> dict[str, list[float]]:
    return {k: [float(x) for x in reps if x is not None] for k, reps in values.items()}


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.0f}%"


def _message(
    rule: GateRule, verdict: Verdict, estimate: float, interval: Interval, mde: float | None
) -> str:
    margin = 1 + rule.margin if rule.relative else rule.margin
    digits = _digits([estimate, interval.low, interval.high], margin, rule.relative)

    def text(value: float) -> str:
        if rule.relative:
            return f"{(value - 1) * 100:+.{digits}f}%"
        return f"{value:+.{digits}f}"

    shown = f"{rule.metric} {text(estimate)} [{text(interval.low)}, {text(interval.high)}]"
    if verdict == "fail":
        beyond = "drops beyond" if not rule.relative else "exceeds"
        return f"{shown} {beyond} the {rule.margin_text} margin"
    if verdict == "pass":
        return f"{shown} within the {rule.margin_text} margin"
    could = ""
    if mde is not None:
        could = (
            f"; could only show a drop of {-mde:.2f} or more"
            if not rule.relative
            else f"; could only show a rise of {_pct(mde)} or more"
        )
    return f"{shown}: neither within nor beyond the {rule.margin_text} margin{could}"


def _digits(values: list[float], margin: float, relative: bool) -> int:
    """Decimals enough for each shown value to read on its true side of the margin."""
    scale, base = (100.0, 0) if relative else (1.0, 3)
    m = (margin - 1) * scale if relative else margin
    for digits in range(base, base + 4):
        if all(
            _sign(round((v - 1) * scale if relative else v, digits) - m)
            == _sign((v - 1) * scale - m if relative else v - m)
            for v in values
        ):
            return digits
    return base + 3


def _sign(x: float) -> int:
    return (x > 1e-12) - (x < -1e-12)
