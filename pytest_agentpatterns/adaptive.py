"""Adaptive runs: repetitions in rounds, and each test stopped once its answer is known.

An adaptive test (``repeat="auto"`` in the marker, or ``--patterns-adaptive``) runs its
items a round at a time. After each round it looks at its comparisons with the levels of
:mod:`.sequential` (valid however often it looks) and stops when

- every comparison against the baseline is decided (``decided``),
- every undecided comparison's interval is within ``±precision`` (``precise enough``),
- its share of ``--patterns-budget`` would be spent by the next round (``budget``),
- the last planned look is reached or every case that still varies has ``max_repeat``
  repetitions (``max reached``), or
- no case's outcomes vary at all (``settled``).

Stopping is decided per test, never per item on its own outcomes. Extra repetitions go to
the cases whose outcomes still vary, where they shrink the comparisons' noise most
(Neyman allocation); a case every pattern got always right, or always wrong, gets none. The
rule looks at a case's outcomes under all patterns together, never at which pattern had
which, so the randomization tests stay exact.

In pytest, the rounds run when the test's last item comes up: each round runs the items
due for repetitions through pytest's own setup, call and teardown (so fixtures behave), and
the items are reported once, with all their repetitions, after the test stopped. The rounds
and the reason are kept in each item's cassette, and a replay follows them, so it makes
exactly the calls the recording made.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import sequential
from .records import ItemResult, Repetition

if TYPE_CHECKING:
    import pytest

    from .family import Family
    from .runner import ItemPlan

DEFAULT_MAX_REPEAT = 10
"""The most repetitions per item of a ``repeat="auto"`` test that sets no ``max_repeat``."""

REASONS = ("decided", "precise enough", "budget", "max reached", "settled")
"""Why an adaptive test stopped."""

PROPERTY = "agentpatterns"
"""The user property results travel under (as in plugin.py)."""


@dataclass(frozen=True)
class Spec:
    """How one test runs adaptively: at most ``max_repeat`` repetitions per item, in
    ``looks`` rounds, stopping early once comparisons are decided (or within
    ``±precision``)."""

    max_repeat: int
    looks: int
    precision: float | None = None

    @property
    def rounds(self) -> tuple[int, ...]:
        """Repetitions per case after each look when every case gets its even share."""
        return sequential.schedule(self.max_repeat, self.looks)


def spec(max_repeat: int, precision: float | None = None) -> Spec:
    """The adaptive settings for a test with at most ``max_repeat`` repetitions."""
    return Spec(max_repeat, sequential.default_looks(max_repeat), precision)


# --- the decision after each look -----------------------------------------------------------


@dataclass(frozen=True)
class Look:
    """What one look decided: stop (and why), or how many repetitions each case gets next."""

    look: int
    family: Family | None
    stopped: str | None
    allocation: Mapping[str, int] = field(default_factory=dict)


def look_family(
    items: Sequence[ItemResult], look: int, looks: int, *, alpha: float, seed: int = 0
) -> Family | None:
    """The test's comparisons at this look, each at the level the look has (sequential.py),
    with their intervals: what a run stopped here reports. ``items`` carry their looks."""
    from .family import compare

    chosen = sequential.levels(items, look, looks, alpha=alpha, seed=seed)
    if chosen is None:
        return None
    now = [i for i in sequential.at_look(items, look) if i.skipped is None]
    accuracy = sequential.scores(now)
    alpha_used = max(chosen.family_alpha, sequential.UNREACHABLE)
    return compare(now[0].test, now[0].baseline_pattern, accuracy, alpha=alpha_used, seed=seed)


def look_verdicts(
    items: Sequence[ItemResult], look: int, looks: int, *, alpha: float, seed: int = 0
) -> list[bool]:
    """Whether each comparison is decided at this look: the tests of :func:`look_family`
    without their intervals (a test rejects exactly when its interval excludes 0)."""
    from .family import units

    chosen = sequential.levels(items, look, looks, alpha=alpha, seed=seed)
    if chosen is None:
        return []
    now = [i for i in sequential.at_look(items, look) if i.skipped is None]
    accuracy = sequential.scores(now)
    baseline = now[0].baseline_pattern
    level = chosen.comparison_level
    out = []
    for pattern, cases in accuracy.items():
        if pattern == baseline or not any(cases.values()):
            continue
        result = units(accuracy[baseline], cases).test(seed).result()
        out.append(level > 0 and result.min_p <= level and result.p <= level)
    return out


def decide(
    spec: Spec,
    look: int,
    items: Sequence[ItemResult],
    reps: Mapping[str, int],
    *,
    alpha: float,
    seed: int = 0,
    share: float | None = None,
    refused: bool = False,
) -> Look:
    """Stop the test after ``look`` (and why), or allocate the next round.

    ``reps``: each case's repetitions so far; ``share``: the dollars this test may spend
    live (None: no budget); ``refused``: the run's budget refused a call this round.
    """
    fam = None
    if spec.precision is None:
        decided = look_verdicts(items, look, spec.looks, alpha=alpha, seed=seed)
    else:
        fam = look_family(items, look, spec.looks, alpha=alpha, seed=seed)
        tested = [c for c in fam.comparisons if c.verdict != "not compared"] if fam else []
        decided = [c.significant for c in tested]
        precise = all(
            c.significant or (c.interval is not None and c.interval.half_width <= spec.precision)
            for c in tested
        )
        if tested and precise and not all(decided):
            return Look(look, fam, "precise enough")
    if decided and all(decided):
        return Look(look, fam, "decided")
    if refused:
        return Look(look, fam, "budget")
    if look >= spec.looks:
        return Look(look, fam, "max reached")
    rounds = spec.rounds
    batch = (rounds[look] - rounds[look - 1]) * len(reps)
    spread = variances(items)
    allocation = allocate(spread, reps, batch, spec.max_repeat)
    if not allocation:
        return Look(look, fam, "max reached" if any(spread.values()) else "settled")
    if share is not None:
        spent, per_case = spending(items, reps)
        if spent + sum(n * per_case.get(c, 0.0) for c, n in allocation.items()) > share:
            return Look(look, fam, "budget")
    return Look(look, fam, None, allocation)


def simulate(
    spec: Spec,
    cases: Sequence[str],
    patterns: Sequence[str],
    draw: Callable[[str, str, int], float],
    *,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[list[ItemResult], Look]:
    """One adaptive test on a scoring function instead of pytest items: the rounds, the
    allocation and the stopping rule of a real run. ``draw(pattern, case, repetition)`` is
    that repetition's score; the first pattern is the baseline. Returns the items (each
    with its ``adaptive`` record, as a run reports them) and the last look."""
    scored: dict[tuple[str, str], list[float]] = {(p, c): [] for p in patterns for c in cases}
    targets = dict.fromkeys(cases, spec.rounds[0])
    looks: dict[str, list[int]] = {c: [] for c in cases}
    look = 0
    while True:
        look += 1
        for (pattern, case), values in scored.items():
            values.extend(draw(pattern, case, i) for i in range(len(values), targets[case]))
        for case in cases:
            looks[case].append(targets[case])
        items = [
            _simulated(pattern, case, values, patterns[0], looks[case])
            for (pattern, case), values in scored.items()
        ]
        decision = decide(spec, look, items, targets, alpha=alpha, seed=seed)
        if decision.stopped is not None:
            break
        for case, extra in decision.allocation.items():
            targets[case] += extra
    info = {"max_repeat": spec.max_repeat, "planned_looks": spec.looks, "stopped": decision.stopped}
    return [replace(i, adaptive={**info, "looks": list(looks[i.case])}) for i in items], decision


def _simulated(
    pattern: str, case: str, values: Sequence[float], baseline: str, looks: Sequence[int]
) -> ItemResult:
    reps = tuple(
        Repetition(
            i,
            "correct" if v == 1 else "incorrect" if v == 0 else "scored",
            0.0,
            score=None if v in (0, 1) else v,
        )
        for i, v in enumerate(values)
    )
    return ItemResult(
        f"sim::t[{case}-{pattern}]",
        "sim::t",
        case,
        pattern,
        reps,
        baseline,
        adaptive={"looks": list(looks)},
    )


def variances(items: Iterable[ItemResult]) -> dict[str, float]:
    """Per case, how much its outcomes still vary: the variance of each pattern's scores on
    it, summed over patterns (0 when every pattern was always right or always wrong).

    A sum over patterns does not change when two patterns' outcomes are swapped, so the
    allocation it drives leaves the randomization tests exact.
    """
    out: dict[str, float] = {}
    for pattern_cases in sequential.scores(items).values():
        for case, values in pattern_cases.items():
            n = len(values)
            mean = sum(values) / n if n else 0.0
            var = sum((v - mean) ** 2 for v in values) / n if n else 0.0
            out[case] = out.get(case, 0.0) + var
    return out


def allocate(
    spread: Mapping[str, float], reps: Mapping[str, int], batch: int, cap: int
) -> dict[str, int]:
    """Give ``batch`` repetitions to cases, one at a time to the case where one more most
    reduces the variance of the mean of case means (``σ²/n - σ²/(n+1)``): Neyman's
    allocation in whole repetitions. No case goes above ``cap``; a case that does not vary
    gets none. Ties go to the case first in sorted order."""
    heap: list[tuple[float, str]] = []
    for case in sorted(reps):
        n, var = reps[case], spread.get(case, 0.0)
        if var > 0 and n < cap:
            heap.append((-var / (max(n, 1) * (n + 1)), case))
    heapq.heapify(heap)
    given: dict[str, int] = {}
    for _ in range(batch):
        if not heap:
            break
        _, case = heapq.heappop(heap)
        given[case] = given.get(case, 0) + 1
        n = reps[case] + given[case]
        if n < cap:
            heapq.heappush(heap, (-spread[case] / (n * (n + 1)), case))
    return given


def spending(
    items: Iterable[ItemResult], reps: Mapping[str, int]
) -> tuple[float, dict[str, float]]:
    """Dollars this test spent on live calls, and what one more repetition of each case
    costs (every pattern's item of the case, at its average so far)."""
    spent = 0.0
    per_case: dict[str, float] = {}
    for item in items:
        for rep in item.repetitions:
            spent += sum(c.cost or 0.0 for c in rep.calls if not c.replayed)
        if item.repetitions:
            cost = sum(r.cost or 0.0 for r in item.repetitions) / len(item.repetitions)
            per_case[item.case] = per_case.get(item.case, 0.0) + cost
    return spent, per_case


# --- what an adaptive test saved ---------------------------------------------------------------


@dataclass(frozen=True)
class Saving:
    """An adaptive test's use of repetitions and what it saved.

    ``fixed_repeat`` is the repetitions per item of the fixed run with about the same power
    (planning.equivalent_repeat), ``fixed_calls``/``fixed_cost`` what that run would cost;
    ``saved_calls``/``saved_cost`` the difference (negative when the adaptive run cost more,
    as when it went to its maximum).
    """

    test: str
    stopped: str
    looks: int
    planned_looks: int
    max_repeat: int
    repetitions: int
    repetitions_per_case: float
    calls: int
    cost: float | None
    fixed_repeat: int
    fixed_calls: float
    fixed_cost: float | None
    items: int = 0
    replayed_schedule: bool = False
    level: float | None = None
    """The level each comparison was tested at, at the last look (None: none compared)."""

    @property
    def saved_calls(self) -> float:
        return self.fixed_calls - self.calls

    @property
    def saved_cost(self) -> float | None:
        if self.cost is None or self.fixed_cost is None:
            return None
        return self.fixed_cost - self.cost

    @property
    def fixed_repetitions(self) -> int:
        """Repetitions (item runs) of the fixed run with the same power."""
        return self.fixed_repeat * self.items

    @property
    def saved_share(self) -> float | None:
        """Calls saved as a share of the fixed run's (repetitions, when no call was made)."""
        if self.fixed_calls:
            return self.saved_calls / self.fixed_calls
        if self.fixed_repetitions:
            return 1 - self.repetitions / self.fixed_repetitions
        return None


def saving(items: Sequence[ItemResult], *, alpha: float) -> Saving | None:
    """What one test's adaptive run used and saved; None when it did not run adaptively."""
    from . import planning

    live = [i for i in items if i.adaptive and i.skipped is None]
    if not live:
        return None
    info = live[0].adaptive or {}
    max_repeat = int(info.get("max_repeat", 1))
    planned = int(info.get("planned_looks", 1))
    looks = max(len(i.adaptive.get("looks", ())) for i in live if i.adaptive)
    accuracy = sequential.scores(live)
    baseline = live[0].baseline_pattern
    m = sequential.compared(accuracy, baseline)
    cases = sorted({i.case for i in live})
    fixed = max_repeat
    final: float | None = None
    if m:
        level = alpha / m
        # The design's power at its maximum: every repetition, the last planned look's level.
        final = sequential.design_level(planned, level)
        measured = [
            parts
            for p in accuracy
            if p != baseline
            for parts in [planning.components(accuracy[baseline], accuracy[p])]
            if parts is not None
        ]
        if measured:
            parts = max(measured, key=lambda c: c.variance(max_repeat))
            fixed = planning.equivalent_repeat(parts, len(cases), max_repeat, level, final)
    calls = sum(len(r.calls) for i in live for r in i.repetitions)
    costs = [r.cost for i in live for r in i.repetitions]
    cost = None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)
    fixed_calls = 0.0
    fixed_cost: float | None = 0.0
    for item in live:
        n = len(item.repetitions)
        if not n:
            continue
        fixed_calls += fixed * sum(len(r.calls) for r in item.repetitions) / n
        item_costs = [r.cost for r in item.repetitions]
        if fixed_cost is not None and all(c is not None for c in item_costs):
            fixed_cost += fixed * sum(c or 0.0 for c in item_costs) / n
        else:
            fixed_cost = None
    per_case: dict[str, int] = {}
    for item in live:
        per_case[item.case] = max(per_case.get(item.case, 0), len(item.repetitions))
    return Saving(
        test=live[0].test,
        stopped=str(info.get("stopped") or "max reached"),
        looks=looks,
        planned_looks=planned,
        max_repeat=max_repeat,
        repetitions=sum(len(i.repetitions) for i in live),
        repetitions_per_case=sum(per_case.values()) / len(per_case) if per_case else 0.0,
        calls=calls,
        cost=cost,
        fixed_repeat=fixed,
        fixed_calls=fixed_calls,
        fixed_cost=fixed_cost,
        items=sum(1 for i in live if i.repetitions),
        replayed_schedule=bool(info.get("replayed_schedule")),
        level=final,
    )


def saving_line(s: Saving) -> str:
    """One sentence for the terminal and Markdown: what was used, why it stopped, what it
    saved against the fixed run with the same power."""
    share = s.saved_share
    more = share is not None and share < 0
    change = "" if share is None else f"{abs(share):.0%} {'more' if more else 'fewer'} "
    if s.fixed_calls:
        used = f"{s.calls:,} calls, {change}than"
        fixed = f"{s.fixed_repeat} repetitions per item, about {s.fixed_calls:,.0f} calls"
    else:
        used = f"{s.repetitions:,} runs, {change}than"
        fixed = f"{s.fixed_repeat} repetitions per item, {s.fixed_repetitions:,} runs"
    money = ""
    if s.saved_cost is not None and s.fixed_calls:
        word = "spent beyond it" if s.saved_cost < 0 else "saved"
        money = f"; ${abs(s.saved_cost):.4g} {word}"
    return (
        f"adaptive: stopped at look {s.looks} of {s.planned_looks} ({s.stopped}) with "
        f"{s.repetitions_per_case:.1f} repetitions per case (at most {s.max_repeat}): {used} "
        f"the fixed run with the same power ({fixed}){money}"
    )


def as_dict(s: Saving) -> dict[str, Any]:
    """JSON-safe data for the report."""
    return {
        "stopped": s.stopped,
        "looks": s.looks,
        "planned_looks": s.planned_looks,
        "max_repeat": s.max_repeat,
        "repetitions": s.repetitions,
        "repetitions_per_case": s.repetitions_per_case,
        "calls": s.calls,
        "cost": s.cost,
        "fixed_repeat": s.fixed_repeat,
        "fixed_repetitions": s.fixed_repetitions,
        "fixed_calls": s.fixed_calls,
        "fixed_cost": s.fixed_cost,
        "saved_calls": s.saved_calls,
        "saved_cost": s.saved_cost,
        "saved_share": s.saved_share,
        "replayed_schedule": s.replayed_schedule,
        "level": s.level,
    }


# --- pytest: the rounds ----------------------------------------------------------------------


def continued(mode: str, recorded_now: bool) -> str:
    """The record mode of an item's later rounds: what its first round recorded is kept
    (``once`` and ``rewrite`` would replay-only or discard it)."""
    if mode == "rewrite":
        return "all"
    if mode == "once" and recorded_now:
        return "new_episodes"
    return mode


@dataclass
class _Item:
    """One item of an adaptive test, across its rounds."""

    item: pytest.Item
    plan: ItemPlan
    reps: list[Repetition] = field(default_factory=list)
    looks: list[int] = field(default_factory=list)
    target: int = 0
    running: tuple[int, int] | None = None
    final: bool = False
    done: bool = False
    mode: str = "none"
    fresh: bool = False
    skipped: str | None = None
    stopped: str | None = None
    failure: str | None = None
    cassette_error: str | None = None
    recorded: Any = None
    path: Path | None = None

    def result(self, adaptive: dict[str, Any] | None = None) -> ItemResult:
        plan = self.plan
        return ItemResult(
            plan.nodeid,
            plan.test,
            plan.case,
            plan.pattern,
            tuple(self.reps),
            plan.baseline_pattern,
            skipped=self.skipped,
            thresholds=plan.thresholds.as_dict(),
            stopped=self.stopped,
            cassette_error=self.cassette_error,
            adaptive=adaptive,
        )


@dataclass
class _Test:
    name: str
    spec: Spec
    members: list[_Item]
    share: float | None = None
    stopped: str | None = None
    followed: bool = False
    reports: dict[str, list[Any]] = field(default_factory=dict)


class Rounds:
    """Runs adaptive tests' items in rounds inside pytest's run loop (see module docstring).

    ``settings`` are the run's (:class:`.options.Settings`), ``meter`` the call meter.
    """

    def __init__(self, settings: Any, meter: Any) -> None:
        self.settings = settings
        self.meter = meter
        self._tests: dict[str, _Test] = {}
        self._items: dict[str, _Item] = {}

    def prepare(
        self, items: Sequence[pytest.Item], adaptive: Callable[[Any], tuple[ItemPlan, Spec | None]]
    ) -> None:
        """Group the session's adaptive items by test, in the order the session runs them."""
        pattern_items = 0
        for item in items:
            if "agent" not in getattr(item, "fixturenames", ()):
                continue
            pattern_items += 1
            plan, found = adaptive(item)
            if found is None:
                continue
            test = self._tests.setdefault(plan.test, _Test(plan.test, found, []))
            member = _Item(item, plan)
            test.members.append(member)
            self._items[item.nodeid] = member
        budget = self.settings.budget
        for test in self._tests.values():
            if budget is not None and pattern_items:
                test.share = budget * len(test.members) / pattern_items

    def owns(self, item: pytest.Item) -> bool:
        return item.nodeid in self._items

    # The run loop.

    def protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool:
        """Run the item's test when its last item comes up; report its items then."""
        test = self._tests[self._items[item.nodeid].plan.test]
        if item is not test.members[-1].item:
            return True  # reported with the rest of its test, once the test has run
        self._run(test, nextitem)
        for member in test.members:
            _log(member.item, test.reports.get(member.item.nodeid, []))
        return True

    def _run(self, test: _Test, nextitem: pytest.Item | None) -> None:
        from _pytest.runner import runtestprotocol

        spec = test.spec
        members = test.members
        cases = sorted({m.plan.case for m in members})
        reps = dict.fromkeys(cases, 0)
        for member in members:
            member.target = spec.rounds[0]
            member.path = None
        look = 0
        while True:
            look += 1
            due = [m for m in members if not m.done and m.target > len(m.reps)]
            refused = False
            for index, member in enumerate(due):
                member.running = (len(member.reps), member.target)
                after = due[index + 1].item if index + 1 < len(due) else members[0].item
                reports = runtestprotocol(member.item, log=False, nextitem=after)
                member.running = None
                if not reports or not reports[0].passed:
                    member.done = True  # setup failed or skipped: the last pass reports it
                refused = refused or member.stopped is not None
            for member in members:
                member.looks.append(member.target)
            for case in cases:
                reps[case] = max((m.target for m in members if m.plan.case == case), default=0)
            if look == 1:
                test.followed = self._follow(test)
            if test.followed:
                stop = self._replayed_look(test, look)
            else:
                stop = self._look(test, look, reps, refused)
            if stop is not None:
                test.stopped = stop
                break
        self._remember(test)
        for index, member in enumerate(members):
            member.final = True
            following = members[index + 1].item if index + 1 < len(members) else nextitem
            test.reports[member.item.nodeid] = runtestprotocol(
                member.item, log=False, nextitem=following
            )

    def _look(self, test: _Test, look: int, reps: dict[str, int], refused: bool) -> str | None:
        settings = self.settings
        decision = decide(
            test.spec,
            look,
            [m.result({"looks": list(m.looks)}) for m in test.members],
            reps,
            alpha=settings.alpha,
            seed=settings.seed,
            share=test.share,
            refused=refused,
        )
        if decision.stopped is not None:
            return decision.stopped
        for member in test.members:
            member.target += decision.allocation.get(member.plan.case, 0)
        return None

    def _follow(self, test: _Test) -> bool:
        """Whether every item's cassette holds the schedule of an adaptive recording that
        began as this run does, and the record mode replays it."""
        if self.settings.record_mode not in ("none", "once", "new_episodes"):
            return False
        for member in test.members:
            if member.skipped is not None or member.path is None:
                continue  # skipped, or its setup failed: it made no call to follow
            schedule = member.recorded
            if not _valid(schedule) or schedule["rounds"][0] != member.looks[0]:
                return False
        return True

    def _replayed_look(self, test: _Test, look: int) -> str | None:
        for member in test.members:
            rounds = member.recorded["rounds"] if _valid(member.recorded) else []
            if look < len(rounds):
                member.target = int(rounds[look])
        lengths = [len(m.recorded["rounds"]) for m in test.members if _valid(m.recorded)]
        if look >= max(lengths, default=look):
            reasons = [m.recorded.get("stopped") for m in test.members if _valid(m.recorded)]
            known = [r for r in reasons if r in REASONS]
            return known[0] if known else "max reached"
        return None

    def _remember(self, test: _Test) -> None:
        """Keep each recorded item's rounds and the reason with its cassette."""
        if test.followed or self.settings.record_mode == "none":
            return
        from .cassettes import CassetteError, open_cassette

        for member in test.members:
            if not member.fresh or member.path is None or not member.path.exists():
                continue
            schedule = {"rounds": list(member.looks), "stopped": test.stopped}
            try:
                with open_cassette(member.path, "new_episodes", self.settings.scrub) as cassette:
                    cassette.remember_schedule(schedule)
            except CassetteError as exc:
                member.failure = str(exc)
                continue
            if cassette.save_error is not None:
                member.failure = str(cassette.save_error)

    # One call of an item: a round, or the last pass that reports it.

    def call(
        self, item: pytest.Item, path: Path, body: Callable[[], Any], agent: Any, probe: Any
    ) -> bool:
        """Run the round due for ``item`` in its cassette at ``path``, or, in the last pass,
        report the item with every repetition its rounds ran."""
        import pytest

        member = self._items[item.nodeid]
        test = self._tests[member.plan.test]
        if member.final:
            info = {
                "looks": list(member.looks),
                "max_repeat": test.spec.max_repeat,
                "planned_looks": test.spec.looks,
                "stopped": test.stopped,
                "replayed_schedule": test.followed,
            }
            result = member.result(info)
            item.user_properties.append((PROPERTY, result.to_dict()))
            if result.skipped is not None:
                pytest.skip(result.skipped)
            failure = member.failure or _judged(result, member)
            if failure is not None:
                pytest.fail(failure, pytrace=False)
            return True
        if member.running is not None:
            self._round(member, path, body, agent, probe)
        return True

    def _round(
        self, member: _Item, path: Path, body: Callable[[], Any], agent: Any, probe: Any
    ) -> None:
        from . import diagnostics
        from .cassettes import CassetteError, run_in_cassette
        from .runner import run_item

        assert member.running is not None
        first, stop = member.running
        mode = self.settings.record_mode
        if first == 0:
            member.path = path
            member.fresh = mode != "none" and not (mode == "once" and path.exists())
        else:
            mode = continued(mode, member.fresh)
        plan = replace(member.plan, first=first, repeat=stop)
        cassettes: list[Any] = []

        def grab(state: Any) -> None:
            cassettes.append(state.replayer)

        def run(attach: Callable[[Any], None]) -> Any:
            outcome = run_item(plan, body, agent, hooks=[attach, grab])
            return diagnostics.enrich(outcome, body, agent, probe)

        try:
            outcome, not_saved = run_in_cassette(
                path, mode, self.meter, run, scrub=self.settings.scrub
            )
        except CassetteError as exc:
            member.failure, member.done = str(exc), True
            return
        if first == 0 and cassettes and cassettes[0] is not None:
            member.recorded = cassettes[0].schedule()
        result = outcome.result
        member.reps.extend(result.repetitions)
        if result.skipped is not None:
            member.skipped, member.done = result.skipped, True
        if result.stopped is not None:
            member.stopped, member.done = result.stopped, True
        if not_saved is not None:
            member.cassette_error = str(not_saved)
            member.failure, member.done = str(not_saved), True


def _judged(result: ItemResult, member: _Item) -> str | None:
    from .runner import judge

    if result.stopped is not None:
        return f"[{result.pattern}] {result.stopped}"
    return judge(result, member.plan.thresholds)


def _valid(schedule: Any) -> bool:
    """A recorded schedule's shape: ``{"rounds": [increasing counts], "stopped": ...}``."""
    if not isinstance(schedule, dict):
        return False
    rounds = schedule.get("rounds")
    return (
        isinstance(rounds, list)
        and bool(rounds)
        and all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in rounds)
        and all(a <= b for a, b in itertools.pairwise(rounds))
    )


def _log(item: pytest.Item, reports: Sequence[Any]) -> None:
    """Report an item as pytest's own run loop does."""
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)


# --- pytest-xdist: a test's items on one worker ------------------------------------------------


GROUPED_DIST = ("loadscope", "loadfile")
"""xdist modes that keep a test function's items on one worker by themselves."""


def scheduler(config: Any, log: Any) -> Any:
    """xdist's ``load`` scheduling, but a test function's items go to one worker together
    (the adaptive rounds of a test need all of its items)."""
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class FunctionScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return nodeid.split("[", 1)[0]

    return FunctionScheduling(config, log)
