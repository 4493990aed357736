"""Arithmetic word problems with the OpenAI Chat Completions SDK: self-consistency.

Sampling the same small model five times and taking the most common final answer
(``parallel``, majority vote) is the textbook case where voting helps: wrong answers scatter,
right ones agree. The ``sequential`` chain (solve, then extract the number) only adds a round
trip, since the answer is already in the first reply; ``escalate`` votes three times and falls
back to that chain when the three disagree. No ``verify``: ``hybrid`` and ``loop`` are skipped.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import openai
import pytest

from pytest_agentpatterns import Task

MODEL = os.environ.get("OPENAI_SMALL_MODEL", "sim-small")
SYSTEM = (
    "Solve the word problem. Think step by step, then give the final answer as a bare "
    "number on the last line."
)

# One client for the module; it reads OPENAI_BASE_URL and OPENAI_API_KEY.
client = openai.OpenAI()


def chat(messages: list[dict[str, str]]) -> str:
    completion = client.chat.completions.create(
        model=MODEL, messages=messages, temperature=1.0, max_completion_tokens=400
    )
    return completion.choices[0].message.content or ""


def final_number(text: str) -> str:
    """The last number in the text, without thousands separators or a trailing .0."""
    numbers = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)
    if not numbers:
        return text.strip()
    number = numbers[-1].replace(",", "")
    return number[:-2] if number.endswith(".0") else number


def solve(problem: str) -> str:
    """propose: one sampled solution, reduced to its final number."""
    return final_number(
        chat([{"role": "system", "content": SYSTEM}, {"role": "user", "content": problem}])
    )


def draft(problem: str, prev: None) -> str:
    """Step 1: a worked solution, kept whole."""
    return chat([{"role": "system", "content": SYSTEM}, {"role": "user", "content": problem}])


def extract(problem: str, worked: str) -> str:
    """Step 2: a second call reads the worked solution and states its final answer."""
    reply = chat(
        [
            {
                "role": "user",
                "content": f"Here is a worked solution:\n{worked}\n"
                "Reply with its final answer as a bare number.",
            }
        ]
    )
    return final_number(reply)


arithmetic = Task(name="word-problems", propose=solve, steps=[draft, extract])


@dataclass(frozen=True)
class Problem:
    id: str
    text: str
    answer: str


PROBLEMS = [
    Problem(
        "math-01",
        "A baker has 23 apples and buys 17 more. How many apples does the baker have now?",
        "40",
    ),
    Problem(
        "math-02",
        "A train travels 60 miles per hour for 3 hours. How many miles does it travel?",
        "180",
    ),
    Problem(
        "math-03",
        "Maya reads 12 pages a day for 9 days. How many pages does she read in total?",
        "108",
    ),
    Problem(
        "math-04",
        "A box of 48 pencils is shared equally among 6 students. "
        "How many pencils does each student get?",
        "8",
    ),
    Problem(
        "math-05",
        "Tom had 85 marbles and lost 27 of them. How many marbles does Tom have left?",
        "58",
    ),
    Problem(
        "math-06",
        "A garden has 7 rows of tomato plants with 14 plants in each row. "
        "How many tomato plants are there?",
        "98",
    ),
    Problem(
        "math-07",
        "A shirt costs $25 and is on sale for 20% off. What is the sale price in dollars?",
        "20",
    ),
    Problem(
        "math-08",
        "Lena saves $15 every week. How many dollars has she saved after 11 weeks?",
        "165",
    ),
    Problem(
        "math-09",
        "A parking lot has 6 levels with 45 spaces on each level. "
        "How many parking spaces are there in total?",
        "270",
    ),
    Problem(
        "math-10",
        "There are 132 students split into buses of 44 students each. How many buses are needed?",
        "3",
    ),
    Problem(
        "math-11", "A recipe needs 3 eggs per cake. How many eggs are needed for 16 cakes?", "48"
    ),
    Problem(
        "math-12",
        "A tank holds 500 liters and 175 liters are drained. How many liters remain in the tank?",
        "325",
    ),
]


@pytest.mark.agentpatterns(repeat=5)
@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p.id)
def test_word_problem(agent, problem):
    assert agent.run(arithmetic, problem.text) == problem.answer
