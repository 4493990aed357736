"""Regenerate the command outputs printed in docs/, so no figure there is typed by hand.

A block to regenerate is marked in the Markdown by a comment naming a recipe, followed by a
fenced block::

    <!-- generated: ci-gates-fail -->
    ```console
    ...
    ```

``python docs/generate.py`` runs every recipe and rewrites its blocks in place;
``python docs/generate.py --check`` exits 1 and names the stale blocks instead;
``python docs/generate.py NAME ...`` runs only those recipes. Recipes replay the example
suite's committed cassettes (offline, deterministic), in a temporary directory so nothing
in the checkout changes; a recipe states its command line as the block's first lines.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MARK = re.compile(r"<!-- generated: ([\w.-]+) -->\n```(\w*)\n(.*?)```", re.S)
MARKDOWN_MARK = re.compile(
    r"<!-- generated-markdown: ([\w.-]+) -->\n(.*?)<!-- end generated-markdown -->", re.S
)
"""A block of Markdown itself (a report's tables), between two comments."""
WIDTH = "100"
"""COLUMNS the recipes run with: the summary fits it."""


@dataclass(frozen=True)
class Recipe:
    """A command whose output a doc shows, and how to cut the part worth showing."""

    shown: str
    """The command as the doc shows it (a user's shell line)."""
    args: tuple[str, ...]
    """The pytest arguments actually run (paths resolved in the temporary directory)."""
    cut: Callable[[list[str]], list[str]]
    setup: tuple[tuple[str, ...], ...] = ()
    """pytest runs made first (e.g. saving a baseline), output discarded."""
    markdown: bool = False
    """The block is the Markdown report the command writes (``summary.md``), not its output."""
    ci: bool = True
    """Run with ``CI=true`` (record mode ``none``)."""
    before: Callable[[Path], None] | None = None
    """A change to the walkthrough's directory made before the command (a step's edit)."""
    shell: tuple[str, ...] = ()
    """A command other than pytest, run in the walkthrough's directory."""
    stable: bool = True
    """Whether two runs print the same: a live run's latencies do not (``--check`` skips it)."""
    stderr: bool = False
    """Show what the command wrote to stderr (a start-up error) instead of its output."""
    files: str = ""
    """A page of docs/ whose ``<!-- file: NAME -->`` code blocks are written to the temporary
    directory, where the command then runs (the page's own example, as a reader would)."""


def _from(marker: str, *, keep_last: int | None = None) -> Callable[[list[str]], list[str]]:
    """Lines from the first that contains ``marker`` to the end (or its last few lines)."""

    def cut(lines: list[str]) -> list[str]:
        start = next(i for i, line in enumerate(lines) if marker in line)
        part = lines[start:]
        if keep_last is not None and len(part) > keep_last:
            part = ["...", *part[-keep_last:]]
        return part

    return cut


def _gates(lines: list[str]) -> list[str]:
    """The gate section and the run's last lines."""
    start = next(i for i, line in enumerate(lines) if line.startswith("gates against"))
    return ["...", *lines[start:]]


def _block(marker: str) -> Callable[[list[str]], list[str]]:
    """The lines from the first that contains ``marker`` to the next blank line."""

    def cut(lines: list[str]) -> list[str]:
        start = next(i for i, line in enumerate(lines) if marker in line)
        end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
        return ["...", *lines[start:end]]

    return cut


RUN = ("example_suite", "--patterns=all", "-p", "no:cacheprovider")
RULES = "accuracy:-0.05,latency_p95:+20%,cost:+10%"

RECIPES: dict[str, Recipe] = {
    "ci-gates-pass": Recipe(
        "CI=true pytest example_suite --patterns=all --patterns-baseline=baseline.json \\\n"
        f'    --patterns-fail-on="{RULES}" --patterns-save=run.json',
        (
            *RUN,
            "--patterns-baseline=baseline.json",
            f"--patterns-fail-on={RULES}",
            "--patterns-save=run.json",
        ),
        _gates,
        setup=((*RUN, "--patterns-save=baseline.json"),),
    ),
    "ci-gates-fail": Recipe(
        "CI=true pytest example_suite --patterns=all --patterns-baseline=baseline.json \\\n"
        '    --patterns-fail-on="latency_p95:+20%" --patterns-max-concurrency=1',
        (
            *RUN,
            "--patterns-baseline=baseline.json",
            "--patterns-fail-on=latency_p95:+20%",
            "--patterns-max-concurrency=1",
        ),
        _gates,
        setup=((*RUN, "--patterns-save=baseline.json"),),
    ),
    "example-markdown": Recipe(
        "CI=true pytest example_suite --patterns=all --patterns-markdown=summary.md",
        (*RUN, "--patterns-markdown=summary.md"),
        lambda lines: lines[1:] if lines and lines[0].startswith("## ") else lines,
        markdown=True,
    ),
    "summary-arithmetic": Recipe(
        "CI=true pytest example_suite/test_arithmetic.py --patterns=all",
        ("example_suite/test_arithmetic.py", "--patterns=all", "-p", "no:cacheprovider"),
        _from("agentpatterns summary"),
    ),
    "plan-pilot": Recipe(
        "CI=true pytest example_suite/test_arithmetic.py --patterns=all --patterns-plan",
        (
            "example_suite/test_arithmetic.py",
            "--patterns=all",
            "--patterns-plan",
            "-p",
            "no:cacheprovider",
        ),
        _from("agentpatterns plan"),
    ),
    "adaptive-triage": Recipe(
        "CI=true pytest example_suite/test_triage.py --patterns=single,parallel(n=5) "
        "--patterns-adaptive",
        (
            "example_suite/test_triage.py",
            "--patterns=single,parallel(n=5)",
            "--patterns-adaptive",
            "-p",
            "no:cacheprovider",
        ),
        _block("test_triage.py::test_triage ("),
    ),
    "diagnostics-codegen": Recipe(
        "CI=true pytest example_suite/test_codegen.py --patterns=all -v",
        ("example_suite/test_codegen.py", "--patterns=all", "-p", "no:cacheprovider", "-v"),
        _block("by ensemble size"),
    ),
    "extending-resample": Recipe(
        'pytest test_summaries.py --patterns="resample,resample(k=1),parallel(n=3)" '
        "--patterns-repeat=6",
        (
            "test_summaries.py",
            "--patterns=resample,resample(k=1),parallel(n=3)",
            "--patterns-repeat=6",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
        ),
        _from("collected"),
        files="extending.md",
        stable=False,
    ),
    "extending-bad-spec": Recipe(
        'pytest test_summaries.py --patterns="resample(k=0)"',
        ("test_summaries.py", "--patterns=resample(k=0)", "-p", "no:cacheprovider"),
        lambda lines: [line for line in lines if line.strip()],
        files="extending.md",
        stderr=True,
    ),
}


def _all(lines: list[str]) -> list[str]:
    return lines


# The getting-started walkthrough: its test module is assembled from the guide's own code
# blocks (each marked <!-- file: test_first.py -->), recorded live against the bundled
# simulator (seed 0) in a temporary directory, then replayed with the simulator stopped,
# step by step as the guide runs it. Its latencies are measured, so these blocks change a
# little on every regeneration; --check skips them (see WALKTHROUGH_STABLE).
GUIDE = DOCS / "getting-started.md"
FILE_MARK = re.compile(r"<!-- file: ([\w.-]+) -->\n```python\n(.*?)```", re.S)
WALKTHROUGH_STABLE = False


def page_files(page: Path) -> dict[str, str]:
    """A page's ``<!-- file: NAME -->`` code blocks by file name; blocks of one name, in page
    order, make one file (a guide builds its module step by step)."""
    files: dict[str, str] = {}
    for name, code in FILE_MARK.findall(page.read_text(encoding="utf-8")):
        files[name] = files.get(name, "") + ("\n\n" if name in files else "") + code
    return files


def _threshold(directory: Path) -> None:
    (directory / "pytest.ini").write_text(
        "[pytest]\nagentpatterns_patterns = single, parallel(n=5)\n", encoding="utf-8"
    )
    module = directory / "test_first.py"
    text = module.read_text(encoding="utf-8")
    old = "@pytest.mark.agentpatterns(repeat=5)"
    if old not in text:
        raise SystemExit(f"{GUIDE.name}: the test module no longer has {old!r}")
    new = "@pytest.mark.agentpatterns(repeat=5, min_accuracy=0.8)"
    module.write_text(text.replace(old, new), encoding="utf-8")


WALK = ("-p", "no:cacheprovider")
WALKTHROUGH: dict[str, Recipe] = {
    "gs-record": Recipe(
        "pytest test_first.py", ("test_first.py", *WALK), _from("collected"), ci=False
    ),
    "gs-cassettes": Recipe(
        "find cassettes -type f | sort", (), _all, shell=("find", "cassettes", "-type", "f")
    ),
    "gs-compare": Recipe(
        'pytest test_first.py --patterns="single,parallel(n=5)"',
        ("test_first.py", "--patterns=single,parallel(n=5)", *WALK),
        _from("collected"),
        ci=False,
    ),
    "gs-replay": Recipe(
        'CI=true pytest test_first.py --patterns="single,parallel(n=5)"',
        ("test_first.py", "--patterns=single,parallel(n=5)", *WALK),
        lambda lines: ["...", *_from("agentpatterns summary")(lines)],
    ),
    "gs-threshold": Recipe(
        "pytest",
        WALK,
        lambda lines: ["...", *_from("FAILURES")(lines)],
        ci=False,
        before=_threshold,
    ),
}
"""In order: the simulator runs for the first three, and is stopped before the others."""
LIVE_STEPS = 3


def run_walkthrough(wanted: set[str]) -> dict[str, str]:
    """Run the guide's steps in order in one temporary directory; the blocks asked for."""
    from pytest_agentpatterns.sim import Simulator

    # Later sections' own modules are not the walkthrough's.
    files = {k: v for k, v in page_files(GUIDE).items() if k == "test_first.py"}
    if not files:
        raise SystemExit(f"{GUIDE.name}: no code block marked <!-- file: test_first.py -->")
    outputs: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="agentpatterns-guide-") as tmp:
        directory = Path(tmp)
        for name, code in files.items():
            (directory / name).write_text(code, encoding="utf-8")
        sim = Simulator(seed=0)
        sim.start()
        env = {
            **os.environ,
            "COLUMNS": WIDTH,
            "ANTHROPIC_BASE_URL": sim.base_url,
            "ANTHROPIC_API_KEY": "sim-key",
        }
        for var in ("PYTEST_ADDOPTS", "CI"):
            env.pop(var, None)
        try:
            for step, (name, recipe) in enumerate(WALKTHROUGH.items()):
                if step == LIVE_STEPS:
                    sim.stop()
                if recipe.before is not None:
                    recipe.before(directory)
                if recipe.shell:
                    out = subprocess.run(
                        recipe.shell, cwd=directory, capture_output=True, text=True, check=True
                    ).stdout
                    out = "\n".join(sorted(out.splitlines()))
                else:
                    run_env = {**env, "CI": "true"} if recipe.ci else env
                    out = _pytest(recipe.args, tmp, run_env, cwd=directory)
                if name in wanted:
                    outputs[name] = _rendered(recipe, out, timed=True)
        finally:
            sim.stop()
    return outputs


def _mask_time(line: str) -> str:
    """A run time masked as 9.99s, and pytest's '=' rule around it laid out again for the
    masked text (its padding depends on how long the real time was written)."""
    masked = re.sub(r" in \d+\.\d+s( \([0-9:]+\))?", " in 9.99s", line)
    rule = re.fullmatch(r"(=+) (.*) (=+)", masked)
    if masked == line or rule is None:
        return masked
    # As pytest's TerminalWriter.sep lays a title out in a line of the same width.
    width, title = len(line), rule.group(2)
    n = max((width - len(title) - 2) // 2, 2)
    ruled = "=" * n + " " + title + " " + "=" * n
    return ruled + "=" if len(ruled) + 1 <= width else ruled


def _rendered(recipe: Recipe, out: str, *, timed: bool = False) -> str:
    """The block's text: the shown command, then the cut output (run times masked unless
    ``timed``: a replay's time is what the walkthrough shows)."""
    lines = [line.rstrip() for line in out.splitlines()]
    if not timed:
        lines = [_mask_time(line) for line in lines]
    return "$ " + recipe.shown + "\n" + "\n".join(recipe.cut(lines)) + "\n"


def run_recipe(recipe: Recipe) -> str:
    """The block's text: the shown command, then the cut output."""
    with tempfile.TemporaryDirectory(prefix="agentpatterns-docs-") as tmp:
        env = {**os.environ, "CI": "true", "COLUMNS": WIDTH}
        env.pop("PYTEST_ADDOPTS", None)
        cwd = ROOT
        if recipe.files:
            for name, code in page_files(DOCS / recipe.files).items():
                (Path(tmp) / name).write_text(code, encoding="utf-8")
            cwd = Path(tmp)
        for setup in recipe.setup:
            _pytest(setup, tmp, env, cwd=cwd)
        out = _pytest(recipe.args, tmp, env, cwd=cwd, stderr=recipe.stderr)
        if recipe.markdown:
            text = Path(tmp, "summary.md").read_text(encoding="utf-8")
            return "\n".join(recipe.cut(text.splitlines())).strip("\n") + "\n"
    return _rendered(recipe, out)


def _pytest(
    args: tuple[str, ...],
    tmp: str,
    env: dict[str, str],
    cwd: Path = ROOT,
    *,
    stderr: bool = False,
) -> str:
    resolved = [
        a.replace("baseline.json", f"{tmp}/baseline.json")
        .replace("run.json", f"{tmp}/run.json")
        .replace("summary.md", f"{tmp}/summary.md")
        for a in args
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *resolved],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if stderr:
        return proc.stderr
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{shlex.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="recipes to run (default: all)")
    parser.add_argument("--check", action="store_true", help="report stale blocks, change nothing")
    options = parser.parse_args(argv)
    known = {**RECIPES, **WALKTHROUGH}
    unknown = [n for n in options.names if n not in known]
    if unknown:
        parser.error(f"unknown recipe {unknown[0]!r}; known: {', '.join(known)}")
    wanted = options.names or [
        n
        for n in known
        if not options.check
        or (n in RECIPES and RECIPES[n].stable)
        or (n in WALKTHROUGH and WALKTHROUGH_STABLE)
    ]
    outputs = {name: run_recipe(RECIPES[name]) for name in wanted if name in RECIPES}
    walk = {name for name in wanted if name in WALKTHROUGH}
    if walk:
        outputs.update(run_walkthrough(walk))
    stale = []
    for doc in [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]:
        text = doc.read_text(encoding="utf-8")

        def replace(match: re.Match[str], doc: Path = doc) -> str:
            name, lang, body = match.group(1), match.group(2), match.group(3)
            if name not in outputs:
                if name not in known:
                    raise SystemExit(f"{doc.name}: unknown recipe {name!r}")
                return match.group(0)
            if body != outputs[name]:
                stale.append(f"{doc.relative_to(ROOT)}: {name}")
            return f"<!-- generated: {name} -->\n```{lang}\n{outputs[name]}```"

        def replace_markdown(match: re.Match[str], doc: Path = doc) -> str:
            name, body = match.group(1), match.group(2)
            if name not in outputs:
                if name not in known:
                    raise SystemExit(f"{doc.name}: unknown recipe {name!r}")
                return match.group(0)
            if body != outputs[name]:
                stale.append(f"{doc.relative_to(ROOT)}: {name}")
            return (
                f"<!-- generated-markdown: {name} -->\n{outputs[name]}"
                "<!-- end generated-markdown -->"
            )

        new = MARKDOWN_MARK.sub(replace_markdown, MARK.sub(replace, text))
        if new != text and not options.check:
            doc.write_text(new, encoding="utf-8")
    if options.check and stale:
        print("stale generated blocks (run python docs/generate.py):\n  " + "\n  ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
