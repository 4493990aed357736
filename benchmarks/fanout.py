"""Figure 2: fan-out efficiency, ``parallel(n=16)`` recording against a 200 ms simulator model.

If the sixteen branches really run at once, a repetition takes about as long as one call.
One pytest session records, in alternation, a ``single`` item and a ``parallel(n=16)`` item
per case (their node ids interleave), against a simulator model whose every answer takes
exactly ``latency`` seconds. The figure is the median over cases of the parallel
repetition's wall time over the single repetition's (``agent.run`` timed in the test, which
is what the plugin reports as latency when recording); the first case warms up threads and
connections and is left out.

For reference, the same fan-out without the plugin: sixteen plain threads calling the SDK
at once from a child process, against the same simulator.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from measure import Ratio, median, pytest_env, run_pytest

from pytest_agentpatterns.sim import Simulator

MODEL = "bench-fixed"
WIDTH = 16

TEST_MODULE = """
import json
import os
import time

import anthropic
import pytest

from pytest_agentpatterns import Task

CLIENT = anthropic.Anthropic(base_url=os.environ["SIM_URL"], api_key="sim-key", max_retries=0)


def ask(question):
    message = CLIENT.messages.create(
        model="{model}", max_tokens=16, messages=[{{"role": "user", "content": question}}]
    )
    return message.content[0].text


TASK = Task(name="fanout", propose=ask)


@pytest.mark.parametrize("case", range({cases}))
def test_fanout(agent, case):
    started = time.perf_counter()
    agent.run(TASK, f"Benchmark question {{case}}: say anything.")
    seconds = time.perf_counter() - started
    with open(os.environ["TIMINGS"], "a") as timings:
        timings.write(json.dumps([agent.pattern_id, case, seconds]) + "\\n")
"""


RAW_SCRIPT = """
import json, os, sys, time
from concurrent.futures import ThreadPoolExecutor

import anthropic

client = anthropic.Anthropic(base_url=os.environ["SIM_URL"], api_key="sim-key", max_retries=0)
width, cases = int(sys.argv[1]), int(sys.argv[2])


def ask(i):
    client.messages.create(
        model="{model}", max_tokens=16, messages=[{{"role": "user", "content": f"q {{i}}"}}]
    )


pairs = []
with ThreadPoolExecutor(max_workers=width) as pool:
    for case in range(cases + 1):
        started = time.perf_counter()
        ask(case)
        single = time.perf_counter() - started
        started, cpu = time.perf_counter(), time.process_time()
        list(pool.map(ask, range(width)))
        pairs.append((single, time.perf_counter() - started, time.process_time() - cpu))
print(json.dumps(pairs[1:]))
"""


@dataclass(frozen=True)
class FanoutResult:
    """Figure 2: parallel repetition wall time against one call's."""

    width: int
    latency: float
    cases: int
    single: float
    parallel: float
    vs_single: Ratio
    vs_nominal: float
    raw_threads: Ratio
    sdk_cpu: float
    """CPU seconds per call of the plain-threads fan-out (the SDK and its threads alone):
    ``width`` calls need ``width`` times this in one process, most of it under one GIL."""


def measure(cases: int, latency: float = 0.2, width: int = WIDTH) -> FanoutResult:
    """Record ``cases`` single and parallel items (interleaved) and compare their latencies."""
    models = {MODEL: {"fixed_latency": latency, "accuracy": 1.0}}
    with (
        tempfile.TemporaryDirectory(prefix="fanout-") as tmp,
        Simulator(models=models, seed=0, time_scale=1.0) as sim,
    ):
        root = Path(tmp)
        (root / "test_fanout.py").write_text(TEST_MODULE.format(model=MODEL, cases=cases + 1))
        timings = root / "timings.jsonl"
        run_pytest(
            [
                "-q",
                "-p",
                "no:xdist",
                "--patterns-record=all",
                f"--patterns=single,parallel(n={width})",
                f"--patterns-cassette-dir={root / 'cassettes'}",
            ],
            cwd=root,
            env=pytest_env(SIM_URL=sim.anthropic_base_url, TIMINGS=str(timings)),
        )
        lines = timings.read_text().splitlines()
        raw = _raw_threads(sim.anthropic_base_url, width, cases)
    latencies: dict[str, dict[int, float]] = {}
    for line in lines:
        pattern, case, seconds = json.loads(line)
        latencies.setdefault(pattern, {})[case] = seconds
    parallel_id = f"parallel(n={width})"
    counted = range(1, cases + 1)
    single = [latencies["single"][c] for c in counted]
    parallel = [latencies[parallel_id][c] for c in counted]
    ratio = Ratio.of(parallel, single)
    return FanoutResult(
        width=width,
        latency=latency,
        cases=cases,
        single=median(single),
        parallel=median(parallel),
        vs_single=ratio,
        vs_nominal=median(parallel) / latency,
        raw_threads=Ratio.of([p for _, p, _ in raw], [s for s, _, _ in raw]),
        sdk_cpu=median([c for _, _, c in raw]) / width,
    )


def _raw_threads(url: str, width: int, cases: int) -> list[tuple[float, float, float]]:
    """(one call, ``width`` calls at once) wall times from plain threads, no plugin, and the
    CPU time of the ``width`` calls."""
    done = subprocess.run(
        [sys.executable, "-c", RAW_SCRIPT.format(model=MODEL), str(width), str(cases)],
        env=pytest_env(SIM_URL=url),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return [(float(a), float(b), float(c)) for a, b, c in json.loads(done.stdout)]
