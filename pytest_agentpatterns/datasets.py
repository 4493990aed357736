"""Cases from a file: ``@pytest.mark.parametrize("case", cases("cases.jsonl"))``.

A team keeps its inputs and expected outputs as data (JSON lines, CSV, YAML or a JSON list),
not as Python literals; :func:`cases` reads such a file into ``pytest.param`` values whose ids
come from a field, so node ids, cassette names and reports name each case. Each case arrives
as the ``dict`` the file holds: plain data with every key reachable (``case["expected"]``,
``case.get("notes")``, keys that are not identifiers), as ``json``, ``csv`` and ``yaml`` give it.
A file that cannot be read, or a case without a usable id, is one :class:`CasesError` naming
the file, the line and what is allowed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".yaml": "yaml",
    ".yml": "yaml",
}
"""File suffix -> format; ``format=`` overrides the suffix."""

ALLOWED_FORMATS = "jsonl (.jsonl, .ndjson), json (.json: a list), csv (.csv), yaml (.yaml, .yml)"


class CasesError(ValueError):
    """A cases file that cannot be used; the message names the file, the line and the fix."""


Record = tuple[str, Any]
"""A case as read: where it is (``line 3``, or ``case 3`` in a JSON list) and its value."""


def cases(
    path: str | Path,
    *,
    id_field: str | None = "id",
    format: str | None = None,
    encoding: str = "utf-8",
) -> list[Any]:
    """The cases in ``path`` as ``pytest.param(case, id=case[id_field])``, in file order.

    ``path`` may be JSON lines (one object per line; blank lines skipped), CSV (a header row,
    then one case per row, values as strings), YAML or JSON (a list of mappings). A relative
    path is resolved against the folder of the module that calls ``cases()`` (the test
    module), not the current directory, so ``pytest`` finds it from anywhere. Ids must be
    non-empty strings or integers, unique within the file; ``id_field=None`` leaves the ids to
    pytest (``case0``, ``case1``, ...). Raises :class:`CasesError`.
    """
    __tracebackhide__ = True
    import inspect

    import pytest

    caller = inspect.currentframe()
    module_file = caller.f_back.f_globals.get("__file__") if caller and caller.f_back else None
    file = _resolve(Path(path), module_file)
    kind = _format(file, format)
    try:
        # newline="": line ends are the readers' business (CSV keeps them in quoted values).
        with open(file, encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="") as f:
            text = f.read()
    except FileNotFoundError:
        where = "" if Path(path).is_absolute() else f" (relative to {file.parent})"
        raise CasesError(f"{file}: no such file{where}") from None
    except (OSError, UnicodeDecodeError, LookupError) as exc:
        raise CasesError(f"{file}: cannot be read: {exc}") from None
    records = list(_READERS[kind](text, file))
    if not records:
        raise CasesError(f"{file}: holds no cases; add at least one")
    params = []
    seen: dict[str, str] = {}
    for where, case in records:
        if not isinstance(case, dict):
            raise CasesError(
                f"{file}, {where}: a case must be a mapping of field to value, got {_kind(case)}"
            )
        if id_field is None:
            params.append(pytest.param(case))
            continue
        case_id = _case_id(case, id_field, f"{file}, {where}")
        if case_id in seen:
            raise CasesError(
                f"{file}, {where}: id {case_id!r} is already the id of the case at "
                f"{seen[case_id]}; ids must be unique within the file"
            )
        seen[case_id] = where
        params.append(pytest.param(case, id=case_id))
    return params


def _resolve(path: Path, module_file: str | None) -> Path:
    path = path.expanduser()
    if path.is_absolute() or module_file is None:
        return path.absolute()
    return Path(module_file).absolute().parent / path


def _format(file: Path, given: str | None) -> str:
    __tracebackhide__ = True
    if given is not None:
        if given not in _READERS:
            raise CasesError(
                f"{file}: format={given!r} is not allowed; allowed: {', '.join(_READERS)}"
            )
        return given
    kind = FORMATS.get(file.suffix.lower())
    if kind is None:
        raise CasesError(
            f"{file}: cannot tell the format from the suffix {file.suffix or '(none)'!r}; "
            f"allowed: {ALLOWED_FORMATS}, or pass format=..."
        )
    return kind


def _case_id(case: dict[str, Any], id_field: str, at: str) -> str:
    __tracebackhide__ = True
    if id_field not in case:
        fields = ", ".join(repr(k) for k in list(case)[:8]) or "none"
        raise CasesError(
            f"{at}: the case has no {id_field!r} field (its fields: {fields}); "
            f"give every case one, name another field with id_field=..., or pass "
            "id_field=None to let pytest number the cases"
        )
    value = case[id_field]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise CasesError(
            f"{at}: {id_field} {_kind(value)} is not allowed; "
            "an id is a non-empty string or an integer"
        )
    text = str(value)
    if not text.strip():
        raise CasesError(f"{at}: {id_field} is empty; an id is a non-empty string")
    return text


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:40] + '...'}"


def _jsonl(text: str, file: Path) -> Iterator[Record]:
    __tracebackhide__ = True
    # Only \n ends a line: a JSON string may hold U+2028 and other characters that
    # str.splitlines() would split at.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise CasesError(
                f"{file}, line {number}: not JSON ({exc}); JSON lines hold one object per line"
            ) from None
        yield f"line {number}", value


def _json(text: str, file: Path) -> Iterator[Record]:
    __tracebackhide__ = True
    try:
        value = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        where = f", line {line}" if line else ""
        raise CasesError(f"{file}{where}: not JSON ({exc})") from None
    if not isinstance(value, list):
        raise CasesError(f"{file}: a .json cases file holds a list of objects, got {_kind(value)}")
    # json keeps no positions: a case is named by its place in the list, counted from 1.
    for index, case in enumerate(value, 1):
        yield f"case {index}", case


def _csv(text: str, file: Path) -> Iterator[Record]:
    __tracebackhide__ = True
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            return
        if len(set(header)) != len(header):
            twice = next(h for h in header if header.count(h) > 1)
            raise CasesError(
                f"{file}, line 1: column {twice!r} appears twice in the header; "
                "name each column once"
            )
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise CasesError(
                    f"{file}, line {line}: {len(row)} values for {len(header)} columns "
                    f"({', '.join(header)}); quote values that hold commas"
                )
            yield f"line {line}", dict(zip(header, row, strict=True))
    except csv.Error as exc:
        raise CasesError(f"{file}, line {reader.line_num}: not valid CSV ({exc})") from None


def _yaml(text: str, file: Path) -> Iterator[Record]:
    __tracebackhide__ = True
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        value = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CasesError(f"{file}{where}: not valid YAML ({problem})") from None
    finally:
        loader.dispose()
    if value is None:
        return
    if not isinstance(value, list) or not isinstance(node, yaml.SequenceNode):
        raise CasesError(f"{file}: a YAML cases file holds a list of mappings, got {_kind(value)}")
    for child, case in zip(node.value, value, strict=True):
        yield f"line {child.start_mark.line + 1}", case


_READERS = {"jsonl": _jsonl, "json": _json, "csv": _csv, "yaml": _yaml}
