"""CI gates: fail only when the data show a regression beyond its margin.

A rule such as ``latency_p95:+20%`` is a one-sided test of H0 "the change is within the
margin" against H1 "the change is beyond it", at ``alpha``. A gate that cannot be evaluated
(no baseline, too few runs, an unknown cost) says so; it never passes silently.
docs/statistics.md explains the tests.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize, special
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

    ``estimate`` is the observed change (accuracy difference, or ratio current / baseline)
    with its ``interval`` at confidence 1 - 2*alpha (its lower or upper end is the one-sided
    bound matching the test); ``method`` names the test; ``message`` is one line for people.
    A "not evaluated" result has no estimate and says why in ``reason`` and ``message``.
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
            raise ValueError(f"gate for {rule.metric} given twice in {text!r}; {ALLOWED_FORMS}")
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
    docs/statistics.md), else "pass".
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
    confidence = 1 - 2 * alpha
    if rule.metric == "accuracy":
        est = stats.accuracy_difference(
            _floats(baseline),
            _floats(current),
            confidence=confidence,
            seed=seed,
            n_resamples=n_resamples,
        )
    else:
        est = stats.ratio_estimate(
            rule.metric,
            baseline,
            current,
            statistic=STATISTICS[rule.metric],
            confidence=confidence,
            seed=seed,
            n_resamples=n_resamples,
        )
    if est.estimate is None:
        return skip(est.note or "no estimate")
    d = est.design
    too_small = _too_small(d, alpha)
    if too_small:
        return skip(too_small)
    outcome = (
        _accuracy_test(d, rule.margin) if rule.metric == "accuracy" else _ratio_test(d, rule.margin)
    )
    if isinstance(outcome, str):
        return skip(outcome)
    p, method = outcome
    verdict: Verdict = "fail" if p <= alpha else "pass"
    return GateResult(
        rule=rule,
        test=test,
        pattern=pattern,
        verdict=verdict,
        estimate=est.estimate,
        interval=est.interval,
        p_value=p,
        message=_message(rule, verdict, est.estimate, est.interval, confidence, p),
        method=method + (", paired" if d.paired else ", unpaired"),
        paired=d.paired,
        n_cases=d.n_cases,
    )


# --- parsing ---------------------------------------------------------------------------------


def _parse_rule(item: str) -> GateRule:
    def bad(problem: str) -> ValueError:
        return ValueError(f"bad gate rule {item!r}: {problem}; {ALLOWED_FORMS}")

    if not item:
        raise bad("empty rule")
    metric, sep, margin = (part.strip() for part in item.partition(":"))
    if not sep:
        raise bad("expected METRIC:MARGIN")
    if metric not in ALLOWED_METRICS:
        raise bad(f"unknown metric {metric!r}")
    percent = margin.endswith("%")
    number = margin[:-1].strip() if percent else margin
    if not _NUMBER.fullmatch(number):
        raise bad(f"margin {margin!r} is not a number")
    value = float(number)
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


def _plain(x: float) -> str:
    return str(np.format_float_positional(x, trim="-"))


# --- tests -----------------------------------------------------------------------------------


def _too_small(d: stats.Design, alpha: float) -> str | None:
    """Why no outcome of this size could fail the gate, or None.

    A paired test can do no better than a sign test's 0.5**n; an unpaired one no better than
    one arrangement of all runs out of C(n_b + n_c, n_b).
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


def _accuracy_test(d: stats.Design, margin: float) -> tuple[float, str]:
    """One-sided p-value for H1: accuracy difference (current - baseline) < margin."""
    base, cur = d.means()
    binary = all(bool(np.all((u == 0) | (u == 1))) for u in d.baseline + d.candidate)
    if binary and d.single_valued:
        if d.paired:
            _, only_b, only_c, _ = stats.paired_counts(base, cur)
            if margin == 0:
                if only_b + only_c == 0:
                    return 1.0, "one-sided exact McNemar"
                p = sps.binomtest(only_b, only_b + only_c, 0.5, alternative="greater").pvalue
                return float(p), "one-sided exact McNemar"
            return _tango(only_c, only_b, d.n_cases, margin), "one-sided Tango score test"
        p = _farrington_manning(int(cur.sum()), cur.size, int(base.sum()), base.size, margin)
        return p, "one-sided Farrington-Manning score test"
    if d.paired:
        diffs = cur - base
        if _nearly_constant(diffs):
            below, differ = int(np.sum(diffs < margin)), int(np.sum(diffs != margin))
            if differ == 0:
                return 1.0, "one-sided sign test on per-case differences"
            p = sps.binomtest(below, differ, 0.5, alternative="greater").pvalue
            return float(p), "one-sided sign test on per-case differences"
        p = sps.ttest_1samp(diffs, margin, alternative="less").pvalue
        return float(p), "one-sided t-test on per-case differences"
    if min(base.size, cur.size) < 2 or _nearly_constant(base) or _nearly_constant(cur):
        p = sps.mannwhitneyu(cur - margin, base, alternative="less").pvalue
        return float(p), "one-sided Mann-Whitney U"
    p = sps.ttest_ind(cur, base + margin, equal_var=False, alternative="less").pvalue
    return float(p), "one-sided Welch t-test"


def _ratio_test(d: stats.Design, margin: float) -> tuple[float, str] | str:
    """One-sided p-value for H1: ratio (current / baseline) > 1 + margin, or why not."""
    base, cur = d.means()
    if d.paired:
        if np.any(base <= 0) or np.any(cur <= 0):
            return "values of zero or less: a ratio is undefined"
        diffs = np.log(cur) - np.log(base) - math.log1p(margin)
        diffs[np.abs(diffs) < 1e-12] = 0.0
        name = "one-sided Wilcoxon signed-rank on per-case log ratios"
        if not np.any(diffs != 0):
            return 1.0, name
        return float(sps.wilcoxon(diffs, alternative="greater").pvalue), name
    p = sps.mannwhitneyu(cur / (1 + margin), base, alternative="greater").pvalue
    return float(p), "one-sided Mann-Whitney U"


def _tango(only_c: int, only_b: int, n: int, margin: float) -> float:
    """Tango's (1998) score test of H1: p_current - p_baseline < margin, paired binary.

    ``only_c``/``only_b`` count the cases only the current/baseline run got right.
    """
    a = 2 * n
    b = -only_c - only_b + (2 * n - only_c + only_b) * margin
    c = -only_b * margin * (1 - margin)
    q = (math.sqrt(max(0.0, b * b - 4 * a * c)) - b) / (2 * a)
    variance = n * (2 * q + margin * (1 - margin))
    if variance <= 0:
        return 1.0
    z = (only_c - only_b - n * margin) / math.sqrt(variance)
    return float(sps.norm.cdf(z))


def _farrington_manning(kc: int, nc: int, kb: int, nb: int, margin: float) -> float:
    """Farrington-Manning score test of H1: p_current - p_baseline < margin, independent."""
    if margin == 0:
        pb = pc = (kc + kb) / (nc + nb)
    elif margin <= -1:
        return 1.0
    else:

        def nll(p: float) -> float:
            q = p + margin
            return -float(
                special.xlogy(kc, q)
                + special.xlogy(nc - kc, 1 - q)
                + special.xlogy(kb, p)
                + special.xlogy(nb - kb, 1 - p)
            )

        res = optimize.minimize_scalar(
            nll, bounds=(-margin, 1.0), method="bounded", options={"xatol": 1e-12}
        )
        pb = float(res.x)
        pc = pb + margin
    variance = pc * (1 - pc) / nc + pb * (1 - pb) / nb
    if variance <= 0:
        return 1.0
    z = (kc / nc - kb / nb - margin) / math.sqrt(variance)
    return float(sps.norm.cdf(z))


def _nearly_constant(a: np.ndarray[tuple[int, ...], np.dtype[np.float64]]) -> bool:
    """No variation to speak of (scipy's t-tests warn and return NaN there)."""
    return a.size == 0 or float(np.ptp(a)) <= 1e-9 * max(1.0, float(np.max(np.abs(a))))


# --- values and messages ---------------------------------------------------------------------


def _has_unknown(values: stats.MaybeValues) -> bool:
    return any(x is None or math.isnan(x) for reps in values.values() for x in reps)


def _floats(values: stats.MaybeValues) -> dict[str, list[float]]:
    return {k: [float(x) for x in reps if x is not None] for k, reps in values.items()}


def _message(
    rule: GateRule,
    verdict: Verdict,
    estimate: float,
    interval: stats.Interval | None,
    confidence: float,
    p: float,
) -> str:
    kind: stats.Kind = "ratio" if rule.relative else "difference"
    change = stats.format_change(estimate, kind)
    if interval is None:
        evidence = "no interval"
    else:
        low = stats.format_change(interval.low, kind)
        high = stats.format_change(interval.high, kind)
        evidence = f"{confidence * 100:g}% CI {low}..{high}"
    if verdict == "fail":
        beyond = "drops beyond" if not rule.relative else "exceeds"
        return (
            f"{rule.metric} {change} ({evidence}) {beyond} the {rule.margin_text} margin, "
            f"{stats.format_p(p)}"
        )
    return (
        f"{rule.metric} {change} ({evidence}) not shown beyond the {rule.margin_text} margin, "
        f"{stats.format_p(p)}"
    )
