"""The embedded default provider: an HTTP server the Anthropic and OpenAI SDKs talk to.

>>> with Simulator(seed=1, time_scale=0) as sim:  # doctest: +SKIP
...     client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sim")

Its models are seeded noisy oracles over a world of known questions; see docs/simulator.md.
"""

from __future__ import annotations

from .config import (
    Faults,
    ModelProfile,
    ModelSet,
    SimConfigError,
    World,
    WorldEntry,
    load_models,
    load_world,
)
from .server import RequestRecord, Simulator

__all__ = [
    "Faults",
    "ModelProfile",
    "ModelSet",
    "RequestRecord",
    "SimConfigError",
    "Simulator",
    "World",
    "WorldEntry",
    "load_models",
    "load_world",
]
