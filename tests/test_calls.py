"""Calls through the real SDKs: attribution, tokens, cost, trace and budget (issue: sim+cost)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_agentpatterns.sim import Simulator

ROLES = """
import os, json, asyncio, pytest, anthropic, openai
from pytest_agentpatterns import Task

URL = os.environ["SIM_URL"]
Q = "What is the capital of Testland?"

CLIENT = anthropic.Anthropic(base_url=URL, api_key="sk-ant-test-0123456789abcdef", max_retries=0)

@pytest.fixture(scope="session", autouse=True)
def close_client():
    yield
    CLIENT.close()

def ask_anthropic(q, model="sim-fast"):
    m = CLIENT.messages.create(model=model, max_tokens=20, messages=[{"role": "user", "content": q}])
    return m.content[0].text.strip()

async def ask_openai_stream(q):
    async with openai.AsyncOpenAI(base_url=URL + "/v1", api_key="sk-proj-test-0123456789abcdef",
                                  max_retries=0) as c:
        stream = await c.chat.completions.create(
            model="sim-fast", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": q}])
        text = ""
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
    return text.strip()

def ask_anthropic_stream(q):
    with anthropic.Anthropic(base_url=URL, api_key="sk-ant-test-0123456789abcdef", max_retries=0) as c:
        with c.messages.stream(model="sim-fast", max_tokens=20,
                               messages=[{"role": "user", "content": q}]) as s:
            return s.get_final_message().content[0].text.strip()

def ask_responses(q):
    with openai.OpenAI(base_url=URL + "/v1", api_key="sk-proj-test-0123456789abcdef", max_retries=0) as c:
        return c.responses.create(model="sim-fast", input=q).output_text.strip()
"""


def _report(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_tokens_and_cost_match_sdk_usage_for_every_api(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makepyfile(
        ROLES
        + """
SEEN = []

def record_usage(kind, usage):
    SEEN.append((kind, usage))

def anthropic_plain(q):
    with anthropic.Anthropic(base_url=URL, api_key="sk-ant-test-0123456789abcdef") as c:
        m = c.messages.create(model="sim-fast", max_tokens=20, messages=[{"role": "user", "content": q}])
    u = m.usage
    record_usage("anthropic", [u.input_tokens, u.output_tokens])
    return m.content[0].text

def openai_plain(q):
    with openai.OpenAI(base_url=URL + "/v1", api_key="sk-proj-test-0123456789abcdef") as c:
        r = c.chat.completions.create(model="sim-fast", messages=[{"role": "user", "content": q}])
    u = r.usage
    record_usage("openai", [u.prompt_tokens, u.completion_tokens])
    return r.choices[0].message.content

async def anthropic_async_stream(q):
    async with anthropic.AsyncAnthropic(base_url=URL, api_key="sk-ant-test-0123456789abcdef") as c:
        async with c.messages.stream(model="sim-fast", max_tokens=20,
                                     messages=[{"role": "user", "content": q}]) as s:
            m = await s.get_final_message()
    record_usage("anthropic_async_stream", [m.usage.input_tokens, m.usage.output_tokens])
    return m.content[0].text

TASKS = {
    "anthropic": Task(name="a", propose=anthropic_plain),
    "anthropic_async_stream": Task(name="aas", propose=anthropic_async_stream),
    "openai": Task(name="o", propose=openai_plain),
    "anthropic_stream": Task(name="as", propose=ask_anthropic_stream),
    "openai_stream_async": Task(name="os", propose=ask_openai_stream),
    "responses": Task(name="r", propose=ask_responses),
}

@pytest.mark.parametrize("api", list(TASKS))
def test_api(agent, api):
    agent.run(TASKS[api], Q)

def test_zz_dump():
    with open("sdk_usage.json", "w") as f:
        json.dump(SEEN, f)
"""
    )
    path = pytester.path / "r.json"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=all", f"--patterns-json={path}"
    )
    result.assert_outcomes(passed=7)
    items = {i["case"]: i for i in _report(path)["items"]}
    assert set(items) == {
        "anthropic",
        "anthropic_async_stream",
        "openai",
        "anthropic_stream",
        "openai_stream_async",
        "responses",
    }
    sdk = dict((k, v) for k, v in json.loads((pytester.path / "sdk_usage.json").read_text()))
    for case, item in items.items():
        [call] = item["repetitions"][0]["calls"]
        assert call["address"] == "r0/main/propose#0"
        assert call["model"] == "sim-fast"
        assert call["input_tokens"] > 0 and call["output_tokens"] > 0, case
        # sim-fast costs $0.10 in / $0.40 out per million tokens (sim/prices.toml, fictional).
        expected = (call["input_tokens"] * 0.10 + call["output_tokens"] * 0.40) / 1_000_000
        assert call["cost"] == pytest.approx(expected), case
        if case in sdk:
            assert [call["input_tokens"], call["output_tokens"]] == sdk[case]


def test_parallel_voting_matches_binomial_prediction_with_five_times_the_calls(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makepyfile(
        ROLES
        + """
t = Task(name="capital", propose=ask_anthropic)

@pytest.mark.agentpatterns(repeat=150)
def test_capital(agent):
    assert agent.run(t, Q) == "Alpha"
"""
    )
    path = pytester.path / "r.json"
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--patterns-record=all",
        "--patterns=single,parallel(n=5)",
        f"--patterns-json={path}",
    )
    result.assert_outcomes(passed=2)
    summary = {s["pattern"]: s for s in _report(path)["summary"]}
    single, parallel = summary["single"], summary["parallel(n=5)"]
    # p=0.7 per call; majority of 5 is right with P = sum_{k>=3} C(5,k) .7^k .3^(5-k) = 0.8369.
    # 150 repetitions: standard error about 0.03; allow four of them.
    assert single["accuracy"] == pytest.approx(0.7, abs=0.15)
    assert parallel["accuracy"] == pytest.approx(0.8369, abs=0.12)
    assert single["calls_per_run"] == 1.0
    assert parallel["calls_per_run"] == 5.0


def test_trace_has_one_line_per_call_with_provenance(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makepyfile(
        ROLES
        + """
t = Task(name="capital", propose=ask_anthropic, verify=lambda x, o: ask_anthropic(x) == o)

@pytest.mark.agentpatterns(patterns="hybrid(n=3)", repeat=2)
def test_capital(agent):
    agent.run(t, Q)
"""
    )
    trace = pytester.path / "trace.jsonl"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=all", f"--patterns-trace={trace}"
    )
    result.assert_outcomes(passed=1)
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    assert {tuple(sorted(line)) for line in lines} == {
        (
            "address",
            "branch",
            "cache_read_tokens",
            "cache_write_tokens",
            "cost",
            "duration",
            "input_tokens",
            "model",
            "nodeid",
            "ordinal",
            "output_tokens",
            "pattern",
            "prompt_hash",
            "repetition",
            "replayed",
            "role",
            "status",
            "test",
            "tokens",
        )
    }
    addresses = [line["address"] for line in lines]
    assert addresses[:3] == [
        "r0/hybrid[0]/propose#0",
        "r0/hybrid[1]/propose#0",
        "r0/hybrid[2]/propose#0",
    ]
    assert "r0/verify[0]/verify#0" in addresses
    assert {line["pattern"] for line in lines} == {"hybrid(n=3)"}
    assert {line["repetition"] for line in lines} == {0, 1}


def test_unknown_model_counts_tokens_and_warns_once(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makepyfile(
        ROLES
        + """
t = Task(name="capital", propose=lambda q: ask_anthropic(q, model="acme-unpriced-1"))

@pytest.mark.agentpatterns(patterns="parallel(n=3)", repeat=2)
def test_capital(agent):
    agent.run(t, Q)
"""
    )
    path = pytester.path / "r.json"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=all", f"--patterns-json={path}"
    )
    result.assert_outcomes(passed=1)
    assert result.stdout.str().count("no price for model 'acme-unpriced-1'") == 1
    [row] = _report(path)["summary"]
    assert row["cost_per_run"] is None and row["tokens_per_run"] > 0
    result.stdout.fnmatch_lines(["*test_capital*", "  parallel(n=3) * n/a *"])


def test_price_override_from_ini(pytester: pytest.Pytester, sim_env: Simulator) -> None:
    pytester.makeini(
        "[pytest]\nagentpatterns_prices =\n    acme-unpriced-1 = input:1000000 output:0\n"
    )
    pytester.makepyfile(
        ROLES
        + """
t = Task(name="capital", propose=lambda q: ask_anthropic(q, model="acme-unpriced-1"))
def test_capital(agent):
    agent.run(t, Q)
"""
    )
    path = pytester.path / "r.json"
    pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=all", f"--patterns-json={path}")
    [item] = _report(path)["items"]
    [call] = item["repetitions"][0]["calls"]
    assert call["cost"] == pytest.approx(call["input_tokens"] * 1.0)


def test_price_hook_overrides_the_table(pytester: pytest.Pytester, sim_env: Simulator) -> None:
    pytester.makeconftest(
        """
from pytest_agentpatterns.prices import Price

def pytest_agentpatterns_prices(prices):
    prices["sim-fast"] = Price(input=0, output=2_000_000, cache_write=0, cache_read=0,
                               source="conftest")
"""
    )
    pytester.makepyfile(
        ROLES
        + "def test_capital(agent):\n    agent.run(Task(name='t', propose=ask_anthropic), Q)\n"
    )
    path = pytester.path / "r.json"
    pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=all", f"--patterns-json={path}")
    [call] = _report(path)["items"][0]["repetitions"][0]["calls"]
    assert call["cost"] == pytest.approx(call["output_tokens"] * 2.0)


def test_budget_stops_live_calls(pytester: pytest.Pytester, sim_env: Simulator) -> None:
    pytester.makepyfile(
        ROLES
        + """
t = Task(name="capital", propose=ask_anthropic)
@pytest.mark.agentpatterns(repeat=3)
def test_capital(agent):
    agent.run(t, Q)
"""
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=all", "--patterns-budget=0.0000001"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "[[]single[]] budget $1e-07 spent: 1 call not made; 2 repetitions not counted (from r1 on)"
        ]
    )


@pytest.mark.parametrize("module", ["httpx", "httpx2"])
def test_plain_httpx_clients_are_attributed_too(pytester: pytest.Pytester, module: str) -> None:
    pytester.makepyfile(
        f"""
import {module} as http, pytest
from pytest_agentpatterns import Task

def handler(request):
    return http.Response(200, json={{"ok": True}})

def propose(x):
    with http.Client(transport=http.MockTransport(handler)) as c:
        return c.get("http://svc.invalid/v1/thing").json()["ok"]

async def apropose(x):
    async with http.AsyncClient(transport=http.MockTransport(handler)) as c:
        return (await c.get("http://svc.invalid/v1/thing")).json()["ok"]

@pytest.mark.agentpatterns(patterns="parallel(n=2)")
def test_x(agent):
    assert agent.run(Task(name="s", propose=propose), 0) is True
    assert agent.run(Task(name="a", propose=apropose), 0) is True
"""
    )
    path = pytester.path / "r.json"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=all", f"--patterns-json={path}"
    )
    result.assert_outcomes(passed=1)
    calls = _report(path)["items"][0]["repetitions"][0]["calls"]
    assert [c["address"] for c in calls] == [
        "r0/parallel[0]/propose#0",
        "r0/parallel[0]/propose#1",
        "r0/parallel[1]/propose#0",
        "r0/parallel[1]/propose#1",
    ]
    assert {c["status"] for c in calls} == {200}


def test_agentpatterns_sim_fixture_serves_the_sdks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import anthropic, openai, pytest
from pytest_agentpatterns import Task

@pytest.mark.agentpatterns(patterns="parallel(n=3)", min_accuracy=1.0)
def test_both(agent, agentpatterns_sim):
    def ask(q):
        with anthropic.Anthropic(base_url=agentpatterns_sim.anthropic_base_url,
                                 api_key="sim-key") as c:
            m = c.messages.create(model="sim-perfect", max_tokens=20,
                                  messages=[{"role": "user", "content": q}])
        return m.content[0].text.strip()
    q = "A baker has 23 apples and buys 17 more. How many apples does the baker have now?"
    assert agent.run(Task(name="t", propose=ask), q) == "40"
    with openai.OpenAI(base_url=agentpatterns_sim.openai_base_url, api_key="sim-key") as c:
        r = c.chat.completions.create(model="sim-perfect",
                                      messages=[{"role": "user", "content": q}])
    assert r.choices[0].message.content.strip() == "40"
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=all")
    result.assert_outcomes(passed=1)
