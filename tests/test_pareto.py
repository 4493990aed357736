"""The Pareto front: exact at the precision values are shown, unknown values never best."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pytest_agentpatterns import analysis, pareto
from pytest_agentpatterns.records import Address, CallRecord, ItemResult, Repetition

ROOT = Path(__file__).resolve().parent.parent

Point = tuple[float | None, float | None, float | None]


def brute_front(points: Mapping[str, Sequence[float | None]]) -> set[str]:
    """The front by the definition, written apart from the module: every pair, compared on
    the printed text of each value, read back as an exact decimal."""
    specs = (".3f", ".3g", ".3g")  # how the report prints accuracy, cost, latency
    signs = (1, -1, -1)  # accuracy higher is better; cost and latency lower

    def key(point: Sequence[float | None]) -> list[Decimal | None]:
        return [
            None if v is None or v != v else sign * Decimal(format(v, spec))
            for v, spec, sign in zip(point, specs, signs, strict=True)
        ]

    keys = {name: key(point) for name, point in points.items()}

    def beats(a: list[Decimal | None], b: list[Decimal | None]) -> bool:
        pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None or y is not None]
        if any(x is None or y is None for x, y in pairs):
            return False  # a measure only one of them has: not comparable
        return all(x >= y for x, y in pairs) and any(x > y for x, y in pairs)  # type: ignore[operator]

    return {n for n in keys if not any(beats(keys[m], keys[n]) for m in keys if m != n)}


# Values near a few grid points, so ties as shown are common; the noise is far below the
# printed precision, as float sums leave it (0.1 * 3 = 0.30000000000000004).
def _near(grid: Sequence[float], scale: float) -> st.SearchStrategy[float]:
    return st.builds(
        lambda base, noise: base + noise * scale,
        st.sampled_from(grid),
        st.sampled_from((0.0, 0.0, 1e-13, -1e-13, 3e-16, -3e-16)),
    )


accuracy = st.one_of(
    st.none(), _near([0.5, 0.75, 0.8, 0.9, 1.0], 1.0), st.floats(0, 1, allow_nan=False)
)
cost = st.one_of(
    st.none(), _near([1e-5, 3.3e-5, 1e-4], 1e-5), st.floats(1e-7, 1e-2, allow_nan=False)
)
latency = st.one_of(st.none(), _near([0.3, 0.45, 1.2], 1.0), st.floats(0.01, 30, allow_nan=False))
points = st.dictionaries(
    st.sampled_from(["single", "sequential", "parallel", "hybrid", "escalate", "loop", "p7", "p8"]),
    st.tuples(accuracy, cost, latency),
    max_size=8,
)


@given(points)
def test_front_matches_brute_force(pts: dict[str, Point]) -> None:
    assert pareto.front(pts) == brute_front(pts)


@given(points)
def test_off_the_front_means_dominated_by_a_pattern_on_it(pts: dict[str, Point]) -> None:
    front = pareto.front(pts)
    assert front <= pts.keys()
    assert bool(front) == bool(pts)
    for name in pts.keys() - front:
        assert any(pareto.dominates(pts[f], pts[name]) for f in front)
    for a, b in itertools.permutations(front, 2):
        assert not pareto.dominates(pts[a], pts[b])


@given(points)
def test_only_the_shown_values_matter(pts: dict[str, Point]) -> None:
    shown = {
        name: tuple(c.shown(v) for c, v in zip(pareto.CRITERIA, point, strict=True))
        for name, point in pts.items()
    }
    assert pareto.front(pts) == pareto.front(shown)


@given(
    st.tuples(accuracy, cost, latency),
    st.tuples(accuracy, cost, latency),
    st.tuples(accuracy, cost, latency),
)
def test_dominance_is_a_strict_order(a: Point, b: Point, c: Point) -> None:
    assert not pareto.dominates(a, a)
    assert not (pareto.dominates(a, b) and pareto.dominates(b, a))
    if pareto.dominates(a, b) and pareto.dominates(b, c):
        assert pareto.dominates(a, c)


@given(points, st.sampled_from(range(3)))
def test_an_unknown_value_never_wins(pts: dict[str, Point], measure: int) -> None:
    """Forgetting one value of a pattern can only take away what that pattern dominated."""
    for name, point in pts.items():
        if point[measure] is None:
            continue
        forgotten = tuple(None if i == measure else v for i, v in enumerate(point))
        for other, q in pts.items():
            if other != name and pareto.dominates(forgotten, q):
                assert pareto.dominates(point, q) or q[measure] is None


def test_noise_below_the_printed_precision_is_a_tie() -> None:
    """0.7999999999999999 and 0.8 both print 0.800: neither beats the other on accuracy."""
    noisy = sum([0.4, 1.0, 1.0]) / 3
    assert noisy != 0.8 and f"{noisy:.3f}" == "0.800"
    pts = {
        "cheap": (noisy, 1.0e-5, 0.30),  # cheaper and faster, reads as accurate
        "dear": (0.8, 4.0e-5, 0.90),
        "same": (0.8, 1.0e-5, 0.30),  # tied with cheap as shown
        "noisy": (0.8, 1.0e-5 * (1 + 1e-12), 0.30 + 1e-14),  # tied with both as shown
    }
    assert pareto.front(pts) == {"cheap", "same", "noisy"}
    assert not pareto.dominates(pts["same"], pts["cheap"])
    assert not pareto.dominates(pts["cheap"], pts["same"])
    # A difference that shows is still a difference.
    assert pareto.front({**pts, "better": (0.801, 1.0e-5, 0.30)}) == {"better"}


def test_missing_values_are_unknown_not_best() -> None:
    pts: dict[str, Point] = {
        "measured": (0.9, 2e-5, 0.5),
        "no latency": (0.9, 2e-5, None),  # used to count as 0 s: the fastest
        "no accuracy": (None, 1e-5, 0.2),  # every repetition failed
        "slow": (0.9, 2e-5, 0.7),
    }
    assert not pareto.dominates(pts["no latency"], pts["measured"])
    assert not pareto.dominates(pts["no accuracy"], pts["slow"])
    assert pareto.front(pts) == {"measured", "no latency", "no accuracy"}
    assert pareto.not_compared(pts) == {
        "no latency": ("latency p50",),
        "no accuracy": ("accuracy",),
    }


def test_a_measure_nobody_has_is_left_out() -> None:
    unpriced = {"single": (0.8, None, 0.3), "loop": (0.8, None, 0.9), "hybrid": (0.9, None, 1.2)}
    assert pareto.front(unpriced) == {"single", "hybrid"}
    assert pareto.not_compared(unpriced) == {}
    assert pareto.front({}) == frozenset()


def _item(pattern: str, case: int, outcomes: str, latency: float, cost: float) -> ItemResult:
    """An item whose repetitions succeed where ``outcomes`` has a 1, with fixed latency and cost."""
    reps = tuple(
        Repetition(
            i,
            "correct" if o == "1" else "incorrect",
            latency,
            calls=(
                CallRecord(
                    Address(i, (), "propose", 0), "POST", "http://sim/v1", 200, latency, cost=cost
                ),
            ),
        )
        for i, o in enumerate(outcomes)
    )
    return ItemResult(f"t.py::test_x[{pattern}-{case}]", "t.py::test_x", f"c{case}", pattern, reps)


def test_analysis_ties_accuracy_as_shown() -> None:
    """Case means 0.4, 1, 1 average to 0.7999999999999999; 0.8, 0.8, 0.8 to 0.8000000000000002.
    The same cost and latency: both print the same, so both are on the front."""
    results = [
        *(_item("single", c, o, 0.3, 1e-5) for c, o in enumerate(["11000", "11111", "11111"])),
        *(_item("parallel(n=5)", c, "11110", 0.3, 1e-5) for c in range(3)),
    ]
    (test,) = analysis.analyse(results)
    accuracies = {p.figures.pattern: p.summary.accuracy for p in test.patterns}
    assert accuracies["single"] != accuracies["parallel(n=5)"]
    assert {p.figures.pattern for p in test.patterns if p.pareto} == {"single", "parallel(n=5)"}


def test_the_example_suite_front_is_exact(tmp_path: Path) -> None:
    """Every test of the example suite: the front in the JSON report is the brute-force front
    of the figures the same report prints."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_BASE_URL")}
    env["CI"] = "true"
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "example_suite",
            "--patterns=all",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--patterns-json={report}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(report.read_text())
    figures = {(s["test"], s["pattern"]): s for s in data["summary"]}
    assert len(data["analysis"]) == 5
    for test in data["analysis"]:
        pts = {
            p["pattern"]: (
                figures[test["test"], p["pattern"]]["accuracy"],
                figures[test["test"], p["pattern"]]["cost_per_run"],
                figures[test["test"], p["pattern"]]["latency_p50"],
            )
            for p in test["patterns"]
        }
        reported = {p["pattern"] for p in test["patterns"] if p["pareto"]}
        assert reported == brute_front(pts), test["test"]
