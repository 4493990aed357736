"""Planning: does the power ``--patterns-plan`` predicts match the power the real test has?

A world where the truth is known: each case's baseline accuracy is drawn from Beta(3, 1)
(mean 0.75; easy and hard cases), the candidate's is the same case lifted on the logit scale
(the difficulty both patterns share is what pairing cancels). For each setting (cases,
repetitions, lift, level = alpha / m), the plan predicts the power of the design from what
a measured run shows (:func:`pytest_agentpatterns.planning.components`): a large one (2,000
cases x 4 repetitions: what the model itself gets right or wrong), predicted both by the
plan and by the plain noncentral t it uses above ``planning.SIMULATED_CASES``, and
``--pilots`` realistic ones (40 x 4: what a team's saved run gives, pilot noise included),
summarised by their median and 10th-90th percentiles. ``--sims`` simulated runs of the design
are tested with the sign-flip test the summary uses (:mod:`pytest_agentpatterns.family`:
reject when ``min_p <= level`` and ``p <= level``).

    python benchmarks/planning.py [--sims 400] [--pilots 20] [--seed 0]

prints one Markdown row per setting: the simulated power with its standard error, and each
prediction with its gap. tests/test_planning.py checks four settings with a fixed seed.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from pytest_agentpatterns import planning
from pytest_agentpatterns.family import units

# cases, repetitions, logit lift, level; 0.0125 = 0.05 over 4 comparisons (5 patterns).
GRID = [
    (10, 8, 1.4, 0.05),
    (12, 10, 1.2, 0.05),
    (12, 6, 1.5, 0.0125),
    (14, 5, 1.4, 0.025),
    (24, 3, 1.0, 0.0125),
    (39, 10, 0.6, 0.0125),
    (40, 5, 0.8, 0.0125),
    (76, 5, 0.6, 0.0125),
]


def world(rng: np.random.Generator, cases: int, lift: float) -> tuple[np.ndarray, np.ndarray]:
    base = np.clip(rng.beta(3.0, 1.0, cases), 0.02, 0.98)
    logit = np.log(base / (1 - base)) + lift
    return base, 1 / (1 + np.exp(-logit))


def scores(rng: np.random.Generator, p: np.ndarray, repeat: int) -> dict[str, list[float]]:
    return {f"c{i}": [float(x) for x in rng.random(repeat) < q] for i, q in enumerate(p)}


def true_diff(lift: float) -> float:
    base, cand = world(np.random.default_rng(12345), 200_000, lift)
    return float(np.mean(cand - base))


def row(
    cases: int, repeat: int, lift: float, level: float, sims: int, pilots: int, seed: int
) -> str:
    rng = np.random.default_rng([seed, cases, repeat])
    diff = true_diff(lift)
    base, cand = world(rng, 2000, lift)
    large = planning.components(scores(rng, base, 4), scores(rng, cand, 4))
    assert large is not None
    plan = planning.power(diff, large, cases, repeat, level)
    t_only = planning.power(diff, replace(large, counts=()), cases, repeat, level)
    small = []
    for _ in range(pilots):
        base, cand = world(rng, 40, lift)
        parts = planning.components(scores(rng, base, 4), scores(rng, cand, 4))
        assert parts is not None
        small.append(planning.power(diff, parts, cases, repeat, level))
    rejected = 0
    for n in range(sims):
        base, cand = world(rng, cases, lift)
        result = units(scores(rng, base, repeat), scores(rng, cand, repeat)).test(n).result()
        rejected += result.min_p <= level and result.p <= level
    simulated = rejected / sims
    se = (simulated * (1 - simulated) / sims) ** 0.5
    low, median, high = np.percentile(small, [10, 50, 90])
    return (
        f"| {cases} x {repeat} | {diff:+.3f} | {level:g} | {simulated:.2f} ± {se:.2f} | "
        f"{plan:.2f} ({plan - simulated:+.2f}) | {t_only:.2f} ({t_only - simulated:+.2f}) | "
        f"{median:.2f} ({median - simulated:+.2f}); {low:.2f}-{high:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sims", type=int, default=400)
    parser.add_argument("--pilots", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(
        "| cases x reps | true difference | level | simulated power | plan, 2,000 x 4 pilot "
        "| t alone, 2,000 x 4 pilot | plan, 40 x 4 pilots: median; 10-90% |"
    )
    print("|---|---|---|---|---|---|---|")
    for setting in GRID:
        print(row(*setting, sims=args.sims, pilots=args.pilots, seed=args.seed), flush=True)


if __name__ == "__main__":
    main()
