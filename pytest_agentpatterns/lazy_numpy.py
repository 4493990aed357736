"""numpy, imported when a statistic first uses it.

The statistics modules are imported by every run that summarises anything, but a run of
single-case tests (one pattern, pass/fail) computes its summary without numpy; it then never
pays for importing it.
"""

from __future__ import annotations

import importlib
from typing import Any


class _Numpy:
    """Stands for the ``numpy`` module; each attribute is looked up once, then kept."""

    def __getattr__(self, name: str) -> Any:
        value = getattr(importlib.import_module("numpy"), name)
        setattr(self, name, value)
        return value


np: Any = _Numpy()
