"""Running an item's repetitions and judging it against its thresholds.

Plain code with no pytest in it: the plugin hands over the test body as a callable.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import evidence
from .execution import CallRefused, RepetitionState, enter_body, leave_body, virtual_latency
from .fixture import Agent, MissingRole
from .metrics import percentile
from .records import DURATION_DIGITS, ItemResult, Outcome, Repetition


class ReplayMiss(CallRefused):
    """A call had no recording in replay-only mode."""


@dataclass(frozen=True)
class Thresholds:
    """Per-item limits from the marker; None means unchecked."""

    min_accuracy: float | None = None
    max_cost: float | None = None
    max_latency: float | None = None

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class ItemPlan:
    """What the plugin decided for one item at collection time."""

    nodeid: str
    test: str
    case: str
    pattern: str
    repeat: int
    thresholds: Thresholds = field(default_factory=Thresholds)
    baseline_pattern: str = "single"
    max_concurrency: int | None = None
    evidence_chars: int = evidence.DEFAULT_CHARS
    """How much of each output, message and excerpt the report keeps (0: none)."""
    check_errors: str | None = None
    """The marker's ``check_errors`` (wins over the task's); None when not given."""
    first: int = 0
    """The index of the first repetition to run (an adaptive round after the first)."""
    earlier: tuple[Repetition, ...] = ()
    """The repetitions earlier rounds ran, part of the item's result and judgement."""


@dataclass(frozen=True)
class ItemOutcome:
    """The item's result and, when it must fail, the one message that says why."""

    result: ItemResult
    failure: str | None = None


def run_item(
    plan: ItemPlan,
    body: Callable[[], Any],
    agent: Agent | None,
    hooks: Sequence[Callable[[RepetitionState], Any]] = (),
) -> ItemOutcome:
    """Call ``body`` once per repetition, classify each, then judge the item.

    ``hooks`` are called with each new repetition's state before the body runs (the
    cassette layer uses this to attach itself).
    """
    repetitions: list[Repetition] = []
    stopped: str | None = None
    scrubber: Any = None
    end = plan.first + plan.repeat
    for index in range(plan.first, end):
        state = RepetitionState(index)
        state.evidence_chars = plan.evidence_chars
        for hook in hooks:
            hook(state)
        scrubber = state.scrubber or scrubber
        if agent is not None:
            agent.bind(state)
        token = enter_body(state)
        outcome: Outcome
        error: str | None = None
        message: str | None = None
        try:
            body()
        except MissingRole as exc:
            result = ItemResult(
                plan.nodeid,
                plan.test,
                plan.case,
                plan.pattern,
                (),
                plan.baseline_pattern,
                skipped=str(exc),
            )
            return ItemOutcome(result)
        except AssertionError as exc:
            outcome = "incorrect"
            message = evidence.exception_summary(exc)
        except (Exception, CallRefused) as exc:
            message = evidence.exception_summary(exc)
            if _counts_as_wrong(plan, state, exc):
                outcome = "incorrect"
            else:
                outcome = "error"
                error = "".join(traceback.format_exception(exc))
        else:
            outcome = "scored" if state.score is not None else "correct"
        finally:
            _end(state, token)
        if state.stopped is not None:
            # A call was refused by the budget: this repetition is incomplete and is not
            # counted; the item's other repetitions are not run.
            if state.replayer is not None:
                state.replayer.forget_cancellations(index)
            stopped = _stop_message(state, end - index)
            break
        if state.failures:
            outcome, error = "error", "\n".join(state.failures)
            message = state.failures[0].splitlines()[0]
        latency = _latency(state, plan.max_concurrency)
        repetitions.append(
            Repetition(
                index=index,
                outcome=outcome,
                latency=latency,
                score=state.score if outcome == "scored" else None,
                calls=state.ordered_calls(),
                error=error,
                verified=state.verified,
                output=state.output,
                message=message,
                verdicts=state.verdicts(),
            )
        )
    result = ItemResult(
        plan.nodeid,
        plan.test,
        plan.case,
        plan.pattern,
        plan.earlier + evidence.finish(repetitions, scrubber, plan.evidence_chars),
        plan.baseline_pattern,
        thresholds=plan.thresholds.as_dict(),
        stopped=stopped,
    )
    if stopped is not None:
        return ItemOutcome(result, f"[{plan.pattern}] {stopped}")
    return ItemOutcome(result, judge(result, plan.thresholds))


def _counts_as_wrong(plan: ItemPlan, state: RepetitionState, error: BaseException) -> bool:
    """Whether an exception the test body raised counts as a wrong answer: ``check_errors``
    is ``"incorrect"`` (the marker's, else the task's), ``agent.run`` had returned, and the
    exception came from the checks, not from ``agent.run`` or a judge's call (nor was it a
    call the plugin refused)."""
    mode = plan.check_errors or state.check_errors or "error"
    return (
        mode == "incorrect"
        and state.returned > 0
        and isinstance(error, Exception)
        and not state.from_calls(error)
    )


def _end(state: RepetitionState, token: Any) -> None:
    """Close a repetition: wait for every branch it started, then settle open streams."""
    leave_body(token)
    state.seal()
    state.finish_pending()


def _stop_message(state: RepetitionState, skipped: int) -> str:
    """One line: what limit was reached and what was not done because of it."""
    assert state.stopped is not None
    reason = state.stopped.split(" (", 1)[0]
    calls = f"{state.refused} call{'s' if state.refused != 1 else ''} not made"
    reps = f"{skipped} repetition{'s' if skipped != 1 else ''} not counted"
    return f"{reason}: {calls}; {reps} (from r{state.index} on)"


def _latency(state: RepetitionState, bound: int | None) -> float:
    """Wall clock when live; when replayed, the recorded calls composed on the virtual clock.

    What a live run spent outside calls (threads, parsing) is kept with the cassette and
    added back on replay, so replayed latency matches the recorded run's. A repetition that
    replays a recording is replayed even when it made no call (every call was refused as
    recorded).
    """
    virtual = virtual_latency(state.root, bound)
    replayer = state.replayer
    if state.replayed or (replayer is not None and replayer.replays(state.index)):
        return virtual + (replayer.overhead(state.index) if replayer is not None else 0.0)
    if replayer is None:
        return state.wall
    # As the replay will compose it: the calls on the virtual clock plus the time spent
    # outside them, both at the cassette's precision (identical reports, record and replay).
    overhead = round(max(0.0, state.wall - virtual), DURATION_DIGITS)
    replayer.remember_overhead(state.index, overhead)
    return virtual + overhead if replayer.keeps_overhead(state.index) else state.wall


def judge(result: ItemResult, thresholds: Thresholds) -> str | None:
    """Why the item fails (errors, or a missed threshold, with the numbers), or None."""
    problems: list[str] = []
    reps = result.repetitions
    if result.errors:
        first = next(r for r in reps if r.outcome == "error")
        problems.append(
            f"{result.errors} of {len(reps)} repetitions raised an error "
            f"(counted apart from incorrect answers); the first, in repetition {first.index}:\n"
            f"{first.error}"
        )
    answered = [r.accuracy for r in reps if r.accuracy is not None]
    if thresholds.min_accuracy is not None:
        if not answered:
            problems.append(
                f"min_accuracy={thresholds.min_accuracy:g} cannot be checked: "
                "no repetition gave an answer"
            )
        else:
            accuracy = sum(answered) / len(answered)
            if accuracy < thresholds.min_accuracy:
                problems.append(
                    f"accuracy {accuracy:.3f} over {len(answered)} repetitions is below "
                    f"min_accuracy={thresholds.min_accuracy:g}"
                )
    if thresholds.max_cost is not None:
        costs = [r.cost for r in reps]
        if any(c is None for c in costs) or not costs:
            models = sorted({c.model or "?" for r in reps for c in r.calls if c.cost is None})
            problems.append(
                f"max_cost={thresholds.max_cost:g} cannot be checked: cost is unknown"
                + (f" for model {', '.join(models)}" if models else "")
            )
        else:
            per_run = sum(c for c in costs if c is not None) / len(costs)
            if per_run > thresholds.max_cost:
                problems.append(
                    f"cost per run ${per_run:.6f} is above max_cost=${thresholds.max_cost:g}"
                )
    if thresholds.max_latency is not None and reps:
        p95 = percentile([r.latency for r in reps], 95)
        if p95 > thresholds.max_latency:
            problems.append(
                f"latency p95 {p95:.3f}s is above max_latency={thresholds.max_latency:g}s"
            )
    if not problems:
        return None
    return f"[{result.pattern}] " + "\n".join(problems)
