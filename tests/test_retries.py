"""Retries and faults: a retried call keeps its address, faults replay fast and cost nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from faults import FaultyProxy

from pytest_agentpatterns.sim import Simulator

WORLD = {"entries": [{"match": "capital of testland", "answer": "Alpha", "wrong": ["Beta"]}]}

MODULE = """
import os, pytest, anthropic, openai
import anthropic._base_client, openai._base_client
from pytest_agentpatterns import Task

URL = os.environ["SIM_URL"]
RETRIES = int(os.environ.get("RETRIES", "6"))
Q = "What is the capital of Testland?"
MSG = [{"role": "user", "content": Q}]
SLEPT = []

@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    # The SDKs back off 0.5 s and more between attempts; these tests are about addresses,
    # so recordings back off 10 ms. Every back-off the SDK asks for is noted: the delay is
    # looked up on the SDK's base class when the SDK asks, as the plugin leaves it.
    for module in (anthropic._base_client, openai._base_client):
        monkeypatch.setattr(module, "INITIAL_RETRY_DELAY", 0.01)
    for cls, module in ((anthropic.Anthropic, anthropic._base_client),
                        (openai.AsyncOpenAI, openai._base_client)):
        def noted(self, *args, module=module, **kwargs):
            SLEPT.append(module.BaseClient._calculate_retry_timeout(self, *args, **kwargs))
            return min(SLEPT[-1], 0.05)
        monkeypatch.setattr(cls, "_calculate_retry_timeout", noted)
    yield
    with open(os.environ["SLEPT_FILE"], "a") as f:
        f.write("".join(f"{s}\\n" for s in SLEPT))
    SLEPT.clear()

def ask(q):
    with anthropic.Anthropic(base_url=URL, api_key="sim-key", max_retries=RETRIES) as c:
        return c.messages.create(model="sim-fast", max_tokens=20, messages=MSG).content[0].text

def ask_stream(q):
    with anthropic.Anthropic(base_url=URL, api_key="sim-key", max_retries=RETRIES) as c:
        with c.messages.stream(model="sim-fast", max_tokens=20, messages=MSG) as s:
            return s.get_final_message().content[0].text

async def ask_openai(q):
    async with openai.AsyncOpenAI(base_url=URL + "/v1", api_key="sim-key",
                                  max_retries=RETRIES) as c:
        r = await c.chat.completions.create(model="sim-fast", messages=MSG)
    return r.choices[0].message.content

async def ask_openai_stream(q):
    async with openai.AsyncOpenAI(base_url=URL + "/v1", api_key="sim-key",
                                  max_retries=RETRIES) as c:
        stream = await c.chat.completions.create(
            model="sim-fast", messages=MSG, stream=True, stream_options={"include_usage": True})
        return "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])

TASKS = {"a": ask, "as": ask_stream, "o": ask_openai, "os": ask_openai_stream}

@pytest.mark.agentpatterns(patterns="parallel(n=3)", repeat=int(os.environ.get("REPEAT", "6")))
@pytest.mark.parametrize("api", list(TASKS))
def test_api(agent, api):
    agent.run(Task(name=api, propose=TASKS[api], aggregate=lambda outs: "|".join(outs)), Q)
"""


def _run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str, mode: str, url: str
) -> tuple[pytest.RunResult, dict, list[float]]:  # type: ignore[type-arg]
    report = pytester.path / f"{name}.json"
    slept = pytester.path / f"{name}.slept"
    monkeypatch.setenv("SIM_URL", url)
    monkeypatch.setenv("SLEPT_FILE", str(slept))
    result = pytester.runpytest(
        "-p", "no:cacheprovider", f"--patterns-record={mode}", f"--patterns-json={report}"
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    waits = [float(x) for x in slept.read_text().split()] if slept.exists() else []
    return result, data, waits


def _repetitions(report: dict) -> dict[tuple[str, int], tuple]:  # type: ignore[type-arg]
    return {
        (item["case"], rep["index"]): (
            rep["outcome"],
            [(c["address"], c["status"], c["error"], c["cost"]) for c in rep["calls"]],
        )
        for item in report["items"]
        for rep in item["repetitions"]
    }


def _addresses(root: Path) -> list[str]:
    """Every recorded call's cassette and address: answered, or kept as unanswered."""
    found = []
    for path in sorted(root.rglob("*.json")):
        cassette = json.loads(path.read_text())
        for i in cassette["interactions"]:
            found.append(f"{path.name} {i['request']['headers']['x-agentpatterns-address'][0]}")
        for address in cassette.get("metadata", {}).get("unanswered", {}):
            found.append(f"{path.name} {address}")
    return found


def test_recordings_through_resets_and_cut_streams_replay_every_repetition(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(MODULE)
    # About 40% of the attempts fail: with 10 retries, every call gets its answer.
    monkeypatch.setenv("RETRIES", "10")
    faults = {"rate_429": 0.15, "rate_500": 0.1, "retry_after": 0.02}
    with Simulator(world=WORLD, seed=7, time_scale=0.0, faults=faults) as sim:
        with FaultyProxy(sim.port, reset_rate=0.1, cut_rate=0.1, seed=1).running() as proxy:
            _, recorded, _ = _run(pytester, monkeypatch, "record", "once", proxy.url)
        statuses = {record.status for record in sim.log}
        # Every kind of fault happened while recording: resets before any response, cut
        # bodies and streams, 429s and 500s, all retried by the SDKs.
        assert proxy.faults["reset"] > 0 and proxy.faults["cut"] > 0
        assert {429, 500} <= statuses
        addresses = _addresses(pytester.path / "cassettes")
        # One recording per logical call, at ordinal #0: no retry took an address of its own.
        assert len(addresses) == len(set(addresses)) == 4 * 6 * 3
        assert {a.rsplit("#", 1)[1] for a in addresses} == {"0"}
        connections = sim.connection_count
        unanswered = [
            entry
            for path in (pytester.path / "cassettes").rglob("*.json")
            for entry in json.loads(path.read_text())["metadata"].get("unanswered", {}).values()
        ]
        # Calls refused after a cut stream failed their fork, or a sibling's connection that
        # failed while the fork was being cancelled (timing decides which): each is kept
        # with what happened to it, so replay can do the same.
        assert all(
            entry.get("cancelled") is True or {"type", "message"} <= set(entry.get("error", {}))
            for entry in unanswered
        ), unanswered
        reports = {}
        for retries in ("10", "0", "10", "0"):
            monkeypatch.setenv("RETRIES", retries)
            name = f"replay-{retries}-{len(reports)}"
            result, replayed, waits = _run(pytester, monkeypatch, name, "none", sim.base_url)
            assert "no recording" not in result.stdout.str()
            assert _repetitions(replayed) == _repetitions(recorded)
            assert not any(waits)  # a replayed failure is retried at once, if at all
            reports[name] = json.dumps(replayed, sort_keys=True)
        assert sim.connection_count == connections
    assert len(set(reports.values())) == 1


def test_a_replayed_connection_failure_is_retried_without_back_off(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDKs retry transport errors whatever a response says: replayed, they do it at once."""
    pytester.makepyfile(MODULE)
    monkeypatch.setenv("REPEAT", "1")
    monkeypatch.setenv("RETRIES", "0")
    with Simulator(world=WORLD, seed=7, time_scale=0.0) as sim:
        with FaultyProxy(sim.port, reset_rate=1.0, seed=1).running() as proxy:
            result, _, waits = _run(pytester, monkeypatch, "record", "once", proxy.url)
            # Every connection was reset and nothing was retried: each call is kept unanswered.
            result.assert_outcomes(failed=4)
            assert waits == []
            monkeypatch.setenv("RETRIES", "3")
            resets = proxy.faults["reset"]
            result, _, waits = _run(pytester, monkeypatch, "replay", "none", proxy.url)
            assert proxy.faults["reset"] == resets  # replay made no connection
            # A live run with these retries backs off between attempts...
            _, _, live = _run(pytester, monkeypatch, "live", "all", proxy.url)
            assert proxy.faults["reset"] > resets
    result.assert_outcomes(failed=4)
    assert "no recording" not in result.stdout.str()
    assert live and min(live) > 0
    # ... the replay retried the same failures, and never waited.
    assert waits and not any(waits)


def test_a_retried_call_keeps_its_address_and_only_the_answer_is_kept(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(MODULE)
    monkeypatch.setenv("REPEAT", "1")
    # The first two requests to the model get 429 with a long retry-after.
    faults = {"fail_first": 2, "fail_status": 429, "retry_after": 30}
    with Simulator(world=WORLD, seed=7, time_scale=0.0, faults=faults) as sim:
        result, recorded, waits = _run(pytester, monkeypatch, "record", "once", sim.base_url)
        result.assert_outcomes(passed=4)
        assert sorted(waits)[-2:] == [30.0, 30.0]  # the SDK was told to wait while recording
        connections = sim.connection_count
        result, replayed, waits = _run(pytester, monkeypatch, "replay", "none", sim.base_url)
        assert sim.connection_count == connections
    result.assert_outcomes(passed=4)
    assert waits == []
    [cassette] = (pytester.path / "cassettes").rglob("test_api[[]a-*.json")
    recorded_cassette = json.loads(cassette.read_text())
    interactions = recorded_cassette["interactions"]
    assert [i["response"]["status"]["code"] for i in interactions] == [200, 200, 200]
    assert "unanswered" not in recorded_cassette["metadata"]
    assert _repetitions(replayed) == _repetitions(recorded)
    for item in recorded["items"]:
        calls = [c for r in item["repetitions"] for c in r["calls"]]
        assert [c["status"] for c in calls] == [200, 200, 200]
        assert all(c["cost"] and c["cost"] > 0 for c in calls)


def test_failed_calls_are_free_and_replay_as_recorded_without_sdk_retries(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(MODULE)
    monkeypatch.setenv("RETRIES", "0")
    monkeypatch.setenv("REPEAT", "4")
    faults = {"rate_429": 0.2, "rate_500": 0.2, "retry_after": 30}
    with Simulator(world=WORLD, seed=3, time_scale=0.0, faults=faults) as sim:
        with FaultyProxy(sim.port, reset_rate=0.15, seed=2).running() as proxy:
            _, recorded, _ = _run(pytester, monkeypatch, "record", "once", proxy.url)
        assert proxy.faults["reset"] > 0
        calls = [c for i in recorded["items"] for r in i["repetitions"] for c in r["calls"]]
        failed = [c for c in calls if c["status"] != 200]
        assert {c["status"] for c in failed} == {429, 500, None}
        # An error response, or no response at all, was not billed: cost and tokens are 0,
        # known, and the model is the one asked for.
        for call in failed:
            assert call["cost"] == 0.0
            assert (call["input_tokens"], call["output_tokens"]) == (0, 0)
            assert call["model"] == "sim-fast"
        [row] = recorded["summary"]
        assert row["cost_per_run"] is not None and row["tokens_per_run"] is not None
        reports = set()
        for run, retries in enumerate(("3", "0", "3", "0")):
            monkeypatch.setenv("RETRIES", retries)
            _, replayed, waits = _run(pytester, monkeypatch, f"replay{run}", "none", sim.base_url)
            # The SDK retries 429 and 500 when it may: a replayed error says not to (the
            # recording kept the last attempt), so nothing is retried and nothing waits.
            assert _repetitions(replayed) == _repetitions(recorded)
            assert [w for w in waits if w >= 1] == []
            reports.add(json.dumps(replayed, sort_keys=True))
    assert len(reports) == 1


IDEMPOTENT = """
import httpx2, pytest
from pytest_agentpatterns import Task

SEEN = []

def handler(request):
    SEEN.append(request.headers.get("idempotency-key"))
    status = 503 if len(SEEN) % 2 else 200
    return httpx2.Response(status, json={"ok": status == 200})

def propose(key):
    # A retry loop of the caller's own: a repeated Idempotency-Key marks the same call.
    headers = {"Idempotency-Key": key} if key else {}
    with httpx2.Client(transport=httpx2.MockTransport(handler)) as client:
        for _ in range(3):
            response = client.post("http://svc.invalid/v1/thing", json={}, headers=headers)
            if response.status_code < 500:
                return response.json()["ok"]

@pytest.mark.parametrize("key", ["k-1", ""])
def test_own_retries(agent, key):
    assert agent.run(Task(name="t", propose=propose), key) is True
"""


def test_a_repeated_idempotency_key_marks_a_retry(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(IDEMPOTENT)
    report = pytester.path / "r.json"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=once", f"--patterns-json={report}"
    )
    result.assert_outcomes(passed=2)
    calls = {
        i["case"]: [(c["address"], c["status"]) for c in i["repetitions"][0]["calls"]]
        for i in json.loads(report.read_text())["items"]
    }
    # With the key: one logical call, answered by its second attempt.
    assert calls["k-1"] == [("r0/main/propose#0", 200)]
    # Without it, each attempt is a call of its own, kept as it happened.
    assert calls[""] == [("r0/main/propose#0", 503), ("r0/main/propose#1", 200)]
    result = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=none")
    result.assert_outcomes(passed=2)
