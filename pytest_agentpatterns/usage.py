"""Token usage read from raw LLM HTTP responses.

The plugin intercepts calls below the SDKs, so usage is parsed from the bytes on the wire:
Anthropic Messages and OpenAI Chat Completions / Responses, plain JSON or server-sent events.
A response whose usage cannot be established gives ``None`` (unknown), never zero.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

__all__ = [
    "Api",
    "Provider",
    "ServerSentEvent",
    "Usage",
    "api_of",
    "iter_sse",
    "provider_of",
    "usage_from_response",
]

Provider = Literal["anthropic", "openai"]
Api = Literal["anthropic-messages", "openai-chat", "openai-responses"]


@dataclass(frozen=True)
class Usage:
    """Tokens billed for one call, split by how they are priced.

    ``input_tokens`` counts only uncached input: OpenAI's ``prompt_tokens`` includes cached
    tokens, so those are moved to ``cache_read_tokens`` here, as Anthropic reports them.
    """

    model: str | None
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0

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
        model = data.get("model")
        if model is not None and not isinstance(model, str):
            raise ValueError(f"usage 'model' must be a string or null, got {model!r}")
        counts: dict[str, int] = {}
        for key in ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"):
            value = data.get(key, 0)
            if not _is_count(value):
                raise ValueError(f"usage {key!r} must be a non-negative integer, got {value!r}")
            counts[key] = value
        if "input_tokens" not in data or "output_tokens" not in data:
            raise ValueError("usage needs 'input_tokens' and 'output_tokens'")
        return cls(model=model, **counts)


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
_BEDROCK_INVOKE = re.compile(r"/model/([^/]+)/invoke$")


def _clean_path(path: str) -> str:
    if "://" in path:
        path = urlsplit(path).path
    else:
        path = path.split("?", 1)[0].split("#", 1)[0]
    return path.rstrip("/")


def api_of(path: str) -> Api | None:
    """Which LLM API a request path calls, or ``None`` for anything else.

    Accepts paths with or without ``/v1``, Azure's ``/openai/deployments/NAME/...``, full URLs,
    query strings, and Anthropic models on Vertex AI (``:rawPredict``) and Bedrock (``/invoke``).
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
    if match and "anthropic." in match.group(1):
        return "anthropic-messages"
    return None


def provider_of(path: str) -> Provider | None:
    """``'anthropic'`` or ``'openai'`` for an LLM request path, ``None`` otherwise."""
    api = api_of(path)
    if api is None:
        return None
    return "anthropic" if api == "anthropic-messages" else "openai"


def _model_from_path(path: str) -> str | None:
    p = _clean_path(path)
    match = _VERTEX_ANTHROPIC.search(p) or _BEDROCK_INVOKE.search(p)
    return match.group(1) if match else None


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


def _anthropic_usage(usage: Mapping[str, Any], model: str | None) -> Usage | None:
    input_tokens = _count(usage, "input_tokens")
    output_tokens = _count(usage, "output_tokens")
    if input_tokens is None or output_tokens is None:
        return None
    return Usage(
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_write_tokens=_count(usage, "cache_creation_input_tokens") or 0,
        cache_read_tokens=_count(usage, "cache_read_input_tokens") or 0,
    )


def _anthropic_stream(text: str) -> Usage | None:
    """``message_start`` gives the input side; each ``message_delta`` is cumulative, latest wins."""
    fields: dict[str, int] = {}
    model: str | None = None
    finished = False
    for _, payload in _sse_json(text):
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
            if _is_count(value):
                fields[key] = value
    if not finished:
        return None
    return _anthropic_usage(fields, model)


def _openai_chat_usage(usage: Mapping[str, Any], model: str | None) -> Usage | None:
    prompt = _count(usage, "prompt_tokens")
    completion = _count(usage, "completion_tokens")
    if prompt is None or completion is None:
        return None
    details = _mapping(usage, "prompt_tokens_details") or {}
    return _openai_split(model, prompt, completion, details)


def _openai_responses_usage(usage: Mapping[str, Any], model: str | None) -> Usage | None:
    input_tokens = _count(usage, "input_tokens")
    output_tokens = _count(usage, "output_tokens")
    if input_tokens is None or output_tokens is None:
        return None
    details = _mapping(usage, "input_tokens_details") or {}
    return _openai_split(model, input_tokens, output_tokens, details)


def _openai_split(
    model: str | None, prompt: int, completion: int, details: Mapping[str, Any]
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
    )


def _openai_chat_stream(text: str) -> Usage | None:
    """The usage chunk (``stream_options.include_usage``) comes last; take the last one seen."""
    found: Usage | None = None
    model: str | None = None
    for _, payload in _sse_json(text):
        model = _model(payload) or model
        usage = _mapping(payload, "usage")
        if usage is not None:
            found = _openai_chat_usage(usage, model) or found
    return found


def _openai_responses_stream(text: str) -> Usage | None:
    """``response.completed`` (or ``.incomplete`` / ``.failed``) carries ``response.usage``."""
    found: Usage | None = None
    for _, payload in _sse_json(text):
        response = _mapping(payload, "response")
        usage = _mapping(response, "usage")
        if usage is not None:
            found = _openai_responses_usage(usage, _model(response)) or found
    return found


def _counts(usage: Usage) -> tuple[int, int, int, int]:
    return (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_write_tokens,
        usage.cache_read_tokens,
    )


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


def usage_from_response(
    path: str,
    content_type: str | None,
    body: bytes,
    request_body: bytes | None = None,
) -> Usage | None:
    """Token usage of one LLM response, or ``None`` when it cannot be known.

    ``path`` is the request path (or URL), ``content_type`` the response's Content-Type and
    ``body`` the full response body. The model name comes from the response, else from
    ``request_body``, else from the path (Vertex AI, Bedrock). Error bodies, non-LLM paths and
    streams cut off before their usage arrived give ``None``.
    """
    api = api_of(path)
    if api is None or not body:
        return None
    text = _decode(body)
    if _is_sse(content_type, text):
        if api == "anthropic-messages":
            usage = _anthropic_stream(text)
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
            usage = _openai_chat_usage(usage_obj, _model(payload))
        else:
            usage = _openai_responses_usage(usage_obj, _model(payload))
    if usage is None or usage.model is not None:
        return usage
    model = _request_model(request_body) or _model_from_path(path)
    return Usage(model, *_counts(usage)) if model else usage
