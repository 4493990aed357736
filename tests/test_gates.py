from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_agentpatterns import gates
from pytest_agentpatterns.gates import ALLOWED_METRICS, Check, GateRule, evaluate, parse_rules

Runs = dict[str, list[float]]


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
    # A relative margin of -0% is +0%, and reads back (Hypothesis found "+-0%").
    assert gates.format_rules(parse_rules("latency_p50:-0%")) == "latency_p50:+0%"
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


# --- verdicts --------------------------------------------------------------------------------


def latencies(
    seed: int, n_cases: int = 30, ratio: float = 1.0, noise: float = 0.15, reps: int = 1
) -> tuple[Runs, Runs]:
    """Paired latencies: a per-case lognormal effect (sigma 0.4) times per-run noise."""
    rng = np.random.default_rng(seed)
    case = rng.lognormal(0, 0.4, n_cases)
    base = {f"c{i:02d}": list(c * rng.lognormal(0, noise, reps)) for i, c in enumerate(case)}
    cur = {f"c{i:02d}": list(c * ratio * rng.lognormal(0, noise, reps)) for i, c in enumerate(case)}
    return base, cur


def test_clear_regression_fails_with_a_one_line_message() -> None:
    base, cur = latencies(0, ratio=1.6)
    result = evaluate(rule("latency_p95:+20%"), base, cur, level=0.05, test="t", pattern="p")
    assert result.verdict == "fail" and result.failed
    assert result.paired and result.n_cases == 30
    assert result.estimate is not None and result.interval is not None
    assert result.interval.low > 1.2  # the whole interval lies beyond the margin
    assert result.message.startswith("latency_p95 +")
    assert result.message.endswith("exceeds the +20% margin") and "\n" not in result.message


def test_identical_runs_pass_whatever_the_margin() -> None:
    base, _ = latencies(1, reps=3)
    for text in ("latency_p50:+0%", "latency_p95:+20%", "cost:+10%"):
        result = evaluate(rule(text), base, base)
        assert result.verdict == "pass", result
        assert "identical to the baseline on every case" in result.message
    accuracy = {f"c{i}": [1.0, 0.0, 1.0] for i in range(12)}
    assert evaluate(rule("accuracy:0"), accuracy, accuracy).verdict == "pass"


def test_a_change_shown_within_the_margin_passes() -> None:
    base, cur = latencies(2, ratio=1.02, noise=0.05)
    result = evaluate(rule("latency_p50:+20%"), base, cur, level=0.01)
    assert result.verdict == "pass"
    assert result.interval is not None and result.interval.high < 1.2
    assert result.message.endswith("within the +20% margin")


def test_too_few_cases_is_inconclusive_with_what_it_could_show() -> None:
    base, cur = latencies(3, n_cases=6, ratio=3.0)
    result = evaluate(rule("latency_p50:+20%"), base, cur, level=0.001)
    assert result.verdict == "inconclusive"
    assert result.reason is not None and "needs at least 10" in result.reason
    drop = evaluate(
        rule("accuracy:-0.05"),
        {f"c{i}": [1.0, 1.0] for i in range(6)},
        {f"c{i}": [0.0, 0.0] for i in range(6)},
        level=0.001,
    )
    assert drop.verdict == "inconclusive" and "paired cases" in (drop.reason or "")


def test_accuracy_drop_fails_and_names_the_cases_that_dropped() -> None:
    base = {f"c{i:02d}": [1.0, 1.0, 1.0] for i in range(16)}
    cur = {k: ([0.0, 0.0, 1.0] if i < 8 else [1.0, 1.0, 1.0]) for i, k in enumerate(base)}
    result = evaluate(rule("accuracy:-0.05"), base, cur, level=0.01)
    assert result.verdict == "fail"
    assert result.message.startswith("accuracy -0.333 [")
    assert "drops beyond the -0.05 margin" in result.message
    assert [case for case, _, _ in result.regressed] == ["c00", "c01", "c02", "c03", "c04"]
    assert result.regressed[0][1:] == (1.0, pytest.approx(1 / 3))


def test_single_case_p95_regression_is_tested_as_a_quantile() -> None:
    rng = np.random.default_rng(7)
    base = rng.lognormal(0, 0.2, 200)
    cur = rng.lognormal(0, 0.2, 200)
    cur[:20] *= 5  # 10% of runs five times slower: the p95 moves, the typical run does not
    result = evaluate(rule("latency_p95:+20%"), {"x": list(base)}, {"x": list(cur)}, level=0.01)
    assert result.verdict == "fail", result.message
    assert result.paired is False and "p95" in (result.method or "")


def test_missing_and_unknown_data_are_not_evaluated() -> None:
    _, cur = latencies(4)
    assert evaluate(rule("cost:+10%"), None, cur).reason == "not in the baseline run"
    unknown = {"a": [0.1, None], "b": [0.2, 0.2]}
    result = evaluate(rule("cost:+10%"), unknown, {"a": [0.1, 0.1], "b": [0.2, 0.2]})
    assert result.verdict == "not evaluated"
    assert result.reason == "cost unknown for some runs in the baseline"


def test_mde_and_power_describe_the_gate() -> None:
    base, cur = latencies(5, n_cases=20, ratio=1.05)
    weak = evaluate(rule("latency_p50:+20%"), base, cur, level=0.0005)
    strong = evaluate(rule("latency_p50:+20%"), base, cur, level=0.05)
    assert weak.mde is not None and strong.mde is not None
    assert weak.mde > strong.mde > 1.2  # a stricter level can only see larger regressions
    assert weak.power is not None and strong.power is not None and weak.power < strong.power
    assert gates.reference_change(rule("latency_p50:+20%")) == pytest.approx(1.44)
    assert gates.reference_change(rule("accuracy:-0.05")) == pytest.approx(-0.10)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([0.8, 1.0, 1.15, 1.3, 2.0]))
def test_verdict_can_be_read_off_the_interval(seed: int, ratio: float) -> None:
    base, cur = latencies(seed, n_cases=14, ratio=ratio, noise=0.3)
    result = evaluate(rule("latency_p50:+15%"), base, cur, level=0.01)
    assert result.interval is not None
    beyond = result.interval.low > 1.15
    within = result.interval.high < 1.15
    assert (result.verdict == "fail") == beyond
    assert (result.verdict == "pass") == within
    assert (result.verdict == "inconclusive") == (not beyond and not within)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([0.0, 0.1, 0.3]))
def test_accuracy_verdict_can_be_read_off_the_interval(seed: int, drop: float) -> None:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.5, 0.95, 16)
    base = {f"c{i}": [float(x) for x in rng.random(4) < pi] for i, pi in enumerate(p)}
    cur = {f"c{i}": [float(x) for x in rng.random(4) < pi - drop] for i, pi in enumerate(p)}
    result = evaluate(rule("accuracy:-0.05"), base, cur, level=0.01)
    if result.interval is None or result.interval.low == result.interval.high:
        return  # identical runs pass without an interval to read
    beyond = result.interval.high < -0.05
    within = result.interval.low > -0.05
    assert (result.verdict == "fail") == beyond
    assert (result.verdict == "pass") == within


def test_the_run_splits_alpha_over_the_gates_it_evaluates() -> None:
    base, cur = latencies(6, n_cases=12)
    checks = [
        Check(rule(text), "t", f"p{i}", base, cur)
        for i in range(5)
        for text in ("latency_p50:+20%", "cost:+10%")
    ] + [Check(rule("cost:+10%"), "t", "missing", None, cur)]
    run = gates.evaluate_run(checks, alpha=0.05)
    assert run.evaluated == 10 and run.level == pytest.approx(0.005)
    assert all(g.level == pytest.approx(0.005) for g in run.results if g.verdict != "not evaluated")
    assert run.count("not evaluated") == 1
    line = run.verdict_line()
    assert line.startswith(f"agentpatterns: {run.count('fail')} gate")
    assert line.endswith("1 not evaluated")


def test_inconclusive_fails_the_run_only_when_asked() -> None:
    base, cur = latencies(8, n_cases=3, ratio=1.5)  # three cases cannot decide at 0.05
    checks = [Check(rule("latency_p50:+20%"), "t", "p", base, cur)]
    relaxed = gates.evaluate_run(checks)
    strict = gates.evaluate_run(checks, fail_on_inconclusive=True)
    assert relaxed.count("inconclusive") == 1 and not relaxed.failed
    assert strict.failed and "--patterns-fail-on-inconclusive" in strict.verdict_line()


def test_alpha_is_validated() -> None:
    with pytest.raises(ValueError, match="alpha"):
        gates.evaluate_run([], alpha=0.7)


def test_allowed_metrics_are_all_evaluable() -> None:
    base, cur = latencies(9, n_cases=12)
    for metric in ALLOWED_METRICS:
        text = "accuracy:-0.05" if metric == "accuracy" else f"{metric}:+20%"
        values = (
            ({k: [1.0] for k in base}, {k: [1.0] for k in cur})
            if metric == "accuracy"
            else (base, cur)
        )
        assert evaluate(rule(text), *values).verdict != "not evaluated"
    assert math.isfinite(gates.reference_change(rule("accuracy:0")))


def _margin_rates(cases: int, p_base: float, p_cur: float) -> tuple[float, float]:
    """Exact fail and pass rates of accuracy:-0.05 (level 0.05) over one run per case,
    the current run's accuracy independently p_base - 0.05: the verdict depends only on
    how many cases went up and down, so every count is enumerated."""
    rule = gates.parse_rules("accuracy:-0.05")[0]
    up, down = p_cur * (1 - p_base), p_base * (1 - p_cur)
    fail = passed = 0.0
    for n_up in range(cases + 1):
        for n_down in range(cases + 1 - n_up):
            n_tie = cases - n_up - n_down
            if n_tie == cases:
                continue  # identical to the baseline: passes by design (a replay)
            chance = (
                math.comb(cases, n_up)
                * math.comb(cases - n_up, n_down)
                * up**n_up
                * down**n_down
                * (1 - up - down) ** n_tie
            )
            base = [0.0] * n_up + [1.0] * (n_down + n_tie)
            cur = [1.0] * n_up + [0.0] * n_down + [1.0] * n_tie
            g = gates.evaluate(
                rule,
                {f"c{i}": [b] for i, b in enumerate(base)},
                {f"c{i}": [c] for i, c in enumerate(cur)},
                level=0.05,
            )
            fail += chance * (g.verdict == "fail")
            passed += chance * (g.verdict == "pass")
    return fail, passed


def test_accuracy_gate_exactly_at_its_margin_errs_at_most_its_level() -> None:
    """Accuracy 0.85 -> 0.80 over 12 cases: each verdict is a one-sided test at 0.05.
    Flipping the signs of the shifted differences passed 12% of such runs (they are not
    symmetric about the margin); Student's t keeps both errors under the level."""
    fail, passed = _margin_rates(12, 0.85, 0.80)
    assert fail <= 0.05 and passed <= 0.05, (fail, passed)


def test_a_gate_that_cannot_reach_its_level_reports_no_power() -> None:
    """Too few paired cases for the level: inconclusive whatever the data, so power 0."""
    few = {f"c{i}": [1.0] * 5 for i in range(6)}
    worse = {f"c{i}": [0.0] * 5 for i in range(6)}
    acc = gates.evaluate(gates.parse_rules("accuracy:-0.05")[0], few, worse, level=0.001)
    assert acc.verdict == "inconclusive" and acc.power == 0.0 and acc.mde is None
    rng = np.random.default_rng(5)
    base = {f"c{i}": list(rng.lognormal(0, 0.3, 5)) for i in range(6)}
    dear = {k: list(3 * rng.lognormal(0, 0.3, 5)) for k in base}
    cost = gates.evaluate(gates.parse_rules("cost:+10%")[0], base, dear, level=0.001)
    assert cost.verdict == "inconclusive" and cost.power == 0.0


def test_single_case_p95_gate_says_when_runs_cannot_bound_the_tail() -> None:
    """20 runs a side cannot bound a p95 distribution-free: inconclusive, with the runs
    an exact bound needs, not a bootstrap verdict."""
    rng = np.random.default_rng(6)
    base = {"only": list(rng.lognormal(0, 0.3, 20))}
    slow = {"only": [x * (5 if i % 10 == 0 else 1) for i, x in enumerate(base["only"])]}
    g = gates.evaluate(gates.parse_rules("latency_p95:+20%")[0], base, slow, level=0.05)
    assert g.verdict == "inconclusive" and g.power == 0.0
    assert g.reason is not None and "an exact bound needs at least 72 runs a side" in g.reason
