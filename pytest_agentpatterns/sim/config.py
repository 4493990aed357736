"""The simulator's configuration: worlds, model profiles and faults, and the one place they load.

The shipped data lives beside this module as JSON (``world.json`` and ``models.json``); users
pass their own as a mapping in the same format, a path to such a file, or the dataclasses.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, TypeAlias

WorldSource: TypeAlias = "World | Mapping[str, Any] | str | os.PathLike[str] | None"
ModelsSource: TypeAlias = (
    "ModelSet | Mapping[str, ModelProfile | Mapping[str, Any]] | str | os.PathLike[str] | None"
)
FaultsSource: TypeAlias = "Faults | Mapping[str, Any] | None"

FALLBACK = "*"
"""Key under which a models mapping may replace the profile used for unknown model names."""


class SimConfigError(ValueError):
    """A world, model or fault description is malformed; the message says where and why."""


@dataclass(frozen=True)
class Faults:
    """Injected failures, server-wide or for one model.

    ``fail_first`` fails the first K requests it applies to with ``fail_status``, so retries
    can be tested without randomness; the ``rate_*`` knobs fail requests at random (seeded).
    """

    rate_429: float = 0.0
    rate_500: float = 0.0
    slow_rate: float = 0.0
    slow_factor: float = 5.0
    retry_after: float = 1.0
    fail_first: int = 0
    fail_status: int = 429

    def __post_init__(self) -> None:
        for name in ("rate_429", "rate_500", "slow_rate"):
            _check_probability(f"faults.{name}", getattr(self, name))
        _check_non_negative("faults.slow_factor", self.slow_factor)
        _check_non_negative("faults.retry_after", self.retry_after)
        _check_non_negative("faults.fail_first", self.fail_first)
        if self.fail_status not in (429, 500, 503, 529):
            raise SimConfigError(
                f"faults.fail_status must be one of 429, 500, 503, 529, not {self.fail_status!r}"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "faults") -> Faults:
        """Build from a JSON-like mapping, rejecting unknown keys."""
        faults: Faults = _from_mapping(cls, data, where)
        return faults


@dataclass(frozen=True)
class ModelProfile:
    """How one simulated model behaves: its accuracy, latency, token counting and faults.

    Latency is ``ttft`` (lognormal around ``ttft_median`` with shape ``ttft_sigma``) plus
    ``per_token`` seconds per output token; ``fixed_latency`` replaces all of it with a constant.
    Prompts of at least ``cache_min_tokens`` tokens are eligible for simulated prompt caching.
    Offered tools under ``tool_choice`` auto, the model calls one with probability
    ``tool_use_rate``; a JSON answer (response format, OpenAI tool arguments) is malformed
    text with probability ``invalid_json_rate``.
    """

    accuracy: float = 0.8
    ttft_median: float = 0.5
    ttft_sigma: float = 0.3
    per_token: float = 0.01
    chars_per_token: float = 4.0
    fixed_latency: float | None = None
    cache_min_tokens: int = 1024
    tool_use_rate: float = 0.9
    invalid_json_rate: float = 0.0
    faults: Faults | None = None

    def __post_init__(self) -> None:
        for name in ("accuracy", "tool_use_rate", "invalid_json_rate"):
            _check_probability(name, getattr(self, name))
        _check_non_negative("ttft_median", self.ttft_median)
        _check_non_negative("ttft_sigma", self.ttft_sigma)
        _check_non_negative("per_token", self.per_token)
        if not self.chars_per_token > 0:
            raise SimConfigError(f"chars_per_token must be > 0, not {self.chars_per_token!r}")
        if self.fixed_latency is not None:
            _check_non_negative("fixed_latency", self.fixed_latency)
        _check_non_negative("cache_min_tokens", self.cache_min_tokens)

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by this model's rule: ceil(chars / chars_per_token), at least 1."""
        return max(1, math.ceil(len(text) / self.chars_per_token))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "model") -> ModelProfile:
        """Build from a JSON-like mapping (``faults`` may be a nested mapping)."""
        values = dict(data)
        if isinstance(values.get("faults"), Mapping):
            values["faults"] = Faults.from_mapping(values["faults"], f"{where}.faults")
        profile: ModelProfile = _from_mapping(cls, values, where)
        return profile


@dataclass(frozen=True)
class ModelSet:
    """Named model profiles plus the fallback profile that serves any other model name."""

    profiles: Mapping[str, ModelProfile]
    fallback: ModelProfile

    def get(self, name: str) -> ModelProfile:
        """The profile for ``name``; unknown names get the fallback (never an error)."""
        return self.profiles.get(name, self.fallback)

    def merged(self, overrides: Mapping[str, ModelProfile]) -> ModelSet:
        """A copy with ``overrides`` added or replaced; the key ``"*"`` replaces the fallback."""
        profiles = dict(self.profiles)
        fallback = self.fallback
        for name, profile in overrides.items():
            if name == FALLBACK:
                fallback = profile
            else:
                profiles[name] = profile
        return ModelSet(profiles=profiles, fallback=fallback)


SCOPES = ("conversation", "last_turn")
"""Where a world entry's ``match`` is looked for: anywhere in the prompt, or in its last turn."""


@dataclass(frozen=True)
class WorldEntry:
    """A question the simulator knows: found by ``match`` (a case-insensitive substring).

    ``scope`` says where ``match`` counts: anywhere in the conversation, or only in its last
    turn (the newest user message or tool results). ``tool`` names the tool a model that may
    choose calls for this question.
    """

    match: str
    answer: str
    wrong: tuple[str, ...]
    id: str = ""
    kind: str = ""
    prompt: str = ""
    scope: str = "conversation"
    tool: str = ""

    def __post_init__(self) -> None:
        if not self.match.strip():
            raise SimConfigError(f"world entry {self.id or self.answer!r}: 'match' is empty")
        if not self.wrong:
            raise SimConfigError(f"world entry {self.id or self.match!r}: 'wrong' is empty")
        if self.prompt and self.match.casefold() not in self.prompt.casefold():
            raise SimConfigError(
                f"world entry {self.id or self.match!r}: its 'prompt' does not contain its 'match'"
            )
        if self.scope not in SCOPES:
            raise SimConfigError(
                f"world entry {self.id or self.match!r}: 'scope' must be one of "
                f"{', '.join(SCOPES)}, not {self.scope!r}"
            )


@dataclass(frozen=True)
class World:
    """The questions the simulator can answer, and the lookup from a prompt to one of them."""

    entries: tuple[WorldEntry, ...] = ()
    about: str = ""
    _folded: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_folded", tuple(e.match.casefold() for e in self.entries))

    def lookup(self, prompt: str, turn_start: int = 0) -> WorldEntry | None:
        """The entry whose ``match`` occurs latest in ``prompt`` (the most recent question).

        Entries scoped to the last turn count only from ``turn_start``, where the prompt's last
        turn begins. Ties (matches ending at the same place) go to the longer match, then to
        file order.
        """
        text = prompt.casefold()
        turn_start = _folded_offset(prompt, turn_start)
        best: WorldEntry | None = None
        best_key = (-1, -1)
        for entry, folded in zip(self.entries, self._folded, strict=True):
            at = text.rfind(folded)
            if at < 0 or (entry.scope == "last_turn" and at < turn_start):
                continue
            key = (at + len(folded), len(folded))
            if key > best_key:
                best, best_key = entry, key
        return best

    @staticmethod
    def asked_since(entry: WorldEntry, prompt: str, start: int) -> bool:
        """Whether ``entry``'s ``match`` occurs in ``prompt`` at or after offset ``start``."""
        return prompt.casefold().rfind(entry.match.casefold()) >= _folded_offset(prompt, start)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | Iterable[Any], where: str = "world") -> World:
        """Build from ``{"_about": ..., "entries": [...]}`` or a bare list of entries."""
        if isinstance(data, Mapping):
            unknown = set(data) - {"_about", "entries"}
            if unknown:
                raise SimConfigError(f"{where}: unknown keys {sorted(unknown)}")
            about = str(data.get("_about", ""))
            raw_entries = data.get("entries", [])
        else:
            about, raw_entries = "", data
        if not isinstance(raw_entries, list):
            raise SimConfigError(f"{where}: 'entries' must be a list")
        entries = tuple(
            _world_entry(item, f"{where}.entries[{i}]") for i, item in enumerate(raw_entries)
        )
        return cls(entries=entries, about=about)


def _folded_offset(text: str, offset: int) -> int:
    """``offset`` in ``text`` as an offset in ``text.casefold()`` (which can be longer)."""
    return len(text[:offset].casefold())


def _world_entry(item: Any, where: str) -> WorldEntry:
    if not isinstance(item, Mapping):
        raise SimConfigError(f"{where}: must be an object")
    unknown = set(item) - {"match", "answer", "wrong", "id", "kind", "prompt", "scope", "tool"}
    if unknown:
        raise SimConfigError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("match", "answer", "wrong"):
        if key not in item:
            raise SimConfigError(f"{where}: missing {key!r}")
    if not isinstance(item["wrong"], list):
        raise SimConfigError(f"{where}: 'wrong' must be a list")
    try:
        return WorldEntry(
            match=str(item["match"]),
            answer=answer_text(item["answer"]),
            wrong=tuple(answer_text(w) for w in item["wrong"]),
            id=str(item.get("id", "")),
            kind=str(item.get("kind", "")),
            prompt=str(item.get("prompt", "")),
            scope=str(item.get("scope", "conversation")),
            tool=str(item.get("tool", "")),
        )
    except SimConfigError as exc:
        raise SimConfigError(f"{where}: {exc}") from None


def answer_text(value: Any) -> str:
    """An answer as the model says it: strings as they are, other JSON values serialised."""
    return value if isinstance(value, str) else json.dumps(value)


def load_world(source: WorldSource = None) -> World:
    """The shipped world for ``None``, else the given world, mapping or JSON file."""
    if isinstance(source, World):
        return source
    if source is None:
        return World.from_mapping(_read_packaged("world.json"), "world.json")
    if isinstance(source, Mapping):
        return World.from_mapping(source)
    return World.from_mapping(_read_file(source), str(source))


def load_models(source: ModelsSource = None) -> ModelSet:
    """The shipped model set, with ``source`` (a mapping or a models.json file) merged over it.

    A ``ModelSet`` is taken as it is.

    A mapping maps model names to profiles (or profile mappings); the name ``"*"`` replaces
    the fallback profile. A file has the shipped format: ``{"fallback": ..., "models": ...}``.
    """
    if isinstance(source, ModelSet):
        return source
    shipped = _model_set(_read_packaged("models.json"), "models.json")
    if source is None:
        return shipped
    if isinstance(source, Mapping):
        overrides = {
            name: p
            if isinstance(p, ModelProfile)
            else ModelProfile.from_mapping(p, f"models[{name!r}]")
            for name, p in source.items()
        }
        return shipped.merged(overrides)
    custom = _model_set(_read_file(source), str(source), shipped.fallback)
    return shipped.merged({**custom.profiles, FALLBACK: custom.fallback})


def load_faults(source: FaultsSource) -> Faults:
    """Server-wide faults from a Faults, a mapping, or ``None`` (no faults)."""
    if source is None:
        return Faults()
    if isinstance(source, Faults):
        return source
    return Faults.from_mapping(source)


def _model_set(data: Any, where: str, fallback: ModelProfile | None = None) -> ModelSet:
    if not isinstance(data, Mapping):
        raise SimConfigError(f"{where}: must be an object")
    unknown = set(data) - {"_about", "fallback", "models"}
    if unknown:
        raise SimConfigError(f"{where}: unknown keys {sorted(unknown)}")
    raw_models = data.get("models", {})
    if not isinstance(raw_models, Mapping):
        raise SimConfigError(f"{where}: 'models' must be an object")
    if "fallback" in data:
        fallback = ModelProfile.from_mapping(data["fallback"], f"{where}.fallback")
    profiles = {
        str(name): ModelProfile.from_mapping(p, f"{where}.models[{name!r}]")
        for name, p in raw_models.items()
    }
    return ModelSet(profiles=profiles, fallback=fallback or ModelProfile())


def _read_packaged(name: str) -> Any:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return json.loads(text)


def _read_file(path: str | os.PathLike[str]) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SimConfigError(f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise SimConfigError(f"{os.fspath(path)!r} is not valid JSON: {exc}") from None


def _from_mapping(cls: Any, data: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, Mapping):
        raise SimConfigError(f"{where}: must be an object")
    allowed = {f.name for f in fields(cls)}
    values = {k: v for k, v in data.items() if k != "_about"}
    unknown = set(values) - allowed
    if unknown:
        raise SimConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    try:
        return replace(cls(), **values)
    except SimConfigError as exc:
        raise SimConfigError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise SimConfigError(f"{where}: {exc}") from None


def _check_probability(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise SimConfigError(f"{name} must be a probability in [0, 1], not {value!r}")


def _check_non_negative(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or value < 0:
        raise SimConfigError(f"{name} must be a number >= 0, not {value!r}")
