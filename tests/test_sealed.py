"""Replay is sealed: no branch outlives its repetition, and a replay-only item opens no socket."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from pytest_agentpatterns import network
from pytest_agentpatterns.sim import Simulator

CANCELLING = """
import asyncio, itertools, os, threading, pytest, anthropic
import pytest_agentpatterns.execution as execution
from pytest_agentpatterns import Task

URL = os.environ["SIM_URL"]
Q = "What is the capital of Testland?"
CANCELLED = threading.Event()
ARRIVALS = itertools.count()
FINISHED = []

@pytest.fixture(autouse=True)
def cancellations(monkeypatch):
    # An event set when the plugin cancels branches: the siblings wait for it, so their
    # calls are attempted after the failure is known, however the threads are scheduled.
    real = execution.RepetitionState.cancel
    def cancel(self, paths):
        real(self, paths)
        CANCELLED.set()
    monkeypatch.setattr(execution.RepetitionState, "cancel", cancel)
    yield
    CANCELLED.clear()

def propose(q):
    if next(ARRIVALS) == 0:
        raise ValueError("boom")
    try:
        CANCELLED.wait(10)
        with anthropic.Anthropic(base_url=URL, api_key="sim-key", max_retries=3) as c:
            c.messages.create(model="sim-fast", max_tokens=20,
                              messages=[{"role": "user", "content": q}])
        FINISHED.append("sent")
    except BaseException as exc:
        FINISHED.append(type(exc).__name__)
        raise

async def apropose(q):
    if next(ARRIVALS) == 0:
        raise ValueError("boom")
    try:
        await asyncio.get_running_loop().run_in_executor(None, CANCELLED.wait, 10)
        async with anthropic.AsyncAnthropic(base_url=URL, api_key="sim-key", max_retries=3) as c:
            await c.messages.create(model="sim-fast", max_tokens=20,
                                    messages=[{"role": "user", "content": q}])
        FINISHED.append("sent")
    except BaseException as exc:
        FINISHED.append(type(exc).__name__)
        raise

@pytest.mark.agentpatterns(patterns="parallel(n=4)")
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_fail(agent, kind):
    global ARRIVALS
    ARRIVALS = itertools.count()
    FINISHED.clear()
    task = Task(name="t", propose=propose if kind == "sync" else apropose)
    with pytest.raises(ValueError, match="boom"):
        agent.run(task, Q)
    # agent.run returned only once every sibling was done: each had its call refused.
    assert FINISHED == ["BranchCancelled"] * 3
"""


def test_a_failed_branch_cancels_its_siblings_and_waits_for_them(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A simulator of its own: the session's may be reached by other tests' clients meanwhile.
    with Simulator(time_scale=0.0) as sim:
        monkeypatch.setenv("SIM_URL", sim.base_url)
        _cancel_and_replay(pytester, sim)


def _cancel_and_replay(pytester: pytest.Pytester, sim_env: Simulator) -> None:
    pytester.makepyfile(CANCELLING)
    requests, connections = sim_env.request_count, sim_env.connection_count
    report = pytester.path / "record.json"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=once", f"--patterns-json={report}"
    )
    result.assert_outcomes(passed=2)
    assert sim_env.request_count == requests  # the refused calls were never sent
    # The recording keeps the refusals, so replay refuses the same calls, whatever the timing.
    for path in (pytester.path / "cassettes").rglob("*.json"):
        cassette = json.loads(path.read_text())
        assert cassette["interactions"] == []
        refused = cassette["metadata"]["unanswered"]
        assert len(refused) == 3 and all(v["cancelled"] is True for v in refused.values())
    replays = set()
    for _ in range(3):
        replay = pytester.path / "replay.json"
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--patterns-record=none", f"--patterns-json={replay}"
        )
        result.assert_outcomes(passed=2)
        replays.add(replay.read_text())
    assert sim_env.connection_count == connections
    assert len(replays) == 1


STRAY = """
import contextvars, os, threading, pytest, anthropic
from pytest_agentpatterns import Task

URL = os.environ["SIM_URL"]
LATER = threading.Event()
SEEN = []
THREADS = []

def call():
    LATER.wait(10)
    try:
        with anthropic.Anthropic(base_url=URL, api_key="sim-key", max_retries=3) as c:
            c.messages.create(model="sim-fast", max_tokens=20,
                              messages=[{"role": "user", "content": "late"}])
        SEEN.append("sent")
    except BaseException as exc:
        SEEN.append(f"{type(exc).__name__}: {exc}")

def propose(q):
    # A thread the plugin does not know about, carrying the role's context: it outlives
    # the repetition.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(call,))
    thread.start()
    THREADS.append(thread)
    return q

def test_stray(agent):
    agent.run(Task(name="t", propose=propose), "q")

def test_after():
    LATER.set()
    THREADS[0].join(10)
    [seen] = SEEN
    assert seen.startswith("CallRefused: a call from repetition 0 after it had finished")
"""


def test_a_call_after_the_repetition_ended_is_refused(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makepyfile(STRAY)
    requests = sim_env.request_count
    result = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=once")
    result.assert_outcomes(passed=2)
    assert sim_env.request_count == requests


RAW_SOCKET = """
import os, socket, pytest
from pytest_agentpatterns import Task

def propose(q):
    # A connection the cassette cannot see: the socket guard must stop it.
    with socket.create_connection(("127.0.0.1", int(os.environ["SIM_PORT"])), timeout=5):
        return q

def test_raw(agent):
    agent.run(Task(name="t", propose=propose), "q")
"""


def test_replay_only_items_open_no_socket(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(RAW_SOCKET)
    # A simulator of its own: the session's may still be reached by an earlier test's clients.
    with Simulator(time_scale=0.0) as sim:
        monkeypatch.setenv("SIM_PORT", str(sim.port))
        record = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=once")
        record.assert_outcomes(passed=1)
        # While recording, the socket is allowed (the server counts it in its own thread).
        assert sim.wait_for_connections(1) == 1
        result = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=none")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                f"a network connection to 127.0.0.1:{sim.port} was refused before it was "
                "opened: cassette */test_raw[[]single[]].json replays only (record mode none), "
                "so no socket may be opened.*"
            ]
        )
        assert sim.connection_count == 1


def test_the_guard_refuses_network_sockets_only_while_active(
    sim: Simulator, tmp_path: os.PathLike[str]
) -> None:
    before = sim.connection_count
    with network.blocked("testing the guard"):
        assert network.is_blocked()
        with pytest.raises(network.NetworkBlocked, match="testing the guard"):
            socket.create_connection(("127.0.0.1", sim.port), timeout=5)
        with socket.socket() as sock, pytest.raises(network.NetworkBlocked):
            sock.connect_ex(("127.0.0.1", sim.port))
        # Unix-domain sockets are local: allowed.
        path = os.path.join(tmp_path, "s")
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(path)
            server.listen()
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(path)
    assert sim.connection_count == before
    assert not network.is_blocked()
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5):
        pass


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


FANOUT = """
import json, os, pytest, anthropic, openai
from pytest_agentpatterns import Task

URL = os.environ["SIM_URL"]
CLIENT = anthropic.Anthropic(base_url=URL, api_key="sim-key")

def propose(q):
    m = CLIENT.messages.create(model="sim-fast", max_tokens=20,
                               messages=[{"role": "user", "content": q}])
    return m.content[0].text

async def apropose(q):
    async with openai.AsyncOpenAI(base_url=URL + "/v1", api_key="sim-key") as c:
        r = await c.chat.completions.create(model="sim-fast",
                                            messages=[{"role": "user", "content": q}])
    return r.choices[0].message.content

@pytest.mark.agentpatterns(patterns="single,parallel(n=4),hybrid(n=2)", repeat=3)
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_fanout(agent, kind):
    task = Task(name=kind, propose=propose if kind == "sync" else apropose,
                verify=lambda q, o: o == "Alpha")
    agent.run(task, "What is the capital of Testland?")
"""


@pytest.mark.skipif(not _unshare_works(), reason="unshare -n is not available here")
def test_replay_runs_in_a_network_namespace_without_any_network(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makepyfile(FANOUT)
    recorded = pytester.path / "recorded.json"
    pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=once", f"--patterns-json={recorded}"
    ).assert_outcomes(passed=6)
    replayed = pytester.path / "replayed.json"
    # No network at all, not even loopback: any connection attempt would fail.
    run = subprocess.run(
        [
            "unshare",
            "-n",
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--patterns-record=none",
            f"--patterns-json={replayed}",
        ],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert "6 passed" in run.stdout

    def outcomes(path: os.PathLike[str]) -> list[tuple[str, list[str]]]:
        with open(path) as handle:
            items = json.load(handle)["items"]
        return [(i["nodeid"], [r["outcome"] for r in i["repetitions"]]) for i in items]

    assert outcomes(replayed) == outcomes(recorded)
