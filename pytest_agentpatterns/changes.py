"""What changed between two runs of a test under a pattern: models, prompts, settings.

A gate that fails says by how much; a reader then asks *why*. The saved runs hold the answer
for the usual causes: another model (the calls' ``model``), another prompt (the calls'
``prompt_hash``), other settings (pattern, repetitions, cases, thresholds), or a run that was
recorded live where the baseline was replayed. :func:`what_changed` compares the items of one
(test, pattern) in two runs and says each difference in one line; the gate message and
``python -m pytest_agentpatterns diff`` both use it.

Pure: no pytest, no statistics.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .records import ItemResult

if TYPE_CHECKING:
    from .gates import GateRun

MAX_NAMED = 5
"""Cases named at most in one line; the rest are counted."""


@dataclass(frozen=True)
class Change:
    """One difference between two runs: its kind and one line for people."""

    kind: str
    """``pattern``, ``model``, ``prompt``, ``cases``, ``repetitions``, ``recording``,
    ``roles`` or ``thresholds``."""
    text: str

    def __str__(self) -> str:
        return self.text


def what_changed(
    baseline: Sequence[ItemResult], current: Sequence[ItemResult]
) -> tuple[Change, ...]:
    """Every difference between the baseline's items and the current run's (one test under
    one pattern each, usually), most telling first; empty when nothing changed that the runs
    record. Prompts are compared call by call (same case, branch, role and ordinal); a run
    saved before calls had a ``prompt_hash`` is not compared on prompts."""
    before = [i for i in baseline if i.skipped is None]
    after = [i for i in current if i.skipped is None]
    found: list[Change] = []
    found.extend(_patterns(before, after))
    found.extend(_models(before, after))
    found.extend(_prompts(before, after))
    found.extend(_roles(before, after))
    found.extend(_cases(before, after))
    found.extend(_repetitions(before, after))
    found.extend(_recording(before, after))
    found.extend(_thresholds(before, after))
    return tuple(found)


def _values(items: Iterable[ItemResult], attribute: str) -> list[str]:
    return sorted({str(getattr(i, attribute)) for i in items})


def _patterns(before: list[ItemResult], after: list[ItemResult]) -> Iterable[Change]:
    for attribute, name in (("pattern", "pattern"), ("baseline_pattern", "baseline pattern")):
        old, new = _values(before, attribute), _values(after, attribute)
        if old and new and old != new:
            yield Change("pattern", f"{name} {', '.join(old)} -> {', '.join(new)}")


def _models_by_role(items: Iterable[ItemResult]) -> dict[str, set[str]]:
    models: dict[str, set[str]] = defaultdict(set)
    for item in items:
        for rep in item.repetitions:
            for call in rep.calls:
                if call.model:
                    models[call.address.role].add(call.model)
    return models


def _models(before: list[ItemResult], after: list[ItemResult]) -> Iterable[Change]:
    old, new = _models_by_role(before), _models_by_role(after)
    for role in sorted(old.keys() & new.keys()):
        if old[role] != new[role]:
            was, now = ", ".join(sorted(old[role])), ", ".join(sorted(new[role]))
            yield Change("model", f"model of {role}: {was} -> {now}")


def _prompts_by_call(
    items: Iterable[ItemResult],
) -> dict[tuple[str, tuple[str, ...], str, int], set[str]]:
    hashes: dict[tuple[str, tuple[str, ...], str, int], set[str]] = defaultdict(set)
    for item in items:
        for rep in item.repetitions:
            for call in rep.calls:
                if call.prompt_hash:
                    a = call.address
                    hashes[item.case, a.branch, a.role, a.ordinal].add(call.prompt_hash)
    return hashes


def _prompts(before: list[ItemResult], after: list[ItemResult]) -> Iterable[Change]:
    old, new = _prompts_by_call(before), _prompts_by_call(after)
    compared: dict[str, set[str]] = defaultdict(set)
    changed: dict[str, set[str]] = defaultdict(set)
    for key in old.keys() & new.keys():
        case, _, role, _ = key
        compared[role].add(case)
        if old[key] != new[key]:
            changed[role].add(case)
    for role in sorted(changed):
        cases = sorted(changed[role])
        yield Change(
            "prompt",
            f"prompt of {role} changed in {len(cases)} of {len(compared[role])} "
            f"case{'s' if len(compared[role]) != 1 else ''} ({_named(cases)})",
        )


def _roles(before: list[ItemResult], after: list[ItemResult]) -> Iterable[Change]:
    def calls_per_run(items: list[ItemResult]) -> dict[str, float]:
        reps = [r for i in items for r in i.repetitions]
        counts = Counter(c.address.role for r in reps for c in r.calls)
        return {role: n / len(reps) for role, n in counts.items()} if reps else {}

    old, new = calls_per_run(before), calls_per_run(after)
    if not old or not new or old.keys() == new.keys():
        return
    added, gone = sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys())
    parts = [f"+{r}" for r in added] + [f"-{r}" for r in gone]
    yield Change("roles", f"roles that made calls: {' '.join(parts)}")


def _cases(before: list[ItemResult], after: list[ItemResult]) -> Iterable[Change]:
    old, new = {i.case for i in before}, {i.case for i in after}
    if not old or not new:
        return
    added, removed = sorted(new - old), sorted(old - new)
    if added:
        yield Change("cases", f"cases added: {_named(added)}")
    if removed:
        yield Change("cases", f"cases removed: {_named(removed)}")


def _repetitions(before: list[ItemResult], after: list[ItemResult]) -> Iterable[Change]:
    def per_case(items: list[ItemResult]) -> list[int]:
        return sorted({len(i.repetitions) for i in items})

    old, new = per_case(before), per_case(after)
    if old and new and old != new:
        yield Change(
            "repetitions",
            f"repetitions per case {_span(old)} -> {_span(new)}",
        )


def _recording(before: list[ItemResult], after: list[ItemResult]) -> Iterable[Change]:
    def how(items: list[ItemResult]) -> str | None:
        calls = [c for i in items for r in i.repetitions for c in r.calls]
        if not calls:
            return None
        replayed = sum(1 for c in calls if c.replayed)
        if replayed == len(calls):
            return "replayed"
        return "live" if replayed == 0 else f"{len(calls) - replayed} of {len(calls)} calls live"

    old, new = how(before), how(after)
    if old and new and old != new:
        yield Change("recording", f"calls {old} -> {new}")


def _thresholds(before: list[ItemResult], after: list[ItemResult]) -> Iterable[Change]:
    def of(items: list[ItemResult]) -> str:
        found = {tuple(sorted(i.thresholds.items())) for i in items}
        return "; ".join(", ".join(f"{k}={v:g}" for k, v in t) or "none" for t in sorted(found))

    old, new = of(before), of(after)
    if before and after and old != new:
        yield Change("thresholds", f"marker thresholds {old} -> {new}")


def _named(cases: Sequence[str]) -> str:
    shown = ", ".join(cases[:MAX_NAMED])
    more = len(cases) - MAX_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


def _span(values: list[int]) -> str:
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"


def changes_by_group(
    baseline: Iterable[ItemResult], current: Iterable[ItemResult]
) -> dict[tuple[str, str], tuple[Change, ...]]:
    """:func:`what_changed` for every (test, pattern) of the current run that the baseline
    has too."""
    groups: dict[tuple[str, str], tuple[list[ItemResult], list[ItemResult]]] = {}
    for item in baseline:
        groups.setdefault((item.test, item.pattern), ([], []))[0].append(item)
    for item in current:
        groups.setdefault((item.test, item.pattern), ([], []))[1].append(item)
    return {key: what_changed(old, new) for key, (old, new) in groups.items() if old and new}


def annotate(
    run: GateRun, current: Iterable[ItemResult], baseline: Iterable[ItemResult]
) -> GateRun:
    """The gates with what changed for their (test, pattern): in ``changes`` for every gate,
    and at the end of a failed gate's message (``...; since the baseline: model of propose:
    a -> b``), so the failure line already says what to look at."""
    found = changes_by_group(baseline, current)
    results = []
    for gate in run.results:
        lines = tuple(str(c) for c in found.get((gate.test, gate.pattern), ()))
        message = gate.message
        if lines and gate.verdict == "fail":
            message += "; since the baseline: " + "; ".join(lines)
        results.append(replace(gate, changes=lines, message=message))
    return replace(run, results=tuple(results))
