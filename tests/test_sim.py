"""The simulator, driven by the real Anthropic and OpenAI SDKs over a real socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anthropic
import httpx2
import jsonschema
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_agentpatterns.sim import (
    Faults,
    SimConfigError,
    Simulator,
    World,
    load_models,
    load_world,
)
from pytest_agentpatterns.sim.oracle import GENERIC_PREFIX, Oracle, SimRequest, Tool
from pytest_agentpatterns.sim.protocol import api_for_path, parse_request, render
from pytest_agentpatterns.sim.structured import conform

KEY = "sim-test-key"
WORLD = load_world()
BAKER = next(e for e in WORLD.entries if e.id == "math-01")
MATH = [e for e in WORLD.entries if e.kind == "arithmetic"]
TICKETS = [e for e in WORLD.entries if e.kind == "triage"]


def tokens(text: str, chars_per_token: float = 4) -> int:
    return max(1, math.ceil(len(text) / chars_per_token))


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(seed=7, time_scale=0) as server:
        yield server


@pytest.fixture
def claude(sim: Simulator) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key=KEY, max_retries=0) as c:
        yield c


@pytest.fixture
def gpt(sim: Simulator) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=sim.openai_base_url, api_key=KEY, max_retries=0) as c:
        yield c


# Anthropic Messages


def test_anthropic_message_has_answer_usage_ids_and_headers(
    sim: Simulator, claude: anthropic.Anthropic
) -> None:
    raw = claude.messages.with_raw_response.create(
        model="sim-small",
        max_tokens=64,
        system="Answer with a number.",
        messages=user(BAKER.prompt),
    )
    message = raw.parse()
    text = message.content[0].text  # type: ignore[union-attr]
    assert text in (BAKER.answer, *BAKER.wrong)
    assert message.id.startswith("msg_")
    assert message.model == "sim-small"
    assert message.stop_reason == "end_turn"
    prompt = "Answer with a number.\n" + BAKER.prompt
    assert message.usage.input_tokens == tokens(prompt)
    assert message.usage.output_tokens == tokens(text)
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0
    assert raw.headers["content-type"] == "application/json"
    assert raw.headers["request-id"].startswith("req_")
    assert sim.log == [("/v1/messages", "sim-small", 200)]


def test_anthropic_raw_stream_sends_the_event_sequence(claude: anthropic.Anthropic) -> None:
    with claude.messages.create(
        model="sim-large",
        max_tokens=64,
        messages=user(BAKER.prompt),
        stream=True,
        extra_body={"temperature": 0},
    ) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    n_deltas = kinds.count("content_block_delta")
    assert kinds == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * n_deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, delta = events[0], events[-2]
    assert start.type == "message_start" and delta.type == "message_delta"
    assert start.message.usage.input_tokens == tokens(BAKER.prompt)
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")  # type: ignore[union-attr]
    assert delta.usage.output_tokens == tokens(text) == n_deltas
    assert delta.delta.stop_reason == "end_turn"
    plain = claude.messages.create(
        model="sim-large", max_tokens=64, messages=user(BAKER.prompt), extra_body={"temperature": 0}
    )
    assert plain.content[0].text == text  # type: ignore[union-attr]


def test_anthropic_stream_helper_final_message(claude: anthropic.Anthropic) -> None:
    prompt = "Tell me something about kestrels and how they hover."
    with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=200, messages=user(prompt)
    ) as s:
        streamed = "".join(s.text_stream)
        final = s.get_final_message()
    assert final.content[0].text == streamed  # type: ignore[union-attr]
    assert streamed.startswith(GENERIC_PREFIX) and "kestrels" in streamed
    assert final.model == "claude-haiku-4-5"
    assert final.usage.input_tokens == tokens(prompt)
    assert final.usage.output_tokens == tokens(streamed)


def test_anthropic_max_tokens_truncates(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="sim-fast", max_tokens=2, messages=user("Write a long essay on the history of tea.")
    )
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 2
    assert len(message.content[0].text) == 8  # type: ignore[union-attr]


def test_anthropic_prompt_caching_creates_then_reads(claude: anthropic.Anthropic) -> None:
    system = "You are a meticulous assistant. " * 200
    blocks: Any = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
    first, second = (
        claude.messages.create(
            model="sim-fast", max_tokens=50, system=blocks, messages=user(BAKER.prompt)
        ).usage
        for _ in range(2)
    )
    assert (
        first.cache_creation_input_tokens == tokens(system) and first.cache_read_input_tokens == 0
    )
    assert second.cache_read_input_tokens == tokens(system)
    assert second.cache_creation_input_tokens == 0
    assert second.input_tokens == tokens(system + "\n" + BAKER.prompt) - tokens(system)


def test_async_anthropic_create_and_stream(sim: Simulator) -> None:
    async def main() -> tuple[str, str]:
        async with anthropic.AsyncAnthropic(base_url=sim.anthropic_base_url, api_key=KEY) as c:
            message = await c.messages.create(
                model="sim-small",
                max_tokens=32,
                messages=user(BAKER.prompt),
                extra_body={"temperature": 0},
            )
            async with c.messages.stream(
                model="sim-small",
                max_tokens=32,
                messages=user(BAKER.prompt),
                extra_body={"temperature": 0},
            ) as stream:
                final = await stream.get_final_message()
        return message.content[0].text, final.content[0].text  # type: ignore[union-attr]

    plain, streamed = asyncio.run(main())
    assert plain == streamed and plain in (BAKER.answer, *BAKER.wrong)


# OpenAI Chat Completions


def test_openai_chat_has_answer_usage_ids_and_headers(gpt: openai.OpenAI) -> None:
    ticket = TICKETS[0]
    raw = gpt.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "You triage tickets."},
            {"role": "user", "content": ticket.prompt},
        ],
    )
    completion = raw.parse()
    answer = completion.choices[0].message.content
    assert answer in (ticket.answer, *ticket.wrong)
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o-mini"
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == tokens("You triage tickets.\n" + ticket.prompt)
    assert usage.completion_tokens == tokens(answer or "")
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["content-type"] == "application/json"


def test_openai_chat_stream_with_usage_chunk(gpt: openai.OpenAI) -> None:
    stream = gpt.chat.completions.create(
        model="sim-small",
        messages=user(BAKER.prompt),
        stream=True,
        stream_options={"include_usage": True},
    )
    with stream:
        chunks = list(stream)
    *body, last = chunks
    assert last.choices == [] and last.usage is not None
    assert all(c.usage is None and len(c.choices) == 1 for c in body)
    assert body[0].choices[0].delta.role == "assistant"
    assert body[-1].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in body)
    assert text in (BAKER.answer, *BAKER.wrong)
    assert last.usage.prompt_tokens == tokens(BAKER.prompt)
    assert last.usage.completion_tokens == tokens(text)
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")


def test_openai_chat_n_choices(gpt: openai.OpenAI) -> None:
    completion = gpt.chat.completions.create(model="sim-small", messages=user(BAKER.prompt), n=4)
    texts = [c.message.content or "" for c in completion.choices]
    assert [c.index for c in completion.choices] == [0, 1, 2, 3]
    assert completion.usage is not None
    assert completion.usage.completion_tokens == sum(tokens(t) for t in texts)


def test_openai_automatic_prompt_caching(gpt: openai.OpenAI) -> None:
    prompt = "Background: " + "the quick brown fox jumps over the lazy dog. " * 120 + BAKER.prompt
    first, second = (
        gpt.chat.completions.create(model="sim-fast", messages=user(prompt)).usage for _ in range(2)
    )
    assert first is not None and second is not None
    assert first.prompt_tokens_details is not None and second.prompt_tokens_details is not None
    assert first.prompt_tokens_details.cached_tokens == 0
    cached = second.prompt_tokens_details.cached_tokens
    assert cached is not None and 1024 <= cached <= second.prompt_tokens and cached % 128 == 0


def test_async_openai_chat_and_responses(sim: Simulator) -> None:
    async def main() -> tuple[str | None, str]:
        async with openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key=KEY) as c:
            chat = await c.chat.completions.create(
                model="sim-fast", messages=user(BAKER.prompt), extra_body={"temperature": 0}
            )
            response = await c.responses.create(model="sim-fast", input=BAKER.prompt, temperature=0)
        return chat.choices[0].message.content, response.output_text

    chat, response = asyncio.run(main())
    assert chat == response and chat in (BAKER.answer, *BAKER.wrong)


# OpenAI Responses


def test_responses_plain(gpt: openai.OpenAI) -> None:
    entry = next(e for e in WORLD.entries if e.kind == "extraction")
    response = gpt.responses.create(
        model="sim-small", instructions="Return JSON only.", input=entry.prompt
    )
    assert response.id.startswith("resp_")
    assert response.model == "sim-small"
    assert response.status == "completed"
    assert response.output_text in (entry.answer, *entry.wrong)
    assert isinstance(json.loads(response.output_text), dict)
    usage = response.usage
    assert usage is not None
    assert usage.input_tokens == tokens("Return JSON only.\n" + entry.prompt)
    assert usage.output_tokens == tokens(response.output_text)
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0


def test_responses_stream_events(gpt: openai.OpenAI) -> None:
    with gpt.responses.stream(model="sim-large", input=user(BAKER.prompt)) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    n_deltas = kinds.count("response.output_text.delta")
    assert n_deltas >= 1
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * n_deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert final.output_text in (BAKER.answer, *BAKER.wrong)
    assert final.usage is not None and final.usage.output_tokens == tokens(final.output_text)


# Models, world and determinism


def test_unknown_models_and_prompts_get_the_fallback_profile(
    sim: Simulator, gpt: openai.OpenAI
) -> None:
    completion = gpt.chat.completions.create(
        model="gpt-4o-mini", messages=user("What is a  good name\nfor a cat?")
    )
    assert (
        completion.choices[0].message.content == GENERIC_PREFIX + "What is a good name for a cat?"
    )
    assert sim.models.get("gpt-4o-mini") == sim.models.fallback


def test_custom_world_as_dict_and_as_file(tmp_path: Path) -> None:
    world = {
        "_about": "test",
        "entries": [{"match": "capital of France", "answer": "Paris", "wrong": ["Lyon"]}],
    }
    path = tmp_path / "world.json"
    path.write_text(json.dumps(world))
    for source in (world, path):
        with (
            Simulator(world=source, time_scale=0) as server,
            openai.OpenAI(base_url=server.openai_base_url, api_key=KEY) as client,
        ):
            answer = client.chat.completions.create(
                model="sim-perfect", messages=user("What is the CAPITAL of france?")
            )
        assert answer.choices[0].message.content == "Paris"


def test_malformed_config_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(SimConfigError, match=r"entries\[0\]: missing 'wrong'"):
        Simulator(world={"entries": [{"match": "x", "answer": "y"}]})
    with pytest.raises(SimConfigError, match="accuracy must be a probability"):
        Simulator(models={"m": {"accuracy": 1.5}})
    with pytest.raises(SimConfigError, match="unknown keys"):
        Simulator(faults={"rate_430": 0.1})
    with pytest.raises(SimConfigError, match="cannot read"):
        Simulator(world=tmp_path / "missing.json")


def test_shipped_world_prompts_each_match_their_own_entry() -> None:
    kinds = Counter(e.kind for e in WORLD.entries)
    assert kinds["arithmetic"] >= 12 and kinds["triage"] >= 12 and kinds["extraction"] >= 3
    for entry in WORLD.entries:
        assert WORLD.lookup(entry.prompt) is entry
    labels = {"billing", "bug", "account", "feature_request"}
    assert all({t.answer, *t.wrong} == labels for t in TICKETS)


def test_world_lookup_prefers_the_latest_question() -> None:
    world = World.from_mapping(
        [
            {"match": "first question", "answer": "1", "wrong": ["x"]},
            {"match": "second question", "answer": "2", "wrong": ["x"]},
        ]
    )
    entry = world.lookup("Earlier: second question. Now: first question?")
    assert entry is not None and entry.answer == "1"
    assert world.lookup("nothing known") is None


def test_token_rule_follows_chars_per_token() -> None:
    models = {"dense": {"chars_per_token": 2, "fixed_latency": 0}}
    with (
        Simulator(models=models, time_scale=0) as server,
        anthropic.Anthropic(base_url=server.anthropic_base_url, api_key=KEY) as client,
    ):
        usage = client.messages.create(model="dense", max_tokens=50, messages=user("abcdefg")).usage
    assert usage.input_tokens == 4
    assert usage.output_tokens == tokens(GENERIC_PREFIX + "abcdefg", 2)


def answers(seed: int, requests: list[str], order: list[int]) -> Counter[tuple[str, str]]:
    """The (prompt, answer) multiset for ``requests``, sent concurrently in ``order``."""
    results: list[tuple[str, str]] = []
    lock = threading.Lock()
    with (
        Simulator(seed=seed, time_scale=0) as server,
        openai.OpenAI(base_url=server.openai_base_url, api_key=KEY) as client,
    ):

        def ask(i: int) -> None:
            reply = client.chat.completions.create(model="sim-small", messages=user(requests[i]))
            with lock:
                results.append((requests[i], reply.choices[0].message.content or ""))

        threads = [threading.Thread(target=ask, args=(i,)) for i in order]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return Counter(results)


def test_same_seed_same_multiset_whatever_the_order() -> None:
    requests = [e.prompt for e in MATH[:8]] * 4
    forward = list(range(len(requests)))
    first = answers(3, requests, forward)
    assert first == answers(3, requests, forward[::-1])
    assert first != answers(4, requests, forward)


def test_temperature_zero_is_fixed_and_positive_temperature_samples(gpt: openai.OpenAI) -> None:
    def ask(temperature: float) -> str:
        reply = gpt.chat.completions.create(
            model="sim-small", messages=user(BAKER.prompt), temperature=temperature
        )
        return reply.choices[0].message.content or ""

    assert len({ask(0) for _ in range(10)}) == 1
    assert len({ask(1.0) for _ in range(30)}) > 1


@pytest.mark.parametrize(("model", "accuracy"), [("sim-small", 0.7), ("sim-large", 0.9)])
def test_accuracy_is_close_to_the_profile(model: str, accuracy: float) -> None:
    n = 300
    entries = (MATH + TICKETS) * (n // 24 + 1)
    correct = 0
    with (
        Simulator(seed=11, time_scale=0) as server,
        anthropic.Anthropic(base_url=server.anthropic_base_url, api_key=KEY) as client,
    ):
        for entry in entries[:n]:
            message = client.messages.create(
                model=model, max_tokens=20, messages=user(entry.prompt)
            )
            correct += message.content[0].text == entry.answer  # type: ignore[union-attr]
    tolerance = 4 * math.sqrt(accuracy * (1 - accuracy) / n)
    assert abs(correct / n - accuracy) <= tolerance


# Latency


def test_latency_follows_the_profile_and_time_scale() -> None:
    models = load_models(
        {
            "m": {"ttft_median": 0.4, "ttft_sigma": 0.5, "per_token": 0.02},
            "fixed": {"fixed_latency": 0.25},
        }
    )
    slow = Faults(slow_rate=1.0, slow_factor=3.0)
    oracle = Oracle(World(), models, Faults(), seed=1, time_scale=2.0)

    def plan(model: str, i: int) -> tuple[float, float]:
        p = oracle.plan(SimRequest("chat", model, f"q{i}", f"q{i}", f"key{i}"))
        return p.ttft, p.per_token

    ttfts = sorted(plan("m", i)[0] for i in range(2001))
    assert 0.72 <= ttfts[1000] <= 0.88  # median 0.4 s, doubled by the time scale
    assert plan("m", 0)[1] == pytest.approx(0.04)
    assert plan("fixed", 0) == (0.5, 0.0)
    oracle.set_faults(slow)
    assert plan("fixed", 0) == (1.5, 0.0)


def test_latency_is_really_waited() -> None:
    models = {"quarter": {"fixed_latency": 0.25}}
    with (
        Simulator(time_scale=1, models=models) as server,
        openai.OpenAI(base_url=server.openai_base_url, api_key=KEY) as gpt,
    ):
        started = time.monotonic()
        gpt.chat.completions.create(model="quarter", messages=user("hi"))
        assert time.monotonic() - started >= 0.25


# Faults and errors


def test_missing_key_is_401_in_each_provider_format(sim: Simulator) -> None:
    with pytest.raises(anthropic.AuthenticationError) as a_err:
        with anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key=KEY) as claude:
            claude.messages.create(
                model="sim-fast",
                max_tokens=10,
                messages=user("hi"),
                extra_headers={"Authorization": anthropic.omit, "X-Api-Key": anthropic.omit},
            )
    assert a_err.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(openai.AuthenticationError) as o_err:
        with openai.OpenAI(base_url=sim.openai_base_url, api_key=KEY) as gpt:
            gpt.chat.completions.create(
                model="sim-fast", messages=user("hi"), extra_headers={"Authorization": openai.omit}
            )
    assert o_err.value.code == "invalid_api_key"
    assert [status for _, _, status in sim.log] == [401, 401]
    with httpx2.Client() as raw:
        reply = raw.post(f"{sim.anthropic_base_url}/v1/messages", headers={"x-api-key": "k"})
    assert reply.status_code == 400 and reply.json()["type"] == "error"


def test_429_has_retry_after_and_the_sdks_retry_past_it() -> None:
    faults = Faults(fail_first=1, retry_after=0.01)
    with Simulator(time_scale=0, faults=faults) as server:
        url = server.anthropic_base_url
        with anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0) as claude:
            with pytest.raises(anthropic.RateLimitError) as err:
                claude.messages.create(model="sim-fast", max_tokens=9, messages=user("hi"))
            assert err.value.response.headers["retry-after"] == "1"
            assert err.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
        server.set_faults(faults)
        with anthropic.Anthropic(base_url=url, api_key=KEY) as claude:
            claude.messages.create(model="sim-fast", max_tokens=9, messages=user("hi"))
        server.set_faults(faults)
        with openai.OpenAI(base_url=server.openai_base_url, api_key=KEY) as gpt:
            gpt.chat.completions.create(model="sim-fast", messages=user("hi"))
        statuses = [status for _, _, status in server.log]
    assert statuses == [429, 429, 200, 429, 200]


def test_500_in_openai_format_and_per_model_faults() -> None:
    models = {"broken": {"fixed_latency": 0, "faults": {"rate_500": 1.0}}}
    with (
        Simulator(time_scale=0, models=models) as server,
        openai.OpenAI(base_url=server.openai_base_url, api_key=KEY, max_retries=0) as gpt,
    ):
        with pytest.raises(openai.InternalServerError) as err:
            gpt.responses.create(model="broken", input="hi")
        assert err.value.type == "server_error"
        assert gpt.responses.create(model="sim-fast", input="hi").status == "completed"
        assert server.log == [("/v1/responses", "broken", 500), ("/v1/responses", "sim-fast", 200)]


def test_random_fault_rates_are_seeded() -> None:
    def statuses() -> list[int]:
        with (
            Simulator(seed=5, time_scale=0, faults={"rate_429": 0.5}) as server,
            httpx2.Client(base_url=server.openai_base_url) as raw,
        ):
            for i in range(40):
                raw.post(
                    "/chat/completions",
                    json={"model": "m", "messages": user(f"q{i}")},
                    headers={"Authorization": f"Bearer {KEY}"},
                )
            return [status for _, _, status in server.log]

    first = statuses()
    assert first == statuses()
    assert 8 <= first.count(429) <= 32


# Serving


def test_requests_run_concurrently() -> None:
    n = 16
    models = {"slow": {"fixed_latency": 1.0}}
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    with (
        Simulator(time_scale=1, models=models) as server,
        openai.OpenAI(base_url=server.openai_base_url, api_key=KEY, max_retries=0) as gpt,
    ):

        def ask() -> None:
            barrier.wait()
            try:
                gpt.chat.completions.create(model="slow", messages=user("hi"))
            except BaseException as exc:  # the assertion below reports it
                errors.append(exc)

        threads = [threading.Thread(target=ask) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert server.max_in_flight == n
        assert server.request_count == n


def test_keep_alive_reuses_one_connection(sim: Simulator, claude: anthropic.Anthropic) -> None:
    for _ in range(3):
        claude.messages.create(model="sim-fast", max_tokens=9, messages=user("hi"))
        with claude.messages.stream(model="sim-fast", max_tokens=9, messages=user("hi")) as s:
            s.get_final_message()
    assert sim.request_count == 6
    assert sim.connection_count == 1


def test_wait_for_connections_sees_a_connection_closed_at_once(sim: Simulator) -> None:
    before = sim.connection_count
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5):
        pass  # closed before the server's thread may have counted it
    assert sim.wait_for_connections(before + 1) == before + 1


def test_stop_interrupts_latency_and_closes_connections() -> None:
    server = Simulator(time_scale=1, models={"glacial": {"fixed_latency": 60}}).start()
    outcome: list[BaseException] = []
    with openai.OpenAI(base_url=server.openai_base_url, api_key=KEY, max_retries=0) as gpt:

        def ask() -> None:
            try:
                gpt.chat.completions.create(model="glacial", messages=user("hi"))
            except Exception as exc:  # the SDK may or may not wrap the dropped connection
                outcome.append(exc)

        worker = threading.Thread(target=ask)
        worker.start()
        deadline = time.monotonic() + 10
        while server.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        server.stop()
        worker.join(10)
        assert time.monotonic() - started < 10
    assert not worker.is_alive() and len(outcome) == 1
    assert not server.running
    with pytest.raises(RuntimeError, match="not running"):
        server.base_url  # noqa: B018


def test_models_endpoint_and_unknown_paths(sim: Simulator, gpt: openai.OpenAI) -> None:
    names = {m.id for m in gpt.models.list()}
    assert {"sim-small", "sim-large", "sim-fast"} <= names
    with httpx2.Client(base_url=sim.base_url) as raw:
        missing = raw.post("/v1/embeddings", json={}, headers={"Authorization": "Bearer k"})
    assert missing.status_code == 404 and "error" in missing.json()


def test_command_line_prints_urls_and_serves() -> None:
    command = [sys.executable, "-m", "pytest_agentpatterns.sim", "--port", "0", "--seed", "3"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(8)]
        exports = dict(
            line.removeprefix("export ").strip().split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        assert set(exports) == {
            "ANTHROPIC_BASE_URL",
            "ANTHROPIC_API_KEY",
            "OPENAI_BASE_URL",
            "OPENAI_API_KEY",
        }
        assert exports["OPENAI_BASE_URL"] == exports["ANTHROPIC_BASE_URL"] + "/v1"
        assert "listening on " + exports["ANTHROPIC_BASE_URL"] in lines[0]
        with openai.OpenAI(
            base_url=exports["OPENAI_BASE_URL"], api_key=exports["OPENAI_API_KEY"]
        ) as gpt:
            reply = gpt.chat.completions.create(model="sim-fast", messages=user(BAKER.prompt))
        assert reply.choices[0].message.content in (BAKER.answer, *BAKER.wrong)
        proc.terminate()
        rest = proc.stdout.read()
        assert proc.wait(10) == 0
    assert "Stopped; served 1 request." in rest


# Tool use and structured output, through every API, sync and async, streamed and not

APIS = ["anthropic", "chat", "responses"]
TICKET = TICKETS[0]
LABELS = sorted({TICKET.answer, *TICKET.wrong})
TRIAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": LABELS},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "follow_up": {"type": "string", "format": "date"},
    },
    "required": ["label", "confidence", "tags", "follow_up"],
    "additionalProperties": False,
}
LOOKUP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"email": {"type": "string", "format": "email"}},
    "required": ["email"],
}
TOOLS = [("lookup_customer", LOOKUP_SCHEMA), ("record_label", TRIAGE_SCHEMA)]
CONTACT = next(e for e in WORLD.entries if e.id == "extract-01")
CONTACT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "email": {"type": "string", "format": "email"},
        "company": {"type": "string"},
    },
    "required": ["name", "email", "company"],
    "additionalProperties": False,
}


def valid(schema: dict[str, Any], value: Any) -> bool:
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return bool(validator.is_valid(value))


@dataclass(frozen=True)
class Reply:
    """One answer, the same whichever API gave it; ``stop`` is tool, end or length."""

    tool: str | None
    arguments: str
    text: str
    stop: str
    call_id: str

    @property
    def input(self) -> Any:
        return json.loads(self.arguments)


def request_kwargs(
    api: str,
    conversation: list[Any],
    tools: list[tuple[str, dict[str, Any]]] | None = None,
    choice: str | None = None,
    schema: dict[str, Any] | None = None,
    model: str = "sim-perfect",
    max_tokens: int = 300,
) -> dict[str, Any]:
    """A request in ``api``'s spelling; ``choice`` is auto, required, none or a tool's name."""
    limit = {"anthropic": "max_tokens", "chat": "max_completion_tokens"}.get(
        api, "max_output_tokens"
    )
    kwargs: dict[str, Any] = {"model": model, limit: max_tokens}
    kwargs["input" if api == "responses" else "messages"] = conversation
    if tools:
        kwargs["tools"] = [
            {"name": n, "description": f"The {n} tool.", "input_schema": s}
            if api == "anthropic"
            else {"type": "function", "function": {"name": n, "parameters": s}}
            if api == "chat"
            else {"type": "function", "name": n, "parameters": s}
            for n, s in tools
        ]
    if choice is not None:
        if api == "anthropic":
            modes = {"auto": "auto", "required": "any", "none": "none"}
            kwargs["tool_choice"] = (
                {"type": modes[choice]} if choice in modes else {"type": "tool", "name": choice}
            )
        elif choice in ("auto", "required", "none"):
            kwargs["tool_choice"] = choice
        elif api == "chat":
            kwargs["tool_choice"] = {"type": "function", "function": {"name": choice}}
        else:
            kwargs["tool_choice"] = {"type": "function", "name": choice}
    if schema is not None:
        if api == "anthropic":
            kwargs["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        elif api == "chat":
            spec = {"name": "answer", "schema": schema, "strict": True}
            kwargs["response_format"] = {"type": "json_schema", "json_schema": spec}
        else:
            spec = {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}
            kwargs["text"] = {"format": spec}
    return kwargs


def reply_of(api: str, result: Any) -> Reply:
    if api == "anthropic":
        block = result.content[0]
        stop = {"tool_use": "tool", "end_turn": "end", "max_tokens": "length"}[result.stop_reason]
        if block.type == "tool_use":
            return Reply(block.name, json.dumps(block.input), "", stop, block.id)
        return Reply(None, "", block.text, stop, "")
    if api == "chat":
        choice = result.choices[0]
        stop = {"tool_calls": "tool", "stop": "end", "length": "length"}[choice.finish_reason]
        if choice.message.tool_calls:
            call = choice.message.tool_calls[0]
            return Reply(call.function.name, call.function.arguments, "", stop, call.id)
        return Reply(None, "", choice.message.content or "", stop, "")
    item = result.output[0]
    if item.type == "function_call":
        stop = "length" if result.status == "incomplete" else "tool"
        return Reply(item.name, item.arguments, "", stop, item.call_id)
    return Reply(
        None, "", result.output_text, "length" if result.status == "incomplete" else "end", ""
    )


@dataclass(frozen=True)
class Clients:
    """A sync client of each SDK, pointed at one simulator."""

    claude: anthropic.Anthropic
    gpt: openai.OpenAI


@contextlib.contextmanager
def connect(server: Simulator) -> Iterator[Clients]:
    with (
        anthropic.Anthropic(base_url=server.anthropic_base_url, api_key=KEY, max_retries=0) as c,
        openai.OpenAI(base_url=server.openai_base_url, api_key=KEY, max_retries=0) as g,
    ):
        yield Clients(c, g)


@pytest.fixture
def sdk(claude: anthropic.Anthropic, gpt: openai.OpenAI) -> Clients:
    return Clients(claude, gpt)


def ask(sdk: Clients, api: str, stream: bool, kwargs: dict[str, Any]) -> Reply:
    """One request through the real sync SDK; streamed ones through the SDKs' stream helpers."""
    c, g = sdk.claude, sdk.gpt
    if api == "anthropic":
        if stream:
            with c.messages.stream(**kwargs) as s:
                return reply_of(api, s.get_final_message())
        return reply_of(api, c.messages.create(**kwargs))
    if api == "chat":
        if stream:
            with g.chat.completions.stream(**kwargs) as s:
                return reply_of(api, s.get_final_completion())
        return reply_of(api, g.chat.completions.create(**kwargs))
    if stream:
        with g.responses.stream(**kwargs) as s:
            return reply_of(api, s.get_final_response())
    return reply_of(api, g.responses.create(**kwargs))


async def aask(sim: Simulator, api: str, stream: bool, kwargs: dict[str, Any]) -> Reply:
    """The same through the async SDKs."""
    if api == "anthropic":
        async with anthropic.AsyncAnthropic(
            base_url=sim.anthropic_base_url, api_key=KEY, max_retries=0
        ) as c:
            if stream:
                async with c.messages.stream(**kwargs) as s:
                    return reply_of(api, await s.get_final_message())
            return reply_of(api, await c.messages.create(**kwargs))
    async with openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key=KEY, max_retries=0) as g:
        if api == "chat":
            if stream:
                async with g.chat.completions.stream(**kwargs) as s:
                    return reply_of(api, await s.get_final_completion())
            return reply_of(api, await g.chat.completions.create(**kwargs))
        if stream:
            async with g.responses.stream(**kwargs) as s:
                return reply_of(api, await s.get_final_response())
        return reply_of(api, await g.responses.create(**kwargs))


def send(
    sim: Simulator, sdk: Clients, api: str, stream: bool, use_async: bool, kwargs: dict[str, Any]
) -> Reply:
    if use_async:
        return asyncio.run(aask(sim, api, stream, kwargs))
    return ask(sdk, api, stream, kwargs)


def with_result(api: str, conversation: list[Any], reply: Reply, result: str) -> list[Any]:
    """The conversation with the model's tool call and the tool's result appended."""
    assert reply.tool is not None
    if api == "anthropic":
        call = {"type": "tool_use", "id": reply.call_id, "name": reply.tool, "input": reply.input}
        answer = {"type": "tool_result", "tool_use_id": reply.call_id, "content": result}
        return [
            *conversation,
            {"role": "assistant", "content": [call]},
            {"role": "user", "content": [answer]},
        ]
    if api == "chat":
        function = {"name": reply.tool, "arguments": reply.arguments}
        calls = [{"id": reply.call_id, "type": "function", "function": function}]
        return [
            *conversation,
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": reply.call_id, "content": result},
        ]
    return [
        *conversation,
        {
            "type": "function_call",
            "call_id": reply.call_id,
            "name": reply.tool,
            "arguments": reply.arguments,
        },
        {"type": "function_call_output", "call_id": reply.call_id, "output": result},
    ]


MATRIX = [
    pytest.param(
        api,
        stream,
        use_async,
        id=f"{api}-{'stream' if stream else 'plain'}-{'async' if use_async else 'sync'}",
    )
    for api in APIS
    for stream in (False, True)
    for use_async in (False, True)
]


@pytest.mark.parametrize(("api", "stream", "use_async"), MATRIX)
def test_forced_tool_call_has_schema_valid_input(
    sim: Simulator, sdk: Clients, api: str, stream: bool, use_async: bool
) -> None:
    kwargs = request_kwargs(api, user(TICKET.prompt), TOOLS, choice="record_label")
    reply = send(sim, sdk, api, stream, use_async, kwargs)
    assert reply.tool == "record_label" and reply.stop == "tool" and reply.text == ""
    assert valid(TRIAGE_SCHEMA, reply.input)
    assert reply.input["label"] == TICKET.answer
    prefix = "toolu_01" if api == "anthropic" else "call_"
    assert reply.call_id.startswith(prefix)


@pytest.mark.parametrize(("api", "stream", "use_async"), MATRIX)
def test_response_format_json_schema_answer_validates(
    sim: Simulator, sdk: Clients, api: str, stream: bool, use_async: bool
) -> None:
    kwargs = request_kwargs(api, user(CONTACT.prompt), schema=CONTACT_SCHEMA)
    reply = send(sim, sdk, api, stream, use_async, kwargs)
    assert reply.tool is None and reply.stop == "end"
    value = json.loads(reply.text)
    assert valid(CONTACT_SCHEMA, value)
    assert value == json.loads(CONTACT.answer)


@pytest.mark.parametrize("api", APIS)
def test_wrong_answers_are_schema_valid_too(sdk: Clients, api: str) -> None:
    """Wrong answers validate, so a checker tests correctness, not validity."""
    labels = []
    contacts = []
    for _ in range(25):
        kwargs = request_kwargs(api, user(TICKET.prompt), TOOLS, "record_label", model="sim-small")
        reply = ask(sdk, api, False, kwargs)
        assert valid(TRIAGE_SCHEMA, reply.input)
        labels.append(reply.input["label"])
        kwargs = request_kwargs(api, user(CONTACT.prompt), schema=CONTACT_SCHEMA, model="sim-small")
        contact = json.loads(ask(sdk, api, False, kwargs).text)
        assert valid(CONTACT_SCHEMA, contact)
        contacts.append(contact)
    assert TICKET.answer in labels and set(labels) - {TICKET.answer}
    right = json.loads(CONTACT.answer)
    assert right in contacts and any(c != right for c in contacts)


def test_outcome_header_says_whether_the_placed_answer_is_right(gpt: openai.OpenAI) -> None:
    kwargs = request_kwargs("chat", user(TICKET.prompt), TOOLS, "record_label", model="sim-small")
    seen = set()
    for _ in range(20):
        raw = gpt.chat.completions.with_raw_response.create(**kwargs)
        call = raw.parse().choices[0].message.tool_calls[0]  # type: ignore[index]
        label = json.loads(call.function.arguments)["label"]  # type: ignore[union-attr]
        outcome = raw.headers["x-sim-outcome"]
        assert outcome == ("correct" if label == TICKET.answer else "wrong")
        seen.add(outcome)
    assert seen == {"correct", "wrong"}


@pytest.mark.parametrize("api", APIS)
def test_auto_tool_choice_follows_the_tool_use_rate(api: str) -> None:
    models = {"never": {"tool_use_rate": 0.0, "accuracy": 1.0}, "always": {"tool_use_rate": 1.0}}
    with Simulator(models=models, time_scale=0) as server, connect(server) as clients:
        never = ask(
            clients,
            api,
            False,
            request_kwargs(api, user(TICKET.prompt), TOOLS, "auto", model="never"),
        )
        always = ask(
            clients,
            api,
            True,
            request_kwargs(api, user(TICKET.prompt), TOOLS, "auto", model="always"),
        )
        default = ask(
            clients, api, False, request_kwargs(api, user(TICKET.prompt), TOOLS, model="always")
        )
        none = ask(
            clients,
            api,
            False,
            request_kwargs(api, user(TICKET.prompt), TOOLS, "none", model="always"),
        )
    assert never.tool is None and never.stop == "end" and never.text == TICKET.answer
    assert always.tool == "record_label" and always.stop == "tool"
    assert default.tool == "record_label"
    assert none.tool is None and none.stop == "end"


def test_auto_tool_use_rate_is_the_share_of_tool_calls() -> None:
    rate = 0.3
    oracle = Oracle(WORLD, load_models({"m": {"tool_use_rate": rate}}), Faults(), seed=5)
    schema = {"type": "object", "properties": {"label": {"type": "string"}}}
    calls = 0
    trials = 2000
    for _ in range(trials):
        request = SimRequest(
            api="chat",
            model="m",
            prompt=TICKET.prompt,
            last_text=TICKET.prompt,
            body_key="one body, sent again and again",
            tools=(Tool("record_label", schema),),
            tool_mode="auto",
        )
        calls += oracle.plan(request).choices[0].tool_call is not None
    sigma = math.sqrt(trials * rate * (1 - rate))
    assert abs(calls - trials * rate) < 4 * sigma


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("api", APIS)
def test_tool_result_turn_gets_a_final_answer(sdk: Clients, api: str, stream: bool) -> None:
    conversation = user(TICKET.prompt)
    call = ask(sdk, api, stream, request_kwargs(api, conversation, TOOLS, "auto"))
    assert call.tool == "record_label"
    follow_up = with_result(api, conversation, call, "Label recorded.")
    final = ask(sdk, api, stream, request_kwargs(api, follow_up, TOOLS, "auto"))
    assert final.tool is None and final.stop == "end"
    assert final.text == TICKET.answer
    forced = ask(sdk, api, stream, request_kwargs(api, follow_up, TOOLS, "record_label"))
    assert forced.tool == "record_label"


@pytest.mark.parametrize("api", APIS)
def test_a_tool_result_needs_its_call_and_a_call_its_result(sdk: Clients, api: str) -> None:
    conversation = user(TICKET.prompt)
    call = ask(sdk, api, False, request_kwargs(api, conversation, TOOLS, "record_label"))
    follow_up = with_result(api, conversation, call, "done")
    orphan = [*conversation, follow_up[-1]]
    with pytest.raises((anthropic.BadRequestError, openai.BadRequestError)) as caught:
        ask(sdk, api, False, request_kwargs(api, orphan, TOOLS))
    assert call.call_id in str(caught.value)
    unanswered = [*follow_up[:-1], *user("And now?")]
    with pytest.raises((anthropic.BadRequestError, openai.BadRequestError)) as caught:
        ask(sdk, api, False, request_kwargs(api, unanswered, TOOLS))
    assert call.call_id in str(caught.value)


def test_json_object_mode_answers_a_json_object(gpt: openai.OpenAI) -> None:
    json_object = {"type": "json_object"}
    contact = gpt.chat.completions.create(
        model="sim-perfect",
        messages=user(CONTACT.prompt),
        response_format=json_object,  # type: ignore[arg-type]
    )
    assert contact.choices[0].message.content == CONTACT.answer
    number = gpt.chat.completions.create(
        model="sim-perfect",
        messages=user(BAKER.prompt),
        response_format=json_object,  # type: ignore[arg-type]
    )
    assert json.loads(number.choices[0].message.content or "") == {"answer": 40}
    unknown = gpt.responses.create(
        model="sim-perfect",
        input="Tell me a joke.",
        text={"format": json_object},  # type: ignore[typeddict-item]
    )
    assert json.loads(unknown.output_text) == {"answer": GENERIC_PREFIX + "Tell me a joke."}


def test_sdk_parse_helpers_get_their_types() -> None:
    """The SDKs' own structured-output helpers, with a nested pydantic model ($defs, $ref)."""
    from pydantic import BaseModel

    class Contact(BaseModel):
        name: str
        email: str
        company: str

    class Extraction(BaseModel):
        contact: Contact
        confidence: float

    with (
        Simulator(time_scale=0) as server,
        anthropic.Anthropic(base_url=server.anthropic_base_url, api_key=KEY) as claude,
        openai.OpenAI(base_url=server.openai_base_url, api_key=KEY) as gpt,
    ):
        chat = gpt.chat.completions.parse(
            model="sim-perfect", messages=user(CONTACT.prompt), response_format=Contact
        )
        response = gpt.responses.parse(
            model="sim-perfect", input=CONTACT.prompt, text_format=Contact
        )
        message = claude.messages.parse(
            model="sim-perfect",
            max_tokens=200,
            messages=user(CONTACT.prompt),
            output_format=Contact,
        )
        nested = gpt.chat.completions.parse(
            model="sim-perfect", messages=user(CONTACT.prompt), response_format=Extraction
        )
    right = Contact.model_validate_json(CONTACT.answer)
    assert chat.choices[0].message.parsed == right
    assert response.output_parsed == right
    assert message.parsed_output == right
    parsed = nested.choices[0].message.parsed
    assert isinstance(parsed, Extraction) and isinstance(parsed.contact, Contact)


def test_invalid_json_rate_breaks_json_text_but_not_anthropic_tool_input() -> None:
    models = {"sloppy": {"invalid_json_rate": 1.0, "accuracy": 1.0}}
    with Simulator(models=models, time_scale=0) as server, connect(server) as clients:
        for api in APIS:
            text = ask(
                clients,
                api,
                False,
                request_kwargs(api, user(CONTACT.prompt), schema=CONTACT_SCHEMA, model="sloppy"),
            ).text
            with pytest.raises(ValueError):
                json.loads(text)
            assert CONTACT.answer in text
            call = ask(
                clients,
                api,
                False,
                request_kwargs(api, user(TICKET.prompt), TOOLS, "record_label", model="sloppy"),
            )
            if api == "anthropic":
                assert valid(TRIAGE_SCHEMA, call.input)
            else:
                with pytest.raises(ValueError):
                    call.input  # noqa: B018


def test_structured_answers_are_seeded() -> None:
    def run(seed: int) -> list[Reply]:
        with Simulator(seed=seed, time_scale=0) as server, connect(server) as clients:
            return [
                ask(
                    clients,
                    api,
                    stream,
                    request_kwargs(api, user(prompt), TOOLS, choice, schema, "sim-small"),
                )
                for api in APIS
                for stream in (False, True)
                for prompt, choice, schema in (
                    (TICKET.prompt, "record_label", None),
                    ("Please look up my account.", "required", None),
                    (CONTACT.prompt, "none", CONTACT_SCHEMA),
                    (TICKET.prompt, "auto", None),
                )
            ]

    first = run(11)
    assert first == run(11)
    assert first != run(12)


@pytest.mark.parametrize("api", APIS)
def test_a_tool_call_cut_by_the_token_limit(sdk: Clients, api: str) -> None:
    full = ask(
        sdk,
        api,
        False,
        request_kwargs(api, user(CONTACT.prompt), [("save", CONTACT_SCHEMA)], "save"),
    )
    cut_kwargs = request_kwargs(
        api, user(CONTACT.prompt), [("save", CONTACT_SCHEMA)], "save", max_tokens=5
    )
    for stream in (False, True):
        if api == "chat" and stream:
            # The SDK's stream helper refuses to parse a cut answer, as with the real API.
            with pytest.raises(openai.LengthFinishReasonError):
                ask(sdk, api, stream, cut_kwargs)
            continue
        if api == "responses" and stream:
            # Its helper wants response.completed; a cut response ends response.incomplete.
            with sdk.gpt.responses.create(**cut_kwargs, stream=True) as events:
                last = list(events)[-1]
            assert last.type == "response.incomplete"
            assert last.response.output[0].arguments == full.arguments[:20]  # type: ignore[union-attr]
            continue
        cut = ask(sdk, api, stream, cut_kwargs)
        assert cut.stop == "length" and cut.tool == "save"
        if api == "anthropic":
            assert set(cut.input) < set(full.input)
        else:
            assert cut.arguments == full.arguments[:20]


def test_tool_definitions_count_as_input_and_arguments_as_output(gpt: openai.OpenAI) -> None:
    plain = gpt.chat.completions.create(model="sim-perfect", messages=user(TICKET.prompt))
    kwargs = request_kwargs("chat", user(TICKET.prompt), TOOLS, "record_label")
    called = gpt.chat.completions.create(**kwargs)
    assert plain.usage is not None and called.usage is not None
    definitions = len(json.dumps([t[1] for t in TOOLS])) / 4
    assert called.usage.prompt_tokens - plain.usage.prompt_tokens >= definitions
    arguments = called.choices[0].message.tool_calls[0].function.arguments  # type: ignore[index,union-attr]
    assert called.usage.completion_tokens == tokens(arguments)


@pytest.mark.parametrize(
    ("api", "change", "message"),
    [
        ("anthropic", {"tool_choice": {"type": "tool", "name": "nope"}}, "no tool named 'nope'"),
        (
            "chat",
            {"tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "no tool named 'nope'",
        ),
        (
            "responses",
            {"tool_choice": {"type": "function", "name": "nope"}},
            "no tool named 'nope'",
        ),
        (
            "anthropic",
            {"tools": [{"name": "t", "input_schema": {"type": "objekt"}}]},
            "tools.0.input_schema",
        ),
        (
            "anthropic",
            {"tools": [{"name": "t", "input_schema": {"type": "string"}}]},
            "Input should be 'object'",
        ),
        (
            "chat",
            {"tools": [{"type": "function", "function": {"name": "t", "parameters": {"type": 3}}}]},
            "tools.0.function.parameters",
        ),
        (
            "responses",
            {"tools": [], "tool_choice": "required"},
            "only allowed when tools are given",
        ),
        (
            "chat",
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
            "json_schema.name",
        ),
        ("responses", {"text": {"format": {"type": "yaml"}}}, "text.format.type"),
        (
            "anthropic",
            {
                "output_config": {
                    "format": {
                        "type": "json_schema",
                        "schema": {"$ref": "https://example.com/s.json"},
                    }
                }
            },
            "only local $ref",
        ),
    ],
)
def test_malformed_tools_and_formats_are_400s_naming_the_field(
    sdk: Clients, api: str, change: dict[str, Any], message: str
) -> None:
    kwargs = {**request_kwargs(api, user(TICKET.prompt), TOOLS), **change}
    with pytest.raises(
        (anthropic.BadRequestError, openai.BadRequestError), match=re.escape(message)
    ):
        ask(sdk, api, False, kwargs)


def test_unsatisfiable_schema_is_a_400_that_says_why(sdk: Clients) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 5, "maximum": 1}},
        "required": ["n"],
    }
    with pytest.raises(openai.BadRequestError, match="cannot make a value valid"):
        ask(sdk, "chat", False, request_kwargs("chat", user("hi"), schema=schema))


def test_streamed_tool_calls_send_the_providers_events(
    claude: anthropic.Anthropic, gpt: openai.OpenAI
) -> None:
    kwargs = request_kwargs("anthropic", user(TICKET.prompt), TOOLS, "record_label")
    with claude.messages.create(**kwargs, stream=True) as events:
        anthropic_events = list(events)
    kinds = [e.type for e in anthropic_events]
    start = anthropic_events[1]
    assert start.type == "content_block_start" and start.content_block.type == "tool_use"
    assert start.content_block.input == {} and start.content_block.name == "record_label"
    partial = "".join(
        e.delta.partial_json for e in anthropic_events if e.type == "content_block_delta"
    )  # type: ignore[union-attr]
    assert kinds.count("content_block_delta") > 1 and valid(TRIAGE_SCHEMA, json.loads(partial))
    assert anthropic_events[-2].delta.stop_reason == "tool_use"  # type: ignore[union-attr]

    kwargs = request_kwargs("chat", user(TICKET.prompt), TOOLS, "record_label")
    with gpt.chat.completions.create(**kwargs, stream=True) as chunks:
        deltas = [c.choices[0] for c in chunks]
    first = deltas[0].delta.tool_calls[0]  # type: ignore[index]
    assert first.id and first.id.startswith("call_") and first.function.name == "record_label"  # type: ignore[union-attr]
    arguments = "".join(d.delta.tool_calls[0].function.arguments for d in deltas[:-1])  # type: ignore[index,union-attr,misc]
    assert valid(TRIAGE_SCHEMA, json.loads(arguments))
    assert deltas[-1].finish_reason == "tool_calls"

    kwargs = request_kwargs("responses", user(TICKET.prompt), TOOLS, "record_label")
    with gpt.responses.create(**kwargs, stream=True) as stream:
        response_events = list(stream)
    n = [e.type for e in response_events].count("response.function_call_arguments.delta")
    assert [e.type for e in response_events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        *["response.function_call_arguments.delta"] * n,
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = response_events[-2]
    assert done.type == "response.output_item.done" and done.item.type == "function_call"
    assert (
        "".join(
            e.delta for e in response_events if e.type == "response.function_call_arguments.delta"
        )
        == done.item.arguments
    )  # type: ignore[union-attr]


# Conversations


def test_world_entries_scoped_to_the_last_turn() -> None:
    world = World.from_mapping(
        [
            {
                "match": "weather in Paris",
                "answer": {"city": "Paris"},
                "wrong": [{"city": "Lyon"}],
                "tool": "get_weather",
            },
            {
                "match": "18 degrees",
                "answer": "It is 18 degrees in Paris.",
                "wrong": ["It is cold."],
                "scope": "last_turn",
            },
        ]
    )
    question = "What is the weather in Paris?"
    asked = world.lookup(question)
    assert asked is not None and asked.tool == "get_weather"
    result = "\n18 degrees and sunny"
    later = world.lookup(question + result, turn_start=len(question) + 1)
    assert later is not None and later.scope == "last_turn"
    follow_up = question + result + "\nThanks. And tomorrow?"
    stale = world.lookup(follow_up, turn_start=len(question + result) + 1)
    assert stale is asked
    with pytest.raises(SimConfigError, match="'scope' must be one of"):
        World.from_mapping([{"match": "x", "answer": "y", "wrong": ["z"], "scope": "turn"}])


WEATHER_WORLD = {
    "entries": [
        {
            "match": "weather in Paris",
            "answer": {"city": "Paris"},
            "wrong": [{"city": "Lyon"}],
            "tool": "get_weather",
        },
        {
            "match": "18 degrees and sunny",
            "scope": "last_turn",
            "answer": "Sunny, 18 degrees.",
            "wrong": ["Rainy."],
        },
        {
            "match": "what time is it",
            "answer": {"tz": "Europe/Paris"},
            "wrong": [{"tz": "UTC"}],
            "tool": "get_time",
        },
        {
            "match": "09:15",
            "scope": "last_turn",
            "answer": "It is 09:15 in Paris.",
            "wrong": ["Noon."],
        },
        {
            "match": "look up the forecast",
            "answer": {"city": "Oslo"},
            "wrong": [{"city": "Bergen"}],
            "tool": "get_weather",
        },
    ]
}
WEATHER_TOOLS = [
    ("get_time", {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}),
    (
        "get_weather",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    ),
]


@pytest.mark.parametrize("api", APIS)
def test_an_agent_loop_over_several_turns(api: str) -> None:
    """Ask, call the tool the world names, get a result, answer it; then a new question."""
    with Simulator(world=WEATHER_WORLD, time_scale=0) as server, connect(server) as clients:
        conversation = user("What is the weather in Paris?")
        call = ask(clients, api, False, request_kwargs(api, conversation, WEATHER_TOOLS, "auto"))
        assert call.tool == "get_weather" and call.input == {"city": "Paris"}
        conversation = with_result(api, conversation, call, "18 degrees and sunny")
        final = ask(clients, api, True, request_kwargs(api, conversation, WEATHER_TOOLS, "auto"))
        assert final.tool is None and final.text == "Sunny, 18 degrees."
        assistant = (
            {"role": "assistant", "content": [{"type": "output_text", "text": final.text}]}
            if api == "responses"
            else {"role": "assistant", "content": final.text}
        )
        conversation = [*conversation, assistant, *user("Thanks! And what time is it there?")]
        second = ask(clients, api, False, request_kwargs(api, conversation, WEATHER_TOOLS, "auto"))
        assert second.tool == "get_time" and second.input == {"tz": "Europe/Paris"}
        asked = conversation
        conversation = with_result(api, asked, second, "09:15")
        last = ask(clients, api, False, request_kwargs(api, conversation, WEATHER_TOOLS, "auto"))
        assert last.tool is None and last.text == "It is 09:15 in Paris."
        # A tool result that asks a question whose entry names a tool chains a second call.
        conversation = with_result(api, asked, second, "Please look up the forecast")
        chained = ask(clients, api, False, request_kwargs(api, conversation, WEATHER_TOOLS, "auto"))
        assert chained.tool == "get_weather" and chained.input == {"city": "Oslo"}


def test_conversation_turns_in_each_api() -> None:
    """The last turn starts after the last assistant message (or call), system messages aside."""
    chat = parse_request(
        "chat",
        json.dumps(
            {
                "model": "m",
                "messages": [
                    {"role": "system", "content": "S"},
                    {"role": "user", "content": "U1"},
                    {"role": "assistant", "content": "A1"},
                    {"role": "user", "content": "U2"},
                ],
            }
        ).encode(),
    )[0]
    assert chat.prompt == "S\nU1\nA1\nU2" and chat.prompt[chat.turn_start :] == "U2"
    first = parse_request(
        "chat",
        json.dumps(
            {
                "model": "m",
                "messages": [
                    {"role": "system", "content": "S"},
                    {"role": "user", "content": "U1"},
                ],
            }
        ).encode(),
    )[0]
    assert first.prompt[first.turn_start :] == "U1" and not first.after_tool_result
    responses = parse_request(
        "responses",
        json.dumps(
            {
                "model": "m",
                "instructions": "I",
                "input": [
                    {"role": "user", "content": "U1"},
                    {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "c1", "output": "R1"},
                ],
            }
        ).encode(),
    )[0]
    assert responses.prompt[responses.turn_start :] == "R1" and responses.after_tool_result
    claude = parse_request(
        "anthropic",
        json.dumps(
            {
                "model": "m",
                "max_tokens": 5,
                "system": "S",
                "messages": [
                    {"role": "user", "content": "U1"},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}
                        ],
                    },
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": "t1", "content": "R1"},
                            {"type": "text", "text": "U2"},
                        ],
                    },
                ],
            }
        ).encode(),
    )[0]
    assert claude.prompt == 'S\nU1\n{"a": 1}\nR1\nU2'
    assert claude.prompt[claude.turn_start :] == "R1\nU2" and claude.after_tool_result


# Properties of the structured answers


def _schema_strategy() -> st.SearchStrategy[dict[str, Any]]:
    names = st.from_regex(r"[a-z]{1,6}", fullmatch=True)
    leaf = st.one_of(
        st.just({"type": "string"}),
        st.builds(
            lambda lo, extra: {"type": "string", "minLength": lo, "maxLength": lo + extra},
            st.integers(0, 5),
            st.integers(0, 10),
        ),
        st.sampled_from(
            [
                {"type": "string", "format": f}
                for f in ("date", "date-time", "email", "uuid", "ipv4", "uri")
            ]
        ),
        st.sampled_from(
            [
                {"type": "string", "pattern": p}
                for p in (
                    r"^[A-Z]{3}-\d{2,4}$",
                    r"^(red|green|blue)$",
                    r"^\w+@\w+\.com$",
                    r"x[^abc]?y",
                )
            ]
        ),
        st.builds(
            lambda lo, span: {"type": "integer", "minimum": lo, "maximum": lo + span},
            st.integers(-50, 50),
            st.integers(0, 20),
        ),
        st.builds(
            lambda lo: {"type": "number", "exclusiveMinimum": lo, "maximum": lo + 1},
            st.floats(-10, 10),
        ),
        st.builds(lambda k: {"type": "integer", "multipleOf": k}, st.integers(1, 7)),
        st.just({"type": "boolean"}),
        st.just({"type": "null"}),
        st.just({"type": ["string", "null"]}),
        st.lists(st.text(max_size=5), min_size=1, max_size=4, unique=True).map(
            lambda xs: {"enum": xs}
        ),
    )

    def containers(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        arrays = st.builds(
            lambda items, lo: {"type": "array", "items": items, "minItems": lo, "maxItems": lo + 2},
            inner,
            st.integers(0, 2),
        )
        objects = st.dictionaries(names, inner, min_size=1, max_size=4).flatmap(
            lambda props: st.builds(
                lambda required, closed: {
                    "type": "object",
                    "properties": props,
                    "required": required,
                    "additionalProperties": not closed,
                },
                st.lists(st.sampled_from(sorted(props)), unique=True),
                st.booleans(),
            )
        )
        return st.one_of(
            arrays, objects, st.lists(inner, min_size=1, max_size=3).map(lambda bs: {"anyOf": bs})
        )

    return st.recursive(leaf, containers, max_leaves=8)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-100, 100) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(schema=_schema_strategy(), hint=JSON_VALUES, seed=st.integers(0, 2**32))
def test_conform_always_returns_a_valid_value(schema: dict[str, Any], hint: Any, seed: int) -> None:
    value, used = conform(schema, hint, random.Random(seed))
    assert valid(schema, value)
    if valid(schema, hint):
        assert value == hint and used
    assert conform(schema, hint, random.Random(seed)) == (value, used)


def test_answers_are_fitted_where_they_belong() -> None:
    rng = random.Random(0)
    reasoned = {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string"},
            "label": {"type": "string", "enum": LABELS},
        },
        "required": ["reasoning", "label"],
    }
    assert conform(reasoned, "bug", rng)[0]["label"] == "bug"
    number = {
        "type": "object",
        "properties": {"work": {"type": "string"}, "answer": {"type": "integer"}},
        "required": ["work", "answer"],
    }
    assert conform(number, 40, rng)[0]["answer"] == 40
    as_text = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
    }
    assert conform(as_text, 40, rng)[0] == {"answer": "40"}
    listed = {"type": "array", "items": {"type": "integer"}}
    assert conform(listed, "7", rng) == ([7], True)
    partly = conform(
        CONTACT_SCHEMA, {"name": "Maria Lopez", "email": None, "company": "Acme Corp"}, rng
    )[0]
    assert (
        partly["name"] == "Maria Lopez"
        and partly["company"] == "Acme Corp"
        and valid(CONTACT_SCHEMA, partly)
    )
    unrelated = conform(
        {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
        "hello",
        rng,
    )
    assert unrelated[1] is False and valid({"type": "object", "required": ["n"]}, unrelated[0])
    merged = {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"properties": {"b": {"type": "string"}}, "required": ["b"]},
        ]
    }
    value, used = conform(merged, {"a": 3}, rng)
    assert used and value["a"] == 3 and valid(merged, value) and set(value) == {"a", "b"}


# Re-recording stays stable


def test_the_example_suites_recorded_answers_are_reproduced() -> None:
    """Every request in the committed cassettes, decided again, gets its recorded response.

    The suite was recorded in one session against ``Simulator(seed=0)``; answers depend only on
    the multiset of requests, so the oracle must give each body the same multiset of responses.
    """
    oracle = Oracle(load_world(), load_models(), Faults(), seed=0)
    recorded: dict[tuple[str, str], Counter[str]] = {}
    decided: dict[tuple[str, str], Counter[str]] = {}
    cassettes = sorted(
        (Path(__file__).parent.parent / "example_suite" / "cassettes").glob("*/*.json")
    )
    assert cassettes
    for cassette in cassettes:
        for interaction in json.loads(cassette.read_text())["interactions"]:
            sent = interaction["request"]
            api = api_for_path(urlsplit(sent["uri"]).path)
            assert api is not None
            request, body = parse_request(api, sent["body"].encode())
            plan = oracle.plan(request)
            wire = render(request, plan, body, oracle.models.get(request.model).chars_per_token)
            out = wire.body if wire.events is None else b"".join(e for e, _ in wire.events)
            key = (api, sent["body"])
            recorded.setdefault(key, Counter())[
                _no_clock(interaction["response"]["body"]["string"])
            ] += 1
            decided.setdefault(key, Counter())[_no_clock(out.decode())] += 1
    assert decided == recorded


def _no_clock(body: str) -> str:
    return re.sub(r'"created(_at)?": ?\d+', '"created": 0', body)


# The agentpatterns_sim fixture and its world and models

SQL_CONFTEST = """
import pytest

@pytest.fixture(scope="session")
def agentpatterns_sim_world():
    return {"entries": [{
        "id": "sql-01",
        "match": "How many users signed up in 2024",
        "answer": "SELECT COUNT(*) FROM users WHERE signup_year = 2024",
        "wrong": ["SELECT COUNT(*) FROM users", "SELECT COUNT(*) FROM users WHERE id = 2024"],
    }]}

@pytest.fixture(scope="session")
def agentpatterns_sim_models():
    return {"sql-model": {"accuracy": 0.5, "fixed_latency": 0}}
"""

SQL_TEST = """
import asyncio, sqlite3
import anthropic, pytest
from pytest_agentpatterns import Task

RUN_SQL = {
    "name": "run_sql",
    "description": "Run one SQLite query.",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
}
QUESTION = "How many users signed up in 2024?"


def test_world_and_models_come_from_the_fixtures(agentpatterns_sim):
    assert [e.id for e in agentpatterns_sim.world.entries] == ["sql-01"]
    assert agentpatterns_sim.models.get("sql-model").accuracy == 0.5
    assert agentpatterns_sim.models.get("sim-small").accuracy == 0.7


@pytest.mark.agentpatterns(repeat=6)
def test_text_to_sql(agent, agentpatterns_sim):
    async def write_sql(question):
        async with anthropic.AsyncAnthropic(
            base_url=agentpatterns_sim.anthropic_base_url, api_key="sim-key"
        ) as client:
            message = await client.messages.create(
                model="sql-model", max_tokens=200, tools=[RUN_SQL],
                tool_choice={"type": "tool", "name": "run_sql"},
                messages=[{"role": "user", "content": question}],
            )
        assert message.stop_reason == "tool_use"
        return message.content[0].input["query"]

    query = agent.run(Task(name="sql", propose=write_sql), QUESTION)
    db = sqlite3.connect(":memory:")
    db.executescript(
        "CREATE TABLE users (id INTEGER, signup_year INTEGER);"
        "INSERT INTO users VALUES (1, 2023), (2, 2024), (3, 2024);"
    )
    assert db.execute(query).fetchone() == (2,)
"""


def test_the_fixture_world_drives_a_recorded_and_replayed_tool_call_suite(
    pytester: pytest.Pytester,
) -> None:
    """The team's text-to-SQL check: forced tool call, async SDK, sqlite3, record then replay."""
    pytester.makeconftest(SQL_CONFTEST)
    pytester.makepyfile(test_sql=SQL_TEST)
    recorded = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=all")
    recorded.assert_outcomes(passed=2)
    recorded.stdout.fnmatch_lines(["*::test_text_to_sql (* case*, baseline single)"])
    rows = [line for line in recorded.outlines if line.startswith("  single ")]
    found = re.search(r"\s6\s+(\d\.\d+) \[", rows[0])
    assert found and 0 < float(found.group(1)) < 1  # accuracy 0.5: some queries are wrong
    replayed = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=none")
    replayed.assert_outcomes(passed=2)
    assert [line for line in replayed.outlines if line in rows] == rows


def test_a_malformed_world_fixture_fails_with_one_message(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import pytest

@pytest.fixture(scope="session")
def agentpatterns_sim_world():
    return {"entries": [{"match": "x", "wrong": ["y"]}]}
"""
    )
    pytester.makepyfile("def test_x(agentpatterns_sim):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*agentpatterns_sim_world: world.entries[[]0[]]: missing 'answer'*"]
    )
