"""Secrets never reach disk or the terminal: planted credentials of every kind, recorded
through the real SDKs against the simulator; the scrubber's rules and properties; the scan."""

from __future__ import annotations

import base64
import fnmatch
import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_agentpatterns.scrub import (
    KEY_SHAPE_KINDS,
    REDACTED,
    KeyShape,
    Scrubber,
    ScrubRules,
    find_key_shape,
    find_key_shape_in_body,
    public_url,
    split_entries,
)
from pytest_agentpatterns.sim import Simulator

# One value per kind of planted secret, each sent the way its kind says and echoed back by the
# simulator, which answers "(simulated reply) <prompt>" to a prompt it does not know.
PLANTED = {
    "x-api-key header": "sk-ant-api03-PLANTEDheaderKey0001xyzw",
    "bearer token": "sk-proj-PLANTEDbearer0002abcdefgh",
    "custom header token": "cust-PLANTED-0003-token",
    "unlisted header": "ref-PLANTED-0004-client",
    "?key= value": "qkey/PLANTED+0005==",
    "unlisted ?code=": "oauthcode-PLANTED-0006",
    "userinfo user": "user-PLANTED-0007",
    "userinfo password": "pw-PLANTED-0008-secret",
    "key split across anthropic deltas": "sk-ant-api03-PLANTEDstream0009abc",
    "key split across chat deltas": "chat-PLANTED-0010-streamkey",
    "key split across responses deltas": "resp-PLANTED-0011-streamkey",
    "configured body field": "uid-PLANTED-0012-userref",
    "configured regex": "tenant-PLANTED-0013",
    "cookie": "cookie-PLANTED-0014-session",
    "organization header": "org-PLANTED-0015-acme",
    "quoted header token": 'quo"te-PLANTED-0016',
}

ECHO = """
import json, os, anthropic, httpx2, openai, pytest
from pytest_agentpatterns import Task

URL = os.environ["SIM_URL"]
S = json.loads(os.environ["PLANTED"])
LIVE = os.environ["LIVE"] == "1"


def echoed(answer, secret):
    # Live, the simulator echoed the secret; replayed, the cassette holds <redacted> instead.
    assert (secret in answer) if LIVE else (secret not in answer and "<redacted>" in answer)


def calls(_):
    with anthropic.Anthropic(base_url=URL, api_key=S["x-api-key header"],
                             default_headers={"x-custom-token": S["custom header token"],
                                              "x-client-ref": S["unlisted header"],
                                              "cookie": "session=" + S["cookie"],
                                              "x-quote": S["quoted header token"]}) as c:
        for kind in ("x-api-key header", "custom header token", "unlisted header", "cookie",
                     "quoted header token"):
            m = c.messages.create(model="sim-fast", max_tokens=100,
                                  messages=[{"role": "user", "content": "echo " + S[kind]}])
            echoed(m.content[0].text, S[kind])
        m = c.messages.create(model="sim-fast", max_tokens=100,
                              metadata={"user_id": S["configured body field"]},
                              messages=[{"role": "user",
                                         "content": "echo " + S["configured body field"]}])
        echoed(m.content[0].text, S["configured body field"])
        m = c.messages.create(model="sim-fast", max_tokens=100,
                              messages=[{"role": "user",
                                         "content": "echo " + S["configured regex"]}])
        echoed(m.content[0].text, S["configured regex"])
    streamed = S["key split across anthropic deltas"]
    with anthropic.Anthropic(base_url=URL, api_key=streamed) as c:
        with c.messages.stream(model="sim-fast", max_tokens=100,
                               messages=[{"role": "user", "content": "echo " + streamed}]) as s:
            echoed(s.get_final_text(), streamed)
    with openai.OpenAI(base_url=URL + "/v1", api_key=S["bearer token"],
                       organization=S["organization header"],
                       default_query={"key": S["?key= value"], "code": S["unlisted ?code="],
                                      "api-version": "2024-06-01"}) as c:
        for kind in ("bearer token", "?key= value", "unlisted ?code=", "organization header"):
            r = c.chat.completions.create(model="sim-fast",
                                          messages=[{"role": "user", "content": "echo " + S[kind]}])
            echoed(r.choices[0].message.content, S[kind])
    streamed = S["key split across chat deltas"]
    with openai.OpenAI(base_url=URL + "/v1", api_key=streamed) as c:
        chunks = c.chat.completions.create(model="sim-fast", stream=True,
                                           messages=[{"role": "user", "content": "echo " + streamed}])
        deltas = [k.choices[0].delta.content or "" for k in chunks if k.choices]
        assert len(deltas) > 3
        echoed("".join(deltas), streamed)
        regex = S["configured regex"]
        chunks = c.chat.completions.create(model="sim-fast", stream=True,
                                           messages=[{"role": "user", "content": "echo " + regex}])
        echoed("".join(k.choices[0].delta.content or "" for k in chunks if k.choices), regex)
    streamed = S["key split across responses deltas"]
    with openai.OpenAI(base_url=URL + "/v1", api_key=streamed) as c:
        events = c.responses.create(model="sim-fast", input="echo " + streamed, stream=True)
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        echoed(text, streamed)
    user, password = S["userinfo user"], S["userinfo password"]
    base = URL.replace("http://", f"http://{user}:{password}@")
    with openai.OpenAI(base_url=base + "/v1", api_key="sim-key", max_retries=0) as c:
        # httpx sends the userinfo as Basic credentials, which the simulator refuses: a 401
        # whose body says "...in the Authorization: Bearer header." is recorded like any answer.
        with pytest.raises(openai.AuthenticationError, match="Bearer header"):
            c.chat.completions.create(model="sim-fast",
                                      messages=[{"role": "user", "content": "echo " + password}])
    return "done"


def test_planted(agent):
    assert agent.run(Task(name="planted", propose=calls), None) == "done"
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

# What the user adds: a body field name from the ini, a pattern from the command line.
SCRUB_INI = "[pytest]\nagentpatterns_scrub = user_id\n"
SCRUB_CLI = r"--patterns-scrub=re:tenant-PLANTED-\d+"


def _leaks(root: Path, output: str) -> list[str]:
    """Every (kind, place) where a planted secret, or any 8 characters of one, was found in a
    file the run wrote (not the test module or ini the test wrote) or in the terminal."""
    written = [p for p in root.rglob("*") if p.is_file() and p.suffix not in (".py", ".ini")]
    places = {str(p.relative_to(root)): p.read_text("utf-8", "replace") for p in written}
    places["terminal"] = output
    found = []
    for kind, secret in PLANTED.items():
        needles = {secret[i : i + 8] for i in range(len(secret) - 7)}
        needles.add(json.dumps(secret)[1:-1])
        for place, text in places.items():
            hits = sorted(n for n in needles if n in text)
            found += [f"{kind} in {place}: {hits}"] if hits else []
    return found


def _run(pytester: pytest.Pytester, live: bool, *args: str) -> pytest.RunResult:
    out = pytester.path / "out"
    out.mkdir(exist_ok=True)
    mode = "once" if live else "none"
    return pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "-rA",
        f"--patterns-record={mode}",
        f"--patterns-json={out / 'report.json'}",
        f"--patterns-trace={out / 'trace.jsonl'}",
        f"--patterns-markdown={out / 'summary.md'}",
        f"--patterns-html={out / 'report.html'}",
        SCRUB_CLI,
        *args,
    )


def test_planted_secrets_never_reach_a_file_or_the_terminal(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_env: Simulator
) -> None:
    monkeypatch.setenv("PLANTED", json.dumps(PLANTED))
    monkeypatch.setenv("LIVE", "1")
    pytester.makeini(SCRUB_INI)
    pytester.makepyfile(ECHO)
    before = sim_env.request_count
    result = _run(pytester, True)
    result.assert_outcomes(passed=1)
    assert sim_env.request_count - before == 16
    output = result.stdout.str() + result.stderr.str()
    assert _leaks(pytester.path, output) == []
    [cassette] = (pytester.path / "cassettes").rglob("*.json")
    text = cassette.read_text()
    assert text.count(REDACTED) >= 16
    # The reviewer still reads the call: paths, the harmless api-version, the 401's prose.
    assert "/v1/chat/completions?key=<redacted>&code=<redacted>&api-version=2024-06-01" in text
    assert "http://<redacted>@127.0.0.1" in text
    assert "Missing API key: send any non-empty key in the Authorization: Bearer header." in text
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    urls = {c["url"] for i in report["items"] for r in i["repetitions"] for c in r["calls"]}
    assert all("@" not in url and "?" not in url for url in urls), urls

    # Offline replay with the same code: every call is found, no socket is opened, and the
    # code sees <redacted> where the secrets were, in plain and in streamed answers alike.
    monkeypatch.setenv("LIVE", "0")
    monkeypatch.setenv("SIM_URL", "http://127.0.0.1:9")
    pytester.makeconftest(NO_SOCKETS)
    replay = _run(pytester, False)
    replay.assert_outcomes(passed=1)
    assert _leaks(pytester.path, replay.stdout.str() + replay.stderr.str()) == []


LATER = """
import os, anthropic
from pytest_agentpatterns import Task

URL = os.environ["SIM_URL"]
LATE = os.environ["LATE"]

calls = []

def echo(_):
    calls.append(1)
    # Repetition 0 only says the value; repetition 1 sends it as a credential.
    headers = {"x-late-token": LATE} if len(calls) == 2 else {}
    with anthropic.Anthropic(base_url=URL, api_key="sim-key", default_headers=headers) as c:
        m = c.messages.create(model="sim-fast", max_tokens=100,
                              messages=[{"role": "user", "content": "echo " + LATE}])
    return m.content[0].text

def test_late(agent):
    assert LATE in agent.run(Task(name="late", propose=echo), None)
"""


def test_a_secret_first_sent_in_a_later_repetition_is_scrubbed_from_earlier_ones(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_env: Simulator
) -> None:
    late = "late-PLANTED-token-4242"
    monkeypatch.setenv("LATE", late)
    pytester.makepyfile(LATER)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=once", "--patterns-repeat=2"
    )
    result.assert_outcomes(passed=1)
    [cassette] = (pytester.path / "cassettes").rglob("*.json")
    interactions = json.loads(cassette.read_text())["interactions"]
    assert len(interactions) == 2
    assert late not in cassette.read_text()
    for interaction in interactions:
        assert "echo <redacted>" in interaction["request"]["body"]
        assert "echo <redacted>" in interaction["response"]["body"]["string"]


@pytest.mark.parametrize(
    "client",
    [
        'anthropic.Anthropic(base_url=URL.replace("http://", "http://u:p@"), api_key="sim-key",'
        " max_retries=0)",
        'openai.OpenAI(base_url=URL + "/v1", api_key="sim-key", max_retries=0,\n'
        '    default_headers={"authorization": "Token nope"})',
    ],
    ids=["anthropic", "openai"],
)
def test_a_401_is_recorded_and_replayed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_env: Simulator, client: str
) -> None:
    pytester.makepyfile(
        f"""
import os, anthropic, openai, pytest
from pytest_agentpatterns import Task
URL = os.environ["SIM_URL"]

def call(_):
    with {client} as c:
        try:
            if isinstance(c, anthropic.Anthropic):
                c.messages.create(model="sim-fast", max_tokens=5,
                                  messages=[{{"role": "user", "content": "hi"}}])
            else:
                c.chat.completions.create(model="sim-fast",
                                          messages=[{{"role": "user", "content": "hi"}}])
        except (anthropic.AuthenticationError, openai.AuthenticationError) as exc:
            return exc.status_code
    return None

def test_401(agent):
    assert agent.run(Task(name="denied", propose=call), None) == 401
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=once")
    result.assert_outcomes(passed=1)
    [cassette] = (pytester.path / "cassettes").rglob("*.json")
    text = cassette.read_text()
    assert "Missing API key" in text and '"code": 401' in text
    monkeypatch.setenv("SIM_URL", "http://127.0.0.1:9")
    pytester.makeconftest(NO_SOCKETS)
    replay = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=none")
    replay.assert_outcomes(passed=1)


# The scrubber as a plain module.


def test_learns_what_was_sent_as_a_credential() -> None:
    scrubber = Scrubber(ScrubRules.parse(["user_ref"]))
    scrubber.learn_request(
        "http://alice:hunter22@h/v1/x?key=k%2Fy%2Bz%3D00&code=code-7777&api-version=2024-06-01",
        {
            "authorization": "Bearer bearer-1111",
            "x-api-key": "xkey-2222",
            "x-anything": "custom-3333",
            "cookie": "a=cookie-4444; b=cookie-5555",
            "proxy-authorization": "Basic " + base64.b64encode(b"proxyuser:proxy-6666").decode(),
            "user-agent": "OpenAI/Python 3.0.0",
            "x-stainless-os": "Linux-Generic",
            "content-type": "application/json",
        },
        b'{"metadata": {"user_ref": "ref-8888"}, "api_key": "body-9999", '
        b'"schema": {"password": {"type": "string"}}, "max_tokens": 100}',
    )
    scrubber.learn_headers(
        {
            "set-cookie": "sid=session-1234; Path=/; HttpOnly",
            "x-session-token": "handed-out-4321",
            "anthropic-ratelimit-tokens-remaining": "100000",
            "request-id": "req_0123456789",
        },
        response=True,
    )
    learned = scrubber.secrets
    for value in (
        "hunter22",
        "alice:hunter22",
        "k/y+z=00",
        "code-7777",
        "bearer-1111",
        "xkey-2222",
        "custom-3333",
        "cookie-4444",
        "cookie-5555",
        "proxy-6666",
        "proxyuser",
        "ref-8888",
        "body-9999",
        "session-1234",
        "handed-out-4321",
    ):
        assert value in learned, value
    # Harmless headers and query values, short values and schemas are not credentials.
    assert learned.isdisjoint(
        {"2024-06-01", "OpenAI/Python 3.0.0", "Linux-Generic", "application/json", "alice"}
        | {"100000", "req_0123456789"}
    )
    assert not any("string" in value for value in learned)


def test_urls_keep_what_a_reviewer_needs() -> None:
    scrubber = Scrubber()
    url = "https://u:pw-123456@api.example.com/v1/chat?api-version=2024-06-01&sig=s1g-abcdef&x="
    scrubber.learn_url(url)
    assert scrubber.scrub_url(url) == (
        "https://<redacted>@api.example.com/v1/chat?api-version=2024-06-01&sig=<redacted>&x="
    )
    assert scrubber.scrub_url("http://h/v1/messages") == "http://h/v1/messages"
    assert scrubber.scrub_url("http://h/files/pw-123456/x?q") == "http://h/files/<redacted>/x?q"
    assert public_url(url) == "https://api.example.com/v1/chat"


def test_json_bodies_are_scrubbed_structurally() -> None:
    scrubber = Scrubber(ScrubRules.parse(["session_ref", r"re:tick-\d{4}"]))
    scrubber.learn('quo"te-secret')
    scrubber.learn("1234567")
    body = json.dumps(
        {
            "messages": [{"content": 'say quo"te-secret and tick-1234'}],
            "metadata": {"sessionRef": "whatever", "password": 123456},
            "usage": {"input_tokens": 10, "output_tokens": 41234567},
            "pin": 1234567,
        },
        ensure_ascii=True,
    ).encode()
    scrubbed = json.loads(scrubber.scrub_body(body))
    assert scrubbed == {
        "messages": [{"content": "say <redacted> and <redacted>"}],
        "metadata": {"sessionRef": REDACTED, "password": REDACTED},
        "usage": {"input_tokens": 10, "output_tokens": 41234567},
        "pin": REDACTED,
    }
    untouched = b'{"a": 1,  "b": "plain"}'
    assert scrubber.scrub_body(untouched) is untouched


def test_form_bodies_follow_the_query_rule() -> None:
    scrubber = Scrubber()
    body = "grant_type=authorization_code&code=oc-0123456789&client_id=app&code_verifier=v-98765"
    scrubber.learn_body(body)
    assert {"oc-0123456789", "v-98765"} <= scrubber.secrets
    assert scrubber.scrub_body(body) == (
        "grant_type=authorization_code&code=<redacted>&client_id=app&code_verifier=<redacted>"
    )
    assert scrubber.scrub_body('{"echo": "oc-0123456789"}') == '{"echo":"<redacted>"}'


def _anthropic(pieces: list[str]) -> str:
    events: list[tuple[str, dict[str, object]]] = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_x"}})
    ]
    events += [
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
        )
        for p in pieces
    ]
    events.append(("message_stop", {"type": "message_stop"}))
    return "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events)


def _chat(pieces: list[str]) -> str:
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    chunks += [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def _responses(pieces: list[str]) -> str:
    where = {"item_id": "msg_x", "output_index": 0, "content_index": 0}
    events = [
        {"type": "response.output_text.delta", "delta": p, "logprobs": [], **where} for p in pieces
    ]
    events.append({"type": "response.output_text.done", "text": "".join(pieces), **where})
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


def _pieces(body: str) -> list[str]:
    """The streamed text pieces of a body in any of the three formats, as a client reads them."""
    pieces = []
    for line in body.split("\n"):
        if not line.startswith("data: {"):
            continue
        event = json.loads(line[6:])
        if event.get("type") == "content_block_delta":
            pieces.append(event["delta"]["text"])
        elif event.get("type") == "response.output_text.delta":
            pieces.append(event["delta"])
        elif "choices" in event and "role" not in event["choices"][0]["delta"]:
            pieces.append(event["choices"][0]["delta"]["content"])
    return pieces


Build = Callable[[list[str]], str]
FORMATS: list[Build] = [_anthropic, _chat, _responses]


@pytest.mark.parametrize("build", FORMATS, ids=["anthropic", "chat", "responses"])
def test_a_secret_split_across_deltas_is_redacted_in_every_delta(build: Build) -> None:
    scrubber = Scrubber()
    scrubber.learn("SECRET-0123456789")
    body = build(["say SE", "CR", "ET-01234", "56789 ok"]).encode()
    scrubbed = scrubber.scrub_body(body).decode()
    assert _pieces(scrubbed) == ["say <redacted>", "", "", " ok"]
    assert "SE" not in scrubbed and "0123" not in scrubbed
    assert scrubber.scrub_body(scrubbed) == scrubbed


SECRET_CHARS = st.characters(codec="ascii", categories=("Lu", "Nd"))
OTHER_TEXT = st.text(st.sampled_from('abc xyz."\\é\n<>{}'), max_size=30)


@settings(max_examples=150, deadline=None)
@given(
    secret=st.text(SECRET_CHARS, min_size=6, max_size=40),
    before=OTHER_TEXT,
    after=OTHER_TEXT,
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=12),
    build=st.sampled_from(FORMATS),
)
def test_any_split_of_a_secret_is_redacted_in_every_delta(
    secret: str, before: str, after: str, cuts: list[int], build: Build
) -> None:
    text = before + secret + after
    points = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    pieces = [text[a:b] for a, b in itertools.pairwise(points)]
    scrubber = Scrubber()
    scrubber.learn(secret)
    body = build(pieces)
    scrubbed = scrubber.scrub_body(body)
    out = _pieces(scrubbed)
    assert "".join(out) == before + REDACTED + after
    # No delta keeps any character of the secret (the surrounding text has none of them).
    assert not any(ch in piece for piece in out for ch in set(secret))
    assert secret not in scrubbed
    assert scrubber.scrub_body(scrubbed) == scrubbed


TEXT_CHARS = st.characters(codec="utf-8", exclude_categories=["Cs"])


@settings(max_examples=200, deadline=None)
@given(
    secrets=st.lists(
        st.text(st.characters(codec="ascii", exclude_characters="<"), min_size=6, max_size=12),
        min_size=1,
        max_size=4,
    ),
    parts=st.lists(st.one_of(st.text(TEXT_CHARS, max_size=15), st.integers(0, 3)), max_size=10),
)
def test_scrubbing_is_idempotent_and_leaves_no_secret(
    secrets: list[str], parts: list[str | int]
) -> None:
    scrubber = Scrubber(ScrubRules.parse([r"re:tick-\d+"]))
    for secret in secrets:
        scrubber.learn(secret)
    learned = [s.strip() for s in secrets if len(s.strip()) >= 6]
    text = "".join(p if isinstance(p, str) else secrets[p % len(secrets)] for p in parts)
    once = scrubber.scrub_text(text)
    assert scrubber.scrub_text(once) == once
    assert not any(secret in once for secret in learned)
    sse = _chat(list(parts_text for parts_text in (text[:5], text[5:9], text[9:])))
    scrubbed = scrubber.scrub_body(sse)
    assert scrubber.scrub_body(scrubbed) == scrubbed
    assert not any(secret in "".join(_pieces(scrubbed)) for secret in learned)


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(SECRET_CHARS, min_size=6, max_size=30),
    text=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Lu", "Nd")), max_size=80),
    cut=st.integers(0, 80),
    build=st.sampled_from(FORMATS),
)
def test_text_without_secrets_is_unchanged(secret: str, text: str, cut: int, build: Build) -> None:
    scrubber = Scrubber()
    scrubber.learn(secret)
    assert scrubber.scrub_text(text) == text
    body = build([text[:cut], text[cut:]]).encode()
    assert scrubber.scrub_body(body) is body


def test_log_probability_tokens_are_a_stream_too() -> None:
    tokens = ["The key is ", "SEC", "RET-98", "7654", "321."]

    def entry(token: str) -> dict[str, object]:
        alternatives = [{"token": token, "logprob": -0.1}]
        return {"token": token, "bytes": list(token.encode()), "top_logprobs": alternatives}

    body = json.dumps(
        {
            "choices": [
                {
                    "index": 0,
                    "message": {"content": "".join(tokens)},
                    "logprobs": {"content": [entry(t) for t in tokens]},
                }
            ]
        }
    )
    scrubber = Scrubber()
    scrubber.learn("SECRET-987654321")
    out = json.loads(scrubber.scrub_body(body))
    choice = out["choices"][0]
    assert choice["message"]["content"] == "The key is <redacted>."
    got = [(e["token"], bytes(e["bytes"]).decode()) for e in choice["logprobs"]["content"]]
    assert got == [
        ("The key is ", "The key is "),
        ("<redacted>", "<redacted>"),
        ("", ""),
        ("", ""),
        (".", "."),
    ]
    assert "SEC" not in json.dumps(out) and "4321" not in json.dumps(out)


# The key-shape scan.


@pytest.mark.parametrize(
    "text",
    [
        "Missing API key: send any non-empty key in the Authorization: Bearer header.",
        "Missing API key: send any non-empty key in the x-api-key header.",
        "invalid x-api-key",
        "Incorrect API key provided: sk-proj-********************************2Fk8.",
        "Use the Bearer token scheme: Authorization: Bearer <redacted>",
        "Authorization: Bearer $OPENAI_API_KEY",
        "Basic authentication is not supported",
        "a task-ant-colony-simulation-of-things",
        "sk-this-is-not-a-real-key-at-all",
    ],
)
def test_prose_is_not_a_key(text: str) -> None:
    assert find_key_shape(text) is None


@pytest.mark.parametrize(
    "text,kind",
    [
        ("sk-ant-api03-" + "a1B2c3D4e5" * 9, "an Anthropic API key"),
        ("key sk-proj-abcDEF0123456789ghiJKL done", "an OpenAI API key"),
        ("sk-svcacct-abcDEF0123456789ghiJKL", "an OpenAI API key"),
        ("sk-abcdefghij0123456789ABCDEFGHIJ0123456789abcdefgh", "a secret key"),
        ('"Authorization": "Bearer 8f2c1e9a7b6d5c4e3f2a"', "a Bearer token"),
        ("AKIAIOSFODNN7EXAMPLE", "an AWS access key id"),
        ("AIzaSyD-1234567890abcdefghijklmnopqrstu", "a Google API key"),
        ("ghp_" + "A1b2C3d4E5" * 4, "a GitHub token"),
        ("github_pat_" + "A1b2C3d4E5_" * 5, "a GitHub token"),
        ("xoxb-1234567890-abcdefghij", "a Slack token"),
        ("hf_" + "a1B2c3D4e5" * 4, "a Hugging Face token"),
        ("sk_live_" + "a1B2c3D4e5" * 3, "a Stripe key"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "a JSON Web Token",
        ),
        ("-----BEGIN RSA PRIVATE KEY-----", "a private key"),
        (
            "Authorization: Basic " + base64.b64encode(b"user:pass-word").decode(),
            "Basic credentials",
        ),
    ],
)
def test_real_key_shapes_are_found(text: str, kind: str) -> None:
    found = find_key_shape(text)
    assert found is not None and found.kind == kind, found
    assert len(found.preview) < len(found.text)


def test_a_key_split_across_deltas_is_found_by_the_scan() -> None:
    key = "sk-ant-api03-" + "a1B2c3D4e5" * 3
    body = _anthropic([key[:9], key[9:20], key[20:]])
    assert find_key_shape(body) is None
    found = find_key_shape_in_body(body.encode())
    assert found is not None and found.kind == "an Anthropic API key"
    logprobs = json.dumps({"logprobs": [{"token": key[:9]}, {"token": key[9:]}]})
    assert find_key_shape_in_body(logprobs) is not None


def test_the_cassette_is_refused_when_a_stream_spells_a_key(tmp_path: Path) -> None:
    from pytest_agentpatterns.cassettes import CassetteError, CompactJson, Persister

    key = "sk-proj-" + "a1B2c3D4e5" * 3
    body = _chat([key[:10], key[10:]])
    cassette = {"requests": [], "responses": [{"body": {"string": body}}]}
    path = tmp_path / "c.json"
    with pytest.raises(CassetteError, match=r"shaped like a secret \(sk-proj-a1B2.*OpenAI"):
        Persister.save_cassette(path, cassette, CompactJson)
    assert not path.exists()


# Configuring what else to scrub.


def test_entries_split_on_commas_but_a_pattern_runs_to_the_end() -> None:
    assert split_entries("a, b ,re:x{1,3},y") == ["a", "b", "re:x{1,3},y"]
    rules = ScrubRules.parse(["X-Tenant", "session_id", r"re:\d{5}"])
    assert rules.names == {"xtenant", "sessionid"}
    assert [p.pattern for p in rules.patterns] == [r"\d{5}"]


@pytest.mark.parametrize(
    "entry,message",
    [
        ("re:(", "*'re:(' is not a valid regular expression (missing ), unterminated*"),
        ("re:", "*'re:' has no pattern after re:*"),
        ("re:a*", "*'re:a*' matches the empty string*"),
        ("two words", "*'two words' is not a name*"),
    ],
)
def test_bad_entries_are_named(entry: str, message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        ScrubRules.parse([entry])
    assert fnmatch.fnmatch(str(excinfo.value), message)


def test_bad_scrub_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--patterns-scrub=x-tenant,re:[a-")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--patterns-scrub*'re:[[]a-' is not a valid regular expression*re:PATTERN*"]
    )


def test_bad_scrub_ini_line_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nagentpatterns_scrub =\n    x-tenant\n    re:(?P<\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini agentpatterns_scrub: 're:(?P<' is not a valid regular*"])


def test_help_lists_the_scrub_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--patterns-scrub=NAME[[],NAME[]]*"])


def test_the_docs_state_the_rules_the_code_applies() -> None:
    from pytest_agentpatterns.cassettes import CassetteError, CompactJson, Persister
    from pytest_agentpatterns.scrub import (
        CREDENTIAL_FIELDS,
        CREDENTIAL_WORDS,
        HARMLESS_HEADERS,
        HARMLESS_QUERY,
        MIN_SECRET,
        normalise_name,
    )

    docs = Path(__file__).parent.parent / "docs" / "cassettes.md"
    text = docs.read_text()
    section = text[text.index("## Secrets never reach the disk") :]
    section = section[: section.index("\n## ", 1)]
    quoted = set(re.findall(r"`([^`]+)`", section))
    assert HARMLESS_HEADERS <= quoted
    assert HARMLESS_QUERY <= quoted
    assert CREDENTIAL_FIELDS <= {normalise_name(q) for q in quoted}
    assert CREDENTIAL_WORDS <= quoted
    assert f"shorter than {MIN_SECRET} characters" in section
    with pytest.raises(CassetteError) as refused:
        Persister.save_cassette(
            Path("cassettes/test_leak/test_leak[single].json"),
            {
                "requests": [],
                "responses": [{"body": {"string": "my key is sk-proj-abcdef0123456789"}}],
            },
            CompactJson,
        )
    assert f"\n{refused.value}\n" in section


def _every_shape(text: str) -> KeyShape | None:
    """find_key_shape without its substring pre-check: each pattern's literal is "", which
    every text holds, so every pattern scans the whole text."""
    from unittest import mock

    from pytest_agentpatterns import scrub

    everything = {kind: ("",) for kind in scrub._LITERALS}
    with mock.patch.dict(scrub._LITERALS, everything):
        return find_key_shape(text)


KEYISH = st.lists(
    st.sampled_from(
        [
            "sk-",
            "ant-",
            "proj-",
            "k_live_",
            "k_test_",
            "rk",
            "AKIA",
            "ASIA",
            "AIza",
            "ya29.",
            "gh",
            "p_",
            "github_pat_",
            "xox",
            "b-",
            "hf_",
            "gsk_",
            "xai-",
            "eyJ",
            ".",
            "-----BEGIN ",
            "RSA ",
            "PRIVATE KEY-----",
            "Bearer ",
            "Basic ",
            "dXNlcjpwYXNz",
            "A1b2C3d4E5",
            "0123456789",
            "ABCDEFGHIJKLMNOP",
            "_",
            "-",
            " ",
            "\n",
            "=",
            "é",
        ]
    ),
    max_size=30,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(KEYISH)
def test_the_substring_pre_check_finds_what_every_pattern_finds(text: str) -> None:
    assert find_key_shape(text) == _every_shape(text)


# One key of each shape, built from parts so that no whole key-shaped string is in this file.
_ONE_OF_EACH = {
    "an Anthropic API key": "sk-" + "ant-" + "api03" + "x1Y2z3W4v5U6",
    "an OpenAI API key": "sk-" + "proj-" + "A1b2C3d4E5f6G7h8",
    "a secret key": "sk-" + "A1b2C3d4E5f6G7h8I9j0K",
    "a Stripe key": "rk" + "_live_" + "A1b2C3d4E5f6G7h8",
    "an AWS access key id": "ASIA" + "ABCDEFGH12345678",
    "a Google API key": "AIza" + "A1b2C3d4E5" * 3 + "f6G7h",
    "a Google OAuth token": "ya29." + "a1B2" * 6,
    "a GitHub token": "github_pat_" + "A1b2C3d4E5" * 4,
    "a Slack token": "xoxb-" + "1234567890a",
    "a Hugging Face token": "hf_" + "a1B2c3" * 6,
    "a Groq or xAI key": "xai-" + "a1B2" * 11,
    "a JSON Web Token": "eyJ" + "hbGciOiJI" + ".eyJ" + "zdWIiOiIx" + ".c2ln",
    "a private key": "-----BEGIN EC " + "PRIVATE KEY-----",
    "a Bearer token": "Bearer " + "a1B2c3D4e5F6",
    "Basic credentials": "Basic " + base64.b64encode(b"user:pass").decode(),
}


@pytest.mark.parametrize("kind", KEY_SHAPE_KINDS)
def test_each_shape_is_found_with_the_pre_check_on(kind: str) -> None:
    """The property above only builds keys from its fragments; here every shape has a key,
    so a wrong literal in the pre-check (``sk-anx-``, ``AIzb``) hides it and fails."""
    text = f"config: {_ONE_OF_EACH[kind]} (end)"
    found = find_key_shape(text)
    assert found is not None and found.kind == kind
    assert _every_shape(text) == found
