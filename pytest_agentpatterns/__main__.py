"""``python -m pytest_agentpatterns``: see :mod:`pytest_agentpatterns.cli`."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
