"""Per-case evidence: what the task returned, why a check failed, what each call said.

A regression can only be diagnosed from the report if it keeps, per repetition, the task's
output, the failed check's message and the verify verdicts, and, per call, excerpts of the
prompt and the response and a digest of the request. This module makes those texts: short
(``--patterns-evidence-chars``), one line where one line will do, and scrubbed of the item's
secrets with the cassette's own :class:`~pytest_agentpatterns.scrub.Scrubber`, then of anything
still shaped like a key, before they reach a report.

Pure: standard library only (the scrubber is handed in).
"""

from __future__ import annotations

import hashlib
import json
import os
import sysconfig
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from .records import CallRecord, Repetition, VerifyRecord
from .scrub import MIN_SECRET, REDACTED, Scrubber, find_key_shape

DEFAULT_CHARS = 300
"""Default ``--patterns-evidence-chars``: enough for a label, a number, a short JSON object or
a sentence of a prompt, small enough that a run of thousands of repetitions stays readable."""
MAX_CHARS = 100_000
"""The largest ``--patterns-evidence-chars`` allowed."""
RAW_LIMIT = 4 * MAX_CHARS
"""What is kept of a text before it is scrubbed and cut: scrubbing whole texts means a
secret is never cut in two (and so missed) before it is looked for."""
ELLIPSIS = "…"

_PLUGIN_DIR = str(Path(__file__).resolve().parent)
_LIBRARY_DIRS = tuple(
    str(Path(p).resolve())
    for p in {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
)


# --- texts taken while the repetition runs ----------------------------------------------------


def output_repr(value: Any) -> str:
    """``repr(value)``, never raising, capped at :data:`RAW_LIMIT` characters."""
    try:
        text = repr(value)
    except Exception as exc:  # a user's __repr__ may fail; the evidence must not
        text = f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    return text[:RAW_LIMIT]


def exception_summary(error: BaseException) -> str:
    """One line saying what was raised, then where: ``file.py:12: assert out == expected``.

    For a failed ``assert`` the first line is pytest's own (``AssertionError: assert 'b' ==
    'a'``) and the second the assertion's source. The frame shown is the innermost one in the
    user's code (not the standard library's, an installed package's or this plugin's), so a
    check that raised inside ``sqlite3`` or ``json`` points at the line of the test that called
    it. The full traceback stays in the repetition's ``error`` when it is an error.
    """
    text = str(error).strip()
    first = text.splitlines()[0].strip() if text else ""
    name = type(error).__name__
    head = f"{name}: {first}" if first else name
    where = _where(error)
    return f"{head}\n{where}" if where else head


def _where(error: BaseException) -> str | None:
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return None
    own = [f for f in frames if _user_file(f.filename)]
    frame = (own or frames)[-1]
    line = (frame.line or "").strip()
    return f"{_shown_path(frame.filename)}:{frame.lineno}" + (f": {line}" if line else "")


def _user_file(filename: str) -> bool:
    try:
        path = str(Path(filename).resolve())
    except (OSError, RuntimeError):
        return False
    if path.startswith(_PLUGIN_DIR):
        return False
    return not any(path.startswith(d) for d in _LIBRARY_DIRS)


def _shown_path(filename: str) -> str:
    """A path relative to the working directory when under it, else the file's name, so a
    report reads the same on every machine."""
    try:
        relative = os.path.relpath(filename)
    except ValueError:
        return Path(filename).name
    return Path(filename).name if relative.startswith("..") else relative.replace(os.sep, "/")


def prompt_hash(body: bytes | None) -> str | None:
    """A digest of the canonical request body without its ``model`` field.

    Canonical as the cassettes' keys (``cassettes.canonical_body``: JSON with sorted keys and
    compact separators; other bodies as text), so key order never changes it; the model is
    left out so that "the model changed" and "the prompt changed" are told apart.
    """
    if not body:
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        text = body.decode("utf-8", "replace")
    else:
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "model"}
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def prompt_excerpt(body: bytes | None) -> str | None:
    """The text of the request's last message (Anthropic Messages, Chat Completions,
    Responses), or the start of the body when it has no messages."""
    if not body:
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body[:RAW_LIMIT].decode("utf-8", "replace")
    if isinstance(data, dict):
        messages = data.get("messages")
        if isinstance(messages, list) and messages:
            text = _content_text(
                messages[-1].get("content") if isinstance(messages[-1], dict) else None
            )
            if text:
                return text[:RAW_LIMIT]
        given = data.get("input", data.get("prompt"))
        if isinstance(given, str):
            return given[:RAW_LIMIT]
        if isinstance(given, list) and given:
            last = given[-1]
            text = _content_text(last.get("content") if isinstance(last, dict) else last)
            if text:
                return text[:RAW_LIMIT]
    return json.dumps(data, ensure_ascii=False)[:RAW_LIMIT]


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [_block_text(block) for block in content]
        text = "\n".join(p for p in parts if p)
        return text or None
    return None


def _block_text(block: Any) -> str | None:
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return None
    for key in ("text", "input_text", "output_text"):
        if isinstance(block.get(key), str):
            return str(block[key])
    if block.get("type") in ("tool_use", "function_call"):
        return json.dumps(block.get("input", block.get("arguments")), ensure_ascii=False)
    if block.get("type") == "tool_result":
        return _content_text(block.get("content"))
    return None


def response_excerpt(body: bytes | None, content_type: str | None) -> str | None:
    """The text a response generated (JSON or a server-sent-event stream, reassembled), its
    tool call's arguments, or the start of the body (an error, an unknown API)."""
    if not body:
        return None
    text = body[: RAW_LIMIT * 4].decode("utf-8", "replace")
    if "text/event-stream" in (content_type or "") or text.lstrip().startswith(("event:", "data:")):
        streamed = "".join(_stream_text(text))
        return (streamed or text)[:RAW_LIMIT]
    try:
        data = json.loads(text)
    except ValueError:
        return text[:RAW_LIMIT]
    found = _response_text(data) if isinstance(data, dict) else None
    return (found if found else text)[:RAW_LIMIT]


def _response_text(data: dict[str, Any]) -> str | None:
    content = data.get("content")  # Anthropic Messages
    if isinstance(content, list):
        return _content_text(content)
    choices = data.get("choices")  # Chat Completions
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message") or {}
        if isinstance(message.get("content"), str):
            return str(message["content"])
        calls = message.get("tool_calls")
        if isinstance(calls, list) and calls and isinstance(calls[0], dict):
            return str((calls[0].get("function") or {}).get("arguments"))
    if isinstance(data.get("output_text"), str):
        return str(data["output_text"])
    output = data.get("output")  # Responses
    if isinstance(output, list):
        parts = []
        for item in output:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "function_call":
                parts.append(str(item.get("arguments")))
            else:
                parts.append(_content_text(item.get("content")) or "")
        return "".join(parts) or None
    return None


def _stream_text(text: str) -> Iterator[str]:
    from .usage import iter_sse

    for event in iter_sse(text):
        try:
            data = json.loads(event.data)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        delta = data.get("delta")
        if isinstance(delta, dict):  # Anthropic content_block_delta
            for key in ("text", "partial_json"):
                if isinstance(delta.get(key), str):
                    yield str(delta[key])
        elif isinstance(delta, str) and str(data.get("type", "")).endswith(".delta"):
            yield delta  # Responses: output_text / function_call_arguments deltas
        choices = data.get("choices")
        if isinstance(choices, list):
            for choice in choices[:1]:
                piece = (choice.get("delta") or {}) if isinstance(choice, dict) else {}
                if isinstance(piece.get("content"), str):
                    yield str(piece["content"])
                for call in piece.get("tool_calls") or ():
                    arguments = (call.get("function") or {}).get("arguments")
                    if isinstance(arguments, str):
                        yield arguments


# --- what reaches a report --------------------------------------------------------------------


def clean(text: str | None, scrubber: Scrubber, limit: int) -> str | None:
    """``text`` scrubbed of the item's secrets and of anything key-shaped, then cut to
    ``limit`` characters (an ellipsis marks the cut); None when ``limit`` is 0."""
    if text is None or limit <= 0:
        return None
    safe = redact_key_shapes(_cut_fragments(scrubber.scrub_text(text), scrubber.secrets))
    return safe if len(safe) <= limit else safe[: max(0, limit - 1)] + ELLIPSIS


FRAGMENT = 4
"""The shortest piece of a learned secret redacted where pytest's ``head...tail`` cut it."""


def _cut_fragments(text: str, secrets: Iterable[str]) -> str:
    """``text`` with the pieces of a learned secret around each ``...`` redacted.

    pytest shortens long values in assertion messages to ``head...tail``; a secret cut there
    survives as a prefix before the dots and a suffix after them, which no search for the whole
    secret finds.
    """
    if "..." not in text:
        return text
    pieces = text.split("...")
    for secret in (s for s in secrets if len(s) >= MIN_SECRET):
        for i in range(len(pieces) - 1):
            pieces[i] = _redact_end(pieces[i], secret)
            pieces[i + 1] = _redact_start(pieces[i + 1], secret)
    return "...".join(pieces)


def _redact_end(piece: str, secret: str) -> str:
    for size in range(min(len(piece), len(secret)), FRAGMENT - 1, -1):
        if piece.endswith(secret[:size]):
            return piece[: len(piece) - size] + REDACTED
    return piece


def _redact_start(piece: str, secret: str) -> str:
    for size in range(min(len(piece), len(secret)), FRAGMENT - 1, -1):
        if piece.startswith(secret[-size:]):
            return REDACTED + piece[size:]
    return piece


def clean_lines(text: str | None, scrubber: Scrubber, limit: int) -> str | None:
    """Like :func:`clean`, each line cut on its own (a message's summary and its place)."""
    if text is None or limit <= 0:
        return None
    lines = [clean(line, scrubber, limit) or "" for line in text.splitlines()]
    return "\n".join(lines)


def redact_key_shapes(text: str) -> str:
    """``text`` with everything :func:`~pytest_agentpatterns.scrub.find_key_shape` sees as a
    credential replaced by ``<redacted>``: the last guard, for a key the item never sent."""
    for _ in range(1000):
        found = find_key_shape(text)
        if found is None:
            return text
        text = text.replace(found.text, REDACTED)
    return text


def finish(
    repetitions: Iterable[Repetition], scrubber: Scrubber | None, limit: int
) -> tuple[Repetition, ...]:
    """The repetitions as a report keeps them: every evidence text scrubbed and cut.

    Run once the item is over, when the scrubber knows every secret any of its repetitions
    sent (as the cassette is scrubbed when it is saved).
    """
    scrubber = scrubber or Scrubber()
    return tuple(
        replace(
            rep,
            output=clean(rep.output, scrubber, limit),
            message=clean_lines(rep.message, scrubber, limit),
            verdicts=tuple(
                replace(v, feedback=clean(v.feedback, scrubber, limit)) for v in rep.verdicts
            ),
            calls=tuple(_call(c, scrubber, limit) for c in rep.calls),
        )
        for rep in repetitions
    )


def _call(call: CallRecord, scrubber: Scrubber, limit: int) -> CallRecord:
    return replace(
        call,
        prompt=clean(call.prompt, scrubber, limit),
        response=clean(call.response, scrubber, limit),
    )


__all__ = [
    "DEFAULT_CHARS",
    "VerifyRecord",
    "clean",
    "exception_summary",
    "finish",
    "output_repr",
    "prompt_excerpt",
    "prompt_hash",
    "response_excerpt",
]
