"""Answers grounded in a passage, judged by a second LLM call (async Anthropic SDK).

``verify`` is an LLM judge: a large model reads the passage, the question and the proposed
answer and replies PASS, or FAIL with a reason. ``loop`` (evaluator-optimizer) sends the reason
back to the small model until the judge passes the answer or three rounds are spent; ``single``
trusts the first answer. The judge is itself wrong now and then, so the loop cannot reach 100%,
and each round costs a large-model call. Here plain voting (``parallel``) comes close for a
quarter of the cost, because the simulator's mistakes are independent draws; a judge earns its
cost when a model repeats the same mistake, which no vote can outvote. The role functions are
``async def``; the plugin runs them on one event loop, so a module-level ``AsyncAnthropic``
client is safe.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import anthropic
import pytest

from pytest_agentpatterns import Task, Verdict

MODEL = os.environ.get("ANTHROPIC_SMALL_MODEL", "sim-small")
JUDGE_MODEL = os.environ.get("ANTHROPIC_LARGE_MODEL", "sim-large")

# One client for the module; it reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY.
client = anthropic.AsyncAnthropic()


@dataclass(frozen=True)
class Question:
    id: str
    passage: str
    question: str
    expected: str
    """A phrase the right answer contains (compared case-insensitively, whole words)."""


async def ask(model: str, prompt: str) -> str:
    message = await client.messages.create(
        model=model, max_tokens=200, messages=[{"role": "user", "content": prompt}]
    )
    return "".join(block.text for block in message.content if block.type == "text").strip()


def grounded_prompt(q: Question) -> str:
    return (
        "Answer the question using only the passage. Reply with one short sentence.\n"
        f"Passage: {q.passage}\nQuestion: {q.question}"
    )


async def answer(q: Question) -> str:
    """propose: the small model answers from the passage."""
    return await ask(MODEL, grounded_prompt(q))


async def judge(q: Question, proposed: str) -> Verdict:
    """verify: the large model judges whether the passage supports the answer."""
    reply = await ask(
        JUDGE_MODEL,
        "You check answers against a source passage.\n"
        f"Passage: {q.passage}\n\n"
        f"Question: {q.question}\nProposed answer: {proposed}\n\n"
        'Is the proposed answer fully supported by the passage? Reply "PASS", or "FAIL: " '
        "and one sentence saying what is wrong.",
    )
    return Verdict(ok=reply.upper().startswith("PASS"), feedback=reply)


async def revise(q: Question, previous: str, feedback: str) -> str:
    """refine: the small model answers again, shown its previous answer and the judge's reason."""
    return await ask(
        MODEL,
        f"{grounded_prompt(q)}\nYour previous answer was: {previous}\n"
        f"A reviewer said: {feedback}\nGive a corrected answer.",
    )


grounded = Task(name="grounded-answer", propose=answer, verify=judge, refine=revise)

QUESTIONS = [
    Question(
        "refunds",
        "Refunds. Monthly plans can be cancelled at any time but are not refunded. Annual plans "
        "are refunded in full within 30 days of purchase; after that, unused months are credited "
        "to your account instead. Refunds go back to the original payment method within 5 to 10 "
        "business days.",
        "How long after purchase can an annual plan be refunded in full?",
        "30 days",
    ),
    Question(
        "attachments",
        "Attachments. On the Free plan each attachment can be up to 25 MB and a workspace holds "
        "2 GB in total. Pro raises the per-file limit to 250 MB and storage to 100 GB. Files over "
        "the limit are rejected with an error; they are never truncated.",
        "What is the largest single attachment allowed on the Free plan?",
        "25 MB",
    ),
    Question(
        "trash",
        "Trash. Deleting a notebook moves it to the Trash, where it stays for 30 days. Any editor "
        "of the workspace can restore it from there. After 30 days it is purged, and backups that "
        "contain it expire 7 days later. Admins can empty the Trash early.",
        "Who can restore a deleted notebook from the Trash?",
        "any editor",
    ),
    Question(
        "sso",
        "Single sign-on. SAML single sign-on is included in the Business and Enterprise plans. "
        "SCIM user provisioning requires Enterprise. Okta, Microsoft Entra ID and Google "
        "Workspace are tested identity providers; others work if they speak SAML 2.0.",
        "Which plans include SAML single sign-on?",
        "business and enterprise",
    ),
    Question(
        "exports",
        "Exports. Workspace owners can export all notebooks as Markdown or HTML from Settings > "
        "Export. Exports run in the background and a download link is emailed when ready; the "
        "link expires after 24 hours. PDF export is available for single notebooks only.",
        "In which formats can a whole workspace be exported?",
        "markdown or html",
    ),
    Question(
        "seats",
        "Seats. The Team plan includes 5 seats; extra seats cost $8 per user per month and are "
        "billed pro rata. Guests with view-only access are free and do not use a seat. Removing "
        "a user frees the seat immediately.",
        "How much does an extra seat cost on the Team plan?",
        "8 per user per month",
    ),
]


def mentions(text: str, phrase: str) -> bool:
    return re.search(rf"\b{re.escape(phrase.lower())}\b", text.lower()) is not None


# The loop may take several rounds, but no item's p95 latency may exceed 10 seconds.
@pytest.mark.agentpatterns(repeat=5, max_latency=10.0)
@pytest.mark.parametrize("q", QUESTIONS, ids=lambda q: q.id)
def test_grounded_answer(agent, q):
    assert mentions(agent.run(grounded, q), q.expected)
