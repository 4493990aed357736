"""The README's first command: the example suite replays offline from its committed cassettes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_example_suite_replays_offline_and_deterministically(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_BASE_URL")}
    env["CI"] = "true"  # replay only: a call without a recording fails instead of recording
    reports = []
    outputs = []
    for run, columns in enumerate(("80", "200")):
        env["COLUMNS"] = columns
        report = tmp_path / f"r{run}.json"
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
        assert "agentpatterns summary" in proc.stdout
        reports.append(report.read_bytes())
        outputs.append(proc.stdout)
    assert reports[0] == reports[1]  # and the terminal's width changes nothing in the report
    summary = outputs[0].split("agentpatterns summary", 1)[1].splitlines()[1:]
    assert summary and max(len(line) for line in summary) <= 80
    data = json.loads(reports[0])
    calls = [c for i in data["items"] for r in i["repetitions"] for c in r["calls"]]
    assert calls and all(c["replayed"] for c in calls)
    assert {s["test"].split("::")[0] for s in data["summary"]} == {
        "test_arithmetic.py",
        "test_codegen.py",
        "test_extraction.py",
        "test_grounded.py",
        "test_triage.py",
    }
