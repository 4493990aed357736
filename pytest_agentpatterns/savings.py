"""What an adaptive run spent, and what it saved against a fixed run at its maximum.

A fixed run would give every item ``max_repeat`` repetitions; each item's calls and
dollars per repetition, as measured, price the repetitions the adaptive run did not make.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from .records import ItemResult, Repetition

STOPS = {
    "decided": "every comparison decided",
    "precise": "every interval narrow enough",
    "budget": "its share of the budget spent",
    "max": "the maximum reached",
    "recorded": "where the recording stopped",
}
"""Why an adaptive test stopped, in words."""


@dataclass(frozen=True)
class Savings:
    """One adaptive test's repetitions, calls and dollars, used and against a fixed run."""

    looks: int
    stop: str | None
    max_repeat: int
    repetitions: int
    fixed_repetitions: int
    calls: int
    fixed_calls: int
    cost: float | None
    fixed_cost: float | None

    @property
    def saved_calls(self) -> int:
        return self.fixed_calls - self.calls

    @property
    def saved_cost(self) -> float | None:
        if self.cost is None or self.fixed_cost is None:
            return None
        return self.fixed_cost - self.cost

    @property
    def reason(self) -> str:
        return STOPS.get(self.stop or "", self.stop or "not stopped")


def of(items: Iterable[ItemResult]) -> Savings | None:
    """The test's savings, when its items ran adaptively (else None)."""
    ran = [i for i in items if i.adaptive is not None and i.skipped is None]
    if not ran:
        return None
    info = ran[0].adaptive or {}
    max_repeat = int(info["max_repeat"])
    calls = fixed_calls = 0
    cost: float | None = 0.0
    fixed_cost: float | None = 0.0
    for item in ran:
        reps = item.repetitions
        n_calls = sum(len(r.calls) for r in reps)
        calls += n_calls
        fixed_calls += round(n_calls / len(reps) * max_repeat) if reps else 0
        dollars = [_dollars(r) for r in reps]
        if cost is None or fixed_cost is None or any(d is None for d in dollars):
            cost = fixed_cost = None
            continue
        spent = sum(d for d in dollars if d is not None)
        cost += spent
        fixed_cost += spent / len(reps) * max_repeat if reps else 0.0
    return Savings(
        looks=int(info.get("looks", 0)),
        stop=info.get("stop"),
        max_repeat=max_repeat,
        repetitions=sum(i.n for i in ran),
        fixed_repetitions=max_repeat * len(ran),
        calls=calls,
        fixed_calls=max(fixed_calls, calls),
        cost=cost,
        fixed_cost=fixed_cost if fixed_cost is None or cost is None else max(fixed_cost, cost),
    )


def _dollars(rep: Repetition) -> float | None:
    task, judge = rep.cost, rep.judge_cost
    return None if task is None or judge is None else task + judge


def lines(s: Savings | None) -> list[str]:
    """The terminal's and Markdown's account of an adaptive test."""
    if s is None:
        return []
    share = s.saved_calls / s.fixed_calls if s.fixed_calls else 0.0
    dollars = ""
    if s.cost is not None and s.fixed_cost is not None and s.saved_cost is not None:
        dollars = f" and ${s.saved_cost:.2g}"
    return [
        f"adaptive: stopped after {s.looks} look{'s' if s.looks != 1 else ''} ({s.reason}); "
        f"{s.repetitions} of {s.fixed_repetitions} repetitions, {s.calls} calls"
        + (f" (${s.cost:.2g})" if s.cost is not None else "")
        + f"; against a fixed run at repeat={s.max_repeat} ({s.fixed_calls} calls"
        + (f", ${s.fixed_cost:.2g}" if s.fixed_cost is not None else "")
        + f"): {s.saved_calls} calls ({share:.0%}){dollars} saved"
    ]


def as_dict(s: Savings | None) -> dict[str, object] | None:
    """The JSON report's account (docs/report-schema.md)."""
    if s is None:
        return None
    return {
        **asdict(s),
        "reason": s.reason,
        "saved_calls": s.saved_calls,
        "saved_cost": s.saved_cost,
    }
