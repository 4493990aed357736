"""What changed between two saved runs: accuracy per case, models, patterns and cases.

``python -m pytest_agentpatterns diff OLD.json NEW.json`` reads two runs (``--patterns-save``
or ``--patterns-json``) and asks, for every (test, pattern) in both, which cases went from
right to wrong and from wrong to right, and what else changed: the models the calls named,
the pattern settings each test ran, the cases each test has. It is a plain comparison of what
the files hold, not a statistical test (the gates are: ``--fail-on``).

Per case, the figure compared is the share of its repetitions answered right (a graded
score counts as its value, an error as wrong): ``1.00 -> 0.33`` is a case that passed every
repetition before and one in three now. Every :class:`CaseChange` keeps both runs'
:class:`~.records.ItemResult`, so what a report may later carry per case (outputs, assertion
messages, prompt hashes) can be shown beneath it: :func:`case_lines` is the one place a case is
rendered.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .metrics import GroupKey, figures, sorted_groups
from .records import ItemResult

Direction = Literal["worse", "better"]


@dataclass(frozen=True)
class CaseChange:
    """One case of one (test, pattern), in both runs, whose share of right answers changed."""

    case: str
    before: float
    after: float
    old: ItemResult
    new: ItemResult

    @property
    def direction(self) -> Direction:
        return "worse" if self.after < self.before else "better"

    @property
    def errors(self) -> tuple[int, int]:
        """Repetitions that raised an error, before and after."""
        return self.old.errors, self.new.errors


@dataclass(frozen=True)
class PairDiff:
    """One (test, pattern) present in both runs: its accuracy and the cases that moved."""

    test: str
    pattern: str
    accuracy_before: float | None
    accuracy_after: float | None
    changes: tuple[CaseChange, ...]
    models_before: tuple[str, ...] = ()
    models_after: tuple[str, ...] = ()

    @property
    def worse(self) -> tuple[CaseChange, ...]:
        return tuple(c for c in self.changes if c.direction == "worse")

    @property
    def better(self) -> tuple[CaseChange, ...]:
        return tuple(c for c in self.changes if c.direction == "better")

    @property
    def changed(self) -> bool:
        return (
            bool(self.changes)
            or self.accuracy_before != self.accuracy_after
            or self.models_before != self.models_after
        )


@dataclass(frozen=True)
class TestDiff:
    """One test function: the cases and pattern settings that one run has and the other lacks."""

    test: str
    cases_added: tuple[str, ...] = ()
    cases_removed: tuple[str, ...] = ()
    patterns_added: tuple[str, ...] = ()
    patterns_removed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(
            self.cases_added or self.cases_removed or self.patterns_added or self.patterns_removed
        )

    def settings_changed(self) -> list[tuple[str, str]]:
        """Patterns whose name stayed and parameters changed: ``(old id, new id)``."""
        removed = {_name(p): p for p in self.patterns_removed}
        return [(removed[_name(p)], p) for p in self.patterns_added if _name(p) in removed]


@dataclass(frozen=True)
class RunDiff:
    """Everything that differs between two runs, test by test."""

    pairs: tuple[PairDiff, ...]
    tests: tuple[TestDiff, ...]
    tests_added: tuple[str, ...] = ()
    tests_removed: tuple[str, ...] = ()
    models_before: tuple[str, ...] = ()
    models_after: tuple[str, ...] = ()

    @property
    def regressed(self) -> bool:
        """Whether a case of a (test, pattern) in both runs went from right towards wrong."""
        return any(p.worse for p in self.pairs)

    @property
    def changed(self) -> bool:
        return (
            any(p.changed for p in self.pairs)
            or any(t.changed for t in self.tests)
            or bool(self.tests_added or self.tests_removed)
            or self.models_before != self.models_after
        )


def right_share(item: ItemResult) -> float:
    """The share of an item's repetitions answered right (scores as values, errors as 0)."""
    if not item.repetitions:
        return 0.0
    return sum(r.accuracy or 0.0 for r in item.repetitions) / len(item.repetitions)


def diff_runs(old: Iterable[ItemResult], new: Iterable[ItemResult]) -> RunDiff:
    """Compare two runs' items; skipped items count as absent."""
    before, after = sorted_groups(old), sorted_groups(new)
    pairs = [_pair(key, before[key], after[key]) for key in after if key in before]
    old_tests = _patterns_by_test(before)
    new_tests = _patterns_by_test(after)
    tests = []
    for test in new_tests:
        if test not in old_tests:
            continue
        old_cases = _cases(before, test)
        new_cases = _cases(after, test)
        tests.append(
            TestDiff(
                test,
                cases_added=tuple(c for c in new_cases if c not in old_cases),
                cases_removed=tuple(c for c in old_cases if c not in new_cases),
                patterns_added=tuple(p for p in new_tests[test] if p not in old_tests[test]),
                patterns_removed=tuple(p for p in old_tests[test] if p not in new_tests[test]),
            )
        )
    return RunDiff(
        tuple(pairs),
        tuple(tests),
        tests_added=tuple(t for t in new_tests if t not in old_tests),
        tests_removed=tuple(t for t in old_tests if t not in new_tests),
        models_before=_models(i for items in before.values() for i in items),
        models_after=_models(i for items in after.values() for i in items),
    )


def _pair(key: GroupKey, old: list[ItemResult], new: list[ItemResult]) -> PairDiff:
    by_case = {item.case: item for item in old}
    changes = []
    for item in new:
        was = by_case.get(item.case)
        if was is None:
            continue
        before, after = right_share(was), right_share(item)
        if before != after:
            changes.append(CaseChange(item.case, before, after, was, item))
    return PairDiff(
        key.test,
        key.pattern,
        figures(key, old).accuracy,
        figures(key, new).accuracy,
        tuple(changes),
        _models(old),
        _models(new),
    )


def _patterns_by_test(groups: dict[GroupKey, list[ItemResult]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key in groups:
        out.setdefault(key.test, []).append(key.pattern)
    return out


def _cases(groups: dict[GroupKey, list[ItemResult]], test: str) -> list[str]:
    seen: dict[str, None] = {}
    for key, items in groups.items():
        if key.test == test:
            seen.update((item.case, None) for item in items)
    return sorted(seen)


def _models(items: Iterable[ItemResult]) -> tuple[str, ...]:
    return tuple(
        sorted({c.model for i in items for r in i.repetitions for c in r.calls if c.model})
    )


def _name(pattern: str) -> str:
    return pattern.split("(", 1)[0]


# --- rendering ------------------------------------------------------------------------------


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _accuracy(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _list(values: Sequence[str]) -> str:
    return ", ".join(values) if values else "none"


def case_lines(change: CaseChange) -> list[str]:
    """One case's change: ``c3: 1.00 -> 0.00``, with its errors when it had any."""
    line = f"{change.direction} {change.case}: {_share(change.before)} -> {_share(change.after)}"
    errors_before, errors_after = change.errors
    if errors_before or errors_after:
        line += (
            f" (errors {errors_before} of {change.old.n} -> {errors_after} of {change.new.n} "
            "repetitions)"
        )
    return [line]


def summary_line(diff: RunDiff) -> str:
    """The last line: how many pairs and cases moved, or that nothing did."""
    moved = [p for p in diff.pairs if p.changes]
    worse = sum(len(p.worse) for p in diff.pairs)
    better = sum(len(p.better) for p in diff.pairs)
    if not diff.changed:
        return f"no differences in {len(diff.pairs)} (test, pattern) pairs"
    return (
        f"{len(moved)} of {len(diff.pairs)} (test, pattern) pairs changed: "
        f"{worse} case{'s' if worse != 1 else ''} went from right towards wrong, "
        f"{better} from wrong towards right"
    )


def render_text(diff: RunDiff, old: str, new: str, width: int = 80) -> str:
    """The diff for a terminal, wrapped to ``width``."""
    width = max(40, width)
    lines = [f"agentpatterns diff: {old} -> {new}"]

    def add(text: str, indent: int = 0) -> None:
        lines.extend(
            textwrap.wrap(
                text,
                width,
                initial_indent=" " * indent,
                subsequent_indent=" " * (indent + 4),
                break_on_hyphens=False,
            )
        )

    if diff.models_before != diff.models_after:
        add(f"models: {_list(diff.models_before)} -> {_list(diff.models_after)}")
    for label, names in (("tests added", diff.tests_added), ("tests removed", diff.tests_removed)):
        if names:
            add(f"{label}: {_list(names)}")
    tests = {t.test: t for t in diff.tests}
    pairs: dict[str, list[PairDiff]] = {}
    for pair in diff.pairs:
        pairs.setdefault(pair.test, []).append(pair)
    for test, test_diff in tests.items():
        changed = [p for p in pairs.get(test, []) if p.changed]
        if not changed and not test_diff.changed:
            continue
        lines.append("")
        lines.append(test)
        for label, values in _test_facts(test_diff):
            add(f"{label}: {_list(values)}", 2)
        for pair in changed:
            head = (
                f"{pair.pattern}: accuracy {_accuracy(pair.accuracy_before)} -> "
                f"{_accuracy(pair.accuracy_after)}"
            )
            if pair.changes:
                head += f" (cases: {len(pair.worse)} worse, {len(pair.better)} better)"
            add(head, 2)
            if pair.models_before != pair.models_after:
                add(f"models: {_list(pair.models_before)} -> {_list(pair.models_after)}", 4)
            for change in (*pair.worse, *pair.better):
                for line in case_lines(change):
                    add(line, 4)
    lines.append("")
    lines.append(summary_line(diff))
    return "\n".join(lines) + "\n"


def _test_facts(t: TestDiff) -> list[tuple[str, tuple[str, ...]]]:
    settings = t.settings_changed()
    renamed = {p for pair in settings for p in pair}
    facts = [
        ("pattern settings changed", tuple(f"{a} -> {b}" for a, b in settings)),
        ("patterns added", tuple(p for p in t.patterns_added if p not in renamed)),
        ("patterns removed", tuple(p for p in t.patterns_removed if p not in renamed)),
        ("cases added", t.cases_added),
        ("cases removed", t.cases_removed),
    ]
    return [(label, values) for label, values in facts if values]


def render_markdown(diff: RunDiff, old: str, new: str) -> str:
    """The diff as GitHub Markdown (a pull-request comment, a step summary)."""
    parts = [f"## agentpatterns diff: `{old}` -> `{new}`", summary_line(diff)]
    facts = []
    if diff.models_before != diff.models_after:
        facts.append(f"models: {_list(diff.models_before)} -> {_list(diff.models_after)}")
    if diff.tests_added:
        facts.append(f"tests added: {_list(diff.tests_added)}")
    if diff.tests_removed:
        facts.append(f"tests removed: {_list(diff.tests_removed)}")
    for t in diff.tests:
        facts.extend(f"`{t.test}`: {label}: {_list(values)}" for label, values in _test_facts(t))
    if facts:
        parts.append("\n".join(f"- {f}" for f in facts))
    changed = [p for p in diff.pairs if p.changed]
    if changed:
        rows = [
            "| test | pattern | accuracy before | accuracy after | cases worse | cases better |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        rows.extend(
            f"| `{p.test}` | `{p.pattern}` | {_accuracy(p.accuracy_before)} | "
            f"{_accuracy(p.accuracy_after)} | {len(p.worse)} | {len(p.better)} |"
            for p in changed
        )
        parts.append("\n".join(rows))
        for p in changed:
            if p.changes:
                lines = [f"### `{p.test}` `{p.pattern}`"]
                lines.extend(f"- {line}" for c in (*p.worse, *p.better) for line in case_lines(c))
                parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def to_dict(diff: RunDiff, old: str, new: str) -> dict[str, Any]:
    """The diff as plain data (``--format json``)."""

    def case(c: CaseChange) -> dict[str, Any]:
        errors_before, errors_after = c.errors
        return {
            "case": c.case,
            "direction": c.direction,
            "before": c.before,
            "after": c.after,
            "errors_before": errors_before,
            "errors_after": errors_after,
            "nodeid_before": c.old.nodeid,
            "nodeid_after": c.new.nodeid,
        }

    return {
        "old": old,
        "new": new,
        "changed": diff.changed,
        "regressed": diff.regressed,
        "models": {"before": list(diff.models_before), "after": list(diff.models_after)},
        "tests_added": list(diff.tests_added),
        "tests_removed": list(diff.tests_removed),
        "tests": [
            {
                "test": t.test,
                "cases_added": list(t.cases_added),
                "cases_removed": list(t.cases_removed),
                "patterns_added": list(t.patterns_added),
                "patterns_removed": list(t.patterns_removed),
            }
            for t in diff.tests
        ],
        "pairs": [
            {
                "test": p.test,
                "pattern": p.pattern,
                "accuracy_before": p.accuracy_before,
                "accuracy_after": p.accuracy_after,
                "models_before": list(p.models_before),
                "models_after": list(p.models_after),
                "cases": [case(c) for c in p.changes],
            }
            for p in diff.pairs
        ],
    }


def dumps(diff: RunDiff, old: str, new: str) -> str:
    return json.dumps(to_dict(diff, old, new), indent=2, sort_keys=True) + "\n"
