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
        (*RUN, "--patterns-baseline=baseline.json", f"--patterns-fail-on={RULES}",
         "--patterns-save=run.json"),
        _gates,
        setup=((*RUN, "--patterns-save=baseline.json"),),
    ),
    "ci-gates-fail": Recipe(
        "CI=true pytest example_suite --patterns=all --patterns-baseline=baseline.json \\\n"
        '    --patterns-fail-on="latency_p95:+20%" --patterns-max-concurrency=1',
        (*RUN, "--patterns-baseline=baseline.json", "--patterns-fail-on=latency_p95:+20%",
         "--patterns-max-concurrency=1"),
        _gates,
        setup=((*RUN, "--patterns-save=baseline.json"),),
    ),
    "summary-arithmetic": Recipe(
        "CI=true pytest example_suite/test_arithmetic.py --patterns=all",
        ("example_suite/test_arithmetic.py", "--patterns=all", "-p", "no:cacheprovider"),
        _from("agentpatterns summary"),
    ),
    "diagnostics-codegen": Recipe(
        "CI=true pytest example_suite/test_codegen.py --patterns=all -v",
        ("example_suite/test_codegen.py", "--patterns=all", "-p", "no:cacheprovider", "-v"),
        _block("by ensemble size"),
    ),
}


def run_recipe(recipe: Recipe) -> str:
    """The block's text: the shown command, then the cut output."""
    with tempfile.TemporaryDirectory(prefix="agentpatterns-docs-") as tmp:
        env = {**os.environ, "CI": "true", "COLUMNS": WIDTH}
        env.pop("PYTEST_ADDOPTS", None)
        for setup in recipe.setup:
            _pytest(setup, tmp, env)
        out = _pytest(recipe.args, tmp, env)
    lines = [line.rstrip() for line in out.splitlines()]
    lines = [re.sub(r" in \d+\.\d+s", " in 9.99s", line) for line in lines]
    return "$ " + recipe.shown + "\n" + "\n".join(recipe.cut(lines)) + "\n"


def _pytest(args: tuple[str, ...], tmp: str, env: dict[str, str]) -> str:
    resolved = [a.replace("baseline.json", f"{tmp}/baseline.json").replace(
        "run.json", f"{tmp}/run.json") for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *resolved],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{shlex.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="recipes to run (default: all)")
    parser.add_argument("--check", action="store_true", help="report stale blocks, change nothing")
    options = parser.parse_args(argv)
    unknown = [n for n in options.names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe {unknown[0]!r}; known: {', '.join(RECIPES)}")
    wanted = options.names or list(RECIPES)
    outputs = {name: run_recipe(RECIPES[name]) for name in wanted}
    stale = []
    for doc in sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]:
        text = doc.read_text(encoding="utf-8")

        def replace(match: re.Match[str], doc: Path = doc) -> str:
            name, lang, body = match.group(1), match.group(2), match.group(3)
            if name not in outputs:
                if name not in RECIPES:
                    raise SystemExit(f"{doc.name}: unknown recipe {name!r}")
                return match.group(0)
            if body != outputs[name]:
                stale.append(f"{doc.relative_to(ROOT)}: {name}")
            return f"<!-- generated: {name} -->\n```{lang}\n{outputs[name]}```"

        new = MARK.sub(replace, text)
        if new != text and not options.check:
            doc.write_text(new, encoding="utf-8")
    if options.check and stale:
        print("stale generated blocks (run python docs/generate.py):\n  " + "\n  ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
