"""``python -m pytest_agentpatterns`` (list, report, diff) and ``pytest --patterns-list``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_agentpatterns import cli, diffing
from pytest_agentpatterns.records import Address, CallRecord, ItemResult, Repetition
from pytest_agentpatterns.sim import Simulator

REGISTER = """
from pytest_agentpatterns.patterns import Param

def pytest_agentpatterns_register(registry):
    async def twice(flow):
        \"\"\"Propose twice and keep the second answer.\"\"\"
        await flow.propose()
        return await flow.propose()

    registry.add_pattern("twice", twice, params={"k": Param(float, 1, 0, 2, doc="a knob")})

    def longest(outputs):
        \"\"\"The longest output.\"\"\"
        return max(outputs, key=len)

    registry.add_aggregator("longest", longest)
"""


def test_patterns_list_prints_the_registry_and_exits(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    pytester.makeconftest(REGISTER)
    pytester.makepyfile("def test_never_runs():\n    raise SystemExit('collected')\n")
    result = pytester.runpytest("--patterns-list")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "patterns (--patterns=SPEC[[],SPEC[]]; all: every built-in pattern with its defaults):",
            "  single  [[]built-in; roles: propose[]]",
            "  sequential  [[]built-in; roles: steps[]]",
            "  parallel(n=5)  [[]built-in; roles: propose, aggregate[]]",
            "      n: integer, default 5, from 1 to 64; number of concurrent candidates",
            "  escalate(n=3,threshold=0.67)  [[]built-in; roles: propose[]]",
            "      threshold: number, default 0.67, from 0 to 1; vote share to accept",
            "  loop(max_iters=3)  [[]built-in; roles: propose, verify, refine[]]",
            "      max_iters: integer, default 3, from 1 to 64; rounds of verify/refine",
            "  twice(k=1.0)  [[]registered; roles: propose[]]",
            "      Propose twice and keep the second answer.",
            "      k: number, default 1.0, from 0 to 2; a knob",
            "aggregators (Task(aggregate=NAME): how parallel outputs are combined):",
            "  majority  [[]built-in[]]: The most common output*",
            "  longest  [[]registered[]]: The longest output.",
        ]
    )
    assert "collected" not in result.stdout.str()
    assert all(len(line) <= 100 for line in result.stdout.lines)


def test_patterns_list_stops_on_a_bad_registration(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "def pytest_agentpatterns_register(registry):\n"
        "    registry.add_aggregator('majority', len)\n"
    )
    result = pytester.runpytest("--patterns-list")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: pytest_agentpatterns_register: aggregator 'majority' is already registered"]
    )


def _module_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["COLUMNS"] = "100"
    return subprocess.run(
        [sys.executable, "-m", "pytest_agentpatterns", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_list_subcommand_sees_the_projects_conftest(pytester: pytest.Pytester) -> None:
    (pytester.path / "suite").mkdir()
    (pytester.path / "suite" / "conftest.py").write_text(REGISTER)
    inside = _module_cli("list", "suite", cwd=pytester.path)
    assert inside.returncode == 0, inside.stderr
    assert "  twice(k=1.0)  [registered; roles: propose]" in inside.stdout.splitlines()
    # Without the path, that conftest is not loaded: only what pytest would know there.
    outside = _module_cli("list", cwd=pytester.path)
    assert outside.returncode == 0 and "twice" not in outside.stdout
    assert "  hybrid(n=3)  [built-in; roles: propose, verify]" in outside.stdout.splitlines()


def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["diff", "only-one.json"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "python -m pytest_agentpatterns diff: error: the following arguments are required: "
        "NEW.json (see python -m pytest_agentpatterns diff --help)"
    ]
    with pytest.raises(SystemExit) as info:
        cli.main(["frobnicate"])
    assert info.value.code == 2


def test_unreadable_runs_are_one_line_naming_the_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.json"
    assert cli.main(["report", str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"python -m pytest_agentpatterns report: error: {missing}: no such file\n"
    )
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "kind": "pytest-agentpatterns-report",
                "schema_version": 2,
                "items": [{"nodeid": "x", "test": "x", "case": "", "pattern": "single"}],
            }
        )
    )
    assert cli.main(["diff", str(bad), str(bad)]) == 2
    assert capsys.readouterr().err == (
        f"python -m pytest_agentpatterns diff: error: {bad}: malformed: "
        "items[0].repetitions: missing (a required field)\n"
    )
    gated = {
        "kind": "pytest-agentpatterns-report",
        "schema_version": 2,
        "items": [],
        "gate_run": {"alpha": 0.05, "level": 0.05},
        "gates": [{"rule": "accuracy:-0.05", "test": "t", "pattern": "single", "verdict": "maybe"}],
    }
    bad.write_text(json.dumps(gated))
    assert cli.main(["report", str(bad)]) == 2
    assert capsys.readouterr().err == (
        f"python -m pytest_agentpatterns report: error: {bad}: malformed: gates[0]: "
        "verdict 'maybe' is not one of pass, fail, inconclusive, not evaluated\n"
    )
    bad.write_text("{not json")
    assert cli.main(["report", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m pytest_agentpatterns report: error: {bad}: not a saved run:")
    assert err.count("\n") == 1


# --- report: what the run itself wrote ------------------------------------------------------

RUN = """
import os, pytest, anthropic
from pytest_agentpatterns import Task

CLIENT = anthropic.Anthropic(base_url=os.environ["SIM_URL"], api_key="sim-key", max_retries=0)
Q = "What is the capital of Testland?"

def ask(model):
    def propose(q):
        m = CLIENT.messages.create(model=model, max_tokens=20, messages=[{"role": "user", "content": q}])
        return m.content[0].text.strip()
    return propose

priced = Task(name="priced", propose=ask("sim-fast"))
unpriced = Task(name="unpriced", propose=ask("acme-unpriced-7"))

@pytest.mark.agentpatterns(repeat=3)
@pytest.mark.parametrize("case", ["c1", "c2", "c3", "c4"])
def test_priced(agent, case):
    assert agent.run(priced, Q) == "Alpha"

@pytest.mark.agentpatterns(repeat=2)
@pytest.mark.parametrize("case", ["c1", "c2"])
def test_unpriced(agent, case):
    assert agent.run(unpriced, Q) == "Alpha"
"""


def test_report_renders_what_the_run_wrote(
    pytester: pytest.Pytester, sim_env: Simulator, tmp_path: Path
) -> None:
    pytester.makepyfile(test_run=RUN)
    base = pytester.path / "baseline.json"
    args = ("-p", "no:cacheprovider", "--patterns=single,parallel(n=3),hybrid(n=2)")
    pytester.runpytest(*args, "--patterns-record=all", f"--patterns-save={base}")
    out = {name: pytester.path / name for name in ("run.json", "run.md", "run.html")}
    result = pytester.runpytest(
        *args,
        "--patterns-record=none",
        "--patterns-seed=5",
        f"--patterns-baseline={base}",
        "--patterns-fail-on=accuracy:-0.1,cost:+10%",
        f"--patterns-json={out['run.json']}",
        f"--patterns-markdown={out['run.md']}",
        f"--patterns-html={out['run.html']}",
    )
    result.assert_outcomes(passed=12, skipped=6)
    markdown = out["run.md"].read_text()
    assert "### Gates:" in markdown and "no price for model 'acme-unpriced-7'" in markdown
    md, html = tmp_path / "again.md", tmp_path / "again.html"
    assert cli.main(["report", str(out["run.json"]), "-o", str(md)]) == 0
    assert cli.main(["report", str(out["run.json"]), "-o", str(html)]) == 0
    assert md.read_text() == markdown
    assert html.read_text() == out["run.html"].read_text()


# --- diff -----------------------------------------------------------------------------------


def _item(
    test: str,
    case: str,
    pattern: str,
    outcomes: str,
    model: str = "sim-small",
) -> ItemResult:
    """An item whose repetitions are ``outcomes``: c correct, i incorrect, e error."""
    names = {"c": "correct", "i": "incorrect", "e": "error"}
    reps = tuple(
        Repetition(
            index,
            names[o],  # type: ignore[arg-type]
            0.1,
            calls=(
                CallRecord(
                    Address(index, (), "propose", 0), "POST", "http://x/v1", 200, 0.1, model
                ),
            ),
        )
        for index, o in enumerate(outcomes)
    )
    return ItemResult(f"{test}[{case}-{pattern}]", test, case, pattern, reps)


T = "t.py::test_triage"
OLD = [
    _item(T, "a", "single", "ccc"),
    _item(T, "b", "single", "cci"),
    _item(T, "c", "single", "iii"),
    _item(T, "gone", "single", "ccc"),
    _item(T, "a", "parallel(n=5)", "ccc"),
    _item(T, "b", "parallel(n=5)", "ccc"),
    _item(T, "c", "parallel(n=5)", "ccc"),
    _item(T, "gone", "parallel(n=5)", "ccc"),
    _item("t.py::test_old", "a", "single", "c"),
]
NEW = [
    _item(T, "a", "single", "iic"),
    _item(T, "b", "single", "cci"),
    _item(T, "c", "single", "cce", model="sim-large"),
    _item(T, "new", "single", "ccc"),
    _item(T, "a", "parallel(n=7)", "ccc"),
    _item(T, "b", "parallel(n=7)", "ccc"),
    _item(T, "c", "parallel(n=7)", "ccc"),
    _item(T, "new", "parallel(n=7)", "ccc"),
]


def test_diff_finds_cases_models_patterns_and_tests_that_changed() -> None:
    d = diffing.diff_runs(OLD, NEW)
    [pair] = d.pairs  # parallel(n=5) and parallel(n=7) are different settings, not a pair
    assert (pair.test, pair.pattern) == (T, "single")
    assert [(c.case, c.before, c.after) for c in pair.worse] == [("a", 1.0, pytest.approx(1 / 3))]
    assert [(c.case, c.before, c.after) for c in pair.better] == [("c", 0.0, pytest.approx(2 / 3))]
    assert pair.better[0].errors == (0, 1)
    assert pair.models_before == ("sim-small",)
    assert pair.models_after == ("sim-large", "sim-small")
    [test] = d.tests
    assert test.cases_added == ("new",) and test.cases_removed == ("gone",)
    assert test.settings_changed() == [("parallel(n=5)", "parallel(n=7)")]
    assert d.tests_removed == ("t.py::test_old",) and d.tests_added == ()
    assert d.regressed and d.changed


def test_diff_text_lists_each_case_beneath_its_pair() -> None:
    text = diffing.render_text(diffing.diff_runs(OLD, NEW), "old.json", "new.json", width=100)
    assert text.splitlines() == [
        "agentpatterns diff: old.json -> new.json",
        "models: sim-small -> sim-large, sim-small",
        "tests removed: t.py::test_old",
        "",
        "t.py::test_triage",
        "  pattern settings changed: parallel(n=5) -> parallel(n=7)",
        "  cases added: new",
        "  cases removed: gone",
        "  single: accuracy 0.667 -> 0.750 (cases: 1 worse, 1 better)",
        "    models: sim-small -> sim-large, sim-small",
        "    worse a: 1.00 -> 0.33",
        "    better c: 0.00 -> 0.67 (errors 0 of 3 -> 1 of 3 repetitions)",
        "",
        "1 of 1 (test, pattern) pairs changed: 1 case went from right towards wrong, "
        "1 from wrong towards right",
    ]


def test_identical_runs_have_no_differences() -> None:
    d = diffing.diff_runs(OLD, list(reversed(OLD)))
    assert not d.changed and not d.regressed
    assert diffing.render_text(d, "a", "b").splitlines()[-1] == (
        "no differences in 3 (test, pattern) pairs"
    )


def test_diff_as_json_and_markdown() -> None:
    d = diffing.diff_runs(OLD, NEW)
    data = diffing.to_dict(d, "old.json", "new.json")
    assert data["regressed"] is True
    assert data["models"] == {"before": ["sim-small"], "after": ["sim-large", "sim-small"]}
    [pair] = data["pairs"]
    assert [(c["case"], c["direction"]) for c in pair["cases"]] == [
        ("a", "worse"),
        ("c", "better"),
    ]
    text = diffing.render_markdown(d, "old.json", "new.json")
    assert "| `t.py::test_triage` | `single` | 0.667 | 0.750 | 1 | 1 |" in text
    assert "- worse a: 1.00 -> 0.33" in text


# Correct unless the case is listed in WRONG: a change of answers between two saved runs.
ANSWERS = """
import os, pytest
from pytest_agentpatterns import Task

WRONG = set(os.environ.get("WRONG", "").split(","))
t = Task(name="t", propose=lambda case: "wrong" if case in WRONG else case)

@pytest.mark.agentpatterns(repeat=2)
@pytest.mark.parametrize("case", [f"c{i:02d}" for i in range(24)])
def test_answer(agent, case):
    assert agent.run(t, case) == case
"""


def test_diff_of_two_saved_runs_gates_and_exit_codes(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytester.makepyfile(ANSWERS)
    runs = {}
    for name, wrong in (
        ("old", "c03"),
        ("same", "c03"),
        ("new", ",".join(f"c{i:02d}" for i in range(4, 16))),
    ):
        monkeypatch.setenv("WRONG", wrong)
        runs[name] = str(pytester.path / f"{name}.json")
        pytester.runpytest(
            "-p", "no:cacheprovider", "--patterns-record=none", f"--patterns-save={runs[name]}"
        ).assert_outcomes(passed=24)
    capsys.readouterr()
    assert cli.main(["diff", runs["old"], runs["same"], "--fail-on-regression"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "no differences in 1 (test, pattern) pairs"
    # Without --fail-on-regression a difference is reported, not failed.
    assert cli.main(["diff", runs["old"], runs["new"]]) == 0
    out = capsys.readouterr().out
    assert "  single: accuracy 0.958 -> 0.500 (cases: 12 worse, 1 better)" in out
    assert "    worse c04: 1.00 -> 0.00" in out and "    better c03: 0.00 -> 1.00" in out
    assert cli.main(["diff", runs["old"], runs["new"], "--fail-on-regression"]) == 1
    capsys.readouterr()
    # The gates of --patterns-fail-on, between the two files: a drop of 0.46 fails accuracy:-0.05.
    assert cli.main(["diff", runs["old"], runs["new"], "--fail-on=accuracy:-0.05"]) == 1
    out = capsys.readouterr().out
    assert "agentpatterns: 1 gate failed, 0 inconclusive, 0 passed" in out
    assert cli.main(["diff", runs["old"], runs["same"], "--fail-on=accuracy:-0.05"]) == 0
    assert "agentpatterns: 0 gates failed" in capsys.readouterr().out
    json_out = pytester.path / "diff.json"
    code = cli.main(
        [
            "diff",
            runs["old"],
            runs["new"],
            "--format=json",
            "-o",
            str(json_out),
            "--fail-on=accuracy:-0.05",
        ]
    )
    assert code == 1
    data = json.loads(json_out.read_text())
    assert data["regressed"] is True and data["gates"][0]["verdict"] == "fail"
    assert cli.main(["diff", runs["old"], runs["new"], "--fail-on=accuracy:x"]) == 2
    assert capsys.readouterr().err.startswith(
        "python -m pytest_agentpatterns diff: error: --fail-on='accuracy:x': "
    )
