"""Running role functions in branches: attribution, real concurrency and virtual clocks.

A repetition owns a tree of branches. Each branch is a sequence of *jobs* (one role-function
invocation, holding the calls it made) and *forks* (child branches that run at once). The
``Flow`` handed to a pattern is the only way patterns touch this tree, so every call the
task makes is attributed to its :class:`~pytest_agentpatterns.records.Address` and every
latency can be recomposed from the recorded call durations.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import inspect
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

from .records import Address, CallRecord, VerifyRecord

T = TypeVar("T")


class CallRefused(BaseException):
    """A call the plugin would not let through (no recording in replay mode, budget spent).

    A BaseException, so SDKs that retry every ``Exception`` as a connection error (the
    Anthropic SDK does) give up at once and the user sees the plugin's message.
    """


class BranchCancelled(CallRefused):
    """A call from a branch whose sibling failed: refused, never sent.

    ``recorded`` is true when the refusal was replayed from the cassette (the recording
    refused this call the same way), so replay follows the recording whatever the timing.
    """

    def __init__(self, message: str, *, recorded: bool = False) -> None:
        super().__init__(message)
        self.recorded = recorded


@dataclass
class Job:
    """One role-function invocation: the durations of the calls it made, in order."""

    role: str
    durations: list[float] = field(default_factory=list)
    addresses: list[Address] = field(default_factory=list)
    """The address of the call at each slot of ``durations`` (for span timelines)."""


@dataclass
class Fork:
    """Child branches that run at the same time; the parent waits for all of them."""

    children: list[Branch]


@dataclass
class Branch:
    """A sequential strand of work within a repetition."""

    path: tuple[str, ...]
    items: list[Job | Fork] = field(default_factory=list)

    def child(self, label: str) -> Branch:
        return Branch((*self.path, label))


class RepetitionState:
    """What one repetition collects: its calls, its branch tree, its score and flags."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.root = Branch(())
        self._calls: dict[Address, CallRecord] = {}
        self.score: float | None = None
        self.verified: bool | None = None
        self.wall: float = 0.0
        self.replayed = False
        self.failures: list[str] = []
        self.pending: list[Callable[[], None]] = []
        self._ordinals: Counter[tuple[tuple[str, ...], str]] = Counter()
        self.meter: Any = None
        self.replayer: Any = None
        self.open_calls: dict[Any, list[Any]] = {}
        self.stopped: str | None = None
        self.refused = 0
        self.closing = False
        self._cancelled: set[tuple[str, ...]] = set()
        self._threads: list[Future[Any]] = []
        self._lock = threading.Lock()
        # Evidence (see runner.py): what the task returned, what verify said, which
        # exceptions came from the task's own calls, and where time started.
        self.output: str | None = None
        self.returned = 0
        self.check_errors: str | None = None
        self.evidence_chars: int | None = None
        self.scrubber: Any = None
        self.started_ns = time.time_ns()
        self.started = time.perf_counter()
        self.call_starts: dict[Address, float] = {}
        self._verdicts: list[tuple[tuple[str, ...], int, VerifyRecord]] = []
        self._call_errors: list[BaseException] = []

    @property
    def calls(self) -> list[CallRecord]:
        """The calls made so far, one record per logical call."""
        with self._lock:
            return list(self._calls.values())

    def add_call(self, record: CallRecord) -> None:
        """Keep a call's record; a retried call's record replaces its earlier attempt's."""
        with self._lock:
            self._calls.pop(record.address, None)
            self._calls[record.address] = record
            self.replayed = self.replayed or record.replayed

    def drop_call(self, address: Address) -> None:
        """Forget the record of a call whose retry was refused (see ``BranchCancelled``)."""
        with self._lock:
            self._calls.pop(address, None)

    def stop(self, message: str) -> None:
        """A live call was refused by the budget: the item stops after this repetition."""
        with self._lock:
            self.refused += 1
            if self.stopped is None:
                self.stopped = message

    def cancel(self, paths: Sequence[tuple[str, ...]]) -> None:
        """Refuse every later call from these branches and the branches below them."""
        with self._lock:
            self._cancelled.update(paths)

    def cancelled(self, path: tuple[str, ...]) -> bool:
        """Whether calls from the branch at ``path`` are refused (a sibling failed)."""
        with self._lock:
            return any(path[: len(p)] == p for p in self._cancelled)

    def track(self, future: Future[Any]) -> None:
        """Remember a role function running in a worker thread, to wait for it."""
        with self._lock:
            self._threads = [f for f in self._threads if not f.done()]
            self._threads.append(future)

    def seal(self) -> None:
        """End the repetition: refuse every later call and wait for every thread it started.

        Sync role functions cannot be interrupted, so the repetition waits for them; the
        cassette stays open until they are done, and whatever they still try to send is
        refused, never sent.
        """
        with self._lock:
            self.closing = True
        while True:
            with self._lock:
                running = [f for f in self._threads if not f.done()]
            if not running:
                break
            wait(running)

    def fail(self, message: str) -> None:
        """Remember a problem that must fail the item whatever the test body does."""
        with self._lock:
            if message not in self.failures:
                self.failures.append(message)

    def next_ordinal(self, path: tuple[str, ...], role: str) -> int:
        """The next call's ordinal for this branch path and role, across every ``agent.run``
        of the repetition, so two runs in one test body never share an address."""
        with self._lock:
            ordinal = self._ordinals[path, role]
            self._ordinals[path, role] += 1
            return ordinal

    def finish_pending(self) -> None:
        """Close the books on calls whose streamed body was never read to its end."""
        for finish in list(self.pending):
            finish()

    def ordered_calls(self) -> tuple[CallRecord, ...]:
        """Calls in address order, not completion order, so results are deterministic."""
        return tuple(sorted(self.calls, key=lambda c: c.address))

    def add_verdict(self, path: tuple[str, ...], record: VerifyRecord) -> None:
        """Keep what one ``verify`` call said, at the branch it ran in."""
        with self._lock:
            self._verdicts.append((path, len(self._verdicts), record))

    def verdicts(self) -> tuple[VerifyRecord, ...]:
        """Every ``verify`` verdict in branch order (``best[2]`` before ``best[10]``), then in
        the order they were given within a branch."""
        with self._lock:
            kept = list(self._verdicts)
        kept.sort(key=lambda v: (_natural(v[0]), v[1]))
        return tuple(record for _, _, record in kept)

    def call_failed(self, error: BaseException) -> None:
        """Remember an exception that escaped ``agent.run`` or a judge's call: it comes from
        the task's calls, never from the test body's checks."""
        with self._lock:
            self._call_errors.append(error)

    def from_calls(self, error: BaseException) -> bool:
        """Whether ``error`` (or an exception it was raised from) escaped ``agent.run`` or a
        judge's call."""
        seen: set[int] = set()
        current: BaseException | None = error
        with self._lock:
            failed = {id(e) for e in self._call_errors}
        while current is not None and id(current) not in seen:
            if id(current) in failed:
                return True
            seen.add(id(current))
            current = current.__cause__ or current.__context__
        return False


def _natural(path: tuple[str, ...]) -> tuple[tuple[Any, ...], ...]:
    """A branch path's sort key with numbers compared as numbers."""
    return tuple(
        tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", label)) for label in path
    )


@dataclass(frozen=True)
class CallSite:
    """Where calls made now belong: a repetition, a branch, a role and its current job."""

    state: RepetitionState
    branch: Branch
    role: str
    job: Job

    def next_address(self) -> Address:
        """Allocate the address of the next call made from this site."""
        ordinal = self.state.next_ordinal(self.branch.path, self.role)
        return Address(self.state.index, self.branch.path, self.role, ordinal)


_SITE: contextvars.ContextVar[CallSite | None] = contextvars.ContextVar(
    "agentpatterns_site", default=None
)
_INLINE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agentpatterns_inline", default=False
)
"""True while a flow runs in its caller's thread without the event loop (see ``run_flow``)."""
_BRANCH: contextvars.ContextVar[Branch | None] = contextvars.ContextVar(
    "agentpatterns_branch", default=None
)


def current_site() -> CallSite | None:
    """The call site of the running role function, or None outside any repetition."""
    return _SITE.get()


def enter_body(state: RepetitionState) -> contextvars.Token[CallSite | None]:
    """Attribute calls the test body makes outside ``agent.run`` to role ``test``."""
    job = Job("test")
    state.root.items.append(job)
    return _SITE.set(CallSite(state, state.root, "test", job))


def leave_body(token: contextvars.Token[CallSite | None]) -> None:
    _SITE.reset(token)


@contextmanager
def role_scope(role: str) -> Iterator[RepetitionState | None]:
    """Attribute the calls made inside to ``role`` when made from the test body.

    The calls are addressed ``r<rep>/main/<role>#<n>``, recorded and replayed like any other,
    and kept out of the task's timeline (they add nothing to its latency). Inside a role
    function (a ``verify`` that asks a judge) the calls stay that role's: they are part of the
    task. Yields the repetition's state, or None outside a repetition.
    """
    site = current_site()
    if site is None:
        yield None
        return
    if site.role != "test":
        yield site.state
        return
    token = _SITE.set(CallSite(site.state, site.state.root, role, Job(role)))
    try:
        yield site.state
    finally:
        _SITE.reset(token)


_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """One process-wide pool for sync roles; threads are made only as branches need them."""
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=512, thread_name_prefix="agentpatterns")
        return _EXECUTOR


class Flow:
    """The primitives a pattern is composed of: call a role, fork, chain, vote, verify.

    Patterns receive a ``Flow`` and use only these methods, so branches, attribution and
    the concurrency bound are handled in one place.
    """

    def __init__(
        self,
        state: RepetitionState,
        task: Any,
        input: Any,
        params: dict[str, Any],
        limit: int | None,
        aggregators: dict[str, Callable[..., Any]],
    ) -> None:
        self.state = state
        self.task = task
        self.input = input
        self.params = params
        self._limit = asyncio.Semaphore(limit) if limit else None
        self._aggregators = aggregators

    @property
    def branch(self) -> Branch:
        return _BRANCH.get() or self.state.root

    async def call(self, role: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one role function in the current branch, within the concurrency bound.

        Sync functions run in a worker thread with the context copied; async ones run as
        part of the current task. Calls they make are attributed to this branch and role.
        """
        if self._limit is None:
            return await self._call(role, fn, args)
        async with self._limit:
            return await self._call(role, fn, args)

    async def _call(self, role: str, fn: Callable[..., Any], args: Sequence[Any]) -> Any:
        branch = self.branch
        job = Job(role)
        branch.items.append(job)
        token = _SITE.set(CallSite(self.state, branch, role, job))
        try:
            if _INLINE.get():
                return self._call_inline(fn, args)
            if inspect.iscoroutinefunction(fn):
                result = await fn(*args)
            else:
                ctx = contextvars.copy_context()
                future = _executor().submit(ctx.run, fn, *args)
                self.state.track(future)
                result = await asyncio.wrap_future(future)
            if inspect.isawaitable(result):
                result = await result
            return result
        finally:
            _SITE.reset(token)

    async def fork(self, label: str, n: int, body: Callable[[int], Awaitable[T]]) -> list[T]:
        """Run ``body(i)`` for i in range(n) at once, in branches ``label[i]``.

        Results come back in branch order, never completion order.
        """
        return await self.fork_named([f"{label}[{i}]" for i in range(n)], body)

    async def within(self, label: str, body: Callable[[], Awaitable[T]]) -> T:
        """Run ``body`` in the sequential child branch ``label``."""
        [result] = await self.fork_named([label], lambda _: body())
        return result

    async def fork_named(
        self, labels: Sequence[str], body: Callable[[int], Awaitable[T]]
    ) -> list[T]:
        """Like :meth:`fork`, with explicit branch labels.

        When a branch fails, its siblings are cancelled: each later call they try is
        refused (:class:`BranchCancelled`), and the fork waits for all of them before it
        raises, so no branch outlives its repetition. The error raised is the first by
        branch order, never by completion order.
        """
        if _INLINE.get() and len(labels) != 1:
            # Branches run at once only on the loop: the caller's thread drives it until the
            # fork is done, then goes on in place.
            return run_flow(lambda: _on_loop(self.fork_named(labels, body)))
        parent = self.branch
        children = [parent.child(label) for label in labels]
        parent.items.append(Fork(children))
        if _INLINE.get():
            return [await self._within_inline(parent, children[0], body)]

        failures: dict[int, tuple[BaseException, TracebackType | None]] = {}

        async def run(i: int) -> T:
            _BRANCH.set(children[i])
            try:
                return await body(i)
            except BaseException as exc:
                # Keep the traceback as the branch raised it: re-raising adds frames, and
                # which error is re-raised first depends on timing.
                failures[i] = (exc, exc.__traceback__)
                raise

        tasks = [asyncio.create_task(run(i)) for i in range(len(labels))]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException as exc:
            first: BaseException = exc
        self.state.cancel([child.path for child in children])
        await asyncio.gather(*tasks, return_exceptions=True)
        failure, traceback = self._failure(parent, [failures[i] for i in sorted(failures)], first)
        raise failure.with_traceback(traceback)

    @staticmethod
    def _call_inline(fn: Callable[..., Any], args: Sequence[Any]) -> Any:
        """A role function called in place, in a copy of the context (as a worker thread
        would run it); an async one, or an awaitable it returns, runs on the shared loop."""
        if inspect.iscoroutinefunction(fn):
            return run_flow(lambda: _on_loop(fn(*args)))
        result = contextvars.copy_context().run(fn, *args)
        if inspect.isawaitable(result):
            awaitable = result
            return run_flow(lambda: _on_loop(awaitable))
        return result

    async def _within_inline(
        self, parent: Branch, child: Branch, body: Callable[[int], Awaitable[T]]
    ) -> T:
        """One sequential child branch, run in place: what ``fork_named`` does for one label."""
        token = _BRANCH.set(child)
        try:
            return await body(0)
        except BaseException as exc:
            self.state.cancel([child.path])
            failure, traceback = self._failure(parent, [(exc, exc.__traceback__)], exc)
            raise failure.with_traceback(traceback) from None
        finally:
            _BRANCH.reset(token)

    def _failure(
        self,
        parent: Branch,
        errors: Sequence[tuple[BaseException, TracebackType | None]],
        first: BaseException,
    ) -> tuple[BaseException, TracebackType | None]:
        """The error a failed fork raises: its first real failure in branch order."""
        real = [e for e in errors if not isinstance(e[0], BranchCancelled)]
        if real:
            return real[0]
        if isinstance(first, asyncio.CancelledError) or not errors:
            return first, first.__traceback__
        replayed = [e for e, _ in errors if isinstance(e, BranchCancelled) and e.recorded]
        if replayed and not self.state.cancelled(parent.path):
            message = (
                f"{replayed[0]}; but no branch failed this time. The task behaves differently "
                "from its recording: re-record the item with --patterns-record=rewrite."
            )
            self.state.fail(message)
            return CallRefused(message), None
        return errors[0]

    # Task-level conveniences built on the primitives above.

    async def propose(self) -> Any:
        return await self.call("propose", self.task.propose, self.input)

    async def chain(self) -> Any:
        """The sequential chain: each step fed the previous output (``[propose]`` if none)."""
        if not self.task.steps:
            return await self.propose()
        prev: Any = None
        for i, step in enumerate(self.task.steps):

            async def run_step(step: Callable[..., Any] = step, prev: Any = prev) -> Any:
                return await self.call("step", step, self.input, prev)

            prev = await self.within(f"steps[{i}]", run_step)
        return prev

    async def verify(self, output: Any) -> Any:
        """Call ``verify`` and normalise its answer into a Verdict (kept as evidence)."""
        path = self.branch.path
        verdict = self.task.as_verdict(
            await self.call("verify", self.task.verify, self.input, output)
        )
        feedback = None if verdict.feedback is None else str(verdict.feedback)
        self.state.add_verdict(
            path,
            VerifyRecord(".".join(path) or "main", verdict.ok, verdict.score, feedback),
        )
        return verdict

    async def refine(self, output: Any, feedback: Any) -> Any:
        return await self.call("refine", self.task.refine, self.input, output, feedback)

    async def aggregate(self, outputs: list[Any]) -> Any:
        """Combine parallel outputs with the task's aggregator (a name or a callable)."""
        how = self.task.aggregate
        if callable(how):
            return await self.call("aggregate", how, outputs)
        fn = self._aggregators[how]
        result = fn(self, outputs)
        if inspect.isawaitable(result):
            result = await result
        return result


_LOOP: asyncio.AbstractEventLoop | None = None


def _loop() -> asyncio.AbstractEventLoop:
    """One long-lived event loop for every ``agent.run`` of the process.

    Async SDK clients keep connection pools bound to the loop that first used them, so a
    module-level ``AsyncAnthropic`` client must see the same loop in every repetition.
    """
    global _LOOP
    with _EXECUTOR_LOCK:
        if _LOOP is None or _LOOP.is_closed():
            _LOOP = asyncio.new_event_loop()
        return _LOOP


class _Driver:
    """Who runs the shared loop: the thread calling ``agent.run``, in place.

    Handing every flow to a thread of its own cost a wake-up each way (with the GIL handed
    over twice), more than a trivial item's whole run. So the caller runs the loop itself;
    a flow started from another thread meanwhile (a sync role function calling
    ``agent.run``, threads of the test's own) is handed to the running loop, and the
    driving thread keeps the loop running until those flows are done too.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._driving = False
        self._guests = 0
        self._idle: asyncio.Future[None] | None = None

    def run(self, loop: asyncio.AbstractEventLoop, start: Callable[[], tuple[Any, Future[T]]]) -> T:
        """Run the flow ``start()`` schedules on ``loop`` and return its result."""
        with self._lock:
            drive, self._driving = not self._driving, True
            if not drive:
                self._guests += 1
        if not drive:
            handed: list[Future[T]] = []
            ready = threading.Event()

            def begin() -> None:
                handed.append(start()[1])
                handed[0].add_done_callback(lambda _: self._guest_done())
                ready.set()

            loop.call_soon_threadsafe(begin)
            ready.wait()
            return handed[0].result()
        try:
            task, done = start()
            try:
                loop.run_until_complete(task)
            except BaseException:
                if not done.done():
                    raise  # interrupted (KeyboardInterrupt), not the flow's own error
            return done.result()
        finally:
            self._leave(loop)

    def _leave(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop driving once no flow handed over meanwhile is still running."""
        while True:
            with self._lock:
                if self._guests == 0:
                    self._driving = False
                    return
                self._idle = loop.create_future()
            loop.run_until_complete(self._idle)

    def _guest_done(self) -> None:
        with self._lock:
            self._guests -= 1
            if self._guests == 0 and self._idle is not None and not self._idle.done():
                self._idle.set_result(None)


_DRIVER = _Driver()


def run_flow(coro_factory: Callable[[], Awaitable[T]], *, inline: bool = False) -> T:
    """Run a pattern's coroutine to completion from sync code, on the shared loop.

    The coroutine runs with a copy of the caller's context, so attribution and any
    context variables of the user's code carry over.

    With ``inline``, for coroutines that await nothing but ``Flow`` primitives (the built-in
    patterns), the caller's thread runs it without the loop: sync role functions are called
    in place, and only what needs the loop (forks of several branches, async role
    functions) is handed to it. A one-step task then costs a function call, not a loop turn
    and a thread hand-off each way.
    """
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if inline and running is None:
        return contextvars.copy_context().run(_run_inline, coro_factory)
    loop = _loop()
    if running is loop:
        raise RuntimeError(
            "agent.run() was called from inside an async role function; use await agent.arun()"
        )
    ctx = contextvars.copy_context()
    if running is not None:
        # This thread runs a loop of its own (agent.run from async code): it cannot run the
        # shared one, so a helper thread does while the caller blocks, as before.
        def elsewhere() -> T:
            return run_flow(coro_factory)

        with ThreadPoolExecutor(1, thread_name_prefix="agentpatterns-flow") as helper:
            return helper.submit(ctx.run, elsewhere).result()

    def start() -> tuple[asyncio.Task[T], Future[T]]:
        done: Future[T] = Future()
        task = ctx.run(loop.create_task, _as_coroutine(coro_factory))

        def finish(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                done.cancel()
            elif (error := task.exception()) is not None:
                done.set_exception(error)
            else:
                done.set_result(task.result())

        task.add_done_callback(finish)
        return task, done

    return _DRIVER.run(loop, start)


async def _as_coroutine(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


async def _on_loop(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` as a loop task: role calls inside it go to worker threads again."""
    _INLINE.set(False)
    return await awaitable


def _run_inline(coro_factory: Callable[[], Awaitable[T]]) -> T:
    """Drive the coroutine by hand; it must finish without suspending (see ``run_flow``)."""
    _INLINE.set(True)
    coro = _as_coroutine(coro_factory)
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a pattern run in place awaited something other than Flow primitives")


def virtual_latency(root: Branch, limit: int | None = None) -> float:
    """Compose recorded call durations along the branch tree.

    A job adds its calls' durations to its branch's clock; a fork's branches start
    together and the parent resumes at the latest of them. With ``limit`` set, at most
    that many jobs run at once: jobs wait for a free slot in the order they asked for one
    (ties broken by branch order), the same rule the live run follows.
    """
    if limit is None:
        return _free_latency(root)
    return _bounded_latency(root, limit)


def _free_latency(branch: Branch) -> float:
    total = 0.0
    for item in branch.items:
        if isinstance(item, Job):
            total += sum(item.durations)
        else:
            total += max((_free_latency(c) for c in item.children), default=0.0)
    return total


def call_offsets(root: Branch) -> dict[Address, float]:
    """When each call starts on the virtual clock of :func:`virtual_latency` (unbounded):
    seconds from the repetition's start, composed from the recorded durations."""
    offsets: dict[Address, float] = {}

    def walk(branch: Branch, start: float) -> float:
        clock = start
        for item in branch.items:
            if isinstance(item, Job):
                for address, duration in zip(item.addresses, item.durations, strict=False):
                    offsets[address] = clock
                    clock += duration
            else:
                clock = max((walk(c, clock) for c in item.children), default=clock)
        return clock

    walk(root, 0.0)
    return offsets


@dataclass
class _Proc:
    items: deque[Job | Fork]
    parent: _Proc | None
    pending: int = 0


def _bounded_latency(root: Branch, limit: int) -> float:
    free = limit
    waiting: deque[tuple[_Proc, float]] = deque()
    events: list[tuple[float, int, _Proc]] = []
    seq = 0
    end = 0.0

    def advance(proc: _Proc, now: float) -> None:
        nonlocal free, seq, end
        while proc.items:
            item = proc.items.popleft()
            if isinstance(item, Job):
                hold = sum(item.durations)
                if free > 0:
                    free -= 1
                    seq += 1
                    heapq.heappush(events, (now + hold, seq, proc))
                else:
                    waiting.append((proc, hold))
                return
            if item.children:
                proc.pending = len(item.children)
                for child in item.children:
                    advance(_Proc(deque(child.items), proc), now)
                return
        if proc.parent is None:
            end = max(end, now)
            return
        proc.parent.pending -= 1
        if proc.parent.pending == 0:
            advance(proc.parent, now)

    advance(_Proc(deque(root.items), None), 0.0)
    while events:
        now, _, proc = heapq.heappop(events)
        free += 1
        if waiting:
            other, hold = waiting.popleft()
            free -= 1
            seq += 1
            heapq.heappush(events, (now + hold, seq, other))
        advance(proc, now)
    return end
