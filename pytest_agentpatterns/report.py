"""The JSON report: built from item results in one place, written atomically.

The schema is documented in docs/report-schema.md; later versions add fields, never
remove or change one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import diagnostics, family, gates, ratios, recommend, savings
from .analysis import TestAnalysis
from .atomic import write_atomic
from .records import ItemResult
from .schema import RUN_KIND, RUN_SCHEMA_VERSION, SchemaError, check_run

SCHEMA_VERSION = RUN_SCHEMA_VERSION
KIND = RUN_KIND


def _interval(i: Any) -> dict[str, float] | None:
    return None if i is None else {"low": i.low, "high": i.high}


def _accuracy(c: family.AccuracyComparison) -> dict[str, Any]:
    """An accuracy comparison in the shape of ``comparisons[]`` (version 1 fields kept)."""
    return {
        "metric": "accuracy",
        "kind": "difference",
        "estimate": c.estimate,
        "interval": _interval(c.interval),
        "p_value": c.p_value,
        "p_adjusted": c.p_adjusted,
        "test": c.method,
        "paired": c.paired,
        "n_cases": c.n_cases,
        "n_baseline": c.n_baseline,
        "n_candidate": c.n_candidate,
        "mde": c.mde,
        "note": c.note,
        "verdict": c.verdict,
        "level": c.level,
        "simultaneous": True,
        "needs_cases": c.needs_cases,
    }


def _ratio(r: ratios.Ratio) -> dict[str, Any]:
    """A latency or cost ratio in the shape of ``comparisons[]``: an estimate, no test."""
    return {
        "metric": r.metric,
        "kind": "ratio",
        "estimate": r.estimate,
        "interval": _interval(r.interval),
        "p_value": None,
        "p_adjusted": None,
        "test": r.method,
        "paired": r.paired,
        "n_cases": r.n_cases,
        "n_baseline": None,
        "n_candidate": None,
        "mde": None,
        "note": r.note,
        "verdict": None,
        "level": None,
        "simultaneous": False,
        "constant": r.constant,
        "statistic": r.statistic,
        "confidence": r.confidence,
    }


def _recommendation(rec: recommend.Recommendation | None) -> dict[str, Any] | None:
    if rec is None:
        return None
    return {
        "pattern": rec.pattern,
        "reason": rec.reason,
        "decided": rec.decided,
        "best": rec.best,
        "cheapest": rec.cheapest,
        "contenders": list(rec.contenders),
        "excluded": [
            {"pattern": e.pattern, "by": e.by, "interval": _interval(e.interval)}
            for e in rec.excluded
        ],
        "level": rec.level,
        "gap": _interval(rec.gap),
        "more_cases": rec.more_cases,
    }


def _analysis(t: TestAnalysis) -> dict[str, Any]:
    fam = t.family
    return {
        "test": t.test,
        "baseline_pattern": t.baseline,
        "n_cases": t.n_cases,
        "family": None
        if fam is None
        else {
            "alpha": fam.alpha,
            "size": fam.size,
            "level": fam.level,
            "method": fam.method,
            "detectable": None if fam.detectable() is None else list(fam.detectable() or ()),
        },
        "recommendation": _recommendation(t.recommendation),
        "diagnostics": None if not t.diagnostics else diagnostics.as_dict(t.diagnostics),
        "adaptive": savings.as_dict(t.adaptive),
        "patterns": [
            {
                "pattern": p.figures.pattern,
                "pareto": p.pareto,
                "summary": asdict(p.summary),
                "comparisons": ([_accuracy(p.accuracy)] if p.accuracy is not None else [])
                + [_ratio(r) for r in p.ratios],
            }
            for p in t.patterns
        ],
    }


def _gate(g: gates.GateResult) -> dict[str, Any]:
    data = asdict(g)
    data["rule"] = str(g.rule)
    data["regressed"] = [
        {"case": case, "baseline": before, "current": after} for case, before, after in g.regressed
    ]
    return data


def _gate_run(run: gates.GateRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "alpha": run.alpha,
        "level": run.level,
        "evaluated": run.evaluated,
        "failed": run.failed,
        "fail_on_inconclusive": run.fail_on_inconclusive,
        "counts": {v: run.count(v) for v in ("fail", "inconclusive", "pass", "not evaluated")},
        "verdict": run.verdict_line(),
    }


def build_report(
    results: Iterable[ItemResult],
    settings: Any,
    analyses: Sequence[TestAnalysis],
    gate_run: gates.GateRun | None = None,
) -> dict[str, Any]:
    """The report as plain data: settings, figures, analysis, gates and every item.

    The same document is what ``--patterns-save`` writes and ``--patterns-baseline`` reads.
    """
    results = sorted(results, key=lambda r: r.nodeid)
    return {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "plugin": "pytest-agentpatterns",
        "seed": settings.seed,
        "alpha": settings.alpha,
        "summary": [asdict(p.figures) for t in analyses for p in t.patterns],
        "analysis": [_analysis(t) for t in analyses],
        "gates": [_gate(g) for g in (gate_run.results if gate_run else ())],
        "gate_run": _gate_run(gate_run),
        "items": [r.to_dict() for r in results],
    }


def load_run(path: Path) -> list[ItemResult]:
    """The items of a saved run; ``ValueError`` naming the file and what is wrong.

    Fields this version does not know are ignored (docs/report-schema.md), so a run saved by
    a later version reads here too.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"baseline file {path} does not exist") from None
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: JSON, UTF-8
        raise ValueError(f"baseline file {path} is unreadable: {exc}") from None
    try:
        items = check_run(data)
    except SchemaError as exc:
        raise ValueError(f"baseline file {path} is malformed: {exc}") from None
    return [ItemResult.from_dict(item) for item in items]


def dumps(report: dict[str, Any]) -> str:
    """Stable text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(_finite(report), indent=2, sort_keys=True, allow_nan=False) + "\n"


def _finite(value: Any) -> Any:
    """JSON has no infinities or NaN: an unbounded or undefined number is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(path: Path, report: dict[str, Any]) -> None:
    write_atomic(path, dumps(report))


def trace_lines(results: Iterable[ItemResult]) -> list[str]:
    """The provenance trace: one JSON line per call, in node id and address order."""
    lines = []
    for item in sorted(results, key=lambda r: r.nodeid):
        for rep in item.repetitions:
            for call in rep.calls:
                record = call.to_dict()
                record.update(
                    test=item.test,
                    nodeid=item.nodeid,
                    pattern=item.pattern,
                    repetition=call.address.repetition,
                    branch=call.address.branch_text,
                    role=call.address.role,
                    ordinal=call.address.ordinal,
                    tokens=call.tokens,
                )
                for key in ("method", "url", "error", "prompt", "response"):
                    record.pop(key)
                lines.append(json.dumps(record, sort_keys=True))
    return lines


def unpriced_models(results: Iterable[ItemResult]) -> list[str]:
    """Models whose calls had token counts but no price, in first-seen order."""
    seen: dict[str, None] = {}
    for item in results:
        for rep in item.repetitions:
            for call in rep.calls:
                if call.model and call.cost is None and call.tokens is not None:
                    seen.setdefault(call.model, None)
    return list(seen)
