"""Provider wire formats: parse Anthropic Messages, OpenAI Chat Completions and OpenAI Responses
requests into a ``SimRequest``, and render a ``Plan`` as JSON or as server-sent events.

Pure functions and data: the server decides when to send what; this module decides the bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from . import shapes
from .oracle import Api, Choice, Plan, SimRequest, ToolCall

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream; charset=utf-8"


class ProtocolError(Exception):
    """A request the provider would reject with a 4xx; rendered in the provider's error format."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Wire:
    """A response to send: a JSON body, or SSE events each with its share of output tokens.

    The server waits ``per_token * weight`` before sending each event (weight 0: at once).
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    events: tuple[tuple[bytes, float], ...] | None = None


_ROUTES: dict[str, Api] = {
    "/messages": "anthropic",
    "/chat/completions": "chat",
    "/responses": "responses",
}


def api_for_path(path: str) -> Api | None:
    """Which API a POST path belongs to (the ``/v1`` prefix is optional); ``None`` if none."""
    route = path.split("?", 1)[0].rstrip("/")
    route = route.removeprefix("/v1")
    return _ROUTES.get(route)


def has_credentials(api: Api, headers: Mapping[str, str]) -> bool:
    """Whether a non-empty key was sent the way this provider's SDK sends it.

    Anthropic: ``x-api-key`` or ``Authorization: Bearer``; OpenAI: ``Authorization: Bearer``.
    """
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return True
    return api == "anthropic" and bool(headers.get("x-api-key", "").strip())


def parse_request(api: Api, raw: bytes) -> tuple[SimRequest, dict[str, Any]]:
    """Validate a request body and reduce it to a ``SimRequest`` (plus the decoded body)."""
    try:
        body = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(400, f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError(400, "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ProtocolError(400, "model: Field required (a non-empty string).")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    key = hashlib.sha256(f"{api}\n{canonical}".encode("utf-8", "surrogatepass")).hexdigest()
    stream = body.get("stream", False) is True
    if api == "anthropic":
        conversation = _anthropic_text(body)
        max_tokens = _int_field(body, "max_tokens", required=True)
        temperature = _temperature(body, 1.0)
        n = 1
    elif api == "chat":
        conversation = _chat_text(body)
        max_tokens = _int_field(body, "max_completion_tokens") or _int_field(body, "max_tokens")
        temperature = _temperature(body, 2.0)
        n = _int_field(body, "n") or 1
        if n > 128:
            raise ProtocolError(400, "n: must be at most 128.")
    else:
        conversation = _responses_text(body)
        max_tokens = _int_field(body, "max_output_tokens")
        temperature = _temperature(body, 2.0)
        n = 1
    try:
        shape = shapes.read(api, body)
    except shapes.ShapeError as exc:
        raise ProtocolError(400, str(exc)) from None
    request = SimRequest(
        api=api,
        model=model,
        prompt=conversation.prompt,
        last_text=conversation.last,
        body_key=key,
        stream=stream,
        temperature=temperature,
        max_tokens=max_tokens,
        n=n,
        cache_prefix=conversation.cache_prefix,
        turn_start=conversation.turn_start,
        after_tool_result=conversation.after_tool_result,
        tools=shape.tools,
        tool_mode=shape.tool_mode,
        forced_tool=shape.forced_tool,
        json_mode=shape.json_mode,
        json_schema=shape.json_schema,
        definitions=shape.definitions,
    )
    return request, body


def _int_field(body: Mapping[str, Any], name: str, required: bool = False) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ProtocolError(400, f"{name}: Field required.")
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ProtocolError(400, f"{name}: must be an integer >= 1, not {value!r}.")
    return value


def _temperature(body: Mapping[str, Any], upper: float) -> float:
    value = body.get("temperature")
    if value is None:
        return 1.0
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= upper:
        raise ProtocolError(400, f"temperature: must be a number in [0, {upper:g}], not {value!r}.")
    return float(value)


def _block_text(block: Any) -> str:
    """The text a model would read in one content block or part (empty for images etc.)."""
    if isinstance(block, str):
        return block
    if not isinstance(block, Mapping):
        return ""
    kind = block.get("type")
    if kind in ("text", "input_text", "output_text") and isinstance(block.get("text"), str):
        return str(block["text"])
    if kind == "tool_use":
        return json.dumps(block.get("input", {}), sort_keys=True)
    if kind == "function_call":
        return str(block.get("arguments", ""))
    if kind in ("tool_result", "function_call_output"):
        content = block.get("content", block.get("output", ""))
        if isinstance(content, list):
            return "\n".join(t for t in map(_block_text, content) if t)
        return content if isinstance(content, str) else ""
    return ""


def _joined(parts: list[Any]) -> str:
    return "\n".join(t for t in map(_block_text, parts) if t)


@dataclass(frozen=True)
class Conversation:
    """A request's messages as the model reads them.

    ``pieces`` joined with newlines are the prompt; the last turn starts at piece
    ``turn_piece``; ``last`` is the last user message's text (what the generic answer echoes).
    """

    pieces: tuple[str, ...]
    last: str
    turn_piece: int
    after_tool_result: bool = False
    cache_prefix: str | None = None

    @property
    def prompt(self) -> str:
        """The whole conversation as one text."""
        return "\n".join(self.pieces)

    @property
    def turn_start(self) -> int:
        """Where the last turn begins in ``prompt``."""
        head = self.pieces[: self.turn_piece]
        return len("\n".join(head)) + (1 if head else 0)


def _anthropic_text(body: Mapping[str, Any]) -> Conversation:
    """The conversation, with the prefix up to the last cache breakpoint.

    The last turn is the last user message (tool results included).
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ProtocolError(400, "messages: Field required (a non-empty list).")
    pieces: list[str] = []
    breakpoint_at = -1
    system = body.get("system")
    blocks: list[Any] = [system] if isinstance(system, str) else list(system or [])
    last = ""
    turn_block = len(blocks)
    pending: list[str] = []
    after_tool_result = False
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or message.get("role") not in ("user", "assistant"):
            raise ProtocolError(400, "messages: each message needs role 'user' or 'assistant'.")
        content = message.get("content")
        parts = [content] if isinstance(content, str) else list(content or [])
        kinds = [p.get("type") if isinstance(p, Mapping) else "text" for p in parts]
        _pair_anthropic_tools(i, message["role"], parts, pending)
        pending = [
            str(p.get("id"))
            for p in parts
            if isinstance(p, Mapping) and p.get("type") == "tool_use"
        ]
        if message["role"] == "user":
            last = _joined(parts)
            turn_block = len(blocks)
            after_tool_result = "tool_result" in kinds
        blocks.extend(parts)
    turn_piece = 0
    for at, block in enumerate(blocks):
        if at == turn_block:
            turn_piece = len(pieces)
        text = _block_text(block)
        if text:
            pieces.append(text)
        if isinstance(block, Mapping) and block.get("cache_control") and pieces:
            breakpoint_at = len(pieces) - 1
    if turn_block >= len(blocks):
        turn_piece = len(pieces)
    if body.get("cache_control"):
        breakpoint_at = len(pieces) - 1
    prefix = "\n".join(pieces[: breakpoint_at + 1]) if breakpoint_at >= 0 else None
    last_role = messages[-1].get("role")
    return Conversation(
        tuple(pieces), last, turn_piece, after_tool_result and last_role == "user", prefix
    )


def _pair_anthropic_tools(index: int, role: str, parts: list[Any], pending: list[str]) -> None:
    """Reject tool results that answer no call, and calls left without results, as the API does."""
    results = [
        str(p.get("tool_use_id"))
        for p in parts
        if isinstance(p, Mapping) and p.get("type") == "tool_result"
    ]
    if role == "assistant" and results:
        raise ProtocolError(400, f"messages.{index}: tool_result blocks belong in user messages.")
    missing = [call for call in pending if call not in results]
    if missing:
        raise ProtocolError(
            400,
            f"messages.{index - 1}: `tool_use` ids were found without `tool_result` blocks "
            f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
            "corresponding `tool_result` block in the next message.",
        )
    unexpected = [r for r in results if r not in pending]
    if unexpected:
        raise ProtocolError(
            400,
            f"messages.{index}: unexpected `tool_use_id` found in `tool_result` blocks: "
            f"{', '.join(unexpected)}. Each `tool_result` block must have a corresponding "
            "`tool_use` block in the previous message.",
        )


def _chat_text(body: Mapping[str, Any]) -> Conversation:
    """The conversation; its last turn is the messages after the last assistant message."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ProtocolError(400, "messages: must be a non-empty array.")
    pieces: list[str] = []
    last = ""
    turn_piece = 0
    user_piece = 0
    pending: list[str] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise ProtocolError(400, "messages: each message needs a 'role'.")
        role = message["role"]
        pending = _pair_chat_tools(i, message, pending)
        content = message.get("content")
        parts = [content] if isinstance(content, str) else list(content or [])
        if role == "assistant":
            calls = message.get("tool_calls") or []
            parts += [{"type": "function_call", **c["function"]} for c in calls if _is_call(c)]
        text = _joined(parts)
        if role == "assistant":
            turn_piece = len(pieces) + (1 if text else 0)
        elif role == "user":
            user_piece = len(pieces)
        elif role in ("system", "developer") and turn_piece == len(pieces):
            turn_piece += 1 if text else 0
        if text:
            pieces.append(text)
        if role == "user":
            last = text
    if pending:
        raise _missing_tool_messages(pending)
    ends = messages[-1].get("role")
    if ends == "assistant":
        turn_piece = user_piece
    return Conversation(tuple(pieces), last, turn_piece, ends in ("tool", "function"))


def _is_call(call: Any) -> bool:
    return isinstance(call, Mapping) and isinstance(call.get("function"), Mapping)


def _pair_chat_tools(index: int, message: Mapping[str, Any], pending: list[str]) -> list[str]:
    """The tool calls still unanswered after this message; errors as the API words them."""
    role = message["role"]
    if role == "tool":
        call = message.get("tool_call_id")
        if call not in pending:
            raise ProtocolError(
                400,
                f"messages.[{index}].role: messages with role 'tool' must be a response to a "
                f"preceding message with 'tool_calls' (no call has id {call!r}).",
            )
        return [p for p in pending if p != call]
    if pending:
        raise _missing_tool_messages(pending)
    if role == "assistant":
        calls = message.get("tool_calls") or []
        return [str(c.get("id")) for c in calls if isinstance(c, Mapping)]
    return []


def _missing_tool_messages(pending: list[str]) -> ProtocolError:
    return ProtocolError(
        400,
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(pending),
    )


def _responses_text(body: Mapping[str, Any]) -> Conversation:
    """The conversation; its last turn is the items after the last assistant message or call."""
    items = body.get("input")
    if not isinstance(items, (str, list)) or not items:
        raise ProtocolError(400, "input: must be a non-empty string or array.")
    pieces: list[str] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        pieces.append(instructions)
    if isinstance(items, str):
        pieces.append(items)
        return Conversation(tuple(pieces), items, len(pieces) - 1)
    last = ""
    turn_piece = len(pieces)
    user_piece = len(pieces)
    calls: set[str] = set()
    answered: set[str] = set()
    stored = body.get("previous_response_id") is not None
    ends = ""
    for item in items:
        if not isinstance(item, Mapping):
            continue
        kind = str(item.get("type") or "message")
        role = item.get("role")
        if kind == "function_call":
            calls.add(str(item.get("call_id")))
        elif kind == "function_call_output":
            answered.add(str(item.get("call_id")))
            if not stored and item.get("call_id") not in calls:
                raise ProtocolError(
                    400,
                    "No tool call found for function call output with call_id "
                    f"{item.get('call_id')}.",
                )
        content = item.get("content")
        if content is None:
            text = _block_text(item)
        else:
            text = _joined([content] if isinstance(content, str) else list(content))
        ends = "model" if role == "assistant" or kind == "function_call" else kind
        if ends == "model":
            turn_piece = len(pieces) + (1 if text else 0)
        elif role == "user":
            user_piece = len(pieces)
        elif role in ("system", "developer") and turn_piece == len(pieces):
            turn_piece += 1 if text else 0
        if text:
            pieces.append(text)
        if role == "user":
            last = text
    unanswered = sorted(calls - answered)
    if unanswered and not stored:
        raise ProtocolError(400, f"No tool output found for function call {unanswered[0]}.")
    if ends == "model":
        turn_piece = user_piece
    return Conversation(tuple(pieces), last, turn_piece, ends == "function_call_output")


def _sse(data: Mapping[str, Any], event: str | None = None) -> bytes:
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def split_text(text: str, chars_per_token: float) -> list[str]:
    """The pieces a streamed answer is sent in: about one token each."""
    size = max(1, round(chars_per_token))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _deltas(choice: Choice, chars_per_token: float) -> Iterator[tuple[str, float]]:
    """The streamed pieces of an answer (its text, or its tool call's arguments), each with its
    share of the output tokens."""
    text = choice.tool_call.arguments if choice.tool_call else choice.text
    pieces = split_text(text, chars_per_token)
    weight = choice.output_tokens / len(pieces)
    for piece in pieces:
        yield piece, weight


def _tool_call_id(plan: Plan, prefix: str = "call_") -> str:
    return plan.make_id(prefix, 24)


def _headers(
    api: Api, content_type: str, request_id: str, plan: Plan | None
) -> list[tuple[str, str]]:
    headers = [("content-type", content_type)]
    if api == "anthropic":
        headers.append(("request-id", request_id))
    else:
        headers.append(("x-request-id", request_id))
        headers.append(("openai-version", "2020-10-01"))
        if plan is not None:
            spent = plan.ttft + plan.per_token * plan.output_tokens
            headers.append(("openai-processing-ms", str(round(spent * 1000))))
    if plan is not None and plan.choices:
        headers.append(("x-sim-outcome", ",".join(c.outcome for c in plan.choices)))
    return headers


def request_id(api: Api, plan: Plan) -> str:
    """A provider-style request id drawn from the plan's RNG."""
    if api == "anthropic":
        return plan.make_id("req_011C", 20)
    return plan.make_id("req_", 32, "0123456789abcdef")


def render(
    request: SimRequest, plan: Plan, body: Mapping[str, Any], chars_per_token: float
) -> Wire:
    """The successful response to ``request`` as decided by ``plan``."""
    rid = request_id(request.api, plan)
    content_type = SSE_TYPE if request.stream else JSON_TYPE
    headers = _headers(request.api, content_type, rid, plan)
    if request.stream:
        headers.append(("cache-control", "no-cache"))
    render_json, render_sse = _RENDERERS[request.api]
    if request.stream:
        events = tuple(render_sse(request, plan, body, chars_per_token))
        return Wire(200, tuple(headers), events=events)
    payload = json.dumps(render_json(request, plan, body), ensure_ascii=False).encode()
    return Wire(200, tuple(headers), body=payload)


def render_error(api: Api, status: int, message: str, rid: str, retry_after: float = 0.0) -> Wire:
    """An error in the provider's own format (with ``retry-after`` on 429/503/529)."""
    payload: dict[str, Any]
    if api == "anthropic":
        kind = _ANTHROPIC_ERRORS.get(status, "api_error")
        payload = {"type": "error", "error": {"type": kind, "message": message}, "request_id": rid}
    else:
        kind, code = _OPENAI_ERRORS.get(status, ("server_error", None))
        payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    headers = _headers(api, JSON_TYPE, rid, None)
    if status in (429, 503, 529):
        headers.append(("retry-after", str(max(1, math.ceil(retry_after)))))
        headers.append(("retry-after-ms", str(round(retry_after * 1000))))
    return Wire(status, tuple(headers), body=json.dumps(payload).encode())


_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}
_OPENAI_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "unknown_url"),
    405: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
    529: ("server_error", None),
}

FAULT_MESSAGES = {
    429: "Rate limit exceeded (simulated). Retry after the time in the retry-after header.",
    500: "Internal server error (simulated).",
    503: "Service unavailable (simulated).",
    529: "Overloaded (simulated).",
}


# Anthropic Messages


def _anthropic_usage(plan: Plan, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": plan.input_tokens - plan.cache_read_tokens - plan.cache_write_tokens,
        "cache_creation_input_tokens": plan.cache_write_tokens,
        "cache_read_input_tokens": plan.cache_read_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": plan.cache_write_tokens,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _anthropic_stop(choice: Choice) -> str:
    if choice.truncated:
        return "max_tokens"
    return "tool_use" if choice.tool_call else "end_turn"


def _anthropic_message(
    request: SimRequest, plan: Plan, msg_id: str, content: list[dict[str, Any]], final: bool
) -> dict[str, Any]:
    choice = plan.choices[0]
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": _anthropic_stop(choice) if final else None,
        "stop_sequence": None,
        "usage": _anthropic_usage(plan, choice.output_tokens if final else 1),
    }


def _anthropic_block(choice: Choice, tool_id: str, final: bool) -> dict[str, Any]:
    """The content block of an answer: text, or a tool_use (its input empty until final)."""
    call = choice.tool_call
    if call is None:
        return {"type": "text", "text": choice.text if final else ""}
    return {
        "type": "tool_use",
        "id": tool_id,
        "name": call.name,
        "input": call.input if final else {},
    }


def _anthropic_json(request: SimRequest, plan: Plan, body: Mapping[str, Any]) -> dict[str, Any]:
    msg_id = plan.make_id("msg_01", 22)
    choice = plan.choices[0]
    tool_id = _tool_call_id(plan, "toolu_01") if choice.tool_call else ""
    content = [_anthropic_block(choice, tool_id, final=True)]
    return _anthropic_message(request, plan, msg_id, content, final=True)


def _anthropic_sse(
    request: SimRequest, plan: Plan, body: Mapping[str, Any], cpt: float
) -> Iterator[tuple[bytes, float]]:
    choice = plan.choices[0]
    start = _anthropic_message(request, plan, plan.make_id("msg_01", 22), [], final=False)
    tool_id = _tool_call_id(plan, "toolu_01") if choice.tool_call else ""
    yield _sse({"type": "message_start", "message": start}, "message_start"), 0.0
    block = _anthropic_block(choice, tool_id, final=False)
    yield (
        _sse(
            {"type": "content_block_start", "index": 0, "content_block": block},
            "content_block_start",
        ),
        0.0,
    )
    yield _sse({"type": "ping"}, "ping"), 0.0
    for piece, weight in _deltas(choice, cpt):
        delta = (
            {"type": "input_json_delta", "partial_json": piece}
            if choice.tool_call
            else {"type": "text_delta", "text": piece}
        )
        event = {"type": "content_block_delta", "index": 0, "delta": delta}
        yield _sse(event, "content_block_delta"), weight
    yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"), 0.0
    usage = _anthropic_usage(plan, choice.output_tokens)
    del usage["cache_creation"], usage["service_tier"]
    delta_event = {
        "type": "message_delta",
        "delta": {"stop_reason": _anthropic_stop(choice), "stop_sequence": None},
        "usage": usage,
    }
    yield _sse(delta_event, "message_delta"), 0.0
    yield _sse({"type": "message_stop"}, "message_stop"), 0.0


# OpenAI Chat Completions


def _chat_usage(plan: Plan) -> dict[str, Any]:
    return {
        "prompt_tokens": plan.input_tokens,
        "completion_tokens": plan.output_tokens,
        "total_tokens": plan.input_tokens + plan.output_tokens,
        "prompt_tokens_details": {"cached_tokens": plan.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_head(request: SimRequest, plan: Plan, kind: str) -> dict[str, Any]:
    return {
        "id": plan.make_id("chatcmpl-", 29),
        "object": kind,
        "created": int(time.time()),
        "model": request.model,
        "service_tier": "default",
        "system_fingerprint": "fp_sim0000001",
    }


def _chat_finish(choice: Choice) -> str:
    if choice.truncated:
        return "length"
    return "tool_calls" if choice.tool_call else "stop"


def _chat_tool_call(call: ToolCall, call_id: str, arguments: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def _chat_json(request: SimRequest, plan: Plan, body: Mapping[str, Any]) -> dict[str, Any]:
    payload = _chat_head(request, plan, "chat.completion")
    choices = []
    for i, c in enumerate(plan.choices):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if c.tool_call else c.text,
            "refusal": None,
            "annotations": [],
        }
        if c.tool_call:
            call_id = _tool_call_id(plan)
            message["tool_calls"] = [_chat_tool_call(c.tool_call, call_id, c.tool_call.arguments)]
        choices.append(
            {"index": i, "message": message, "logprobs": None, "finish_reason": _chat_finish(c)}
        )
    payload["choices"] = choices
    payload["usage"] = _chat_usage(plan)
    return payload


def _chat_sse(
    request: SimRequest, plan: Plan, body: Mapping[str, Any], cpt: float
) -> Iterator[tuple[bytes, float]]:
    head = _chat_head(request, plan, "chat.completion.chunk")
    options = body.get("stream_options")
    include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
    if include_usage:
        head["usage"] = None

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse({**head, "choices": [choice]})

    for i, c in enumerate(plan.choices):
        call = c.tool_call
        if call is None:
            yield chunk(i, {"role": "assistant", "content": "", "refusal": None}), 0.0
            for piece, weight in _deltas(c, cpt):
                yield chunk(i, {"content": piece}), weight
        else:
            opening = _chat_tool_call(call, _tool_call_id(plan), "")
            first = {"role": "assistant", "content": None, "refusal": None}
            yield chunk(i, {**first, "tool_calls": [{"index": 0, **opening}]}), 0.0
            for piece, weight in _deltas(c, cpt):
                arguments = {"index": 0, "function": {"arguments": piece}}
                yield chunk(i, {"tool_calls": [arguments]}), weight
        yield chunk(i, {}, _chat_finish(c)), 0.0
    if include_usage:
        yield _sse({**head, "choices": [], "usage": _chat_usage(plan)}), 0.0
    yield b"data: [DONE]\n\n", 0.0


# OpenAI Responses


def _responses_usage(plan: Plan) -> dict[str, Any]:
    return {
        "input_tokens": plan.input_tokens,
        "input_tokens_details": {"cached_tokens": plan.cache_read_tokens, "cache_write_tokens": 0},
        "output_tokens": plan.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": plan.input_tokens + plan.output_tokens,
    }


def _response_object(
    request: SimRequest,
    plan: Plan,
    body: Mapping[str, Any],
    ids: tuple[str, str],
    created: int,
    output: list[dict[str, Any]],
    status: str,
) -> dict[str, Any]:
    truncated = status == "incomplete"
    done = status in ("completed", "incomplete")
    return {
        "id": ids[0],
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": request.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": request.temperature,
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": _responses_usage(plan) if done else None,
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def _output_message(msg_id: str, text: str | None, status: str) -> dict[str, Any]:
    content = [] if text is None else [_output_text(text)]
    return {
        "id": msg_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _response_ids(plan: Plan) -> tuple[str, str]:
    """The response's id and its output item's (``msg_``, or ``fc_`` for a function call)."""
    hexdigits = "0123456789abcdef"
    prefix = "fc_" if plan.choices[0].tool_call else "msg_"
    return plan.make_id("resp_", 48, hexdigits), plan.make_id(prefix, 48, hexdigits)


def _function_call(item_id: str, call_id: str, call: ToolCall, final: bool) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": "completed" if final else "in_progress",
        "arguments": call.arguments if final else "",
        "call_id": call_id,
        "name": call.name,
    }


def _final_status(plan: Plan) -> str:
    return "incomplete" if plan.choices[0].truncated else "completed"


def _responses_json(request: SimRequest, plan: Plan, body: Mapping[str, Any]) -> dict[str, Any]:
    ids = _response_ids(plan)
    status = _final_status(plan)
    choice = plan.choices[0]
    if choice.tool_call:
        output = [_function_call(ids[1], _tool_call_id(plan), choice.tool_call, final=True)]
    else:
        output = [_output_message(ids[1], choice.text, status)]
    return _response_object(request, plan, body, ids, int(time.time()), output, status)


def _responses_sse(
    request: SimRequest, plan: Plan, body: Mapping[str, Any], cpt: float
) -> Iterator[tuple[bytes, float]]:
    ids = _response_ids(plan)
    created = int(time.time())
    choice = plan.choices[0]
    status = _final_status(plan)
    sequence = iter(range(1_000_000))

    def event(kind: str, **fields: Any) -> bytes:
        return _sse({"type": kind, "sequence_number": next(sequence), **fields}, kind)

    def snapshot(state: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        return _response_object(request, plan, body, ids, created, output, state)

    yield event("response.created", response=snapshot("in_progress", [])), 0.0
    yield event("response.in_progress", response=snapshot("in_progress", [])), 0.0
    if choice.tool_call:
        call_id = _tool_call_id(plan)
        item = _function_call(ids[1], call_id, choice.tool_call, final=False)
        yield event("response.output_item.added", output_index=0, item=item), 0.0
        where = {"item_id": ids[1], "output_index": 0}
        for piece, weight in _deltas(choice, cpt):
            yield event("response.function_call_arguments.delta", delta=piece, **where), weight
        arguments = choice.tool_call.arguments
        yield event("response.function_call_arguments.done", arguments=arguments, **where), 0.0
        done_item = _function_call(ids[1], call_id, choice.tool_call, final=True)
    else:
        where = {"item_id": ids[1], "output_index": 0, "content_index": 0}
        item = _output_message(ids[1], None, "in_progress")
        yield event("response.output_item.added", output_index=0, item=item), 0.0
        yield event("response.content_part.added", part=_output_text(""), **where), 0.0
        for piece, weight in _deltas(choice, cpt):
            yield event("response.output_text.delta", delta=piece, logprobs=[], **where), weight
        yield event("response.output_text.done", text=choice.text, logprobs=[], **where), 0.0
        yield event("response.content_part.done", part=_output_text(choice.text), **where), 0.0
        done_item = _output_message(ids[1], choice.text, status)
    yield event("response.output_item.done", output_index=0, item=done_item), 0.0
    final = "response.incomplete" if choice.truncated else "response.completed"
    yield event(final, response=snapshot(status, [done_item])), 0.0


JsonRenderer = Callable[[SimRequest, Plan, Mapping[str, Any]], dict[str, Any]]
SseRenderer = Callable[[SimRequest, Plan, Mapping[str, Any], float], Iterator[tuple[bytes, float]]]

_RENDERERS: dict[Api, tuple[JsonRenderer, SseRenderer]] = {
    "anthropic": (_anthropic_json, _anthropic_sse),
    "chat": (_chat_json, _chat_sse),
    "responses": (_responses_json, _responses_sse),
}
