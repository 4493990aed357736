"""run_flow: the caller runs the shared loop in place; flows from other threads meanwhile are
handed to it, and the loop stays the same one for every flow of the process."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from pytest_agentpatterns.execution import _executor, run_flow

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("test_run_flow_var", default="unset")


async def _loop_of() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_every_flow_runs_on_one_loop_with_the_callers_context() -> None:
    async def read() -> str:
        return VAR.get()

    token = VAR.set("caller")
    try:
        assert run_flow(read) == "caller"
    finally:
        VAR.reset(token)
    assert run_flow(_loop_of) is run_flow(_loop_of)


def test_errors_raise_in_the_caller_and_the_loop_runs_on() -> None:
    async def fail() -> None:
        raise ValueError("from the flow")

    with pytest.raises(ValueError, match="from the flow"):
        run_flow(fail)
    assert run_flow(_loop_of) is not None


def test_a_sync_role_function_can_run_a_flow_of_its_own() -> None:
    """A flow started from a worker thread while the caller drives the loop is handed over."""

    async def inner() -> str:
        return "inner"

    async def outer() -> str:
        future = _executor().submit(run_flow, inner)
        return "outer+" + await asyncio.wrap_future(future)

    assert run_flow(outer) == "outer+inner"


def test_flows_from_two_threads_at_once_both_finish() -> None:
    """Both flows are inside the loop at the same time (the barrier proves it)."""
    barrier = asyncio.Event()
    arrived: list[str] = []

    async def meet(name: str) -> str:
        arrived.append(name)
        if len(arrived) == 2:
            barrier.set()
        await asyncio.wait_for(barrier.wait(), timeout=10)
        return name

    start = threading.Barrier(2)

    def flow(name: str) -> str:
        start.wait(timeout=10)
        return run_flow(lambda: meet(name))

    with ThreadPoolExecutor(2) as threads:
        results = list(threads.map(flow, ["a", "b"]))
    assert results == ["a", "b"]
    assert sorted(arrived) == ["a", "b"]


def test_a_thread_running_its_own_loop_can_run_a_flow() -> None:
    async def inside_a_loop() -> asyncio.AbstractEventLoop:
        return run_flow(_loop_of)

    assert asyncio.run(inside_a_loop()) is run_flow(_loop_of)


def test_agent_run_inside_an_async_role_function_is_refused() -> None:
    async def nested() -> None:
        run_flow(_loop_of)

    with pytest.raises(RuntimeError, match=r"use await agent\.arun"):
        run_flow(nested)
