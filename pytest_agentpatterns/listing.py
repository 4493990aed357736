"""The registry as text: every pattern and aggregator a run knows, with their parameters.

What ``pytest --patterns-list`` and ``python -m pytest_agentpatterns list`` print: each
pattern as it is written in ``--patterns`` with its defaults, the roles it needs, what it does,
and each parameter's type, default and allowed range; then the aggregators a task may name.
"""

from __future__ import annotations

import textwrap

from .aggregators import BUILTIN_AGGREGATORS
from .patterns import Registry


def render_registry(registry: Registry, width: int = 80) -> str:
    """Patterns, then aggregators, wrapped to ``width``."""
    width = max(40, width)
    lines = [
        "patterns (--patterns=SPEC[,SPEC]; all: every built-in pattern with its defaults):",
    ]
    for pattern in registry.patterns.values():
        origin = "built-in" if pattern.builtin else "registered"
        roles = ", ".join(pattern.requires) or "none"
        lines.append("")
        spec = registry.canonical(pattern.name, {})  # as written in node ids and reports
        lines.extend(_wrap(f"{spec.id}  [{origin}; roles: {roles}]", width, 2, 6))
        doc = _first_paragraph(pattern.doc or pattern.run.__doc__ or "")
        if doc:
            lines.extend(_wrap(doc, width, 6, 6))
        for key, param in pattern.params.items():
            kind = "integer" if param.type is int else "number"
            what = f"{key}: {kind}, default {spec.kwargs[key]!r}, {_range(param.allowed())}"
            if param.doc:
                what += f"; {param.doc}"
            lines.extend(_wrap(what, width, 6, 10))
    lines.append("")
    lines.append("aggregators (Task(aggregate=NAME): how parallel outputs are combined):")
    for name, fn in registry.aggregators.items():
        origin = "built-in" if BUILTIN_AGGREGATORS.get(name) is fn else "registered"
        doc = _first_paragraph(fn.__doc__ or "")
        text = f"{name}  [{origin}]" + (f": {doc}" if doc else "")
        lines.extend(_wrap(text, width, 2, 6))
    return "\n".join(lines) + "\n"


def _range(allowed: str) -> str:
    """``an integer from 1 to 64`` -> ``from 1 to 64``."""
    for prefix in ("an integer ", "a finite number "):
        if allowed.startswith(prefix):
            return allowed.removeprefix(prefix)
    return "any finite value" if allowed.startswith("a finite number") else "any integer"


def _first_paragraph(doc: str) -> str:
    """A docstring's first paragraph on one line, reST ````literals```` as Markdown's."""
    text = " ".join(textwrap.dedent(doc).strip().split("\n\n")[0].split())
    return text.replace("``", "`")


def _wrap(text: str, width: int, first: int, rest: int) -> list[str]:
    return textwrap.wrap(
        text,
        width,
        initial_indent=" " * first,
        subsequent_indent=" " * rest,
        break_on_hyphens=False,
    ) or [" " * first]
