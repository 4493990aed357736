"""Group-sequential boundaries: how much of alpha each look at the data may spend.

A comparison looked at K times, each at the usual level, would reject an equal pair of
patterns far more often than alpha. Lan and DeMets (1983) spend alpha gradually as the
information grows: at information fraction t (0 < t <= 1) the looks so far may together have
rejected with probability ``spent(t)``: on each side the O'Brien-Fleming-type function
``2 - 2 Phi(z_{1-alpha/4} / sqrt(t))``, which spends almost nothing early and leaves nearly
the whole alpha for the last look (O'Brien & Fleming 1979).

The boundaries ``c_1..c_K`` on |Z| are exact for the canonical joint distribution of the
standardised statistics (Z_k jointly normal, corr(Z_i, Z_j) = sqrt(t_i / t_j)): the
probability of first crossing at look k is ``spent(t_k) - spent(t_{k-1})``, found by the
numerical recursion of Armitage, McPherson and Rowe (1969) on the sub-density of the score
``S_k = Z_k sqrt(t_k)`` (Jennison & Turnbull 2000, ch. 19). A boundary depends only on the
fractions up to its own look, so later looks never change an earlier decision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    _Array = NDArray[np.float64]
else:
    from .lazy_numpy import np


GRID = 201
"""The fewest points of the Simpson grid the recursion integrates the density on."""

_PER_SD = 6
"""Grid points per standard deviation of the next step's increment, at least."""

_MOST = 1201
"""At most this many grid points (a next look with almost no new information spends almost
nothing, and the kernel's memory stays bounded)."""

_TAIL = 12.0
"""Beyond this many standard deviations the density is treated as zero (mass < 1e-32)."""


def spent(fraction: float, alpha: float) -> float:
    """Two-sided alpha spent by information ``fraction`` (O'Brien-Fleming-type, Lan-DeMets).

    Each side spends Lan and DeMets' one-sided function at ``alpha / 2``,
    ``2 - 2 Phi(z_{1-alpha/4} / sqrt(t))``, so the two sides together spend
    ``4 - 4 Phi(z_{1-alpha/4} / sqrt(t))``: the symmetric two-sided design of the published
    tables (DeMets & Lan 1994; gsDesign's and ldbounds' defaults). ``spent(0) = 0``,
    ``spent(1) = alpha``; fractions above 1 spend no more than alpha.
    """
    from scipy.special import ndtr, ndtri

    _check_alpha(alpha)
    if fraction <= 0:
        return 0.0
    if fraction >= 1:
        return alpha
    z = -float(ndtri(alpha / 4))
    return float(4 * ndtr(-z / math.sqrt(fraction)))


def boundaries(fractions: Sequence[float], alpha: float) -> tuple[float, ...]:
    """Two-sided z boundaries for looks at ``fractions`` (increasing, in (0, 1]).

    The probability under "no difference" of first crossing ``|Z_k| >= c_k`` at look k is
    exactly ``spent(t_k) - spent(t_{k-1})``. A look whose fraction is not above the previous
    one adds no information and spends nothing: its boundary is ``inf``.
    """
    from scipy.optimize import brentq
    from scipy.special import ndtri

    _check_alpha(alpha)
    out: list[float] = []
    previous_t = 0.0
    previous_spent = 0.0
    # The sub-density of S = Z sqrt(t) over the continuation region, on a grid (None: no look
    # has been made yet, S_0 = 0 with certainty).
    grid: _Array | None = None
    density: _Array | None = None
    weights: _Array | None = None
    checked = [float(t) for t in fractions]
    for t in checked:
        if not (0 < t <= 1) or not math.isfinite(t):
            raise ValueError(f"information fractions must be in (0, 1], got {t!r}")
    for k, t in enumerate(checked):
        if t <= previous_t:
            out.append(math.inf)
            continue
        target = spent(t, alpha) - previous_spent
        step = t - previous_t
        sd = math.sqrt(step)
        if grid is None or density is None or weights is None:
            c = -float(ndtri(target / 2)) if target > 0 else math.inf
        else:
            f = density * weights
            if target <= 0 or _exit(40.0, t, sd, grid, f) >= target:
                c = math.inf
            elif _exit(0.0, t, sd, grid, f) <= target:
                c = 0.0
            else:
                c = float(brentq(_exit, 0.0, 40.0, args=(t, sd, grid, f, target), xtol=1e-10))
        out.append(c)
        # Advance the sub-density to this look's continuation region |S| < c sqrt(t).
        half = min(c, _TAIL) * math.sqrt(t)
        # Fine enough for the next look's kernel: its width is the next step's sd.
        following = [u - t for u in checked[k + 1 :] if u > t]
        width = math.sqrt(following[0]) if following else sd
        points = min(_MOST, max(GRID, 2 * math.ceil(half / (width / _PER_SD)) + 1))
        new_grid = np.linspace(-half, half, points)
        new_weights = _simpson(new_grid)
        if grid is None or density is None or weights is None:
            new_density = np.exp(-0.5 * (new_grid / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
        else:
            gap = (new_grid[:, None] - grid[None, :]) / sd
            kernel = np.exp(-0.5 * gap * gap) / (sd * math.sqrt(2 * math.pi))
            new_density = kernel @ (density * weights)
        grid, density, weights = new_grid, np.asarray(new_density, dtype=float), new_weights
        previous_t, previous_spent = t, spent(t, alpha)
    return tuple(out)


def nominal_levels(fractions: Sequence[float], alpha: float) -> tuple[float, ...]:
    """The two-sided level each look tests at: ``2 (1 - Phi(c_k))`` (0 for a look at inf)."""
    return tuple(level_of(c) for c in boundaries(fractions, alpha))


def level_of(boundary: float) -> float:
    """The two-sided level of a z boundary, ``2 (1 - Phi(c))``."""
    from scipy.special import ndtr

    return 0.0 if math.isinf(boundary) else float(2 * ndtr(-boundary))


def _exit(c: float, t: float, sd: float, grid: _Array, mass: _Array, goal: float = 0.0) -> float:
    """Probability of continuing to the previous look, then crossing ``|Z| >= c`` at ``t``
    (less ``goal``, for the root finder)."""
    from scipy.special import ndtr

    edge = c * math.sqrt(t)
    tails = ndtr((grid - edge) / sd) + ndtr((-edge - grid) / sd)
    return float(np.dot(mass, tails)) - goal


def _simpson(grid: _Array) -> _Array:
    """Composite Simpson weights for an evenly spaced grid of odd length."""
    n = grid.size
    h = float(grid[1] - grid[0]) if n > 1 else 0.0
    w = np.ones(n)
    w[1:-1:2] = 4.0
    w[2:-1:2] = 2.0
    return np.asarray(w * h / 3.0, dtype=float)


def _check_alpha(alpha: float) -> None:
    if not (0 < alpha < 1):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
