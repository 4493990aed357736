"""Secrets: learn every value a request sent as a credential, scrub it wherever it reappears.

A :class:`Scrubber` belongs to one cassette. It *learns* values from what was sent (request
headers, URL userinfo, query parameters, credential-named body fields, and the names a user
configured) and from response headers that set credentials, then *scrubs* text, URLs and
bodies (JSON, form-encoded, and server-sent events, where a secret split across several
stream deltas is found in the reassembled text and redacted in every delta that carries part
of it). :func:`find_key_shape` is the last check before anything is written: text that still
holds something shaped like a real key is refused.

Pure: no pytest, no vcrpy, standard library only (cheap to import).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, overload
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlencode, urlsplit, urlunsplit

REDACTED = "<redacted>"
MIN_SECRET = 6
"""Learned values shorter than this are not searched for in text (they are still removed from
the headers and URLs they were sent in): a 4-character value would redact ordinary words."""

HARMLESS_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "accept",
        "accept-encoding",
        "accept-language",
        "accept-charset",
        "connection",
        "keep-alive",
        "user-agent",
        "cache-control",
        "pragma",
        "te",
        "expect",
        "upgrade",
        "anthropic-version",
        "anthropic-beta",
        "openai-beta",
        "x-agentpatterns-address",
    }
)
"""Request headers whose values are not credentials. Every other request header's value is."""
HARMLESS_HEADER_PREFIXES = ("x-stainless-",)
"""The SDKs' platform headers (``x-stainless-os``, ``x-stainless-retry-count``, ...)."""

HARMLESS_QUERY = frozenset(
    {
        "api-version",
        "api_version",
        "alt",
        "beta",
        "limit",
        "order",
        "after",
        "before",
        "page",
        "page_size",
        "per_page",
        "include",
        "stream",
        "grant_type",
        "client_id",
        "scope",
        "redirect_uri",
        "response_type",
    }
)
"""Query parameters (and form-encoded body fields) whose values are kept. Every other query or
form value is a credential."""

CREDENTIAL_FIELDS = frozenset(
    {
        "apikey",
        "xapikey",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "authtoken",
        "sessiontoken",
        "securitytoken",
        "clientsecret",
        "secretkey",
        "privatekey",
        "secret",
        "password",
        "passwd",
        "authorization",
        "cookie",
        "setcookie",
    }
)
"""JSON body fields (plain or event data) that hold credentials, compared case-insensitively
with ``-`` and ``_`` ignored (``api_key``, ``apiKey``, ``API-KEY``)."""

CREDENTIAL_WORDS = frozenset(
    {
        "key",
        "apikey",
        "token",
        "secret",
        "auth",
        "authorization",
        "password",
        "passwd",
        "cookie",
        "session",
        "credential",
        "credentials",
        "signature",
        "jwt",
    }
)
"""A response header holds a credential when a word of its name (split at ``-``, ``_``, ``.``)
is one of these: ``set-cookie``, ``x-session-token``; not ``x-ratelimit-remaining-tokens``."""


@functools.lru_cache(maxsize=4096)
def normalise_name(name: str) -> str:
    """A name as compared: lower case, without ``-`` and ``_``."""
    return name.lower().replace("-", "").replace("_", "")


def split_entries(text: str) -> list[str]:
    """Comma-separated entries; an entry starting with ``re:`` runs to the end of ``text``,
    so a regular expression may hold commas."""
    entries: list[str] = []
    rest = text
    while rest:
        head, _, tail = rest.partition(",")
        if head.strip().startswith("re:"):
            entries.append(rest.strip())
            break
        entries.append(head.strip())
        rest = tail
    return [entry for entry in entries if entry]


def check_entry(entry: str) -> str:
    """``entry`` if it is a usable name or ``re:PATTERN``; else ``ValueError`` saying why."""
    allowed = (
        "give a header, query parameter or body field name, or re:PATTERN (a Python regular "
        "expression)"
    )
    if entry.startswith("re:"):
        source = entry[3:]
        if not source:
            raise ValueError(f"{entry!r} has no pattern after re:; {allowed}")
        try:
            pattern = re.compile(source)
        except re.error as exc:
            raise ValueError(
                f"{entry!r} is not a valid regular expression ({exc}); {allowed}"
            ) from None
        if pattern.search("") is not None:
            raise ValueError(
                f"{entry!r} matches the empty string; a pattern must match at least one character"
            )
        return entry
    if not entry or any(ch.isspace() for ch in entry):
        raise ValueError(f"{entry!r} is not a name (it holds whitespace); {allowed}")
    return entry


@dataclass(frozen=True)
class ScrubRules:
    """What a user added to scrub (``--patterns-scrub``, ini ``agentpatterns_scrub``).

    ``names``: header, query parameter or body field names (normalised) whose values are
    credentials wherever they are sent or received; ``patterns``: every match is redacted.
    """

    names: frozenset[str] = frozenset()
    patterns: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> ScrubRules:
        """Rules from entries (names or ``re:PATTERN``); ``ValueError`` names a bad entry."""
        names: set[str] = set()
        patterns: list[re.Pattern[str]] = []
        for entry in entries:
            check_entry(entry)
            if entry.startswith("re:"):
                patterns.append(re.compile(entry[3:]))
            else:
                names.add(normalise_name(entry))
        return cls(frozenset(names), tuple(patterns))


@dataclass(frozen=True)
class KeyShape:
    """Something in a text shaped like a real credential: its kind and the matched text."""

    kind: str
    text: str

    @property
    def preview(self) -> str:
        """A prefix short enough to show in an error message."""
        keep = 12 if len(self.text) >= 24 else len(self.text) // 2
        return self.text[:keep] + "..."


def _has_letter_and_digit(token: str) -> bool:
    return any(c.isdigit() for c in token) and any(c.isalpha() for c in token)


def _random_token(match: re.Match[str]) -> bool:
    token = match.group(1)
    return token != REDACTED and len(token) >= 8 and _has_letter_and_digit(token)


def _basic_credentials(match: re.Match[str]) -> bool:
    try:
        decoded = base64.b64decode(match.group(1), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    return ":" in decoded and decoded.isprintable()


def _with_digit(match: re.Match[str]) -> bool:
    return _has_letter_and_digit(match.group(0)[3:])


_TAIL = r"(?![A-Za-z0-9_\-*])"  # a key is a whole run: masked keys (sk-proj-****) are not keys
_SHAPES: tuple[tuple[str, re.Pattern[str], Callable[[re.Match[str]], bool] | None], ...] = (
    ("an Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{12,}" + _TAIL), None),
    (
        "an OpenAI API key",
        re.compile(r"\bsk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{12,}" + _TAIL),
        None,
    ),
    ("a secret key", re.compile(r"\bsk-[A-Za-z0-9_\-]{20,}" + _TAIL), _with_digit),
    ("a Stripe key", re.compile(r"\b[rsp]k_(?:live|test)_[A-Za-z0-9]{16,}"), None),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"), None),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])"), None),
    ("a Google OAuth token", re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,}"), None),
    (
        "a GitHub token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})"),
        None,
    ),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"), None),
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}"), None),
    ("a Groq or xAI key", re.compile(r"\b(?:gsk_|xai-)[A-Za-z0-9]{40,}"), None),
    (
        "a JSON Web Token",
        re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"),
        None,
    ),
    ("a private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"), None),
    ("a Bearer token", re.compile(r"\bBearer\s+([A-Za-z0-9._~+/\-]+=*)"), _random_token),
    ("Basic credentials", re.compile(r"\bBasic\s+([A-Za-z0-9+/]{8,}={0,2})"), _basic_credentials),
)
KEY_SHAPE_KINDS = tuple(kind for kind, _, _ in _SHAPES)
"""What :func:`find_key_shape` recognises, for the docs and error messages."""
_LITERALS: dict[str, tuple[str, ...]] = {
    "an Anthropic API key": ("sk-ant-",),
    "an OpenAI API key": ("sk-",),
    "a secret key": ("sk-",),
    "a Stripe key": ("k_live_", "k_test_"),
    "an AWS access key id": ("AKIA", "ASIA", "ABIA", "ACCA"),
    "a Google API key": ("AIza",),
    "a Google OAuth token": ("ya29.",),
    "a GitHub token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "a Slack token": ("xox",),
    "a Hugging Face token": ("hf_",),
    "a Groq or xAI key": ("gsk_", "xai-"),
    "a JSON Web Token": ("eyJ",),
    "a private key": ("PRIVATE KEY-----",),
    "a Bearer token": ("Bearer",),
    "Basic credentials": ("Basic",),
}
"""For each shape, text one of which every match contains: a text holding none of them is
not searched with the shape's pattern (most texts hold no key, and a substring test is far
cheaper than a regex scan)."""


def find_key_shape(text: str) -> KeyShape | None:
    """The first thing in ``text`` shaped like a real credential, or ``None``.

    Prose is not a key: ``Bearer header``, ``invalid x-api-key`` and ``sk-proj-****`` pass;
    ``sk-ant-api03-...``, ``Bearer`` plus a token with letters and digits, ``AKIA...``,
    ``AIza...``, ``ghp_...`` and JWTs do not.
    """
    best: KeyShape | None = None
    best_at = len(text) + 1
    for kind, pattern, accept in _SHAPES:
        if not any(literal in text for literal in _LITERALS[kind]):
            continue
        for match in pattern.finditer(text):
            if match.start() >= best_at:
                break
            if accept is None or accept(match):
                best, best_at = KeyShape(kind, match.group(0)), match.start()
                break
    return best


def find_key_shape_in_body(body: bytes | str | None) -> KeyShape | None:
    """A key shape in ``body`` or in any stream it carries, reassembled across its deltas."""
    if body is None:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    found = find_key_shape(text)
    if found is not None:
        return found
    if _looks_like_sse(text):
        events = [event for _, _, event in _sse_events(_split_lines(text))]
    else:
        events = [data] if (data := _json_or_none(text)) is not None else []
    for pieces in _streams(events).values():
        found = find_key_shape("".join(container[key] for _, container, key in pieces))
        if found is not None:
            return found
    return None


@functools.lru_cache(maxsize=256)
def public_url(url: str) -> str:
    """``url`` as reports, traces and the terminal show it: no userinfo, query or fragment.

    Cached: a run's calls go to a few URLs, and each call's record then shares one string."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@functools.lru_cache(maxsize=64)
def _any_of(names: frozenset[str]) -> re.Pattern[str]:
    """One regex finding any of ``names`` (every cassette of a run has the same ones)."""
    return re.compile("|".join(sorted(map(re.escape, names))))


class Scrubber:
    """Learns the credentials one cassette's requests sent and scrubs them from what it saves.

    Thread-safe: concurrent branches learn and scrub at once. Scrubbing is idempotent and
    leaves text holding no learned value and no configured pattern unchanged.
    """

    def __init__(self, rules: ScrubRules | None = None) -> None:
        self.rules = rules or ScrubRules()
        self._fields = CREDENTIAL_FIELDS | self.rules.names
        self._field_names = _any_of(self._fields)
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        # The forms searched for, longest first; one regex that finds any of them (a quick
        # first test); whether every secret is plain (JSON never escapes any of its characters).
        self._search: tuple[tuple[str, ...], re.Pattern[str] | None, bool] = ((), None, True)
        self._seen_headers: set[tuple[str, str]] = set()
        self._credential_headers: dict[tuple[str, bool], bool] = {}
        self._hint_memo: tuple[str | None, bool] = (None, False)

    @property
    def secrets(self) -> frozenset[str]:
        """The values learned so far."""
        with self._lock:
            return frozenset(self._secrets)

    # Learning.

    def learn(self, value: str) -> None:
        """Treat ``value`` (and its JSON- and URL-escaped forms) as a secret from now on."""
        value = value.strip()
        if len(value) < MIN_SECRET or value == REDACTED or value in self._secrets:
            return
        with self._lock:
            if value in self._secrets:
                return
            self._secrets.add(value)
            needles: set[str] = set()
            for secret in self._secrets:
                needles.update(_variants(secret))
            ordered = tuple(sorted(needles, key=lambda s: (-len(s), s)))
            quick = re.compile("|".join(map(re.escape, ordered)))
            plain = all(_PLAIN.fullmatch(secret) for secret in self._secrets)
            self._search = (ordered, quick, plain)

    def learn_request(self, url: str, headers: Mapping[str, Any], body: Any) -> None:
        """Learn what one request sends as credentials."""
        self.learn_url(url)
        self.learn_headers(headers)
        self.learn_body(body)

    def learn_headers(self, headers: Mapping[str, Any], response: bool = False) -> None:
        """Learn credential header values: every request header but the harmless ones; of a
        response, those named like credentials (``set-cookie``); either way, configured names."""
        for name, values in headers.items():
            lower = str(name).lower()
            credential = self._credential_headers.get((lower, response))
            if credential is None:
                if response:
                    words = set(re.split(r"[-_.]", lower))
                    credential = bool(words & CREDENTIAL_WORDS) or (
                        normalise_name(lower) in self._fields
                    )
                else:
                    credential = not self._harmless_header(lower)
                self._credential_headers[(lower, response)] = credential
            if not credential:
                continue
            for value in values if isinstance(values, (list, tuple)) else [values]:
                seen = (lower, str(value))
                if seen not in self._seen_headers:
                    self._seen_headers.add(seen)
                    self._learn_header_value(*seen)

    def learn_url(self, url: str) -> None:
        """Learn the URL's userinfo and every query value but the harmless ones."""
        parts = urlsplit(url)
        userinfo, at, _ = parts.netloc.rpartition("@")
        if at:
            user, _, password = userinfo.partition(":")
            for value in (userinfo, user, password):
                self.learn(value)
                self.learn(unquote(value))
        for raw in parts.query.split("&"):
            name, _, value = raw.partition("=")
            if value and not self._harmless_query(unquote(name)):
                self.learn(value)
                self.learn(unquote(value.replace("+", " ")))

    def learn_body(self, body: Any) -> None:
        """Learn credentials from a body: credential-named and configured JSON fields (also in
        streamed events), and every form field but the harmless ones."""
        text = _as_text(body)
        if text is None:
            return
        if not self._field_hint(text):
            if _looks_like_form(text):
                self._learn_form(text)
            return
        data = _json_or_none(text)
        if data is not None:
            self._learn_fields(data)
        elif _looks_like_sse(text):
            for _, _, event in _sse_events(_split_lines(text)):
                self._learn_fields(event)
        elif _looks_like_form(text):
            self._learn_form(text)

    def _learn_form(self, text: str) -> None:
        for name, value in parse_qsl(text, keep_blank_values=True):
            if not self._harmless_query(name):
                self.learn(value)

    def _field(self, name: str, value: Any) -> bool:
        """Whether a body field's value is a credential: a configured name (whatever the
        value), or a credential name holding a scalar (a schema *about* passwords is not one)."""
        normal = normalise_name(name)
        if normal in self.rules.names:
            return value is not None and value != ""
        return normal in CREDENTIAL_FIELDS and _scalar(value)

    def _learn_fields(self, data: Any) -> None:
        if isinstance(data, dict):
            for key, value in data.items():
                if self._field(str(key), value):
                    for leaf in _leaves(value):
                        self.learn(leaf)
                else:
                    self._learn_fields(value)
        elif isinstance(data, list):
            for item in data:
                self._learn_fields(item)

    def _learn_header_value(self, name: str, value: str) -> None:
        value = value.strip()
        self.learn(value)
        scheme, _, rest = value.partition(" ")
        rest = rest.strip()
        if rest:
            self.learn(rest)
            if scheme.lower() == "basic":
                try:
                    decoded = base64.b64decode(rest, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError, ValueError):
                    decoded = ""
                user, _, password = decoded.partition(":")
                for part in (decoded, user, password):
                    self.learn(part)
        if name == "set-cookie":
            self.learn(value.split(";", 1)[0].partition("=")[2].strip('" '))
            return
        for pair in re.split(r"[;,]", value):
            _, eq, part = pair.partition("=")
            if eq:
                self.learn(part.strip().strip('"'))

    def _harmless_header(self, name: str) -> bool:
        if normalise_name(name) in self.rules.names:
            return False
        return name in HARMLESS_HEADERS or name.startswith(HARMLESS_HEADER_PREFIXES)

    def _harmless_query(self, name: str) -> bool:
        return name.lower() in HARMLESS_QUERY and normalise_name(name) not in self.rules.names

    # Scrubbing.

    def scrub_text(self, text: str) -> str:
        """``text`` with every learned value and pattern match replaced by ``<redacted>``."""
        spans = self._spans(text)
        return _render(text, spans) if spans else text

    def scrub_url(self, url: str) -> str:
        """Userinfo and non-harmless query values become ``<redacted>``; learned values and
        patterns are scrubbed from the rest."""
        parts = urlsplit(url)
        if not parts.query and "@" not in parts.netloc and not self._spans(url):
            return url
        _, at, hostport = parts.netloc.rpartition("@")
        netloc = f"{REDACTED}@{hostport}" if at else parts.netloc
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            scrubbed = [
                (
                    self.scrub_text(name),
                    value
                    if not value
                    else self.scrub_text(value)
                    if self._harmless_query(name)
                    else REDACTED,
                )
                for name, value in pairs
            ]
            if scrubbed != pairs:
                query = urlencode(scrubbed, safe="<>")
        new = urlunsplit(
            (
                parts.scheme,
                netloc,
                self.scrub_text(parts.path),
                query,
                self.scrub_text(parts.fragment),
            )
        )
        return url if new == urlunsplit(parts) else new

    def scrub_headers(self, headers: Mapping[str, Any]) -> dict[str, Any]:
        """Header values scrubbed; configured and credential-named headers redacted whole."""
        out: dict[str, Any] = {}
        for name, values in headers.items():
            whole = normalise_name(str(name)) in self._fields
            if isinstance(values, (list, tuple)):
                out[name] = [REDACTED if whole else self.scrub_text(str(v)) for v in values]
            else:
                out[name] = REDACTED if whole else self.scrub_text(str(values))
        return out

    @overload
    def scrub_body(self, body: bytes) -> bytes: ...
    @overload
    def scrub_body(self, body: str) -> str: ...
    def scrub_body(self, body: bytes | str) -> bytes | str:
        """A request or response body scrubbed: JSON structurally (credential and configured
        fields redacted, every string scrubbed), event streams event by event and across
        their deltas, form bodies as query strings, anything else as text. Bytes stay bytes."""
        if isinstance(body, bytes):
            text = body.decode("utf-8", "surrogateescape")
            new = self._scrub_body_text(text)
            return body if new == text else new.encode("utf-8", "surrogateescape")
        return self._scrub_body_text(body)

    def scrub_sse(self, text: str) -> str:
        """A server-sent event stream scrubbed: each stream's deltas (Anthropic
        ``content_block_delta``, OpenAI chat ``choices[].delta``, Responses ``*.delta``) are
        reassembled, and a secret found there is removed from every delta holding part of it;
        then every event is scrubbed on its own."""
        for _ in range(4):
            new = self._scrub_sse_once(text)
            if new == text:
                break
            text = new
        return text

    def _scrub_body_text(self, text: str) -> str:
        if self._clean_json(text):
            return text
        data = _json_or_none(text)
        if data is not None:
            split = bool(self._scrub_streams([data]))
            new, changed = self._scrub_json(data)
            if split or changed:
                return json.dumps(new, ensure_ascii=False, separators=(",", ":"))
            return text
        if _looks_like_sse(text):
            return self.scrub_sse(text)
        if _looks_like_form(text):
            pairs = parse_qsl(text, keep_blank_values=True)
            scrubbed = [
                (
                    self.scrub_text(name),
                    self.scrub_text(value) if not value or self._harmless_query(name) else REDACTED,
                )
                for name, value in pairs
            ]
            return urlencode(scrubbed, safe="<>") if scrubbed != pairs else text
        return self.scrub_text(text)

    def _clean_json(self, text: str) -> bool:
        """Whether ``text`` is JSON that plainly holds nothing to scrub, found without parsing
        it: no secret in any form (all are plain, so none hides behind a JSON escape), no
        pattern match, no log-probability tokens, no field named like a credential."""
        _, quick, plain = self._search
        if not plain or not text.lstrip().startswith(("{", "[")) or '"token"' in text:
            return False
        if quick is not None and quick.search(text) is not None:
            return False
        if any(pattern.search(text) for pattern in self.rules.patterns):
            return False
        return not self._field_hint(text)

    def _field_hint(self, text: str) -> bool:
        """Whether ``text`` may name a credential field (names compared as folded). The last
        answer is kept: a request's body is asked about twice, to learn and to scrub."""
        memo = self._hint_memo
        if memo[0] == text:
            return memo[1]
        folded = text.lower().replace("-", "").replace("_", "")
        found = self._field_names.search(folded) is not None
        self._hint_memo = (text, found)
        return found

    def _scrub_streams(self, events: list[Any]) -> set[int]:
        """Redact, in place, what is found in each stream reassembled from ``events``; the
        indices of the events that changed."""
        changed: set[int] = set()
        for pieces in _streams(events).values():
            texts = [container[key] for _, container, key in pieces]
            spans = self._spans("".join(texts))
            if not spans:
                continue
            for (event, container, key), new in zip(pieces, _distribute(texts, spans), strict=True):
                if container[key] != new:
                    container[key] = new
                    changed.add(event)
                    if key == "token":
                        _token_changed(container)
        return changed

    def _scrub_sse_once(self, text: str) -> str:
        lines = _split_lines(text)
        parsed = list(_sse_events(lines))
        split = self._scrub_streams([event for _, _, event in parsed])
        out = list(lines)
        for index, (position, prefix, event) in enumerate(parsed):
            new_event, event_changed = self._scrub_json(event)
            if event_changed or index in split:
                payload = json.dumps(new_event, ensure_ascii=False, separators=(",", ":"))
                out[position] = prefix + payload
        events_at = {position for position, _, _ in parsed}
        for position in range(0, len(out), 2):
            if position not in events_at:
                out[position] = self.scrub_text(out[position])
        return "".join(out)

    def _scrub_json(self, value: Any) -> tuple[Any, bool]:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            changed = False
            for key, item in value.items():
                new_key = self.scrub_text(key)
                if self._field(key, item):
                    new_item, item_changed = REDACTED, item != REDACTED
                else:
                    new_item, item_changed = self._scrub_json(item)
                out[new_key] = new_item
                changed = changed or item_changed or new_key != key
            return out, changed
        if isinstance(value, list):
            results = [self._scrub_json(item) for item in value]
            return [r for r, _ in results], any(c for _, c in results)
        if isinstance(value, str):
            new = self.scrub_text(value)
            return new, new != value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # Only a number that is a secret as a whole: a key 123456 must not eat a count.
            text = json.dumps(value)
            if self._spans(text) == [(0, len(text))]:
                return REDACTED, True
        return value, False

    def _spans(self, text: str) -> list[tuple[int, int]]:
        """Merged spans of ``text`` to redact. Existing ``<redacted>`` markers are left alone
        and nothing matches across them, which makes scrubbing idempotent; the text between
        spans is searched again until nothing more matches (patterns can match there anew)."""
        needles, quick, _ = self._search
        patterns = self.rules.patterns
        if quick is None or quick.search(text) is None:
            if not patterns or not any(pattern.search(text) for pattern in patterns):
                return []
        pending = _complement(text, [(m.start(), m.end()) for m in _MARKER.finditer(text)])
        masked: list[tuple[int, int]] = []
        while pending:
            again: list[tuple[int, int]] = []
            for start, end in pending:
                found = _merge(_matches(text[start:end], needles, patterns, start))
                if found:
                    masked.extend(found)
                    again.extend(_subtract(start, end, found))
            pending = again
        return _merge(masked)


_MARKER = re.compile(re.escape(REDACTED))
_PLAIN = re.compile(r"[A-Za-z0-9 !#$%()*+,.:;=?@\[\]^_`{|}~-]*")
"""Characters no JSON encoder escapes (some escape ``/``, ``<``, ``>``, ``&`` and ``'``)."""


def _variants(secret: str) -> set[str]:
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }
    return {form for form in forms if len(form) >= MIN_SECRET}


def _matches(
    segment: str, needles: tuple[str, ...], patterns: tuple[re.Pattern[str], ...], offset: int
) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for needle in needles:
        at = segment.find(needle)
        while at != -1:
            spans.append((offset + at, offset + at + len(needle)))
            at = segment.find(needle, at + 1)
    for pattern in patterns:
        for match in pattern.finditer(segment):
            if match.end() > match.start():
                spans.append((offset + match.start(), offset + match.end()))
    return spans


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _subtract(start: int, end: int, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    rest: list[tuple[int, int]] = []
    at = start
    for s, e in spans:
        if s > at:
            rest.append((at, s))
        at = max(at, e)
    if at < end:
        rest.append((at, end))
    return rest


def _complement(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return _subtract(0, len(text), spans)


def _render(text: str, spans: list[tuple[int, int]]) -> str:
    out: list[str] = []
    at = 0
    for start, end in spans:
        out.append(text[at:start])
        out.append(REDACTED)
        at = end
    out.append(text[at:])
    return "".join(out)


def _distribute(pieces: list[str], spans: list[tuple[int, int]]) -> list[str]:
    """Redact ``spans`` of the concatenated ``pieces`` piece by piece: the marker goes in the
    piece where a span starts, its other characters are dropped from the pieces they are in.
    The new pieces concatenate to the scrubbed whole."""
    out: list[str] = []
    offset = 0
    index = 0
    for piece in pieces:
        start, end = offset, offset + len(piece)
        buffer: list[str] = []
        at = start
        while index < len(spans) and spans[index][0] < end:
            s, e = spans[index]
            if e <= start:
                index += 1
                continue
            if s >= start:
                buffer.append(piece[at - start : s - start])
                buffer.append(REDACTED)
            at = max(at, min(e, end))
            if e <= end:
                index += 1
            else:
                break
        buffer.append(piece[at - start :])
        out.append("".join(buffer))
        offset = end
    return out


def _as_text(body: Any) -> str | None:
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return body if isinstance(body, str) else None


def _json_or_none(text: str) -> Any:
    stripped = text.lstrip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, (dict, list)) else None


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) and value != ""


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


_SSE_FIELD = re.compile(r"(?:data|event|id|retry):|:")
_FORM = re.compile(r"[^=&\s]+=[^&\s]*(?:&[^=&\s]+=[^&\s]*)*")


def _looks_like_sse(text: str) -> bool:
    return _SSE_FIELD.match(text.lstrip()) is not None


def _looks_like_form(text: str) -> bool:
    return _FORM.fullmatch(text) is not None


def _split_lines(text: str) -> list[str]:
    """Lines at even positions, their line breaks (CRLF, CR or LF, as SSE allows) between."""
    return re.split(r"(\r\n|\r|\n)", text)


def _sse_events(lines: list[str]) -> Iterator[tuple[int, str, Any]]:
    """``(position, "data: " prefix, parsed JSON)`` of each data line holding JSON."""
    for position in range(0, len(lines), 2):
        line = lines[position]
        if not line.startswith("data:"):
            continue
        prefix = "data: " if line.startswith("data: ") else "data:"
        data = _json_or_none(line[len(prefix) :])
        if data is not None:
            yield position, prefix, data


_Piece = tuple[int, Any, Any]


def _streams(events: list[Any]) -> dict[tuple[Any, ...], list[_Piece]]:
    """The text pieces of every stream in ``events``, in order: (event index, container, key)
    whose values concatenate to one stream's text. Streams are the deltas of a streamed
    answer and the ``token`` lists of log probabilities (streamed or not)."""
    streams: dict[tuple[Any, ...], list[_Piece]] = {}
    for index, event in enumerate(events):
        for key, container, name in _stream_pieces(event):
            streams.setdefault(key, []).append((index, container, name))
        where = _event_place(event)
        for path, entries in _token_lists(event, ()):
            for entry in entries:
                streams.setdefault(("tokens", *where, *path), []).append((index, entry, "token"))
    return streams


def _event_place(event: Any) -> tuple[Any, ...]:
    if not isinstance(event, dict):
        return ()
    return tuple(event.get(k) for k in ("type", "item_id", "output_index", "content_index"))


def _token_lists(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], list[Any]]]:
    """Lists of ``{"token": str, ...}`` entries (log probabilities), with where they are."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _token_lists(item, (*path, key))
    elif isinstance(value, list) and value:
        if all(isinstance(e, dict) and isinstance(e.get("token"), str) for e in value):
            yield path, value
        else:
            for position, item in enumerate(value):
                yield from _token_lists(item, (*path, position))


def _token_changed(entry: dict[str, Any]) -> None:
    """A log-probability entry whose token was redacted: its bytes follow, and its
    alternatives (which may spell the same secret) go."""
    if isinstance(entry.get("bytes"), list):
        entry["bytes"] = list(entry["token"].encode())
    if isinstance(entry.get("top_logprobs"), list):
        entry["top_logprobs"] = []


def _stream_pieces(event: Any) -> Iterator[tuple[tuple[Any, ...], Any, Any]]:
    if not isinstance(event, dict):
        return
    kind = event.get("type")
    delta = event.get("delta")
    if kind == "content_block_delta" and isinstance(delta, dict):
        for name, value in delta.items():
            if name != "type" and isinstance(value, str):
                yield ("anthropic", event.get("index"), name), delta, name
    elif isinstance(kind, str) and kind.endswith(".delta") and isinstance(delta, str):
        where = tuple(
            event.get(k) for k in ("item_id", "output_index", "content_index", "summary_index")
        )
        yield ("responses", kind, *where), event, "delta"
    choices = event.get("choices")
    if isinstance(choices, list):
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", position)
            delta = choice.get("delta")
            if isinstance(delta, dict):
                yield from _chat_delta_pieces(index, delta)
            if isinstance(choice.get("text"), str):
                yield ("completion", index), choice, "text"
    candidates = event.get("candidates")
    if isinstance(candidates, list):
        for position, candidate in enumerate(candidates):
            content = candidate.get("content") if isinstance(candidate, dict) else None
            parts = content.get("parts") if isinstance(content, dict) else None
            for part in parts if isinstance(parts, list) else ():
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    index = candidate.get("index", position)
                    yield ("gemini", index), part, "text"


def _chat_delta_pieces(
    index: Any, delta: dict[str, Any]
) -> Iterator[tuple[tuple[Any, ...], Any, Any]]:
    for name, value in delta.items():
        if name != "role" and isinstance(value, str):
            yield ("chat", index, name), delta, name
    calls = delta.get("tool_calls")
    for position, call in enumerate(calls if isinstance(calls, list) else ()):
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            where = call.get("index", position)
            yield ("chat", index, "tool", where), function, "arguments"


__all__ = [
    "CREDENTIAL_FIELDS",
    "CREDENTIAL_WORDS",
    "HARMLESS_HEADERS",
    "HARMLESS_QUERY",
    "KEY_SHAPE_KINDS",
    "MIN_SECRET",
    "REDACTED",
    "KeyShape",
    "ScrubRules",
    "Scrubber",
    "find_key_shape",
    "find_key_shape_in_body",
    "public_url",
    "split_entries",
]
