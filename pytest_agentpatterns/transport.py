"""Seeing every HTTP call a task makes: attribution, timing, usage, cost and budget.

``httpx2.Client.send`` and ``httpx2.AsyncClient.send`` (and httpx's, where installed) are
wrapped once per session. Outside a repetition the wrapper passes straight through; inside
one it gives the call its address, lets the cassette layer (which works one level lower,
at the transport, through vcrpy) replay or record it, and turns the finished response into
a :class:`~pytest_agentpatterns.records.CallRecord`.
"""

from __future__ import annotations

import contextvars
import importlib
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from .budget import Ledger
from .execution import CallRefused, CallSite, current_site
from .records import Address, CallRecord
from .scrub import public_url
from .usage import Usage, usage_from_response


class BudgetExceeded(CallRefused):
    """A live call was about to be made after the budget was spent."""


class Replayer(Protocol):
    """What the cassette layer offers the transport (see ``cassettes.py``)."""

    def will_replay(self, address: Address) -> bool: ...


@dataclass
class CallInfo:
    """Filled in by the cassette layer while a call is under way."""

    address: Address
    replayed_duration: float | None = None
    stored: dict[str, Any] | None = None


_CALL: contextvars.ContextVar[CallInfo | None] = contextvars.ContextVar(
    "agentpatterns_call", default=None
)


def current_call() -> CallInfo | None:
    """The call under way in this thread or task, for the cassette layer."""
    return _CALL.get()


@dataclass
class Meter:
    """Prices calls and keeps the live-spend budget (see :mod:`.budget`)."""

    cost_of: Callable[[Usage | None, str | None], float | None]
    budget: float | None = None
    ledger: Ledger = field(default_factory=Ledger)

    def check_budget(self, address: Address) -> None:
        if self.budget is None:
            return
        spent = self.ledger.spent()
        if spent >= self.budget:
            raise BudgetExceeded(
                f"--patterns-budget: ${spent:.4f} of ${self.budget:g} already spent on "
                f"live calls; call {address} was not made. Raise the budget or replay from "
                "cassettes."
            )

    def charge(self, cost: float | None) -> None:
        if cost is not None and self.budget is not None:
            self.ledger.charge(cost)


class _Call:
    """One intercepted call from start to the end of its body."""

    def __init__(self, site: CallSite, meter: Meter, request: Any) -> None:
        self.site = site
        self.meter = meter
        self.request = request
        self.info = CallInfo(site.next_address())
        self.started = time.perf_counter()
        self.done = False

    def begin(self) -> contextvars.Token[CallInfo | None]:
        replayer: Replayer | None = getattr(self.site.state, "replayer", None)
        if replayer is None or not replayer.will_replay(self.info.address):
            self.meter.check_budget(self.info.address)
        return _CALL.set(self.info)

    def failed(self, exc: BaseException) -> None:
        self._finish(None, None, b"", error=f"{type(exc).__name__}: {exc}")

    def responded(self, response: Any) -> None:
        if response.is_closed:
            self._finish(response, response.status_code, response.content)
            return
        self.site.state.pending.append(self.interrupt)

    def interrupt(self) -> None:
        """The body was never read to its end (an abandoned stream): usage unknown."""
        self._finish(None, None, b"", error="stream not read to its end")

    def _finish(
        self, response: Any, status: int | None, body: bytes, error: str | None = None
    ) -> None:
        if self.done:
            return
        self.done = True
        info = self.info
        duration = info.replayed_duration
        if duration is None:
            duration = time.perf_counter() - self.started
        if info.stored is not None:
            info.stored["duration"] = round(duration, 6)
        usage = None
        if response is not None:
            try:
                request_body = self.request.content
            except Exception:
                request_body = None
            usage = usage_from_response(
                self.request.url.path, response.headers.get("content-type"), body, request_body
            )
        date = response.headers.get("date") if response is not None else None
        cost = self.meter.cost_of(usage, date)
        replayed = info.replayed_duration is not None
        if not replayed:
            self.meter.charge(cost)
        self.site.job.durations.append(duration)
        self.site.state.add_call(
            CallRecord(
                address=info.address,
                method=self.request.method,
                url=public_url(str(self.request.url)),
                status=status,
                duration=duration,
                model=usage.model if usage else None,
                input_tokens=usage.input_tokens if usage else None,
                output_tokens=usage.output_tokens if usage else None,
                cache_write_tokens=usage.cache_write_tokens if usage else None,
                cache_read_tokens=usage.cache_read_tokens if usage else None,
                cost=cost,
                replayed=replayed,
                error=error,
            )
        )
        if self.interrupt in self.site.state.pending:
            self.site.state.pending.remove(self.interrupt)


def _decode(raw: bytes, encoding: str | None) -> bytes:
    if not encoding or encoding == "identity":
        return raw
    if encoding in ("gzip", "deflate"):
        try:
            return zlib.decompress(raw, zlib.MAX_WBITS | 32)
        except zlib.error:
            return b""
    return b""


def _tee_sync(call: _Call, response: Any, module: Any) -> None:
    inner = response.stream
    chunks: list[bytes] = []

    class Tee(module.SyncByteStream):  # type: ignore[misc]
        def __iter__(self) -> Iterator[bytes]:
            for chunk in inner:
                chunks.append(chunk)
                yield chunk
            self._end()

        def close(self) -> None:
            inner.close()
            self._end()

        def _end(self) -> None:
            body = _decode(b"".join(chunks), response.headers.get("content-encoding"))
            call._finish(response, response.status_code, body)

    response.stream = Tee()


def _tee_async(call: _Call, response: Any, module: Any) -> None:
    inner = response.stream
    chunks: list[bytes] = []

    class Tee(module.AsyncByteStream):  # type: ignore[misc]
        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for chunk in inner:
                chunks.append(chunk)
                yield chunk
            self._end()

        async def aclose(self) -> None:
            await inner.aclose()
            self._end()

        def _end(self) -> None:
            body = _decode(b"".join(chunks), response.headers.get("content-encoding"))
            call._finish(response, response.status_code, body)

    response.stream = Tee()


def _wrap_sync(original: Callable[..., Any], module: Any) -> Callable[..., Any]:
    def send(client: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        site = current_site()
        meter: Meter | None = getattr(site.state, "meter", None) if site else None
        if site is None or meter is None:
            return original(client, request, *args, **kwargs)
        call = _Call(site, meter, request)
        token = call.begin()
        try:
            response = original(client, request, *args, **kwargs)
        except BaseException as exc:
            call.failed(exc)
            raise
        finally:
            _CALL.reset(token)
        if not response.is_closed:
            _tee_sync(call, response, module)
        call.responded(response)
        return response

    send.__wrapped__ = original  # type: ignore[attr-defined]
    return send


def _wrap_async(original: Callable[..., Any], module: Any) -> Callable[..., Any]:
    async def send(client: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        site = current_site()
        meter: Meter | None = getattr(site.state, "meter", None) if site else None
        if site is None or meter is None:
            return await original(client, request, *args, **kwargs)
        call = _Call(site, meter, request)
        token = call.begin()
        try:
            response = await original(client, request, *args, **kwargs)
        except BaseException as exc:
            call.failed(exc)
            raise
        finally:
            _CALL.reset(token)
        if not response.is_closed:
            _tee_async(call, response, module)
        call.responded(response)
        return response

    send.__wrapped__ = original  # type: ignore[attr-defined]
    return send


_installed = 0
_originals: list[tuple[type, str, Any]] = []
_install_lock = threading.Lock()


def install() -> None:
    """Wrap the HTTP clients' ``send``; nested installs (pytester) are counted."""
    global _installed
    with _install_lock:
        _installed += 1
        if _installed > 1:
            return
        for module_name in ("httpx2", "httpx"):
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            for cls, wrap in ((module.Client, _wrap_sync), (module.AsyncClient, _wrap_async)):
                original = cls.__dict__["send"]
                _originals.append((cls, "send", original))
                cls.send = wrap(original, module)


def uninstall() -> None:
    """Undo :func:`install` once the last installer is done."""
    global _installed
    with _install_lock:
        _installed -= 1
        if _installed > 0:
            return
        while _originals:
            cls, name, original = _originals.pop()
            setattr(cls, name, original)
