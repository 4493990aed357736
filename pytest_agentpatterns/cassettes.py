"""Cassettes: vcrpy underneath, replay by logical address, timing kept, secrets never saved.

Stock vcrpy hands out recorded responses in the order requests arrive, scans every
interaction per request, keeps no timing and saves what it is given. Here a vcrpy
``Cassette`` subclass indexes interactions by (call address, canonical request), so the
same logical call always gets the same response in constant time; each response keeps its
measured ``duration``; requests and responses are scrubbed before anything is written,
writes are atomic, and a file that still holds a key shape is refused.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from vcr.cassette import Cassette
from vcr.errors import UnhandledHTTPRequestError
from vcr.filters import decode_response
from vcr.persisters.filesystem import CassetteNotFoundError
from vcr.record_mode import RecordMode
from vcr.request import Request
from vcr.serialize import deserialize, serialize

from .atomic import write_atomic
from .execution import current_site
from .records import Address
from .schema import SchemaError, check_cassette
from .scrub import KeyShape, Scrubber, ScrubRules, find_key_shape, find_key_shape_in_body
from .transport import current_call

T = TypeVar("T")

ADDRESS_HEADER = "x-agentpatterns-address"

KEPT_REQUEST_HEADERS = frozenset(
    {
        "content-type",
        "anthropic-version",
        "anthropic-beta",
        "openai-beta",
        "x-agentpatterns-address",
    }
)
"""The only request headers a cassette keeps: what replay or a reviewer needs, nothing else,
so a header nobody thought of as secret never reaches disk."""
KEPT_RESPONSE_HEADERS = frozenset(
    {
        "content-type",
        "date",
        "request-id",
        "x-request-id",
        "retry-after",
        "retry-after-ms",
        "openai-processing-ms",
        "x-sim-outcome",
    }
)
"""The only response headers a cassette keeps."""


RECORD_MODES = {
    "none": RecordMode.NONE,
    "once": RecordMode.ONCE,
    "new_episodes": RecordMode.NEW_EPISODES,
    "all": RecordMode.ALL,
    "rewrite": RecordMode.ALL,
}


class CassetteError(Exception):
    """A cassette that cannot be read or must not be written; the message names the file."""


class CompactJson:
    """vcrpy serializer: JSON with one-space indent, readable in review and quick to load."""

    @staticmethod
    def serialize(cassette_dict: dict[str, Any]) -> str:
        return json.dumps(cassette_dict, indent=1, ensure_ascii=False) + "\n"

    @staticmethod
    def deserialize(text: str) -> Any:
        return json.loads(text)


def cassette_path(directory: Path, module: str, nodename: str) -> Path:
    """``<directory>/<module>/<test name and ids>.json``, safe on every file system."""
    safe = re.sub(r'[\\/:*?"<>|\s]', "_", nodename)
    return directory / module / f"{safe}.json"


def _key_shape(cassette_dict: Any, text: str) -> KeyShape | None:
    """A key shape in the text about to be written, or in a response's reassembled stream."""
    found = find_key_shape(text)
    for response in cassette_dict.get("responses", ()) if found is None else ():
        found = find_key_shape_in_body(response.get("body", {}).get("string"))
        if found is not None:
            break
    return found


def canonical_body(body: bytes | str | None) -> str:
    """JSON bodies with sorted keys, so key order never makes a miss; others as text."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return text


@dataclass(frozen=True)
class Key:
    """What a recording is found by: the call's address and its canonical request.

    Host and port are left out, so a recording made against the simulator on one port
    replays on any other; the address already pins down which logical call it is.
    """

    address: str
    method: str
    uri: str
    body: str


def _path_and_query(uri: str) -> str:
    parts = urlsplit(uri)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _key(request: Request) -> Key:
    return Key(
        request.headers.get(ADDRESS_HEADER, ""),
        request.method.upper(),
        _path_and_query(request.uri),
        canonical_body(request.body_bytes if hasattr(request, "body_bytes") else request.body),
    )


def _diff(a: Any, b: Any, path: str = "body") -> Iterator[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                yield from _diff(a.get(k), b.get(k), f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                yield from _diff(x, y, f"{path}[{i}]")
    else:
        now, then = json.dumps(a), json.dumps(b)
        start = next(
            (i for i, (x, y) in enumerate(zip(now, then, strict=False)) if x != y),
            min(len(now), len(then)),
        )
        start = max(0, start - 30)
        cut = "..." if start else ""
        window = slice(start, start + 80)
        yield f"{path}: recorded {cut}{then[window]}, now {cut}{now[window]}"


def _sort_key(request: Request) -> tuple[Any, ...]:
    text = request.headers.get(ADDRESS_HEADER, "")
    try:
        return (0, Address.parse(text))
    except ValueError:
        return (1, text)


class _Checked:
    """A serializer whose documents are checked to have a cassette's shape before vcrpy
    reads them, so a wrong field is named rather than failing a replay deep in an SDK."""

    def __init__(self, serializer: Any) -> None:
        self.serializer = serializer

    def deserialize(self, text: str) -> Any:
        return check_cassette(self.serializer.deserialize(text))


class Persister:
    """vcrpy persister: JSON, atomic writes, unreadable files are errors, no key shapes."""

    @classmethod
    def load_cassette(cls, cassette_path: str | Path, serializer: Any) -> Any:
        path = Path(cassette_path)
        if not path.exists():
            raise CassetteNotFoundError()
        advice = (
            "it was left untouched. Fix or delete it, or re-record it with "
            "--patterns-record=rewrite."
        )
        if not path.is_file():
            raise CassetteError(f"cassette {path} is not a file; {advice}")
        try:
            data = path.read_text(encoding="utf-8")
            if not data.strip():
                raise ValueError("the file is empty")
            return deserialize(data, _Checked(serializer))
        except SchemaError as exc:
            raise CassetteError(f"cassette {path} is malformed: {exc}; {advice}") from None
        except Exception as exc:
            raise CassetteError(
                f"cassette {path} is unreadable ({type(exc).__name__}: {exc}); {advice}"
            ) from None

    @staticmethod
    def save_cassette(cassette_path: str | Path, cassette_dict: Any, serializer: Any) -> None:
        path = Path(cassette_path)
        text = serialize(cassette_dict, serializer)
        found = _key_shape(cassette_dict, text)
        if found is not None:
            raise CassetteError(
                f"refused to write cassette {path}: it would hold something shaped like a "
                f"secret ({found.preview}, {found.kind}). Nothing was written. Send the value "
                "as a header or query parameter (those are scrubbed), add its field name or a "
                "re:PATTERN to --patterns-scrub, or report it as a bug."
            )
        write_atomic(path, text)


class PatternCassette(Cassette):  # type: ignore[misc]
    """A vcrpy cassette that replays by call address, in constant time, with durations."""

    def __init__(
        self, *args: Any, rewrite: bool = False, scrub: ScrubRules | None = None, **kwargs: Any
    ) -> None:
        self._index: dict[Key, list[int]] = {}
        self._by_address: dict[str, list[int]] = {}
        self._scrubber = Scrubber(scrub)
        self._rewrite = rewrite
        self._lookups = threading.local()
        self.save_error: CassetteError | None = None
        self.misses: list[str] = []
        kwargs["before_record_request"] = self._filter_request
        kwargs["before_record_response"] = self._filter_response
        kwargs["before_save_interaction"] = self._scrub_interaction
        super().__init__(*args, **kwargs)

    # Filters, applied before anything is matched or stored.

    def _filter_request(self, request: Request) -> Request:
        scrubber = self._scrubber
        headers = dict(request.headers.items())
        scrubber.learn_request(request.uri, headers, request.body)
        # Shallow: the headers and URI are replaced, not mutated; the body is immutable bytes.
        filtered = copy.copy(request)
        filtered.headers = scrubber.scrub_headers(
            {name: value for name, value in headers.items() if name.lower() in KEPT_REQUEST_HEADERS}
        )
        filtered.uri = scrubber.scrub_url(request.uri)
        body = request.body
        if isinstance(body, bytes):
            filtered.body = scrubber.scrub_body(body)
        call = current_call()
        if call is not None and ADDRESS_HEADER not in filtered.headers:
            filtered.headers[ADDRESS_HEADER] = str(call.address)
        return filtered

    def _filter_response(self, response: dict[str, Any]) -> dict[str, Any]:
        response = decode_response(response)
        # Learn what a response hands out as a credential (set-cookie, token fields) before
        # its headers are dropped; everything is scrubbed on save, with all that was learned.
        self._scrubber.learn_headers(response["headers"], response=True)
        self._scrubber.learn_body(response.get("body", {}).get("string"))
        response["headers"] = {
            k: v for k, v in response["headers"].items() if k.lower() in KEPT_RESPONSE_HEADERS
        }
        return response

    def _scrub_interaction(self, request: Request, response: dict[str, Any]) -> Any:
        # On save, with every secret the item's repetitions sent, including later ones.
        scrubber = self._scrubber
        request.uri = scrubber.scrub_url(request.uri)
        request.headers = scrubber.scrub_headers(request.headers)
        if isinstance(request.body, (bytes, str)):
            request.body = scrubber.scrub_body(request.body)
        response["headers"] = scrubber.scrub_headers(response.get("headers", {}))
        body = response.get("body", {}).get("string")
        if isinstance(body, (bytes, str)):
            response["body"]["string"] = scrubber.scrub_body(body)
        return request, response

    # Indexing: every lookup is a dict lookup, whatever the cassette's size.

    def append(self, request: Request, response: dict[str, Any]) -> None:
        before = len(self.data)
        super().append(request, response)
        if len(self.data) == before:
            return
        stored_request, stored_response = self.data[-1]
        key = _key(stored_request)
        self._index.setdefault(key, []).append(before)
        self._by_address.setdefault(key.address, []).append(before)
        call = current_call()
        if call is not None:
            call.stored = stored_response

    def _lookup_key(self, request: Request) -> Key:
        """The index key of an incoming request, filtered once however often it is asked."""
        last = getattr(self._lookups, "last", None)
        if last is not None and last[0] is request:
            return last[1]  # type: ignore[no-any-return]
        key = _key(self._before_record_request(request))
        self._lookups.last = (request, key)
        return key

    def _responses(self, request: Request) -> Iterator[tuple[int, dict[str, Any]]]:
        for index in self._index.get(self._lookup_key(request), ()):
            yield index, self.data[index][1]

    def can_play_response_for(self, request: Request) -> bool:
        # vcrpy's own filters the request, then ``in`` filters it again via _responses.
        playable = (
            self.record_mode != RecordMode.ALL
            and (self.rewound or self.allow_playback_repeats)
            and any(
                self.play_counts[i] == 0 or self.allow_playback_repeats
                for i in self._index.get(self._lookup_key(request), ())
            )
        )
        if not playable and self.write_protected:
            self._miss(request)
        return playable

    def play_response(self, request: Request) -> dict[str, Any]:
        response: dict[str, Any] = super().play_response(request)
        call = current_call()
        if call is not None:
            call.replayed_duration = float(response.get("duration", 0.0))
        return response

    def will_replay(self, address: Address) -> bool:
        """Whether a recording exists at ``address`` (so no live call, no budget check)."""
        return self.record_mode != RecordMode.ALL and str(address) in self._by_address

    def overhead(self, repetition: int) -> float:
        """Seconds the recorded run spent outside calls in ``repetition`` (0 if unknown)."""
        return float(self._metadata.get("overhead", {}).get(f"r{repetition}", 0.0))

    def remember_overhead(self, repetition: int, seconds: float) -> None:
        """Keep a live repetition's time outside calls with the cassette."""
        if self.write_protected or not self.data:
            return
        self._metadata.setdefault("overhead", {})[f"r{repetition}"] = round(seconds, 6)
        self.dirty = True

    def _miss(self, request: Request) -> None:
        from .runner import ReplayMiss

        filtered = self._before_record_request(request)
        key = _key(filtered)
        message = (
            f"no recording for call {key.address or '(unattributed)'} in cassette {self._path}"
            f" (record mode {self.record_mode.value}).\n{self._nearest(key)}\n"
            "To record it, run with --patterns-record=new_episodes (add missing calls) or "
            "--patterns-record=rewrite (record the item anew)."
        )
        self.misses.append(message)
        site = current_site()
        if site is not None:
            site.state.fail(message)
        raise ReplayMiss(message)

    def _nearest(self, key: Key) -> str:
        same_address = self._by_address.get(key.address, [])
        if same_address:
            stored = _key(self.data[same_address[0]][0])
            changes = []
            if stored.method != key.method or stored.uri != key.uri:
                changes.append(
                    f"request line: recorded {stored.method} {stored.uri}, "
                    f"now {key.method} {key.uri}"
                )
            try:
                changes.extend(_diff(json.loads(key.body), json.loads(stored.body)))
            except ValueError:
                if stored.body != key.body:
                    changes.append("body: differs")
            return "The request changed since it was recorded: " + "; ".join(changes[:5])
        if not self.data:
            return "The cassette has no recordings."
        return (
            f"The cassette has {len(self.data)} recordings, none at this address "
            f"(it holds calls {', '.join(sorted(self._by_address)[:5])}"
            f"{', ...' if len(self._by_address) > 5 else ''})."
        )

    # Loading and saving.

    def _load(self) -> None:
        if self._rewrite:
            return
        super()._load()

    def _rerecorded_interactions(self) -> list[tuple[Request, dict[str, Any]]]:
        recorded = self.data[self._loaded_count :]
        fresh = {_key(r).address for r, _ in recorded}
        kept = [(r, s) for r, s in self.data[: self._loaded_count] if _key(r).address not in fresh]
        return sorted(kept + list(recorded), key=lambda pair: _sort_key(pair[0]))

    def _as_dict(self) -> dict[str, list[Any]]:
        """Interactions in address order, so a re-recording diffs cleanly in review."""
        ordered = sorted(self.data, key=lambda pair: _sort_key(pair[0]))
        return {"requests": [r for r, _ in ordered], "responses": [s for _, s in ordered]}

    def _new_interactions(self) -> list[tuple[Request, dict[str, Any]]]:
        return list(self.data[self._loaded_count :])

    def _save(self, force: bool = False) -> None:
        try:
            if self._rewrite and not self.data:
                return
            super()._save(force=force or (self._rewrite and bool(self.data)))
        except CassetteError as exc:
            self.save_error = exc


def run_in_cassette(
    path: Path,
    mode: str,
    meter: Any,
    run: Callable[[Callable[[Any], None]], T],
    scrub: ScrubRules | None = None,
) -> T:
    """Run an item inside its cassette: ``run(attach)`` calls ``attach(state)`` for each
    repetition so its calls are metered and replayed or recorded here. ``scrub``: what the
    user added to scrub (``--patterns-scrub``).

    Raises :class:`CassetteError` when the cassette cannot be read, or could not be saved
    (a key shape was found); nothing is written then.
    """
    with open_cassette(path, mode, scrub) as cassette:

        def attach(state: Any) -> None:
            state.meter = meter
            state.replayer = cassette

        result = run(attach)
    if cassette.save_error is not None:
        raise cassette.save_error
    return result


def open_cassette(path: Path, mode: str, scrub: ScrubRules | None = None) -> Any:
    """A vcrpy context manager for one item's cassette in record mode ``mode``."""
    rewrite = mode == "rewrite"
    return PatternCassette.use(
        path=str(path),
        serializer=CompactJson,
        persister=Persister,
        record_mode=RECORD_MODES[mode],
        rewrite=rewrite,
        scrub=scrub,
        match_on=(),
    )


__all__ = [
    "CassetteError",
    "PatternCassette",
    "UnhandledHTTPRequestError",
    "cassette_path",
    "open_cassette",
]
