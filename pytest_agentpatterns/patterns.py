"""Pattern specs (``parallel(n=8)``), the registry, and the built-in patterns.

Every built-in pattern is a short composition of the :class:`~.execution.Flow` primitives
(call, fork, chain, vote, verify-until, loop); users add their own the same way through the
``pytest_agentpatterns_register`` hook.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .aggregators import BUILTIN_AGGREGATORS, Aggregator, rank_by_votes
from .execution import Flow

PatternFn = Callable[[Flow], Awaitable[Any]]


class SpecError(ValueError):
    """A pattern spec that cannot be parsed or validated; the message says what is allowed."""


MAX_BRANCHES = 64
"""The most concurrent candidates a built-in pattern forks (``parallel``, ``hybrid``,
``escalate``): each is a live provider call at the same moment, beyond what one API key's
concurrency limits take, and the thread pool for sync roles must also hold nested forks and
every xdist worker's items."""
MAX_ITERS = 64
"""The most rounds ``loop`` runs: each is a verify and a refine call, one after the other."""


@dataclass(frozen=True)
class Param:
    """A pattern parameter: its type, default and allowed range (bounds inclusive).

    Values are finite: NaN and infinities are refused whatever the range.
    """

    type: type
    default: int | float
    minimum: float | None = None
    maximum: float | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        if self.type not in (int, float):
            raise SpecError(f"Param type must be int or float, got {self.type!r}")
        for bound in (self.minimum, self.maximum):
            if bound is not None and (
                isinstance(bound, bool)
                or not isinstance(bound, (int, float))
                or not math.isfinite(bound)
            ):
                raise SpecError(f"Param bounds must be finite numbers or None, got {bound!r}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise SpecError(f"Param minimum {self.minimum:g} is above its maximum {self.maximum:g}")
        _coerce("Param", "default", self, self.default)

    def allowed(self) -> str:
        """What a value may be, as an error message says it."""
        kind = "an integer" if self.type is int else "a finite number"
        if self.minimum is not None and self.maximum is not None:
            return f"{kind} from {self.minimum:g} to {self.maximum:g}"
        if self.minimum is not None:
            return f"{kind} >= {self.minimum:g}"
        if self.maximum is not None:
            return f"{kind} <= {self.maximum:g}"
        return kind


@dataclass(frozen=True)
class Pattern:
    """A named orchestration pattern: its coroutine, parameters and the roles it needs."""

    name: str
    run: PatternFn
    params: Mapping[str, Param] = field(default_factory=dict)
    requires: tuple[str, ...] = ("propose",)
    doc: str = ""
    builtin: bool = False

    def missing_roles(self, task: Any, params: Mapping[str, Any]) -> tuple[str, ...]:
        """The roles this pattern needs that ``task`` lacks."""
        missing = [role for role in self.requires if not task.has(role)]
        if "aggregate" in self.requires and task.aggregate == "best" and not task.has("verify"):
            missing.append("verify")
        return tuple(dict.fromkeys(missing))


@dataclass(frozen=True, order=True)
class PatternSpec:
    """A pattern name with its parameter values; ``id`` is the canonical text."""

    name: str
    params: tuple[tuple[str, int | float], ...] = ()

    @property
    def id(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}({','.join(f'{k}={v!r}' for k, v in self.params)})"

    @property
    def kwargs(self) -> dict[str, int | float]:
        return dict(self.params)

    def __str__(self) -> str:
        return self.id


class Registry:
    """Patterns and aggregators known to this run; hooks add to it at start-up."""

    def __init__(self) -> None:
        self.patterns: dict[str, Pattern] = {}
        self.aggregators: dict[str, Aggregator] = {}

    def add_pattern(
        self,
        name: str,
        run: PatternFn,
        *,
        params: Mapping[str, Param] | None = None,
        requires: Sequence[str] = ("propose",),
        doc: str = "",
    ) -> Pattern:
        """Register a pattern: ``run(flow)`` is a coroutine returning the task's output."""
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise SpecError(
                f"pattern name {name!r} is not allowed: use lower-case letters, digits and _"
            )
        if name in self.patterns or name == "all":
            raise SpecError(f"pattern {name!r} is already registered")
        pattern = Pattern(name, run, dict(params or {}), tuple(requires), doc)
        self.patterns[name] = pattern
        return pattern

    def add_aggregator(self, name: str, fn: Callable[[list[Any]], Any]) -> None:
        """Register an aggregator: ``fn(outputs) -> output`` (plain or async)."""
        if name in self.aggregators:
            raise SpecError(f"aggregator {name!r} is already registered")

        async def aggregate(flow: Flow, outputs: list[Any]) -> Any:
            return await flow.call("aggregate", fn, outputs)

        aggregate.__doc__ = fn.__doc__  # for --patterns-list
        self.aggregators[name] = aggregate

    def builtin_specs(self) -> tuple[PatternSpec, ...]:
        """What ``--patterns=all`` means: every built-in pattern with its defaults."""
        return tuple(self.canonical(p.name, {}) for p in self.patterns.values() if p.builtin)

    def canonical(self, name: str, given: Mapping[str, str | int | float]) -> PatternSpec:
        """Validate parameters and fill in defaults, in declaration order."""
        if name not in self.patterns:
            raise SpecError(f"unknown pattern {quoted(name)}; allowed: {self.allowed()}")
        pattern = self.patterns[name]
        unknown = [k for k in given if k not in pattern.params]
        if unknown:
            allowed = ", ".join(pattern.params) or "none"
            raise SpecError(
                f"pattern {name!r} has no parameter {quoted(unknown[0])}; allowed: {allowed}"
            )
        values: list[tuple[str, int | float]] = []
        for key, param in pattern.params.items():
            raw = given.get(key, param.default)
            values.append((key, _coerce(name, key, param, raw)))
        return PatternSpec(name, tuple(values))

    def parse(self, text: str) -> tuple[PatternSpec, ...]:
        """Parse ``--patterns`` text: specs separated by commas, or ``all``."""
        specs: list[PatternSpec] = []
        for part in _split_top_level(text):
            if part == "all":
                specs.extend(self.builtin_specs())
            else:
                specs.append(self.parse_one(part))
        if not specs:
            raise SpecError(f"no pattern given in {text!r}; allowed: {self.allowed()}")
        return tuple(dict.fromkeys(specs))

    def parse_one(self, text: str) -> PatternSpec:
        """Parse one spec, ``name`` or ``name(key=value, ...)``, into its canonical form."""
        stripped = text.strip()
        match = _SPEC.fullmatch(stripped)
        if not match:
            raise SpecError(
                f"malformed pattern spec {quoted(stripped)}; write name or name(key=value, ...), "
                f"e.g. parallel(n=8); allowed: {self.allowed()}"
            )
        name, args = match.group(1), match.group(2)
        given: dict[str, str] = {}
        if args is not None and args.strip():
            for arg in args.split(","):
                key, eq, value = (part.strip() for part in arg.partition("="))
                if not eq or not key or not value:
                    raise SpecError(
                        f"malformed argument {quoted(arg.strip())} in {quoted(stripped)}; "
                        "write key=value, e.g. parallel(n=8)"
                    )
                if key in given:
                    raise SpecError(
                        f"parameter {key!r} given twice in {quoted(stripped)}; "
                        "write each key=value once, e.g. parallel(n=8)"
                    )
                given[key] = value
        return self.canonical(name, given)

    def allowed(self) -> str:
        """Every pattern with its parameters' defaults, then ``all``."""

        def show(p: Pattern) -> str:
            if not p.params:
                return p.name
            return f"{p.name}({', '.join(f'{k}={v.default:g}' for k, v in p.params.items())})"

        return ", ".join(show(p) for p in self.patterns.values()) + ", all"


_SPEC = re.compile(r"([A-Za-z_]\w*)\s*(?:\(([^()]*)\))?")
"""A stripped spec: a name, then optionally one level of parentheses holding the arguments."""


def quoted(text: str, limit: int = 60) -> str:
    """``text`` quoted for an error message, cut short when long."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _coerce(name: str, key: str, param: Param, raw: str | int | float) -> int | float:
    """``raw`` as the parameter's type, or a SpecError saying what is allowed."""

    def refuse() -> SpecError:
        shown = raw if not isinstance(raw, str) else quoted(raw)[1:-1]
        return SpecError(f"{name}({key}={shown}) is not allowed: {key} must be {param.allowed()}")

    if isinstance(raw, bool):
        raise refuse()
    value: int | float
    try:
        if param.type is int:
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            value = int(raw, 10) if isinstance(raw, str) else int(raw)
        else:
            value = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise refuse() from None
    if not math.isfinite(value):
        raise refuse()
    if (param.minimum is not None and value < param.minimum) or (
        param.maximum is not None and value > param.maximum
    ):
        raise refuse()
    return value


def _split_top_level(text: str) -> list[str]:
    """Split at the commas outside parentheses; unbalanced parentheses are a SpecError."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SpecError(
                    f"unbalanced ')' in {quoted(text.strip())}; write name(key=value, ...), "
                    "e.g. parallel(n=8)"
                )
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if depth > 0:
        raise SpecError(
            f"unclosed '(' in {quoted(text.strip())}; write name(key=value, ...), "
            "e.g. parallel(n=8)"
        )
    parts.append(current.strip())
    return [p for p in parts if p]


# The built-in patterns.


async def single(flow: Flow) -> Any:
    """``propose`` once."""
    return await flow.propose()


async def sequential(flow: Flow) -> Any:
    """``steps`` in order, each fed the previous output."""
    return await flow.chain()


async def parallel(flow: Flow) -> Any:
    """n concurrent ``propose`` calls combined by the task's aggregator."""
    outputs = await flow.fork("parallel", int(flow.params["n"]), lambda _: flow.propose())
    return await flow.aggregate(outputs)


async def hybrid(flow: Flow) -> Any:
    """n concurrent candidates ranked by votes, verified in rank order until one passes."""
    outputs = await flow.fork("hybrid", int(flow.params["n"]), lambda _: flow.propose())
    ranked = [group[0] for group in rank_by_votes(outputs)]
    for k, candidate in enumerate(ranked):

        async def check(candidate: Any = candidate) -> Any:
            return await flow.verify(candidate)

        verdict = await flow.within(f"verify[{k}]", check)
        if verdict.ok:
            flow.state.verified = True
            return candidate
    flow.state.verified = False
    return ranked[0]


async def escalate(flow: Flow) -> Any:
    """Parallel; when the top answer's vote share is below threshold, run the chain."""
    n = int(flow.params["n"])
    outputs = await flow.fork("escalate", n, lambda _: flow.propose())
    top = rank_by_votes(outputs)[0]
    # Within half a percent counts as reaching it, so the default 0.67 means two of three.
    if len(top) / n >= float(flow.params["threshold"]) - 0.005:
        return top[0]
    return await flow.within("chain", flow.chain)


async def loop(flow: Flow) -> Any:
    """Evaluator-optimizer: propose, verify, refine with the feedback until it passes."""
    output: Any = None
    feedback: Any = None
    for i in range(int(flow.params["max_iters"])):

        async def iteration(i: int = i, feedback: Any = feedback) -> Any:
            nonlocal output
            if i == 0:
                output = await flow.propose()
            else:
                output = await flow.refine(output, feedback)
            return await flow.verify(output)

        verdict = await flow.within(f"loop[{i}]", iteration)
        if verdict.ok:
            flow.state.verified = True
            return output
        feedback = verdict.feedback
    flow.state.verified = False
    return output


def builtin_registry() -> Registry:
    """A registry holding the six built-in patterns and the built-in aggregators."""
    registry = Registry()
    n = "number of concurrent candidates"
    builtins: list[tuple[str, PatternFn, dict[str, Param], tuple[str, ...]]] = [
        ("single", single, {}, ("propose",)),
        # Without steps the chain would be [propose], a duplicate of single: skip instead.
        ("sequential", sequential, {}, ("steps",)),
        (
            "parallel",
            parallel,
            {"n": Param(int, 5, 1, MAX_BRANCHES, doc=n)},
            ("propose", "aggregate"),
        ),
        ("hybrid", hybrid, {"n": Param(int, 3, 1, MAX_BRANCHES, doc=n)}, ("propose", "verify")),
        (
            "escalate",
            escalate,
            {
                "n": Param(int, 3, 1, MAX_BRANCHES, doc=n),
                "threshold": Param(float, 0.67, 0.0, 1.0, doc="vote share to accept"),
            },
            ("propose",),
        ),
        (
            "loop",
            loop,
            {"max_iters": Param(int, 3, 1, MAX_ITERS, doc="rounds of verify/refine")},
            ("propose", "verify", "refine"),
        ),
    ]
    for name, fn, params, requires in builtins:
        registry.patterns[name] = Pattern(
            name, fn, params, requires, (fn.__doc__ or "").strip(), builtin=True
        )
    registry.aggregators.update(BUILTIN_AGGREGATORS)
    return registry
