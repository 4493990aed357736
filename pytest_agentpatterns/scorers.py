"""Scorers: check a task's output in one line, the way pytest tests check things.

Every scorer returns a :class:`Score`, which reads three ways::

    assert scorers.exact(label, ticket.label)          # pass/fail; the message says why
    agent.score(scorers.judge(answer, RUBRIC, ...))     # a graded score in [0, 1]
    scorers.json_schema(out, SCHEMA).check()            # raises AssertionError (any module)

A ``Score`` is truthy when it passed, and its repr is its verdict and reason, so a failed
``assert score`` in a test module shows ``assert Score(FAIL 0: expected 'b', got 'a')``.
``check()`` raises the same message where pytest does not rewrite asserts (helper modules).

Scorers that cannot score (an invalid JSON schema, a judge whose reply has no grade) raise:
that is a broken check, not a wrong answer. The judge's own model calls are made with the
role ``judge`` (``r<rep>/main/judge#<n>``): recorded in the cassette and replayed offline like
any call, with their cost reported as ``judge_cost``, apart from the task's. docs/scoring.md.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .execution import role_scope
from .records import JUDGE_ROLE

__all__ = [
    "JudgeError",
    "Score",
    "ajudge",
    "exact",
    "json_schema",
    "judge",
    "normalized",
    "numeric",
    "regex",
]


@dataclass(frozen=True)
class Score:
    """What a scorer decided: ``value`` in [0, 1], whether it ``passed``, and why."""

    value: float
    passed: bool
    reason: str
    scorer: str

    def __bool__(self) -> bool:
        return self.passed

    def __float__(self) -> float:
        return self.value

    def __repr__(self) -> str:
        verdict = "pass" if self.passed else "FAIL"
        return f"Score({self.scorer} {verdict} {self.value:g}: {self.reason})"

    __str__ = __repr__

    def check(self) -> Score:
        """Raise ``AssertionError`` with the reason unless the score passed; return it."""
        if not self.passed:
            raise AssertionError(repr(self))
        return self


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _binary(passed: bool, reason: str, scorer: str) -> Score:
    return Score(1.0 if passed else 0.0, passed, reason, scorer)


def exact(output: Any, expected: Any) -> Score:
    """``output == expected``."""
    if output == expected:
        return _binary(True, f"equals {_short(expected)}", "exact")
    return _binary(False, f"expected {_short(expected)}, got {_short(output)}", "exact")


_EDGE = re.compile(r"^[\s\"'`.,;:!?()\[\]{}*_]+|[\s\"'`.,;:!?()\[\]{}*_]+$")


def normalize(text: Any) -> str:
    """``text`` as :func:`normalized` compares it: Unicode NFKC, case-folded, inner whitespace
    collapsed, quotes, brackets, markdown emphasis and punctuation at both ends removed."""
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    return _EDGE.sub("", " ".join(folded.split()))


def normalized(output: Any, expected: Any) -> Score:
    """Equal once both are normalised (:func:`normalize`): ``" **Alpha.** "`` matches
    ``"alpha"``."""
    got, want = normalize(output), normalize(expected)
    if got == want:
        return _binary(True, f"matches {_short(expected)} once normalised", "normalized")
    return _binary(
        False,
        f"expected {_short(expected)}, got {_short(output)} (normalised: {want!r} vs {got!r})",
        "normalized",
    )


def regex(output: Any, pattern: str | re.Pattern[str], *, fullmatch: bool = False) -> Score:
    """``pattern`` is found in ``output`` (``re.search``), or matches all of it with
    ``fullmatch=True``."""
    if not isinstance(output, str):
        raise TypeError(f"scorers.regex() scores text; got {type(output).__name__}")
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    match = compiled.fullmatch(output) if fullmatch else compiled.search(output)
    how = "matches all of" if fullmatch else "found in"
    if match:
        return _binary(True, f"/{compiled.pattern}/ {how} the output", "regex")
    return _binary(False, f"/{compiled.pattern}/ not {how} {_short(output)}", "regex")


def json_schema(output: Any, schema: Mapping[str, Any]) -> Score:
    """``output`` (JSON text, or already parsed) is valid against the JSON Schema ``schema``
    (the draft its ``$schema`` names; 2020-12 without one). An invalid schema raises
    ``ValueError``: the check is broken, not the answer."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(dict(schema))
    except jsonschema.SchemaError as exc:
        raise ValueError(f"scorers.json_schema(): the schema is invalid: {exc.message}") from None
    instance = output
    if isinstance(output, (str, bytes, bytearray)):
        try:
            instance = json.loads(output)
        except ValueError as exc:
            return _binary(False, f"not JSON ({exc}): {_short(output)}", "json_schema")
    errors = sorted(cls(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if not errors:
        return _binary(True, "valid against the schema", "json_schema")
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return _binary(False, f"at {first.json_path}: {first.message}{more}", "json_schema")


_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def numeric(
    output: Any, expected: float, *, rel: float | None = None, abs: float | None = None
) -> Score:
    """``output`` is ``expected`` within a tolerance, as ``pytest.approx`` (``rel`` 1e-6 and
    ``abs`` 1e-12 when neither is given). Text is read as its last number, so ``"The answer
    is 1,250."`` reads 1250; text without a number fails."""
    if isinstance(expected, bool) or not isinstance(expected, (int, float)):
        raise TypeError(f"scorers.numeric() needs a number to expect, got {_short(expected)}")
    if isinstance(output, bool):
        return _binary(False, f"expected a number, got {output!r}", "numeric")
    if isinstance(output, (int, float)):
        got = float(output)
    else:
        found = _NUMBER.findall(str(output))
        if not found:
            return _binary(False, f"no number in {_short(output)}", "numeric")
        got = float(found[-1].replace(",", ""))
    rel_tol = 1e-6 if rel is None and abs is None else (rel or 0.0)
    abs_tol = 1e-12 if rel is None and abs is None else (abs or 0.0)
    tolerance = max(rel_tol * math.fabs(expected), abs_tol)
    off = math.fabs(got - expected)
    if off <= tolerance:
        return _binary(True, f"{got:g} is {expected:g} ± {tolerance:g}", "numeric")
    return _binary(
        False, f"{got:g} is not {expected:g} ± {tolerance:g} (off by {off:g})", "numeric"
    )


# --- LLM as judge -----------------------------------------------------------------------------


class JudgeError(ValueError):
    """The judge could not be asked, or its reply held no grade."""


JUDGE_PROMPT = """You are grading an answer against a rubric.

Rubric:
{rubric}
{question}
Reply with one line "GRADE: PASS" or "GRADE: FAIL" (or "GRADE: " and a score from 0 to 1),
then one line "REASON: " and one sentence.

ANSWER TO GRADE:
{output}"""
"""What the judge is asked; the answer comes last, so a long answer cannot push the
instructions out of a model's attention."""

_GRADE = re.compile(r"GRADE:\s*\**\s*(PASS|FAIL|[01](?:\.\d+)?|\.\d+)", re.IGNORECASE)
_REASON = re.compile(r"REASON:\s*(.+)", re.IGNORECASE)


def judge_prompt(output: Any, rubric: str, input: Any = None) -> str:
    """The prompt :func:`judge` sends."""
    question = "" if input is None else f"\nQuestion:\n{input}\n"
    text = output if isinstance(output, str) else repr(output)
    return JUDGE_PROMPT.format(rubric=rubric.strip(), question=question, output=text)


def parse_grade(reply: str, threshold: float = 0.5) -> Score:
    """The :class:`Score` a judge's reply gives; :class:`JudgeError` when it holds no grade."""
    match = _GRADE.search(reply)
    if match is None:
        raise JudgeError(f"the judge's reply has no GRADE line: {_short(reply, 200)}")
    grade = match.group(1).upper()
    value = 1.0 if grade == "PASS" else 0.0 if grade == "FAIL" else float(grade)
    if not 0.0 <= value <= 1.0:
        raise JudgeError(f"the judge graded {grade}, outside 0 to 1: {_short(reply, 200)}")
    found = _REASON.search(reply)
    reason = found.group(1).strip() if found else "the judge gave no reason"
    return Score(value, value >= threshold, reason, "judge")


def _check_judge(client: Any, model: str | None, ask: Any) -> None:
    if (client is None) == (ask is None):
        raise TypeError(
            "scorers.judge() needs either client= (an Anthropic or OpenAI client) with model=, "
            "or ask= (a function from the prompt to the judge's reply)"
        )
    if client is not None and not model:
        raise TypeError("scorers.judge(client=...) needs model=, the judge model's name")


def judge(
    output: Any,
    rubric: str,
    *,
    client: Any = None,
    model: str | None = None,
    ask: Callable[[str], str] | None = None,
    input: Any = None,
    threshold: float = 0.5,
    max_tokens: int = 300,
) -> Score:
    """Ask a model whether ``output`` meets ``rubric``: pass/fail or a score in [0, 1],
    passing at ``threshold``.

    Give ``client`` (an ``anthropic.Anthropic`` or ``openai.OpenAI``) and ``model``, or
    ``ask(prompt) -> reply`` of your own. ``input`` (the question) is shown to the judge too.
    Called from the test body, its calls have the role ``judge``: recorded and replayed like
    any call, their cost apart from the task's (``judge_cost``), not part of its latency.
    Called from a role function (a ``verify`` that asks a judge), they belong to that role.
    Any exception it raises is an error, never a wrong answer (``check_errors``).
    """
    _check_judge(client, model, ask)
    prompt = judge_prompt(output, rubric, input)
    with role_scope(JUDGE_ROLE) as state:
        try:
            reply = (
                ask(prompt) if ask is not None else _ask(client, model or "", prompt, max_tokens)
            )
            if not isinstance(reply, str):
                raise JudgeError(f"the judge returned {type(reply).__name__}, not text")
            return parse_grade(reply, threshold)
        except Exception as exc:
            if state is not None:
                state.call_failed(exc)
            raise


async def ajudge(
    output: Any,
    rubric: str,
    *,
    client: Any = None,
    model: str | None = None,
    ask: Callable[[str], Awaitable[str]] | None = None,
    input: Any = None,
    threshold: float = 0.5,
    max_tokens: int = 300,
) -> Score:
    """Like :func:`judge`, for ``async def`` tests: an ``AsyncAnthropic`` or ``AsyncOpenAI``
    client, or an async ``ask``."""
    _check_judge(client, model, ask)
    prompt = judge_prompt(output, rubric, input)
    with role_scope(JUDGE_ROLE) as state:
        try:
            if ask is not None:
                reply = await ask(prompt)
            else:
                reply = await _aask(client, model or "", prompt, max_tokens)
            if not isinstance(reply, str):
                raise JudgeError(f"the judge returned {type(reply).__name__}, not text")
            return parse_grade(reply, threshold)
        except Exception as exc:
            if state is not None:
                state.call_failed(exc)
            raise


def _api(client: Any) -> str:
    module = type(client).__module__.split(".", 1)[0]
    if module == "anthropic" or (hasattr(client, "messages") and not hasattr(client, "chat")):
        return "anthropic"
    if hasattr(client, "chat"):
        return "openai"
    raise JudgeError(
        f"scorers.judge(client=...) takes an Anthropic or OpenAI client, got "
        f"{type(client).__name__}; pass ask= for any other"
    )


def _messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def _ask(client: Any, model: str, prompt: str, max_tokens: int) -> str:
    if _api(client) == "anthropic":
        message = client.messages.create(
            model=model, max_tokens=max_tokens, messages=_messages(prompt)
        )
        return _anthropic_text(message)
    completion = client.chat.completions.create(
        model=model, max_completion_tokens=max_tokens, messages=_messages(prompt)
    )
    return str(completion.choices[0].message.content or "")


async def _aask(client: Any, model: str, prompt: str, max_tokens: int) -> str:
    if _api(client) == "anthropic":
        message = await client.messages.create(
            model=model, max_tokens=max_tokens, messages=_messages(prompt)
        )
        return _anthropic_text(message)
    completion = await client.chat.completions.create(
        model=model, max_completion_tokens=max_tokens, messages=_messages(prompt)
    )
    return str(completion.choices[0].message.content or "")


def _anthropic_text(message: Any) -> str:
    return "".join(getattr(block, "text", "") for block in message.content)
