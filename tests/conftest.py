"""Shared fixtures: a simulator for the inline test modules that pytester runs."""

from __future__ import annotations

from collections.abc import Iterator

# Imported once here: pytester drops the modules an in-process run imports, and re-importing
# (and assertion-rewriting) them in every inline run is slow.
import anthropic  # noqa: F401
import genai_prices.data  # noqa: F401  (pydantic models: import once, not per inline run)
import hypothesis  # noqa: F401
import numpy  # noqa: F401  (numpy cannot be imported twice in one process)
import openai  # noqa: F401
import pytest
import scipy.stats  # noqa: F401
import tabulate  # noqa: F401
import vcr  # noqa: F401

import pytest_agentpatterns.adaptive
import pytest_agentpatterns.analysis
import pytest_agentpatterns.html
import pytest_agentpatterns.savings  # noqa: F401
from pytest_agentpatterns.sim import Simulator

# One question the simulator answers right or wrong, with exactly one wrong answer, so that
# majority voting has the textbook binomial prediction.
BINARY_WORLD = {
    "entries": [
        {"id": "q", "match": "capital of testland", "answer": "Alpha", "wrong": ["Beta"]},
    ]
}


@pytest.fixture(scope="session")
def sim() -> Iterator[Simulator]:
    with Simulator(world=BINARY_WORLD, seed=7, time_scale=0.0) as server:
        yield server


@pytest.fixture
def sim_env(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """Point the inline modules' SDK clients at the simulator."""
    monkeypatch.setenv("SIM_URL", sim.base_url)
    return sim


@pytest.fixture(autouse=True)
def _not_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test as on a developer's machine, whatever the host sets.

    A set ``CI`` makes replay-only the default record mode (``none``); the tests that mean
    CI set it themselves, and the others must not change meaning on a CI host.
    """
    monkeypatch.delenv("CI", raising=False)
