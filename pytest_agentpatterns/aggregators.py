"""Combining parallel outputs: votes, ``majority``, ``first`` and ``best``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .execution import Flow

Aggregator = Callable[["Flow", list[Any]], Awaitable[Any]]


def vote_key(output: Any) -> Hashable:
    """A key under which equal outputs collect their votes, hashable or not."""
    if isinstance(output, Hashable):
        try:
            hash(output)
            return ("value", output)
        except TypeError:
            pass
    return ("json", json.dumps(output, sort_keys=True, default=repr))


def rank_by_votes(outputs: list[Any]) -> list[list[Any]]:
    """Group equal outputs, most votes first; ties keep branch order of first appearance."""
    if not outputs:
        raise ValueError("cannot rank an empty list of outputs")
    groups: dict[Hashable, list[Any]] = {}
    for output in outputs:
        groups.setdefault(vote_key(output), []).append(output)
    return sorted(groups.values(), key=len, reverse=True)


async def majority(flow: Flow, outputs: list[Any]) -> Any:
    """The most common output; a tie goes to the one seen first in branch order."""
    return rank_by_votes(outputs)[0][0]


async def first(flow: Flow, outputs: list[Any]) -> Any:
    """The output of branch 0."""
    return outputs[0]


async def best(flow: Flow, outputs: list[Any]) -> Any:
    """The output ``verify`` scores highest (verified concurrently, ties to branch order)."""
    verdicts = await flow.fork("best", len(outputs), lambda i: flow.verify(outputs[i]))
    scores = [v.value for v in verdicts]
    return outputs[scores.index(max(scores))]


BUILTIN_AGGREGATORS: dict[str, Aggregator] = {
    "majority": majority,
    "first": first,
    "best": best,
}
