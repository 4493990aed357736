"""Under pytest-xdist, every item of a test function that runs patterns goes to one worker.

An adaptive test decides after each round from all its items (:mod:`.rounds`), so they
must run in one process; its other items are scheduled as ``--dist load`` schedules them.
Used in place of xdist's ``load`` scheduling (its default), through xdist's
``pytest_xdist_make_scheduler`` hook.
"""

from __future__ import annotations

from typing import Any

from xdist.scheduler import LoadScopeScheduling

from .patterns import Registry, SpecError


def scope(nodeid: str, registry: Registry) -> str:
    """The unit ``nodeid`` is scheduled in: its test function when its parameter id ends
    in a pattern id (an item the plugin parametrized), else the item itself."""
    test, bracket, params = nodeid.partition("[")
    if not bracket:
        return nodeid
    parts = params.rstrip("]").split("-")
    for start in range(len(parts)):
        suffix = "-".join(parts[start:])
        try:
            if registry.parse_one(suffix).id == suffix:
                return test
        except SpecError:
            continue
    return nodeid


class TestScheduling(LoadScopeScheduling):  # type: ignore[misc]
    """xdist's scope scheduling with a test function of pattern items as the scope."""

    def __init__(self, config: Any, log: Any, registry: Registry) -> None:
        super().__init__(config, log)
        self._registry = registry

    def _split_scope(self, nodeid: str) -> str:
        return scope(nodeid, self._registry)
