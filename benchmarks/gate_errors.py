"""CI gates on re-recorded runs: how often a whole run fails unchanged code, and power.

- **Suite runs.** A suite shaped like example_suite/ (`synthetic_runs.SUITE`: 26 test x
  pattern pairs) is drawn, recorded once as the saved baseline, and recorded again with a
  new seed as the current run (the same model: same cases and patterns, new outcomes,
  latencies and tokens). `analysis.evaluate_gates` gates the current run with the documented
  rules `accuracy:-0.05,latency_p95:+20%,cost:+10%`: 78 gates sharing the run's alpha.
  A third recording regresses one pattern (`synthetic_runs.REGRESSED`, accuracy 0.85) by
  each rule's reference change (`gates.reference_change`): accuracy 0.85 -> 0.75, latency
  x1.44, cost x1.21, so each of its three gates can be checked against the ``power`` it
  reports. Counted per simulated CI run: whether the run failed (unchanged: a false
  fail), each rule's verdicts, and for the regressed pattern its gates' verdicts and the
  power they reported.
- **Single case.** One test with one case and one pattern, ``runs`` repetitions per side,
  gated by `latency_p95:+20%` alone (so at the full alpha). Unchanged runs should fail at
  most alpha; so should runs that are every one exactly 1.2x slower (the margin itself: the
  gate's own error rate, on either side: neither a fail nor a pass may happen more often
  than alpha there); with 10% of the current runs 5x slower (a real p95 regression) they
  should fail far more often, and never pass.
- **Accuracy at its margin.** One test with one pattern at accuracy 0.85, its current run at
  0.80 (a drop of exactly the margin), gated by `accuracy:-0.05` alone: a gate at its
  margin may fail, and may pass, each at most alpha of the time (each verdict is a
  one-sided test at alpha).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from synthetic_runs import (
    REGRESSED,
    Change,
    PatternSpec,
    Suite,
    TestSpec,
    draw_run,
    draw_suite,
)

from pytest_agentpatterns import analysis, gates
from pytest_agentpatterns.records import ItemResult

RULES = "accuracy:-0.05,latency_p95:+20%,cost:+10%"
ALPHA = 0.05


def _reference() -> Change:
    by_metric = {r.metric: gates.reference_change(r) for r in gates.parse_rules(RULES)}
    return Change(
        accuracy=0.85 + by_metric["accuracy"],
        latency=by_metric["latency_p95"],
        cost=by_metric["cost"],
    )


REGRESSION = _reference()
"""accuracy 0.85 -> 0.75, latency x1.44, cost x1.21: twice each rule's tolerance."""


@dataclass
class SuiteGates:
    """Counts over simulated CI runs of the suite.

    ``null_*``: the current run re-records the baseline's model. ``verdicts[rule][v]``
    counts gates of that rule with verdict v over all null runs; ``rule_fail_runs[rule]``
    counts null runs in which some gate of that rule failed. ``regressed[rule]`` counts
    regressed runs in which the regressed pattern's gate of that rule failed, and
    ``power[rule]`` sums the power that gate reported. ``others_fail_runs`` counts
    regressed runs in which a gate of an unchanged pattern failed.
    """

    runs: int = 0
    gates: int = 0
    level: float = 0.0
    null_fail_runs: int = 0
    rule_fail_runs: dict[str, int] = field(default_factory=dict)
    verdicts: dict[str, dict[str, int]] = field(default_factory=dict)
    regressed: dict[str, int] = field(default_factory=dict)
    regressed_verdicts: dict[str, dict[str, int]] = field(default_factory=dict)
    power: dict[str, float] = field(default_factory=dict)
    power_reported: dict[str, int] = field(default_factory=dict)
    others_fail_runs: int = 0

    def __add__(self, other: SuiteGates) -> SuiteGates:
        out = SuiteGates(
            self.runs + other.runs,
            max(self.gates, other.gates),
            max(self.level, other.level),
            self.null_fail_runs + other.null_fail_runs,
            _add(self.rule_fail_runs, other.rule_fail_runs),
            {},
            _add(self.regressed, other.regressed),
            {},
            _add(self.power, other.power),
            _add(self.power_reported, other.power_reported),
            self.others_fail_runs + other.others_fail_runs,
        )
        for name in ("verdicts", "regressed_verdicts"):
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(
                out,
                name,
                {r: _add(mine.get(r, {}), theirs.get(r, {})) for r in mine.keys() | theirs.keys()},
            )
        return out


def _add(a: dict, b: dict) -> dict:  # type: ignore[type-arg]
    return {k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()}


def suite_gates(
    cases: int, repetitions: int, runs: int, seed: Sequence[int], regress: bool = True
) -> SuiteGates:
    """Simulate ``runs`` CI runs of the suite at ``cases`` x ``repetitions``."""
    rules = gates.parse_rules(RULES)
    rng = np.random.default_rng(list(seed))
    out = SuiteGates()
    for _ in range(runs):
        suite = draw_suite(rng, cases, repetitions)
        saved = draw_run(suite, rng)
        current = draw_run(suite, rng)
        run = analysis.evaluate_gates(rules, current, saved, alpha=ALPHA)
        out.runs += 1
        out.gates = run.evaluated
        out.level = run.level
        out.null_fail_runs += run.failed
        for rule in rules:
            mine = [g for g in run.results if g.rule == rule]
            out.rule_fail_runs[str(rule)] = out.rule_fail_runs.get(str(rule), 0) + any(
                g.failed for g in mine
            )
            counts = out.verdicts.setdefault(str(rule), {})
            for g in mine:
                counts[g.verdict] = counts.get(g.verdict, 0) + 1
        if not regress:
            continue
        changed = draw_run(suite, rng, {REGRESSED: REGRESSION})
        run = analysis.evaluate_gates(rules, changed, saved, alpha=ALPHA)
        test = f"{REGRESSED[0]}.py::{REGRESSED[0]}"
        out.others_fail_runs += any(
            g.failed for g in run.results if (g.test, g.pattern) != (test, REGRESSED[1])
        )
        for g in run.results:
            if (g.test, g.pattern) != (test, REGRESSED[1]):
                continue
            rule = str(g.rule)
            out.regressed[rule] = out.regressed.get(rule, 0) + g.failed
            counts = out.regressed_verdicts.setdefault(rule, {})
            counts[g.verdict] = counts.get(g.verdict, 0) + 1
            if g.power is not None:
                out.power[rule] = out.power.get(rule, 0.0) + g.power
                out.power_reported[rule] = out.power_reported.get(rule, 0) + 1
    return out


SINGLE = TestSpec("test_single_case", (PatternSpec("single", 0.8),))
P95_RULE = "latency_p95:+20%"
SLOW = Change(slow_share=0.1, slow_factor=5.0)
"""10% of the current runs (each independently) 5x slower."""
AT_MARGIN = Change(latency=1.2)
"""Every current run exactly 1.2x slower: the p95 ratio is the margin itself."""


@dataclass
class SingleCase:
    """Counts over simulated single-case gates: unchanged, at the margin, with slow runs."""

    runs: int = 0
    null_fail: int = 0
    null_pass: int = 0
    margin_fail: int = 0
    margin_pass: int = 0
    slow_fail: int = 0
    slow_pass: int = 0

    def __add__(self, other: SingleCase) -> SingleCase:
        return SingleCase(
            self.runs + other.runs,
            self.null_fail + other.null_fail,
            self.null_pass + other.null_pass,
            self.margin_fail + other.margin_fail,
            self.margin_pass + other.margin_pass,
            self.slow_fail + other.slow_fail,
            self.slow_pass + other.slow_pass,
        )


def single_case(
    runs_per_side: int, runs: int, seed: Sequence[int], margin: bool = True
) -> SingleCase:
    """Gate ``runs`` single-case runs with `latency_p95:+20%` against a saved one
    (``margin``: also the runs at the margin)."""
    rules = gates.parse_rules(P95_RULE)
    rng = np.random.default_rng(list(seed))
    key = (SINGLE.name, "single")
    out = SingleCase()

    def gate(suite: Suite, saved: list[ItemResult], change: Change | None) -> gates.GateRun:
        current = draw_run(suite, rng, {key: change} if change else None)
        return analysis.evaluate_gates(rules, current, saved, alpha=ALPHA)

    for _ in range(runs):
        suite = draw_suite(rng, 1, runs_per_side, (SINGLE,))
        saved = draw_run(suite, rng)
        same = gate(suite, saved, None)
        slow = gate(suite, saved, SLOW)
        out.runs += 1
        out.null_fail += same.failed
        out.null_pass += same.count("pass")
        out.slow_fail += slow.failed
        out.slow_pass += slow.count("pass")
        if margin:
            edge = gate(suite, saved, AT_MARGIN)
            out.margin_fail += edge.failed
            out.margin_pass += edge.count("pass")
    return out


MARGIN_TEST = TestSpec("test_margin", (PatternSpec("single", 0.85),))
ACCURACY_RULE = "accuracy:-0.05"


@dataclass
class AtMargin:
    """Counts over simulated single gates whose true change is exactly their margin."""

    runs: int = 0
    fail: int = 0
    passed: int = 0

    def __add__(self, other: AtMargin) -> AtMargin:
        return AtMargin(self.runs + other.runs, self.fail + other.fail, self.passed + other.passed)


def accuracy_at_margin(cases: int, repetitions: int, runs: int, seed: Sequence[int]) -> AtMargin:
    """Gate ``runs`` re-recordings whose accuracy dropped by exactly the margin."""
    rules = gates.parse_rules(ACCURACY_RULE)
    drop = Change(accuracy=0.85 + rules[0].margin)
    rng = np.random.default_rng(list(seed))
    out = AtMargin()
    for _ in range(runs):
        suite = draw_suite(rng, cases, repetitions, (MARGIN_TEST,))
        saved = draw_run(suite, rng)
        current = draw_run(suite, rng, {(MARGIN_TEST.name, "single"): drop})
        run = analysis.evaluate_gates(rules, current, saved, alpha=ALPHA)
        out.runs += 1
        out.fail += run.failed
        out.passed += run.count("pass")
    return out
