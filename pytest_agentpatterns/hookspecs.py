"""The plugin's own hooks, added to pytest with ``pytest_addhooks``.

Implement them in a ``conftest.py`` or a plugin module, as you would any pytest hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .patterns import Registry
    from .prices import Price

hookspec = pluggy.HookspecMarker("pytest")


@hookspec(historic=True)
def pytest_agentpatterns_register(registry: Registry) -> None:
    """Add patterns and aggregators to ``registry``.

    Called once at start-up, after the built-ins are registered, and for any plugin or
    conftest registered later (the call is historic). Use ``registry.add_pattern(name,
    coroutine, params=..., requires=...)`` and ``registry.add_aggregator(name, fn)``.
    Returns nothing.
    """


@hookspec
def pytest_agentpatterns_prices(prices: dict[str, Price]) -> None:
    """Add or replace model prices in ``prices`` (model name -> :class:`~.prices.Price`).

    Called once at start-up, after the ``agentpatterns_prices`` ini lines were read into
    ``prices``; what the hook leaves there overrides genai-prices and the simulator's
    built-in prices. A :class:`~.prices.Price` may carry 1-hour cache-write rates and
    long-context tiers (:class:`~.prices.PriceTier`). Returns nothing.
    """
