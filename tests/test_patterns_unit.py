"""Pure units: pattern specs, votes, tasks and addresses, without pytest runs."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_agentpatterns import Task, Verdict
from pytest_agentpatterns.aggregators import rank_by_votes, vote_key
from pytest_agentpatterns.patterns import (
    MAX_BRANCHES,
    MAX_ITERS,
    Param,
    SpecError,
    builtin_registry,
)
from pytest_agentpatterns.records import Address

REGISTRY = builtin_registry()


@given(st.integers(min_value=1, max_value=MAX_BRANCHES))
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


@pytest.mark.parametrize(
    "text",
    [
        f"parallel(n={MAX_BRANCHES + 1})",
        f"hybrid(n={MAX_BRANCHES + 1})",
        f"escalate(n={MAX_BRANCHES + 1})",
        f"loop(max_iters={MAX_ITERS + 1})",
        "parallel(n=1000000000)",
        "parallel(n=" + "9" * 5000 + ")",
        "escalate(threshold=nan)",
        "escalate(threshold=NaN)",
        "escalate(threshold=inf)",
        "escalate(threshold=-infinity)",
        "escalate(threshold=1e999)",
    ],
)
def test_absurd_and_non_finite_values_are_refused(text: str) -> None:
    with pytest.raises(SpecError, match=r"is not allowed: .* must be an? .*from"):
        REGISTRY.parse(text)


def test_largest_values_are_accepted() -> None:
    assert REGISTRY.parse_one(f"parallel(n={MAX_BRANCHES})").kwargs == {"n": MAX_BRANCHES}
    assert REGISTRY.parse_one(f"loop(max_iters={MAX_ITERS})").kwargs == {"max_iters": MAX_ITERS}


@pytest.mark.parametrize(
    "text,message",
    [
        ("parallel(n=2))", "unbalanced ')'"),
        ("parallel((n=2)", "unclosed '('"),
        ("parallel(n=(2))", "malformed pattern spec"),
        ("parallel(n=2,n=3)", "'n' given twice"),
        ("parallel(n=2),single)", "unbalanced ')'"),
        ("x" * 10_000 + " y", "malformed pattern spec 'xxxxx"),
    ],
)
def test_malformed_specs_say_how_to_write_one(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)) as info:
        REGISTRY.parse(text)
    assert "e.g. parallel(n=8)" in str(info.value)
    assert len(str(info.value)) < 400


def test_param_checks_its_own_declaration() -> None:
    with pytest.raises(SpecError, match="default must be an integer from 1 to 4"):
        Param(int, 5, 1, 4)
    with pytest.raises(SpecError, match="minimum 3 is above its maximum 2"):
        Param(int, 2, 3, 2)
    with pytest.raises(SpecError, match="bounds must be finite"):
        Param(float, 0.5, 0.0, float("inf"))
    with pytest.raises(SpecError, match="type must be int or float"):
        Param(str, 1)
    assert Param(float, 0.5, maximum=1.0).allowed() == "a finite number <= 1"


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


@pytest.mark.parametrize("threshold", [float("nan"), -0.1, 1.5, "0.5", True, None])
def test_task_refuses_a_bad_verify_threshold(threshold: object) -> None:
    with pytest.raises(ValueError, match=r"verify_threshold=.* is not allowed: use a number"):
        Task(name="t", propose=str, verify_threshold=threshold)  # type: ignore[arg-type]


@pytest.mark.parametrize("aggregate", ["", 3, None])
def test_task_refuses_a_bad_aggregate(aggregate: object) -> None:
    with pytest.raises(TypeError, match=r'aggregate=.* is not allowed: use "majority"'):
        Task(name="t", propose=str, aggregate=aggregate)  # type: ignore[arg-type]


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
