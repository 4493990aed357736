"""The data that crosses modules: call addresses, call records, repetitions and items.

Everything here is a small frozen dataclass with ``to_dict``/``from_dict``, so results can
travel between xdist workers and the controller and into the JSON report from one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["correct", "incorrect", "scored", "error"]

DURATION_DIGITS = 6
"""Seconds are kept to the microsecond: in cassettes, and in the live run's figures."""

JUDGE_ROLE = "judge"
"""The role of calls an LLM judge made from the test body: recorded and replayed like any call,
but not part of the task's cost, tokens, calls or latency (see ``Repetition.judge_cost``)."""


@dataclass(frozen=True, order=True)
class Address:
    """The logical place of one call: repetition, branch path, role and ordinal.

    The ordinal counts the calls one role made within one branch, in the order it made them.
    The same logical call has the same address on every run, whatever order concurrent
    branches reach the network in: cassettes, latency, cost and traces all hang on it.
    """

    repetition: int
    branch: tuple[str, ...]
    role: str
    ordinal: int

    @property
    def branch_text(self) -> str:
        """The branch path as text, ``main`` for the root branch."""
        return ".".join(self.branch) or "main"

    def __str__(self) -> str:
        return f"r{self.repetition}/{self.branch_text}/{self.role}#{self.ordinal}"

    @classmethod
    def parse(cls, text: str) -> Address:
        """Inverse of ``str(address)``."""
        rep, branch, rest = text.split("/", 2)
        role, ordinal = rest.rsplit("#", 1)
        path = () if branch == "main" else tuple(branch.split("."))
        return cls(int(rep[1:]), path, role, int(ordinal))


@dataclass(frozen=True)
class CallRecord:
    """One HTTP call a task made, attributed to its address, with what it cost and took."""

    address: Address
    method: str
    url: str
    status: int | None
    duration: float
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_write_tokens: int | None = None
    cache_read_tokens: int | None = None
    cost: float | None = None
    replayed: bool = False
    error: str | None = None
    prompt_hash: str | None = None
    """A digest of the canonical request body without its model (``sha256:`` + 16 hex), so two
    runs can tell a changed prompt from a changed model."""
    prompt: str | None = None
    """An excerpt of the prompt (the last message's text), scrubbed and cut short."""
    response: str | None = None
    """An excerpt of the response (the generated text, or the error body), scrubbed and cut."""

    @property
    def tokens(self) -> int | None:
        """All tokens of the call, or None when its usage is unknown."""
        parts = (
            self.input_tokens,
            self.output_tokens,
            self.cache_write_tokens,
            self.cache_read_tokens,
        )
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return sum(p or 0 for p in parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": str(self.address),
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "duration": self.duration,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cost": self.cost,
            "replayed": self.replayed,
            "error": self.error,
            "prompt_hash": self.prompt_hash,
            "prompt": self.prompt,
            "response": self.response,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallRecord:
        values = dict(data)
        values["address"] = Address.parse(values["address"])
        return cls(**values)


@dataclass(frozen=True)
class VerifyRecord:
    """One ``verify`` call of a pattern (hybrid, loop, the ``best`` aggregator): where it ran
    and what it said."""

    branch: str
    ok: bool
    score: float | None = None
    feedback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "branch": self.branch,
            "ok": self.ok,
            "score": self.score,
            "feedback": self.feedback,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerifyRecord:
        return cls(**data)


@dataclass(frozen=True)
class Repetition:
    """One call of the test body: its outcome, latency and the calls it made.

    The evidence a reader needs to diagnose it: ``output`` (the repr of what the last
    ``agent.run`` returned), ``message`` (the failed check's or the error's summary and where
    it was raised) and ``verdicts`` (every ``verify`` call, in branch order), all scrubbed of
    the item's secrets and cut to ``--patterns-evidence-chars``.
    """

    index: int
    outcome: Outcome
    latency: float
    score: float | None = None
    calls: tuple[CallRecord, ...] = ()
    error: str | None = None
    verified: bool | None = None
    output: str | None = None
    message: str | None = None
    verdicts: tuple[VerifyRecord, ...] = ()
    diagnostics: dict[str, Any] | None = None
    """What :mod:`.diagnostics` recorded of this repetition (ensemble sizes, escalation, loop
    iterations), JSON-safe; None for patterns it does not look at."""

    @property
    def task_calls(self) -> tuple[CallRecord, ...]:
        """The calls the task and the test body made: every call but the judge's."""
        return tuple(c for c in self.calls if c.address.role != JUDGE_ROLE)

    @property
    def judge_calls(self) -> tuple[CallRecord, ...]:
        """The calls an LLM judge made from the test body (role ``judge``)."""
        return tuple(c for c in self.calls if c.address.role == JUDGE_ROLE)

    @property
    def accuracy(self) -> float | None:
        """1/0 for pass/fail, the score when graded, None for an error."""
        if self.outcome == "error":
            return None
        if self.outcome == "scored":
            return self.score
        return 1.0 if self.outcome == "correct" else 0.0

    @property
    def cost(self) -> float | None:
        """Total cost of the task's calls (judge calls apart); None when any is unknown."""
        return _total_cost(self.task_calls)

    @property
    def judge_cost(self) -> float | None:
        """Total cost of the judge's calls (0 without any); None when any is unknown."""
        return _total_cost(self.judge_calls)

    @property
    def tokens(self) -> int | None:
        """Total tokens of the task's calls; None when any call's usage is unknown."""
        tokens = [c.tokens for c in self.task_calls]
        if any(t is None for t in tokens):
            return None
        return sum(t for t in tokens if t is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "outcome": self.outcome,
            "latency": self.latency,
            "score": self.score,
            "error": self.error,
            "verified": self.verified,
            "output": self.output,
            "message": self.message,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "calls": [c.to_dict() for c in self.calls],
            "diagnostics": self.diagnostics,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Repetition:
        values = dict(data)
        values["calls"] = tuple(CallRecord.from_dict(c) for c in values.get("calls", ()))
        values["verdicts"] = tuple(VerifyRecord.from_dict(v) for v in values.get("verdicts", ()))
        return cls(**values)


def _total_cost(calls: tuple[CallRecord, ...]) -> float | None:
    costs = [c.cost for c in calls]
    if any(c is None for c in costs):
        return None
    return float(sum(c for c in costs if c is not None))


@dataclass(frozen=True)
class ItemResult:
    """All repetitions of one (test, case, pattern) item."""

    nodeid: str
    test: str
    case: str
    pattern: str
    repetitions: tuple[Repetition, ...]
    baseline_pattern: str = "single"
    skipped: str | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    stopped: str | None = None
    """Why the item stopped early (budget or call cap spent), in one line; None when not."""
    cassette_error: str | None = None
    """Why the item's cassette was not written (nothing was); None when it was."""
    adaptive: dict[str, Any] | None = None
    """An adaptive run's test-level outcome (:func:`.rounds.summary`): the item's
    repetitions per round, why the test stopped, the levels its comparisons were judged at;
    None when the test ran a fixed number of repetitions."""

    @property
    def n(self) -> int:
        return len(self.repetitions)

    @property
    def errors(self) -> int:
        return sum(1 for r in self.repetitions if r.outcome == "error")

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "test": self.test,
            "case": self.case,
            "pattern": self.pattern,
            "baseline_pattern": self.baseline_pattern,
            "skipped": self.skipped,
            "thresholds": dict(self.thresholds),
            "stopped": self.stopped,
            "cassette_error": self.cassette_error,
            "repetitions": [r.to_dict() for r in self.repetitions],
            **({"adaptive": self.adaptive} if self.adaptive is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemResult:
        values = dict(data)
        values["repetitions"] = tuple(Repetition.from_dict(r) for r in values["repetitions"])
        return cls(**values)
