"""Adaptive runs under pytest: a test's items run their repetitions in rounds.

After each round the test's comparisons are looked at (:func:`.adaptive.decide`), and the
next round gives more repetitions to the cases still open, or the test stops. Stopping is
decided per test, never per item, so every item of a test is held here until the test
stops; pytest then hears of each item once, with all its repetitions.

A round of an item is one pytest run of it (set-up, call, teardown), as
pytest-rerunfailures runs an item again; the last run's reports are the item's. Each item
keeps its repetitions per round in its cassette, so a replay runs exactly the rounds the
recording ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from _pytest.nodes import Node
from _pytest.runner import CallInfo, call_and_report

from .records import ItemResult, Repetition

if TYPE_CHECKING:
    from . import adaptive


@dataclass(frozen=True)
class ItemRun:
    """What one run of an item does: which round, and the repetitions before it."""

    round: int
    count: int
    earlier: tuple[Repetition, ...] = ()

    @property
    def first(self) -> int:
        return len(self.earlier)


RUN = pytest.StashKey[ItemRun]()
"""On an adaptive item while it runs: this run's round."""


@dataclass
class Group:
    """One adaptive test: its items (in run order), their results so far, the looks."""

    test: str
    items: list[pytest.Item]
    settings: adaptive.Settings
    baseline: str
    share: float | None = None
    """Dollars this test may spend (its share of --patterns-budget); None: no budget."""
    seed: int = 0
    results: dict[str, ItemResult] = field(default_factory=dict)
    schedule: dict[str, list[int]] = field(default_factory=dict)
    recorded: dict[str, list[int] | None] = field(default_factory=dict)
    live: dict[str, bool] = field(default_factory=dict)
    decisions: list[adaptive.Decision] = field(default_factory=list)
    held: dict[str, list[pytest.TestReport]] = field(default_factory=dict)
    stop: str | None = None
    budget_stopped: bool = False
    started: bool = False

    # What an item's run asks (pytest_pyfunc_call, inside its cassette).

    def count(self, item: pytest.Item, recorded: list[int] | None) -> ItemRun:
        """This run's round of ``item``; the first round's size comes from the recording
        when the cassette replays one."""
        run = item.stash.get(RUN, None)
        if run is not None and run.round > 0:
            return run
        self.recorded[item.nodeid] = recorded
        return ItemRun(0, recorded[0] if recorded else self.settings.first_round)

    def rounds_of(self, item: pytest.Item, run: ItemRun) -> list[int]:
        """The item's repetitions per round once this run is done (for its cassette)."""
        rounds = list(self.schedule.get(item.nodeid, []))
        rounds += [0] * (run.round - len(rounds))
        return [*rounds, run.count]

    def ran(self, item: pytest.Item, run: ItemRun, result: ItemResult, live: bool) -> None:
        """Keep what a run of ``item`` gave."""
        self.schedule[item.nodeid] = self.rounds_of(item, run)
        self.results[item.nodeid] = result
        if run.round == 0:
            self.live[item.nodeid] = live
        if result.stopped is not None:
            self.budget_stopped = True

    def record_mode(self, item: pytest.Item, mode: str) -> str:
        """The record mode of a later round: one that recorded its first round adds to the
        cassette (``once`` would replay only, ``rewrite`` would drop the first rounds)."""
        run = item.stash.get(RUN, None)
        if run is None or run.round == 0 or not self.live.get(item.nodeid):
            return mode
        return "new_episodes" if mode in ("once", "rewrite") else mode

    # The rounds.

    def after_round(self) -> list[tuple[pytest.Item, ItemRun]]:
        """Look at the test and plan the next round: its runs, none when the test stops."""
        from .adaptive import decide

        if not any(not self._skipped(i) for i in self.items):
            self.stop = "max"
            return []
        decision = decide(
            self._scores(),
            self.baseline,
            self.decisions,
            self.settings,
            budget_spent=self._spent(),
            seed=self.seed,
        )
        self.decisions.append(decision)
        counts = self._next_counts(decision)
        if self.stop is not None:
            return []
        round_ = len(self.decisions)
        return [
            (item, ItemRun(round_, counts[item.nodeid], self._earlier(item)))
            for item in self.items
            if counts.get(item.nodeid, 0) > 0
        ]

    def _next_counts(self, decision: adaptive.Decision) -> dict[str, int]:
        round_ = len(self.decisions)
        runnable = [i for i in self.items if i.nodeid in self.results and not self._skipped(i)]
        if runnable and all(self.recorded.get(i.nodeid) for i in runnable):
            counts = {}
            for item in runnable:
                rounds = self.recorded[item.nodeid] or []
                counts[item.nodeid] = rounds[round_] if round_ < len(rounds) else 0
            if not any(counts.values()):
                self.stop = decision.stop or "recorded"
            return counts
        if decision.stop is not None:
            self.stop = decision.stop
            return {}
        counts = {item.nodeid: decision.allocation.get(self._case(item), 0) for item in runnable}
        if not any(counts.values()):
            self.stop = "max"
        return counts

    def runs(self) -> Iterator[tuple[pytest.Item, ItemRun]]:
        """Every run of the test's items: each item's first round, then the rounds the
        looks ask for, until the test stops."""
        for item in self.items:
            yield item, ItemRun(0, 0)
        while runs := self.after_round():
            yield from runs

    def _earlier(self, item: pytest.Item) -> tuple[Repetition, ...]:
        return self.results[item.nodeid].repetitions

    def _skipped(self, item: pytest.Item) -> bool:
        result = self.results.get(item.nodeid)
        return result is None or result.skipped is not None

    def _case(self, item: pytest.Item) -> str:
        result = self.results[item.nodeid]
        return result.case

    def _scores(self) -> dict[str, dict[str, list[float]]]:
        from .analysis import by_case

        by_pattern: dict[str, list[ItemResult]] = {}
        for result in self.results.values():
            if result.skipped is None:
                by_pattern.setdefault(result.pattern, []).append(result)
        return {
            pattern: {
                case: [v for v in values if v is not None]  # none are: errors are left out
                for case, values in by_case(items, "accuracy").items()
            }
            for pattern, items in by_pattern.items()
        }

    def _spent(self) -> bool:
        if self.budget_stopped:
            return True
        if self.share is None:
            return False
        cost = sum(r.cost or 0.0 for res in self.results.values() for r in res.repetitions)
        return cost >= self.share

    def summary_levels(self) -> dict[str, float]:
        """Each comparison's level in the report: that of the last look that added
        information to it (a look that added none has level 0 and spends nothing; no
        verdict could be reported there)."""
        from .adaptive import final_levels

        levels: dict[str, float] = {}
        for decision in self.decisions:
            levels.update((p, x) for p, x in final_levels(decision).items() if x > 0)
        return levels

    def summary(self, item: pytest.Item) -> dict[str, Any]:
        """What the report keeps of the run, on each of the test's items."""
        return {
            "rounds": self.schedule.get(item.nodeid, []),
            "max_repeat": self.settings.max_repeat,
            "looks": len(self.decisions),
            "stop": self.stop,
            "levels": self.summary_levels(),
        }


def run_once(
    item: pytest.Item, following: Callable[[], pytest.Item | Node | None]
) -> list[pytest.TestReport]:
    """One pytest run of ``item`` (set-up, call, teardown towards ``following()``, asked
    once the call is over) without logging, as ``_pytest.runner.runtestprotocol``."""
    has_request = hasattr(item, "_request")
    if has_request and not item._request:  # type: ignore[attr-defined]
        item._initrequest()  # type: ignore[attr-defined]
    reports = [call_and_report(item, "setup", log=False)]
    if reports[0].passed and not item.config.getoption("setuponly", False):
        reports.append(call_and_report(item, "call", log=False))
    after = following()
    if item.session.shouldfail or item.session.shouldstop:
        after = None
    reports.append(call_and_report(item, "teardown", log=False, nextitem=after))
    if has_request:
        item._request = False  # type: ignore[attr-defined]
        item.funcargs = None  # type: ignore[attr-defined]
    return reports


def protocol(group: Group, item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """pytest's run of one item of an adaptive test.

    The test's first item runs every round of every item (each run torn down to the
    items' common parent, the last one towards ``nextitem``); each item then logs its own
    reports when pytest comes to it (xdist expects an item's reports during its run),
    and tears down towards its ``nextitem`` as a run would.
    """
    if not group.started:
        group.started = True
        _run_all(group, nextitem)
    else:
        teardown = _tear_down(item, nextitem)
        if teardown is not None:
            held = group.held.get(item.nodeid, [])
            group.held[item.nodeid] = [r for r in held if r.when != "teardown"] + [teardown]
    reports = group.held.pop(item.nodeid, [])
    _stamp(reports, group.summary(item))
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)


def _tear_down(item: pytest.Item, nextitem: pytest.Item | None) -> pytest.TestReport | None:
    """Tear down what ``nextitem`` does not need, as the teardown of an item that ran here
    would; a failed report when a finalizer raised, else None. (Not the teardown hooks:
    the item was not set up in this call, and plugins' teardown hooks expect it was.)"""
    state = item.session._setupstate
    call = CallInfo.from_call(lambda: state.teardown_exact(nextitem), when="teardown")
    if call.excinfo is None:
        return None
    return item.ihook.pytest_runtest_makereport(item=item, call=call)  # type: ignore[no-any-return]


def _run_all(group: Group, nextitem: pytest.Item | None) -> None:
    runs = group.runs()
    step = next(runs, None)
    while step is not None:
        current, run = step

        def following(current: pytest.Item = current) -> pytest.Item | Node | None:
            # Asked once the run's call is over: the round is then complete, so the test
            # can be looked at before the teardown is told what comes next.
            nonlocal step
            step = next(runs, None)
            if step is None and nextitem is not current:
                return nextitem
            return current.parent

        current.stash[RUN] = run
        try:
            group.held[current.nodeid] = run_once(current, following)
        finally:
            del current.stash[RUN]


def _stamp(reports: Sequence[pytest.TestReport], summary: dict[str, Any]) -> None:
    """Put the test's adaptive outcome on the item's result, now that it is known."""
    from .plugin import PROPERTY

    for report in reports:
        report.user_properties = [
            (name, {**value, "adaptive": summary})
            if name == PROPERTY and isinstance(value, dict)
            else (name, value)
            for name, value in report.user_properties
        ]
