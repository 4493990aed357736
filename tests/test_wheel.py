"""The plugin as a team installs it: a wheel, in a fresh virtual environment, in an unrelated
project that knows nothing of this repository.

Builds the wheel from a copy of the sources (``pip wheel --no-build-isolation``: the build
requirements come with ``.[dev]``, so nothing is downloaded), installs it into a new venv that
sees this environment's dependencies but not this checkout, then runs a small external suite
(a conftest.py, a cases file and a test module with the OpenAI SDK against
``agentpatterns_sim``) the way docs/ci.md's workflow for a team's project does: record, replay
with ``CI=true``, save, gate against the saved run, write the step summary, render the saved
run. About 20 to 40 seconds: it starts Python six times.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONFTEST = """
import openai
import pytest


@pytest.fixture(scope="session")
def client(agentpatterns_sim):
    with openai.OpenAI(
        base_url=agentpatterns_sim.openai_base_url, api_key="sim-key", max_retries=0
    ) as client:
        yield client
"""

CASES = """\
{"id": "apples", "question": "A baker has 23 apples and buys 17 more. How many apples does the baker have now?", "answer": "40"}
{"id": "train", "question": "A train travels 60 miles per hour for 3 hours. How many miles does it travel?", "answer": "180"}
{"id": "pages", "question": "Maya reads 12 pages a day for 9 days. How many pages does she read in total?", "answer": "108"}
{"id": "eggs", "question": "A recipe needs 3 eggs per cake. How many eggs are needed for 16 cakes?", "answer": "48"}
"""

TEST_MODULE = """
import pytest

from pytest_agentpatterns import Task, cases


@pytest.mark.agentpatterns(repeat=2)
@pytest.mark.parametrize("case", cases("cases.jsonl"))
def test_word_problem(agent, client, case):
    def solve(question):
        response = client.chat.completions.create(
            model="sim-fast",
            messages=[{"role": "user", "content": question + " Reply with the number only."}],
        )
        return response.choices[0].message.content.strip()

    task = Task(name="word-problems", propose=solve)
    assert agent.run(task, case["question"]) == case["answer"]
"""


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "VIRTUAL_ENV", "CI")
        and not k.startswith(("PYTEST_XDIST", "ANTHROPIC_", "OPENAI_"))
    }
    clean.update(env, COLUMNS="120")
    proc = subprocess.run(
        args, cwd=cwd, env=clean, capture_output=True, text=True, timeout=300, check=False
    )
    return proc


def _check(proc: subprocess.CompletedProcess[str], code: int = 0) -> str:
    assert proc.returncode == code, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


def _build_wheel(tmp: Path) -> Path:
    """The wheel, built from a copy of the sources so the checkout gets no build/ folder."""
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "pytest_agentpatterns",
        source / "pytest_agentpatterns",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    dist = tmp / "dist"
    _check(
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "--wheel-dir",
                str(dist),
                str(source),
            ],
            cwd=tmp,
        )
    )
    [wheel] = dist.glob("pytest_agentpatterns-*.whl")
    return wheel


def _fresh_venv(tmp: Path) -> Path:
    """A venv that sees this environment's packages, except this checkout's own install."""
    venv = tmp / "venv"
    _check(_run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp))
    python = venv / "bin" / "python"
    deps = tmp / "deps"
    deps.mkdir()
    here = {Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    for site in here:
        for entry in site.iterdir():
            name = entry.name
            if name.startswith(("pytest_agentpatterns", "__editable__")) or name.endswith(".pth"):
                continue
            if not (deps / name).exists():
                (deps / name).symlink_to(entry)
    purelib = _check(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp)
    ).strip()
    (Path(purelib) / "dependencies.pth").write_text(f"{deps}\n")
    return python


def test_a_team_installs_the_wheel_and_gates_its_own_suite(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in ("py.typed", "sim/world.json", "sim/models.json", "sim/prices.toml"):
        assert f"pytest_agentpatterns/{data}" in names
    assert not any(n.startswith(("tests/", "example_suite/")) for n in names)
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "agentpatterns = pytest_agentpatterns.plugin" in zipfile.ZipFile(wheel).read(
        entry_points
    ).decode("utf-8")

    python = _fresh_venv(tmp_path)
    # pip of this environment installs into the new one (it has no pip of its own).
    _check(
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(python),
                "install",
                "--no-deps",
                "--no-index",
                str(wheel),
            ],
            cwd=tmp_path,
        )
    )
    where = _check(
        _run([str(python), "-c", "import pytest_agentpatterns as p; print(p.__file__)"], tmp_path)
    )
    assert Path(where.strip()).is_relative_to(tmp_path / "venv"), where

    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(CONFTEST)
    (project / "cases.jsonl").write_text(CASES)
    (project / "test_solve.py").write_text(TEST_MODULE)
    pytest_args = [
        str(python),
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--patterns=single,parallel(n=3)",
    ]

    # 1. On a developer's machine: the first run records against the simulator.
    out = _check(_run(pytest_args, project))
    assert "agentpatterns summary" in out and "8 passed" in out
    assert len(list((project / "cassettes" / "test_solve").glob("*.json"))) == 8

    # 2. Save a baseline from a replay, as CI will replay.
    _check(_run([*pytest_args, "--patterns-save=baseline.json"], project, CI="true"))

    # 3. The CI step: replay, gate against the baseline, append the step summary, keep the run.
    summary = project / "step-summary.md"
    summary.write_text("# Earlier step\n")
    proc = _run(
        [
            *pytest_args,
            "--patterns-baseline=baseline.json",
            "--patterns-fail-on=accuracy:-0.05,latency_p95:+20%,cost:+10%",
            f"--patterns-markdown={summary}",
            "--patterns-markdown-append",
            "--patterns-save=run.json",
        ],
        project,
        CI="true",
    )
    out = _check(proc)
    lines = out.splitlines()
    assert "test_solve.py::test_word_problem (4 cases, baseline single)" in lines
    assert any(line.startswith("  parallel(n=3) ") for line in lines)
    assert lines[-1] == "agentpatterns: 0 gates failed, 0 inconclusive, 6 passed"
    text = summary.read_text()
    assert text.startswith("# Earlier step\n## agentpatterns summary")

    # 4. Later, anywhere: render the saved run, compare it with the baseline, list the patterns.
    cli = [str(python), "-m", "pytest_agentpatterns"]
    report = _check(_run([*cli, "report", "run.json"], project))
    assert report.startswith("## agentpatterns summary")
    diff = _check(
        _run([*cli, "diff", "baseline.json", "run.json", "--fail-on-regression"], project)
    )
    assert diff.splitlines()[-1] == "no differences in 2 (test, pattern) pairs"
    listing = _check(_run([*cli, "list"], project))
    assert "  loop(max_iters=3)  [built-in; roles: propose, verify, refine]" in listing
