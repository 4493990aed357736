"""The noisy oracle: what a simulated model answers, how long it takes, what it costs, and faults.

Every random choice for a request comes from an RNG derived from (seed, model, prompt text,
and how many times this exact request body was seen before), so the same multiset of requests
gets the same multiset of answers in whatever order concurrent requests arrive. A request that
offers tools or asks for JSON draws its extra choices from RNGs of their own, so plain requests
get the same answers as before those features existed.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from . import structured
from .config import Faults, ModelProfile, ModelSet, World, WorldEntry

Api = Literal["anthropic", "chat", "responses"]
Outcome = Literal["correct", "wrong", "generic"]
ToolMode = Literal["none", "auto", "required"]
JsonMode = Literal["text", "json_object", "json_schema"]

CACHE_BLOCK_TOKENS = 128
"""OpenAI caches prompt prefixes in blocks of this many tokens."""

GENERIC_PREFIX = "(simulated reply) "
"""Start of the deterministic answer to a prompt no world entry matches."""


@dataclass(frozen=True)
class Tool:
    """A function the request offers the model: its name and its input's JSON Schema."""

    name: str
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class SimRequest:
    """A provider request reduced to what the oracle needs (built by ``protocol``).

    ``turn_start`` is where the prompt's last turn begins; ``after_tool_result`` says that turn
    carries tool results. ``tool_mode`` is ``required`` for any/required and for a named
    ``forced_tool``. ``definitions`` is the text of the tools and schemas, counted as input.
    """

    api: Api
    model: str
    prompt: str
    last_text: str
    body_key: str
    stream: bool = False
    temperature: float = 1.0
    max_tokens: int | None = None
    n: int = 1
    cache_prefix: str | None = None
    turn_start: int = 0
    after_tool_result: bool = False
    tools: tuple[Tool, ...] = ()
    tool_mode: ToolMode = "none"
    forced_tool: str | None = None
    json_mode: JsonMode = "text"
    json_schema: Mapping[str, Any] | None = field(default=None, hash=False)
    definitions: str = ""


@dataclass(frozen=True)
class ToolCall:
    """A call the model makes: the tool, its arguments as JSON text, and their parsed value.

    ``arguments`` may be cut short (by the token limit) or malformed; ``input`` is then what a
    partial JSON parser reads from it.
    """

    name: str
    arguments: str
    input: Any


@dataclass(frozen=True)
class Choice:
    """One generated answer: text, or a tool call (then ``text`` is empty)."""

    text: str
    outcome: Outcome
    output_tokens: int
    truncated: bool
    tool_call: ToolCall | None = None


@dataclass(frozen=True)
class Plan:
    """The oracle's decision for one request: an error status, or choices with usage and timing.

    ``input_tokens`` counts the whole prompt; ``cache_read_tokens`` and
    ``cache_write_tokens`` are the parts of it read from or written to the prompt cache.
    Times are in seconds, already multiplied by the time scale.
    """

    status: int
    choices: tuple[Choice, ...]
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    ttft: float
    per_token: float
    retry_after: float
    rng: random.Random

    @property
    def output_tokens(self) -> int:
        """Output tokens over all choices."""
        return sum(c.output_tokens for c in self.choices)

    def make_id(self, prefix: str, length: int, alphabet: str = "") -> str:
        """A deterministic id such as ``msg_01...``, drawn from this request's RNG."""
        chars = alphabet or "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        return prefix + "".join(self.rng.choice(chars) for _ in range(length))


def derive_rng(*parts: object) -> random.Random:
    """A ``random.Random`` seeded from a SHA-256 of the parts (stable across runs and hosts)."""
    return random.Random(_digest(*parts))


def _digest(*parts: object) -> int:
    data = "\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(data).digest()[:16], "big")


def generic_answer(last_text: str) -> str:
    """The deterministic echo-like answer for a prompt the world does not know."""
    snippet = " ".join(last_text.split())
    if len(snippet) > 200:
        snippet = snippet[:200].rstrip() + "..."
    return GENERIC_PREFIX + (snippet or "(empty prompt)")


class Oracle:
    """Decides every request; holds the little state that must be shared (thread-safe)."""

    def __init__(
        self,
        world: World,
        models: ModelSet,
        faults: Faults,
        seed: int = 0,
        time_scale: float = 1.0,
    ) -> None:
        self.world = world
        self.models = models
        self.faults = faults
        self.seed = seed
        self.time_scale = time_scale
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()
        self._fail_counts: Counter[str] = Counter()
        self._cache: set[tuple[str, int]] = set()

    def set_faults(self, faults: Faults) -> None:
        """Replace the server-wide faults and restart the ``fail_first`` counts."""
        with self._lock:
            self.faults = faults
            self._fail_counts.clear()

    def plan(self, request: SimRequest) -> Plan:
        """Decide the status, answers, usage and timing of one request."""
        profile = self.models.get(request.model)
        with self._lock:
            occurrence = self._seen[request.body_key]
            self._seen[request.body_key] += 1
        base = (self.seed, request.model, request.prompt, occurrence)
        faults = profile.faults or self.faults
        status, slow = self._fault(faults, request.model if profile.faults else "*", base)
        input_tokens = profile.count_tokens(request.prompt)
        if request.definitions:
            input_tokens += profile.count_tokens(request.definitions)
        rng = derive_rng("ids", *base)
        if status != 200:
            return Plan(status, (), input_tokens, 0, 0, 0.0, 0.0, faults.retry_after, rng)
        choices = tuple(self._choice(request, profile, occurrence, i) for i in range(request.n))
        cache_read, cache_write = self._caching(request, profile, input_tokens)
        ttft, per_token = self._latency(profile, derive_rng("latency", *base), slow, faults)
        return Plan(200, choices, input_tokens, cache_read, cache_write, ttft, per_token, 0.0, rng)

    def _fault(self, faults: Faults, scope: str, base: tuple[object, ...]) -> tuple[int, bool]:
        rng = derive_rng("faults", *base)
        draws = (rng.random(), rng.random(), rng.random())
        if faults.fail_first:
            with self._lock:
                count = self._fail_counts[scope]
                self._fail_counts[scope] += 1
            if count < faults.fail_first:
                return faults.fail_status, False
        if draws[0] < faults.rate_429:
            return 429, False
        if draws[1] < faults.rate_500:
            return 500, False
        return 200, draws[2] < faults.slow_rate

    def _choice(
        self, request: SimRequest, profile: ModelProfile, occurrence: int, index: int
    ) -> Choice:
        entry = self.world.lookup(request.prompt, request.turn_start)
        text: str
        outcome: Outcome
        if entry is None:
            text, outcome = generic_answer(request.last_text), "generic"
        else:
            rng = self._rng("answer", request, occurrence, index)
            correct = rng.random() < profile.accuracy
            wrong = entry.wrong[rng.randrange(len(entry.wrong))]
            text, outcome = (entry.answer, "correct") if correct else (wrong, "wrong")
        if request.tool_mode == "none" and request.json_mode == "text":
            return _cut(text, outcome, profile, request.max_tokens)
        return self._structured(request, profile, entry, text, outcome, occurrence, index)

    def _rng(self, kind: str, request: SimRequest, occurrence: int, index: int) -> random.Random:
        """The RNG of one kind of choice: fixed per prompt at temperature 0, else per request."""
        if request.temperature <= 0:
            return derive_rng(kind, self.seed, request.model, request.prompt)
        return derive_rng(kind, self.seed, request.model, request.prompt, occurrence, index)

    def _structured(
        self,
        request: SimRequest,
        profile: ModelProfile,
        entry: WorldEntry | None,
        text: str,
        outcome: Outcome,
        occurrence: int,
        index: int,
    ) -> Choice:
        """The answer shaped as the request asks: a tool call, or JSON text."""
        rng = self._rng("shape", request, occurrence, index)
        hint = structured.parse_hint(text)
        tool = _pick_tool(request, profile, entry, hint, rng)
        if tool is not None:
            value, used = _conform(tool.schema, hint, rng, f"tool {tool.name!r}")
            arguments = json.dumps(value, ensure_ascii=False)
            malformed = request.api != "anthropic" and rng.random() < profile.invalid_json_rate
            if malformed:
                arguments = structured.malform(arguments, rng)
            cut = _cut(arguments, outcome if used else "generic", profile, request.max_tokens)
            parsed = _partial_json(cut.text) if cut.truncated or malformed else value
            call = ToolCall(tool.name, cut.text, parsed)
            return Choice("", cut.outcome, cut.output_tokens, cut.truncated, call)
        if request.json_mode == "json_schema" and request.json_schema is not None:
            value, used = _conform(request.json_schema, hint, rng, "the response format")
            text = json.dumps(value, ensure_ascii=False)
            outcome = outcome if used else "generic"
        elif request.json_mode == "json_object" and not isinstance(hint, dict):
            text = json.dumps({"answer": hint}, ensure_ascii=False)
        if request.json_mode != "text" and rng.random() < profile.invalid_json_rate:
            text = structured.malform(text, rng)
        return _cut(text, outcome, profile, request.max_tokens)

    def _caching(self, request: SimRequest, profile: ModelProfile, total: int) -> tuple[int, int]:
        """Simulated prompt caching as (tokens read, tokens written).

        Anthropic caches the prefix up to the last ``cache_control`` breakpoint on request;
        OpenAI caches automatically in 128-token blocks once a prompt is long enough.
        """
        if request.api == "anthropic":
            prefix = request.cache_prefix
            if not prefix:
                return 0, 0
            tokens = profile.count_tokens(prefix)
            if tokens < profile.cache_min_tokens:
                return 0, 0
            key = ("anthropic", _digest(request.model, prefix))
            with self._lock:
                if key in self._cache:
                    return tokens, 0
                self._cache.add(key)
            return 0, tokens
        if total < profile.cache_min_tokens:
            return 0, 0
        block_chars = CACHE_BLOCK_TOKENS * profile.chars_per_token
        first = max(1, math.ceil(profile.cache_min_tokens / CACHE_BLOCK_TOKENS))
        last = math.floor(len(request.prompt) / block_chars)
        keys = [
            (k, ("openai", _digest(request.model, request.prompt[: math.floor(k * block_chars)])))
            for k in range(first, last + 1)
        ]
        with self._lock:
            hits = [k for k, key in keys if key in self._cache]
            self._cache.update(key for _, key in keys)
        return (max(hits) * CACHE_BLOCK_TOKENS if hits else 0), 0

    def _latency(
        self, profile: ModelProfile, rng: random.Random, slow: bool, faults: Faults
    ) -> tuple[float, float]:
        if profile.fixed_latency is not None:
            ttft, per_token = profile.fixed_latency, 0.0
        else:
            ttft = profile.ttft_median * math.exp(profile.ttft_sigma * rng.gauss(0.0, 1.0))
            per_token = profile.per_token
        factor = self.time_scale * (faults.slow_factor if slow else 1.0)
        return ttft * factor, per_token * factor


class StructureError(ValueError):
    """A tool or format schema the simulator cannot answer; the message says which one."""


def _cut(text: str, outcome: Outcome, profile: ModelProfile, limit: int | None) -> Choice:
    """The answer as sent: cut to ``limit`` tokens when it is longer."""
    tokens = profile.count_tokens(text)
    if limit is not None and tokens > limit:
        text = text[: max(1, math.floor(limit * profile.chars_per_token))]
        return Choice(text, outcome, limit, True)
    return Choice(text, outcome, tokens, False)


def _conform(
    schema: Mapping[str, Any], hint: Any, rng: random.Random, what: str
) -> tuple[Any, bool]:
    try:
        return structured.conform(schema, hint, rng)
    except structured.SchemaError as exc:
        raise StructureError(f"{what}: {exc}") from None


def _pick_tool(
    request: SimRequest,
    profile: ModelProfile,
    entry: WorldEntry | None,
    hint: Any,
    rng: random.Random,
) -> Tool | None:
    """The tool the model calls, or ``None`` for an answer in text.

    Forced: the named tool. Otherwise the entry's ``tool`` when offered, else the first tool the
    answer fits, else the first tool. Under auto the model calls one with probability
    ``tool_use_rate``; after tool results, only when the question is asked in those results and
    its entry names a tool (a chained call), else it answers in text.
    """
    if request.tool_mode == "none" or not request.tools:
        return None
    named = request.forced_tool or (entry.tool if entry is not None else "")
    tool = next((t for t in request.tools if t.name == named), None)
    if request.tool_mode == "auto":
        if request.after_tool_result and (
            tool is None
            or entry is None
            or not World.asked_since(entry, request.prompt, request.turn_start)
        ):
            return None
        if rng.random() >= profile.tool_use_rate:
            return None
    if tool is None:
        probe = random.Random(0)
        tool = next((t for t in request.tools if _fits(t.schema, hint, probe)), request.tools[0])
    return tool


def _fits(schema: Mapping[str, Any], hint: Any, rng: random.Random) -> bool:
    try:
        return structured.conform(schema, hint, rng)[1]
    except structured.SchemaError:
        return False


def _partial_json(text: str) -> Any:
    """What a partial JSON parser (the SDKs' own, jiter) reads from cut or malformed text."""
    import jiter

    try:
        value = jiter.from_json(text.encode(), partial_mode=True)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
