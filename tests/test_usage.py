"""Usage parsing from raw response bodies, checked against hand counts and the real SDKs."""

from __future__ import annotations

import base64
import gzip
import json
import sys
import zlib
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from anthropic.types import Message
from hypothesis import given
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from pytest_agentpatterns.usage import (
    ServerSentEvent,
    Usage,
    api_of,
    iter_sse,
    provider_of,
    usage_from_response,
    vendor_of,
)

JSON = "application/json"
SSE = "text/event-stream; charset=utf-8"


def sse(*events: tuple[str | None, dict[str, Any] | str], eol: str = "\n") -> bytes:
    """Serialise events the way the providers do: ``event:`` line, ``data:`` line, blank line."""
    out = []
    for name, data in events:
        if name is not None:
            out.append(f"event: {name}{eol}")
        payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        out.append(f"data: {payload}{eol}{eol}")
    return "".join(out).encode()


# --- fixtures shaped like the providers' own bodies ----------------------------------------------

ANTHROPIC_MESSAGE: dict[str, Any] = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "billing"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 1000,
        "cache_creation_input_tokens": 500,
        "cache_read_input_tokens": 2000,
        "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 300,
        "service_tier": "standard",
    },
}

ANTHROPIC_ERROR = {
    "type": "error",
    "error": {"type": "overloaded_error", "message": "Overloaded"},
    "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
}


def anthropic_events(
    *, delta_usage: dict[str, int] | None = None, finish: bool = True
) -> list[tuple[str | None, dict[str, Any] | str]]:
    start_usage = {
        "input_tokens": 12,
        "cache_creation_input_tokens": 1500,
        "cache_read_input_tokens": 0,
        "output_tokens": 1,
    }
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_01HCDu5LRGeP2o7s2xGmxyx8",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": "claude-haiku-4-5-20251001",
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hello"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ]
    if finish:
        events += [
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": delta_usage or {"output_tokens": 87},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    return events


CHAT_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    "object": "chat.completion",
    "created": 1741570283,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "billing",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 1117,
        "completion_tokens": 46,
        "total_tokens": 1163,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_fc9f1d7035",
}


def chat_chunks(*, include_usage: bool = True) -> list[tuple[str | None, dict[str, Any] | str]]:
    base = {
        "id": "chatcmpl-C1b2c3",
        "object": "chat.completion.chunk",
        "created": 1741570283,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }
    usage_field = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice], **usage_field}

    chunks: list[tuple[str | None, dict[str, Any] | str]] = [
        (None, chunk({"role": "assistant", "content": "", "refusal": None}, None)),
        (None, chunk({"content": "Hel"}, None)),
        (None, chunk({"content": "lo"}, None)),
        (None, chunk({}, "stop")),
    ]
    if include_usage:
        usage = {
            "prompt_tokens": 2053,
            "completion_tokens": 12,
            "total_tokens": 2065,
            "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }
        chunks.append((None, {**base, "choices": [], "usage": usage}))
    chunks.append((None, "[DONE]"))
    return chunks


def response_object(status: str, usage: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
        "object": "response",
        "created_at": 1741476542,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": "o4-mini-2025-04-16",
        "output": [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": "medium", "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


RESPONSES_USAGE = {
    "input_tokens": 2100,
    "input_tokens_details": {"cached_tokens": 2048, "cache_write_tokens": 0},
    "output_tokens": 300,
    "output_tokens_details": {"reasoning_tokens": 256},
    "total_tokens": 2400,
}


def responses_events(
    *, final: str | None = "response.completed"
) -> list[tuple[str | None, dict[str, Any] | str]]:
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        (
            "response.created",
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": response_object("in_progress", None),
            },
        ),
        (
            "response.in_progress",
            {
                "type": "response.in_progress",
                "sequence_number": 1,
                "response": response_object("in_progress", None),
            },
        ),
        (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "sequence_number": 2,
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": "Hello",
                "logprobs": [],
            },
        ),
    ]
    if final is not None:
        status = final.split(".", 1)[1]
        events.append(
            (
                final,
                {
                    "type": final,
                    "sequence_number": 3,
                    "response": response_object(status, RESPONSES_USAGE),
                },
            )
        )
    return events


# --- the real SDKs, fed the same bytes over a mock transport -------------------------------------


def mock_client(content_type: str, body: bytes) -> httpx2.Client:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": content_type}, content=body)

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def sdk_anthropic_stream_usage(body: bytes) -> anthropic.types.Usage:
    client = anthropic.Anthropic(api_key="test", http_client=mock_client(SSE, body), max_retries=0)
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        return stream.get_final_message().usage


def sdk_chat_stream_usage(body: bytes) -> Any:
    client = openai.OpenAI(api_key="test", http_client=mock_client(SSE, body), max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    return chunks[-1].usage


def sdk_responses_stream_usage(body: bytes) -> Any:
    client = openai.OpenAI(api_key="test", http_client=mock_client(SSE, body), max_retries=0)
    events = list(client.responses.create(model="o4-mini", input="hi", stream=True))
    return events[-1].response.usage  # type: ignore[union-attr]


def assert_openai_agrees(ours: Usage | None, prompt: int, completion: int, cached: int) -> None:
    """OpenAI's input count includes cached tokens; ours splits them out."""
    assert ours is not None
    assert ours.input_tokens + ours.cache_read_tokens + ours.cache_write_tokens == prompt
    assert ours.cache_read_tokens == cached
    assert ours.output_tokens == completion


# --- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "provider", "api"),
    [
        ("/v1/messages", "anthropic", "anthropic-messages"),
        ("/messages", "anthropic", "anthropic-messages"),
        ("https://api.anthropic.com/v1/messages?beta=true", "anthropic", "anthropic-messages"),
        (
            "/v1/projects/p/locations/us-east5/publishers/anthropic/models/"
            "claude-sonnet-4-5@20250929:streamRawPredict",
            "anthropic",
            "anthropic-messages",
        ),
        (
            "/model/us.anthropic.claude-haiku-4-5-20251001-v1:0/invoke",
            "anthropic",
            "anthropic-messages",
        ),
        ("/v1/chat/completions", "openai", "openai-chat"),
        ("/chat/completions", "openai", "openai-chat"),
        (
            "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21",
            "openai",
            "openai-chat",
        ),
        ("/v1/responses", "openai", "openai-responses"),
        ("/openai/v1/responses", "openai", "openai-responses"),
        ("/responses/", "openai", "openai-responses"),
        ("/v1/messages/count_tokens", None, None),
        ("/v1/messages/batches", None, None),
        ("/v1/threads/thread_abc/messages", None, None),
        ("/v1/embeddings", None, None),
        ("/v1/models", None, None),
        ("/healthz", None, None),
    ],
)
def test_provider_and_api_of_paths(path: str, provider: str | None, api: str | None) -> None:
    assert provider_of(path) == provider
    assert api_of(path) == api


# --- Anthropic -----------------------------------------------------------------------------------


def test_anthropic_json() -> None:
    body = json.dumps(ANTHROPIC_MESSAGE).encode()
    usage = usage_from_response("/v1/messages", JSON, body)
    assert usage == Usage(
        "claude-sonnet-4-5-20250929",
        1000,
        300,
        500,
        2000,
        provider="anthropic",
        service_tier="standard",
    )
    assert usage.total_tokens == 3800


def test_anthropic_json_agrees_with_sdk_model() -> None:
    body = json.dumps(ANTHROPIC_MESSAGE).encode()
    ours = usage_from_response("/v1/messages", JSON, body)
    message = Message.model_validate_json(body)
    assert ours is not None
    assert ours.model == message.model
    assert ours.input_tokens == message.usage.input_tokens
    assert ours.output_tokens == message.usage.output_tokens
    assert ours.cache_write_tokens == message.usage.cache_creation_input_tokens
    assert ours.cache_read_tokens == message.usage.cache_read_input_tokens


def test_anthropic_json_without_cache_fields() -> None:
    message = {**ANTHROPIC_MESSAGE, "usage": {"input_tokens": 25, "output_tokens": 7}}
    usage = usage_from_response("/v1/messages", JSON, json.dumps(message).encode())
    assert usage == Usage("claude-sonnet-4-5-20250929", 25, 7, provider="anthropic")


def test_anthropic_stream() -> None:
    body = sse(*anthropic_events())
    usage = usage_from_response("/v1/messages", SSE, body)
    # input and cache from message_start; output is the final cumulative figure, not 1 + 87.
    assert usage == Usage("claude-haiku-4-5-20251001", 12, 87, 1500, 0, provider="anthropic")


def test_anthropic_stream_cumulative_delta_fields_win() -> None:
    delta = {
        "input_tokens": 40,
        "cache_creation_input_tokens": 1500,
        "cache_read_input_tokens": 300,
        "output_tokens": 210,
    }
    body = sse(*anthropic_events(delta_usage=delta))
    usage = usage_from_response("/v1/messages", SSE, body)
    assert usage == Usage("claude-haiku-4-5-20251001", 40, 210, 1500, 300, provider="anthropic")
    sdk = sdk_anthropic_stream_usage(body)
    assert (sdk.input_tokens, sdk.output_tokens) == (40, 210)
    assert (sdk.cache_creation_input_tokens, sdk.cache_read_input_tokens) == (1500, 300)


def test_anthropic_stream_agrees_with_sdk() -> None:
    body = sse(*anthropic_events())
    ours = usage_from_response("/v1/messages", SSE, body)
    sdk = sdk_anthropic_stream_usage(body)
    assert ours is not None
    assert ours.input_tokens == sdk.input_tokens
    assert ours.output_tokens == sdk.output_tokens
    assert ours.cache_write_tokens == sdk.cache_creation_input_tokens
    assert ours.cache_read_tokens == sdk.cache_read_input_tokens


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_anthropic_stream_any_line_ending(eol: str) -> None:
    body = sse(*anthropic_events(), eol=eol)
    assert usage_from_response("/v1/messages", SSE, body) == Usage(
        "claude-haiku-4-5-20251001", 12, 87, 1500, 0, provider="anthropic"
    )


def test_anthropic_stream_interrupted_is_unknown() -> None:
    body = sse(*anthropic_events(finish=False))
    assert usage_from_response("/v1/messages", SSE, body) is None


def test_anthropic_stream_cut_mid_event_is_unknown() -> None:
    body = sse(*anthropic_events())
    cut = body[: body.index(b'"usage":{"output_tokens"') + 12]
    assert usage_from_response("/v1/messages", SSE, cut) is None


def test_anthropic_stream_error_event_is_unknown() -> None:
    events = anthropic_events(finish=False)
    events.append(("error", ANTHROPIC_ERROR))
    assert usage_from_response("/v1/messages", SSE, sse(*events)) is None


def test_anthropic_on_vertex_takes_model_from_path() -> None:
    message = {key: value for key, value in ANTHROPIC_MESSAGE.items() if key != "model"}
    path = (
        "/v1/projects/p/locations/global/publishers/anthropic/models/"
        "claude-opus-4-1@20250805:rawPredict"
    )
    usage = usage_from_response(path, JSON, json.dumps(message).encode())
    assert usage is not None
    assert usage.model == "claude-opus-4-1@20250805"


# --- OpenAI Chat Completions ---------------------------------------------------------------------


def test_chat_json_splits_cached_tokens() -> None:
    body = json.dumps(CHAT_COMPLETION).encode()
    usage = usage_from_response("/v1/chat/completions", JSON, body)
    # prompt_tokens 1117 includes the 1024 cached ones.
    assert usage == Usage(
        "gpt-4o-2024-08-06", 1117 - 1024, 46, 0, 1024, provider="openai", service_tier="default"
    )
    assert usage.total_tokens == CHAT_COMPLETION["usage"]["total_tokens"]


def test_chat_json_agrees_with_sdk_model() -> None:
    body = json.dumps(CHAT_COMPLETION).encode()
    sdk = ChatCompletion.model_validate_json(body)
    assert sdk.usage is not None and sdk.usage.prompt_tokens_details is not None
    ours = usage_from_response("/v1/chat/completions", JSON, body)
    assert_openai_agrees(
        ours,
        sdk.usage.prompt_tokens,
        sdk.usage.completion_tokens,
        sdk.usage.prompt_tokens_details.cached_tokens or 0,
    )


def test_chat_json_cache_write_tokens_are_split_too() -> None:
    completion = json.loads(json.dumps(CHAT_COMPLETION))
    completion["usage"]["prompt_tokens_details"]["cache_write_tokens"] = 50
    usage = usage_from_response("/v1/chat/completions", JSON, json.dumps(completion).encode())
    assert usage == Usage(
        "gpt-4o-2024-08-06",
        1117 - 1024 - 50,
        46,
        50,
        1024,
        provider="openai",
        service_tier="default",
    )


def test_chat_json_without_details() -> None:
    completion = {
        **CHAT_COMPLETION,
        "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
    }
    usage = usage_from_response("/chat/completions", JSON, json.dumps(completion).encode())
    assert usage == Usage("gpt-4o-2024-08-06", 9, 12, provider="openai", service_tier="default")


def test_chat_stream_usage_chunk() -> None:
    body = sse(*chat_chunks())
    usage = usage_from_response("/v1/chat/completions", SSE, body)
    assert usage == Usage(
        "gpt-4o-mini-2024-07-18",
        2053 - 1920,
        12,
        0,
        1920,
        provider="openai",
        service_tier="default",
    )


def test_chat_stream_agrees_with_sdk() -> None:
    body = sse(*chat_chunks())
    sdk = sdk_chat_stream_usage(body)
    ours = usage_from_response("/v1/chat/completions", SSE, body)
    assert_openai_agrees(
        ours, sdk.prompt_tokens, sdk.completion_tokens, sdk.prompt_tokens_details.cached_tokens
    )


def test_chat_stream_without_include_usage_is_unknown() -> None:
    body = sse(*chat_chunks(include_usage=False))
    assert usage_from_response("/v1/chat/completions", SSE, body) is None


def test_chat_stream_interrupted_before_usage_is_unknown() -> None:
    body = sse(*chat_chunks()[:3])
    assert usage_from_response("/v1/chat/completions", SSE, body) is None


def test_azure_chat_path() -> None:
    body = json.dumps(CHAT_COMPLETION).encode()
    path = "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"
    usage = usage_from_response(path, "application/json; charset=utf-8", body)
    assert usage == Usage(
        "gpt-4o-2024-08-06", 93, 46, 0, 1024, provider="azure", service_tier="default"
    )


# --- OpenAI Responses ----------------------------------------------------------------------------


def test_responses_json() -> None:
    body = json.dumps(response_object("completed", RESPONSES_USAGE)).encode()
    usage = usage_from_response("/v1/responses", JSON, body)
    assert usage == Usage("o4-mini-2025-04-16", 2100 - 2048, 300, 0, 2048, provider="openai")


def test_responses_json_agrees_with_sdk_model() -> None:
    body = json.dumps(response_object("completed", RESPONSES_USAGE)).encode()
    sdk = Response.model_validate_json(body)
    assert sdk.usage is not None
    ours = usage_from_response("/v1/responses", JSON, body)
    assert_openai_agrees(
        ours,
        sdk.usage.input_tokens,
        sdk.usage.output_tokens,
        sdk.usage.input_tokens_details.cached_tokens,
    )


def test_responses_stream() -> None:
    body = sse(*responses_events())
    usage = usage_from_response("/v1/responses", SSE, body)
    assert usage == Usage("o4-mini-2025-04-16", 52, 300, 0, 2048, provider="openai")
    sdk = sdk_responses_stream_usage(body)
    assert_openai_agrees(
        usage, sdk.input_tokens, sdk.output_tokens, sdk.input_tokens_details.cached_tokens
    )


def test_responses_stream_incomplete_still_billed() -> None:
    body = sse(*responses_events(final="response.incomplete"))
    assert usage_from_response("/responses", SSE, body) == Usage(
        "o4-mini-2025-04-16", 52, 300, 0, 2048, provider="openai"
    )


def test_responses_stream_interrupted_is_unknown() -> None:
    body = sse(*responses_events(final=None))
    assert usage_from_response("/v1/responses", SSE, body) is None


# --- bodies that are not LLM responses -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/v1/messages", JSON, json.dumps(ANTHROPIC_ERROR).encode()),
        (
            "/v1/chat/completions",
            JSON,
            json.dumps(
                {
                    "error": {
                        "message": "Rate limit reached for gpt-4o",
                        "type": "requests",
                        "param": None,
                        "code": "rate_limit_exceeded",
                    }
                }
            ).encode(),
        ),
        ("/v1/responses", JSON, b'{"error": {"message": "bad", "type": "invalid_request"}}'),
        ("/v1/messages", "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
        ("/v1/chat/completions", None, b"<!DOCTYPE html><html></html>"),
        ("/v1/messages", JSON, b""),
        ("/v1/messages", SSE, b""),
        ("/v1/messages", JSON, b'{"usage": {"input_tokens": "12", "output_tokens": 3}}'),
        ("/v1/messages", JSON, b'{"usage": {"input_tokens": true, "output_tokens": 3}}'),
        ("/v1/chat/completions", JSON, b'{"usage": {"prompt_tokens": -1, "completion_tokens": 3}}'),
        ("/v1/chat/completions", JSON, b'{"usage": null}'),
        ("/v1/chat/completions", JSON, b"[1, 2]"),
        ("/v1/chat/completions", JSON, b"\xff\xfe not json"),
        ("/v1/models", JSON, json.dumps(CHAT_COMPLETION).encode()),
        ("/v1/messages", SSE, b": keep-alive\n\n: keep-alive\n\n"),
    ],
)
def test_not_an_llm_response_is_unknown(path: str, content_type: str | None, body: bytes) -> None:
    assert usage_from_response(path, content_type, body) is None


# --- model name and content sniffing -------------------------------------------------------------


def test_model_falls_back_to_request_body() -> None:
    completion = {k: v for k, v in CHAT_COMPLETION.items() if k != "model"}
    request = json.dumps({"model": "gpt-4.1-mini", "messages": []}).encode()
    usage = usage_from_response(
        "/v1/chat/completions", JSON, json.dumps(completion).encode(), request
    )
    assert usage is not None and usage.model == "gpt-4.1-mini"


def test_response_model_wins_over_request_model() -> None:
    request = json.dumps({"model": "gpt-4o", "messages": []}).encode()
    body = json.dumps(CHAT_COMPLETION).encode()
    usage = usage_from_response("/v1/chat/completions", JSON, body, request)
    assert usage is not None and usage.model == "gpt-4o-2024-08-06"


def test_no_model_anywhere_is_none_but_tokens_known() -> None:
    completion = {k: v for k, v in CHAT_COMPLETION.items() if k != "model"}
    usage = usage_from_response(
        "/v1/chat/completions", JSON, json.dumps(completion).encode(), b"not json"
    )
    assert usage == Usage(None, 93, 46, 0, 1024, provider="openai", service_tier="default")


@pytest.mark.parametrize("content_type", [None, "application/octet-stream"])
def test_sniffs_json_and_sse_without_a_useful_content_type(content_type: str | None) -> None:
    assert usage_from_response(
        "/v1/messages", content_type, json.dumps(ANTHROPIC_MESSAGE).encode()
    ) == Usage(
        "claude-sonnet-4-5-20250929",
        1000,
        300,
        500,
        2000,
        provider="anthropic",
        service_tier="standard",
    )
    assert usage_from_response("/v1/messages", content_type, sse(*anthropic_events())) == Usage(
        "claude-haiku-4-5-20251001", 12, 87, 1500, 0, provider="anthropic"
    )


def test_gzipped_body() -> None:
    body = gzip.compress(json.dumps(CHAT_COMPLETION).encode())
    assert usage_from_response("/v1/chat/completions", JSON, body) == Usage(
        "gpt-4o-2024-08-06", 93, 46, 0, 1024, provider="openai", service_tier="default"
    )


# --- the SSE parser ------------------------------------------------------------------------------


def test_iter_sse_follows_the_spec() -> None:
    text = (
        ": this is a comment\r\n"
        "event: first\r\n"
        "data: line one\r\n"
        "data:line two\r\n"
        "id: 7\r\n"
        "retry: 1000\r\n"
        "\r\n"
        "event: empty\n"
        "\n"
        "data\n"
        "\n"
        "data:  two spaces\r"
        "\r"
        "event: last\n"
        'data: {"no": "trailing blank line"}'
    )
    assert list(iter_sse(text)) == [
        ServerSentEvent("first", "line one\nline two"),
        ServerSentEvent(None, ""),
        ServerSentEvent(None, " two spaces"),
        ServerSentEvent("last", '{"no": "trailing blank line"}'),
    ]


def test_multi_line_data_json_is_joined() -> None:
    start = json.dumps(anthropic_events()[0][1], indent=2)
    body = "event: message_start\n" + "".join(f"data: {line}\n" for line in start.splitlines())
    body += "\n" + sse(*anthropic_events()[1:]).decode()
    usage = usage_from_response("/v1/messages", SSE, body.encode())
    assert usage == Usage("claude-haiku-4-5-20251001", 12, 87, 1500, 0, provider="anthropic")


@given(
    eols=st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=4),
    comments=st.booleans(),
)
def test_stream_parse_ignores_framing(eols: list[str], comments: bool) -> None:
    """Line endings and keep-alive comments never change the usage read from a stream."""
    parts = []
    for i, (name, data) in enumerate(anthropic_events()):
        eol = eols[i % len(eols)]
        if comments:
            parts.append(f": ping {i}{eol}")
        parts.append(sse((name, data), eol=eol).decode())
    usage = usage_from_response("/v1/messages", SSE, "".join(parts).encode())
    assert usage == Usage("claude-haiku-4-5-20251001", 12, 87, 1500, 0, provider="anthropic")


# --- the Usage record ----------------------------------------------------------------------------


@given(
    model=st.none() | st.text(max_size=20),
    counts=st.tuples(*[st.integers(min_value=0, max_value=10**9)] * 4),
)
def test_usage_dict_round_trip(model: str | None, counts: tuple[int, int, int, int]) -> None:
    usage = Usage(model, *counts, provider="aws", service_tier="flex")
    data = usage.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert Usage.from_dict(data) == usage
    assert usage.total_tokens == sum(counts)


@pytest.mark.parametrize(
    "data",
    [
        {"model": "m", "output_tokens": 1},
        {"model": "m", "input_tokens": 1},
        {"model": 3, "input_tokens": 1, "output_tokens": 1},
        {"model": "m", "input_tokens": -1, "output_tokens": 1},
        {"model": "m", "input_tokens": 1.5, "output_tokens": 1},
        {"model": "m", "input_tokens": 1, "output_tokens": 1, "cache_read_tokens": None},
    ],
)
def test_usage_from_dict_rejects_malformed(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="usage"):
        Usage.from_dict(data)


def test_usage_from_dict_defaults_cache_counts() -> None:
    assert Usage.from_dict({"model": None, "input_tokens": 3, "output_tokens": 4}) == Usage(
        None, 3, 4
    )


# --- who served the call -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "vendor"),
    [
        ("/v1/messages", "anthropic"),
        ("https://api.anthropic.com/v1/messages?beta=true", "anthropic"),
        (
            "/v1/projects/p/locations/us-east5/publishers/anthropic/models/"
            "claude-sonnet-5@20261001:rawPredict",
            "google",
        ),
        ("/model/us.anthropic.claude-sonnet-5-v1%3A0/invoke", "aws"),
        ("/model/anthropic.claude-haiku-5-5-v1:0/invoke-with-response-stream", "aws"),
        ("/v1/chat/completions", "openai"),
        ("/v1/responses", "openai"),
        ("/openai/deployments/prod/chat/completions?api-version=2024-10-21", "azure"),
        ("/openai/v1/responses", "azure"),
        ("/v1/embeddings", None),
        ("/model/amazon.nova-pro-v1:0/invoke", None),
    ],
)
def test_vendor_of_paths(path: str, vendor: str | None) -> None:
    assert vendor_of(path) == vendor


def test_bedrock_model_id_is_unquoted_from_the_path() -> None:
    message = {key: value for key, value in ANTHROPIC_MESSAGE.items() if key != "model"}
    path = "/model/us.anthropic.claude-sonnet-5-v1%3A0/invoke"
    usage = usage_from_response(path, JSON, json.dumps(message).encode())
    assert usage is not None
    assert (usage.model, usage.provider) == ("us.anthropic.claude-sonnet-5-v1:0", "aws")


# --- 1-hour cache writes and service tiers -------------------------------------------------------

ONE_HOUR_USAGE = {
    "input_tokens": 20,
    "cache_creation_input_tokens": 5000,
    "cache_read_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 1200, "ephemeral_1h_input_tokens": 3800},
    "output_tokens": 64,
    "service_tier": "priority",
}


def test_anthropic_json_one_hour_cache_writes_agree_with_sdk() -> None:
    body = json.dumps({**ANTHROPIC_MESSAGE, "usage": ONE_HOUR_USAGE}).encode()
    ours = usage_from_response("/v1/messages", JSON, body)
    sdk = Message.model_validate_json(body).usage
    assert ours is not None and sdk.cache_creation is not None
    assert ours.cache_write_tokens == sdk.cache_creation_input_tokens == 5000
    assert ours.cache_write_1h_tokens == sdk.cache_creation.ephemeral_1h_input_tokens == 3800
    assert ours.service_tier == sdk.service_tier == "priority"


def test_anthropic_stream_one_hour_cache_writes_agree_with_sdk() -> None:
    events = anthropic_events()
    start = json.loads(json.dumps(events[0][1]))
    start["message"]["usage"] = ONE_HOUR_USAGE
    body = sse(("message_start", start), *events[1:])
    ours = usage_from_response("/v1/messages", SSE, body)
    sdk = sdk_anthropic_stream_usage(body)
    assert ours is not None and sdk.cache_creation is not None
    assert ours.cache_write_1h_tokens == sdk.cache_creation.ephemeral_1h_input_tokens == 3800
    assert (ours.cache_write_tokens, ours.output_tokens) == (5000, 87)


def test_one_hour_writes_never_exceed_all_writes() -> None:
    usage = {**ONE_HOUR_USAGE, "cache_creation_input_tokens": 100}
    body = json.dumps({**ANTHROPIC_MESSAGE, "usage": usage}).encode()
    ours = usage_from_response("/v1/messages", JSON, body)
    assert ours is not None and ours.cache_write_1h_tokens == 100


def test_openai_service_tier_is_read() -> None:
    chat = {**CHAT_COMPLETION, "service_tier": "flex"}
    ours = usage_from_response("/v1/chat/completions", JSON, json.dumps(chat).encode())
    assert ours is not None
    assert ours.service_tier == ChatCompletion.model_validate(chat).service_tier == "flex"
    response = {**response_object("completed", RESPONSES_USAGE), "service_tier": "priority"}
    ours = usage_from_response("/v1/responses", JSON, json.dumps(response).encode())
    assert ours is not None and ours.service_tier == "priority"


# --- Bedrock's binary event streams --------------------------------------------------------------

EVENT_STREAM = "application/vnd.amazon.eventstream"


def eventstream_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude, prelude CRC, string headers, payload, CRC."""
    encoded = b"".join(
        bytes([len(name)])
        + name.encode()
        + b"\x07"
        + len(value).to_bytes(2, "big")
        + value.encode()
        for name, value in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = total.to_bytes(4, "big") + len(encoded).to_bytes(4, "big")
    message = prelude + zlib.crc32(prelude).to_bytes(4, "big") + encoded + payload
    return message + zlib.crc32(message).to_bytes(4, "big")


def bedrock_stream(events: list[tuple[str | None, dict[str, Any] | str]]) -> bytes:
    """The Anthropic events as Bedrock sends them: each a base64 ``chunk`` event."""
    frames = []
    for _, data in events:
        assert isinstance(data, dict)
        if data["type"] == "message_stop":
            data = {
                **data,
                "amazon-bedrock-invocationMetrics": {
                    "inputTokenCount": 12,
                    "outputTokenCount": 87,
                    "invocationLatency": 812,
                    "firstByteLatency": 301,
                },
            }
        chunk = {"bytes": base64.b64encode(json.dumps(data).encode()).decode(), "p": "abcdef"}
        headers = {
            ":event-type": "chunk",
            ":content-type": "application/json",
            ":message-type": "event",
        }
        frames.append(eventstream_frame(headers, json.dumps(chunk).encode()))
    return b"".join(frames)


BEDROCK_STREAM_PATH = "/model/us.anthropic.claude-haiku-5-5-v1%3A0/invoke-with-response-stream"


def sdk_bedrock_stream_usage(body: bytes) -> anthropic.types.Usage:
    client = anthropic.AnthropicBedrock(
        aws_access_key="AKIDEXAMPLE",
        aws_secret_key="not-a-secret",
        aws_region="us-east-1",
        http_client=mock_client(EVENT_STREAM, body),
        max_retries=0,
    )
    with client.messages.stream(
        model="us.anthropic.claude-haiku-5-5-v1:0",
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
    ) as stream:
        return stream.get_final_message().usage


def test_bedrock_stream_agrees_with_the_bedrock_sdk() -> None:
    body = bedrock_stream(anthropic_events())
    ours = usage_from_response(BEDROCK_STREAM_PATH, EVENT_STREAM, body)
    sdk = sdk_bedrock_stream_usage(body)
    assert ours == Usage("claude-haiku-4-5-20251001", 12, 87, 1500, 0, provider="aws")
    assert (ours.input_tokens, ours.output_tokens) == (sdk.input_tokens, sdk.output_tokens)
    assert ours.cache_write_tokens == sdk.cache_creation_input_tokens


def test_bedrock_stream_cut_short_or_failed_is_unknown() -> None:
    body = bedrock_stream(anthropic_events())
    assert usage_from_response(BEDROCK_STREAM_PATH, EVENT_STREAM, body[: len(body) // 2]) is None
    unfinished = bedrock_stream(anthropic_events(finish=False))
    assert usage_from_response(BEDROCK_STREAM_PATH, EVENT_STREAM, unfinished) is None
    error = eventstream_frame(
        {":exception-type": "throttlingException", ":message-type": "exception"},
        b'{"message": "Too many requests"}',
    )
    assert usage_from_response(BEDROCK_STREAM_PATH, EVENT_STREAM, unfinished + error) is None
    corrupt = bytearray(body)
    corrupt[20] ^= 0xFF
    assert usage_from_response(BEDROCK_STREAM_PATH, EVENT_STREAM, bytes(corrupt)) is None


def test_bedrock_stream_without_botocore_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "botocore.eventstream", None)
    body = bedrock_stream(anthropic_events())
    assert usage_from_response(BEDROCK_STREAM_PATH, EVENT_STREAM, body) is None
