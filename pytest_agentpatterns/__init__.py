"""pytest-agentpatterns: run one LLM task under every orchestration pattern and compare them."""

from __future__ import annotations

from .datasets import CasesError, cases
from .task import Task, Verdict

__all__ = ["CasesError", "Task", "Verdict", "cases"]
__version__ = "0.1.0.dev0"
