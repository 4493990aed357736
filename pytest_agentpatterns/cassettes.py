"""Cassettes: vcrpy underneath, replay by logical address, timing kept, secrets never saved.

Stock vcrpy hands out recorded responses in the order requests arrive, scans every
interaction per request, keeps no timing, reads a whole response before the caller sees
any of it, and saves what it is given. Here a vcrpy ``Cassette`` subclass indexes
interactions by (call address, canonical request), so the same logical call always gets
the same response in constant time; each response keeps its measured ``duration``; the
httpx transports are recorded by stubs of our own (vcrpy's ``custom_patches``) that pass a
stream through as it arrives; a retried call keeps only the attempt that answered; a call
that failed without an answer, or was refused because a sibling branch failed, is kept as
such and replays the same way; requests and responses are scrubbed before anything is
written, writes are atomic, and a file that still holds a key shape is refused.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import hashlib
import importlib
import json
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
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
from .execution import BranchCancelled, current_site
from .network import blocked
from .records import Address
from .schema import SchemaError, check_cassette
from .scrub import KeyShape, Scrubber, ScrubRules, find_key_shape, find_key_shape_in_body
from .transport import CallInfo, current_call

T = TypeVar("T")

ADDRESS_HEADER = "x-agentpatterns-address"
UNANSWERED = "unanswered"
"""The cassette metadata key for calls that got no answer: ``{address: {"error": {"type",
"message"}, "request": fingerprint} or {"cancelled": true}, "duration"}``. They are not HTTP
interactions, so they are kept beside them and the interactions stay what vcrpy reads."""
NO_INTERACTION = -1

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
    return _address_order(request.headers.get(ADDRESS_HEADER, ""))


def _address_order(text: str) -> tuple[Any, ...]:
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
        self,
        *args: Any,
        rewrite: bool = False,
        holder: _Holder | None = None,
        scrub: ScrubRules | None = None,
        **kwargs: Any,
    ) -> None:
        self._index: dict[Key, list[int]] = {}
        self._by_address: dict[str, list[int]] = {}
        self._dropped: set[int] = set()
        self._played_by: dict[int, CallInfo] = {}
        self._cancellations: dict[int, list[str]] = {}
        self._fresh: set[str] = set()
        self._scrubber = Scrubber(scrub)
        self._rewrite = rewrite
        self._lookups = threading.local()
        self._lock = threading.RLock()
        self.save_error: CassetteError | None = None
        self.misses: list[str] = []
        if holder is not None:
            holder.cassette = self
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
        with self._lock:
            before = len(self.data)
            super().append(request, response)
            if len(self.data) == before:
                return
            key = _key(self.data[-1][0])
            self._index.setdefault(key, []).append(before)
            self._by_address.setdefault(key.address, []).append(before)

    def _record(self, call: CallInfo | None, request: Request, response: dict[str, Any]) -> int:
        """Store one interaction of ``call``; an earlier attempt's recordings give way."""
        with self._lock:
            before = len(self.data)
            self.append(request, response)
            if len(self.data) == before:
                return -1
            if call is not None:
                self._supersede(call)
                self._unanswered().pop(str(call.address), None)
                call.recorded.append((call.attempt, before))
                call.stored = self.data[before][1]
            return before

    def _record_unanswered(self, call: CallInfo, entry: dict[str, Any]) -> None:
        """Keep that ``call`` got no answer: it failed before any response, or was refused."""
        with self._lock:
            self._supersede(call)
            self._metadata.setdefault(UNANSWERED, {})[str(call.address)] = entry
            self._fresh.add(str(call.address))
            call.recorded.append((call.attempt, NO_INTERACTION))
            call.stored = entry
            self.dirty = True

    def _supersede(self, call: CallInfo) -> None:
        """A new attempt of ``call`` answers for it: drop what its earlier attempts left."""
        for attempt, index in call.recorded:
            if attempt < call.attempt and index != NO_INTERACTION:
                self._drop(index)
        call.recorded = [(a, i) for a, i in call.recorded if a == call.attempt]

    def _unanswered(self) -> dict[str, dict[str, Any]]:
        table = self._metadata.get(UNANSWERED)
        return table if isinstance(table, dict) else {}

    def _unanswered_for(
        self, call: CallInfo | None, key: Key | None = None
    ) -> dict[str, Any] | None:
        """The recorded outcome of a call that got no answer, if ``call`` replays one (and,
        given its request's ``key``, the request is the one recorded)."""
        if call is None or self.record_mode == RecordMode.ALL or not self.rewound:
            return None
        if any(index == NO_INTERACTION for _, index in call.recorded):
            return None  # this call's own outcome, recorded now: a retry goes live
        entry = self._unanswered().get(str(call.address))
        if (
            entry is None
            or key is None
            or entry.get("request", _fingerprint(key)) == (_fingerprint(key))
        ):
            return entry
        return None

    def _drop(self, index: int) -> None:
        """Forget a recording made this run (a failed attempt that was retried)."""
        if index in self._dropped:
            return
        self._dropped.add(index)
        key = _key(self.data[index][0])
        _unlist(self._index, key, index)
        _unlist(self._by_address, key.address, index)
        self.dirty = True

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

    def _playable(self, request: Request, call: CallInfo | None) -> int | None:
        """The recording that answers ``request`` now: unplayed, or already played to an
        earlier attempt of the same call; never one this call recorded itself."""
        if self.record_mode == RecordMode.ALL or not (self.rewound or self.allow_playback_repeats):
            return None
        own = {i for _, i in call.recorded} if call is not None else set()
        for index in self._index.get(self._lookup_key(request), ()):
            if index in own:
                continue
            if self.play_counts[index] == 0 or self.allow_playback_repeats:
                return index
            if call is not None and self._played_by.get(index) is call:
                return index
        return None

    def can_play_response_for(self, request: Request) -> bool:
        with self._lock:
            playable = self._playable(request, current_call()) is not None
        if not playable and self.write_protected:
            self._miss(request)
        return playable

    def play_response(self, request: Request) -> dict[str, Any]:
        call = current_call()
        with self._lock:
            index = self._playable(request, call)
            if index is None:
                raise UnhandledHTTPRequestError(
                    f"The cassette ({self._path!r}) doesn't contain the request "
                    f"({request!r}) asked for"
                )
            self.play_counts[index] += 1
            response: dict[str, Any] = self.data[index][1]
            if call is not None:
                self._played_by[index] = call
        if call is not None:
            call.replayed_duration = float(response.get("duration", 0.0))
        return response

    def will_replay(self, call: CallInfo) -> bool:
        """Whether a recording answers ``call`` (so no live call, no budget check)."""
        if self.record_mode == RecordMode.ALL or not (self.rewound or self.allow_playback_repeats):
            return False
        own = {i for _, i in call.recorded}
        with self._lock:
            if self._unanswered_for(call) is not None:
                return True
            return any(i not in own for i in self._by_address.get(str(call.address), ()))

    def record_cancelled(self, call: CallInfo) -> None:
        """Keep that ``call`` was refused because a sibling branch had failed, so replay
        refuses it too, whatever the timing of the replayed branches."""
        if self.write_protected:
            return
        self._record_unanswered(call, {"cancelled": True})
        self._cancellations.setdefault(call.address.repetition, []).append(str(call.address))

    def forget_cancellations(self, repetition: int) -> None:
        """Drop the refusals kept for ``repetition`` (it was stopped by the budget, so they
        say nothing about the task)."""
        with self._lock:
            table = self._unanswered()
            for address in self._cancellations.pop(repetition, []):
                if table.get(address, {}).get("cancelled"):
                    del table[address]
                    self._fresh.discard(address)

    def replays(self, repetition: int) -> bool:
        """Whether ``repetition`` only replays what this cassette recorded of it."""
        return self.write_protected and f"r{repetition}" in self._metadata.get("overhead", {})

    def overhead(self, repetition: int) -> float:
        """Seconds the recorded run spent outside calls in ``repetition`` (0 if unknown)."""
        return float(self._metadata.get("overhead", {}).get(f"r{repetition}", 0.0))

    def remember_overhead(self, repetition: int, seconds: float) -> None:
        """Keep a live repetition's time outside calls with the cassette."""
        if self.write_protected or not (self.data or self._unanswered()):
            return
        self._metadata.setdefault("overhead", {})[f"r{repetition}"] = round(seconds, 6)
        self.dirty = True

    # The httpx transports: replay, or record while the body passes through.

    def handle(self, send: Callable[[Any], Any], request: Any, module: Any) -> Any:
        """Answer one request sent through a sync httpx transport."""
        body = b"".join(request.stream)
        request.stream = module.ByteStream(body)
        call = current_call()
        stored = self._vcr_request(request, body, call)
        self._replay_unanswered(call, stored, request, module)
        if self.can_play_response_for(stored):
            return _replayed(self.play_response(stored), request, call, module, sync=True)
        try:
            response = send(request)
        except Exception as exc:
            self._failed(call, stored, exc)
            raise
        return self._recording(response, stored, call, module, sync=True)

    async def ahandle(self, send: Callable[[Any], Any], request: Any, module: Any) -> Any:
        """Answer one request sent through an async httpx transport."""
        body = b"".join([part async for part in request.stream])
        request.stream = module.ByteStream(body)
        call = current_call()
        stored = self._vcr_request(request, body, call)
        self._replay_unanswered(call, stored, request, module)
        if self.can_play_response_for(stored):
            return _replayed(self.play_response(stored), request, call, module, sync=False)
        try:
            response = await send(request)
        except Exception as exc:
            self._failed(call, stored, exc)
            raise
        return self._recording(response, stored, call, module, sync=False)

    def _failed(self, call: CallInfo | None, stored: Request, error: Exception) -> None:
        """Keep a call that failed before any response (with its request's fingerprint)."""
        if call is not None:
            entry = {"error": _error_of(error), "request": _fingerprint(self._lookup_key(stored))}
            self._record_unanswered(call, entry)

    def _replay_unanswered(
        self, call: CallInfo | None, stored: Request, request: Any, module: Any
    ) -> None:
        """Raise what a call that got no answer raised when it was recorded."""
        with self._lock:
            entry = self._unanswered_for(call, self._lookup_key(stored))
        if entry is None or call is None:
            return
        call.replayed_duration = float(entry.get("duration", 0.0))
        if entry.get("cancelled"):
            raise BranchCancelled(
                f"call {call.address} was not made: a sibling branch had failed when it was "
                "recorded",
                recorded=True,
            )
        _raise_recorded(entry["error"], request, module)

    @staticmethod
    def _vcr_request(request: Any, body: bytes, call: CallInfo | None) -> Request:
        stored = Request(request.method, str(request.url), body, request.headers)
        if call is not None:
            stored.headers[ADDRESS_HEADER] = str(call.address)
        return stored

    def _recording(
        self, response: Any, stored: Request, call: CallInfo | None, module: Any, sync: bool
    ) -> Any:
        """Pass the body through to the caller as it arrives; keep it whole at its end."""
        if call is not None:
            call.status = response.status_code
        inner = response.stream
        chunks: list[bytes] = []
        saved: list[bool] = []

        def save(error: BaseException | None = None) -> None:
            if saved:
                return
            saved.append(True)
            recorded = {
                "status": {"code": response.status_code, "message": response.reason_phrase},
                "headers": _headers_of(response),
                "body": {"string": b"".join(chunks)},
            }
            if error is not None:
                recorded["error"] = _error_of(error)
            self._record(call, stored, recorded)

        if response.is_closed:
            # Already read (a mock transport's response built from content): keep it whole,
            # as it came (still encoded, like any recorded body).
            raw = response.stream
            chunks.extend(raw if isinstance(raw, module.ByteStream) else [response.content])
            save()
            return response
        if call is not None:
            call.flush = save
        if sync:

            class Recorder(module.SyncByteStream):  # type: ignore[misc]
                def __iter__(self) -> Iterator[bytes]:
                    try:
                        for chunk in inner:
                            chunks.append(chunk)
                            yield chunk
                    except Exception as exc:
                        save(exc)
                        raise
                    save()

                def close(self) -> None:
                    try:
                        inner.close()
                    finally:
                        save()

            response.stream = Recorder()
        else:

            class AsyncRecorder(module.AsyncByteStream):  # type: ignore[misc]
                async def __aiter__(self) -> AsyncIterator[bytes]:
                    try:
                        async for chunk in inner:
                            chunks.append(chunk)
                            yield chunk
                    except Exception as exc:
                        save(exc)
                        raise
                    save()

                async def aclose(self) -> None:
                    try:
                        await inner.aclose()
                    finally:
                        save()

            response.stream = AsyncRecorder()
        return response

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
        if key.address in self._unanswered():
            return (
                "The request changed since it was recorded (it got no answer then; the "
                "cassette keeps no copy of it to compare)."
            )
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
        table = self._metadata.get(UNANSWERED, {})
        if not isinstance(table, dict) or not all(
            isinstance(entry, dict)
            and (entry.get("cancelled") is True or isinstance(entry.get("error"), dict))
            for entry in table.values()
        ):
            raise CassetteError(
                f"cassette {self._path} is malformed: metadata.{UNANSWERED} must map call "
                'addresses to {"error": {...}} or {"cancelled": true}; it was left untouched. '
                "Fix or delete it, or re-record it with --patterns-record=rewrite."
            )

    def _kept(self, pairs: list[tuple[int, tuple[Request, dict[str, Any]]]]) -> list[Any]:
        return [pair for index, pair in pairs if index not in self._dropped]

    def _rerecorded_interactions(self) -> list[tuple[Request, dict[str, Any]]]:
        recorded = self._kept(list(enumerate(self.data))[self._loaded_count :])
        fresh = {_key(r).address for r, _ in recorded} | self._fresh
        kept = [(r, s) for r, s in self.data[: self._loaded_count] if _key(r).address not in fresh]
        return sorted(kept + recorded, key=lambda pair: _sort_key(pair[0]))

    def _as_dict(self) -> dict[str, list[Any]]:
        """Interactions in address order, so a re-recording diffs cleanly in review."""
        ordered = sorted(self._kept(list(enumerate(self.data))), key=lambda p: _sort_key(p[0]))
        return {"requests": [r for r, _ in ordered], "responses": [s for _, s in ordered]}

    def _new_interactions(self) -> list[tuple[Request, dict[str, Any]]]:
        return self._kept(list(enumerate(self.data))[self._loaded_count :])

    def _save(self, force: bool = False) -> None:
        table = self._unanswered()
        if table:
            self._metadata[UNANSWERED] = dict(
                sorted(table.items(), key=lambda p: _address_order(p[0]))
            )
        else:
            self._metadata.pop(UNANSWERED, None)
        try:
            if self._rewrite and not self._kept(list(enumerate(self.data))) and not table:
                return
            super()._save(force=force or self._rewrite)
        except CassetteError as exc:
            self.save_error = exc


K = TypeVar("K")


def _unlist(table: dict[K, list[int]], name: K, index: int) -> None:
    remaining = [i for i in table.get(name, ()) if i != index]
    if remaining:
        table[name] = remaining
    else:
        table.pop(name, None)


class _Holder:
    """Lets the transport stubs, built before vcrpy creates the cassette, reach it."""

    cassette: PatternCassette | None = None


def _fingerprint(key: Key) -> str:
    """A digest of a canonical request, so a recording keeps no second copy of the prompt."""
    text = json.dumps([key.method, key.uri, key.body], ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _error_of(error: BaseException) -> dict[str, str]:
    return {"type": type(error).__name__, "message": str(error)}


def _headers_of(response: Any) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in response.headers.multi_items():
        headers.setdefault(name, []).append(value)
    return headers


RETRY_AFTER_HEADERS = frozenset({"retry-after", "retry-after-ms"})
"""Dropped from replayed responses: the recorded wait already happened while recording."""


def _raise_recorded(error: dict[str, Any], request: Any, module: Any) -> None:
    """Raise the transport error a recording kept, as the same httpx class when it is one."""
    name = str(error.get("type", "ReadError"))
    message = str(error.get("message", ""))
    cls = getattr(module, name, None)
    if isinstance(cls, type) and issubclass(cls, module.TransportError):
        raise cls(message, request=request)
    builtin = getattr(builtins, name, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception):
        raise builtin(message)
    raise module.ReadError(f"{name}: {message}", request=request)


def _replayed(
    recorded: dict[str, Any], request: Any, call: CallInfo | None, module: Any, sync: bool
) -> Any:
    """The httpx response (or error) a recording stands for."""
    status = int(recorded["status"]["code"])
    error: dict[str, Any] | None = recorded.get("error")
    if call is not None:
        call.status = status
    headers = [
        (name, value)
        for name, values in recorded["headers"].items()
        if name.lower() not in RETRY_AFTER_HEADERS
        for value in values
    ]
    if status >= 400:
        # The recording kept the last attempt: the SDK must not retry (and wait) again.
        headers.append(("x-should-retry", "false"))
    body = recorded["body"]["string"]
    body = body.encode("utf-8") if isinstance(body, str) else bytes(body or b"")
    message = recorded["status"].get("message")
    extensions = {"reason_phrase": message.encode("ascii")} if message else None
    if error is None:
        stream: Any = module.ByteStream(body)
    elif sync:
        cut = error

        class Cut(module.SyncByteStream):  # type: ignore[misc]
            def __iter__(self) -> Iterator[bytes]:
                yield body
                _raise_recorded(cut, request, module)

        stream = Cut()
    else:
        acut = error

        class AsyncCut(module.AsyncByteStream):  # type: ignore[misc]
            async def __aiter__(self) -> AsyncIterator[bytes]:
                yield body
                _raise_recorded(acut, request, module)

        stream = AsyncCut()
    return module.Response(status, headers=headers, stream=stream, extensions=extensions)


_TRANSPORT_METHODS = (
    ("HTTPTransport", "handle_request"),
    ("MockTransport", "handle_request"),
    ("WSGITransport", "handle_request"),
    ("AsyncHTTPTransport", "handle_async_request"),
    ("MockTransport", "handle_async_request"),
    ("ASGITransport", "handle_async_request"),
)
"""The httpx transport methods vcrpy patches, which our stubs replace."""


def _originals() -> list[tuple[Any, type, str, Any]]:
    """The unpatched transport methods, taken once at import, as vcrpy takes its own."""
    found = []
    for name in ("httpx", "httpx2"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for cls_name, method in _TRANSPORT_METHODS:
            cls = getattr(module, cls_name)
            found.append((module, cls, method, getattr(cls, method)))
    return found


_ORIGINALS = _originals()


def _transport_patches(holder: _Holder) -> list[tuple[type, str, Any]]:
    """vcrpy ``custom_patches`` replacing its httpx stubs with ours (which stream)."""
    return [
        (
            cls,
            method,
            (_sync_stub if method == "handle_request" else _async_stub)(holder, original, module),
        )
        for module, cls, method, original in _ORIGINALS
    ]


def _sync_stub(holder: _Holder, original: Any, module: Any) -> Any:
    def handle_request(transport: Any, request: Any) -> Any:
        assert holder.cassette is not None
        return holder.cassette.handle(lambda r: original(transport, r), request, module)

    return handle_request


def _async_stub(holder: _Holder, original: Any, module: Any) -> Any:
    async def handle_async_request(transport: Any, request: Any) -> Any:
        assert holder.cassette is not None
        return await holder.cassette.ahandle(lambda r: original(transport, r), request, module)

    return handle_async_request


def run_in_cassette(
    path: Path,
    mode: str,
    meter: Any,
    run: Callable[[Callable[[Any], None]], T],
    scrub: ScrubRules | None = None,
) -> tuple[T, CassetteError | None]:
    """Run an item inside its cassette: ``run(attach)`` calls ``attach(state)`` for each
    repetition so its calls are metered and replayed or recorded here. ``scrub``: what the
    user added to scrub (``--patterns-scrub``).

    Returns what ``run`` returned and the error that kept the cassette from being saved
    (a key shape was found; nothing was written then), if any. Raises
    :class:`CassetteError` when the cassette cannot be read. While an item only replays,
    no socket can be opened (:mod:`.network`).
    """
    with open_cassette(path, mode, scrub) as cassette:

        def attach(state: Any) -> None:
            state.meter = meter
            state.replayer = cassette

        guard = (
            blocked(f"cassette {path} replays only (record mode {mode})")
            if cassette.write_protected
            else contextlib.nullcontext()
        )
        with guard:
            result = run(attach)
    return result, cassette.save_error


def open_cassette(path: Path, mode: str, scrub: ScrubRules | None = None) -> Any:
    """A vcrpy context manager for one item's cassette in record mode ``mode``."""
    holder = _Holder()
    return PatternCassette.use(
        path=str(path),
        serializer=CompactJson,
        persister=Persister,
        record_mode=RECORD_MODES[mode],
        rewrite=mode == "rewrite",
        holder=holder,
        scrub=scrub,
        match_on=(),
        skip_patchers=("httpx", "httpx2"),
        custom_patches=_transport_patches(holder),
    )


__all__ = [
    "CassetteError",
    "PatternCassette",
    "UnhandledHTTPRequestError",
    "cassette_path",
    "open_cassette",
]
