"""Per-case evidence: outputs, messages, verify verdicts and call excerpts in the report,
scrubbed of secrets and cut to --patterns-evidence-chars; checks that raise; agent.score."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_agentpatterns import evidence
from pytest_agentpatterns.records import CallRecord, ItemResult, Repetition
from pytest_agentpatterns.report import load_run
from pytest_agentpatterns.scrub import REDACTED, Scrubber
from pytest_agentpatterns.sim import Simulator

# The key the task is given: not shaped like any known key, so only the scrubber, which learns
# it from the x-api-key header, can find it where the simulator echoes it back.
SECRET = "cust-PLANTED-0042-evidence"

CAPITAL = """
import os, anthropic, pytest
from pytest_agentpatterns import Task

URL = os.environ["SIM_URL"]
CLIENT = anthropic.Anthropic(base_url=URL, api_key="SECRET", max_retries=0)

def ask(question):
    m = CLIENT.messages.create(model="sim-fast", max_tokens=20,
                               messages=[{"role": "user", "content": question}])
    return m.content[0].text.strip()

capital = Task(name="capital", propose=ask)

@pytest.mark.agentpatterns(repeat=6)
@pytest.mark.parametrize("where", ["testland"])
def test_capital(agent, where):
    answer = agent.run(capital, f"What is the capital of {where}?")
    assert answer == "Alpha"
""".replace("SECRET", SECRET)


ASSERTION = 'assert answer == "Alpha"'


def _line(source: str, text: str) -> int:
    """The line number of the first line of ``source`` holding ``text``."""
    return next(i for i, line in enumerate(source.strip().splitlines(), 1) if text in line)


def _run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    path = pytester.path / "report.json"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--patterns-json={path}", *args)
    return result, json.loads(path.read_text())


def _reps(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [rep for item in data["items"] for rep in item["repetitions"]]


def test_each_repetition_keeps_its_output_message_and_call_excerpts(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makepyfile(test_capital=CAPITAL)
    result, live = _run(pytester, "--patterns-record=once")
    result.assert_outcomes(passed=1)
    reps = _reps(live)
    assert {r["outcome"] for r in reps} == {"correct", "incorrect"}  # sim-fast is right 70%
    for rep in reps:
        [call] = rep["calls"]
        answer = call["response"]
        assert answer in ("Alpha", "Beta")
        assert rep["output"] == repr(answer)
        assert call["prompt"] == "What is the capital of testland?"
        assert call["prompt_hash"].startswith("sha256:")
        if rep["outcome"] == "incorrect":
            first, where = rep["message"].splitlines()
            assert first == f"AssertionError: assert {answer!r} == 'Alpha'"
            assert where == f"test_capital.py:{_line(CAPITAL, 'assert answer ==')}: {ASSERTION}"
            assert rep["error"] is None
        else:
            assert rep["message"] is None
    assert len({r["calls"][0]["prompt_hash"] for r in reps}) == 1
    # Replayed, the report keeps the same evidence.
    result, replayed = _run(pytester, "--patterns-record=none")
    result.assert_outcomes(passed=1)
    assert [{k: v for k, v in r.items() if k not in ("latency", "calls")} for r in _reps(live)] == [
        {k: v for k, v in r.items() if k not in ("latency", "calls")} for r in _reps(replayed)
    ]
    assert [c["response"] for r in _reps(replayed) for c in r["calls"]] == [
        c["response"] for r in reps for c in r["calls"]
    ]


ECHO = """
import os, anthropic, pytest
from pytest_agentpatterns import Task

URL = os.environ["SIM_URL"]

def echo(text):
    with anthropic.Anthropic(base_url=URL, api_key="SECRET", max_retries=0) as c:
        m = c.messages.create(model="sim-fast", max_tokens=200,
                              messages=[{"role": "user", "content": "echo " + text}])
    # A key-shaped value the task never sent (the cassette would refuse to keep it).
    return m.content[0].text + " sk-ant-api03-NEVERsent0123456789abcdef"

echoes = Task(name="echo", propose=echo)

def test_echo(agent):
    # The task's output and the failed assertion both carry the key it was given.
    out = agent.run(echoes, "SECRET")
    assert out == "nothing"
""".replace("SECRET", SECRET)


def test_no_secret_reaches_the_report(pytester: pytest.Pytester, sim_env: Simulator) -> None:
    pytester.makepyfile(test_echo=ECHO)
    html = pytester.path / "report.html"
    result, data = _run(pytester, "--patterns-record=once", f"--patterns-html={html}")
    result.assert_outcomes(passed=1)
    text = (pytester.path / "report.json").read_text()
    for written in (text, html.read_text()):
        assert SECRET not in written
        assert "NEVERsent" not in written
    [rep] = _reps(data)
    assert rep["outcome"] == "incorrect"
    assert rep["output"] == f"'(simulated reply) echo {REDACTED} {REDACTED}'"
    assert rep["message"].startswith("AssertionError: assert '(simulated r")  # pytest cut it
    [call] = rep["calls"]
    assert call["prompt"] == f"echo {REDACTED}"
    assert REDACTED in call["response"]


def test_evidence_chars_cuts_and_zero_keeps_none(
    pytester: pytest.Pytester, sim_env: Simulator
) -> None:
    pytester.makepyfile(test_capital=CAPITAL)
    _run(pytester, "--patterns-record=once")
    _, short = _run(pytester, "--patterns-record=none", "--patterns-evidence-chars=12")
    for rep in _reps(short):
        assert rep["calls"][0]["prompt"] == "What is the…"
        assert rep["output"] in ("'Alpha'", "'Beta'")  # short enough to keep whole
        if rep["message"]:
            assert all(len(line) <= 12 for line in rep["message"].splitlines())
    _, none = _run(pytester, "--patterns-record=none", "--patterns-evidence-chars=0")
    for rep in _reps(none):
        assert rep["output"] is None and rep["message"] is None
        [call] = rep["calls"]
        assert call["prompt"] is None and call["response"] is None
        assert call["prompt_hash"].startswith("sha256:")


def test_bad_evidence_chars_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--patterns-evidence-chars=-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--patterns-evidence-chars*'-1' is not allowed*0 keeps none*"])


VERIFY = """
import pytest
from pytest_agentpatterns import Task, Verdict

def propose(x):
    return "draft"

def verify(x, out):
    if out == "draft":
        return Verdict(ok=False, feedback="too short", score=0.2)
    return Verdict(ok=True, score=0.9)

def refine(x, out, feedback):
    return out + " (" + feedback + ")"

t = Task(name="t", propose=propose, verify=verify, refine=refine)
best = Task(name="best", propose=lambda x: "draft", verify=lambda x, o: 0.5, aggregate="best")

@pytest.mark.agentpatterns(patterns="loop(max_iters=3),hybrid(n=2)")
def test_verified(agent):
    assert agent.run(t, 1)

@pytest.mark.agentpatterns(patterns="parallel(n=12)")
def test_best(agent):
    assert agent.run(best, 1) == "draft"
"""


def test_verify_verdicts_are_kept_in_branch_order(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_verify=VERIFY)
    result, data = _run(pytester, "--patterns-record=none")
    result.assert_outcomes(passed=3)
    by_pattern = {i["pattern"]: i["repetitions"][0] for i in data["items"]}
    assert by_pattern["loop(max_iters=3)"]["verdicts"] == [
        {"branch": "loop[0]", "ok": False, "score": 0.2, "feedback": "too short"},
        {"branch": "loop[1]", "ok": True, "score": 0.9, "feedback": None},
    ]
    assert by_pattern["loop(max_iters=3)"]["output"] == "'draft (too short)'"
    # hybrid: both candidates are "draft", so one verify call, which fails.
    assert by_pattern["hybrid(n=2)"]["verdicts"] == [
        {"branch": "verify[0]", "ok": False, "score": 0.2, "feedback": "too short"}
    ]
    branches = [v["branch"] for v in by_pattern["parallel(n=12)"]["verdicts"]]
    assert branches == [f"best[{i}]" for i in range(12)]


SQL = """
import sqlite3, pytest
from pytest_agentpatterns import Task

QUERIES = {"good": "SELECT 1", "typo": "SELEC 1"}
write_sql = Task(name="sql", propose=lambda case: QUERIES[case])

def boom(case):
    raise ValueError("the provider is down")

broken = Task(name="broken", propose=boom)

def check(sql):
    return sqlite3.connect(":memory:").execute(sql).fetchone() == (1,)

@pytest.mark.parametrize("case", ["good", "typo"])
def test_default(agent, case):
    assert check(agent.run(write_sql, case))

@pytest.mark.agentpatterns(check_errors="incorrect")
@pytest.mark.parametrize("case", ["good", "typo"])
def test_marker(agent, case):
    assert check(agent.run(write_sql, case))

lenient = Task(name="sql", propose=lambda case: QUERIES[case], check_errors="incorrect")

@pytest.mark.parametrize("case", ["typo"])
def test_task_option(agent, case):
    assert check(agent.run(lenient, case))

@pytest.mark.agentpatterns(check_errors="incorrect")
def test_task_failure_stays_an_error(agent):
    agent.run(broken, "x")

@pytest.mark.agentpatterns(check_errors="incorrect")
def test_before_any_run_is_an_error(agent):
    check("SELEC 1")
    agent.run(write_sql, "good")
"""


def test_check_errors_incorrect_turns_exceptions_in_checks_into_wrong_answers(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_sql=SQL)
    result, data = _run(pytester, "--patterns-record=none")
    result.assert_outcomes(passed=4, failed=3)
    result.stdout.fnmatch_lines(["FAILED test_sql.py::test_default[[]typo-single[]]*"])
    outcomes = {i["nodeid"].split("::")[1]: i["repetitions"][0] for i in data["items"]}
    default = outcomes["test_default[typo-single]"]
    assert default["outcome"] == "error"
    assert "Traceback" in default["error"]
    marked = outcomes["test_marker[typo-single]"]
    assert marked["outcome"] == "incorrect"
    assert marked["error"] is None
    first, where = marked["message"].splitlines()
    assert first == 'OperationalError: near "SELEC": syntax error'
    source = 'return sqlite3.connect(":memory:").execute(sql).fetchone() == (1,)'
    assert where == f"test_sql.py:{_line(SQL, source)}: {source}"
    assert outcomes["test_marker[good-single]"]["outcome"] == "correct"
    assert outcomes["test_task_option[typo-single]"]["outcome"] == "incorrect"
    failed = outcomes["test_task_failure_stays_an_error[single]"]
    assert failed["outcome"] == "error"
    assert failed["message"].startswith("ValueError: the provider is down\ntest_sql.py:")
    assert outcomes["test_before_any_run_is_an_error[single]"]["outcome"] == "error"


def test_bad_check_errors_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_agentpatterns import Task

@pytest.mark.agentpatterns(check_errors="ignore")
def test_x(agent):
    pass
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*agentpatterns(check_errors='ignore') is not allowed: use 'error'*'incorrect'*"]
    )
    from pytest_agentpatterns import Task

    with pytest.raises(ValueError, match="check_errors='wrong' is not allowed"):
        Task(name="t", propose=str, check_errors="wrong")


def test_assigning_agent_score_raises_with_a_hint(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
from pytest_agentpatterns import Task

def test_x(agent):
    agent.run(Task(name="t", propose=str), 1)
    agent.score = 0.5
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=none")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AttributeError: agent.score is a method and cannot be assigned: call "
            "agent.score(0.5) to record a graded score in [[]0, 1[]]*"
        ]
    )


# --- the pure parts ---------------------------------------------------------------------------


def test_exception_summary_is_one_line_then_where() -> None:
    def check() -> None:
        sqlite3.connect(":memory:").execute("SELEC 1")

    with pytest.raises(sqlite3.OperationalError) as info:
        check()
    summary = evidence.exception_summary(info.value)
    first, where = summary.splitlines()
    assert first == 'OperationalError: near "SELEC": syntax error'
    assert where.startswith("tests/test_evidence.py:")
    assert where.endswith(': sqlite3.connect(":memory:").execute("SELEC 1")')
    assert evidence.exception_summary(KeyError()) == "KeyError"


def test_prompt_hash_ignores_key_order_and_the_model() -> None:
    a = json.dumps({"model": "a", "messages": [{"role": "user", "content": "hi"}], "n": 1})
    b = json.dumps({"n": 1, "messages": [{"content": "hi", "role": "user"}], "model": "b"})
    c = json.dumps({"n": 1, "messages": [{"content": "hello", "role": "user"}], "model": "a"})
    assert evidence.prompt_hash(a.encode()) == evidence.prompt_hash(b.encode())
    assert evidence.prompt_hash(a.encode()) != evidence.prompt_hash(c.encode())
    assert evidence.prompt_hash(None) is None


@pytest.mark.parametrize(
    ("body", "content_type", "text"),
    [
        (b'{"content": [{"type": "text", "text": "Alpha"}]}', "application/json", "Alpha"),
        (b'{"choices": [{"message": {"content": "Beta"}}]}', "application/json", "Beta"),
        (
            b'{"output": [{"type": "message", "content": [{"type": "output_text", "text": "G"}]}]}',
            "application/json",
            "G",
        ),
        (
            b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": '
            b'{"type": "text_delta", "text": "Al"}}\n\nevent: content_block_delta\ndata: '
            b'{"type": "content_block_delta", "delta": {"type": "text_delta", "text": "pha"}}\n\n',
            "text/event-stream",
            "Alpha",
        ),
        (
            b'data: {"choices": [{"delta": {"content": "Be"}}]}\n\n'
            b'data: {"choices": [{"delta": {"content": "ta"}}]}\n\ndata: [DONE]\n\n',
            "text/event-stream",
            "Beta",
        ),
        (
            b'event: response.output_text.delta\ndata: {"type": "response.output_text.delta", '
            b'"delta": "Ga"}\n\nevent: response.output_text.delta\ndata: '
            b'{"type": "response.output_text.delta", "delta": "mma"}\n\n',
            "text/event-stream",
            "Gamma",
        ),
        (b'{"error": {"message": "overloaded"}}', "application/json", '{"error": {"message": '),
    ],
)
def test_response_excerpts_read_every_api(body: bytes, content_type: str, text: str) -> None:
    assert (evidence.response_excerpt(body, content_type) or "").startswith(text)


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(alphabet="abcdefghijkLMNOP0123456789-_", min_size=8, max_size=30),
    before=st.text(max_size=40),
    after=st.text(max_size=40),
    limit=st.integers(min_value=1, max_value=120),
)
def test_clean_never_keeps_a_learned_secret_and_respects_the_limit(
    secret: str, before: str, after: str, limit: int
) -> None:
    scrubber = Scrubber()
    scrubber.learn(secret)
    out = evidence.clean(before + secret + after, scrubber, limit)
    assert out is not None
    assert len(out) <= limit
    assert secret not in out
    assert evidence.clean("x", scrubber, 0) is None


def test_fragments_of_a_secret_around_pytests_cut_are_redacted() -> None:
    """pytest shortens a long value in an assertion message to ``head...tail``: a secret cut
    there leaves a prefix and a suffix no scrubber would find whole."""
    scrubber = Scrubber()
    scrubber.learn(SECRET)
    text = f"AssertionError: assert 'echo {SECRET[:9]}...{SECRET[-10:]}' == 'x'"
    cleaned = evidence.clean(text, scrubber, 500)
    assert cleaned == f"AssertionError: assert 'echo {REDACTED}...{REDACTED}' == 'x'"
    assert evidence.clean("a...b ... c", scrubber, 500) == "a...b ... c"


def test_old_reports_without_evidence_still_load(tmp_path: Path) -> None:
    """A run saved before the evidence fields existed reads as a baseline."""
    rep = Repetition(
        0, "correct", 0.1, calls=(CallRecord(_address(), "POST", "http://h/", 200, 0.1),)
    )
    item = ItemResult("t.py::t[a-single]", "t.py::t", "a", "single", (rep,))
    data = {"kind": "pytest-agentpatterns-report", "schema_version": 2, "items": [item.to_dict()]}
    for r in data["items"][0]["repetitions"]:
        for key in ("output", "message", "verdicts"):
            del r[key]
        for c in r["calls"]:
            for key in ("prompt", "response", "prompt_hash"):
                del c[key]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    [loaded] = load_run(path)
    assert loaded.repetitions[0].output is None
    assert loaded.repetitions[0].calls[0].prompt_hash is None


def _address() -> Any:
    from pytest_agentpatterns.records import Address

    return Address(0, (), "propose", 0)


def test_the_html_grid_shows_each_case_under_each_pattern_with_its_evidence() -> None:
    from pytest_agentpatterns.casegrid import case_grid
    from pytest_agentpatterns.records import Address, VerifyRecord

    call = CallRecord(
        Address(1, ("loop[0]",), "propose", 0),
        "POST",
        "http://h/v1/messages",
        200,
        0.25,
        model="m1",
        input_tokens=10,
        output_tokens=2,
        cost=0.001,
        prompt="What is <b>2+2</b>?",
        response="5",
    )
    items = [
        ItemResult(
            "t::t[a-single]",
            "t::t",
            "a",
            "single",
            (
                Repetition(0, "correct", 0.1, output="'4'"),
                Repetition(
                    1,
                    "incorrect",
                    0.2,
                    calls=(call,),
                    output="'5'",
                    message="AssertionError: assert '5' == '4'\nt.py:3: assert out == '4'",
                    verdicts=(VerifyRecord("loop[0]", False, 0.2, "try again"),),
                ),
            ),
        ),
        ItemResult(
            "t::t[b-single]", "t::t", "b", "single", (Repetition(0, "error", 0.1, error="boom"),)
        ),
    ]
    page = case_grid("t::t", ["single", "loop(max_iters=3)"], items, "test-1")
    assert 'data-label="single" style="background:hsl(60, 62%, 86%)"' in page  # case a: 0.50
    assert 'style="background:#eef0f3"' in page  # case b: nothing answered
    assert page.count('<td class="cell na" data-label="loop(max_iters=3)">—</td>') == 2
    assert "<pre>AssertionError: assert &#x27;5&#x27; == &#x27;4&#x27;\nt.py:3:" in page
    assert "loop[0] FAIL 0.2 “try again”" in page
    assert "<pre>What is &lt;b&gt;2+2&lt;/b&gt;?</pre>" in page  # escaped, never markup
    assert "role propose · branch loop[0] · m1 · 12 tokens (10 in, 2 out) · $0.001 · 0.25 s" in page
    assert case_grid("other", ["single"], items, "x") == ""
