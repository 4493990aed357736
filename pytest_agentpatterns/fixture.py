"""The ``agent`` fixture's object: runs a task under the item's pattern."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .execution import Flow, RepetitionState, run_flow
from .patterns import Pattern, PatternSpec
from .task import Task


class MissingRole(Exception):
    """The item's pattern needs a role the task does not provide; the item is skipped."""


class Agent:
    """Bound to the pattern of the current item; one per item, rebound each repetition.

    ``agent.run(task, input)`` (or ``await agent.arun(...)`` in an ``async def`` test) runs the
    task under the item's pattern; ``agent.score(x)`` grades the repetition. Its methods cannot
    be replaced: ``agent.score = 0.5`` raises, so a grade is never silently lost.
    """

    _METHODS = frozenset({"run", "arun", "score", "bind"})

    def __init__(
        self,
        pattern: Pattern,
        spec: PatternSpec,
        aggregators: Mapping[str, Any],
        max_concurrency: int | None = None,
    ) -> None:
        self.pattern = pattern
        self.spec = spec
        self._aggregators = dict(aggregators)
        self._limit = max_concurrency
        self._state: RepetitionState | None = None

    @property
    def pattern_id(self) -> str:
        """The pattern's id, as it appears in node ids and reports."""
        return self.spec.id

    @property
    def repetition(self) -> int:
        """The index of the running repetition."""
        return self._require_state().index

    def bind(self, state: RepetitionState) -> None:
        """Start collecting into a new repetition (called by the item runner)."""
        object.__setattr__(self, "_state", state)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._METHODS:
            hint = (
                "call agent.score(0.5) to record a graded score in [0, 1]"
                if name == "score"
                else f"agent.{name} is the fixture's own method"
            )
            raise AttributeError(f"agent.{name} is a method and cannot be assigned: {hint}")
        super().__setattr__(name, value)

    def run(self, task: Task, input: Any) -> Any:
        """Run ``task`` on ``input`` under this item's pattern and return its output.

        What it returns is kept as the repetition's evidence (the last run's, as its repr). An
        exception it raises comes from the task itself and always counts as an error, never as
        a wrong answer (see ``check_errors``).
        """
        flow = self._flow(task, input)
        started = time.perf_counter()
        try:
            output = run_flow(lambda: self.pattern.run(flow), inline=self.pattern.builtin)
        except BaseException as exc:
            flow.state.call_failed(exc)
            raise
        finally:
            flow.state.wall += time.perf_counter() - started
        _returned(flow.state, task, output)
        return output

    async def arun(self, task: Task, input: Any) -> Any:
        """Like :meth:`run`, for ``async def`` test functions: ``await agent.arun(task, x)``.

        Calling :meth:`run` from a running event loop would block it, so async tests use this.
        """
        flow = self._flow(task, input)
        started = time.perf_counter()
        try:
            output = await self.pattern.run(flow)
        except BaseException as exc:
            flow.state.call_failed(exc)
            raise
        finally:
            flow.state.wall += time.perf_counter() - started
        _returned(flow.state, task, output)
        return output

    def score(self, value: Any) -> None:
        """Record a graded score in [0, 1] for this repetition instead of pass/fail.

        Takes a number or a :class:`~pytest_agentpatterns.scorers.Score` (its ``value``). The
        repetition's accuracy is then the score; an ``AssertionError`` still makes it
        incorrect (0).
        """
        value = getattr(value, "value", value) if not isinstance(value, (int, float)) else value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(
                f"agent.score() takes a number in [0, 1] or a scorers.Score, got {value!r}"
            )
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"agent.score() takes a number in [0, 1], got {value!r}")
        self._require_state().score = float(value)

    @property
    def verified(self) -> bool | None:
        """For hybrid and loop: whether the returned output passed ``verify``."""
        return self._require_state().verified

    def _flow(self, task: Task, input: Any) -> Flow:
        if not isinstance(task, Task):
            raise TypeError(f"agent.run() takes a Task, got {type(task).__name__}")
        state = self._require_state()
        params = self.spec.kwargs
        missing = self.pattern.missing_roles(task, params)
        if missing:
            raise MissingRole(
                f"pattern {self.spec.id} needs role {' and '.join(missing)}, "
                f"which task {task.name!r} does not define"
            )
        if isinstance(task.aggregate, str) and task.aggregate not in self._aggregators:
            raise ValueError(
                f"task {task.name!r}: unknown aggregate {task.aggregate!r}; allowed: "
                f"{', '.join(self._aggregators)} or a callable"
            )
        return Flow(state, task, input, params, self._limit, self._aggregators)

    def _require_state(self) -> RepetitionState:
        if self._state is None:
            raise RuntimeError("the agent fixture is only usable inside a pattern test's body")
        return self._state


def _returned(state: RepetitionState, task: Task, output: Any) -> None:
    """Keep the run's output as evidence and the task's ``check_errors`` for the runner."""
    from .evidence import output_repr

    state.returned += 1
    state.output = output_repr(output) if state.evidence_chars != 0 else None
    if task.check_errors != "error":
        state.check_errors = task.check_errors
