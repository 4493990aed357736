"""The HTTP server: a threaded standard-library server that speaks the provider APIs.

One thread per connection, HTTP/1.1 keep-alive, chunked server-sent events. Latency is real
(the handler sleeps), and stopping interrupts sleeps and closes every connection.
"""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import threading
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple

from .config import (
    Faults,
    FaultsSource,
    ModelSet,
    ModelsSource,
    SimConfigError,
    World,
    WorldSource,
    load_faults,
    load_models,
    load_world,
)
from .oracle import Api, Oracle, Plan, StructureError
from .protocol import (
    FAULT_MESSAGES,
    JSON_TYPE,
    ProtocolError,
    Wire,
    api_for_path,
    has_credentials,
    parse_request,
    render,
    render_error,
)

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 5.0
"""Seconds ``stop()`` waits for each serving thread."""


class RequestRecord(NamedTuple):
    """One served request, as kept in ``Simulator.log``."""

    path: str
    model: str | None
    status: int


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        self.simulator = simulator
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall on a bad resolver.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug(
            "simulator: connection from %s ended with an error", client_address, exc_info=True
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "agentpatterns-sim"
    sys_version = ""
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.simulator._register(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.simulator._unregister(self.connection)

    def do_POST(self) -> None:
        self.server.simulator._serve_post(self)

    def do_GET(self) -> None:
        self.server.simulator._serve_get(self)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("simulator: " + format, *args)


class Simulator:
    """An embedded provider: a real HTTP server on ``host`` that the official SDKs talk to.

    ``world``, ``models`` and ``faults`` accept the dataclasses, JSON-like mappings, or (for
    world and models) a JSON file path; ``None`` means the shipped defaults and no faults.
    ``time_scale`` multiplies every latency (0 answers at once); ``port=0`` picks a free port.
    """

    def __init__(
        self,
        world: WorldSource = None,
        seed: int = 0,
        time_scale: float = 1.0,
        models: ModelsSource = None,
        faults: FaultsSource = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not isinstance(time_scale, (int, float)) or time_scale < 0:
            raise SimConfigError(f"time_scale must be a number >= 0, not {time_scale!r}")
        self._oracle = Oracle(
            load_world(world), load_models(models), load_faults(faults), seed, float(time_scale)
        )
        self._address = (host, port)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._accepted = threading.Condition(self._lock)
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._log: list[RequestRecord] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._connection_count = 0

    # lifecycle

    def start(self) -> Simulator:
        """Bind the socket and serve in a daemon thread; returns ``self``."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer(self._address, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"agentpatterns-sim:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop: interrupt latencies, close every connection and the socket, join the threads."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            connections = dict(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        thread.join(JOIN_TIMEOUT)
        for worker in connections.values():
            worker.join(JOIN_TIMEOUT)
        self._httpd = self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # what users read

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._httpd is not None

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self._running_server().server_address[1])

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``, the server's root."""
        host = str(self._running_server().server_address[0])
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def anthropic_base_url(self) -> str:
        """What to pass as ``anthropic.Anthropic(base_url=...)`` (or ANTHROPIC_BASE_URL)."""
        return self.base_url

    @property
    def openai_base_url(self) -> str:
        """What to pass as ``openai.OpenAI(base_url=...)`` (or OPENAI_BASE_URL): ends in ``/v1``."""
        return f"{self.base_url}/v1"

    @property
    def seed(self) -> int:
        """The seed every answer, latency and fault is derived from."""
        return self._oracle.seed

    @property
    def time_scale(self) -> float:
        """Multiplier on every latency."""
        return self._oracle.time_scale

    @property
    def world(self) -> World:
        """The questions this simulator knows."""
        return self._oracle.world

    @property
    def models(self) -> ModelSet:
        """The model profiles (unknown names get ``models.fallback``)."""
        return self._oracle.models

    @property
    def faults(self) -> Faults:
        """The server-wide faults."""
        return self._oracle.faults

    def set_faults(self, faults: FaultsSource) -> None:
        """Replace the server-wide faults while running (restarts ``fail_first`` counting)."""
        self._oracle.set_faults(load_faults(faults))

    @property
    def request_count(self) -> int:
        """Requests served so far, errors included."""
        with self._lock:
            return len(self._log)

    @property
    def log(self) -> list[RequestRecord]:
        """A copy of the per-request log: ``(path, model, status)``, in the order answers began."""
        with self._lock:
            return list(self._log)

    @property
    def connection_count(self) -> int:
        """TCP connections accepted so far (keep-alive reuses one for many requests)."""
        with self._lock:
            return self._connection_count

    def wait_for_connections(self, count: int, timeout: float = 10.0) -> int:
        """Block until at least ``count`` connections were accepted (or ``timeout`` seconds
        passed); the count then. A client's connection is counted by the server's thread
        for it, which may run after the client has already closed it."""
        with self._accepted:
            self._accepted.wait_for(lambda: self._connection_count >= count, timeout)
            return self._connection_count

    @property
    def in_flight(self) -> int:
        """API requests being answered right now."""
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most API requests that were ever being answered at once."""
        with self._lock:
            return self._max_in_flight

    # serving

    def _running_server(self) -> _HTTPServer:
        if self._httpd is None:
            raise RuntimeError(
                "the Simulator is not running: call start() or use it in a with block"
            )
        return self._httpd

    def _register(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections[conn] = threading.current_thread()
            self._connection_count += 1
            self._accepted.notify_all()
            stopping = self._stopping.is_set()
        if stopping:
            conn.shutdown(socket.SHUT_RDWR)

    def _unregister(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.pop(conn, None)

    def _record(self, path: str, model: str | None, status: int) -> None:
        with self._lock:
            self._log.append(RequestRecord(path, model, status))

    def _serve_get(self, handler: _Handler) -> None:
        _read_body(handler)
        route = handler.path.split("?", 1)[0].rstrip("/")
        anthropic = "anthropic-version" in handler.headers
        payload: dict[str, Any]
        data: list[dict[str, Any]]
        if route in ("", "/health"):
            payload = {"status": "ok", "simulator": "pytest-agentpatterns", "seed": self.seed}
        elif route == "/v1/models":
            names = sorted(self.models.profiles)
            if anthropic:
                data = [
                    {
                        "type": "model",
                        "id": n,
                        "display_name": n,
                        "created_at": "2025-01-01T00:00:00Z",
                    }
                    for n in names
                ]
                payload = {
                    "data": data,
                    "has_more": False,
                    "first_id": names[0],
                    "last_id": names[-1],
                }
            else:
                data = [
                    {"id": n, "object": "model", "created": 0, "owned_by": "sim"} for n in names
                ]
                payload = {"object": "list", "data": data}
        else:
            api: Api = "anthropic" if anthropic else "chat"
            wire = render_error(api, 404, f"Not found: GET {route}", _error_id(api))
            self._send_plain(handler, wire, None)
            return
        wire = Wire(200, (("content-type", JSON_TYPE),), json.dumps(payload).encode())
        self._send_plain(handler, wire, None)

    def _serve_post(self, handler: _Handler) -> None:
        raw = _read_body(handler)
        api = api_for_path(handler.path)
        if api is None:
            fallback: Api = "anthropic" if "anthropic-version" in handler.headers else "chat"
            wire = render_error(
                fallback, 404, f"Not found: POST {handler.path}", _error_id(fallback)
            )
            self._send_plain(handler, wire, None)
            return
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            self._answer(handler, api, raw)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _answer(self, handler: _Handler, api: Api, raw: bytes) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        model = _peek_model(raw)
        if not has_credentials(api, headers):
            hint = "x-api-key header" if api == "anthropic" else "Authorization: Bearer header"
            message = f"Missing API key: send any non-empty key in the {hint}."
            self._send_plain(handler, render_error(api, 401, message, _error_id(api)), model)
            return
        try:
            request, body = parse_request(api, raw)
        except ProtocolError as exc:
            wire = render_error(api, exc.status, exc.message, _error_id(api))
            self._send_plain(handler, wire, model)
            return
        try:
            plan = self._oracle.plan(request)
        except StructureError as exc:
            self._send_plain(handler, render_error(api, 400, str(exc), _error_id(api)), model)
            return
        if plan.status != 200:
            message = FAULT_MESSAGES.get(plan.status, "Simulated failure.")
            wire = render_error(api, plan.status, message, _error_id(api), plan.retry_after)
            self._send_plain(handler, wire, request.model)
            return
        profile = self.models.get(request.model)
        wire = render(request, plan, body, profile.chars_per_token)
        if wire.events is None:
            if self._sleep(plan.ttft + plan.per_token * plan.output_tokens):
                self._send_plain(handler, wire, request.model)
                return
        elif self._sleep(plan.ttft):
            self._send_stream(handler, wire, plan, request.model)
            return
        handler.close_connection = True

    def _sleep(self, seconds: float) -> bool:
        """Wait, unless stopping; ``False`` means the server is stopping and must not answer."""
        if seconds > 0:
            return not self._stopping.wait(seconds)
        return not self._stopping.is_set()

    def _send_plain(self, handler: _Handler, wire: Wire, model: str | None) -> None:
        self._record(handler.path, model, wire.status)
        handler.send_response(wire.status)
        for name, value in wire.headers:
            handler.send_header(name, value)
        handler.send_header("content-length", str(len(wire.body)))
        handler.end_headers()
        handler.wfile.write(wire.body)

    def _send_stream(self, handler: _Handler, wire: Wire, plan: Plan, model: str) -> None:
        chunked = handler.request_version != "HTTP/1.0"
        self._record(handler.path, model, wire.status)
        handler.send_response(wire.status)
        for name, value in wire.headers:
            handler.send_header(name, value)
        if chunked:
            handler.send_header("transfer-encoding", "chunked")
        else:
            handler.send_header("connection", "close")
            handler.close_connection = True
        handler.end_headers()

        def write(data: bytes) -> None:
            if data:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)

        pending = b""
        for data, weight in wire.events or ():
            delay = plan.per_token * weight
            if delay > 0:
                write(pending)
                pending = b""
                if not self._sleep(delay):
                    handler.close_connection = True
                    return
            pending += data
        write(pending)
        if chunked:
            handler.wfile.write(b"0\r\n\r\n")


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in handler.headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("content-length") or 0)
    return handler.rfile.read(length) if length > 0 else b""


def _peek_model(raw: bytes) -> str | None:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    model = body.get("model") if isinstance(body, Mapping) else None
    return model if isinstance(model, str) else None


def _error_id(api: Api) -> str:
    """A fresh request id for an error, in the provider's style."""
    if api == "anthropic":
        return "req_011C" + uuid.uuid4().hex[:20]
    return "req_" + uuid.uuid4().hex
