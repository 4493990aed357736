"""The simulator, driven by the real Anthropic and OpenAI SDKs over a real socket."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from pytest_agentpatterns.sim import (
    Faults,
    SimConfigError,
    Simulator,
    World,
    load_models,
    load_world,
)
from pytest_agentpatterns.sim.oracle import GENERIC_PREFIX, Oracle, SimRequest

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
