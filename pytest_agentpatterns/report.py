"""The JSON report: built from item results in one place, written atomically.

The schema is documented in docs/report-schema.md; later versions add fields, never
remove or change one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .metrics import all_figures
from .records import ItemResult

SCHEMA_VERSION = 1


def build_report(results: Iterable[ItemResult], settings: Any) -> dict[str, Any]:
    """The report as plain data: run settings, per-(test, pattern) figures, items."""
    results = sorted(results, key=lambda r: r.nodeid)
    return {
        "schema_version": SCHEMA_VERSION,
        "plugin": "pytest-agentpatterns",
        "seed": settings.seed,
        "summary": [asdict(f) for f in all_figures(results)],
        "items": [r.to_dict() for r in results],
    }


def dumps(report: dict[str, Any]) -> str:
    """Stable text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


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
                for key in ("method", "url", "error"):
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
