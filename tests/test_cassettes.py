"""Cassettes: replay by address, recorded latency, secrets, misses, files and record modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import vcr.cassette
from vcr.request import Request

from pytest_agentpatterns import cassettes
from pytest_agentpatterns.execution import Branch, Fork, Job, virtual_latency
from pytest_agentpatterns.sim import Simulator

ROLES = """
import os, random, time, json, asyncio, threading, pytest, anthropic, openai
from pytest_agentpatterns import Task
from pytest_agentpatterns.execution import run_flow

URL = os.environ["SIM_URL"]
Q = "What is the capital of Testland?"
CLIENT = anthropic.Anthropic(base_url=URL, api_key="sk-ant-test-0123456789abcdef", max_retries=2)
ACLIENT = openai.AsyncOpenAI(base_url=URL + "/v1", api_key="sk-proj-test-0123456789abcdef",
                             max_retries=2)
JITTER = random.Random(os.environ.get("JITTER_SEED"))

def propose(q):
    # Forced interleavings: branches reach the network in a different order every run.
    time.sleep(JITTER.random() * 0.01)
    m = CLIENT.messages.create(model=os.environ.get("SIM_MODEL", "sim-fast"), max_tokens=20,
                               messages=[{"role": "user", "content": q}])
    return m.content[0].text.strip()

async def apropose(q):
    await asyncio.sleep(JITTER.random() * 0.01)
    r = await ACLIENT.chat.completions.create(model="sim-fast",
                                              messages=[{"role": "user", "content": q}])
    return r.choices[0].message.content.strip()

joined = lambda outs: "|".join(outs)
SYNC = Task(name="sync", propose=propose, aggregate=joined)
ASYNC = Task(name="async", propose=apropose, aggregate=joined)

@pytest.fixture(scope="session", autouse=True)
def outputs():
    seen = {}
    yield seen
    with open(os.environ["OUT_FILE"], "w") as f:
        json.dump(seen, f, sort_keys=True)
    CLIENT.close()
    run_flow(ACLIENT.close)
"""

NO_SOCKETS = """
import socket, pytest

@pytest.fixture(autouse=True)
def no_sockets(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a socket was opened during replay")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
"""


def _run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str, *args: str, seed: int = 0
) -> tuple[pytest.RunResult, dict[str, str], str]:
    out = pytester.path / f"out-{mode}-{seed}.json"
    report = pytester.path / f"report-{mode}-{seed}.json"
    monkeypatch.setenv("OUT_FILE", str(out))
    monkeypatch.setenv("JITTER_SEED", str(seed))
    result = pytester.runpytest(
        "-p", "no:cacheprovider", f"--patterns-record={mode}", f"--patterns-json={report}", *args
    )
    outputs = json.loads(out.read_text()) if out.exists() else {}
    return result, outputs, report.read_text() if report.exists() else ""


FANOUT = """
@pytest.mark.agentpatterns(patterns="parallel(n=5)", repeat=4)
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_fanout(agent, kind, outputs):
    out = agent.run(SYNC if kind == "sync" else ASYNC, Q)
    outputs[f"{kind}-{agent.repetition}"] = out
"""


def test_concurrent_identical_calls_replay_by_address(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_env: Simulator
) -> None:
    pytester.makepyfile(ROLES + FANOUT)
    result, recorded, _ = _run(pytester, monkeypatch, "once")
    result.assert_outcomes(passed=2)
    # Five sampled answers per repetition: some repetitions differ between branches, so a
    # replay that hands responses out in arrival order would scramble them.
    assert any(len(set(v.split("|"))) > 1 for v in recorded.values())
    pytester.makeconftest(NO_SOCKETS)
    monkeypatch.setenv("SIM_URL", "http://127.0.0.1:9")
    reports = set()
    for seed in range(1, 7):
        result, replayed, report = _run(pytester, monkeypatch, "none", seed=seed)
        result.assert_outcomes(passed=2)
        assert replayed == recorded
        reports.add(report)
    assert len(reports) == 1  # byte-identical reports, run after run


def test_stock_vcrpy_scrambles_identical_requests(tmp_path: Path) -> None:
    """The trap this module beats: stock vcrpy replays identical requests in arrival order."""
    path = tmp_path / "stock.yaml"
    request = Request("POST", "http://x/v1/messages", b'{"q": 1}', {})
    with vcr.cassette.Cassette.use(path=str(path), record_mode="all") as cassette:
        for answer in ("first", "second"):
            cassette.append(
                request,
                {
                    "status": {"code": 200, "message": "OK"},
                    "headers": {},
                    "body": {"string": answer},
                },
            )
    with vcr.cassette.Cassette.use(path=str(path), record_mode="none") as cassette:
        # Whichever logical call asks first gets "first": there is no notion of which is which.
        assert cassette.play_response(request)["body"]["string"] in (b"first", "first")


def test_replay_latency_is_the_recorded_latency_composed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = {"sim-slow": {"accuracy": 1.0, "fixed_latency": 0.15}}
    with Simulator(seed=3, models=models) as server:
        monkeypatch.setenv("SIM_URL", server.base_url)
        monkeypatch.setenv("SIM_MODEL", "sim-slow")
        pytester.makepyfile(
            ROLES
            + """
CHAIN = Task(name="chain", propose=propose,
             steps=[lambda q, p: propose(q), lambda q, p: propose(q)])

@pytest.mark.agentpatterns(patterns="parallel(n=4),sequential", repeat=2)
def test_latency(agent, outputs):
    agent.run(CHAIN, Q)
"""
        )
        result, _, live = _run(pytester, monkeypatch, "once")
        result.assert_outcomes(passed=2)
    monkeypatch.setenv("SIM_URL", "http://127.0.0.1:9")
    result, _, replay = _run(pytester, monkeypatch, "none", seed=1)
    result.assert_outcomes(passed=2)

    def latencies(report: str) -> dict[str, list[float]]:
        return {
            i["pattern"]: [r["latency"] for r in i["repetitions"]]
            for i in json.loads(report)["items"]
        }

    recorded, replayed = latencies(live), latencies(replay)
    for pattern in recorded:
        for before, after in zip(recorded[pattern], replayed[pattern], strict=True):
            assert after == pytest.approx(before, rel=0.02)
    # The replayed latency is the recorded durations composed along the pattern, plus what
    # the live run spent outside calls: branches overlap (the longest counts), a chain's
    # steps add up. Read from the cassettes, so nothing here depends on the machine's load.
    for pattern, compose in (("parallel(n=4)", max), ("sequential", sum)):
        [cassette] = (pytester.path / "cassettes").rglob(f"*{pattern}*.json")
        data = json.loads(cassette.read_text())
        for rep, latency in enumerate(replayed[pattern]):
            durations = [
                i["response"]["duration"]
                for i in data["interactions"]
                if i["request"]["headers"]["x-agentpatterns-address"][0].startswith(f"r{rep}/")
            ]
            overhead = data["metadata"]["overhead"][f"r{rep}"]
            assert len(durations) == (4 if pattern.startswith("parallel") else 2)
            assert latency == pytest.approx(compose(durations) + overhead, abs=1e-5)


def test_virtual_clock_composes_forks_and_bounds() -> None:
    def job(*d: float) -> Job:
        return Job("propose", list(d))

    root = Branch(())
    root.items = [
        Fork([Branch(("a",), [job(1.0)]), Branch(("b",), [job(2.0)]), Branch(("c",), [job(3.0)])]),
        job(0.5),
    ]
    assert virtual_latency(root) == 3.5
    # Two slots: a and b start at once; c waits for a (t=1) and ends at 4; then 0.5 more.
    assert virtual_latency(root, 2) == 4.5
    assert virtual_latency(root, 1) == 6.5
    nested = Branch((), [Fork([Branch(("x",), [job(1.0), Fork([Branch(("y",), [job(2.0)])])])])])
    assert virtual_latency(nested) == 3.0


def test_lookup_never_scans_interactions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.json"
    cassette = cassettes.PatternCassette(str(path), record_mode="all", rewrite=True)
    for i in range(2000):
        req = Request(
            "POST",
            "http://h/v1/messages",
            json.dumps({"i": i}).encode(),
            {cassettes.ADDRESS_HEADER: f"r{i}/main/propose#0"},
        )
        cassette.append(
            req,
            {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": str(i)}},
        )
    cassette.record_mode = vcr.record_mode.RecordMode.NONE
    cassette.rewound = True

    def no_scan(*args: object) -> bool:
        raise AssertionError("vcrpy's linear matcher was used")

    monkeypatch.setattr(vcr.cassette, "requests_match", no_scan)
    wanted = Request(
        "POST",
        "http://other-host:1/v1/messages",
        b'{"i": 1234}',
        {cassettes.ADDRESS_HEADER: "r1234/main/propose#0"},
    )
    assert cassette.can_play_response_for(wanted)
    assert cassette.play_response(wanted)["body"]["string"] == "1234"


def test_secrets_never_reach_disk(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_env: Simulator
) -> None:
    pytester.makepyfile(
        ROLES
        + """
import httpx2
KEY = "sim-secret-value-424242"

def leaky(q):
    with openai.OpenAI(base_url=URL + "/v1", api_key=KEY, organization="org-secret-777",
                       project="proj-secret-888", default_query={"key": "query-secret-999"}) as c:
        r = c.chat.completions.create(model="sim-fast", user=KEY,
                                      messages=[{"role": "user", "content": q + " " + KEY}],
                                      extra_headers={"cookie": "session=cookie-secret-555"})
    return r.choices[0].message.content

def test_leaky(agent, outputs):
    agent.run(Task(name="leaky", propose=leaky), Q)
"""
    )
    result, _, _ = _run(pytester, monkeypatch, "once")
    result.assert_outcomes(passed=1)
    [path] = (pytester.path / "cassettes").rglob("*.json")
    text = path.read_text()
    for secret in (
        "sim-secret-value-424242",
        "org-secret-777",
        "proj-secret-888",
        "query-secret-999",
        "cookie-secret-555",
        "Bearer",
    ):
        assert secret not in text
    assert "<redacted>" in text
    # Replay still matches: the scrubbed request is what is indexed.
    monkeypatch.setenv("SIM_URL", "http://127.0.0.1:9")
    pytester.makeconftest(NO_SOCKETS)
    _run(pytester, monkeypatch, "none", seed=1)[0].assert_outcomes(passed=1)


def test_key_shapes_are_refused_and_nothing_is_written(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_env: Simulator
) -> None:
    pytester.makepyfile(
        ROLES
        + """
def test_shape(agent, outputs):
    # A key-shaped string that is not this run's key: only the final scan can catch it.
    agent.run(SYNC, Q + " sk-ant-api03-abcdefghijklmnop")
"""
    )
    result, _, report = _run(pytester, monkeypatch, "once")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*refused to write cassette*shaped like a secret (sk-ant-api03*"])
    assert not list((pytester.path / "cassettes").rglob("*.json"))
    # The item ran: it is in the report, marked.
    [item] = json.loads(report)["items"]
    assert item["cassette_error"].startswith("refused to write cassette")
    assert [r["outcome"] for r in item["repetitions"]] in (["correct"], ["incorrect"])


def test_replay_miss_fails_at_once_with_address_and_option(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_env: Simulator
) -> None:
    pytester.makepyfile(ROLES + "def test_one(agent, outputs):\n    agent.run(SYNC, Q)\n")
    before = sim_env.request_count
    result, _, _ = _run(pytester, monkeypatch, "none")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*no recording for call r0/main/propose#0 in cassette *cassettes/test_replay_miss*"
            "/test_one[[]single[]].json (record mode none).",
            "*There is no such file: this item was never recorded.*",
            "*--patterns-record=new_episodes*",
        ]
    )
    assert "Connection error" not in result.stdout.str()
    assert sim_env.request_count == before  # no retry reached the network


def test_changed_request_says_what_differed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_env: Simulator
) -> None:
    pytester.makepyfile(ROLES + "def test_one(agent, outputs):\n    agent.run(SYNC, Q)\n")
    _run(pytester, monkeypatch, "once")[0].assert_outcomes(passed=1)
    pytester.makepyfile(ROLES + "def test_one(agent, outputs):\n    agent.run(SYNC, 'Other?')\n")
    result, _, _ = _run(pytester, monkeypatch, "none", seed=1)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*The request changed since it was recorded: body.messages[[]0[]].content: recorded*"]
    )


def test_record_modes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_env: Simulator
) -> None:
    pytester.makepyfile(
        ROLES
        + """
@pytest.mark.agentpatterns(repeat=int(os.environ.get("REPEAT", "1")))
def test_one(agent, outputs):
    agent.run(SYNC, Q)
"""
    )

    def calls() -> list[str]:
        [path] = (pytester.path / "cassettes").rglob("*.json")
        data = json.loads(path.read_text())
        return [i["request"]["headers"][cassettes.ADDRESS_HEADER][0] for i in data["interactions"]]

    _run(pytester, monkeypatch, "once")[0].assert_outcomes(passed=1)
    assert calls() == ["r0/main/propose#0"]
    monkeypatch.setenv("REPEAT", "2")
    # once: an existing cassette is not added to.
    result = _run(pytester, monkeypatch, "once", seed=1)[0]
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no recording for call r1/main/propose#0*(record mode once)*"])
    # new_episodes: adds the missing call, keeps the old one.
    _run(pytester, monkeypatch, "new_episodes", seed=2)[0].assert_outcomes(passed=1)
    assert calls() == ["r0/main/propose#0", "r1/main/propose#0"]
    # rewrite: records the item anew and drops what is no longer made.
    monkeypatch.setenv("REPEAT", "1")
    _run(pytester, monkeypatch, "rewrite", seed=3)[0].assert_outcomes(passed=1)
    assert calls() == ["r0/main/propose#0"]
    # all: re-records every call it makes, keeping others.
    monkeypatch.setenv("REPEAT", "2")
    _run(pytester, monkeypatch, "new_episodes", seed=4)[0].assert_outcomes(passed=1)
    monkeypatch.setenv("REPEAT", "1")
    _run(pytester, monkeypatch, "all", seed=5)[0].assert_outcomes(passed=1)
    assert calls() == ["r0/main/propose#0", "r1/main/propose#0"]


def test_ci_environment_defaults_to_replay_only(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_env: Simulator
) -> None:
    pytester.makepyfile(ROLES + "def test_one(agent, outputs):\n    agent.run(SYNC, Q)\n")
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("OUT_FILE", str(pytester.path / "o.json"))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*(record mode none)*"])
    monkeypatch.delenv("CI")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_unreadable_cassette_is_an_error_not_a_rerecord(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_env: Simulator
) -> None:
    pytester.makepyfile(ROLES + "def test_one(agent, outputs):\n    agent.run(SYNC, Q)\n")
    path = pytester.path / "cassettes" / "test_unreadable_cassette_is_an_error_not_a_rerecord"
    path.mkdir(parents=True)
    broken = path / "test_one[single].json"
    broken.write_text('{"version": 1, "interactions": [')
    result, _, _ = _run(pytester, monkeypatch, "once")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*cassette */test_one[[]single[]].json is unreadable (JSONDecodeError*left untouched*"]
    )
    assert broken.read_text() == '{"version": 1, "interactions": ['


def test_atomic_write_leaves_old_cassette_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.json"
    path.write_text("old")

    def explode(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("pytest_agentpatterns.atomic.os.replace", explode)
    with pytest.raises(KeyboardInterrupt):
        cassettes.Persister.save_cassette(
            path, {"requests": [], "responses": []}, serializer=cassettes.CompactJson
        )
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def test_cassette_named_after_node_id() -> None:
    path = cassettes.cassette_path(Path("/t/cassettes"), "test_mod", "test_x[a/b-parallel(n=5)]")
    assert path == Path("/t/cassettes/test_mod/test_x[a_b-parallel(n=5)].json")


STREAMING = """
import json, os, threading, time, asyncio, pytest, anthropic
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pytest_agentpatterns import Task

FIRST_SEEN = threading.Event()
SERVER = {}

def event(kind, **data):
    return f"event: {kind}\\ndata: {json.dumps({'type': kind, **data})}\\n\\n".encode()

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        usage = {"input_tokens": 10, "output_tokens": 1}
        message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "sim-fast",
                   "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
        self.wfile.write(event("message_start", message=message))
        self.wfile.write(event("content_block_start", index=0,
                               content_block={"type": "text", "text": ""}))
        self.wfile.write(event("content_block_delta", index=0,
                               delta={"type": "text_delta", "text": "Al"}))
        self.wfile.flush()
        started = time.perf_counter()
        # The rest of the stream waits until the caller has seen the first event (or gives
        # up after a while: a recorder that buffers the whole stream would wait forever).
        SERVER["first_seen_before_last"] = FIRST_SEEN.wait(10)
        self.wfile.write(event("content_block_delta", index=0,
                               delta={"type": "text_delta", "text": "pha"}))
        self.wfile.write(event("content_block_stop", index=0))
        self.wfile.write(event("message_delta", delta={"stop_reason": "end_turn",
                                                       "stop_sequence": None},
                               usage={"output_tokens": 2}))
        self.wfile.write(event("message_stop"))
        SERVER["held"] = time.perf_counter() - started

    def log_message(self, *args):
        pass

@pytest.fixture(scope="module")
def url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()

def sync_stream(url):
    with anthropic.Anthropic(base_url=url, api_key="sim-key", max_retries=0) as c:
        with c.messages.stream(model="sim-fast", max_tokens=20,
                               messages=[{"role": "user", "content": "Capital?"}]) as s:
            text = ""
            for piece in s.text_stream:
                FIRST_SEEN.set()
                text += piece
    return text

async def async_stream(url):
    async with anthropic.AsyncAnthropic(base_url=url, api_key="sim-key", max_retries=0) as c:
        async with c.messages.stream(model="sim-fast", max_tokens=20,
                                     messages=[{"role": "user", "content": "Capital?"}]) as s:
            text = ""
            async for piece in s.text_stream:
                FIRST_SEEN.set()
                text += piece
    return text

@pytest.mark.parametrize("kind", ["sync", "async"])
def test_stream(agent, url, kind):
    FIRST_SEEN.clear()
    SERVER.clear()
    propose = sync_stream if kind == "sync" else async_stream
    assert agent.run(Task(name="s", propose=propose), url) == "Alpha"
    if SERVER:
        with open(os.environ["OUT_FILE"] + kind, "w") as f:
            json.dump(SERVER, f)
"""


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_streams_pass_through_while_recording(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    pytester.makepyfile(STREAMING)
    out = pytester.path / "server-"
    monkeypatch.setenv("OUT_FILE", str(out))
    report = pytester.path / "record.json"
    only = "async" if kind == "async" else "not async"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=once", f"--patterns-json={report}", "-k", only
    )
    result.assert_outcomes(passed=1)
    server = json.loads((pytester.path / f"server-{kind}").read_text())
    # The caller saw the first event while the server still held back the last one.
    assert server["first_seen_before_last"] is True
    [path] = (pytester.path / "cassettes").rglob(f"*{kind}*.json")
    [interaction] = json.loads(path.read_text())["interactions"]
    body = interaction["response"]["body"]["string"]
    # The cassette still keeps the whole stream, and the whole call's duration.
    assert body.count("event: ") == 7 and body.endswith('{"type": "message_stop"}\n\n')
    assert interaction["response"]["duration"] >= server["held"]
    [call] = json.loads(report.read_text())["items"][0]["repetitions"][0]["calls"]
    assert (call["input_tokens"], call["output_tokens"], call["status"]) == (10, 2, 200)
    (pytester.path / f"server-{kind}").unlink()
    replay = pytester.path / "replay.json"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=none", f"--patterns-json={replay}", "-k", only
    )
    result.assert_outcomes(passed=1)
    assert not (pytester.path / f"server-{kind}").exists()  # replayed: the server saw nothing
    [replayed] = json.loads(replay.read_text())["items"][0]["repetitions"][0]["calls"]
    assert replayed["duration"] == interaction["response"]["duration"]
    assert (replayed["input_tokens"], replayed["output_tokens"]) == (10, 2)


def test_unanswered_calls_in_a_cassette_are_checked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_env: Simulator
) -> None:
    pytester.makepyfile(ROLES + "def test_one(agent, outputs):\n    agent.run(SYNC, Q)\n")
    path = pytester.path / "cassettes" / "test_unanswered_calls_in_a_cassette_are_checked"
    path.mkdir(parents=True)
    broken = path / "test_one[single].json"
    text = json.dumps(
        {"version": 1, "interactions": [], "metadata": {"unanswered": {"r0/main/propose#0": 1}}}
    )
    broken.write_text(text)
    result, _, _ = _run(pytester, monkeypatch, "once")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cassette */test_one[[]single[]].json is malformed: metadata*"])
    assert broken.read_text() == text


def test_a_call_that_got_no_answer_is_replaced_when_it_is_recorded_again(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_env: Simulator
) -> None:
    pytester.makepyfile(
        ROLES.replace("max_retries=2", "max_retries=0")
        + """
@pytest.mark.agentpatterns(repeat=2)
def test_one(agent, outputs):
    agent.run(SYNC, os.environ.get("QUESTION", Q))
"""
    )
    monkeypatch.setenv("SIM_URL", "http://127.0.0.1:9")  # nothing listens: no answer
    result, _, _ = _run(pytester, monkeypatch, "once")
    result.assert_outcomes(failed=1)
    [path] = (pytester.path / "cassettes").rglob("*.json")
    data = json.loads(path.read_text())
    assert data["interactions"] == []
    assert sorted(data["metadata"]["unanswered"]) == ["r0/main/propose#0", "r1/main/propose#0"]
    assert data["metadata"]["unanswered"]["r0/main/propose#0"]["error"]["type"] == "ConnectError"
    # Replayed, the same error, at once, with no server.
    result, _, report = _run(pytester, monkeypatch, "none", seed=1)
    result.assert_outcomes(failed=1)
    calls = [c for r in json.loads(report)["items"][0]["repetitions"] for c in r["calls"]]
    assert [(c["status"], c["cost"], c["error"].split(":")[0]) for c in calls] == [
        (None, 0.0, "ConnectError")
    ] * 2
    # A changed request does not replay a failure recorded for another one.
    monkeypatch.setenv("QUESTION", "Another question?")
    result = _run(pytester, monkeypatch, "none", seed=3)[0]
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*The request changed since it was recorded (it got no answer*"])
    monkeypatch.delenv("QUESTION")
    # Recorded again against a server that answers: the answers replace the failures.
    monkeypatch.setenv("SIM_URL", sim_env.base_url)
    _run(pytester, monkeypatch, "all", seed=2)[0].assert_outcomes(passed=1)
    data = json.loads(path.read_text())
    assert "unanswered" not in data["metadata"]
    assert len(data["interactions"]) == 2


@pytest.mark.parametrize("keep", [False, True], ids=["dropped", "kept-open"])
def test_a_stream_left_before_its_end_is_recorded_and_replays(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_env: Simulator, keep: bool
) -> None:
    monkeypatch.setenv("KEEP", "1" if keep else "")
    pytester.makepyfile(
        ROLES
        + """
KEPT = []

def first_words(q):
    # Reads the first text event and walks away without closing the stream: dropped (the
    # SDK closes the response when its iterator goes), or kept open to the end of the run.
    stream = CLIENT.messages.create(model="sim-fast", max_tokens=20, stream=True,
                                    messages=[{"role": "user", "content": q}])
    if os.environ["KEEP"]:
        KEPT.append(stream)
    for event in stream:
        if event.type == "content_block_delta":
            return event.delta.text

@pytest.mark.agentpatterns(repeat=2)
def test_abandon(agent, outputs):
    outputs[str(agent.repetition)] = agent.run(Task(name="t", propose=first_words), Q)
"""
    )
    result, recorded, live = _run(pytester, monkeypatch, "once")
    result.assert_outcomes(passed=1)
    [path] = (pytester.path / "cassettes").rglob("*.json")
    interactions = json.loads(path.read_text())["interactions"]
    assert [i["request"]["headers"][cassettes.ADDRESS_HEADER][0] for i in interactions] == [
        "r0/main/propose#0",
        "r1/main/propose#0",
    ]
    monkeypatch.setenv("SIM_URL", "http://127.0.0.1:9")
    result, replayed, replay = _run(pytester, monkeypatch, "none", seed=1)
    result.assert_outcomes(passed=1)
    assert replayed == recorded

    def calls(report: str) -> list[tuple[str, str | None, int | None]]:
        reps = json.loads(report)["items"][0]["repetitions"]
        return [(c["address"], c["error"], c["output_tokens"]) for r in reps for c in r["calls"]]

    # What the caller read, and the usage it carried, is the same recorded or replayed.
    assert calls(replay) == calls(live)
    if keep:
        # Never read to its end nor closed: the usage is unknown.
        assert {error for _, error, _ in calls(live)} == {"stream not read to its end"}
