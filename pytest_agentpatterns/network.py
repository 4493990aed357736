"""The socket guard: while an item only replays, no network connection can be opened.

In the spirit of pytest-recording's network blocking: ``socket.socket.connect`` and
``connect_ex`` are replaced process-wide while a replay-only item runs, so a call that
escaped the cassette (a client the plugin does not see, a thread it did not start) fails
with a clear refusal instead of reaching a server. Unix-domain sockets are local and
stay allowed.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .execution import CallRefused, current_site


class NetworkBlocked(CallRefused):
    """A network connection was attempted while the item replays only."""


_lock = threading.Lock()
_active: list[str] = []
_originals: dict[str, Any] = {}


def _target(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return repr(address)


def _refuse(sock: socket.socket, address: Any) -> None:
    with _lock:
        reason = _active[-1] if _active else "the network is blocked"
    message = (
        f"a network connection to {_target(address)} was refused before it was opened: "
        f"{reason}, so no socket may be opened. Record the call with "
        "--patterns-record=new_episodes, or keep the client inside the task's role functions."
    )
    site = current_site()
    if site is not None:
        site.state.fail(message)
    # Callers such as socket.create_connection only close the socket on OSError.
    sock.close()
    raise NetworkBlocked(message)


def _guarded(name: str) -> Any:
    original = _originals[name]

    def guard(self: socket.socket, address: Any) -> Any:
        if _active and self.family != getattr(socket, "AF_UNIX", None):
            _refuse(self, address)
        return original(self, address)

    guard.__wrapped__ = original  # type: ignore[attr-defined]
    return guard


@contextmanager
def blocked(reason: str) -> Iterator[None]:
    """Refuse every network connection of the process while the block is active."""
    with _lock:
        if not _active:
            for name in ("connect", "connect_ex"):
                _originals[name] = getattr(socket.socket, name)
                setattr(socket.socket, name, _guarded(name))
        _active.append(reason)
    try:
        yield
    finally:
        with _lock:
            _active.remove(reason)
            if not _active:
                for name, original in _originals.items():
                    setattr(socket.socket, name, original)
                _originals.clear()


def is_blocked() -> bool:
    """Whether a block is active now."""
    with _lock:
        return bool(_active)
