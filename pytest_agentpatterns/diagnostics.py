"""Pattern diagnostics from the data a run already has: ensemble size, escalation, loop rounds.

- ``parallel`` and ``escalate``: accuracy against ensemble size k = 1..n, by sub-sampling
  each repetition's recorded branch outputs (every subset of size k, or a seeded sample of
  `SUBSETS` of them) and voting over the subset as the pattern does. More voters do not
  always help (Chen et al. 2024): the best k is the smallest with the highest accuracy.
  For ``escalate`` this is the vote before escalation.
- ``escalate``: how often the chain ran, and the calls and dollars saved against running it
  on every repetition.
- ``loop``: after each iteration i, the accuracy the run would have had with
  ``max_iters=i`` and the share of repetitions the verifier had passed.

Whether an output is right is decided by the test's own check: the test body is run again
with ``agent.run`` returning that output, no call made (a body that makes calls of its own,
or runs ``agent.run`` more than once, gets a note instead). Each distinct output is judged
once per item, and an output a repetition returned keeps that repetition's verdict, so this
costs a few body runs per item, not one per subset, and no call.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from .aggregators import rank_by_votes, vote_key
from .execution import CallRefused, RepetitionState, enter_body, leave_body

if TYPE_CHECKING:
    from .execution import Flow
    from .fixture import Agent
    from .patterns import Pattern, PatternSpec
    from .records import ItemResult, Repetition
    from .runner import ItemOutcome
    from .stats import Interval

SUBSETS = 64
"""The most subsets of one size judged per repetition; beyond, a seeded sample."""

PROBED = ("parallel", "escalate", "loop")
"""The built-in patterns diagnostics are collected for."""

VOTING = ("majority", "first")
"""Aggregators a subset of outputs can be combined with here (no call needed)."""

_UNSET = object()


class _Unusable(Exception):
    """The test body cannot judge substituted outputs; the message says why."""


@dataclass
class _Record:
    """What one repetition's pattern run did: its votes, whether it escalated, its loop."""

    runs: int = 0
    task: Any = None
    votes: list[Any] | None = None
    escalated: bool = False
    outputs: list[Any] = field(default_factory=list)
    final: Any = _UNSET


class _Recording:
    """A Flow that notes what the pattern does with it, and otherwise is the Flow."""

    def __init__(self, flow: Flow, record: _Record, name: str) -> None:
        self._flow = flow
        self._record = record
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._flow, attribute)

    async def fork(self, label: str, n: int, body: Callable[[int], Any]) -> list[Any]:
        outputs = await self._flow.fork(label, n, body)
        if label == self._name and self._record.votes is None:
            self._record.votes = list(outputs)
        return outputs

    async def within(self, label: str, body: Callable[[], Any]) -> Any:
        if label == "chain":
            self._record.escalated = True
        return await self._flow.within(label, body)

    async def propose(self) -> Any:
        output = await self._flow.propose()
        if self._name == "loop":
            self._record.outputs.append(output)
        return output

    async def refine(self, output: Any, feedback: Any) -> Any:
        refined = await self._flow.refine(output, feedback)
        if self._name == "loop":
            self._record.outputs.append(refined)
        return refined


class Probe:
    """Wraps a built-in pattern to record each repetition's branch outputs, and can stand in
    for it with a given output so the test body judges that output."""

    def __init__(self, pattern: Pattern, spec: PatternSpec) -> None:
        self.name = pattern.name
        self.params = spec.kwargs
        self._run = pattern.run
        self.records: dict[int, _Record] = {}
        self.substitute: Any = _UNSET
        self.substituted = 0
        self.pattern = replace(pattern, run=self._instrumented)

    async def _instrumented(self, flow: Flow) -> Any:
        if self.substitute is not _UNSET:
            self.substituted += 1
            return self.substitute
        record = self.records.setdefault(flow.state.index, _Record())
        record.runs += 1
        record.task = flow.task
        output = await self._run(cast("Flow", _Recording(flow, record, self.name)))
        record.final = output
        return output


def probe(pattern: Pattern, spec: PatternSpec) -> Probe | None:
    """A probe for the built-in patterns diagnostics are collected for, else None."""
    return Probe(pattern, spec) if pattern.builtin and pattern.name in PROBED else None


ONCE = "the test body does not run agent.run exactly once"
"""The note a body gets when diagnostics cannot judge outputs by re-running it."""


class _Judge:
    """The test's own verdict on an output: cached per distinct output, the body run with
    ``agent.run`` returning it when it was never seen."""

    def __init__(self, body: Callable[[], Any], agent: Agent, probe: Probe) -> None:
        self.body = body
        self.agent = agent
        self.probe = probe
        self.cache: dict[Hashable, float | None] = {}

    def seen(self, output: Any, accuracy: float | None) -> None:
        self.cache.setdefault(vote_key(output), accuracy)

    def __call__(self, output: Any, index: int) -> float | None:
        key = vote_key(output)
        if key not in self.cache:
            self.cache[key] = self._run(output, index)
        return self.cache[key]

    def _run(self, output: Any, index: int) -> float | None:
        state = RepetitionState(index)
        state.closing = True  # any call the body makes is refused, never sent
        probe = self.probe
        probe.substitute, probe.substituted = output, 0
        self.agent.bind(state)
        token = enter_body(state)
        value: float | None
        try:
            self.body()
        except AssertionError:
            value = 0.0
        except CallRefused:
            raise _Unusable("the test body makes calls outside agent.run") from None
        except Exception:
            value = None
        else:
            value = state.score if state.score is not None else 1.0
        finally:
            leave_body(token)
            probe.substitute = _UNSET
        if probe.substituted != 1:
            raise _Unusable(ONCE)
        return value


def enrich(
    outcome: ItemOutcome, body: Callable[[], Any], agent: Agent, probe: Probe | None
) -> ItemOutcome:
    """The item's repetitions with their diagnostics (``Repetition.diagnostics``)."""
    if probe is None or outcome.result.skipped is not None:
        return outcome
    records = {index: probe.records.pop(index) for index in list(probe.records)}
    reps = outcome.result.repetitions
    judge = _Judge(body, agent, probe)
    for rep in reps:
        record = records.get(rep.index)
        if record is not None and record.final is not _UNSET and rep.accuracy is not None:
            judge.seen(record.final, rep.accuracy)
    try:
        enriched = tuple(_diagnose(rep, records.get(rep.index), judge, probe) for rep in reps)
    except _Unusable as exc:
        note = {"note": str(exc)}
        enriched = tuple(replace(rep, diagnostics=note) for rep in reps)
    result = replace(outcome.result, repetitions=enriched)
    return replace(outcome, result=result)


def _diagnose(rep: Repetition, record: _Record | None, judge: _Judge, probe: Probe) -> Repetition:
    if record is None or rep.outcome == "error":
        return rep
    if record.runs != 1:
        return replace(rep, diagnostics={"note": ONCE})
    data: dict[str, Any] = {}
    if probe.name in ("parallel", "escalate") and record.votes:
        how = "majority" if probe.name == "escalate" else record.task.aggregate
        if how not in VOTING:
            named = f"aggregate={how!r}" if isinstance(how, str) else "a callable aggregate"
            data["note"] = (
                f"{named} cannot be sub-sampled without calls; only {' and '.join(VOTING)} can"
            )
        else:
            data["ensemble"] = _ensemble(record.votes, how, rep.index, judge)
        if probe.name == "escalate":
            data["escalated"] = record.escalated
    if probe.name == "loop" and record.outputs:
        rounds = int(probe.params.get("max_iters", len(record.outputs)))
        used = len(record.outputs)
        data["loop"] = {
            "iterations": used,
            "passed": rep.verified is True,
            "accuracy": [
                judge(record.outputs[min(i, used) - 1], rep.index) for i in range(1, rounds + 1)
            ],
        }
    return replace(rep, diagnostics=data or None)


def _ensemble(votes: list[Any], how: str, index: int, judge: _Judge) -> list[float | None]:
    """Accuracy at each ensemble size k = 1..n, averaged over subsets of the branches."""
    n = len(votes)
    curve: list[float | None] = []
    for k in range(1, n + 1):
        verdicts = [
            judge(_combine([votes[i] for i in subset], how), index)
            for subset in subsets(n, k, seed=index)
        ]
        known = [v for v in verdicts if v is not None]
        curve.append(sum(known) / len(known) if known else None)
    return curve


def _combine(outputs: list[Any], how: str) -> Any:
    return outputs[0] if how == "first" else rank_by_votes(outputs)[0][0]


def subsets(n: int, k: int, *, seed: int = 0, limit: int = SUBSETS) -> list[tuple[int, ...]]:
    """Every subset of size k of n branches (in branch order), or a seeded sample of them."""
    if math.comb(n, k) <= limit:
        return list(itertools.combinations(range(n), k))
    rng = random.Random(f"{seed}/{n}/{k}")
    return [tuple(sorted(rng.sample(range(n), k))) for _ in range(limit)]


# --- from item results to figures --------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """Accuracy at one ensemble size or loop iteration, with its 95% interval."""

    x: int
    accuracy: float | None
    interval: Interval | None = None


@dataclass(frozen=True)
class Ensemble:
    """Accuracy against ensemble size for one pattern of one test."""

    pattern: str
    points: tuple[Point, ...]
    best: int | None
    repetitions: int
    vote_only: bool = False


@dataclass(frozen=True)
class Escalation:
    """How often escalate ran its chain, and what that saved against always running it."""

    pattern: str
    repetitions: int
    escalated: int
    calls: float
    calls_always: float | None
    cost: float | None
    cost_always: float | None

    @property
    def rate(self) -> float:
        return self.escalated / self.repetitions if self.repetitions else 0.0

    @property
    def saved(self) -> float | None:
        """The share of the dollars (calls when unpriced) always escalating would cost."""
        if self.cost is not None and self.cost_always:
            return 1 - self.cost / self.cost_always
        if self.calls_always:
            return 1 - self.calls / self.calls_always
        return None


@dataclass(frozen=True)
class Loop:
    """Accuracy and the verifier's pass rate after each iteration of ``loop``."""

    pattern: str
    points: tuple[Point, ...]
    passed: tuple[float, ...]
    repetitions: int


@dataclass(frozen=True)
class Diagnostics:
    """All diagnostics of one test function, and why any could not be made."""

    test: str
    ensembles: tuple[Ensemble, ...] = ()
    escalations: tuple[Escalation, ...] = ()
    loops: tuple[Loop, ...] = ()
    notes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.ensembles or self.escalations or self.loops or self.notes)


def analyse(items: Iterable[ItemResult], *, seed: int = 0) -> Diagnostics | None:
    """The diagnostics of one test's items, or None when it ran no probed pattern."""
    by_pattern: dict[str, list[ItemResult]] = {}
    test = ""
    for item in items:
        if item.skipped is None and any(r.diagnostics for r in item.repetitions):
            by_pattern.setdefault(item.pattern, []).append(item)
            test = item.test
    if not by_pattern:
        return None
    ensembles, escalations, loops, notes = [], [], [], []
    for pattern, group in sorted(by_pattern.items()):
        group = sorted(group, key=lambda r: r.case)
        reps = [(item.case, rep) for item in group for rep in item.repetitions if rep.diagnostics]
        for _, rep in reps:
            note = (rep.diagnostics or {}).get("note")
            if note:
                notes.append(f"{pattern}: {note}")
                break
        curves = [(case, _get(rep, "ensemble")) for case, rep in reps if _has(rep, "ensemble")]
        if curves:
            points = _points(curves, seed)
            ensembles.append(
                Ensemble(
                    pattern,
                    points,
                    _best(points),
                    len(curves),
                    vote_only=pattern.startswith("escalate"),
                )
            )
        flagged = [rep for _, rep in reps if "escalated" in (rep.diagnostics or {})]
        if flagged:
            escalations.append(_escalation(pattern, flagged))
        rounds = [(case, _get(rep, "loop")) for case, rep in reps if _has(rep, "loop")]
        if rounds:
            loops.append(_loop(pattern, rounds, seed))
    return Diagnostics(test, tuple(ensembles), tuple(escalations), tuple(loops), tuple(notes))


def _has(rep: Repetition, key: str) -> bool:
    return bool(rep.diagnostics and rep.diagnostics.get(key))


def _get(rep: Repetition, key: str) -> Any:
    return (rep.diagnostics or {})[key]


def _points(curves: Sequence[tuple[str, Sequence[float | None]]], seed: int) -> tuple[Point, ...]:
    """Per x, the mean over cases of each case's mean, with the summary's interval."""
    from .stats import accuracy_interval

    size = max(len(c) for _, c in curves)
    points = []
    for i in range(size):
        cases: dict[str, list[float]] = {}
        for case, curve in curves:
            if i < len(curve) and curve[i] is not None:
                cases.setdefault(case, []).append(float(cast(float, curve[i])))
        if not cases:
            points.append(Point(i + 1, None))
            continue
        ordered = [cases[k] for k in sorted(cases)]
        mean = sum(sum(v) / len(v) for v in ordered) / len(ordered)
        interval, _ = accuracy_interval(ordered, seed=seed)
        points.append(Point(i + 1, mean, interval))
    return tuple(points)


def _best(points: Sequence[Point]) -> int | None:
    known = [p for p in points if p.accuracy is not None]
    if not known:
        return None
    top = max(cast(float, p.accuracy) for p in known)
    return min(p.x for p in known if cast(float, p.accuracy) >= top - 1e-12)


def _escalation(pattern: str, reps: Sequence[Repetition]) -> Escalation:
    def chain(rep: Repetition) -> tuple[int, float | None]:
        calls = [c for c in rep.calls if c.address.branch[:1] == ("chain",)]
        costs = [c.cost for c in calls]
        known = None if any(c is None for c in costs) else sum(c for c in costs if c is not None)
        return len(calls), known

    escalated = [rep for rep in reps if rep.diagnostics and rep.diagnostics.get("escalated")]
    calls = sum(len(rep.calls) for rep in reps) / len(reps)
    costs = [rep.cost for rep in reps]
    cost = None if any(c is None for c in costs) else sum(c or 0.0 for c in costs) / len(reps)
    calls_always: float | None = None
    cost_always: float | None = None
    if escalated:
        parts = [chain(rep) for rep in escalated]
        chain_calls = sum(c for c, _ in parts) / len(parts)
        spared = len(reps) - len(escalated)
        calls_always = calls + spared * chain_calls / len(reps)
        chain_costs = [d for _, d in parts]
        if cost is not None and all(d is not None for d in chain_costs):
            chain_cost = sum(d or 0.0 for d in chain_costs) / len(parts)
            cost_always = cost + spared * chain_cost / len(reps)
    return Escalation(pattern, len(reps), len(escalated), calls, calls_always, cost, cost_always)


def _loop(pattern: str, rounds: Sequence[tuple[str, dict[str, Any]]], seed: int) -> Loop:
    size = max(len(r["accuracy"]) for _, r in rounds)
    points = _points([(case, r["accuracy"]) for case, r in rounds], seed)
    passed = tuple(
        sum(1 for _, r in rounds if r["passed"] and r["iterations"] <= i) / len(rounds)
        for i in range(1, size + 1)
    )
    return Loop(pattern, points, passed, len(rounds))


def lines(d: Diagnostics | None) -> list[str]:
    """The diagnostics as sentences, one a line (the -v summary and the Markdown report)."""
    if not d:
        return []

    def curve(points: Sequence[Point], label: str) -> str:
        return ", ".join(
            f"{label}{p.x} {p.accuracy:.2f}"
            + ("" if p.interval is None else f" [{p.interval.low:.2f}, {p.interval.high:.2f}]")
            for p in points
            if p.accuracy is not None
        )

    out = []
    for e in d.ensembles:
        what = "the vote before escalating" if e.vote_only else "accuracy"
        out.append(
            f"{e.pattern}, {what} by ensemble size: {curve(e.points, 'k=')}; best k={e.best} "
            f"({e.repetitions} repetitions sub-sampled)"
        )
    for esc in d.escalations:
        if esc.saved is None:
            tail = "no repetition escalated, so the chain's cost is unknown"
        else:
            what = "dollars" if esc.cost is not None and esc.cost_always else "calls"
            tail = f"saves {esc.saved:.0%} of the {what} of always running the chain"
        out.append(
            f"{esc.pattern}: escalated on {esc.escalated} of {esc.repetitions} repetitions "
            f"({esc.rate:.0%}); {tail}"
        )
    for loop in d.loops:
        passed = ", ".join(f"{v:.2f}" for v in loop.passed)
        out.append(
            f"{loop.pattern}, after each iteration: accuracy {curve(loop.points, '#')}; "
            f"verifier passed {passed}"
        )
    out.extend(d.notes)
    return out


def as_dict(d: Diagnostics) -> dict[str, Any]:
    """JSON-safe data for the report."""

    def interval(i: Interval | None) -> dict[str, float] | None:
        return None if i is None else {"low": i.low, "high": i.high}

    def points(ps: Sequence[Point], name: str) -> list[dict[str, Any]]:
        return [{name: p.x, "accuracy": p.accuracy, "interval": interval(p.interval)} for p in ps]

    return {
        "ensembles": [
            {
                "pattern": e.pattern,
                "points": points(e.points, "k"),
                "best_k": e.best,
                "repetitions": e.repetitions,
                "vote_only": e.vote_only,
            }
            for e in d.ensembles
        ],
        "escalations": [
            {
                "pattern": e.pattern,
                "repetitions": e.repetitions,
                "escalated": e.escalated,
                "rate": e.rate,
                "calls_per_run": e.calls,
                "calls_per_run_always": e.calls_always,
                "cost_per_run": e.cost,
                "cost_per_run_always": e.cost_always,
                "saved": e.saved,
            }
            for e in d.escalations
        ],
        "loops": [
            {
                "pattern": loop.pattern,
                "points": points(loop.points, "iteration"),
                "passed": list(loop.passed),
                "repetitions": loop.repetitions,
            }
            for loop in d.loops
        ],
        "notes": list(d.notes),
    }


__all__ = ["Diagnostics", "Probe", "analyse", "as_dict", "enrich", "lines", "probe", "subsets"]
