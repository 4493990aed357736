"""No back-off after a replayed failure.

A recording keeps the attempt that answered a call, so a replayed answer is never
retried. A call that got no answer (a reset, a refused connection) replays as the same
transport error, and the SDKs retry transport errors whatever the response headers say:
they would sleep their exponential back-off (0.5 s and more, per attempt) before each
replayed retry. Nothing is gained by waiting for a cassette, so after an attempt that
replayed a failure, the SDKs' retry delay is zero. Live attempts keep the SDKs' delays.

The Anthropic and OpenAI SDKs compute the delay in ``BaseClient._calculate_retry_timeout``;
it is wrapped once per SDK module, when the HTTP clients are wrapped (see ``transport``),
and again for an SDK first imported later, when its first replayed failure happens.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from typing import Any

_DELAY = "_calculate_retry_timeout"  # the SDKs' retry delay, in seconds
SDK_MODULES = ("anthropic._base_client", "openai._base_client")

_REPLAYED_FAILURE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agentpatterns_replayed_failure", default=False
)
_wrapped: list[tuple[type, Any]] = []
_lock = threading.Lock()


def note_attempt(replayed_failure: bool) -> None:
    """Remember, for the SDK's retry loop in this context, how its last attempt ended."""
    _REPLAYED_FAILURE.set(replayed_failure)
    if replayed_failure:
        install()


def install() -> None:
    """Wrap the retry delay of every SDK imported so far (once each)."""
    with _lock:
        done = {cls for cls, _ in _wrapped}
        for name in SDK_MODULES:
            module = sys.modules.get(name)
            cls = getattr(module, "BaseClient", None)
            original = getattr(cls, "__dict__", {}).get(_DELAY)
            if cls is None or cls in done or original is None:
                continue
            _wrapped.append((cls, original))
            setattr(cls, _DELAY, _without_replayed_delay(original))


def uninstall() -> None:
    """Restore the SDKs' own retry delays."""
    with _lock:
        while _wrapped:
            cls, original = _wrapped.pop()
            setattr(cls, _DELAY, original)


def _without_replayed_delay(original: Any) -> Any:
    def delay(self: Any, *args: Any, **kwargs: Any) -> float:
        if _REPLAYED_FAILURE.get():
            return 0.0
        return float(original(self, *args, **kwargs))

    delay.__wrapped__ = original  # type: ignore[attr-defined]
    return delay
