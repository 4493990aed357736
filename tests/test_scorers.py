"""Scorers: each verdict reads with assert, agent.score and check(); the LLM judge runs through
the real SDKs against the simulator, is recorded and replayed, and its cost is kept apart."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_agentpatterns import scorers
from pytest_agentpatterns.scorers import JudgeError, Score
from pytest_agentpatterns.sim import Simulator


def test_a_score_is_truthy_when_it_passed_and_check_raises_its_reason() -> None:
    good, bad = scorers.exact("a", "a"), scorers.exact("b", "a")
    assert good and not bad
    assert float(good) == 1.0 and bad.value == 0.0
    assert repr(bad) == "Score(exact FAIL 0: expected 'a', got 'b')"
    assert good.check() is good
    with pytest.raises(AssertionError, match=re.escape("Score(exact FAIL 0: expected 'a'")):
        bad.check()


@pytest.mark.parametrize(
    ("output", "expected", "passed"),
    [
        (" **Alpha.** ", "alpha", True),
        ("ALPHA", "Alpha", True),
        ("\uff21\uff4c\uff50\uff48\uff41", "alpha", True),  # full-width letters: NFKC
        ("alpha  beta", "Alpha Beta", True),
        ("Alphabet", "alpha", False),
        ("beta", "alpha", False),
    ],
)
def test_normalized(output: str, expected: str, passed: bool) -> None:
    assert bool(scorers.normalized(output, expected)) is passed


@given(st.text(max_size=40))
def test_normalize_is_idempotent_and_matches_itself(text: str) -> None:
    once = scorers.normalize(text)
    assert scorers.normalize(once) == once
    assert scorers.normalized(text, text)


def test_regex_searches_or_matches_all() -> None:
    assert scorers.regex("label: billing", r"billing")
    assert not scorers.regex("label: billing", r"billing", fullmatch=True)
    assert "not found in 'x'" in scorers.regex("x", r"\d+").reason
    with pytest.raises(TypeError, match="scores text; got int"):
        scorers.regex(3, r"\d")


SCHEMA = {
    "type": "object",
    "properties": {"label": {"enum": ["billing", "bug"]}, "urgent": {"type": "boolean"}},
    "required": ["label", "urgent"],
}


def test_json_schema_names_the_first_wrong_field() -> None:
    assert scorers.json_schema('{"label": "bug", "urgent": true}', SCHEMA)
    assert scorers.json_schema({"label": "bug", "urgent": False}, SCHEMA)
    wrong = scorers.json_schema('{"label": "spam", "urgent": 1}', SCHEMA)
    assert not wrong
    assert wrong.reason == "at $.label: 'spam' is not one of ['billing', 'bug'] (and 1 more)"
    assert scorers.json_schema("{oops", SCHEMA).reason.startswith("not JSON (")
    with pytest.raises(ValueError, match="the schema is invalid"):
        scorers.json_schema("{}", {"type": "no-such-type"})


@pytest.mark.parametrize(
    ("output", "kwargs", "passed"),
    [
        ("The answer is 1,250.", {}, True),
        (1250.0000001, {}, True),
        ("1249", {}, False),
        ("1249", {"abs": 1}, True),
        ("1300", {"rel": 0.05}, True),
        ("1400", {"rel": 0.05}, False),
        ("no idea", {}, False),
        (True, {}, False),
    ],
)
def test_numeric(output: Any, kwargs: dict[str, float], passed: bool) -> None:
    assert bool(scorers.numeric(output, 1250, **kwargs)) is passed


@given(
    st.floats(min_value=-1e6, max_value=1e6),
    st.floats(min_value=0, max_value=1e3),
    st.floats(min_value=-1e3, max_value=1e3),
)
def test_numeric_agrees_with_pytest_approx(expected: float, tol: float, shift: float) -> None:
    got = expected + shift
    assert bool(scorers.numeric(got, expected, abs=tol)) is (
        got == pytest.approx(expected, abs=tol, rel=0)
    )


@pytest.mark.parametrize(
    ("reply", "value", "passed"),
    [
        ("GRADE: PASS\nREASON: names Alpha", 1.0, True),
        ("grade: fail\nreason: says Beta", 0.0, False),
        ("**GRADE:** 0.4\nREASON: partly", 0.4, False),
        ("GRADE: 0.75", 0.75, True),
    ],
)
def test_parse_grade(reply: str, value: float, passed: bool) -> None:
    score = scorers.parse_grade(reply)
    assert (score.value, score.passed) == (value, passed)


def test_a_reply_without_a_grade_is_an_error() -> None:
    with pytest.raises(JudgeError, match="no GRADE line: 'I think it is fine'"):
        scorers.parse_grade("I think it is fine")
    with pytest.raises(TypeError, match="either client="):
        scorers.judge("x", "rubric")
    with pytest.raises(TypeError, match="needs model="):
        scorers.judge("x", "rubric", client=object())


def test_judge_with_a_function_of_your_own() -> None:
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return "GRADE: PASS\nREASON: it names the capital"

    score = scorers.judge("Alpha", "Names the capital", ask=ask, input="Capital of Testland?")
    assert score.passed and score.reason == "it names the capital"
    assert prompts[0].endswith("ANSWER TO GRADE:\nAlpha")
    assert "Question:\nCapital of Testland?" in prompts[0]


# --- the judge as users run it ----------------------------------------------------------------

WORLD = {
    "entries": [
        {"id": "q", "match": "capital of testland", "answer": "Alpha", "wrong": ["Beta"]},
        {
            "id": "right",
            "match": "answer to grade:\nalpha",
            "answer": "GRADE: PASS\nREASON: it names Alpha",
            "wrong": ["GRADE: PASS\nREASON: it names Alpha"],
        },
        {
            "id": "wrong",
            "match": "answer to grade:\nbeta",
            "answer": "GRADE: FAIL\nREASON: Beta is not the capital",
            "wrong": ["GRADE: FAIL\nREASON: Beta is not the capital"],
        },
    ]
}

JUDGED = """
import os, anthropic, openai, pytest
from pytest_agentpatterns import Task, scorers

URL = os.environ["SIM_URL"]
TASK_CLIENT = anthropic.Anthropic(base_url=URL, api_key="task-key-0001", max_retries=0)
JUDGE = openai.OpenAI(base_url=URL + "/v1", api_key="judge-key-0002", max_retries=0)

def ask(question):
    m = TASK_CLIENT.messages.create(model="sim-fast", max_tokens=20,
                                    messages=[{"role": "user", "content": question}])
    return m.content[0].text.strip()

capital = Task(name="capital", propose=ask)

@pytest.mark.agentpatterns(repeat=8)
def test_capital(agent):
    question = "What is the capital of Testland?"
    answer = agent.run(capital, question)
    agent.score(scorers.judge(answer, "Names the capital of Testland", client=JUDGE,
                              model="sim-perfect", input=question))
"""


@pytest.fixture
def judge_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    with Simulator(world=WORLD, seed=3, time_scale=0.0) as sim:
        monkeypatch.setenv("SIM_URL", sim.base_url)
        yield sim


def test_the_judge_is_recorded_replayed_and_costed_apart(
    pytester: pytest.Pytester, judge_sim: Simulator
) -> None:
    pytester.makepyfile(test_judged=JUDGED)
    path = pytester.path / "report.json"

    def run(mode: str) -> dict[str, Any]:
        result = pytester.runpytest(
            "-p", "no:cacheprovider", f"--patterns-record={mode}", f"--patterns-json={path}"
        )
        result.assert_outcomes(passed=1)
        return json.loads(path.read_text())  # type: ignore[no-any-return]

    live = run("once")
    [item] = live["items"]
    reps = item["repetitions"]
    assert {r["outcome"] for r in reps} == {"scored"}
    for rep in reps:
        calls = {c["address"]: c for c in rep["calls"]}
        task_call = calls.pop(f"r{rep['index']}/main/propose#0")
        judge_call = calls.pop(f"r{rep['index']}/main/judge#0")
        assert calls == {}
        assert judge_call["model"] == "sim-perfect"
        # The judge followed the answer: it passes Alpha and fails Beta.
        assert rep["score"] == (1.0 if task_call["response"] == "Alpha" else 0.0)
    assert {r["score"] for r in reps} == {0.0, 1.0}
    [figures] = live["summary"]
    costs = [(c["address"].split("/")[2], c["cost"]) for r in reps for c in r["calls"]]
    task_cost = sum(cost for role, cost in costs if role.startswith("propose")) / len(reps)
    judge_cost = sum(cost for role, cost in costs if role.startswith("judge")) / len(reps)
    assert figures["cost_per_run"] == pytest.approx(task_cost)
    assert figures["judge_cost_per_run"] == pytest.approx(judge_cost)
    assert judge_cost > 0
    assert figures["calls_per_run"] == 1.0
    connections = judge_sim.connection_count
    replayed = run("none")
    assert judge_sim.connection_count == connections  # offline
    assert [r["score"] for r in replayed["items"][0]["repetitions"]] == [r["score"] for r in reps]
    assert replayed["summary"][0]["judge_cost_per_run"] == pytest.approx(judge_cost)


def test_a_failing_judge_is_an_error_even_when_checks_count_as_wrong(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_agentpatterns import Task, scorers

@pytest.mark.agentpatterns(check_errors="incorrect")
def test_x(agent):
    out = agent.run(Task(name="t", propose=str), 1)
    assert scorers.judge(out, "is one", ask=lambda prompt: "no grade here")
"""
    )
    path = pytester.path / "report.json"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--patterns-json={path}")
    result.assert_outcomes(failed=1)
    [rep] = json.loads(path.read_text())["items"][0]["repetitions"]
    assert rep["outcome"] == "error"
    assert rep["message"].startswith("JudgeError: the judge's reply has no GRADE line")


def test_a_score_is_what_agent_score_records(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_agentpatterns import Task, scorers

@pytest.mark.parametrize("x", ["1250", "12"])
def test_x(agent, x):
    agent.score(scorers.numeric(agent.run(Task(name="t", propose=str), x), 1250))
"""
    )
    path = pytester.path / "report.json"
    pytester.runpytest("-p", "no:cacheprovider", f"--patterns-json={path}").assert_outcomes(
        passed=2
    )
    scores = {
        i["case"]: i["repetitions"][0]["score"] for i in json.loads(path.read_text())["items"]
    }
    assert scores == {"1250": 1.0, "12": 0.0}


def test_score_repr_in_a_failed_assert(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
from pytest_agentpatterns import Task, scorers
import pytest

@pytest.mark.agentpatterns(min_accuracy=1.0)
def test_x(agent):
    assert scorers.normalized(agent.run(Task(name="t", propose=str), "Beta"), "alpha")
"""
    )
    path = pytester.path / "report.json"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--patterns-json={path}")
    result.assert_outcomes(failed=1)
    [rep] = json.loads(path.read_text())["items"][0]["repetitions"]
    assert rep["message"].splitlines()[0] == (
        "AssertionError: assert Score(normalized FAIL 0: expected 'alpha', got 'Beta' "
        "(normalised: 'alpha' vs 'beta'))"
    )


def test_score_is_a_frozen_value() -> None:
    score = Score(0.5, True, "half", "judge")
    with pytest.raises(AttributeError):
        score.value = 1.0  # type: ignore[misc]
