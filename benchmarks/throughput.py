"""Figure 4: suite throughput when replaying, without and with pytest-xdist.

The suite is ``example_suite/`` when it has test modules, else a synthetic suite of pattern
items written here. It is copied to a temporary directory; when it ships no cassettes they
are recorded there first, against a simulator that answers at once (the recorded durations
do not matter: replay never sleeps). Then ``--patterns-record=none`` sessions with ``-n 0``
and ``-n 2`` alternate; the figure is items per second of session wall time, start-up and
collection included, since that is what a CI job pays.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from measure import Run, median, pytest_env, run_pytest

from pytest_agentpatterns.sim import Simulator, World, load_world

PROVIDER_VARIABLES = (
    "ANTHROPIC_BASE_URL",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
)
REPLAY_OK = (0, 1)
"""Exit codes of a replay run that still measured something: all passed, or some failed."""

SYNTHETIC_MODULE = """
import os

import anthropic
import pytest

from pytest_agentpatterns import Task

CLIENT = anthropic.Anthropic(
    base_url=os.environ.get("SIM_URL", "http://127.0.0.1:9"), api_key="sim-key", max_retries=0
)
PROMPTS = {prompts!r}


def ask(prompt):
    message = CLIENT.messages.create(
        model="sim-small", max_tokens=64, messages=[{{"role": "user", "content": prompt}}]
    )
    return message.content[0].text.strip()


def restate(question, prev):
    return ask("Restate the question: " + question)


def decide(question, prev):
    return ask(question)


TASK = Task(name="synthetic", propose=ask, steps=[restate, decide])


@pytest.mark.agentpatterns(repeat={repeat})
@pytest.mark.parametrize("case", range({cases}))
def test_synthetic(agent, case):
    prompt, answer = PROMPTS[case % len(PROMPTS)]
    assert agent.run(TASK, prompt) == answer
"""
SYNTHETIC_PATTERNS = "single,sequential,parallel(n=3)"


@dataclass(frozen=True)
class ThroughputResult:
    """Figure 4: replayed items per second with ``-n 0`` and ``-n 2``."""

    suite: str
    items: int
    outcomes: dict[str, int]
    seconds: dict[str, float]
    cpu_seconds: dict[str, float]
    items_per_second: dict[str, float]
    runs: int


def _has_tests(directory: Path) -> bool:
    return directory.is_dir() and any(directory.glob("test_*.py"))


def _has_cassettes(directory: Path) -> bool:
    return any(p.is_file() for p in directory.glob("**/cassettes/**/*.json"))


def _suite_world(suite: Path) -> World:
    """The world the suite records against: its conftest's ``simulator_world()`` if it has one."""
    conftest = suite / "conftest.py"
    if conftest.is_file():
        spec = importlib.util.spec_from_file_location("_bench_suite_conftest", conftest)
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            make: Any = getattr(module, "simulator_world", None)
            if callable(make):
                world: World = make()
                return world
    return load_world()


def _write_synthetic(root: Path, cases: int, repeat: int) -> None:
    entries = load_world().entries
    prompts = [(e.prompt, e.answer) for e in entries if e.prompt]
    (root / "test_synthetic.py").write_text(
        SYNTHETIC_MODULE.format(prompts=prompts, cases=cases, repeat=repeat)
    )
    (root / "pytest.ini").write_text(f"[pytest]\nagentpatterns_patterns = {SYNTHETIC_PATTERNS}\n")


def _replay_env() -> dict[str, str]:
    env = pytest_env()
    for name in PROVIDER_VARIABLES:
        env.pop(name, None)
    return env


def _record(root: Path) -> None:
    """Record every cassette of the suite in ``root`` against a simulator with no latency."""
    with Simulator(world=_suite_world(root), seed=0, time_scale=0) as sim:
        env = pytest_env(
            SIM_URL=sim.anthropic_base_url,
            ANTHROPIC_BASE_URL=sim.anthropic_base_url,
            OPENAI_BASE_URL=sim.openai_base_url,
            ANTHROPIC_API_KEY="sim-key",
            OPENAI_API_KEY="sim-key",
        )
        run_pytest(["-q", "-p", "no:xdist", "--patterns-record=rewrite"], root, env, ok=REPLAY_OK)


def measure(
    example: Path, runs: int, synthetic: bool = False, cases: int = 40, repeat: int = 5
) -> ThroughputResult:
    """Replay the example suite (or the synthetic one) ``runs`` times with each worker count.

    The example suite's own cassettes are used when every item replays from them without
    failing; otherwise (none shipped, or some item fails, e.g. a recording is missing) the
    copy is recorded anew, and the label says which happened.
    """
    use_example = not synthetic and _has_tests(example)
    env = _replay_env()
    replay = ["-q", "--patterns-record=none"]
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        root = Path(tmp) / "suite"
        if use_example:
            ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache")
            shutil.copytree(example, root, ignore=ignore)
            label = "example_suite/, cassettes recorded for the run (it ships none)"
        else:
            root.mkdir()
            _write_synthetic(root, cases, repeat)
            label = f"a synthetic suite ({cases} cases x {SYNTHETIC_PATTERNS}, repeat={repeat})"
        first: Run | None = None
        if use_example and _has_cassettes(root):
            first = run_pytest([*replay, "-n", "0"], root, env, ok=REPLAY_OK)
            outcomes = first.outcomes()
            broken = outcomes.get("failed", 0) + outcomes.get("error", 0)
            label = "example_suite/ with its own cassettes"
            if broken:
                label = (
                    f"example_suite/, cassettes recorded for the run: with its own, {broken} "
                    "items failed (recordings missing or out of date)"
                )
                first = None
        if first is None:
            _record(root)
            first = run_pytest([*replay, "-n", "0"], root, env, ok=REPLAY_OK)
        variants = {"-n 0": ["-n", "0"], "-n 2": ["-n", "2"]}
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        for i in range(runs):
            order = list(variants) if i % 2 == 0 else list(reversed(variants))
            for name in order:
                run = run_pytest([*replay, *variants[name]], root, env, ok=REPLAY_OK)
                if run.items != first.items:
                    raise RuntimeError(f"{name}: {run.items} items, first run had {first.items}")
                seconds[name].append(run.seconds)
                cpu[name].append(run.cpu_seconds)
    times = {name: median(values) for name, values in seconds.items()}
    return ThroughputResult(
        suite=label,
        items=first.items,
        outcomes=first.outcomes(),
        seconds=times,
        cpu_seconds={name: median(values) for name, values in cpu.items()},
        items_per_second={name: first.items / t for name, t in times.items()},
        runs=runs,
    )
