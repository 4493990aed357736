from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, special
from scipy import stats as sps

from pytest_agentpatterns import gates, stats
from pytest_agentpatterns.gates import ALLOWED_METRICS, GateRule, evaluate, parse_rules

Runs = dict[str, list[float]]
Simulate = Callable[[np.random.Generator], tuple[Runs, Runs]]


def rule(text: str) -> GateRule:
    (parsed,) = parse_rules(text)
    return parsed


def by_case(values: list[float] | np.ndarray) -> Runs:
    return {f"case{i:02d}": [float(v)] for i, v in enumerate(values)}


# --- parsing ---------------------------------------------------------------------------------


def test_parse_design_example() -> None:
    rules = parse_rules("accuracy:-0.05,latency_p95:+20%,cost:+10%")
    assert rules == (
        GateRule("accuracy", -0.05, relative=False),
        GateRule("latency_p95", 0.2, relative=True),
        GateRule("cost", 0.1, relative=True),
    )
    assert gates.format_rules(rules) == "accuracy:-0.05,latency_p95:+20%,cost:+10%"


def test_parse_is_lenient_about_spaces_and_plus_and_normalises() -> None:
    rules = parse_rules(" latency_p50 : 12.50% , accuracy:0, tokens:+0% ")
    assert gates.format_rules(rules) == "latency_p50:+12.5%,accuracy:0,tokens:+0%"
    assert parse_rules("") == () and parse_rules("  ") == ()
    assert str(rule("calls:+7%")) == "calls:+7%"
    assert rule("latency_mean:+250%").margin == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("accuracy:x", "margin 'x' is not a number"),
        ("latency_p95:+20", "the latency_p95 margin is relative: write it in percent"),
        ("unknown:+5%", "unknown metric 'unknown'"),
        ("cost:-10%", "a negative cost margin would demand an improvement"),
        ("accuracy:0.05", "the accuracy margin is a drop: write it with a minus sign"),
        ("accuracy:-5%", "accuracy takes an absolute drop, not a percentage"),
        ("accuracy:-1.5", "an accuracy drop is at most 1"),
        ("latency_p95", "expected METRIC:MARGIN"),
        ("cost:+10%,", "empty rule"),
        ("cost:+1e3%", "is not a number"),
        ("Latency_P95:+20%", "unknown metric 'Latency_P95'"),
    ],
)
def test_malformed_rules_name_the_bad_part_and_list_what_is_allowed(
    text: str, problem: str
) -> None:
    with pytest.raises(ValueError) as info:
        parse_rules(text)
    message = str(info.value)
    assert problem in message
    assert "allowed: accuracy:-D" in message
    for metric in ALLOWED_METRICS:
        assert metric in message


def test_duplicate_rules_are_rejected() -> None:
    with pytest.raises(ValueError, match="cost given twice"):
        parse_rules("cost:+10%,cost:+5%")


def test_gate_rule_validates_itself() -> None:
    with pytest.raises(ValueError, match="unknown gate metric"):
        GateRule("speed", 0.1, relative=True)
    with pytest.raises(ValueError, match="relative"):
        GateRule("cost", 0.1, relative=False)
    with pytest.raises(ValueError, match=r"\[-1, 0\]"):
        GateRule("accuracy", 0.1, relative=False)


percent = st.decimals(0, 1000, places=3, allow_nan=False, allow_infinity=False)
drop = st.decimals(-1, 0, places=4, allow_nan=False, allow_infinity=False)


@st.composite
def rule_texts(draw: st.DrawFn) -> str:
    metrics = draw(st.lists(st.sampled_from(ALLOWED_METRICS), min_size=1, unique=True))
    parts = []
    for metric in metrics:
        if metric == "accuracy":
            parts.append(f"accuracy:{draw(drop)}")
        else:
            parts.append(f"{metric}:{draw(st.sampled_from(['', '+']))}{draw(percent)}%")
    return ",".join(parts)


@given(rule_texts())
def test_rules_round_trip(text: str) -> None:
    rules = parse_rules(text)
    canonical = gates.format_rules(rules)
    assert parse_rules(canonical) == rules
    assert gates.format_rules(parse_rules(canonical)) == canonical
    for r, part in zip(rules, text.split(","), strict=True):
        number = part.partition(":")[2].rstrip("%")
        expected = Decimal(number) / (100 if r.relative else 1)
        assert r.margin == pytest.approx(float(expected), abs=1e-12)


@given(st.text(max_size=40))
def test_parsing_arbitrary_text_only_raises_value_error(text: str) -> None:
    try:
        rules = parse_rules(text)
    except ValueError:
        return
    assert parse_rules(gates.format_rules(rules)) == rules


# --- verdicts and messages -------------------------------------------------------------------


def latencies(
    seed: int, n_cases: int = 30, ratio: float = 1.0, noise: float = 0.15
) -> tuple[Runs, Runs]:
    """Paired latencies: a per-case lognormal effect (sigma 0.4) times per-run noise."""
    rng = np.random.default_rng(seed)
    case = rng.lognormal(0, 0.4, n_cases)
    base = by_case(case * rng.lognormal(0, noise, n_cases))
    cur = by_case(case * ratio * rng.lognormal(0, noise, n_cases))
    return base, cur


def test_clear_regression_fails_with_a_one_line_message() -> None:
    base, cur = latencies(0, ratio=1.6)
    result = evaluate(rule("latency_p95:+20%"), base, cur, test="test_triage", pattern="hybrid")
    assert result.failed and result.verdict == "fail"
    assert (result.test, result.pattern) == ("test_triage", "hybrid")
    assert result.paired and result.n_cases == 30
    assert result.method == "one-sided t-test on per-case log ratios of the p95, paired"
    assert result.estimate is not None and result.interval is not None
    assert result.estimate in result.interval
    assert result.p_value is not None and result.p_value <= 0.05
    low, high = result.interval.low, result.interval.high
    assert result.message == (
        f"latency_p95 {(result.estimate - 1) * 100:+.0f}% (90% CI {(low - 1) * 100:+.0f}%.."
        f"{(high - 1) * 100:+.0f}%) exceeds the +20% margin, p<0.001"
    )
    assert "\n" not in result.message


def test_identical_runs_pass() -> None:
    base, _ = latencies(1)
    result = evaluate(rule("latency_p50:+0%"), base, base)
    assert result.verdict == "pass" and result.p_value == 1.0
    assert result.message.startswith("latency_p50 +0% (90% CI +0%..+0%) not shown beyond")


def test_unpaired_when_a_single_case_was_repeated() -> None:
    rng = np.random.default_rng(2)
    base = {"only": rng.lognormal(0, 0.4, 40).tolist()}
    cur = {"only": (rng.lognormal(0, 0.4, 40) * 2).tolist()}
    result = evaluate(rule("latency_mean:+10%"), base, cur)
    assert result.verdict == "fail"
    assert result.paired is False
    assert result.method == "one-sided Welch t-test on log values, unpaired"
    expected = sps.ttest_ind(
        np.log(cur["only"]) - math.log(1.1),
        np.log(base["only"]),
        equal_var=False,
        alternative="greater",
    )
    assert result.p_value == pytest.approx(expected.pvalue)


def test_paired_statistic_is_the_shifted_t_test_and_its_interval() -> None:
    base, cur = latencies(3, ratio=1.1)
    result = evaluate(rule("cost:+5%"), base, cur)
    keys = sorted(base)
    logs = np.array([math.log(cur[k][0]) - math.log(base[k][0]) for k in keys])
    expected = sps.ttest_1samp(logs - math.log(1.05), 0, alternative="greater").pvalue
    assert result.p_value == pytest.approx(expected)
    assert result.estimate == pytest.approx(math.exp(logs.mean()))
    low, high = sps.t.interval(0.9, logs.size - 1, logs.mean(), sps.sem(logs))
    assert result.interval is not None
    assert result.interval.low == pytest.approx(math.exp(low))
    assert result.interval.high == pytest.approx(math.exp(high))


def test_accuracy_drop_fails_and_names_the_drop() -> None:
    base = by_case([1.0] * 40)
    cur = by_case([1.0] * 20 + [0.0] * 20)
    result = evaluate(rule("accuracy:-0.05"), base, cur)
    assert result.verdict == "fail"
    assert result.method == "one-sided Tango score test, paired"
    assert result.message.startswith("accuracy -0.500 (90% CI ")
    assert "drops beyond the -0.05 margin, p<0.001" in result.message
    result = evaluate(rule("accuracy:0"), base, cur)
    # Tango's test at margin 0 is McNemar's z-test.
    assert result.method == "one-sided Tango score test, paired"
    assert result.p_value == pytest.approx(sps.norm.cdf(-20 / math.sqrt(20)))


def test_accuracy_improvement_passes() -> None:
    base = by_case([0.0] * 20 + [1.0] * 10)
    cur = by_case([1.0] * 30)
    for text in ("accuracy:0", "accuracy:-0.05"):
        result = evaluate(rule(text), base, cur)
        assert result.verdict == "pass" and result.p_value is not None and result.p_value > 0.5


def test_accuracy_test_selection() -> None:
    graded_paired = evaluate(
        rule("accuracy:-0.05"),
        {f"c{i}": [0.5, 0.7] for i in range(10)},
        {f"c{i}": [0.2, 0.3 + i / 100] for i in range(10)},
    )
    assert graded_paired.method == "one-sided t-test on per-case differences, paired"
    assert graded_paired.verdict == "fail"
    constant = evaluate(
        rule("accuracy:-0.05"),
        {f"c{i}": [1.0, 1.0] for i in range(10)},
        {f"c{i}": [0.5, 0.5] for i in range(10)},
    )
    # Every case drops by exactly 0.5 and no repetition varies: certain, not a tie.
    assert constant.method == "one-sided t-test on per-case differences, paired"
    assert constant.p_value == 0.0 and constant.verdict == "fail"
    assert constant.interval == stats.Interval(-0.5, -0.5)
    pooled = evaluate(rule("accuracy:-0.05"), {"x": [1.0] * 30}, {"x": [1.0] * 10 + [0.0] * 20})
    assert pooled.method == "one-sided Farrington-Manning score test, unpaired"
    assert pooled.verdict == "fail"
    graded_unpaired = evaluate(
        rule("accuracy:0"), {"x": [0.9, 0.8, 0.85, 0.95]}, {"x": [0.1, 0.2, 0.15, 0.3]}
    )
    assert graded_unpaired.method == "one-sided Welch t-test on per-unit means, unpaired"
    assert graded_unpaired.verdict == "fail"


def test_shown_change_is_the_tested_change() -> None:
    # Six cases of very different size, four runs each: every case is about 35% slower, except
    # the slowest case, which dominates the pooled p95 and is only 15% slower. The gate tests
    # per-case p95 ratios, so it shows their geometric mean, not the pooled p95 ratio.
    rng = np.random.default_rng(1)
    scales = [1.0, 1.2, 1.5, 2.0, 2.5, 10.0]
    slow = [1.35, 1.37, 1.33, 1.36, 1.34, 1.15]
    base = {f"c{i}": (s * rng.lognormal(0, 0.02, 4)).tolist() for i, s in enumerate(scales)}
    cur = {k: [x * slow[i] for x in v] for i, (k, v) in enumerate(base.items())}
    pooled = np.percentile([x for v in cur.values() for x in v], 95) / np.percentile(
        [x for v in base.values() for x in v], 95
    )
    assert pooled < 1.2
    result = evaluate(rule("latency_p95:+20%"), base, cur)
    assert result.verdict == "fail" and result.interval is not None
    assert result.estimate is not None and result.estimate > 1.2
    assert result.interval.low > 1.2
    assert "exceeds the +20% margin" in result.message


def test_message_shows_enough_digits_to_read_the_verdict() -> None:
    base = {f"c{i}": [float(i + 1)] for i in range(8)}
    cur = {k: [v[0] * 1.203] for k, v in base.items()}
    result = evaluate(rule("latency_p95:+20%"), base, cur)
    assert result.verdict == "fail"
    assert result.message == (
        "latency_p95 +20.3% (90% CI +20.3%..+20.3%) exceeds the +20% margin, p<0.001"
    )


GATE_SCENARIOS = {
    "ratio paired": ("latency_p95", False, 4),
    "ratio paired one run": ("latency_mean", False, 1),
    "ratio unpaired cases": ("cost", True, 3),
    "ratio single case": ("latency_p50", True, 0),
    "accuracy tango": ("accuracy", False, 1),
    "accuracy farrington-manning": ("accuracy", True, 0),
    "accuracy paired repetitions": ("accuracy", False, 4),
    "accuracy paired graded": ("accuracy", False, -3),
    "accuracy unpaired cases": ("accuracy", True, 3),
    "accuracy unpaired graded": ("accuracy", True, -1),
}


def gate_data(
    scenario: str, rng: np.random.Generator, n: int, effect: float
) -> tuple[GateRule, Runs, Runs]:
    """One gate's baseline and current runs; ``effect`` in [-1, 1] moves the current run."""
    metric, unpaired, reps = GATE_SCENARIOS[scenario]
    width = max(1, abs(reps)) if reps else n
    rows = 1 if reps == 0 else n
    if metric == "accuracy":
        margin = -float(rng.uniform(0, 0.3)) * (rng.random() < 0.8)
        p = 1 / (1 + np.exp(-rng.normal(1.0, 1.0, (rows, 1))))
        q = np.clip(p + effect / 2.5, 0, 1)
        if reps < 0:
            base = np.clip(p + rng.normal(0, 0.15, (rows, width)), 0, 1)
            cur = np.clip(q + rng.normal(0, 0.15, (rows, width)), 0, 1)
        else:
            base = (rng.random((rows, width)) < p).astype(float)
            cur = (rng.random((rows, width)) < q).astype(float)
        gate = GateRule("accuracy", margin, relative=False)
    else:
        margin = float(rng.uniform(0, 0.6)) * (rng.random() < 0.8)
        case = rng.lognormal(0, 0.5, (rows, 1))
        base = case * rng.lognormal(0, 0.2, (rows, width))
        cur = case * math.exp(effect / 2) * rng.lognormal(0, 0.2, (rows, width))
        gate = GateRule(metric, margin, relative=True)
    b = {f"c{i}": base[i].tolist() for i in range(rows)}
    c = {f"{'d' if unpaired and reps else 'c'}{i}": cur[i].tolist() for i in range(rows)}
    if reps == 0:
        b, c = {"only": b["c0"]}, {"only": c["c0"]}
    return gate, b, c


SHOWN = re.compile(r"^\S+ (\S+?)%? \(90% CI (\S+?)%?\.\.(\S+?)%?\) ")


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(sorted(GATE_SCENARIOS)),
    st.integers(0, 2**32 - 1),
    st.integers(3, 30),
    st.floats(-1, 1),
)
def test_verdict_estimate_and_interval_always_agree(
    scenario: str, seed: int, n: int, effect: float
) -> None:
    gate, base, cur = gate_data(scenario, np.random.default_rng(seed), n, effect)
    result = evaluate(gate, base, cur)
    if result.verdict == "not evaluated":
        assert result.reason is not None and result.reason.startswith("n too small")
        return
    assert result.estimate is not None and result.interval is not None
    ci, est = result.interval, result.estimate
    tol = 1e-9
    assert ci.low - tol <= est <= ci.high + tol
    # How far beyond the margin a value is, in the direction of a regression.
    if gate.relative:
        end, excess = ci.low, [est - (1 + gate.margin), ci.low - (1 + gate.margin)]
    else:
        end, excess = ci.high, [gate.margin - est, gate.margin - ci.high]
    if result.failed:
        assert all(x >= -tol * max(1.0, abs(end)) for x in excess)
    else:
        assert excess[1] <= tol * max(1.0, abs(end))
    # The message shows the same numbers, on the same side of the margin as the verdict.
    match = SHOWN.match(result.message)
    assert match is not None
    shown_est, shown_low, shown_high = (float(x) for x in match.groups())
    shown_end = shown_low if gate.relative else shown_high
    shown_bound = gate.margin * 100 if gate.relative else gate.margin
    if result.failed:
        sign = 1 if gate.relative else -1
        assert sign * (shown_est - shown_bound) >= 0 and sign * (shown_end - shown_bound) >= 0


# --- not evaluated ---------------------------------------------------------------------------


def test_missing_baseline_is_not_evaluated() -> None:
    result = evaluate(rule("latency_p95:+20%"), None, by_case([1.0] * 10))
    assert result.verdict == "not evaluated" and not result.failed
    assert result.reason == "not in the baseline run"
    assert result.message == "latency_p95: not evaluated: not in the baseline run"
    assert result.estimate is None and result.p_value is None and result.interval is None


def test_too_few_cases_is_not_evaluated_even_for_an_extreme_change() -> None:
    paired = evaluate(rule("latency_p50:+0%"), by_case([1.0] * 4), by_case([100.0] * 4))
    assert paired.verdict == "not evaluated"
    assert paired.reason == (
        "n too small: 4 paired cases; a one-sided test at alpha=0.05 needs at least 5"
    )
    assert evaluate(rule("latency_p50:+0%"), by_case([1.0] * 5), by_case([100.0] * 5)).failed
    unpaired = evaluate(rule("accuracy:0"), {"x": [1.0, 1.0]}, {"x": [0.0, 0.0]})
    assert unpaired.verdict == "not evaluated"
    assert unpaired.reason is not None and unpaired.reason.startswith("n too small: 2 baseline")
    assert evaluate(rule("accuracy:0"), {"x": [1.0] * 3}, {"x": [0.0] * 3}).failed


def test_unknown_cost_is_not_evaluated() -> None:
    base: dict[str, list[float | None]] = {f"c{i}": [0.01] for i in range(10)}
    cur: dict[str, list[float | None]] = {f"c{i}": [None] for i in range(10)}
    result = evaluate(rule("cost:+10%"), base, cur)
    assert result.verdict == "not evaluated"
    assert result.reason == "cost unknown for some runs in the current run"
    assert result.message == "cost: not evaluated: cost unknown for some runs in the current run"
    result = evaluate(rule("cost:+10%"), cur, base)
    assert result.reason == "cost unknown for some runs in the baseline"


def test_no_values_or_zero_baseline_is_not_evaluated() -> None:
    assert evaluate(rule("tokens:+5%"), by_case([10.0] * 8), {}).reason == (
        "no tokens values in the current run"
    )
    assert evaluate(rule("tokens:+5%"), {"a": []}, by_case([10.0] * 8)).reason == (
        "no tokens values in the baseline"
    )
    zero = evaluate(rule("cost:+10%"), by_case([0.0] * 8), by_case([0.01] * 8))
    assert zero.verdict == "not evaluated"
    assert zero.reason == "ratio undefined: baseline mean is 0"


def test_alpha_is_validated() -> None:
    with pytest.raises(ValueError, match="alpha"):
        evaluate(rule("cost:+10%"), {}, {}, alpha=0.7)


# --- score tests against first principles ----------------------------------------------------


@pytest.mark.parametrize(("only_c", "only_b", "n"), [(2, 10, 30), (5, 5, 20), (0, 7, 12)])
def test_tango_at_zero_margin_is_the_mcnemar_z_test(only_c: int, only_b: int, n: int) -> None:
    z = (only_c - only_b) / math.sqrt(only_c + only_b)
    assert gates._tango(only_c, only_b, n, 0.0) == pytest.approx(sps.norm.cdf(z))


@pytest.mark.parametrize(
    ("only_c", "only_b", "n", "margin"), [(2, 10, 30, -0.05), (6, 1, 25, -0.1)]
)
def test_tango_uses_the_constrained_maximum_likelihood(
    only_c: int, only_b: int, n: int, margin: float
) -> None:
    rest = n - only_c - only_b

    def nll(q: float) -> float:  # q = P(baseline only); P(current only) = q + margin
        return -float(
            special.xlogy(only_c, q + margin)
            + special.xlogy(only_b, q)
            + special.xlogy(rest, 1 - 2 * q - margin)
        )

    q = optimize.minimize_scalar(
        nll, bounds=(-margin, (1 - margin) / 2), method="bounded", options={"xatol": 1e-12}
    ).x
    z = (only_c - only_b - n * margin) / math.sqrt(n * (2 * q + margin * (1 - margin)))
    assert gates._tango(only_c, only_b, n, margin) == pytest.approx(sps.norm.cdf(z), abs=1e-6)


def test_farrington_manning_at_zero_margin_is_the_pooled_z_test() -> None:
    kc, nc, kb, nb = 12, 30, 21, 28
    pooled = (kc + kb) / (nc + nb)
    z = (kc / nc - kb / nb) / math.sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nb))
    assert gates._farrington_manning(kc, nc, kb, nb, 0.0) == pytest.approx(sps.norm.cdf(z))


@pytest.mark.parametrize(
    ("kc", "nc", "kb", "nb", "margin"),
    [(18, 30, 24, 30, -0.1), (25, 40, 9, 20, 0.15), (3, 12, 11, 11, -0.6)],
)
def test_farrington_manning_matches_grid_search(
    kc: int, nc: int, kb: int, nb: int, margin: float
) -> None:
    grid = np.linspace(max(0, -margin) + 1e-9, min(1, 1 - margin) - 1e-9, 200001)
    loglik = (
        special.xlogy(kc, grid + margin)
        + special.xlogy(nc - kc, 1 - grid - margin)
        + special.xlogy(kb, grid)
        + special.xlogy(nb - kb, 1 - grid)
    )
    pb = grid[np.argmax(loglik)]
    pc = pb + margin
    z = (kc / nc - kb / nb - margin) / math.sqrt(pc * (1 - pc) / nc + pb * (1 - pb) / nb)
    assert gates._farrington_manning(kc, nc, kb, nb, margin) == pytest.approx(
        sps.norm.cdf(z), abs=1e-5
    )


# --- calibration on simulated data -----------------------------------------------------------

ALPHA = 0.05


def failure_rate(text: str, simulate: Simulate, runs: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    gate = rule(text)
    verdicts = [evaluate(gate, *simulate(rng), n_resamples=50).verdict for _ in range(runs)]
    assert "not evaluated" not in verdicts
    return verdicts.count("fail") / runs


def upper_bound(runs: int, rate: float = ALPHA) -> float:
    """The 99.9% binomial quantile of the failure rate if the true rate were ``rate``."""
    return float(sps.binom.ppf(0.999, runs, rate)) / runs


def paired_latency(
    n_cases: int, ratio: float, case_sigma: float = 0.4, noise: float = 0.15
) -> Simulate:
    def simulate(rng: np.random.Generator) -> tuple[Runs, Runs]:
        case = rng.lognormal(0, case_sigma, n_cases)
        base = by_case(case * rng.lognormal(0, noise, n_cases))
        return base, by_case(case * ratio * rng.lognormal(0, noise, n_cases))

    return simulate


def repeated_latency(n: int, ratio: float, sigma: float = 0.4) -> Simulate:
    def simulate(rng: np.random.Generator) -> tuple[Runs, Runs]:
        base = {"only": rng.lognormal(0, sigma, n).tolist()}
        return base, {"only": (rng.lognormal(0, sigma, n) * ratio).tolist()}

    return simulate


def accuracy_runs(n_cases: int, reps: int, p: float, drop: float, spread: float = 1.0) -> Simulate:
    """Cases of varying difficulty (logit spread); the candidate is ``drop`` worse on each."""

    def simulate(rng: np.random.Generator) -> tuple[Runs, Runs]:
        logit = math.log(p / (1 - p)) + rng.normal(0, spread, n_cases)
        p_base = 1 / (1 + np.exp(-logit))
        p_cur = np.clip(p_base - drop, 0, 1)
        base = rng.random((n_cases, reps)) < p_base[:, None]
        cur = rng.random((n_cases, reps)) < p_cur[:, None]
        return (
            {f"c{i}": base[i].astype(float).tolist() for i in range(n_cases)},
            {f"c{i}": cur[i].astype(float).tolist() for i in range(n_cases)},
        )

    return simulate


def pooled(simulate: Simulate) -> Simulate:
    def one_case(rng: np.random.Generator) -> tuple[Runs, Runs]:
        base, cur = simulate(rng)
        return (
            {"only": [x for v in base.values() for x in v]},
            {"only": [x for v in cur.values() for x in v]},
        )

    return one_case


@pytest.mark.parametrize(
    ("text", "simulate"),
    [
        ("latency_p95:+0%", paired_latency(30, 1.0, case_sigma=0.0, noise=0.4)),
        ("latency_p50:+0%", repeated_latency(30, 1.0)),
        ("accuracy:0", accuracy_runs(30, 1, 0.8, 0.0)),
        ("accuracy:0", accuracy_runs(30, 3, 0.8, 0.0)),
        ("accuracy:0", pooled(accuracy_runs(30, 1, 0.8, 0.0, spread=0.0))),
    ],
    ids=["latency-paired", "latency-unpaired", "accuracy-mcnemar", "accuracy-t", "accuracy-fm"],
)
def test_no_change_fails_at_most_alpha(text: str, simulate: Simulate) -> None:
    runs = 400
    assert failure_rate(text, simulate, runs, seed=20240501) <= upper_bound(runs)


@pytest.mark.parametrize(
    ("text", "simulate"),
    [
        ("latency_p95:+20%", paired_latency(30, 1.2)),
        ("latency_p95:+20%", repeated_latency(30, 1.2)),
        ("accuracy:-0.05", accuracy_runs(30, 1, 0.8, 0.05)),
        ("accuracy:-0.05", pooled(accuracy_runs(30, 1, 0.8, 0.05, spread=0.0))),
    ],
    ids=["latency-paired", "latency-unpaired", "accuracy-tango", "accuracy-fm"],
)
def test_change_at_the_margin_fails_at_most_alpha(text: str, simulate: Simulate) -> None:
    runs = 200
    assert failure_rate(text, simulate, runs, seed=7) <= upper_bound(runs)


@pytest.mark.parametrize(
    "simulate", [paired_latency(30, 1.1), repeated_latency(30, 1.1)], ids=["paired", "unpaired"]
)
def test_regression_inside_the_margin_rarely_fails(
    simulate: Simulate,
) -> None:
    runs = 200
    assert failure_rate("latency_p95:+20%", simulate, runs, seed=11) <= 0.02


def test_real_latency_regression_is_caught_at_30_cases() -> None:
    # +20% with a +5% margin; cases vary (sigma 0.4) and each run adds noise (sigma 0.15).
    assert failure_rate("latency_p95:+5%", paired_latency(30, 1.2), 100, seed=3) >= 0.8


def test_real_latency_regression_unpaired_needs_more_runs() -> None:
    # Without pairing, sigma 0.4 noise at 30 runs each gives ~35% power (normal theory);
    # about 120 runs each reach 80%.
    assert failure_rate("latency_p95:+5%", repeated_latency(120, 1.2), 100, seed=4) >= 0.7


def test_real_accuracy_drop_is_caught_often() -> None:
    # 0.8 -> 0.55 over 30 cases of varying difficulty, three repetitions each.
    assert failure_rate("accuracy:-0.05", accuracy_runs(30, 3, 0.8, 0.25), 100, seed=5) >= 0.8
    # One repetition each: binary outcomes cap the power near 0.6 at this n.
    assert failure_rate("accuracy:0", accuracy_runs(30, 1, 0.8, 0.25), 100, seed=6) >= 0.4
