"""The terminal summary as users see it: it fits the terminal, one block per test, and a
test's verdicts do not depend on which other tests ran."""

from __future__ import annotations

import pytest

# Accuracy is driven by a per-case difficulty and the pattern's name, without HTTP, so the
# summary has real differences to show; latency is the same for every pattern.
MODULE = """
import random, pytest
from pytest_agentpatterns import Task

def make(case):
    rng = random.Random(case)
    def propose(x):
        return x if rng.random() < 0.55 else "wrong"
    return propose

def vote(outputs):
    return max(set(outputs), key=outputs.count)

@pytest.mark.agentpatterns(repeat=3)
@pytest.mark.parametrize("case", [f"case-{i:02d}" for i in range(12)])
def test_{name}(agent, case):
    task = Task(name="t", propose=make(case + agent.pattern_id), steps=[lambda x, p: x])
    assert agent.run(task, case) == case
"""

PATTERNS = "--patterns=single,parallel(n=7),escalate(n=5,threshold=0.8),sequential"


def summary_lines(result: pytest.RunResult) -> list[str]:
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "agentpatterns summary" in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("===="))
    return lines[start + 1 : end]


@pytest.mark.parametrize("columns", [80, 120, 200])
def test_the_summary_fits_the_terminal(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    pytester.makepyfile(test_long_names=MODULE.replace("{name}", "a_rather_long_test_name"))
    result = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=none", PATTERNS)
    result.assert_outcomes(passed=48)
    lines = summary_lines(result)
    assert lines, result.stdout.str()
    too_long = [line for line in lines if len(line) > columns]
    assert not too_long, too_long
    assert sum(line.startswith("  recommended: ") for line in lines) == 1
    assert any("vs single" in line for line in lines)
    # Wrapped where it does not fit, never cut (a cut could drop the pattern it names).
    assert not any(line.endswith("…") for line in lines if not line.startswith("test_")), lines


def test_verbose_adds_the_latency_and_cost_estimates(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a=MODULE.replace("{name}", "a"))
    quiet = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=none", PATTERNS)
    loud = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=none", PATTERNS, "-v")
    assert not any("latency p95" in line for line in summary_lines(quiet))
    assert any("latency p95" in line for line in summary_lines(loud))


def test_a_tests_verdicts_do_not_depend_on_other_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a=MODULE.replace("{name}", "a"), test_b=MODULE.replace("{name}", "b"))
    args = ("-p", "no:cacheprovider", "--patterns-record=none", PATTERNS)
    alone = summary_lines(pytester.runpytest("test_a.py", *args))
    both = summary_lines(pytester.runpytest(*args))

    def verdicts(lines: list[str]) -> list[str]:
        # Latencies are live wall-clock times here; the verdicts are about accuracy.
        block = lines[: lines.index("")]
        return [line for line in block if "vs single:" in line or "no difference" in line]

    assert verdicts(alone) and verdicts(alone) == verdicts(both)


LONG_NAMED = """
from pytest_agentpatterns.patterns import Param


async def resample(flow):
    output = None
    for i in range(int(flow.params["k"])):

        async def attempt():
            candidate = await flow.propose()
            return candidate, await flow.verify(candidate)

        output, verdict = await flow.within(f"resample[{i}]", attempt)
        if verdict.ok:
            return output
    return output


def pytest_agentpatterns_register(registry):
    registry.add_pattern(
        "resample_until_verified", resample, params={"k": Param(int, 3, 1)},
        requires=("propose", "verify"),
    )
"""

CLOSE_CALL = """
import random, pytest
from pytest_agentpatterns import Task

t = Task(name="t", propose=lambda x: x, verify=lambda x, o: True)
ACC = {"single": 0.6, "escalate(n=4,threshold=0.75)": 0.6, "resample_until_verified(k=1)": 0.7}

@pytest.mark.agentpatterns(repeat=3)
@pytest.mark.parametrize("c", range(10))
def test_s(agent, c):
    agent.run(t, c)
    r = random.Random(f"{c}|{agent.pattern_id}|{agent.repetition}")
    assert r.random() < ACC[agent.pattern_id]
"""


def test_a_recommendation_too_long_for_the_line_is_wrapped_not_cut(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    pytester.makeconftest(LONG_NAMED)
    pytester.makepyfile(test_s=CLOSE_CALL)
    patterns = "--patterns=single,escalate(n=4,threshold=0.75),resample_until_verified(k=1)"
    result = pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=none", patterns)
    lines = summary_lines(result)
    start = next(i for i, line in enumerate(lines) if line.startswith("  recommended: "))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("    "))
    text = " ".join(line.strip() for line in lines[start:end])
    assert len(text) > 78 and "…" not in text, lines
    assert "resample_until_verified" in text, lines
    assert all(len(line) <= 80 for line in lines)


def test_a_baseline_that_did_not_run_is_named(pytester: pytest.Pytester) -> None:
    """`sequential` is listed first (so it is the baseline) but the task has no steps: every
    item of it is skipped, and the heading says which baseline did not run."""
    pytester.makepyfile(
        test_b="""
        import pytest
        from pytest_agentpatterns import Task

        t = Task(name="t", propose=lambda x: x)

        @pytest.mark.parametrize("c", ["a", "b", "c"])
        def test_one(agent, c):
            assert agent.run(t, c) == c
        """
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--patterns-record=none", "--patterns=sequential,parallel(n=2)"
    )
    result.assert_outcomes(passed=3, skipped=3)
    heading = next(line for line in summary_lines(result) if line.startswith("test_b.py"))
    assert "baseline sequential did not run" in heading, heading
