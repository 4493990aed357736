"""Token usage read from raw LLM HTTP responses.

The plugin intercepts calls below the SDKs, so usage is parsed from the bytes on the wire:
Anthropic Messages (also on Vertex AI and Bedrock, including Bedrock's binary event streams)
and OpenAI Chat Completions / Responses (also on Azure), plain JSON or server-sent events.
A response whose usage cannot be established gives ``None`` (unknown), never zero.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

__all__ = [
    "Api",
    "Provider",
    "ServerSentEvent",
    "Usage",
    "Vendor",
    "api_of",
    "iter_sse",
    "provider_of",
    "usage_from_response",
    "vendor_of",
]

Provider = Literal["anthropic", "openai"]
Api = Literal["anthropic-messages", "openai-chat", "openai-responses"]
Vendor = Literal["anthropic", "openai", "aws", "google", "azure"]


@dataclass(frozen=True)
class Usage:
    """Tokens billed for one call, split by how they are priced.

    ``input_tokens`` counts only uncached input: OpenAI's ``prompt_tokens`` includes cached
    tokens, so those are moved to ``cache_read_tokens`` here, as Anthropic reports them.
    ``cache_write_1h_tokens`` is the part of ``cache_write_tokens`` written to the 1-hour cache
    (the rest went to the 5-minute cache). ``provider`` is who served the call, as a
    genai-prices provider id (see :func:`vendor_of`); ``service_tier`` is the tier the response
    reports (``"priority"``, ``"flex"``, ...), which some providers price differently.
    """

    model: str | None
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_1h_tokens: int = 0
    provider: str | None = None
    service_tier: str | None = None

    @property
    def total_tokens(self) -> int:
        """All tokens of the call, input of every kind plus output."""
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_write_tokens
            + self.cache_read_tokens
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (the inverse of :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        """Rebuild from :meth:`to_dict` output; raise ``ValueError`` if malformed."""
        names: dict[str, str | None] = {}
        for key in ("model", "provider", "service_tier"):
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"usage {key!r} must be a string or null, got {value!r}")
            names[key] = value
        counts: dict[str, int] = {}
        for key in _COUNT_KEYS:
            value = data.get(key, 0)
            if not _is_count(value):
                raise ValueError(f"usage {key!r} must be a non-negative integer, got {value!r}")
            counts[key] = value
        if "input_tokens" not in data or "output_tokens" not in data:
            raise ValueError("usage needs 'input_tokens' and 'output_tokens'")
        if counts["cache_write_1h_tokens"] > counts["cache_write_tokens"]:
            raise ValueError("usage 'cache_write_1h_tokens' cannot exceed 'cache_write_tokens'")
        return cls(
            model=names["model"],
            provider=names["provider"],
            service_tier=names["service_tier"],
            **counts,
        )


_COUNT_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_write_tokens",
    "cache_read_tokens",
    "cache_write_1h_tokens",
)


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched server-sent event: its ``event`` name (or ``None``) and joined ``data``."""

    event: str | None
    data: str


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    return value if _is_count(value) else None


def _mapping(obj: Any, key: str) -> dict[str, Any] | None:
    if not isinstance(obj, dict):
        return None
    value = obj.get(key)
    return value if isinstance(value, dict) else None


def _model(obj: Any) -> str | None:
    if isinstance(obj, dict):
        value = obj.get("model")
        if isinstance(value, str) and value:
            return value
    return None


# --- paths ---------------------------------------------------------------------------------------

_VERTEX_ANTHROPIC = re.compile(
    r"/publishers/anthropic/models/([^/:]+):(?:rawPredict|streamRawPredict)$"
)
_BEDROCK_INVOKE = re.compile(r"/model/([^/]+)/invoke(?:-with-response-stream)?$")


def _clean_path(path: str) -> str:
    if "://" in path:
        path = urlsplit(path).path
    else:
        path = path.split("?", 1)[0].split("#", 1)[0]
    return path.rstrip("/")


def api_of(path: str) -> Api | None:
    """Which LLM API a request path calls, or ``None`` for anything else.

    Accepts paths with or without ``/v1``, Azure's ``/openai/deployments/NAME/...``, full URLs,
    query strings, and Anthropic models on Vertex AI (``:rawPredict``) and Bedrock (``/invoke``,
    ``/invoke-with-response-stream``).
    """
    p = _clean_path(path)
    if p.endswith("/chat/completions") or p.endswith("/completions"):
        return "openai-chat"
    if p.endswith("/responses"):
        return "openai-responses"
    if p.endswith("/messages") and "/threads/" not in p:
        return "anthropic-messages"
    if _VERTEX_ANTHROPIC.search(p):
        return "anthropic-messages"
    match = _BEDROCK_INVOKE.search(p)
    if match and "anthropic." in unquote(match.group(1)):
        return "anthropic-messages"
    return None


def provider_of(path: str) -> Provider | None:
    """``'anthropic'`` or ``'openai'`` for an LLM request path, ``None`` otherwise."""
    api = api_of(path)
    if api is None:
        return None
    return "anthropic" if api == "anthropic-messages" else "openai"


def vendor_of(path: str) -> Vendor | None:
    """Who serves an LLM request path, as a genai-prices provider id; ``None`` for other paths.

    Bedrock's ``/model/ID/invoke`` is ``'aws'``, Vertex AI's ``:rawPredict`` is ``'google'``,
    Azure's ``/openai/...`` paths are ``'azure'``; otherwise the API's own maker.
    """
    api = api_of(path)
    if api is None:
        return None
    p = _clean_path(path)
    if _BEDROCK_INVOKE.search(p):
        return "aws"
    if _VERTEX_ANTHROPIC.search(p):
        return "google"
    if p.startswith("/openai/"):
        return "azure"
    return "anthropic" if api == "anthropic-messages" else "openai"


def _model_from_path(path: str) -> str | None:
    p = _clean_path(path)
    match = _VERTEX_ANTHROPIC.search(p) or _BEDROCK_INVOKE.search(p)
    return unquote(match.group(1)) if match else None


# --- server-sent events --------------------------------------------------------------------------

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def iter_sse(text: str) -> Iterator[ServerSentEvent]:
    """Parse a server-sent-event stream (WHATWG rules: any line ending, comments, multi-line data).

    A final event without its blank line is still yielded, so a recording that lost its last
    newline reads the same; callers validate the data (a truncated JSON payload fails to parse).
    """
    event: str | None = None
    data: list[str] = []
    has_data = False
    for line in _LINE_BREAK.split(text):
        if not line:
            if has_data:
                yield ServerSentEvent(event, "\n".join(data))
            event, data, has_data = None, [], False
            continue
        if line.startswith(":"):
            continue
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
            has_data = True
    if has_data:
        yield ServerSentEvent(event, "\n".join(data))


def _sse_json(text: str) -> Iterator[tuple[str | None, dict[str, Any]]]:
    for sse in iter_sse(text):
        try:
            payload = json.loads(sse.data)
        except ValueError:
            continue
        if isinstance(payload, dict):
            yield sse.event, payload


# --- per-API parsers -----------------------------------------------------------------------------


def _tier(obj: Any) -> str | None:
    if isinstance(obj, dict):
        value = obj.get("service_tier")
        if isinstance(value, str) and value:
            return value
    return None


def _anthropic_usage(usage: Mapping[str, Any], model: str | None) -> Usage | None:
    input_tokens = _count(usage, "input_tokens")
    output_tokens = _count(usage, "output_tokens")
    if input_tokens is None or output_tokens is None:
        return None
    written = _count(usage, "cache_creation_input_tokens") or 0
    by_ttl = _mapping(usage, "cache_creation") or {}
    return Usage(
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_write_tokens=written,
        cache_read_tokens=_count(usage, "cache_read_input_tokens") or 0,
        cache_write_1h_tokens=min(_count(by_ttl, "ephemeral_1h_input_tokens") or 0, written),
        service_tier=_tier(usage),
    )


def _anthropic_stream(payloads: Iterable[dict[str, Any]]) -> Usage | None:
    """``message_start`` gives the input side; each ``message_delta`` is cumulative, latest wins."""
    fields: dict[str, Any] = {}
    model: str | None = None
    finished = False
    for payload in payloads:
        kind = payload.get("type")
        if kind == "message_start":
            message = _mapping(payload, "message")
            model = _model(message) or model
            usage = _mapping(message, "usage")
        elif kind == "message_delta":
            usage = _mapping(payload, "usage")
            finished = finished or usage is not None
        else:
            continue
        for key, value in (usage or {}).items():
            if _is_count(value) or (key == "cache_creation" and isinstance(value, dict)):
                fields[key] = value
            elif key == "service_tier" and isinstance(value, str):
                fields[key] = value
    if not finished:
        return None
    return _anthropic_usage(fields, model)


def _bedrock_stream(body: bytes) -> Usage | None:
    """Bedrock's ``invoke-with-response-stream`` body: AWS event-stream frames whose ``chunk``
    events carry the Anthropic stream events, base64-encoded. Decoded with botocore (which the
    Anthropic SDK's Bedrock client needs anyway); without botocore the usage is unknown.
    """
    try:
        from botocore.eventstream import EventStreamBuffer, ParserError
    except ImportError:
        return None
    payloads: list[dict[str, Any]] = []
    buffer = EventStreamBuffer()
    buffer.add_data(body)
    try:
        for message in buffer:
            headers = message.headers
            if headers.get(":message-type") != "event":
                return None
            if headers.get(":event-type") != "chunk":
                continue
            chunk = json.loads(message.payload)
            payload = json.loads(base64.b64decode(chunk["bytes"], validate=True))
            if isinstance(payload, dict):
                payloads.append(payload)
    except (ParserError, ValueError, TypeError, KeyError):
        return None
    return _anthropic_stream(payloads)


def _openai_chat_usage(
    usage: Mapping[str, Any], model: str | None, tier: str | None = None
) -> Usage | None:
    prompt = _count(usage, "prompt_tokens")
    completion = _count(usage, "completion_tokens")
    if prompt is None or completion is None:
        return None
    details = _mapping(usage, "prompt_tokens_details") or {}
    return _openai_split(model, prompt, completion, details, tier)


def _openai_responses_usage(
    usage: Mapping[str, Any], model: str | None, tier: str | None = None
) -> Usage | None:
    input_tokens = _count(usage, "input_tokens")
    output_tokens = _count(usage, "output_tokens")
    if input_tokens is None or output_tokens is None:
        return None
    details = _mapping(usage, "input_tokens_details") or {}
    return _openai_split(model, input_tokens, output_tokens, details, tier)


def _openai_split(
    model: str | None,
    prompt: int,
    completion: int,
    details: Mapping[str, Any],
    tier: str | None,
) -> Usage:
    """OpenAI's input count includes cached (and cache-written) tokens: split them out."""
    cached = min(_count(details, "cached_tokens") or 0, prompt)
    written = min(_count(details, "cache_write_tokens") or 0, prompt - cached)
    return Usage(
        model=model,
        input_tokens=prompt - cached - written,
        output_tokens=completion,
        cache_write_tokens=written,
        cache_read_tokens=cached,
        service_tier=tier,
    )


def _openai_chat_stream(text: str) -> Usage | None:
    """The usage chunk (``stream_options.include_usage``) comes last; take the last one seen."""
    found: Usage | None = None
    model: str | None = None
    tier: str | None = None
    for _, payload in _sse_json(text):
        model = _model(payload) or model
        tier = _tier(payload) or tier
        usage = _mapping(payload, "usage")
        if usage is not None:
            found = _openai_chat_usage(usage, model, tier) or found
    return found


def _openai_responses_stream(text: str) -> Usage | None:
    """``response.completed`` (or ``.incomplete`` / ``.failed``) carries ``response.usage``."""
    found: Usage | None = None
    for _, payload in _sse_json(text):
        response = _mapping(payload, "response")
        usage = _mapping(response, "usage")
        if usage is not None:
            found = _openai_responses_usage(usage, _model(response), _tier(response)) or found
    return found


# --- entry point ---------------------------------------------------------------------------------


def _decode(body: bytes) -> str:
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError):
            return ""
    return body.decode("utf-8", errors="replace").lstrip("\ufeff")


def _is_sse(content_type: str | None, text: str) -> bool:
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        if media == "text/event-stream":
            return True
        if media.endswith("json"):
            return False
    stripped = text.lstrip()
    return not stripped.startswith(("{", "[")) and (
        stripped.startswith(("data:", "event:", ":")) or "\ndata:" in text
    )


def _request_model(request_body: bytes | None) -> str | None:
    if not request_body:
        return None
    try:
        return _model(json.loads(_decode(request_body)))
    except ValueError:
        return None


def _is_event_stream(content_type: str | None) -> bool:
    """AWS event-stream framing (Bedrock's streaming responses)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/vnd.amazon.eventstream"


def usage_from_response(
    path: str,
    content_type: str | None,
    body: bytes,
    request_body: bytes | None = None,
) -> Usage | None:
    """Token usage of one LLM response, or ``None`` when it cannot be known.

    ``path`` is the request path (or URL), ``content_type`` the response's Content-Type and
    ``body`` the full response body. The model name comes from the response, else from
    ``request_body``, else from the path (Vertex AI, Bedrock); the provider from the path
    (:func:`vendor_of`). Error bodies, non-LLM paths and streams cut off before their usage
    arrived give ``None``.
    """
    api = api_of(path)
    if api is None or not body:
        return None
    if api == "anthropic-messages" and _is_event_stream(content_type):
        usage = _bedrock_stream(body)
        return None if usage is None else _complete(usage, path, request_body)
    text = _decode(body)
    if _is_sse(content_type, text):
        if api == "anthropic-messages":
            usage = _anthropic_stream(payload for _, payload in _sse_json(text))
        elif api == "openai-chat":
            usage = _openai_chat_stream(text)
        else:
            usage = _openai_responses_stream(text)
    else:
        try:
            payload = json.loads(text)
        except ValueError:
            return None
        usage_obj = _mapping(payload, "usage")
        if usage_obj is None:
            return None
        if api == "anthropic-messages":
            usage = _anthropic_usage(usage_obj, _model(payload))
        elif api == "openai-chat":
            usage = _openai_chat_usage(usage_obj, _model(payload), _tier(payload))
        else:
            usage = _openai_responses_usage(usage_obj, _model(payload), _tier(payload))
    return None if usage is None else _complete(usage, path, request_body)


def _complete(usage: Usage, path: str, request_body: bytes | None) -> Usage:
    """Add what the body lacked: the provider (from the path) and a model name."""
    model = usage.model or _request_model(request_body) or _model_from_path(path)
    # Interned: a run's records then share a few model names instead of one copy per call.
    return replace(usage, model=model and sys.intern(model), provider=vendor_of(path))
