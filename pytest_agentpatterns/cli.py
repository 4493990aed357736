"""``python -m pytest_agentpatterns``: list the patterns, render and compare saved runs.

- ``list [PYTEST_ARGS...]``: what ``pytest --patterns-list`` prints, run in the current
  project, so patterns registered by its plugins and conftest.py files are listed too.
- ``report RUN.json``: the Markdown (or HTML) report the run would have written, from a run
  saved with ``--patterns-save`` or ``--patterns-json``.
- ``diff OLD.json NEW.json``: what changed between two saved runs (:mod:`.diffing`), and
  optionally the gates of ``--patterns-fail-on`` evaluated between them.
- ``plan RUN.json``: what ``pytest --patterns-plan`` prints (:mod:`.planning`): per test, the
  cases x repetitions that detect an accuracy difference with 80% power.

Exit codes: 0 done (no regression), 1 a regression when asked to fail on one
(``--fail-on-regression``, or a failed gate of ``--fail-on``), 2 a usage error or a file that
cannot be read, said in one line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .records import ItemResult

if TYPE_CHECKING:
    from .gates import GateResult, GateRule, GateRun

PROG = "python -m pytest_agentpatterns"
VERDICTS = ("pass", "fail", "inconclusive", "not evaluated")
OK, REGRESSION, USAGE = 0, 1, 2


class CliError(Exception):
    """A problem the user can fix; its message is the one line printed."""


@dataclass(frozen=True)
class SavedRun:
    """A run saved by ``--patterns-save``/``--patterns-json``, read back."""

    path: Path
    items: tuple[ItemResult, ...]
    seed: int
    alpha: float
    gate_run: GateRun | None


def load_saved(path: Path) -> SavedRun:
    """Read and check a saved run; :class:`CliError` naming the file and the field."""
    from .schema import SchemaError, check_run

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{path}: a folder, not a saved run (a .json file)") from None
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: JSON, UTF-8
        raise CliError(f"{path}: not a saved run: {exc}") from None
    try:
        items = check_run(data)
    except SchemaError as exc:
        raise CliError(f"{path}: malformed: {exc}") from None
    seed = data.get("seed", 0)
    alpha = data.get("alpha", 0.05)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise CliError(f"{path}: malformed: seed: expected an integer >= 0, got {seed!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 0.5:
        raise CliError(f"{path}: malformed: alpha: expected a number in (0, 0.5), got {alpha!r}")
    return SavedRun(
        path,
        tuple(ItemResult.from_dict(item) for item in items),
        seed,
        float(alpha),
        _gate_run(path, data),
    )


def _gate_run(path: Path, data: dict[str, Any]) -> GateRun | None:
    """The run's gates as the run evaluated them (they need the baseline, so they are kept)."""
    run, entries = data.get("gate_run"), data.get("gates") or []
    if not isinstance(run, dict) or not entries:
        return None
    from .gates import GateRun

    results = []
    for index, entry in enumerate(entries):
        try:
            results.append(_gate(entry))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problem = f"no field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise CliError(f"{path}: malformed: gates[{index}]: {problem}") from None
    try:
        return GateRun(
            float(run["alpha"]),
            float(run["level"]),
            tuple(results),
            bool(run.get("fail_on_inconclusive", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CliError(f"{path}: malformed: gate_run: {type(exc).__name__}: {exc}") from None


def _gate(entry: dict[str, Any]) -> GateResult:
    from .gates import GateResult, parse_rules
    from .stats import Interval

    rules = parse_rules(entry["rule"])
    if len(rules) != 1:
        raise ValueError(f"rule {entry['rule']!r} is not one rule")
    verdict = entry["verdict"]
    if verdict not in VERDICTS:
        raise ValueError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
    interval = entry.get("interval")
    return GateResult(
        rule=rules[0],
        test=str(entry["test"]),
        pattern=str(entry["pattern"]),
        verdict=verdict,
        estimate=entry.get("estimate"),
        # A null bound is an open side (JSON has no infinities).
        interval=None
        if interval is None
        else Interval(
            -math.inf if interval["low"] is None else float(interval["low"]),
            math.inf if interval["high"] is None else float(interval["high"]),
        ),
        p_value=entry.get("p_value"),
        message=str(entry.get("message", "")),
        method=entry.get("method"),
        paired=entry.get("paired"),
        n_cases=int(entry.get("n_cases", 0)),
        reason=entry.get("reason"),
        level=entry.get("level"),
        mde=entry.get("mde"),
        power=entry.get("power"),
        regressed=tuple(
            (str(r["case"]), float(r["baseline"]), float(r["current"]))
            for r in entry.get("regressed", ())
        ),
    )


# --- the commands -----------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    """Run pytest's own start-up with ``--patterns-list``, so the project's hooks are seen."""
    import pytest

    extra = list(args.pytest_args)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        extra = ["-p", "pytest_agentpatterns.plugin", *extra]
    code = pytest.main(["--patterns-list", *extra])
    return OK if code == 0 else USAGE


def _report(args: argparse.Namespace) -> int:
    saved = load_saved(Path(args.run))
    fmt = args.format or ("html" if args.output and args.output.endswith(".html") else "markdown")
    text = render_report(saved, fmt)
    _emit(text, args.output)
    return OK


def render_report(saved: SavedRun, fmt: str) -> str:
    """What the run wrote with ``--patterns-markdown``/``--patterns-html``, from its items."""
    from .analysis import analyse
    from .report import unpriced_models

    items = list(saved.items)
    analyses = analyse(items, seed=saved.seed, alpha=saved.alpha)
    notes = [
        f"warning: no price for model {model!r}: its tokens are counted, its cost is n/a. "
        "Price it with the agentpatterns_prices ini option."
        for model in unpriced_models(items)
    ]
    if fmt == "html":
        from .html import render_html

        return render_html(analyses, items, (), notes, alpha=saved.alpha, gate_run=saved.gate_run)
    from .table import render_markdown

    return render_markdown(analyses, saved.gate_run, notes)


def _diff(args: argparse.Namespace) -> int:
    from . import diffing

    rules = _parse_rules(args.fail_on) if args.fail_on else ()
    old, new = load_saved(Path(args.old)), load_saved(Path(args.new))
    diff = diffing.diff_runs(old.items, new.items)
    gate_run = None
    if rules:
        from .analysis import evaluate_gates

        gate_run = evaluate_gates(
            rules,
            new.items,
            old.items,
            alpha=new.alpha,
            seed=new.seed,
            fail_on_inconclusive=args.fail_on_inconclusive,
        )
        from .changes import annotate

        gate_run = annotate(gate_run, new.items, old.items)
    if args.format == "json":
        from .report import dumps

        document = diffing.to_dict(diff, args.old, args.new)
        if gate_run is not None:
            document["gates"] = _gate_dicts(gate_run)
            document["gate_verdict"] = gate_run.verdict_line()
        text = dumps(document)
    elif args.format == "markdown":
        text = diffing.render_markdown(diff, args.old, args.new)
        if gate_run is not None:
            text += "\n" + _gates_markdown(gate_run)
    else:
        width = shutil.get_terminal_size().columns
        text = diffing.render_text(diff, args.old, args.new, width)
        if gate_run is not None:
            text += _gates_text(gate_run)
    _emit(text, args.output)
    failed = (args.fail_on_regression and diff.regressed) or (
        gate_run is not None and gate_run.failed
    )
    return REGRESSION if failed else OK


def _plan(args: argparse.Namespace) -> int:
    from .planning import as_dict, plan_from_run, render

    saved = load_saved(Path(args.run))
    alpha = saved.alpha if args.alpha is None else args.alpha
    plan = plan_from_run(saved.items, args.diff, alpha=alpha, source=f"from {args.run}")
    if args.format == "json":
        from .report import dumps

        text = dumps(as_dict(plan))
    else:
        text = render(plan, shutil.get_terminal_size().columns)
    _emit(text, args.output)
    return OK


def _parse_rules(text: str) -> tuple[GateRule, ...]:
    from .gates import parse_rules

    try:
        return parse_rules(text)
    except ValueError as exc:
        raise CliError(f"--fail-on={text!r}: {exc}") from None


def _gate_dicts(run: GateRun) -> list[dict[str, Any]]:
    """The gates as the JSON report's ``gates[]`` holds them."""
    from .report import _gate as gate_dict

    return [gate_dict(g) for g in run.results]


def _gates_text(run: GateRun) -> str:
    lines = ["", run.verdict_line()]
    for g in run.results:
        if g.verdict in ("fail", "inconclusive", "not evaluated"):
            said = g.reason if g.verdict == "not evaluated" else g.message
            lines.append(f"  {g.verdict} {g.rule} {g.test} [{g.pattern}]: {said}")
    return "\n".join(lines) + "\n"


def _gates_markdown(run: GateRun) -> str:
    from tabulate import tabulate

    from .table import GATE_HEADERS, gate_rows

    verdict = run.verdict_line().removeprefix("agentpatterns: ")
    rows = tabulate(gate_rows(run.results), headers=GATE_HEADERS, tablefmt="github")
    return f"### Gates: {verdict}\n\n{rows}\n"


def _emit(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    from .atomic import write_atomic
    from .options import file_problem

    path = Path(output)
    problem = file_problem(path)
    if problem:
        raise CliError(f"--output={output}: {problem}")
    write_atomic(path, text)


# --- the parser -------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with exit code 2 and one line for errors (usage stays on --help)."""

    def error(self, message: str) -> Any:
        self.exit(USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="List the patterns, render a saved run, compare two saved runs, plan "
        "the next one.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    listing = sub.add_parser(
        "list",
        help="the patterns and aggregators, with parameters, defaults and ranges",
        description="Print the patterns and aggregators pytest would know here (built-in, and "
        "registered by plugins and the conftest.py files pytest loads at start-up), as "
        "pytest --patterns-list does.",
    )
    listing.add_argument(
        "pytest_args",
        nargs=argparse.REMAINDER,
        metavar="PYTEST_ARGS",
        help="passed on to pytest: test paths whose conftest.py to load, -p PLUGIN, -c FILE",
    )
    report = sub.add_parser(
        "report",
        help="render a saved run as Markdown or HTML",
        description="Render a run saved with --patterns-save or --patterns-json as the "
        "Markdown (--patterns-markdown) or HTML (--patterns-html) report the run would have "
        "written: the same analysis, from the same items, seed and alpha.",
    )
    report.add_argument("run", metavar="RUN.json")
    report.add_argument(
        "--format",
        choices=("markdown", "html"),
        default=None,
        help="default: html when --output ends in .html, else markdown",
    )
    report.add_argument("-o", "--output", metavar="PATH", help="write here instead of stdout")
    diff = sub.add_parser(
        "diff",
        help="what changed between two saved runs",
        description="Compare two saved runs: the (test, pattern) pairs whose accuracy changed "
        "with the cases that went from right to wrong and from wrong to right, and what "
        "changed in the run: models, pattern settings, cases.",
    )
    diff.add_argument("old", metavar="OLD.json")
    diff.add_argument("new", metavar="NEW.json")
    diff.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    diff.add_argument("-o", "--output", metavar="PATH", help="write here instead of stdout")
    diff.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 when a case of a (test, pattern) in both runs went from right towards wrong",
    )
    diff.add_argument(
        "--fail-on",
        metavar="RULES",
        help="also evaluate these gates, as --patterns-fail-on does (OLD is the baseline), "
        "e.g. accuracy:-0.05,cost:+10%%; exit 1 when one fails",
    )
    diff.add_argument(
        "--fail-on-inconclusive",
        action="store_true",
        help="an inconclusive gate fails too (as --patterns-fail-on-inconclusive)",
    )
    from .options import alpha_value, difference

    plan = sub.add_parser(
        "plan",
        help="cases x repetitions each test needs, from a saved run",
        description="Print, per test of a saved run, the cases x repetitions that detect an "
        "accuracy difference of --diff with 80%% power at the level the run's comparisons use, "
        "their calls and dollars, and the smallest difference the saved design detects, as "
        "pytest --patterns-plan does.",
    )
    plan.add_argument("run", metavar="RUN.json")
    plan.add_argument(
        "--diff", type=difference, default=0.10, help="the difference to detect (default 0.10)"
    )
    plan.add_argument(
        "--alpha", type=alpha_value, default=None, help="default: the alpha the run used"
    )
    plan.add_argument("--format", choices=("text", "json"), default="text")
    plan.add_argument("-o", "--output", metavar="PATH", help="write here instead of stdout")
    return parser


COMMANDS = {"list": _list, "report": _report, "diff": _diff, "plan": _plan}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except CliError as exc:
        sys.stderr.write(f"{PROG} {args.command}: error: {exc}\n")
        return USAGE
