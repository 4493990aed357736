"""Code generation with the OpenAI Responses API, verified by running unit tests.

``verify`` executes the generated function and runs its unit tests: an exact, cheap check.
``hybrid`` drafts three versions at once and returns the most voted one that passes them,
``loop`` feeds the failing test back to the model. Majority voting (``parallel``) does well
here only because the simulator's wrong answers scatter; it cannot tell a bug the model keeps
writing from the right answer, and tests can. The test itself also runs held-out cases, which
catch the bugs the unit tests miss (``chunk``'s tests never have a remainder, ``flatten``'s
never nest twice), so a verified answer can still be wrong.

The generated code runs in this process, in a fresh namespace. That is fine for the simulator's
answers; run real model output in a sandbox (a container, a subprocess without network).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import openai
import pytest

from pytest_agentpatterns import Task, Verdict

MODEL = os.environ.get("OPENAI_SMALL_MODEL", "sim-small")
INSTRUCTIONS = "You write small, correct Python functions. Reply with the code only."

# One client for the module; it reads OPENAI_BASE_URL and OPENAI_API_KEY.
client = openai.OpenAI()


@dataclass(frozen=True)
class Spec:
    id: str
    function: str
    description: str
    tests: tuple[tuple[tuple[Any, ...], Any], ...]
    """The unit tests ``verify`` runs: (arguments, expected result) pairs."""
    held_out: tuple[tuple[tuple[Any, ...], Any], ...] = ()
    """More cases, run only by the test to judge the final answer."""


def source_of(reply: str) -> str:
    """The code in the reply, without Markdown fences if the model added them."""
    fenced = re.search(r"```(?:python)?\n(.*?)```", reply, re.DOTALL)
    return (fenced.group(1) if fenced else reply).strip() + "\n"


def generate(spec: Spec) -> str:
    """propose: one call to the Responses API."""
    response = client.responses.create(
        model=MODEL,
        instructions=INSTRUCTIONS,
        input=f"{spec.description}\nReply with the code only.",
        max_output_tokens=600,
    )
    return source_of(response.output_text)


def run_tests(spec: Spec, source: str, cases: Any = None) -> Verdict:
    """verify: define the function, then run its unit tests; the first failure is the feedback."""
    namespace: dict[str, Any] = {}
    try:
        exec(compile(source, f"<{spec.id}>", "exec"), namespace)
        function: Callable[..., Any] = namespace[spec.function]
    except Exception as exc:
        return Verdict(False, f"the code does not define {spec.function}: {exc!r}")
    for args, expected in spec.tests if cases is None else cases:
        call = f"{spec.function}({', '.join(map(repr, args))})"
        try:
            got = function(*args)
        except Exception as exc:
            return Verdict(False, f"{call} raised {exc!r}")
        if got != expected:
            return Verdict(False, f"{call} returned {got!r}, expected {expected!r}")
    return Verdict(True)


def repair(spec: Spec, source: str, feedback: str) -> str:
    """refine: the previous code and its failing test go back to the model."""
    response = client.responses.create(
        model=MODEL,
        instructions=INSTRUCTIONS,
        input=f"{spec.description}\nYour previous code:\n{source}\n"
        f"It failed a test: {feedback}\nReply with the corrected code only.",
        max_output_tokens=600,
    )
    return source_of(response.output_text)


codegen = Task(name="code-generation", propose=generate, verify=run_tests, refine=repair)

SPECS = [
    Spec(
        "slugify",
        "slugify",
        "Write a Python function slugify(title) that lowercases the title, replaces every run of "
        "characters other than a-z and 0-9 with one hyphen, and strips hyphens from both ends.",
        (
            (("Hello, World!",), "hello-world"),
            (("  Already--slugged  ",), "already-slugged"),
            (("Python 3.12",), "python-3-12"),
        ),
    ),
    Spec(
        "median",
        "median",
        "Write a Python function median(values) that returns the median of a non-empty list of "
        "numbers, the mean of the two middle values when the length is even.",
        (
            (([3, 1, 2],), 2),
            (([4, 1, 3, 2],), 2.5),
            (([1, 1, 10],), 1),
        ),
    ),
    Spec(
        "chunk",
        "chunk",
        "Write a Python function chunk(items, size) that splits a list into consecutive lists of "
        "length size, the last of which may be shorter.",
        (
            (([1, 2, 3, 4], 2), [[1, 2], [3, 4]]),
            (([], 4), []),
        ),
        held_out=((([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]),),
    ),
    Spec(
        "is_palindrome",
        "is_palindrome",
        "Write a Python function is_palindrome(text) that returns True when text reads the same "
        "backwards, ignoring case and every character that is not a letter or a digit.",
        (
            (("A man, a plan, a canal: Panama",), True),
            (("Hello",), False),
            (("No lemon, no melon",), True),
        ),
    ),
    Spec(
        "word_count",
        "word_count",
        "Write a Python function word_count(text) that returns a dict mapping each lower-cased "
        "word to how many times it occurs, where words are runs of letters.",
        (
            (("the cat and the hat",), {"the": 2, "cat": 1, "and": 1, "hat": 1}),
            (("Hi, hi!",), {"hi": 2}),
        ),
    ),
    Spec(
        "flatten",
        "flatten",
        "Write a Python function flatten(nested) that returns a flat list of the items of a list "
        "whose elements may themselves be lists, nested to any depth.",
        (
            (([1, [2, 3], 4],), [1, 2, 3, 4]),
            (([],), []),
        ),
        held_out=((([1, [2, [3, [4]]]],), [1, 2, 3, 4]),),
    ),
]


@pytest.mark.agentpatterns(repeat=4)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_codegen(agent, spec):
    source = agent.run(codegen, spec)
    assert run_tests(spec, source, spec.tests + spec.held_out).ok
