"""Pure units: pattern specs, votes, tasks and addresses, without pytest runs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_agentpatterns import Task, Verdict
from pytest_agentpatterns.aggregators import rank_by_votes, vote_key
from pytest_agentpatterns.patterns import SpecError, builtin_registry
from pytest_agentpatterns.records import Address

REGISTRY = builtin_registry()


@given(st.integers(min_value=1, max_value=10_000))
def test_parallel_spec_round_trips(n: int) -> None:
    spec = REGISTRY.parse_one(f"parallel(n={n})")
    assert spec.id == f"parallel(n={n})"
    assert REGISTRY.parse_one(spec.id) == spec


@given(
    st.integers(min_value=1, max_value=50),
    st.floats(min_value=0, max_value=1, allow_nan=False).map(lambda x: round(x, 3)),
)
def test_escalate_spec_round_trips(n: int, threshold: float) -> None:
    spec = REGISTRY.parse_one(f" escalate( threshold = {threshold} , n={n} ) ")
    assert REGISTRY.parse_one(spec.id) == spec
    assert spec.kwargs == {"n": n, "threshold": pytest.approx(threshold)}


@given(st.text(max_size=30))
def test_parse_never_crashes_only_spec_errors(text: str) -> None:
    try:
        specs = REGISTRY.parse(text)
    except SpecError as exc:
        assert "allowed" in str(exc) or "write" in str(exc) or "must be" in str(exc)
    else:
        assert specs


def test_defaults_and_all() -> None:
    assert REGISTRY.parse_one("parallel").id == "parallel(n=5)"
    assert [s.id for s in REGISTRY.parse("all")] == [
        "single",
        "sequential",
        "parallel(n=5)",
        "hybrid(n=3)",
        "escalate(n=3,threshold=0.67)",
        "loop(max_iters=3)",
    ]
    assert [s.id for s in REGISTRY.parse("single,parallel(n=2),single")] == [
        "single",
        "parallel(n=2)",
    ]


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=12))
def test_votes_rank_by_count_then_first_appearance(outputs: list[str]) -> None:
    groups = rank_by_votes(outputs)
    counts = [len(g) for g in groups]
    assert counts == sorted(counts, reverse=True)
    assert sum(counts) == len(outputs)
    top = [g[0] for g in groups if len(g) == counts[0]]
    assert groups[0][0] == min(top, key=outputs.index)


def test_votes_group_unhashable_outputs() -> None:
    outputs = [{"a": 1, "b": 2}, {"b": 2, "a": 1}, {"a": 3}]
    assert rank_by_votes(outputs)[0] == [{"a": 1, "b": 2}, {"b": 2, "a": 1}]
    assert vote_key([1, 2]) == vote_key([1, 2])


def test_task_validates_roles_and_verdicts() -> None:
    with pytest.raises(TypeError, match="propose must be callable"):
        Task(name="t", propose="nope")  # type: ignore[arg-type]
    task = Task(name="t", propose=str, verify=lambda x, o: True, verify_threshold=0.7)
    assert task.as_verdict(0.7) == Verdict(ok=True, score=0.7)
    assert task.as_verdict(0.69).ok is False
    assert task.as_verdict(Verdict(False, "fix it")).feedback == "fix it"
    with pytest.raises(ValueError, match="a score must be in"):
        task.as_verdict(1.5)
    with pytest.raises(TypeError, match="allowed: bool, a float in"):
        task.as_verdict("yes")
    assert task.has("verify") and not task.has("steps") and not task.has("refine")


@given(
    st.integers(min_value=0, max_value=1000),
    st.lists(st.sampled_from(["parallel[0]", "verify[1]", "loop[2]", "steps[0]"]), max_size=3),
    st.sampled_from(["propose", "verify", "refine", "step", "aggregate", "test"]),
    st.integers(min_value=0, max_value=9),
)
def test_address_text_round_trips(rep: int, branch: list[str], role: str, ordinal: int) -> None:
    address = Address(rep, tuple(branch), role, ordinal)
    assert Address.parse(str(address)) == address


@given(st.floats(min_value=0, max_value=1, allow_nan=False))
def test_spec_id_is_exact_for_any_float(threshold: float) -> None:
    spec = REGISTRY.canonical("escalate", {"threshold": threshold})
    assert REGISTRY.parse_one(spec.id) == spec
