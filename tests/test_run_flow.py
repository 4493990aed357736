"""run_flow: the caller runs the shared loop in place; flows from other threads meanwhile are
handed to it, and the loop stays the same one for every flow of the process."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from pytest_agentpatterns import Task
from pytest_agentpatterns.execution import RepetitionState, _executor, current_site, run_flow
from pytest_agentpatterns.fixture import Agent
from pytest_agentpatterns.patterns import builtin_registry

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


# Built-in patterns run in place: sync roles in the caller's thread, no loop turn ----------------


def _agent(spec_text: str) -> tuple[Agent, RepetitionState]:
    registry = builtin_registry()
    spec = registry.parse_one(spec_text)
    agent = Agent(registry.patterns[spec.name], spec, registry.aggregators)
    state = RepetitionState(0)
    agent.bind(state)
    return agent, state


def _roles_threads(spec_text: str) -> tuple[set[int], Any]:
    seen: set[int] = set()

    def propose(x: int) -> int:
        seen.add(threading.get_ident())
        return x + 1

    def step(x: int, prev: int | None) -> int:
        seen.add(threading.get_ident())
        return (prev or x) * 2

    def verify(x: int, output: int) -> bool:
        seen.add(threading.get_ident())
        return True

    task = Task(name="t", propose=propose, steps=[step, step], verify=verify, refine=propose)
    agent, _ = _agent(spec_text)
    return seen, agent.run(task, 3)


@pytest.mark.parametrize("spec", ["single", "sequential", "loop(max_iters=2)"])
def test_sequential_patterns_call_sync_roles_in_the_callers_thread(spec: str) -> None:
    seen, output = _roles_threads(spec)
    assert seen == {threading.get_ident()}
    assert output == {"single": 4, "sequential": 12, "loop(max_iters=2)": 4}[spec]


def test_forks_still_run_their_branches_at_once_in_worker_threads() -> None:
    """Two branches meet at a barrier: neither can finish unless both run at the same time."""
    barrier = threading.Barrier(2)
    threads: set[int] = set()

    def propose(x: int) -> int:
        threads.add(threading.get_ident())
        barrier.wait(timeout=10)
        return x

    agent, state = _agent("parallel(n=2)")
    assert agent.run(Task(name="t", propose=propose), 7) == 7
    assert len(threads) == 2 and threading.get_ident() not in threads
    assert [c.path for item in state.root.items for c in getattr(item, "children", [])] == [
        ("parallel[0]",),
        ("parallel[1]",),
    ]


def test_in_place_roles_keep_attribution_context_isolation_and_nested_runs() -> None:
    """A sync role sees its own call site, its context changes stay its own (as in a worker
    thread), an async role and a returned awaitable run on the loop, and a role can run a
    flow of its own."""
    sites: list[str | None] = []

    def propose(x: int) -> int:
        site = current_site()
        sites.append(site.role if site else None)
        VAR.set("changed by a role")
        inner, _ = _agent("single")
        return int(inner.run(Task(name="inner", propose=lambda y: y * 10), x))

    async def step(x: int, prev: int | None) -> int:
        sites.append(getattr(current_site(), "role", None))
        await asyncio.sleep(0)
        return (prev or 0) + x

    def returns_awaitable(x: int, prev: int | None) -> Any:
        return step(x, prev)

    agent, _ = _agent("single")
    assert agent.run(Task(name="t", propose=propose), 2) == 20
    assert VAR.get() == "unset"
    seq, _ = _agent("sequential")
    assert seq.run(Task(name="s", propose=propose, steps=[step, returns_awaitable]), 1) == 2
    assert sites == ["propose", "step", "step"]


def test_a_failing_step_in_place_fails_the_run_with_its_own_error() -> None:
    def step(x: int, prev: int | None) -> int:
        raise ValueError(f"step failed on {x}")

    agent, state = _agent("sequential")
    with pytest.raises(ValueError, match="step failed on 5"):
        agent.run(Task(name="t", propose=step, steps=[step]), 5)
    assert state.cancelled(("steps[0]",))


def test_a_pattern_that_awaits_the_loop_is_not_run_in_place() -> None:
    async def custom(flow: Any) -> Any:
        await asyncio.sleep(0.001)
        return await flow.propose()

    agent, _ = _agent("single")
    object.__setattr__(agent, "pattern", replace(agent.pattern, run=custom, builtin=False))
    assert agent.run(Task(name="t", propose=lambda x: x), 4) == 4

    async def yields() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="run in place awaited"):
        run_flow(yields, inline=True)
