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
    """Bound to the pattern of the current item; one per item, rebound each repetition."""

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
        self._state = state

    def run(self, task: Task, input: Any) -> Any:
        """Run ``task`` on ``input`` under this item's pattern and return its output."""
        flow = self._flow(task, input)
        started = time.perf_counter()
        try:
            return run_flow(lambda: self.pattern.run(flow))
        finally:
            flow.state.wall += time.perf_counter() - started

    async def arun(self, task: Task, input: Any) -> Any:
        """Like :meth:`run`, for ``async def`` test functions."""
        flow = self._flow(task, input)
        started = time.perf_counter()
        try:
            return await self.pattern.run(flow)
        finally:
            flow.state.wall += time.perf_counter() - started

    def score(self, value: float) -> None:
        """Record a graded score in [0, 1] for this repetition instead of pass/fail."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"agent.score() takes a number in [0, 1], got {value!r}")
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
