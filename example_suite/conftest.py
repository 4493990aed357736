"""Point the example suite's SDK clients at a provider before the test modules build them.

- ``ANTHROPIC_BASE_URL`` / ``OPENAI_BASE_URL`` set: your provider and your keys are used, so
  ``--patterns-record=rewrite`` records against it.
- not set, and recording (``--patterns-record`` is not ``none``): the bundled simulator is
  started with seed 0 and realistic latencies, and the clients talk to it.
- not set, replaying (``none``, the default when ``CI`` is set): a placeholder URL; replay never
  opens a socket, so nothing listens there.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

PLACEHOLDER_URL = "http://127.0.0.1:9"
"""Where the clients point when replaying: the discard port, never contacted."""

SIM_KEY = "sim-key"
"""The key sent to the simulator or the placeholder. The simulator accepts any non-empty key."""

_STATE = pytest.StashKey[dict[str, Any]]()


def record_mode(config: pytest.Config) -> str:
    """The record mode the plugin will use: the option, the ini, then none under CI, else once."""
    mode = (
        config.getoption("agentpatterns_record")
        or str(config.getini("agentpatterns_record")).strip()
    )
    return mode or ("none" if os.environ.get("CI") else "once")


def pytest_configure(config: pytest.Config) -> None:
    missing = [p for p in ("ANTHROPIC", "OPENAI") if not os.environ.get(f"{p}_BASE_URL")]
    if not missing:
        return
    state: dict[str, Any] = {"environ": {}, "simulator": None}
    config.stash[_STATE] = state
    urls = {"ANTHROPIC": PLACEHOLDER_URL, "OPENAI": f"{PLACEHOLDER_URL}/v1"}
    if record_mode(config) != "none":
        from pytest_agentpatterns.sim import Simulator

        simulator = Simulator(seed=0)
        simulator.start()
        state["simulator"] = simulator
        urls = {"ANTHROPIC": simulator.anthropic_base_url, "OPENAI": simulator.openai_base_url}
    for provider in missing:
        for name, value in (
            (f"{provider}_BASE_URL", urls[provider]),
            (f"{provider}_API_KEY", SIM_KEY),
        ):
            state["environ"][name] = os.environ.get(name)
            os.environ[name] = value


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    for name, value in state["environ"].items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if state["simulator"] is not None:
        state["simulator"].stop()


def pytest_report_header(config: pytest.Config) -> str:
    state = config.stash.get(_STATE, None)
    mode = record_mode(config)
    if state is None:
        return f"example suite: your providers (record mode {mode})"
    if state["simulator"] is not None:
        return f"example suite: simulator at {state['simulator'].base_url} (record mode {mode})"
    return f"example suite: replay only, clients point at {PLACEHOLDER_URL} (record mode {mode})"
