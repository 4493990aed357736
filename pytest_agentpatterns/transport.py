"""Seeing every HTTP call a task makes: attribution, timing, usage, cost and budget.

``httpx2.Client.send`` and ``httpx2.AsyncClient.send`` (and httpx's, where installed) are
wrapped once per session. Outside a repetition the wrapper passes straight through; inside
one it gives the call its address, lets the cassette layer (which works one level lower,
at the transport) replay or record it, and turns the finished response into a
:class:`~pytest_agentpatterns.records.CallRecord`.

A call's address counts *logical* calls, not send attempts: when an SDK retries (the
Anthropic and OpenAI SDKs send ``x-stainless-retry-count`` > 0 with the same request; other
clients may repeat an ``Idempotency-Key``), the attempt keeps the address of the call it
retries, and its record replaces the failed attempt's.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import json
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import backoff
from .budget import Ledger, Limits, worst_case_usage
from .execution import BranchCancelled, CallRefused, CallSite, RepetitionState, current_site
from .records import DURATION_DIGITS, Address, CallRecord
from .scrub import public_url
from .usage import Usage, usage_from_response

RETRY_HEADER = "x-stainless-retry-count"
IDEMPOTENCY_HEADER = "idempotency-key"
RETRYABLE_STATUS = frozenset({408, 409, 429})
"""Statuses an SDK retries (with every 5xx): an attempt that got one may be tried again."""
WAIT_LIMIT = 60.0
"""Seconds a live call waits for calls in flight to settle before the budget refuses it."""


class BudgetExceeded(CallRefused):
    """A live call was about to be made after the budget (or the call cap) was spent."""


class Replayer(Protocol):
    """What the cassette layer offers the transport (see ``cassettes.py``)."""

    def will_replay(self, call: CallInfo) -> bool: ...

    def record_cancelled(self, call: CallInfo) -> None: ...


@dataclass(eq=False)
class CallInfo:
    """One logical call, shared by its send attempts; the cassette layer fills it in."""

    address: Address
    key: tuple[Any, ...] = ()
    started: float = field(default_factory=time.perf_counter)
    attempt: int = 0
    slot: int | None = None
    reserved: float = 0.0
    replayed_duration: float | None = None
    stored: dict[str, Any] | None = None
    status: int | None = None
    flush: Callable[[], None] | None = None
    recorded: list[tuple[int, int]] = field(default_factory=list)
    played: list[int] = field(default_factory=list)
    """The recordings replayed to this call's attempts (the cassette keeps no list of
    calls, so a finished call is let go)."""

    def retry(self) -> None:
        """Start the next attempt of this call."""
        self.attempt += 1
        self.replayed_duration = None
        self.status = None
        self.flush = None


_CALL: contextvars.ContextVar[CallInfo | None] = contextvars.ContextVar(
    "agentpatterns_call", default=None
)


def current_call() -> CallInfo | None:
    """The call under way in this thread or task, for the cassette layer."""
    return _CALL.get()


@dataclass
class Meter:
    """Prices calls and keeps the live-spend budget and call cap (see :mod:`.budget`).

    ``estimate`` prices the worst case of a model ``cost_of`` has no price for, so that
    unpriced calls count against the budget too; without it they reserve nothing.
    """

    cost_of: Callable[[Usage | None, str | None], float | None]
    """Prices a call from its usage and the date it was made (an HTTP ``Date``)."""
    budget: float | None = None
    ledger: Ledger = field(default_factory=Ledger)
    max_calls: int | None = None
    estimate: Callable[[Usage], float | None] | None = None

    @property
    def limits(self) -> Limits:
        return Limits(self.budget, self.max_calls)

    def _limited(self) -> bool:
        return self.budget is not None or self.max_calls is not None

    def _worst(self, request: Any) -> float:
        if self.budget is None:
            return 0.0
        usage = worst_case_usage(_body(request))
        cost = self.cost_of(usage, None)
        if cost is None and self.estimate is not None:
            cost = self.estimate(usage)
        return cost or 0.0

    def _refused(self, state: RepetitionState, info: CallInfo, reason: str) -> BudgetExceeded:
        totals = self.ledger.totals()
        message = (
            f"{reason} (${totals.spent:.6f} spent on live calls, {totals.calls} calls made): "
            f"call {info.address} was not made"
        )
        state.stop(message)
        return BudgetExceeded(message)

    def admit(self, state: RepetitionState, info: CallInfo, request: Any, path: Any) -> None:
        """Reserve the call's worst case, waiting for calls in flight; raise
        :class:`BudgetExceeded` when the budget or the call cap is spent, and
        :class:`BranchCancelled` when the branch at ``path`` is cancelled meanwhile."""
        if not self._limited():
            return
        amount = self._worst(request)
        deadline = time.monotonic() + WAIT_LIMIT
        while not self._reserved(state, info, path, amount, deadline):
            with self.ledger.changed:
                self.ledger.changed.wait(0.02)

    async def aadmit(self, state: RepetitionState, info: CallInfo, request: Any, path: Any) -> None:
        """Like :meth:`admit`, waiting without blocking the event loop."""
        if not self._limited():
            return
        amount = self._worst(request)
        deadline = time.monotonic() + WAIT_LIMIT
        while not self._reserved(state, info, path, amount, deadline):
            await asyncio.sleep(0.02)

    def _reserved(
        self, state: RepetitionState, info: CallInfo, path: Any, amount: float, deadline: float
    ) -> bool:
        """One try to reserve ``amount`` for ``info``: True when reserved, False to wait and
        try again; raises when the call is refused, stalled or its branch cancelled."""
        verdict = self.ledger.try_reserve(self.limits, amount, info.attempt == 0)
        if verdict is True:
            info.reserved = amount
            return True
        if isinstance(verdict, str):
            raise self._refused(state, info, verdict)
        if time.monotonic() > deadline:
            raise self._refused(state, info, self._stalled())
        _check_cancelled(state, info, path)
        return False

    def _stalled(self) -> str:
        return (
            f"budget ${self.budget:g} held by calls in flight for {WAIT_LIMIT:g} s "
            "(a stream left open?)"
        )

    def settle(self, info: CallInfo, cost: float | None, usage: Usage | None) -> None:
        """Replace the call's reservation by its cost (an estimate when unpriced)."""
        if not self._limited():
            return
        reserved, info.reserved = info.reserved, 0.0
        if cost is None:
            estimated = self.estimate(usage) if usage is not None and self.estimate else None
            cost = reserved if estimated is None else estimated
        self.ledger.settle(reserved, cost)


def _too_late(state: RepetitionState) -> CallRefused:
    return CallRefused(
        f"a call from repetition {state.index} after it had finished was refused: start "
        "threads from role functions, not around them, so the repetition waits for them"
    )


def _check_cancelled(state: RepetitionState, info: CallInfo, path: Any) -> None:
    if state.closing:
        raise _too_late(state)
    if state.cancelled(path):
        raise BranchCancelled(f"call {info.address} was not made: a sibling branch had failed")


def _body(request: Any) -> bytes | None:
    try:
        content = request.content
    except Exception:
        return None
    return content if isinstance(content, bytes) else None


def _request_key(site: CallSite, request: Any) -> tuple[Any, ...]:
    return (
        site.branch.path,
        site.role,
        request.method,
        str(request.url),
        _body(request),
        request.headers.get(IDEMPOTENCY_HEADER),
    )


def _is_retry(request: Any) -> bool:
    try:
        return int(request.headers.get(RETRY_HEADER, "0")) > 0
    except ValueError:
        return False


def _logical_call(site: CallSite, request: Any) -> CallInfo:
    """This attempt's logical call: the failed call it retries, or a new address."""
    state = site.state
    key = _request_key(site, request)
    retrying = _is_retry(request) or key[-1] is not None
    with state._lock:
        waiting = state.open_calls.get(key)
        if retrying and waiting:
            info: CallInfo = waiting.pop(0)
            info.retry()
            return info
    return CallInfo(site.next_address(), key)


def _model_of(body: bytes | None) -> str | None:
    try:
        data = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        return None
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) else None


class _Call:
    """One send attempt of a logical call, from its start to the end of its body."""

    def __init__(self, site: CallSite, meter: Meter, request: Any) -> None:
        state = site.state
        if state.closing:
            raise _too_late(state)
        self.site = site
        self.meter = meter
        self.request = request
        self.info = _logical_call(site, request)
        self.done = False
        replayer: Replayer | None = state.replayer
        self.replaying = replayer is not None and replayer.will_replay(self.info)
        if not self.replaying and state.cancelled(site.branch.path):
            raise self._cancelled()

    def _cancelled(self) -> BranchCancelled:
        """Refuse this call: a sibling branch failed. The cassette keeps the refusal."""
        state, info = self.site.state, self.info
        if state.replayer is not None:
            state.replayer.record_cancelled(info)
        if info.slot is not None:
            # A retry refused: the refusal is what the cassette keeps for this call, so the
            # report keeps no record of it either, as when it is replayed.
            state.drop_call(info.address)
            self.site.job.durations[info.slot] = 0.0
        return BranchCancelled(f"call {info.address} was not made: a sibling branch had failed")

    def begin(self) -> contextvars.Token[CallInfo | None]:
        if not self.replaying:
            self.meter.admit(self.site.state, self.info, self.request, self.site.branch.path)
        return self._sending()

    async def abegin(self) -> contextvars.Token[CallInfo | None]:
        if not self.replaying:
            await self.meter.aadmit(self.site.state, self.info, self.request, self.site.branch.path)
        return self._sending()

    def _sending(self) -> contextvars.Token[CallInfo | None]:
        if self.info.attempt == 0:
            # A call's duration runs from its first send (after any wait for the budget) to
            # the end of the answering attempt's body, retries and their back-off included.
            self.info.started = time.perf_counter()
        return _CALL.set(self.info)

    def failed(self, exc: BaseException) -> None:
        if isinstance(exc, CallRefused) or (
            isinstance(exc, BaseException) and not isinstance(exc, Exception)
        ):
            self.meter.settle(self.info, 0.0, None)
            self.done = True
            return
        self._finish(self.info.status, b"", None, error=f"{type(exc).__name__}: {exc}")

    def responded(self, response: Any, module: Any) -> None:
        if response.is_closed:
            self._finish(
                response.status_code,
                response.content,
                response.headers.get("content-type"),
                date=response.headers.get("date"),
            )
            return
        if isinstance(response.stream, module.AsyncByteStream):
            _tee_async(self, response, module)
        else:
            _tee_sync(self, response, module)
        self.site.state.pending.append(self.interrupt)

    def interrupt(self) -> None:
        """The body was never read to its end (an abandoned stream): usage unknown."""
        if self.info.flush is not None:
            self.info.flush()
        self._finish(None, b"", None, error="stream not read to its end", usage_known=False)

    def _finish(
        self,
        status: int | None,
        body: bytes,
        content_type: str | None,
        error: str | None = None,
        usage_known: bool = True,
        date: str | None = None,
    ) -> None:
        if self.done:
            return
        self.done = True
        info = self.info
        state = self.site.state
        replayed = info.replayed_duration is not None
        # Live durations are kept at the cassette's precision, so that the recording run's
        # report is the one its replay gives, byte for byte.
        duration = (
            info.replayed_duration
            if replayed
            else round(time.perf_counter() - info.started, DURATION_DIGITS)
        )
        assert duration is not None
        if info.stored is not None and not replayed:
            info.stored["duration"] = duration
        usage: Usage | None
        cost: float | None
        request_body = _body(self.request)
        if not usage_known:
            usage, cost = None, None
        elif status is None or status >= 400:
            # No response, or an error response: nothing was generated, nothing is billed.
            usage, cost = Usage(_model_of(request_body), 0, 0), 0.0
        else:
            usage = usage_from_response(self.request.url.path, content_type, body, request_body)
            cost = self.meter.cost_of(usage, date)
        if not replayed:
            self.meter.settle(info, cost, usage)
        job = self.site.job
        with state._lock:
            if info.slot is None:
                info.slot = len(job.durations)
                job.durations.append(duration)
                job.addresses.append(info.address)
            else:
                job.durations[info.slot] = duration
            state.call_starts[info.address] = info.started - state.started
            if (error is not None and usage_known) or (status is not None and _retryable(status)):
                state.open_calls.setdefault(info.key, []).append(info)
        state.add_call(
            CallRecord(
                address=info.address,
                method=self.request.method,
                url=public_url(str(self.request.url)),
                status=status,
                duration=duration,
                model=usage.model if usage else _model_of(request_body),
                input_tokens=usage.input_tokens if usage else None,
                output_tokens=usage.output_tokens if usage else None,
                cache_write_tokens=usage.cache_write_tokens if usage else None,
                cache_read_tokens=usage.cache_read_tokens if usage else None,
                cost=cost,
                replayed=replayed,
                error=error,
                **_evidence(state, request_body, body, content_type),
            )
        )
        if self.interrupt in state.pending:
            state.pending.remove(self.interrupt)


def _evidence(
    state: RepetitionState, request: bytes | None, body: bytes, content_type: str | None
) -> dict[str, Any]:
    """The call's prompt digest and, unless evidence is off, raw excerpts of its prompt and
    response (the runner scrubs and cuts them once the item is over: :mod:`.evidence`)."""
    from . import evidence

    found: dict[str, Any] = {"prompt_hash": evidence.prompt_hash(request)}
    if state.evidence_chars != 0:
        found["prompt"] = evidence.prompt_excerpt(request)
        found["response"] = evidence.response_excerpt(body, content_type)
    return found


def _retryable(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def _decode(raw: bytes, encoding: str | None) -> bytes:
    if not encoding or encoding == "identity":
        return raw
    if encoding in ("gzip", "deflate"):
        try:
            return zlib.decompress(raw, zlib.MAX_WBITS | 32)
        except zlib.error:
            return b""
    return b""


@dataclass(frozen=True)
class _Tees:
    """Stream classes that keep a copy of a body as the caller reads it, made once per
    httpx module (a class statement per call would cost more than the call's bookkeeping)."""

    sync: Any
    asyncio: Any


_TEES: dict[Any, _Tees] = {}


def _tees(module: Any) -> _Tees:
    found = _TEES.get(module)
    if found is not None:
        return found

    class Tee(module.SyncByteStream):  # type: ignore[misc]
        def __init__(self, call: _Call, response: Any, inner: Any) -> None:
            self.call, self.response, self.inner = call, response, inner
            self.chunks: list[bytes] = []

        def __iter__(self) -> Iterator[bytes]:
            try:
                for chunk in self.inner:
                    self.chunks.append(chunk)
                    yield chunk
            except Exception as exc:
                self._end(f"{type(exc).__name__}: {exc}")
                raise
            self._end()

        def close(self) -> None:
            try:
                self.inner.close()
            finally:
                self._end()

        def _end(self, error: str | None = None) -> None:
            _ended(self.call, self.response, self.chunks, error)

    class AsyncTee(module.AsyncByteStream):  # type: ignore[misc]
        def __init__(self, call: _Call, response: Any, inner: Any) -> None:
            self.call, self.response, self.inner = call, response, inner
            self.chunks: list[bytes] = []

        async def __aiter__(self) -> AsyncIterator[bytes]:
            try:
                async for chunk in self.inner:
                    self.chunks.append(chunk)
                    yield chunk
            except Exception as exc:
                self._end(f"{type(exc).__name__}: {exc}")
                raise
            self._end()

        async def aclose(self) -> None:
            try:
                await self.inner.aclose()
            finally:
                self._end()

        def _end(self, error: str | None = None) -> None:
            _ended(self.call, self.response, self.chunks, error)

    found = _TEES[module] = _Tees(Tee, AsyncTee)
    return found


def _tee_sync(call: _Call, response: Any, module: Any) -> None:
    response.stream = _tees(module).sync(call, response, response.stream)


def _tee_async(call: _Call, response: Any, module: Any) -> None:
    response.stream = _tees(module).asyncio(call, response, response.stream)


def _ended(call: _Call, response: Any, chunks: list[bytes], error: str | None) -> None:
    body = _decode(b"".join(chunks), response.headers.get("content-encoding"))
    call._finish(
        response.status_code,
        body,
        response.headers.get("content-type"),
        error,
        date=response.headers.get("date"),
    )


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
            backoff.note_attempt(replayed_failure=call.replaying)
            raise
        finally:
            _CALL.reset(token)
        backoff.note_attempt(replayed_failure=False)
        call.responded(response, module)
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
        token = await call.abegin()
        try:
            response = await original(client, request, *args, **kwargs)
        except BaseException as exc:
            call.failed(exc)
            backoff.note_attempt(replayed_failure=call.replaying)
            raise
        finally:
            _CALL.reset(token)
        backoff.note_attempt(replayed_failure=False)
        call.responded(response, module)
        return response

    send.__wrapped__ = original  # type: ignore[attr-defined]
    return send


class Handler(Protocol):
    """What answers the httpx transports while it is active (the item's cassette)."""

    def handle(self, send: Callable[[Any], Any], request: Any, module: Any) -> Any: ...

    async def ahandle(self, send: Callable[[Any], Any], request: Any, module: Any) -> Any: ...


_active: list[Any] = []
"""The cassettes answering the httpx transports now, innermost last (pytester nests)."""


def active_replayer() -> Any:
    """The cassette answering HTTP requests now, or None between items."""
    try:
        return _active[-1]
    except IndexError:
        return None


@contextlib.contextmanager
def replaying(handler: Handler) -> Iterator[None]:
    """Let ``handler`` answer every request sent through an httpx transport meanwhile."""
    with _install_lock:
        _active.append(handler)
    try:
        yield
    finally:
        with _install_lock:
            _active.remove(handler)


_TRANSPORT_METHODS = (
    ("HTTPTransport", "handle_request"),
    ("MockTransport", "handle_request"),
    ("WSGITransport", "handle_request"),
    ("AsyncHTTPTransport", "handle_async_request"),
    ("MockTransport", "handle_async_request"),
    ("ASGITransport", "handle_async_request"),
)
"""The httpx transport methods vcrpy patches; the cassette layer answers them instead, with
stubs that pass a stream through as it arrives."""


def _transport_stub(original: Callable[..., Any], module: Any) -> Callable[..., Any]:
    def handle_request(transport: Any, request: Any) -> Any:
        handler = active_replayer()
        if handler is None:
            return original(transport, request)
        return handler.handle(lambda r: original(transport, r), request, module)

    handle_request.__wrapped__ = original  # type: ignore[attr-defined]
    return handle_request


def _async_transport_stub(original: Callable[..., Any], module: Any) -> Callable[..., Any]:
    async def handle_async_request(transport: Any, request: Any) -> Any:
        handler = active_replayer()
        if handler is None:
            return await original(transport, request)
        return await handler.ahandle(lambda r: original(transport, r), request, module)

    handle_async_request.__wrapped__ = original  # type: ignore[attr-defined]
    return handle_async_request


_installed = 0
_originals: list[tuple[type, str, Any]] = []
_install_lock = threading.Lock()


def _patch(cls: type, name: str, replacement: Any) -> None:
    _originals.append((cls, name, cls.__dict__.get(name)))
    setattr(cls, name, replacement)


def install() -> None:
    """Wrap the HTTP clients' ``send`` and their transports, once for the session (or the
    xdist worker); nested installs (pytester) are counted. Between items everything passes
    straight through; an item's cassette is switched in with :func:`replaying`."""
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
                _patch(cls, "send", wrap(cls.__dict__["send"], module))
            for cls_name, method in _TRANSPORT_METHODS:
                cls = getattr(module, cls_name)
                stub = _transport_stub if method == "handle_request" else _async_transport_stub
                _patch(cls, method, stub(getattr(cls, method), module))
        backoff.install()


def uninstall() -> None:
    """Undo :func:`install` once the last installer is done."""
    global _installed
    with _install_lock:
        _installed -= 1
        if _installed > 0:
            return
        while _originals:
            cls, name, original = _originals.pop()
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
        backoff.uninstall()
