"""CI gates: fail only when the data show a regression beyond its margin.

A rule such as ``latency_p95:+20%`` is a one-sided test of H0 "the change is within the
margin" against H1 "the change is beyond it", at ``alpha``. The estimate and interval a gate
shows are that test's own quantity, and the interval is the test inverted: a gate fails
exactly when the interval's end lies beyond the margin. A gate that cannot be evaluated (no
baseline, too few runs, an unknown cost) says so; it never passes silently.
docs/statistics.md explains the tests.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize
from scipy import stats as sps

from pytest_agentpatterns import stats

Verdict = Literal["pass", "fail", "not evaluated"]

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

STATISTICS: Mapping[str, stats.Statistic] = {
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
            return f"{self.metric}:+{_plain(round(self.margin * 100, 9))}%"
        if self.margin == 0:
            return f"{self.metric}:0"
        return f"{self.metric}:-{_plain(-self.margin)}"

    @property
    def margin_text(self) -> str:
        """The margin as written in a rule (``+20%``, ``-0.05``)."""
        return str(self).partition(":")[2]


@dataclass(frozen=True)
class GateResult:
    """The verdict of one rule for one test function and pattern.

    ``estimate`` is the change the test is about (an accuracy difference, or a ratio current /
    baseline of the rule's statistic, per case when paired) with its ``interval`` at confidence
    1 - 2*alpha, made by inverting the same test: the gate fails exactly when the interval's
    upper end (accuracy) or lower end (ratios) lies beyond the margin. ``method`` names the
    test; ``message`` is one line for people. A "not evaluated" result has no estimate and says
    why in ``reason`` and ``message``.
    """

    rule: GateRule
    test: str
    pattern: str
    verdict: Verdict
    estimate: float | None
    interval: stats.Interval | None
    p_value: float | None
    message: str
    method: str | None = None
    paired: bool | None = None
    n_cases: int = 0
    reason: str | None = None

    @property
    def failed(self) -> bool:
        """True when the gate failed."""
        return self.verdict == "fail"


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


def evaluate(
    rule: GateRule,
    baseline: stats.MaybeValues | None,
    current: stats.MaybeValues,
    *,
    alpha: float = 0.05,
    seed: int = 0,
    test: str = "",
    pattern: str = "",
    n_resamples: int = stats.N_RESAMPLES,
) -> GateResult:
    """Test whether ``current`` regressed beyond ``rule`` against ``baseline``.

    ``baseline`` is None when the test (or pattern) is missing from the baseline run. Paired by
    case when at least two cases are in both runs; the verdict is "fail" when the one-sided
    p-value is at most ``alpha``, "not evaluated" when the data cannot decide (see
    docs/statistics.md), else "pass". ``seed`` and ``n_resamples`` are accepted for
    compatibility: every test is computed in closed form, without resampling.
    """
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha!r}")

    def skip(reason: str) -> GateResult:
        message = f"{rule.metric}: not evaluated: {reason}"
        return GateResult(
            rule, test, pattern, "not evaluated", None, None, None, message, reason=reason
        )

    if baseline is None:
        return skip("not in the baseline run")
    for name, values in (("baseline", baseline), ("current run", current)):
        if not any(len(v) for v in values.values()):
            return skip(f"no {rule.metric} values in the {name}")
        if _has_unknown(values):
            return skip(f"{rule.metric} unknown for some runs in the {name}")
    if rule.metric == "accuracy":
        outcome = _accuracy_outcome(_floats(baseline), _floats(current), rule.margin, alpha)
    else:
        outcome = _ratio_outcome(rule, baseline, current, alpha)
    if isinstance(outcome, str):
        return skip(outcome)
    verdict: Verdict = "fail" if outcome.p_value <= alpha else "pass"
    d = outcome.design
    return GateResult(
        rule=rule,
        test=test,
        pattern=pattern,
        verdict=verdict,
        estimate=outcome.estimate,
        interval=outcome.interval,
        p_value=outcome.p_value,
        message=_message(rule, verdict, outcome, 1 - 2 * alpha),
        method=outcome.method + (", paired" if d.paired else ", unpaired"),
        paired=d.paired,
        n_cases=d.n_cases,
    )


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


def _too_small(d: stats.Design, alpha: float) -> str | None:
    """Why the data are too few to fail the gate on, or None.

    Paired, at least log2(1/alpha) cases: with fewer, even cases that all moved the same way
    could not show a regression without leaning wholly on the t model (a sign test's best p is
    0.5**n). Unpaired, enough runs that one arrangement of all runs out of C(n_b + n_c, n_b)
    is at most alpha, the best a rank test could do.
    """
    if d.paired:
        if 0.5**d.n_cases <= alpha:
            return None
        need = math.ceil(math.log(1 / alpha) / math.log(2))
        return (
            f"n too small: {d.n_cases} paired cases; a one-sided test at alpha={alpha:g} "
            f"needs at least {need}"
        )
    nb, nc = len(d.baseline), len(d.candidate)
    if 1 / math.comb(nb + nc, nb) <= alpha:
        return None
    return (
        f"n too small: {nb} baseline and {nc} current units could not show a regression "
        f"at alpha={alpha:g}, whatever they were"
    )


@dataclass(frozen=True)
class _Outcome:
    """A one-sided test against the margin with the estimate and interval it is about."""

    design: stats.Design
    estimate: float
    interval: stats.Interval | None
    p_value: float
    method: str


def _accuracy_outcome(
    baseline: stats.Values, current: stats.Values, margin: float, alpha: float
) -> _Outcome | str:
    """One-sided test of H1: accuracy difference (current - baseline) < margin, or why not."""
    est = stats.accuracy_difference(baseline, current, confidence=1 - 2 * alpha)
    d = est.design
    if est.estimate is None:
        return est.note or "no estimate"
    too_small = _too_small(d, alpha)
    if too_small:
        return too_small
    if est.location is None:  # binary, one outcome per unit: a score test, inverted
        base, cur = d.means()
        p_of: Callable[[float], float]
        if d.paired:
            _, only_b, only_c, _ = stats.paired_counts(base, cur)
            n = d.n_cases
            estimate = (only_c - only_b) / n

            def p_of(m: float) -> float:
                return _tango(only_c, only_b, n, m)

            method = "one-sided Tango score test"
        else:
            kb, nb, kc, nc = int(base.sum()), base.size, int(cur.sum()), cur.size
            estimate = kc / nc - kb / nb

            def p_of(m: float) -> float:
                return _farrington_manning(kc, nc, kb, nb, m)

            method = "one-sided Farrington-Manning score test"
        interval = _invert(p_of, alpha)
        return _Outcome(d, estimate, interval, p_of(margin), method)
    if not est.location.testable:
        return "n too small: no spread to test against"
    p = est.location.p_less(margin)
    return _Outcome(d, est.location.center, est.interval, p, f"one-sided {est.method}")


def _ratio_outcome(
    rule: GateRule, baseline: stats.MaybeValues, current: stats.MaybeValues, alpha: float
) -> _Outcome | str:
    """One-sided test of H1: ratio (current / baseline) > 1 + margin, or why not."""
    est = stats.ratio_estimate(
        rule.metric,
        baseline,
        current,
        statistic=STATISTICS[rule.metric],
        confidence=1 - 2 * alpha,
    )
    d = est.design
    if est.estimate is None or est.location is None:
        return est.note or "no estimate"
    too_small = _too_small(d, alpha)
    if too_small:
        return too_small
    if not est.location.testable:
        return "n too small: no spread to test against"
    p = est.location.p_greater(math.log1p(rule.margin))
    return _Outcome(d, est.estimate, est.interval, p, f"one-sided {est.method}")


def _invert(p_of: Callable[[float], float], alpha: float) -> stats.Interval:
    """The 1 - 2*alpha interval of a difference from its one-sided test of H1: "below m".

    ``p_of(m)`` falls as ``m`` rises; the upper end is where it crosses ``alpha`` (so the test
    rejects at a margin exactly when the margin is at or above it), the lower end where it
    crosses ``1 - alpha`` (the opposite one-sided test).
    """
    lo, hi = -1 + 1e-9, 1 - 1e-9

    def crossing(level: float) -> float:
        def f(m: float) -> float:
            return p_of(m) - level

        if f(lo) <= 0:
            return -1.0
        if f(hi) >= 0:
            return 1.0
        return float(optimize.brentq(f, lo, hi, xtol=1e-13))

    return stats.Interval(crossing(1 - alpha), crossing(alpha))


def _tango(only_c: int, only_b: int, n: int, margin: float) -> float:
    """Tango's (1998) score test of H1: p_current - p_baseline < margin, paired binary.

    ``only_c``/``only_b`` count the cases only the current/baseline run got right.
    """
    a = 2 * n
    b = -only_c - only_b + (2 * n - only_c + only_b) * margin
    c = -only_b * margin * (1 - margin)
    q = (math.sqrt(max(0.0, b * b - 4 * a * c)) - b) / (2 * a)
    variance = n * (2 * q + margin * (1 - margin))
    return _score_p(only_c - only_b - n * margin, variance)


def _farrington_manning(kc: int, nc: int, kb: int, nb: int, margin: float) -> float:
    """Farrington-Manning score test of H1: p_current - p_baseline < margin, independent.

    The proportions under H0 are the restricted maximum likelihood estimates, in closed form
    (Farrington & Manning 1990; Miettinen & Nurminen 1985).
    """
    if margin <= -1:
        return 1.0
    if margin >= 1:
        return 0.0
    pc_hat, pb_hat = kc / nc, kb / nb
    pc = _restricted_mle(kc, nc, kb, nb, margin)
    pb = pc - margin
    variance = pc * (1 - pc) / nc + pb * (1 - pb) / nb
    return _score_p(pc_hat - pb_hat - margin, variance)


def _restricted_mle(kc: int, nc: int, kb: int, nb: int, margin: float) -> float:
    """The current run's proportion maximising the likelihood under p_c - p_b = margin."""
    p1, p2, theta = kc / nc, kb / nb, nb / nc
    a = 1 + theta
    b = -(1 + theta + p1 + theta * p2 + margin * (theta + 2))
    c = margin**2 + margin * (2 * p1 + theta + 1) + p1 + theta * p2
    d = -p1 * margin * (1 + margin)
    v = b**3 / (3 * a) ** 3 - b * c / (6 * a**2) + d / (2 * a)
    u = math.copysign(math.sqrt(max(0.0, b**2 / (3 * a) ** 2 - c / (3 * a))), v)
    if u == 0:
        return min(1.0, max(0.0, -b / (3 * a)))
    w = (math.pi + math.acos(max(-1.0, min(1.0, v / u**3)))) / 3
    low, high = max(0.0, margin), min(1.0, 1 + margin)
    return min(high, max(low, 2 * u * math.cos(w) - b / (3 * a)))


def _score_p(numerator: float, variance: float) -> float:
    """Lower-tail normal p-value of a score statistic; with no variance, by its sign alone."""
    if variance <= 0:
        return 0.5 if numerator == 0 else (0.0 if numerator < 0 else 1.0)
    return float(sps.norm.cdf(numerator / math.sqrt(variance)))


# --- values and messages ---------------------------------------------------------------------


def _has_unknown(values: stats.MaybeValues) -> bool:
    return any(x is None or math.isnan(x) for reps in values.values() for x in reps)


def _floats(values: stats.MaybeValues) -> dict[str, list[float]]:
    return {k: [float(x) for x in reps if x is not None] for k, reps in values.items()}


def _message(rule: GateRule, verdict: Verdict, outcome: _Outcome, confidence: float) -> str:
    margin = 1 + rule.margin if rule.relative else rule.margin
    interval = outcome.interval
    shown = [outcome.estimate]
    if interval is not None:
        shown.append(interval.low if rule.relative else interval.high)
    digits = _digits(shown, margin, rule.relative)

    def text(value: float) -> str:
        if rule.relative:
            return f"{(value - 1) * 100:+.{digits}f}%"
        return f"{value:+.{digits}f}"

    evidence = (
        "no interval"
        if interval is None
        else f"{confidence * 100:g}% CI {text(interval.low)}..{text(interval.high)}"
    )
    if verdict == "fail":
        beyond = "drops beyond" if not rule.relative else "exceeds"
        return (
            f"{rule.metric} {text(outcome.estimate)} ({evidence}) {beyond} the "
            f"{rule.margin_text} margin, {stats.format_p(outcome.p_value)}"
        )
    return (
        f"{rule.metric} {text(outcome.estimate)} ({evidence}) not shown beyond the "
        f"{rule.margin_text} margin, {stats.format_p(outcome.p_value)}"
    )


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
