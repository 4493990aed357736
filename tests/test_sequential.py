"""Group-sequential boundaries: the published values, and alpha spent exactly as planned."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from pytest_agentpatterns import sequential

# Lan-DeMets O'Brien-Fleming-type, two-sided alpha 0.05 (0.025 a side), equally spaced looks:
# the symmetric design of gsDesign (sfLDOF at 0.025, test.type=2) and ldbounds.
PUBLISHED = {
    2: (2.9626, 1.9686),
    4: (4.3326, 2.9631, 2.3590, 2.0141),
    5: (4.8769, 3.3569, 2.6803, 2.2898, 2.0310),
}


@pytest.mark.parametrize("looks", sorted(PUBLISHED))
def test_boundaries_match_the_published_tables(looks: int) -> None:
    fractions = [k / looks for k in range(1, looks + 1)]
    assert sequential.boundaries(fractions, 0.05) == pytest.approx(PUBLISHED[looks], abs=2e-4)


def test_spending_starts_at_nothing_ends_at_alpha_and_grows() -> None:
    assert sequential.spent(0.0, 0.05) == 0.0
    assert sequential.spent(1.0, 0.05) == 0.05
    assert sequential.spent(1.5, 0.05) == 0.05
    values = [sequential.spent(t, 0.05) for t in np.linspace(0.05, 1, 40)]
    assert all(a < b for a, b in itertools.pairwise(values))
    assert values[-1] == pytest.approx(0.05)
    # O'Brien-Fleming-type: almost nothing spent at the first fifth of the information.
    assert sequential.spent(0.2, 0.05) < 2e-6


def test_one_look_is_the_fixed_test() -> None:
    (c,) = sequential.boundaries([1.0], 0.05)
    assert c == pytest.approx(norm.isf(0.025), abs=1e-9)
    assert sequential.nominal_levels([1.0], 0.05) == pytest.approx((0.05,))


@pytest.mark.parametrize(
    ("fractions", "alpha"),
    [([0.3, 1.0], 0.05), ([0.45, 0.7, 1.0], 0.025), ([0.2, 0.5, 0.55], 0.01)],
)
def test_each_look_spends_exactly_its_share(fractions: list[float], alpha: float) -> None:
    """P0(no crossing up to look k) = 1 - spent(t_k), checked against the multivariate
    normal of the canonical joint distribution (corr sqrt(t_i / t_j))."""
    c = sequential.boundaries(fractions, alpha)
    t = np.asarray(fractions)
    for k in range(1, len(t) + 1):
        cov = np.sqrt(np.minimum.outer(t[:k], t[:k]) / np.maximum.outer(t[:k], t[:k]))
        inside = multivariate_normal(mean=np.zeros(k), cov=cov, seed=1).cdf(
            np.asarray(c[:k]), lower_limit=-np.asarray(c[:k])
        )
        assert 1 - inside == pytest.approx(sequential.spent(t[k - 1], alpha), abs=2e-5)


def test_simulated_crossings_add_up_to_alpha() -> None:
    """Brownian motion observed at the looks: first crossings per look, as spent."""
    rng = np.random.default_rng(7)
    t = np.array([0.25, 0.5, 0.75, 1.0])
    steps = rng.standard_normal((200_000, t.size)) * np.sqrt(np.diff(t, prepend=0.0))
    z = steps.cumsum(axis=1) / np.sqrt(t)
    crossed = np.abs(z) >= np.asarray(sequential.boundaries(t, 0.05))
    first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    previous = 0.0
    for k, fraction in enumerate(t):
        share = float(np.mean(first == k))
        expected = sequential.spent(float(fraction), 0.05) - previous
        slack = 4 * math.sqrt(expected / 200_000) + 1e-5
        assert abs(share - expected) <= slack
        previous += expected
    assert float(np.mean(first >= 0)) == pytest.approx(0.05, abs=0.002)


def test_earlier_boundaries_do_not_depend_on_later_fractions() -> None:
    fractions = [0.15, 0.4, 0.42, 0.8, 1.0]
    whole = sequential.boundaries(fractions, 0.05)
    for k in range(1, len(fractions)):
        assert sequential.boundaries(fractions[:k], 0.05) == whole[:k]
    assert sequential.boundaries([0.15, 0.4, 0.9], 0.05)[:2] == whole[:2]


def test_a_look_without_new_information_spends_nothing() -> None:
    c = sequential.boundaries([0.5, 0.5, 1.0], 0.05)
    assert math.isinf(c[1])
    assert c[0] == sequential.boundaries([0.5], 0.05)[0]
    assert c[2] == pytest.approx(sequential.boundaries([0.5, 1.0], 0.05)[1], abs=1e-9)
    assert sequential.nominal_levels([0.5, 0.5], 0.05)[1] == 0.0


def test_nominal_levels_are_the_boundaries_two_sided_tails() -> None:
    fractions = [0.2, 0.4, 0.6, 0.8, 1.0]
    levels = sequential.nominal_levels(fractions, 0.05)
    for c, level in zip(sequential.boundaries(fractions, 0.05), levels, strict=True):
        assert level == pytest.approx(2 * norm.sf(c), rel=1e-9)
    assert all(a < b for a, b in itertools.pairwise(levels))
    assert levels[-1] < 0.05


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.2, math.nan])
def test_fractions_outside_0_1_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="information fractions must be in"):
        sequential.boundaries([0.5, bad], 0.05)


def test_alpha_outside_0_1_is_refused() -> None:
    with pytest.raises(ValueError, match="alpha must be in"):
        sequential.spent(0.5, 1.5)
