"""A TCP proxy in front of the simulator that breaks connections on purpose.

The simulator answers with HTTP-level faults (429, 500); the transport-level ones live here:
``reset_rate`` resets a connection after reading the request, before any response (the
client sees "connection reset" or "server disconnected"); ``cut_rate`` relays the response
headers and half of the body, then resets the connection (a cut stream, or a truncated
JSON body). Every request gets its own upstream connection and ``connection: close``, so
each request draws its own fault, from a seeded RNG.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    lines = [
        line
        for line in head.split(b"\r\n")
        if not line.lower().startswith((b"connection:", b"keep-alive:"))
    ]
    return b"\r\n".join([*lines, b"connection: close"]) + b"\r\n\r\n" + body


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class FaultyProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``, resetting or cutting some requests."""

    def __init__(
        self, upstream: int, *, reset_rate: float = 0.0, cut_rate: float = 0.0, seed: int = 0
    ) -> None:
        self.upstream = upstream
        self.reset_rate = reset_rate
        self.cut_rate = cut_rate
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.faults = {"reset": 0, "cut": 0, "ok": 0}
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _draw(self) -> str:
        with self._lock:
            roll = self._rng.random()
            kind = (
                "reset"
                if roll < self.reset_rate
                else "cut"
                if roll < self.reset_rate + self.cut_rate
                else "ok"
            )
            self.faults[kind] += 1
            return kind

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            request = _read_request(conn)
            if request is None:
                conn.close()
                return
            kind = self._draw()
            if kind == "reset":
                _reset(conn)
                return
            with socket.create_connection(("127.0.0.1", self.upstream)) as upstream:
                upstream.sendall(request)
                response = b""
                while b"\r\n\r\n" not in response and (chunk := upstream.recv(65536)):
                    response += chunk
                head, _, body = response.partition(b"\r\n\r\n")
                head += b"\r\nconnection: close\r\n\r\n"
                if kind == "ok":
                    conn.sendall(head + body)
                    while chunk := upstream.recv(65536):
                        conn.sendall(chunk)
                    conn.close()
                    return
                while chunk := upstream.recv(65536):
                    body += chunk
            conn.sendall(head + body[: max(1, len(body) // 2)])
            _reset(conn)
        except OSError:
            conn.close()

    @contextmanager
    def running(self) -> Iterator[FaultyProxy]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.close()
