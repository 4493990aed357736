"""Cassettes: vcrpy underneath, replay by logical address, timing kept, secrets never saved.

Stock vcrpy hands out recorded responses in the order requests arrive, scans every
interaction per request, keeps no timing, reads a whole response before the caller sees
any of it, and saves what it is given. Here a vcrpy ``Cassette`` subclass indexes
interactions by call address, so the same logical call always gets the same response in
constant time; each response keeps its measured ``duration``; the httpx transports are
recorded by stubs of our own (installed once with :func:`.transport.install`) that pass a
stream through as it arrives; a retried call keeps only the attempt that answered; a call
that failed without an answer, or was refused because a sibling branch failed, is kept as
such and replays the same way; requests and responses are scrubbed before anything is
written, writes are atomic, and a file that still holds a key shape is refused.

Opening a cassette is cheap whatever its size: the file is parsed once, its shape checked,
and only the call addresses indexed; vcrpy's request and response objects are built for
the recordings a run actually replays. A file in the layout the plugin writes is read one
interaction at a time and only its index kept: each recording is parsed again from the file
when it is replayed (:mod:`.slices`), so a replay's memory does not grow with the file.
vcrpy's patches for the other HTTP libraries are built once per process and switched on
for each item.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import math
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from vcr.cassette import Cassette
from vcr.errors import UnhandledHTTPRequestError
from vcr.filters import decode_response
from vcr.patch import CassettePatcherBuilder
from vcr.persisters.filesystem import CassetteNotFoundError
from vcr.record_mode import RecordMode
from vcr.request import Request
from vcr.serialize import serialize

from . import transport
from .atomic import write_atomic
from .execution import BranchCancelled, current_site
from .item_cassette import CassetteError, cassette_path, run_attached
from .records import DURATION_DIGITS, Address
from .schema import SchemaError, check_cassette
from .scrub import KeyShape, Scrubber, ScrubRules, find_key_shape, find_key_shape_in_body
from .slices import Changed, Scanned, Slices, scan
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


class CompactJson:
    """vcrpy serializer: JSON with one-space indent, readable in review and quick to load."""

    @staticmethod
    def serialize(cassette_dict: dict[str, Any]) -> str:
        return json.dumps(cassette_dict, indent=1, ensure_ascii=False) + "\n"

    @staticmethod
    def deserialize(text: str) -> Any:
        return json.loads(text)


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


class Probe:
    """A request as a recording is matched against it: its :class:`Key`, with the body kept
    as sent and put in canonical form only when two bodies differ byte for byte (equal
    bytes have equal canonical forms, so most lookups never parse a body)."""

    __slots__ = ("_canonical", "address", "body", "method", "uri")

    def __init__(self, address: str, method: str, uri: str, body: bytes | str | None) -> None:
        self.address = address
        self.method = method
        self.uri = uri
        self.body = body
        self._canonical: str | None = None

    @classmethod
    def of(cls, request: Request) -> Probe:
        """The probe of a (filtered) vcrpy request."""
        return cls(
            request.headers.get(ADDRESS_HEADER, ""),
            request.method.upper(),
            _path_and_query(request.uri),
            request.body_bytes if hasattr(request, "body_bytes") else request.body,
        )

    @property
    def canonical(self) -> str:
        if self._canonical is None:
            self._canonical = canonical_body(self.body)
        return self._canonical

    def key(self) -> Key:
        return Key(self.address, self.method, self.uri, self.canonical)

    def matches(self, other: Probe) -> bool:
        """Whether the two keys are equal."""
        return (
            self.address == other.address
            and self.method == other.method
            and self.uri == other.uri
            and (_same_bytes(self.body, other.body) or self.canonical == other.canonical)
        )


def _same_bytes(a: bytes | str | None, b: bytes | str | None) -> bool:
    if isinstance(a, str):
        a = a.encode("utf-8", "surrogateescape")
    if isinstance(b, str):
        b = b.encode("utf-8", "surrogateescape")
    return a == b


def _path_and_query(uri: str) -> str:
    parts = urlsplit(uri)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _key(request: Request) -> Key:
    return Probe.of(request).key()


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


_ADDRESS = re.compile(r"r(?:0|[1-9][0-9]*)/[^/]+/[^#]*#(?:0|[1-9][0-9]*)")
"""Addresses in their one written form: any text it matches is an exact call address."""


class _Shape:
    """A quick pass over a parsed cassette that accepts only what ``check_cassette`` accepts.

    It builds no paths and no copies, so checking 10,000 interactions costs a fraction of
    parsing them. Whatever it is not sure of (a wrong field, an unusual value) goes to
    ``check_cassette``, which names the field; so the check is exactly as strict as before.
    """

    def __init__(self) -> None:
        self.uris: set[str] = set()

    def cassette(self, data: Any) -> bool:
        if not isinstance(data, dict):
            return False
        version = data.get("version")
        if type(version) is not int or version != 1:
            return False
        interactions = data.get("interactions")
        if not isinstance(interactions, list):
            return False
        if "metadata" in data and not self.metadata(data["metadata"]):
            return False
        request, response = self.request, self.response
        for interaction in interactions:
            if not (
                type(interaction) is dict
                and request(interaction.get("request"))
                and response(interaction.get("response"))
            ):
                return False
        return True

    @staticmethod
    def metadata(metadata: Any) -> bool:
        if not isinstance(metadata, dict):
            return False
        overhead = metadata.get("overhead", {})
        rounds = metadata.get("rounds", [])
        return (
            isinstance(overhead, dict)
            and all(_finite(v) for v in overhead.values())
            and isinstance(rounds, list)
            and all(type(n) is int and n >= 0 for n in rounds)
        )

    def request(self, request: Any) -> bool:
        if type(request) is not dict or len(request) != 4:
            return False
        method, uri = request.get("method"), request.get("uri")
        body, headers = request.get("body", 0), request.get("headers")
        if type(method) is not str or type(headers) is not dict:
            return False
        if body is not None and (type(body) is not str or not _encodable(body)):
            return False
        if type(uri) is not str or not self.uri(uri):
            return False
        for name, value in headers.items():
            if type(value) is list:
                if not value or any(type(v) is not str for v in value):
                    return False
                first = value[0]
            elif type(value) is str:
                first = value
            else:
                return False
            if name.lower() == ADDRESS_HEADER and _ADDRESS.fullmatch(first) is None:
                return False
        return True

    def uri(self, uri: str) -> bool:
        if uri in self.uris:
            return True
        try:
            parts = urlsplit(uri)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        self.uris.add(uri)
        return True

    @staticmethod
    def response(response: Any) -> bool:
        if type(response) is not dict:
            return False
        status, headers = response.get("status"), response.get("headers")
        body = response.get("body")
        if type(status) is not dict or type(headers) is not dict or type(body) is not dict:
            return False
        code, message = status.get("code"), status.get("message")
        if type(code) is not int or not 100 <= code <= 599:
            return False
        if type(message) is not str or not message.isascii():
            return False
        if type(body.get("string")) is not str:
            return False
        for name, values in headers.items():
            if type(name) is not str or not name.isascii() or type(values) is not list:
                return False
            for value in values:
                if type(value) is not str or not value.isascii():
                    return False
        return "duration" not in response or _finite(response["duration"])


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _finite(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value) and value >= 0


def _checked(data: Any) -> Any:
    """``data`` when it has a cassette's shape; SchemaError naming the first wrong field.

    A request body that UTF-8 cannot encode (a lone surrogate) raises UnicodeEncodeError
    here, at load, where vcrpy's request objects used to raise it."""
    if _Shape().cassette(data):
        return data
    check_cassette(data)
    for interaction in data["interactions"]:
        body = interaction["request"]["body"]
        if body is not None:
            body.encode("utf-8")
    return data


class Persister:
    """vcrpy persister: JSON, atomic writes, unreadable files are errors, no key shapes."""

    ADVICE = (
        "it was left untouched. Fix or delete it, or re-record it with --patterns-record=rewrite."
    )

    @classmethod
    def _existing(cls, cassette_path: str | Path) -> Path:
        """The cassette's path; vcrpy's not-found error when there is none, ours when it is
        not a file."""
        path = Path(cassette_path)
        if not path.exists():
            raise CassetteNotFoundError()
        if not path.is_file():
            raise CassetteError(f"cassette {path} is not a file; {cls.ADVICE}")
        return path

    @classmethod
    def load_document(cls, cassette_path: str | Path, serializer: Any) -> dict[str, Any]:
        """The cassette's JSON document, its shape checked; parsed once, nothing copied."""
        path = cls._existing(cassette_path)
        try:
            data = path.read_bytes().decode("utf-8")
            if not data or data.isspace():  # data.strip() would copy the whole file
                raise ValueError("the file is empty")
            document: dict[str, Any] = _checked(serializer.deserialize(data))
        except SchemaError as exc:
            raise CassetteError(f"cassette {path} is malformed: {exc}; {cls.ADVICE}") from None
        except Exception as exc:
            raise CassetteError(
                f"cassette {path} is unreadable ({type(exc).__name__}: {exc}); {cls.ADVICE}"
            ) from None
        return document

    @classmethod
    def scan(cls, cassette_path: str | Path) -> Scanned[str] | None:
        """The cassette indexed by call address, each interaction read again from the file
        when it is replayed (:mod:`.slices`); None when the file is not in the layout the
        plugin writes or something in it is not as it should be: :meth:`load_document`
        then parses it whole and says what is wrong."""
        path = cls._existing(cassette_path)
        try:
            handle = path.open("rb")
        except OSError:
            return None
        shape = _Shape()

        def address(interaction: Any) -> str | None:
            if (
                type(interaction) is dict
                and shape.request(interaction.get("request"))
                and shape.response(interaction.get("response"))
            ):
                return _raw_address(interaction["request"])
            return None

        scanned = None
        try:
            scanned = scan(handle, address)
            if scanned is not None and not shape.cassette(scanned.document):
                scanned = None
        finally:
            if scanned is None:
                handle.close()
        return scanned

    @classmethod
    def load_cassette(cls, cassette_path: str | Path, serializer: Any) -> Any:
        """What vcrpy's persisters return: requests, responses (and metadata)."""
        document = cls.load_document(cassette_path, serializer)
        interactions = document["interactions"]
        requests = [_request_of(i["request"]) for i in interactions]
        responses = [_response_of(i["response"]) for i in interactions]
        if document.get("metadata"):
            return requests, responses, document["metadata"]
        return requests, responses

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


def _request_of(raw: dict[str, Any]) -> Request:
    """vcrpy's request for a loaded one (``Request._from_dict``)."""
    return Request(raw["method"], raw["uri"], raw["body"], raw["headers"])


def _response_of(raw: dict[str, Any]) -> dict[str, Any]:
    """A loaded response as vcrpy hands it on: a copy whose body is bytes. The parsed
    document is never changed, so the copy is shallow where nothing is mutated."""
    response = dict(raw)
    body = dict(raw["body"])
    text = body.get("string")
    if isinstance(text, str):
        with contextlib.suppress(UnicodeEncodeError):
            body["string"] = text.encode("utf-8")
    response["body"] = body
    response["status"] = dict(raw["status"])
    response["headers"] = {name: list(values) for name, values in raw["headers"].items()}
    return response


def _raw_address(raw_request: dict[str, Any]) -> str:
    for name, value in raw_request["headers"].items():
        if name.lower() == ADDRESS_HEADER:
            return value if isinstance(value, str) else str(value[0])
    return ""


class Interactions:
    """The cassette's ``(request, response)`` pairs, vcrpy's ``Cassette.data``.

    Pairs loaded from the file are built on first use (and passed through the cassette's
    filters then, as vcrpy does on load), so a run pays only for the recordings it replays.
    They come from the parsed document, or, for a file in the layout the plugin writes, from
    the file itself (:class:`.slices.Slices`): then a loaded pair is parsed and built each
    time it is asked for and never kept, so a run holds the index and nothing else of the
    file. Indexing, slicing, iteration and ``append`` behave as on a list.
    """

    def __init__(
        self,
        loaded: list[dict[str, Any]] | Slices,
        request: Callable[[dict[str, Any]], Request],
        response: Callable[[dict[str, Any]], dict[str, Any]],
        path: str = "",
    ) -> None:
        self._loaded = loaded
        self._requests: list[Request | None] = [None] * len(loaded)
        self._responses: list[dict[str, Any] | None] = [None] * len(loaded)
        self._build_request = request
        self._build_response = response
        self._path = path

    @property
    def lazy(self) -> bool:
        """Whether loaded pairs are read from the file when they are asked for."""
        return isinstance(self._loaded, Slices)

    def _raw(self, index: int) -> dict[str, Any]:
        try:
            return self._loaded[index]
        except Changed:
            raise CassetteError(
                f"cassette {self._path} was changed on disk while its item was using it "
                "(it is read as it is replayed); nothing was written. Run the item again, and "
                "do not edit a cassette in place while a run is using it."
            ) from None

    def raw_request(self, index: int) -> dict[str, Any] | None:
        """Recording ``index``'s request as the file holds it; None if it was not loaded."""
        return self._raw(index)["request"] if index < len(self._loaded) else None

    def request(self, index: int) -> Request:
        request = self._requests[index]
        if request is None:
            request = self._build_request(self._raw(index)["request"])
            if not self.lazy:
                self._requests[index] = request
        return request

    def response(self, index: int) -> dict[str, Any]:
        response = self._responses[index]
        if response is None:
            raw = self._raw(index)
            response = self._build_response(raw["response"])
            if not isinstance(self._loaded, Slices):
                self._responses[index] = response
                # From now on the built response is the one read: the parsed one is let go.
                self._loaded[index] = {"request": raw["request"]}
        return response

    def materialize(self) -> None:
        """Read every loaded pair the file still holds into memory and close the file,
        before the cassette is written over it."""
        if isinstance(self._loaded, Slices):
            slices = self._loaded
            loaded = [self._raw(index) for index in range(len(slices))]
            slices.close()
            self._loaded = loaded

    def close(self) -> None:
        """Close the file the loaded pairs are read from (they can no longer be read)."""
        if isinstance(self._loaded, Slices):
            self._loaded.close()

    def append(self, pair: tuple[Request, dict[str, Any]]) -> None:
        self._requests.append(pair[0])
        self._responses.append(pair[1])

    def __len__(self) -> int:
        return len(self._requests)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]
        return self.request(index), self.response(index)

    def __iter__(self) -> Iterator[tuple[Request, dict[str, Any]]]:
        for index in range(len(self)):
            yield self[index]


class AddressIndex:
    """Recordings by call address. Most addresses have one recording: it is kept as an int,
    and a list only for an address recorded more than once, so the index costs no list per
    recording."""

    __slots__ = ("_table",)

    def __init__(self) -> None:
        self._table: dict[str, int | list[int]] = {}

    def add(self, address: str, index: int) -> None:
        found = self._table.get(address)
        if found is None:
            self._table[address] = index
        elif isinstance(found, int):
            self._table[address] = [found, index]
        else:
            found.append(index)

    def get(self, address: str) -> Sequence[int]:
        """The recordings at ``address``, in the order they were added."""
        found = self._table.get(address)
        if found is None:
            return ()
        return (found,) if isinstance(found, int) else found

    def remove(self, address: str, index: int) -> None:
        remaining = [i for i in self.get(address) if i != index]
        if not remaining:
            self._table.pop(address, None)
        else:
            self._table[address] = remaining[0] if len(remaining) == 1 else remaining

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


class PatternCassette(Cassette):  # type: ignore[misc]
    """A vcrpy cassette that replays by call address, in constant time, with durations."""

    def __init__(
        self,
        *args: Any,
        rewrite: bool = False,
        scrub: ScrubRules | None = None,
        **kwargs: Any,
    ) -> None:
        self._by_address = AddressIndex()
        self._probes: dict[int, Probe] = {}
        self._dropped: set[int] = set()
        self._cancellations: dict[int, list[str]] = {}
        self._fresh: set[str] = set()
        self._scrub_rules = scrub
        self._scrubber_made: Scrubber | None = None
        self._rewrite = rewrite
        self._lookups = threading.local()
        self._lock = threading.RLock()
        self.save_error: CassetteError | None = None
        self.misses: list[str] = []
        kwargs["before_record_request"] = self._filter_request
        kwargs["before_record_response"] = self._filter_response
        kwargs["before_save_interaction"] = self._scrub_interaction
        super().__init__(*args, **kwargs)
        self.data = Interactions([], self._loaded_request, self._loaded_response)

    @property
    def _scrubber(self) -> Scrubber:
        """Made on first use: an item that sends nothing needs none."""
        if self._scrubber_made is None:
            with self._lock:
                if self._scrubber_made is None:
                    self._scrubber_made = Scrubber(self._scrub_rules)
        return self._scrubber_made

    @property
    def scrubber(self) -> Scrubber:
        """What this cassette learned of the item's secrets; the report's evidence (outputs,
        messages, excerpts) is scrubbed with it too (:mod:`.evidence`)."""
        return self._scrubber

    # Filters, applied before anything is matched or stored.

    def _filter_request(self, request: Request) -> Request:
        filtered = self._scrubbed_request(request)
        call = current_call()
        if call is not None and ADDRESS_HEADER not in filtered.headers:
            filtered.headers[ADDRESS_HEADER] = str(call.address)
        return filtered

    def _scrubbed_request(self, request: Request) -> Request:
        scrubber = self._scrubber
        headers = dict(request.headers.items())
        scrubber.learn_request(request.uri, headers, request.body)
        # The headers and URI are replaced, not mutated; the body is immutable bytes.
        filtered = Request(
            request.method,
            scrubber.scrub_url(request.uri),
            request.body,
            scrubber.scrub_headers(
                {k: v for k, v in headers.items() if k.lower() in KEPT_REQUEST_HEADERS}
            ),
        )
        body = request.body
        if isinstance(body, bytes):
            filtered.body = scrubber.scrub_body(body)
        return filtered

    def _loaded_request(self, raw: dict[str, Any]) -> Request:
        # As vcrpy loads it: through the request filter (learning included), never given the
        # address of the call under way when it happens to be built.
        return self._scrubbed_request(_request_of(raw))

    def _loaded_response(self, raw: dict[str, Any]) -> dict[str, Any]:
        # What a saved response hands out was scrubbed when it was saved; learning from it
        # matters only to a cassette that will be saved again.
        return self._filter_response(_response_of(raw), learn=not self.write_protected)

    def _filter_response(self, response: dict[str, Any], learn: bool = True) -> dict[str, Any]:
        if any(str(name).lower() == "content-encoding" for name in response["headers"]):
            response = decode_response(response)  # a deep copy, decoded
        else:
            response = dict(response)
            if isinstance(response.get("body"), dict):
                response["body"] = dict(response["body"])
        # Learn what a response hands out as a credential (set-cookie, token fields) before
        # its headers are dropped; everything is scrubbed on save, with all that was learned.
        if learn:
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
        # vcrpy's append, without its deep copy: the filters build new dicts and never
        # change the caller's (decode_response copies what it decodes).
        request = self._before_record_request(request)
        if not request:
            return
        response = self._before_record_response(response)
        if response is None:
            return
        with self._lock:
            index = len(self.data)
            self.data.append((request, response))
            self.dirty = True
            probe = self._probes[index] = Probe.of(request)
            self._by_address.add(probe.address, index)

    def _probe_at(self, index: int) -> Probe:
        """The key of recording ``index``, computed once (loaded ones on first lookup, and
        each time when they are read from the file, so that nothing is kept per recording)."""
        probe = self._probes.get(index)
        if probe is None:
            raw = self.data.raw_request(index)
            if raw is None:
                probe = self._probes[index] = Probe.of(self.data.request(index))
            else:
                probe = self._loaded_probe(raw)
                if not self.data.lazy:
                    self._probes[index] = probe
        return probe

    def _loaded_probe(self, raw: dict[str, Any]) -> Probe:
        """The key of a loaded recording, as its filtered request would give it, without
        building the request: its saved URI and body scrubbed again (a no-op for what this
        plugin saved), its address as saved."""
        scrubber = self._scrubber
        body = raw["body"]
        return Probe(
            _raw_address(raw),
            raw["method"].upper(),
            _path_and_query(scrubber.scrub_url(raw["uri"])),
            None if body is None else scrubber.scrub_body(body.encode("utf-8")),
        )

    def _matching(self, probe: Probe) -> Iterator[int]:
        for index in self._by_address.get(probe.address):
            if self._probe_at(index).matches(probe):
                yield index

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
                call.stored = self.data.response(before)
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
        self, call: CallInfo | None, probe: Probe | None = None
    ) -> dict[str, Any] | None:
        """The recorded outcome of a call that got no answer, if ``call`` replays one (and,
        given its request's ``probe``, the request is the one recorded)."""
        if call is None or self.record_mode == RecordMode.ALL or not self.rewound:
            return None
        if any(index == NO_INTERACTION for _, index in call.recorded):
            return None  # this call's own outcome, recorded now: a retry goes live
        entry = self._unanswered().get(str(call.address))
        if entry is None or probe is None or "request" not in entry:
            return entry
        return entry if entry["request"] == _fingerprint(probe.key()) else None

    def _drop(self, index: int) -> None:
        """Forget a recording made this run (a failed attempt that was retried)."""
        if index in self._dropped:
            return
        self._dropped.add(index)
        self._by_address.remove(self._probe_at(index).address, index)
        self.dirty = True

    def _lookup_key(self, request: Request) -> Probe:
        """The probe of an incoming vcrpy request, filtered once however often it is asked."""
        last = getattr(self._lookups, "last", None)
        if last is not None and last[0] is request:
            return last[1]  # type: ignore[no-any-return]
        probe = Probe.of(self._before_record_request(request))
        self._lookups.last = (request, probe)
        return probe

    def _incoming(self, request: Any, body: bytes, call: CallInfo | None) -> Probe:
        """The probe of a request sent through an httpx transport, filtered as a vcrpy
        request would be, without building one."""
        scrubber = self._scrubber
        url = str(request.url)
        headers = dict(request.headers.items())
        if call is not None:
            headers[ADDRESS_HEADER] = str(call.address)
        scrubber.learn_request(url, headers, body)
        address = headers.get(ADDRESS_HEADER, "")
        if address:
            address = scrubber.scrub_headers({ADDRESS_HEADER: address})[ADDRESS_HEADER]
        return Probe(
            address,
            request.method.upper(),
            _path_and_query(scrubber.scrub_url(url)),
            scrubber.scrub_body(body),
        )

    def _responses(self, request: Request) -> Iterator[tuple[int, dict[str, Any]]]:
        for index in self._matching(self._lookup_key(request)):
            yield index, self.data.response(index)

    def _playable(self, probe: Probe, call: CallInfo | None) -> int | None:
        """The recording that answers ``probe`` now: unplayed, or already played to an
        earlier attempt of the same call; never one this call recorded itself."""
        if self.record_mode == RecordMode.ALL or not (self.rewound or self.allow_playback_repeats):
            return None
        own = {i for _, i in call.recorded} if call is not None else ()
        for index in self._matching(probe):
            if index in own:
                continue
            if self.play_counts[index] == 0 or self.allow_playback_repeats:
                return index
            if call is not None and index in call.played:
                return index
        return None

    def _play(self, probe: Probe, call: CallInfo | None) -> dict[str, Any] | None:
        """The recorded response for ``probe``, marked played; None when there is none."""
        with self._lock:
            index = self._playable(probe, call)
            if index is None:
                return None
            self.play_counts[index] += 1
            response = self.data.response(index)
            if call is not None and index not in call.played:
                call.played.append(index)
        if call is not None:
            call.replayed_duration = float(response.get("duration", 0.0))
        return response

    def can_play_response_for(self, request: Request) -> bool:
        probe = self._lookup_key(request)
        with self._lock:
            playable = self._playable(probe, current_call()) is not None
        if not playable and self.write_protected:
            self._miss(probe)
        return playable

    def play_response(self, request: Request) -> dict[str, Any]:
        response = self._play(self._lookup_key(request), current_call())
        if response is None:
            raise UnhandledHTTPRequestError(
                f"The cassette ({self._path!r}) doesn't contain the request ({request!r}) asked for"
            )
        return response

    def will_replay(self, call: CallInfo) -> bool:
        """Whether a recording answers ``call`` (so no live call, no budget check)."""
        if self.record_mode == RecordMode.ALL or not (self.rewound or self.allow_playback_repeats):
            return False
        own = {i for _, i in call.recorded}
        with self._lock:
            if self._unanswered_for(call) is not None:
                return True
            return any(i not in own for i in self._by_address.get(str(call.address)))

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
        if self.write_protected or not (len(self.data) or self._unanswered()):
            return
        overhead = self._metadata.setdefault("overhead", {})
        overhead[f"r{repetition}"] = round(seconds, DURATION_DIGITS)
        self.dirty = True

    def keeps_overhead(self, repetition: int) -> bool:
        """Whether a live repetition's time outside calls is kept (its replay composes it)."""
        return f"r{repetition}" in self._metadata.get("overhead", {})

    def recorded_rounds(self) -> list[int] | None:
        """An adaptive recording's repetitions per round, when this cassette replays one."""
        rounds = self._metadata.get("rounds")
        return list(rounds) if self.write_protected and rounds else None

    def remember_rounds(self, rounds: list[int]) -> None:
        """Keep an adaptive item's repetitions per round with the cassette, so that its
        replay runs the rounds the recording ran (saved with the calls it records)."""
        if self.write_protected:
            return
        if self._metadata.get("rounds") != rounds:
            self._metadata["rounds"] = list(rounds)
            self.dirty = True

    # The httpx transports: replay, or record while the body passes through.

    def handle(self, send: Callable[[Any], Any], request: Any, module: Any) -> Any:
        """Answer one request sent through a sync httpx transport."""
        body = b"".join(request.stream)
        replayed, stored, call, probe = self._answer(request, body, module, sync=True)
        if stored is None:
            return replayed
        try:
            response = send(request)
        except Exception as exc:
            self._failed(call, probe, exc)
            raise
        return self._recording(response, stored, call, module, sync=True)

    async def ahandle(self, send: Callable[[Any], Any], request: Any, module: Any) -> Any:
        """Answer one request sent through an async httpx transport."""
        body = b"".join([part async for part in request.stream])
        replayed, stored, call, probe = self._answer(request, body, module, sync=False)
        if stored is None:
            return replayed
        try:
            response = await send(request)
        except Exception as exc:
            self._failed(call, probe, exc)
            raise
        return self._recording(response, stored, call, module, sync=False)

    def _answer(
        self, request: Any, body: bytes, module: Any, sync: bool
    ) -> tuple[Any, Request | None, CallInfo | None, Probe]:
        """Replay ``request`` when a recording (or a recorded failure) answers it; otherwise
        the request to record, once the live call is sent. A miss in replay raises."""
        request.stream = module.ByteStream(body)
        call = current_call()
        probe = self._incoming(request, body, call)
        self._replay_unanswered(call, probe, request, module)
        recorded = self._play(probe, call)
        if recorded is not None:
            return _replayed(recorded, request, call, module, sync=sync), None, call, probe
        if self.write_protected:
            self._miss(probe)
        return None, self._vcr_request(request, body, call), call, probe

    def _failed(self, call: CallInfo | None, probe: Probe, error: Exception) -> None:
        """Keep a call that failed before any response (with its request's fingerprint)."""
        if call is not None:
            entry = {"error": _error_of(error), "request": _fingerprint(probe.key())}
            self._record_unanswered(call, entry)

    def _replay_unanswered(
        self, call: CallInfo | None, probe: Probe, request: Any, module: Any
    ) -> None:
        """Raise what a call that got no answer raised when it was recorded."""
        if call is None or not self._unanswered():
            return
        with self._lock:
            entry = self._unanswered_for(call, probe)
        if entry is None:
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
        streams = _streams(module)
        response.stream = (streams.recorder if sync else streams.arecorder)(
            response.stream, chunks, save
        )
        return response

    def _miss(self, probe: Probe) -> None:
        from .runner import ReplayMiss

        key = probe.key()
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
        same_address = self._by_address.get(key.address)
        if same_address:
            stored = self._probe_at(same_address[0]).key()
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
        if not len(self.data):
            if not Path(self._path).exists():
                return "There is no such file: this item was never recorded."
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
        try:
            scanned = self._persister.scan(self._path) if self._persister is Persister else None
            if scanned is None:
                document = self._persister.load_document(self._path, self._serializer)
                loaded: list[dict[str, Any]] | Slices = document["interactions"]
                addresses = [_raw_address(i["request"]) for i in document["interactions"]]
            else:
                document, loaded, addresses = scanned.document, scanned.slices, scanned.keys
        except CassetteNotFoundError:
            return
        metadata = document.get("metadata") or {}
        table = metadata.get(UNANSWERED, {})
        if not isinstance(table, dict) or not all(
            isinstance(entry, dict)
            and (entry.get("cancelled") is True or isinstance(entry.get("error"), dict))
            for entry in table.values()
        ):
            if isinstance(loaded, Slices):
                loaded.close()
            raise CassetteError(
                f"cassette {self._path} is malformed: metadata.{UNANSWERED} must map call "
                'addresses to {"error": {...}} or {"cancelled": true}; it was left untouched. '
                "Fix or delete it, or re-record it with --patterns-record=rewrite."
            )
        self.data = Interactions(loaded, self._loaded_request, self._loaded_response, self._path)
        by_address = self._by_address
        for index, address in enumerate(addresses):
            by_address.add(address, index)
        self._loaded_count = len(loaded)
        self.dirty = False
        self.rewound = True
        self._metadata = metadata

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
        force = force or self._rewrite
        if not (force or self.dirty):
            return  # what vcrpy would decide, before it builds every interaction to save
        try:
            if self._rewrite and not self._kept(list(enumerate(self.data))) and not table:
                return
            if not len(self.data) and not table and not Path(self._path).exists():
                # An item that made no call gets no cassette (as with vcrpy), even when it
                # has metadata to keep (an adaptive item's rounds): there is nothing to replay.
                return
            self.data.materialize()
            super()._save(force=force)
        except CassetteError as exc:
            self.save_error = exc

    def close(self) -> None:
        """Close the cassette's file (kept open while its recordings are read as replayed)."""
        self.data.close()


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


@dataclass(frozen=True)
class _Streams:
    """The stream classes that record a body passing through, made once per httpx module."""

    recorder: Any
    arecorder: Any


_STREAMS: dict[Any, _Streams] = {}


def _streams(module: Any) -> _Streams:
    found = _STREAMS.get(module)
    if found is not None:
        return found

    class Recorder(module.SyncByteStream):  # type: ignore[misc]
        def __init__(self, inner: Any, chunks: list[bytes], save: Callable[..., None]) -> None:
            self.inner, self.chunks, self.save = inner, chunks, save

        def __iter__(self) -> Iterator[bytes]:
            try:
                for chunk in self.inner:
                    self.chunks.append(chunk)
                    yield chunk
            except Exception as exc:
                self.save(exc)
                raise
            self.save()

        def close(self) -> None:
            try:
                self.inner.close()
            finally:
                self.save()

    class AsyncRecorder(module.AsyncByteStream):  # type: ignore[misc]
        def __init__(self, inner: Any, chunks: list[bytes], save: Callable[..., None]) -> None:
            self.inner, self.chunks, self.save = inner, chunks, save

        async def __aiter__(self) -> AsyncIterator[bytes]:
            try:
                async for chunk in self.inner:
                    self.chunks.append(chunk)
                    yield chunk
            except Exception as exc:
                self.save(exc)
                raise
            self.save()

        async def aclose(self) -> None:
            try:
                await self.inner.aclose()
            finally:
                self.save()

    found = _STREAMS[module] = _Streams(Recorder, AsyncRecorder)
    return found


class _Active:
    """What vcrpy's stubs for the other HTTP libraries (http.client, requests, urllib3,
    ...) take for their cassette: whichever item's cassette is active now."""

    def __getattr__(self, name: str) -> Any:
        cassette = transport.active_replayer()
        if cassette is None:
            raise RuntimeError("an HTTP request was sent while no cassette was active")
        return getattr(cassette, name)


_MISSING = object()


class _VcrPatches:
    """vcrpy's patches for every HTTP library but httpx (whose transports
    :mod:`.transport` answers), built once per process and switched on while an item runs.

    Building them (a subclass per connection class, per library, and a ``mock.patch`` for
    each) is what made opening a cassette slow; switching them on is a few attribute
    assignments, done here directly rather than through ``mock.patch``'s bookkeeping.
    """

    def __init__(self) -> None:
        self._assignments: list[tuple[Any, str, Any]] | None = None
        self._contexts: list[Any] = []
        self._saved: list[tuple[Any, str, Any]] = []
        self._depth = 0
        self._lock = threading.Lock()

    def _build(self) -> list[tuple[Any, str, Any]]:
        active = _Active()
        # Read by the builder only, then left to forward to the active cassette.
        vars(active).update(_path="agentpatterns", skip_patchers=SKIP_PATCHERS, custom_patches=())
        assignments = []
        for patcher in CassettePatcherBuilder(active).build():
            if hasattr(patcher, "getter") and hasattr(patcher, "attribute"):
                assignments.append((patcher.getter(), patcher.attribute, patcher.new))
            else:
                self._contexts.append(patcher)  # vcrpy's ConnectionRemover: per item
        vars(active).clear()
        return assignments

    def _apply(self) -> None:
        if self._assignments is None:
            self._assignments = self._build()
        for target, name, new in self._assignments:
            self._saved.append((target, name, vars(target).get(name, _MISSING)))
            setattr(target, name, new)
        for context in self._contexts:
            context.__enter__()

    def _restore(self) -> None:
        for context in reversed(self._contexts):
            context.__exit__(None, None, None)
        while self._saved:
            target, name, original = self._saved.pop()
            if original is _MISSING:
                delattr(target, name)
            else:
                setattr(target, name, original)

    @contextlib.contextmanager
    def on(self) -> Iterator[None]:
        with self._lock:
            self._depth += 1
            if self._depth == 1:
                self._apply()
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self._restore()


SKIP_PATCHERS = ("httpx", "httpx2")
_VCR_PATCHES = _VcrPatches()


def run_in_cassette(
    path: Path,
    mode: str,
    meter: Any,
    run: Callable[[Callable[[Any], None], PatternCassette], T],
    scrub: ScrubRules | None = None,
) -> tuple[T, CassetteError | None]:
    """Run an item inside its cassette: ``run(attach, cassette)`` calls ``attach(state)``
    for each repetition so its calls are metered and replayed or recorded here. ``scrub``:
    what the user added to scrub (``--patterns-scrub``).

    Returns what ``run`` returned and the error that kept the cassette from being saved
    (a key shape was found; nothing was written then), if any. Raises
    :class:`CassetteError` when the cassette cannot be read. While an item only replays,
    no socket can be opened (:mod:`.network`).
    """
    with open_cassette(path, mode, scrub) as cassette:
        result = run_attached(cassette, path, mode, meter, run)
    return result, cassette.save_error


@contextlib.contextmanager
def open_cassette(
    path: Path, mode: str, scrub: ScrubRules | None = None
) -> Iterator[PatternCassette]:
    """One item's cassette in record mode ``mode``, answering every HTTP request of the
    process while the context is open; saved when it closes, as vcrpy's ``use_cassette``
    saves it. Raises :class:`CassetteError` when the file cannot be read."""
    cassette = PatternCassette.load(
        path=str(path),
        serializer=CompactJson,
        persister=Persister,
        record_mode=RECORD_MODES[mode],
        rewrite=mode == "rewrite",
        scrub=scrub,
        match_on=(),
        skip_patchers=SKIP_PATCHERS,
    )
    try:
        transport.install()
        try:
            with _VCR_PATCHES.on(), transport.replaying(cassette):
                try:
                    yield cassette
                finally:
                    cassette._save()
        finally:
            transport.uninstall()
    finally:
        cassette.close()


__all__ = [
    "CassetteError",
    "PatternCassette",
    "UnhandledHTTPRequestError",
    "cassette_path",
    "open_cassette",
]
