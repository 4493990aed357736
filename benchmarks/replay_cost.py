"""Figure 1: the cost of one replayed call through the real Anthropic SDK.

Three ways to answer ``client.messages.create(...)`` without a network, side by side:

- ``plugin``: this plugin's cassette, opened as the plugin opens it for an item in
  ``--patterns-record=none`` mode, with calls attributed exactly as in a test body;
- ``vcrpy``: stock vcrpy matching on method, URI and body (what pytest-recording users get);
- ``floor``: an in-process ``httpx2.MockTransport`` returning the same bytes, no cassette.

The cassettes are written directly in each library's format, one distinct request body per
interaction. Each round runs one block of calls per variant, in a shuffled order; a
variant's figure is the median over rounds of its per-call time over the floor's. Opening a
cassette (read, parse, index, patch) is timed apart from the calls.
"""

from __future__ import annotations

import gc
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import vcr
import yaml
from measure import Ratio, median

from pytest_agentpatterns import transport
from pytest_agentpatterns.cassettes import ADDRESS_HEADER, open_cassette
from pytest_agentpatterns.execution import RepetitionState, enter_body, leave_body
from pytest_agentpatterns.prices import load_default_prices

BASE_URL = "http://replay.invalid"
URI = f"{BASE_URL}/v1/messages"
MODEL = "sim-fast"
API_KEY = "bench-key-not-a-secret"
VARIANTS = ("plugin", "vcrpy", "floor")
SETTLE_CALLS = 20

REQUEST_HEADERS = {
    "host": "replay.invalid",
    "accept-encoding": "gzip, deflate",
    "connection": "keep-alive",
    "accept": "application/json",
    "content-type": "application/json",
    "user-agent": f"Anthropic/Python {anthropic.__version__}",
    "x-stainless-lang": "python",
    "x-stainless-package-version": anthropic.__version__,
    "x-stainless-runtime": "CPython",
    "x-stainless-retry-count": "0",
    "anthropic-version": "2023-06-01",
}
RESPONSE_HEADERS = {
    "content-type": "application/json",
    "request-id": "req_bench",
    "server": "agentpatterns-sim",
}


def prompt(i: int) -> str:
    """The distinct question of interaction ``i``."""
    return f"Question {i}: what is {i} plus {i}? Answer with the number only."


def request_kwargs(i: int) -> dict[str, Any]:
    """What the benchmark passes to ``messages.create`` for interaction ``i``."""
    return {"max_tokens": 32, "messages": [{"role": "user", "content": prompt(i)}], "model": MODEL}


def request_body(i: int) -> str:
    """The body the SDK sends for interaction ``i`` (its own key order, compact)."""
    return json.dumps(request_kwargs(i), separators=(",", ":"))


def answer(i: int) -> str:
    return str(2 * i)


def response_body(i: int) -> str:
    """A Messages API response in the shape the simulator and the real API return."""
    return json.dumps(
        {
            "id": f"msg_{i:08d}",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": answer(i)}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 20, "output_tokens": 3},
        }
    )


def _interaction(i: int, extra_headers: dict[str, str]) -> dict[str, Any]:
    headers = {**REQUEST_HEADERS, **extra_headers}
    headers["content-length"] = str(len(request_body(i)))
    body = response_body(i)
    return {
        "request": {
            "method": "POST",
            "uri": URI,
            "body": request_body(i),
            "headers": {k: [v] for k, v in headers.items()},
        },
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {
                **{k: [v] for k, v in RESPONSE_HEADERS.items()},
                "content-length": [str(len(body))],
            },
            "body": {"string": body},
        },
    }


def write_plugin_cassette(path: Path, size: int) -> None:
    """The plugin's JSON format: call ``i`` of the test body is at address r0/main/test#i."""
    interactions = []
    for i in range(size):
        item = _interaction(i, {ADDRESS_HEADER: f"r0/main/test#{i}"})
        item["response"]["duration"] = 0.5
        interactions.append(item)
    path.write_text(json.dumps({"version": 1, "interactions": interactions}, indent=4) + "\n")


def write_vcrpy_cassette(path: Path, size: int) -> None:
    """vcrpy's default YAML format, as ``use_cassette`` records it."""
    data = {"version": 1, "interactions": [_interaction(i, {}) for i in range(size)]}
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump(data, Dumper=dumper))


@dataclass
class Block:
    """One variant's block of calls within a round."""

    calls: int = 0
    call_seconds: float = 0.0
    load_seconds: list[float] = field(default_factory=list)

    @property
    def per_call(self) -> float:
        return self.call_seconds / self.calls


def _call_all(
    client: anthropic.Anthropic, indices: Sequence[int], before: Callable[[int], None]
) -> tuple[float, list[str]]:
    texts = []
    started = time.perf_counter()
    for i in indices:
        before(i)
        message = client.messages.create(**request_kwargs(i))
        texts.append(message.content[0].text)
    return time.perf_counter() - started, texts


def _check(indices: Sequence[int], texts: Sequence[str], variant: str) -> None:
    expected = [answer(i) for i in indices]
    if list(texts) != expected:
        raise AssertionError(f"{variant}: replayed the wrong responses")


def plugin_block(
    path: Path, batches: Sequence[Sequence[int]], client: anthropic.Anthropic
) -> Block:
    """Replay through the plugin: the cassette and call attribution set up as in plugin.py."""
    block = Block()
    prices = load_default_prices()
    transport.install()
    try:
        for indices in batches:
            state = RepetitionState(0)
            state.meter = transport.Meter(cost_of=prices.cost)
            started = time.perf_counter()
            context = open_cassette(path, "none")
            cassette = context.__enter__()
            block.load_seconds.append(time.perf_counter() - started)
            try:
                state.replayer = cassette
                token = enter_body(state)

                def address(i: int, state: RepetitionState = state) -> None:
                    # The i-th call of the body: its address is r0/main/test#i.
                    state._ordinals[(), "test"] = i

                try:
                    seconds, texts = _call_all(client, indices, address)
                finally:
                    leave_body(token)
            finally:
                context.__exit__(None, None, None)
            _check(indices, texts, "plugin")
            if len(state.calls) != len(indices) or not all(c.replayed for c in state.calls):
                raise AssertionError("plugin: calls were not attributed as replayed")
            block.calls += len(indices)
            block.call_seconds += seconds
    finally:
        transport.uninstall()
    return block


def vcrpy_block(path: Path, batches: Sequence[Sequence[int]], client: anthropic.Anthropic) -> Block:
    """Replay through stock vcrpy, ``match_on=["method", "uri", "body"]``."""
    block = Block()
    recorder = vcr.VCR(match_on=["method", "uri", "body"], record_mode="none")
    for indices in batches:
        started = time.perf_counter()
        context = recorder.use_cassette(str(path))
        context.__enter__()
        block.load_seconds.append(time.perf_counter() - started)
        try:
            seconds, texts = _call_all(client, indices, lambda i: None)
        finally:
            context.__exit__(None, None, None)
        _check(indices, texts, "vcrpy")
        block.calls += len(indices)
        block.call_seconds += seconds
    return block


def floor_client(size: int) -> anthropic.Anthropic:
    """An SDK client answered in process by ``httpx2.MockTransport``: no cassette at all."""
    answers = {request_body(i).encode(): response_body(i).encode() for i in range(size)}
    headers = list(RESPONSE_HEADERS.items())

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=headers, content=answers[request.content])

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return anthropic.Anthropic(api_key=API_KEY, base_url=BASE_URL, http_client=http, max_retries=0)


def floor_block(client: anthropic.Anthropic, batches: Sequence[Sequence[int]]) -> Block:
    block = Block()
    for indices in batches:
        seconds, texts = _call_all(client, indices, lambda i: None)
        _check(indices, texts, "floor")
        block.calls += len(indices)
        block.call_seconds += seconds
    return block


def _batches(rng: random.Random, size: int, calls: int) -> list[list[int]]:
    """``calls`` distinct interactions per cassette opening, spread over the whole cassette."""
    batches = []
    while calls > 0:
        take = min(size, calls)
        batches.append(rng.sample(range(size), take))
        calls -= take
    return batches


@dataclass(frozen=True)
class SizeResult:
    """Figure 1 at one cassette size: medians over rounds, ratios paired within rounds."""

    size: int
    per_call: dict[str, float]
    load: dict[str, float]
    calls_per_round: dict[str, int]
    rounds: dict[str, int]
    vs_floor: dict[str, Ratio]


def measure_size(
    size: int,
    workdir: Path,
    rounds: int,
    calls: int,
    vcrpy_calls: int,
    vcrpy_rounds: int,
    warm_up: bool = True,
    seed: int = 0,
) -> SizeResult:
    """Interleave the variants for ``rounds`` rounds at cassette size ``size``.

    vcrpy takes part in the first ``vcrpy_rounds`` rounds only, with ``vcrpy_calls`` calls
    each, since at large sizes one of its calls takes seconds; its ratio pairs it with the
    floor of those same rounds.
    """
    plugin_path = workdir / f"plugin-{size}.json"
    vcrpy_path = workdir / f"vcrpy-{size}.yaml"
    write_plugin_cassette(plugin_path, size)
    write_vcrpy_cassette(vcrpy_path, size)
    rng = random.Random(seed + size)
    cassette_client = anthropic.Anthropic(api_key=API_KEY, base_url=BASE_URL, max_retries=0)
    floor = floor_client(size)
    wanted = {"plugin": calls, "vcrpy": vcrpy_calls, "floor": calls}
    per_round: list[dict[str, Block]] = []
    if warm_up:
        # Not counted: imports, first-use caches, the SDK's lazy setup.
        for variant in VARIANTS:
            batches = _batches(rng, size, min(3, size))
            _run(variant, batches, plugin_path, vcrpy_path, cassette_client, floor)
    for index in range(rounds):
        order = [v for v in VARIANTS if v != "vcrpy" or index < vcrpy_rounds]
        rng.shuffle(order)
        blocks = {}
        for variant in order:
            batches = _batches(rng, size, wanted[variant])
            # The previous block's garbage, and the page faults of reusing what it freed,
            # are not this block's cost: collect, then settle with a few untimed calls.
            gc.collect()
            floor_block(floor, _batches(rng, size, SETTLE_CALLS))
            blocks[variant] = _run(
                variant, batches, plugin_path, vcrpy_path, cassette_client, floor
            )
        per_round.append(blocks)

    def runs(variant: str) -> list[dict[str, Block]]:
        return [r for r in per_round if variant in r]

    return SizeResult(
        size=size,
        per_call={v: median([r[v].per_call for r in runs(v)]) for v in VARIANTS},
        load={v: median([s for r in runs(v) for s in r[v].load_seconds]) for v in VARIANTS},
        calls_per_round=wanted,
        rounds={v: len(runs(v)) for v in VARIANTS},
        vs_floor={
            v: Ratio.of([r[v].per_call for r in runs(v)], [r["floor"].per_call for r in runs(v)])
            for v in ("plugin", "vcrpy")
        },
    )


def _run(
    variant: str,
    batches: Sequence[Sequence[int]],
    plugin_path: Path,
    vcrpy_path: Path,
    cassette_client: anthropic.Anthropic,
    floor: anthropic.Anthropic,
) -> Block:
    if variant == "plugin":
        return plugin_block(plugin_path, batches, cassette_client)
    if variant == "vcrpy":
        return vcrpy_block(vcrpy_path, batches, cassette_client)
    return floor_block(floor, batches)
