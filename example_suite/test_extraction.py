"""Structured extraction to JSON with the OpenAI SDK, checked by a schema as ``verify``.

The check is plain code, no LLM: the keys and types must match the schema and every value must
be found in the source text. It catches most mistakes (a missing field, a number sent as text,
a reformatted date, an email that is not in the text) but not all of them (``"Acme"`` for
``"Acme Corp"`` is in the text). ``hybrid`` drafts three candidates and returns the most voted
one that passes; ``loop`` sends the failures back to the model until the JSON passes, which
costs more calls only when the first answer fails. ``parallel``'s vote helps too, since wrong
answers scatter, but it pays for five calls every time and cannot see which answer is valid.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest

from pytest_agentpatterns import Task, Verdict

MODEL = os.environ.get("OPENAI_SMALL_MODEL", "sim-small")
SYSTEM = "You extract fields from text. Reply with one JSON object and nothing else."

# One client for the module; it reads OPENAI_BASE_URL and OPENAI_API_KEY.
client = openai.OpenAI()


@dataclass(frozen=True)
class Document:
    """A text to extract from, what to extract, the schema check and the expected result."""

    id: str
    instruction: str
    text: str
    schema: dict[str, str] = field(hash=False)
    expected: dict[str, Any] = field(hash=False)


def request(doc: Document) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{doc.instruction}\nText: {doc.text}"},
    ]


def complete(messages: list[dict[str, str]]) -> Any:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        response_format={"type": "json_object"},
        max_completion_tokens=300,
    )
    reply = completion.choices[0].message.content or ""
    try:
        return json.loads(reply)
    except ValueError:
        return reply


def extract(doc: Document) -> Any:
    """propose: one extraction call."""
    return complete(request(doc))


def check(doc: Document, output: Any) -> Verdict:
    """verify: the schema check. Fails with one line per problem, which ``refine`` sends back."""
    if not isinstance(output, dict):
        return Verdict(False, f"the reply is not a JSON object: {str(output)[:80]!r}")
    problems = [f"missing field {key!r}" for key in doc.schema if key not in output]
    problems += [f"unexpected field {key!r}" for key in output if key not in doc.schema]
    for key, kind in doc.schema.items():
        if key in output:
            problems += check_value(doc.text, key, kind, output[key])
    return Verdict(not problems, "; ".join(problems) or None)


def check_value(text: str, key: str, kind: str, value: Any) -> list[str]:
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{key} must be a JSON number, got {value!r}"]
        if not re.search(rf"\b{value}\b", text):
            return [f"{key} {value} does not occur in the text"]
        return []
    if not isinstance(value, str) or not value.strip():
        return [f"{key} must be a non-empty string, got {value!r}"]
    if kind == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", value):
        return [f"{key} {value!r} is not an email address"]
    if kind == "date":
        try:
            datetime.date.fromisoformat(value)
        except ValueError:
            return [f"{key} {value!r} is not a date written YYYY-MM-DD"]
    if kind == "time" and not re.fullmatch(r"(?:[01]\d|2[0-3]):[0-5]\d", value):
        return [f"{key} {value!r} is not a time written HH:MM"]
    if value not in text:
        return [f"{key} {value!r} does not occur in the text"]
    return []


def fix(doc: Document, output: Any, feedback: str) -> Any:
    """refine: show the model its JSON and what failed, ask for a corrected object."""
    previous = output if isinstance(output, str) else json.dumps(output)
    return complete(
        [
            *request(doc),
            {"role": "assistant", "content": previous},
            {
                "role": "user",
                "content": f"That JSON failed these checks: {feedback}. "
                "Reply with a corrected JSON object.",
            },
        ]
    )


extraction = Task(name="json-extraction", propose=extract, verify=check, refine=fix)

DOCUMENTS = [
    Document(
        "contact",
        "Extract name, email and company as a JSON object.",
        "Hi, I'm Maria Lopez from Acme Corp, you can reach me at maria.lopez@acme.example.",
        {"name": "text", "email": "email", "company": "text"},
        {"name": "Maria Lopez", "email": "maria.lopez@acme.example", "company": "Acme Corp"},
    ),
    Document(
        "lead",
        "Extract name, email and company as a JSON object.",
        "This is Kenji Sato (kenji@globex.example), procurement lead at Globex Industries.",
        {"name": "text", "email": "email", "company": "text"},
        {"name": "Kenji Sato", "email": "kenji@globex.example", "company": "Globex Industries"},
    ),
    Document(
        "order",
        "Extract order_id, sku, quantity (a number) and city as a JSON object.",
        "Order #4821: 3 units of SKU BX-200, ship to Berlin.",
        {"order_id": "text", "sku": "text", "quantity": "integer", "city": "text"},
        {"order_id": "4821", "sku": "BX-200", "quantity": 3, "city": "Berlin"},
    ),
    Document(
        "meeting",
        "Extract person, date, time and room as a JSON object.",
        "Meeting with Dr. Priya Nair on 2025-03-14 at 15:30 in Room 4B.",
        {"person": "text", "date": "date", "time": "time", "room": "text"},
        {"person": "Priya Nair", "date": "2025-03-14", "time": "15:30", "room": "4B"},
    ),
    Document(
        "invoice",
        "Extract invoice_number, total (a number) and due_date as a JSON object.",
        "Invoice INV-2291 from Northwind Traders: total due 1250 EUR by 2025-07-31.",
        {"invoice_number": "text", "total": "integer", "due_date": "date"},
        {"invoice_number": "INV-2291", "total": 1250, "due_date": "2025-07-31"},
    ),
    Document(
        "booking",
        "Extract guest, nights (a number), check_in and hotel as a JSON object.",
        "Booking for Ana Ruiz: 4 nights at Hotel Miramar, check-in 2025-09-02.",
        {"guest": "text", "nights": "integer", "check_in": "date", "hotel": "text"},
        {"guest": "Ana Ruiz", "nights": 4, "check_in": "2025-09-02", "hotel": "Hotel Miramar"},
    ),
]


@pytest.mark.agentpatterns(repeat=6)
@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda d: d.id)
def test_extraction(agent, doc):
    assert agent.run(extraction, doc) == doc.expected
