"""Coverage of the 95% accuracy interval of `stats.summarize`, cases drawn from a population.

The truth an interval should cover is the population's mean accuracy: a test's cases are a
sample of the cases it could have had. Each case has its own probability of a correct answer
(pass/fail) or its own mean score (graded), drawn from a Beta distribution with a given mean
and concentration (homogeneous cases: every case the same); each case runs ``r``
repetitions.

- **Pass/fail scores are computed exactly**, not simulated. The interval depends on the
  data only through the number of cases, the repetitions, the total of correct runs S1 and
  the sum of squared per-case counts S2, so every reachable (S1, S2) is enumerated once, one
  representative set of cases is passed through `stats.summarize`, and the probability of
  each (S1, S2) under a population is added up by convolution (beta-binomial counts per
  case). Coverage figures therefore carry no simulation error.
- **Graded scores are simulated**: a case's mean score m ~ Beta(mean, concentration); its
  repetitions' scores ~ Beta(m * nu, (1 - m) * nu) around it, or a share of 4 fields right
  (partial credit, which sometimes happens to be all 0/1 and then takes the pass/fail
  interval, as a real run would). Each cell reports the share of runs whose interval covers
  the population mean, with its Monte Carlo standard error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from pytest_agentpatterns import stats

BAND = (0.935, 0.965)
"""The target: nominal 95% intervals cover between these shares."""

HOMOGENEOUS = math.inf
"""Concentration of a population whose cases are all alike."""


# --- pass/fail: exact ------------------------------------------------------------------------


@dataclass(frozen=True)
class BinaryDesign:
    """Every reachable (S1, S2) of ``cases`` x ``repetitions`` with the interval it gets."""

    cases: int
    repetitions: int
    s1: np.ndarray
    s2: np.ndarray
    low: np.ndarray
    high: np.ndarray
    methods: tuple[str, ...]

    def coverage(self, mean: float, concentration: float) -> float:
        """The exact probability that the interval covers ``mean``."""
        prob = _state_probabilities(self, _count_pmf(self.repetitions, mean, concentration))
        covered = (self.low <= mean) & (mean <= self.high)
        return float(prob[covered].sum())


def binary_design(cases: int, repetitions: int) -> BinaryDesign:
    """Enumerate the design's data summaries and pass one representative of each through
    `stats.summarize` (the pattern summary the report shows)."""
    k, r = cases, repetitions
    shape = (k * r + 1, k * r * r + 1)
    reach = np.zeros(shape, dtype=bool)
    reach[0, 0] = True
    backs = []
    for _ in range(k):
        new = np.zeros(shape, dtype=bool)
        back = np.full(shape, -1, dtype=np.int64)
        for c in range(r + 1):
            shifted = np.zeros(shape, dtype=bool)
            shifted[c:, c * c :] = reach[: shape[0] - c, : shape[1] - c * c]
            back[shifted & ~new] = c
            new |= shifted
        backs.append(back)
        reach = new
    s1, s2 = np.nonzero(reach)
    counts = np.zeros((s1.size, k), dtype=np.int64)
    a, b = s1.copy(), s2.copy()
    for j in range(k - 1, -1, -1):
        c = backs[j][a, b]
        counts[:, j] = c
        a, b = a - c, b - c * c
    assert np.all(a == 0) and np.all(b == 0)
    low = np.empty(s1.size)
    high = np.empty(s1.size)
    methods = []
    for i, row in enumerate(counts):
        values = {f"case-{j:02d}": [1.0] * int(c) + [0.0] * (r - int(c)) for j, c in enumerate(row)}
        summary = stats.summarize(values)
        assert summary.accuracy_interval is not None and summary.accuracy_method is not None
        low[i], high[i] = summary.accuracy_interval.low, summary.accuracy_interval.high
        methods.append(summary.accuracy_method)
    return BinaryDesign(k, r, s1, s2, low, high, tuple(sorted(set(methods))))


def _count_pmf(repetitions: int, mean: float, concentration: float) -> np.ndarray:
    """Probabilities of 0..r correct runs of one case drawn from the population."""
    c = np.arange(repetitions + 1)
    if concentration == HOMOGENEOUS:
        return np.asarray(sps.binom.pmf(c, repetitions, mean), dtype=float)
    a, b = mean * concentration, (1 - mean) * concentration
    return np.asarray(sps.betabinom.pmf(c, repetitions, a, b), dtype=float)


def _state_probabilities(design: BinaryDesign, pmf: np.ndarray) -> np.ndarray:
    k, r = design.cases, design.repetitions
    shape = (k * r + 1, k * r * r + 1)
    prob = np.zeros(shape)
    prob[0, 0] = 1.0
    for _ in range(k):
        new = np.zeros(shape)
        for c in range(r + 1):
            new[c:, c * c :] += pmf[c] * prob[: shape[0] - c, : shape[1] - c * c]
        prob = new
    return np.asarray(prob[design.s1, design.s2], dtype=float)


# --- graded: simulated -----------------------------------------------------------------------


Sampler = Callable[[np.random.Generator, int, int], list[np.ndarray]]


@dataclass(frozen=True)
class Population:
    """A population of graded cases: its name, its mean (the truth) and how to draw a test."""

    name: str
    mean: float
    sample: Sampler


def beta_scores(mean: float, concentration: float, nu: float = 10.0) -> Sampler:
    """Case means ~ Beta(mean, concentration); repetition scores ~ Beta(m, nu) around them."""

    def sample(rng: np.random.Generator, cases: int, repetitions: int) -> list[np.ndarray]:
        if concentration == HOMOGENEOUS:
            m = np.full(cases, mean)
        else:
            m = rng.beta(mean * concentration, (1 - mean) * concentration, cases)
        m = np.clip(m, 1e-6, 1 - 1e-6)
        scores = rng.beta((m * nu)[:, None], ((1 - m) * nu)[:, None], (cases, repetitions))
        return list(scores)

    return sample


def field_scores(mean: float, concentration: float, fields: int = 4) -> Sampler:
    """Partial credit: the share of ``fields`` right, each right with the case's probability."""

    def sample(rng: np.random.Generator, cases: int, repetitions: int) -> list[np.ndarray]:
        p = rng.beta(mean * concentration, (1 - mean) * concentration, cases)
        return list(rng.binomial(fields, p[:, None], (cases, repetitions)) / fields)

    return sample


GRADED: tuple[Population, ...] = (
    Population("Beta mean 0.5, conc. 4", 0.5, beta_scores(0.5, 4.0)),
    Population("Beta mean 0.75, conc. 4", 0.75, beta_scores(0.75, 4.0)),
    Population("skewed: Beta mean 0.9, conc. 2", 0.9, beta_scores(0.9, 2.0)),
    Population("homogeneous cases, mean 0.8", 0.8, beta_scores(0.8, HOMOGENEOUS)),
    Population("4 fields, case p ~ Beta mean 0.8, conc. 4", 0.8, field_scores(0.8, 4.0)),
)
"""The graded populations of the grid (the name says the case-mean distribution)."""


@dataclass(frozen=True)
class Coverage:
    """How many simulated intervals covered the truth, and the methods they used."""

    covered: int
    runs: int
    methods: tuple[tuple[str, int], ...]

    @property
    def share(self) -> float:
        return self.covered / self.runs

    @property
    def se(self) -> float:
        p = self.share
        return math.sqrt(max(p * (1 - p), 1e-12) / self.runs)

    def __add__(self, other: Coverage) -> Coverage:
        methods = dict(self.methods)
        for name, n in other.methods:
            methods[name] = methods.get(name, 0) + n
        return Coverage(
            self.covered + other.covered, self.runs + other.runs, tuple(sorted(methods.items()))
        )


def graded_coverage(
    population: Population, cases: int, repetitions: int, runs: int, seed: Sequence[int]
) -> Coverage:
    """Simulate ``runs`` tests from ``population`` and count the intervals that cover its mean."""
    rng = np.random.default_rng(list(seed))
    covered = 0
    methods: dict[str, int] = {}
    for _ in range(runs):
        data = population.sample(rng, cases, repetitions)
        summary = stats.summarize({f"case-{j:02d}": list(v) for j, v in enumerate(data)})
        interval = summary.accuracy_interval
        assert interval is not None and summary.accuracy_method is not None
        covered += population.mean in interval
        methods[summary.accuracy_method] = methods.get(summary.accuracy_method, 0) + 1
    return Coverage(covered, runs, tuple(sorted(methods.items())))


def in_band(share: float) -> bool:
    return BAND[0] <= share <= BAND[1]


def band_reachable(trials: int, mean: float) -> bool:
    """Whether any interval for a binomial proportion can cover ``mean`` within the band.

    With ``trials`` pass/fail outcomes an interval procedure has ``trials + 1`` possible
    intervals; one whose endpoints rise with the count (every standard one) covers ``mean``
    on a run of consecutive counts, so its coverage there is the probability of some window
    ``a..b`` of counts. If no window's probability lies in the band, no such interval is in
    the band at that mean, whatever its construction.
    """
    cdf = np.concatenate([[0.0], np.cumsum(sps.binom.pmf(np.arange(trials + 1), trials, mean))])
    windows = cdf[None, 1:] - cdf[:-1, None]  # windows[a, b] = P(a <= count <= b)
    upper_triangle = np.triu(np.ones_like(windows, dtype=bool))
    return bool(np.any(upper_triangle & (windows >= BAND[0]) & (windows <= BAND[1])))
