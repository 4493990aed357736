"""Declaring a task once: its role functions and how parallel outputs are combined."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Role = Callable[..., Any]
"""A role function: plain or ``async def``."""

ROLE_NAMES = ("propose", "steps", "verify", "refine", "aggregate")

CHECK_ERRORS = ("error", "incorrect")
"""What an exception raised by the test body's checks (after ``agent.run`` returned) counts
as: an error (the default), or an incorrect answer."""


@dataclass(frozen=True)
class Verdict:
    """What ``verify`` may return: pass/fail, an optional score in [0, 1] and feedback."""

    ok: bool
    feedback: str | None = None
    score: float | None = None

    @property
    def value(self) -> float:
        """The score used to rank candidates: the given score, else 1.0/0.0."""
        if self.score is not None:
            return self.score
        return 1.0 if self.ok else 0.0


@dataclass(frozen=True)
class Task:
    """An LLM task declared once and run under every pattern.

    ``propose(input) -> output`` is one worker. ``steps`` is the chain for the sequential
    pattern, each ``step(input, prev) -> next`` (``prev`` is None for the first step).
    ``verify(input, output)`` returns a bool, a float in [0, 1] (passes at or above
    ``verify_threshold``) or a :class:`Verdict`. ``refine(input, output, feedback)``
    improves an output. ``aggregate`` combines parallel outputs: ``"majority"``, ``"first"``,
    ``"best"`` (by verify score), a registered name, or a callable taking the list.
    ``check_errors="incorrect"`` makes an exception raised by the test body's checks, once
    ``agent.run`` returned, count as a wrong answer rather than an error (the marker's
    ``check_errors`` wins over it); exceptions from ``agent.run`` itself stay errors.
    """

    name: str
    propose: Role
    steps: Sequence[Role] = field(default_factory=tuple)
    verify: Role | None = None
    refine: Role | None = None
    aggregate: str | Callable[[list[Any]], Any] = "majority"
    verify_threshold: float = 0.5
    check_errors: str = "error"

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise TypeError("Task(name=...) must be a non-empty string")
        if not callable(self.propose):
            raise TypeError(f"Task {self.name!r}: propose must be callable")
        object.__setattr__(self, "steps", tuple(self.steps))
        for i, step in enumerate(self.steps):
            if not callable(step):
                raise TypeError(f"Task {self.name!r}: steps[{i}] is not callable")
        for role in ("verify", "refine"):
            value = getattr(self, role)
            if value is not None and not callable(value):
                raise TypeError(f"Task {self.name!r}: {role} must be callable or None")
        if not ((isinstance(self.aggregate, str) and self.aggregate) or callable(self.aggregate)):
            raise TypeError(
                f"Task {self.name!r}: aggregate={self.aggregate!r} is not allowed: use "
                '"majority", "first", "best", a registered name, or a callable taking the list'
            )
        threshold = self.verify_threshold
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or not 0.0 <= threshold <= 1.0
        ):
            raise ValueError(
                f"Task {self.name!r}: verify_threshold={threshold!r} is not allowed: "
                "use a number from 0 to 1"
            )
        if self.check_errors not in CHECK_ERRORS:
            raise ValueError(
                f"Task {self.name!r}: check_errors={self.check_errors!r} is not allowed: use "
                '"error" (an exception in the checks is an error) or "incorrect" (a wrong answer)'
            )

    def has(self, role: str) -> bool:
        """Whether the task provides ``role`` (``propose`` and ``aggregate`` always do)."""
        if role == "steps":
            return bool(self.steps)
        return getattr(self, role, None) is not None

    def as_verdict(self, value: Any) -> Verdict:
        """Normalise what ``verify`` returned into a :class:`Verdict`."""
        if isinstance(value, Verdict):
            return value
        if isinstance(value, bool):
            return Verdict(ok=value)
        if isinstance(value, (int, float)):
            score = float(value)
            if not 0.0 <= score <= 1.0:
                raise ValueError(
                    f"Task {self.name!r}: verify returned {value!r}; a score must be in [0, 1]"
                )
            return Verdict(ok=score >= self.verify_threshold, score=score)
        raise TypeError(
            f"Task {self.name!r}: verify returned {type(value).__name__}; "
            "allowed: bool, a float in [0, 1], or Verdict(ok, feedback)"
        )
