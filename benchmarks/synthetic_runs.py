"""Synthetic runs of a suite like example_suite/, as the plugin records them (`ItemResult`s).

The calibration benchmarks (benchmarks/calibration.py) gate and analyse these runs with the
plugin's own code, so they need runs that look like recorded ones:

- a **suite** like the example suite: 5 test functions with 4 or 6 patterns each (26
  test x pattern pairs), every test with the same number of cases and repetitions;
- **cases** of varied difficulty (a logit offset drawn once per suite), prompt length and
  answer length, so cases differ in accuracy, latency and cost alike;
- **patterns** with a target accuracy (the mean over the suite's cases of each case's
  probability of a correct answer: each pattern's skill is solved for it), and the calls
  each pattern makes: `parallel(n=5)` five concurrent proposals, `sequential` a chain of
  three, `hybrid`, `escalate` and `loop` more calls when the case is hard or the answer wrong;
- **calls** timed like the bundled simulator's models (pytest_agentpatterns/sim/models.json,
  oracle.py): a lognormal time to first token plus a time per output token, with output
  tokens that vary around the case's answer length; priced from the shipped price table.
  A repetition's latency is the sum over its stages of the slowest call of the stage.

A "re-recording" of the same suite with another seed is `draw_run` with another generator:
same cases and patterns, new outcomes, latencies and token counts. `Change` describes a real
regression in the current run (an accuracy target, a latency factor, a share of slow runs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pytest_agentpatterns.prices import Price, load_default_prices
from pytest_agentpatterns.records import Address, CallRecord, ItemResult, Repetition
from pytest_agentpatterns.sim.config import ModelProfile, load_models
from pytest_agentpatterns.usage import Usage

MODEL = "sim-small"
"""The simulator model the example suite records with (its latency profile and price)."""

CASE_SPREAD = 1.0
"""Standard deviation of case difficulty on the logit scale."""

PROMPT_TOKENS = (150.0, 0.5)
"""Median and lognormal shape of a case's prompt length in tokens."""

ANSWER_TOKENS = (60.0, 0.6)
"""Median and lognormal shape of a case's answer length in tokens."""

CALL_TOKEN_SHAPE = 0.3
"""Lognormal shape of one call's output tokens around its case's answer length."""

FIELDS = 4
"""Graded tests score the share of this many fields right (extraction-like)."""

VERIFY_TOKENS = 8.0
"""Median output tokens of a verify call (a short verdict)."""

MAX_CALLS = 8
"""More calls than any repetition makes (random numbers are drawn for this many)."""


@dataclass(frozen=True)
class PatternSpec:
    """A pattern of a test: its id as the plugin prints it and its target accuracy."""

    name: str
    accuracy: float

    @property
    def kind(self) -> str:
        return self.name.split("(", 1)[0]


@dataclass(frozen=True)
class TestSpec:
    """A test function: its patterns (the first is the baseline pattern) and its scoring."""

    name: str
    patterns: tuple[PatternSpec, ...]
    graded: bool = False


def _patterns(*pairs: tuple[str, float]) -> tuple[PatternSpec, ...]:
    return tuple(PatternSpec(name, acc) for name, acc in pairs)


ESCALATE = "escalate(n=3,threshold=0.67)"
SUITE: tuple[TestSpec, ...] = (
    TestSpec(
        "test_arithmetic",
        _patterns(("single", 0.70), ("sequential", 0.74), ("parallel(n=5)", 0.85), (ESCALATE, 0.8)),
    ),
    TestSpec(
        "test_codegen",
        _patterns(
            ("single", 0.62),
            ("sequential", 0.66),
            ("parallel(n=5)", 0.70),
            ("hybrid(n=3)", 0.80),
            (ESCALATE, 0.72),
            ("loop(max_iters=3)", 0.84),
        ),
    ),
    TestSpec(
        "test_extraction",
        _patterns(
            ("single", 0.78),
            ("sequential", 0.80),
            ("parallel(n=5)", 0.86),
            ("hybrid(n=3)", 0.88),
            (ESCALATE, 0.84),
            ("loop(max_iters=3)", 0.90),
        ),
        graded=True,
    ),
    TestSpec(
        "test_grounded",
        _patterns(
            ("single", 0.66),
            ("sequential", 0.70),
            ("parallel(n=5)", 0.68),
            ("hybrid(n=3)", 0.78),
            (ESCALATE, 0.72),
            ("loop(max_iters=3)", 0.82),
        ),
    ),
    TestSpec(
        "test_triage",
        _patterns(
            ("single", 0.80), ("sequential", 0.82), ("parallel(n=5)", 0.88), (ESCALATE, 0.85)
        ),
    ),
)
"""Shaped like example_suite/: 5 tests, 26 test x pattern pairs."""

REGRESSED = ("test_arithmetic", "parallel(n=5)")
"""The pattern whose accuracy is 0.85 in `SUITE`, the one the power figures regress."""


@dataclass(frozen=True)
class Change:
    """A real change in the current run for one (test, pattern).

    ``accuracy``: a new target accuracy; ``latency``: every run's latency multiplied;
    ``slow_share`` of the runs (each independently) ``slow_factor`` times slower;
    ``cost``: every call's cost multiplied (a dearer price; tokens and latency unchanged).
    """

    accuracy: float | None = None
    latency: float = 1.0
    slow_share: float = 0.0
    slow_factor: float = 5.0
    cost: float = 1.0


@dataclass(frozen=True)
class Case:
    """One case of a suite draw: difficulty (logit), prompt and answer length (tokens)."""

    id: str
    difficulty: float
    prompt_tokens: int
    answer_tokens: float


@dataclass
class Suite:
    """A drawn suite: its tests' cases, and each pattern's per-case probability of success.

    ``skills`` are solved per drawn suite, so that a pattern's accuracy over these cases is
    exactly its target; `probabilities` solves again for a changed target.
    """

    tests: tuple[TestSpec, ...]
    cases: dict[str, tuple[Case, ...]]
    repetitions: int
    profile: ModelProfile = field(default_factory=lambda: load_models().get(MODEL))
    price: Price = field(default_factory=lambda: _price(MODEL))

    _probabilities: dict[tuple[str, float], np.ndarray] = field(default_factory=dict)

    def probabilities(self, test: str, accuracy: float) -> np.ndarray:
        """Per-case success probabilities whose mean over this suite's cases is ``accuracy``."""
        key = (test, accuracy)
        if key not in self._probabilities:
            d = np.array([c.difficulty for c in self.cases[test]])
            self._probabilities[key] = success_probabilities(d, accuracy)
        return self._probabilities[key]


def _price(model: str) -> Price:
    price = load_default_prices().lookup(model)
    if price is None:
        raise LookupError(f"no price for {model}")
    return price


def success_probabilities(difficulty: np.ndarray, accuracy: float) -> np.ndarray:
    """``expit(skill - difficulty)`` with the skill whose mean over the cases is ``accuracy``."""
    if not 0 < accuracy < 1:
        raise ValueError(f"accuracy must be in (0, 1), got {accuracy}")
    low, high = -30.0, 30.0
    for _ in range(80):
        middle = (low + high) / 2
        if float(np.mean(_expit(middle - difficulty))) < accuracy:
            low = middle
        else:
            high = middle
    return _expit((low + high) / 2 - difficulty)


def _expit(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def draw_suite(
    rng: np.random.Generator,
    n_cases: int,
    repetitions: int,
    tests: Sequence[TestSpec] = SUITE,
) -> Suite:
    """Draw the cases of a suite (the same for the baseline and the current run)."""
    cases: dict[str, tuple[Case, ...]] = {}
    for test in tests:
        difficulty = rng.normal(0.0, CASE_SPREAD, n_cases)
        prompt = rng.lognormal(math.log(PROMPT_TOKENS[0]), PROMPT_TOKENS[1], n_cases)
        answer = rng.lognormal(math.log(ANSWER_TOKENS[0]), ANSWER_TOKENS[1], n_cases)
        cases[test.name] = tuple(
            Case(f"case-{i:02d}", float(difficulty[i]), max(1, round(prompt[i])), float(answer[i]))
            for i in range(n_cases)
        )
    return Suite(tuple(tests), cases, repetitions)


def draw_run(
    suite: Suite,
    rng: np.random.Generator,
    changes: Mapping[tuple[str, str], Change] | None = None,
) -> list[ItemResult]:
    """One recording of the whole suite: an `ItemResult` per (test, case, pattern)."""
    changes = changes or {}
    items: list[ItemResult] = []
    reps = suite.repetitions
    for test in suite.tests:
        baseline = test.patterns[0].name
        n_cases = len(suite.cases[test.name])
        for spec in test.patterns:
            change = changes.get((test.name, spec.name), Change())
            target = spec.accuracy if change.accuracy is None else change.accuracy
            probs = suite.probabilities(test.name, target)
            # Every random number this pattern needs, drawn at once (a repetition makes at
            # most MAX_CALLS calls).
            shape = (n_cases, reps)
            outcome = (
                rng.binomial(FIELDS, probs[:, None], shape) / FIELDS
                if test.graded
                else (rng.random(shape) < probs[:, None]).astype(float)
            )
            uniforms = rng.random((*shape, 3))
            z = rng.standard_normal((*shape, 2, MAX_CALLS))
            for i, case in enumerate(suite.cases[test.name]):
                repetitions = tuple(
                    _repetition(
                        suite,
                        spec,
                        case,
                        float(probs[i]),
                        float(outcome[i, r]) if test.graded else None,
                        bool(outcome[i, r] >= (0.75 if test.graded else 1.0)),
                        r,
                        change,
                        uniforms[i, r].tolist(),
                        z[i, r].tolist(),
                    )
                    for r in range(reps)
                )
                items.append(
                    ItemResult(
                        nodeid=f"{test.name}.py::{test.name}[{case.id}-{spec.name}]",
                        test=f"{test.name}.py::{test.name}",
                        case=case.id,
                        pattern=spec.name,
                        repetitions=repetitions,
                        baseline_pattern=baseline,
                    )
                )
    return items


def _stages(kind: str, p: float, correct: bool, u: float) -> list[list[str]]:
    """The calls of one repetition, stage by stage (calls within a stage run concurrently).

    ``u`` is a uniform draw deciding what is random about the plan.
    """
    if kind == "single":
        return [["propose"]]
    if kind == "sequential":
        return [["propose"], ["steps"], ["steps"]]
    if kind == "parallel":
        return [["propose"] * 5]
    if kind == "hybrid":
        verifies = (2 if u < 0.2 else 1) if correct else 3
        return [["propose"] * 3] + [["verify"]] * verifies
    if kind == "escalate":
        unanimous = p**3 + (1 - p) ** 3
        chain = [["propose"], ["steps"], ["steps"]] if u >= unanimous else []
        return [["propose"] * 3, *chain]
    if kind == "loop":
        iterations = 1 if correct and u < 0.8 else (2 if u < 0.9 else 3)
        stages = [["propose"], ["verify"]]
        for _ in range(iterations - 1):
            stages += [["refine"], ["verify"]]
        return stages
    raise ValueError(f"no call plan for pattern kind {kind!r}")


def _repetition(
    suite: Suite,
    spec: PatternSpec,
    case: Case,
    p: float,
    score: float | None,
    correct: bool,
    index: int,
    change: Change,
    u: list[float],
    z: list[list[float]],
) -> Repetition:
    profile, price = suite.profile, suite.price
    slow = change.slow_factor if u[1] < change.slow_share else 1.0
    factor = change.latency * slow
    calls: list[CallRecord] = []
    latency = 0.0
    ordinals: dict[tuple[str, str], int] = {}
    j = 0
    for stage in _stages(spec.kind, p, correct, u[0]):
        slowest = 0.0
        for position, role in enumerate(stage):
            branch = (str(position),) if len(stage) > 1 else ()
            key = (".".join(branch), role)
            ordinal = ordinals.get(key, 0)
            ordinals[key] = ordinal + 1
            length = case.answer_tokens if role != "verify" else VERIFY_TOKENS
            out = max(1, round(length * math.exp(CALL_TOKEN_SHAPE * z[0][j])))
            extra = 0 if role == "propose" else round(case.answer_tokens)
            inp = case.prompt_tokens + extra
            ttft = profile.ttft_median * math.exp(profile.ttft_sigma * z[1][j])
            duration = (ttft + profile.per_token * out) * factor
            slowest = max(slowest, duration)
            j += 1
            calls.append(
                CallRecord(
                    address=Address(index, branch, role, ordinal),
                    method="POST",
                    url="http://127.0.0.1/v1/chat/completions",
                    status=200,
                    duration=duration,
                    model=MODEL,
                    input_tokens=inp,
                    output_tokens=out,
                    cost=price.cost(Usage(MODEL, inp, out)) * change.cost,
                )
            )
        latency += slowest
    if score is not None:
        return Repetition(index, "scored", latency, score=score, calls=tuple(calls))
    return Repetition(index, "correct" if correct else "incorrect", latency, calls=tuple(calls))
