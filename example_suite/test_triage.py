"""Support-ticket triage with the Anthropic SDK: does a vote of cheap calls beat one call?

One call to a small model is right about 70% of the time on these tickets. Five of them
voting (``parallel``) fix most of its mistakes for five times the cost, and the latency of the
slowest of five; the ``sequential`` chain hands the decision to a large model instead, about as
accurate but several times slower and more expensive; ``escalate`` runs three small votes and
calls the chain when they are not unanimous. The task has no ``verify``, so ``hybrid`` and
``loop`` are skipped.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import anthropic
import pytest

from pytest_agentpatterns import Task

SMALL_MODEL = os.environ.get("ANTHROPIC_SMALL_MODEL", "sim-small")
LARGE_MODEL = os.environ.get("ANTHROPIC_LARGE_MODEL", "sim-large")
LABELS = ("billing", "bug", "account", "feature_request")
PROMPT = (
    "Classify this support ticket as one of billing, bug, account, feature_request. "
    "Reply with the label only.\nTicket: {text}"
)

# One client for the module; it reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY.
client = anthropic.Anthropic()


def ask(model: str, prompt: str, max_tokens: int = 64) -> str:
    message = client.messages.create(
        model=model, max_tokens=max_tokens, messages=[{"role": "user", "content": prompt}]
    )
    return "".join(block.text for block in message.content if block.type == "text")


def parse_label(reply: str) -> str:
    """The first known label in the reply (models add words around it), else the reply."""
    for word in re.findall(r"[a-z_]+", reply.lower()):
        if word in LABELS:
            return word
    return reply.strip()


def classify(text: str) -> str:
    """propose: one small-model call."""
    return parse_label(ask(SMALL_MODEL, PROMPT.format(text=text)))


def summarize(text: str, prev: None) -> str:
    """Step 1 of the chain: a small model restates the problem."""
    return ask(SMALL_MODEL, f"Summarize the customer's problem in one sentence.\nTicket: {text}")


def decide(text: str, summary: str) -> str:
    """Step 2 of the chain: the large model decides, given the ticket and the summary."""
    return parse_label(ask(LARGE_MODEL, f"Summary: {summary}\n" + PROMPT.format(text=text)))


triage = Task(name="ticket-triage", propose=classify, steps=[summarize, decide])


@dataclass(frozen=True)
class Ticket:
    id: str
    text: str
    label: str


TICKETS = [
    Ticket("ticket-01", "I was charged twice for my subscription this month.", "billing"),
    Ticket("ticket-02", "The app crashes every time I open the settings page.", "bug"),
    Ticket("ticket-03", "I can't log in after resetting my password.", "account"),
    Ticket("ticket-04", "Please add a dark mode to the dashboard.", "feature_request"),
    Ticket("ticket-05", "My invoice shows the wrong VAT number.", "billing"),
    Ticket("ticket-06", "Exporting a report to CSV produces an empty file.", "bug"),
    Ticket("ticket-07", "How do I change the email address on my profile?", "account"),
    Ticket(
        "ticket-08",
        "It would be great if we could schedule reports to run weekly.",
        "feature_request",
    ),
    Ticket("ticket-09", "I cancelled my plan but was still billed for March.", "billing"),
    Ticket("ticket-10", "The search results page shows a 500 error since this morning.", "bug"),
    Ticket("ticket-11", "Please delete my account and all associated data.", "account"),
    Ticket("ticket-12", "Could you support single sign-on with Okta?", "feature_request"),
]


# Every pattern must get each ticket right at least half the time (a per-item threshold).
@pytest.mark.agentpatterns(repeat=5, min_accuracy=0.5)
@pytest.mark.parametrize("ticket", TICKETS, ids=lambda t: t.id)
def test_triage(agent, ticket):
    assert agent.run(triage, ticket.text) == ticket.label
