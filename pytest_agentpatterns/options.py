"""Command-line options, ini keys and marker keywords: parsing and validation.

Every value a user can get wrong is checked here, at start-up, and a bad one becomes one
``pytest.UsageError`` that names the option, the value and what is allowed.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .evidence import DEFAULT_CHARS
from .patterns import PatternSpec, Registry, SpecError, quoted
from .records import ItemResult
from .runner import Thresholds
from .scrub import ScrubRules, check_entry, split_entries

if TYPE_CHECKING:
    from .gates import GateRule

MARKER_KEYWORDS = (
    "patterns",
    "repeat",
    "min_accuracy",
    "max_cost",
    "max_latency",
    "baseline_pattern",
    "check_errors",
    "max_repeat",
    "precision",
)

DEFAULT_MAX_REPEAT = 10
"""An adaptive test's most repetitions per item when neither ``max_repeat`` nor a repeat
count says otherwise."""

RECORD_MODES = ("none", "once", "new_episodes", "all", "rewrite")


MAX_REPEAT = 10_000
"""The most repetitions per item: far beyond what any comparison needs (docs/statistics.md),
and a typo such as 1000000 would otherwise run for days."""
MAX_CONCURRENCY = 512
"""The largest concurrency bound: the thread pool for sync roles holds 512 threads, so a larger
bound could not be honoured (leave the option out for no bound)."""
MAX_SEED = 2**64 - 1
"""Seeds are 0 to 2**64 - 1, what NumPy's and Python's generators take alike."""


def bounded_int(low: int, high: int | None = None, hint: str = "") -> Callable[[str], int]:
    """An argparse ``type=``: an integer from ``low`` to ``high`` (inclusive)."""

    def parse(text: str) -> int:
        span = f"from {low} to {high}" if high is not None else f">= {low}"
        allowed = f"use an integer {span}{hint}"
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{quoted(text)} is not an integer; {allowed}"
            ) from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{quoted(text)} is not allowed: {allowed}")
        return value

    return parse


positive_int = bounded_int(1)
"""An integer >= 1 (argparse ``type=``)."""
repeat_count = bounded_int(1, MAX_REPEAT)
"""Repetitions per item (argparse ``type=``)."""
concurrency = bounded_int(1, MAX_CONCURRENCY, " (leave it out for no bound)")
"""A concurrency bound (argparse ``type=``)."""
seed_value = bounded_int(0, MAX_SEED)
"""A seed (argparse ``type=``)."""
MAX_EVIDENCE_CHARS = 100_000
"""The most characters of each output, message and excerpt a report keeps."""
evidence_chars = bounded_int(0, MAX_EVIDENCE_CHARS, " (0 keeps none)")
"""Characters of evidence kept per text (argparse ``type=``)."""


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _number(text: str) -> float | None:
    """``text`` as a finite float, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (argparse ``type=``)."""
    value = _number(text)
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(
            f"{quoted(text)} is not allowed: use a finite number >= 0, e.g. 2.50"
        )
    return value


def record_mode(text: str) -> str:
    """One of the record modes (argparse ``type=``)."""
    if text not in RECORD_MODES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a record mode; allowed: {', '.join(RECORD_MODES)}"
        )
    return text


def open_interval(low: float, high: float, example: str) -> Callable[[str], float]:
    """An argparse ``type=`` for a number strictly between ``low`` and ``high``."""

    def parse(text: str) -> float:
        value = _number(text)
        if value is None or not low < value < high:
            raise argparse.ArgumentTypeError(
                f"{quoted(text)} is not allowed: use a number in ({low:g}, {high:g}), "
                f"e.g. {example}"
            )
        return value

    return parse


alpha_value = open_interval(0, 0.5, "0.05")
"""A significance level in (0, 0.5) (argparse ``type=``)."""
precision_value = open_interval(0, 1, "0.05")
"""A half-width of an accuracy interval in (0, 1) (argparse ``type=``)."""


def difference(text: str) -> float:
    """An accuracy difference in (0, 1] (argparse ``type=``)."""
    value = _number(text)
    if value is None or not 0 < value <= 1:
        raise argparse.ArgumentTypeError(
            f"{quoted(text)} is not allowed: use an accuracy difference in (0, 1], e.g. 0.10"
        )
    return value


def scrub_entries(text: str) -> list[str]:
    """Names and ``re:PATTERN``s to scrub, comma-separated (argparse ``type=``)."""
    try:
        return [check_entry(entry) for entry in split_entries(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_options(parser: pytest.Parser) -> None:
    """Register the command-line options and ini keys in one group."""
    group = parser.getgroup("agentpatterns", "run LLM tasks under orchestration patterns")
    group.addoption(
        "--patterns",
        dest="agentpatterns_patterns",
        default=None,
        metavar="SPEC[,SPEC]",
        help="patterns to run, e.g. single,parallel(n=8), or all. Replaces the marker's and "
        "the ini's lists. Default: %(default)r (then the marker, the ini, then single)",
    )
    group.addoption(
        "--patterns-repeat",
        dest="agentpatterns_repeat",
        type=repeat_count,
        default=None,
        metavar="N",
        help=f"repetitions per item, 1 to {MAX_REPEAT}; wins over the marker's repeat. "
        "Default: %(default)r",
    )
    group.addoption(
        "--patterns-max-concurrency",
        dest="agentpatterns_max_concurrency",
        type=concurrency,
        default=None,
        metavar="K",
        help=f"bound on concurrent role calls within an item, 1 to {MAX_CONCURRENCY}. "
        "Default: %(default)r (unbounded)",
    )
    group.addoption(
        "--patterns-json",
        dest="agentpatterns_json",
        default=None,
        metavar="PATH",
        help="write the machine-readable report (docs/report-schema.md). Default: %(default)r",
    )
    group.addoption(
        "--patterns-seed",
        dest="agentpatterns_seed",
        type=seed_value,
        default=None,
        metavar="S",
        help="seed for everything random the plugin does. Default: %(default)r (0)",
    )
    group.addoption(
        "--patterns-record",
        dest="agentpatterns_record",
        type=record_mode,
        default=None,
        metavar="MODE",
        help=f"cassette record mode: {', '.join(RECORD_MODES)}. Default: %(default)r "
        "(none when the CI environment variable is set, else once)",
    )
    group.addoption(
        "--patterns-cassette-dir",
        dest="agentpatterns_cassette_dir",
        default=None,
        metavar="DIR",
        help="where cassettes live (DIR/<module>/<item>.json). Default: %(default)r "
        "(cassettes/ beside each test module)",
    )
    group.addoption(
        "--patterns-budget",
        dest="agentpatterns_budget",
        type=non_negative_float,
        default=None,
        metavar="USD",
        help="stop making live calls once this much was spent. Default: %(default)r",
    )
    group.addoption(
        "--patterns-max-calls",
        dest="agentpatterns_max_calls",
        type=positive_int,
        default=None,
        metavar="N",
        help="stop making live calls once N were made (one cap for the whole run, "
        "priced or not). Default: %(default)r",
    )
    group.addoption(
        "--patterns-trace",
        dest="agentpatterns_trace",
        default=None,
        metavar="PATH",
        help="write one JSON line per call (provenance trace). Default: %(default)r",
    )
    group.addoption(
        "--patterns-save",
        dest="agentpatterns_save",
        default=None,
        metavar="PATH",
        help="save this run (JSON, every item and repetition) for later comparisons. "
        "Default: %(default)r",
    )
    group.addoption(
        "--patterns-baseline",
        dest="agentpatterns_baseline",
        default=None,
        metavar="PATH",
        help="compare this run against a saved run and evaluate the gates. Default: %(default)r",
    )
    group.addoption(
        "--patterns-fail-on",
        dest="agentpatterns_fail_on",
        default=None,
        metavar="RULES",
        help="gates against the baseline run, e.g. accuracy:-0.05,latency_p95:+20%%,cost:+10%%. "
        "Default: %(default)r",
    )
    group.addoption(
        "--patterns-fail-on-inconclusive",
        dest="agentpatterns_fail_on_inconclusive",
        action="store_true",
        default=None,
        help="an inconclusive gate (the data show its change neither within nor beyond the "
        "margin) fails the run too. Default: off (inconclusive gates are reported, not failed)",
    )
    group.addoption(
        "--patterns-alpha",
        dest="agentpatterns_alpha",
        type=alpha_value,
        default=None,
        metavar="A",
        help="significance level of comparisons and gates. Default: %(default)r (0.05)",
    )
    group.addoption(
        "--patterns-markdown",
        dest="agentpatterns_markdown",
        default=None,
        metavar="PATH",
        help="write the summary as Markdown, replacing the file. Default: %(default)r",
    )
    group.addoption(
        "--patterns-markdown-append",
        dest="agentpatterns_markdown_append",
        action="store_true",
        default=False,
        help="append the Markdown summary to the --patterns-markdown file instead of replacing "
        "it (for $GITHUB_STEP_SUMMARY, which GitHub wants appended). Default: off",
    )
    group.addoption(
        "--patterns-list",
        dest="agentpatterns_list",
        action="store_true",
        default=False,
        help="list the patterns and aggregators this run knows (built-in and registered by "
        "plugins and conftest.py files), with their parameters, defaults and ranges, and exit",
    )
    group.addoption(
        "--patterns-html",
        dest="agentpatterns_html",
        default=None,
        metavar="PATH",
        help="write a self-contained HTML report with charts (docs/html-report.md). "
        "Default: %(default)r",
    )
    group.addoption(
        "--patterns-scrub",
        dest="agentpatterns_scrub",
        type=scrub_entries,
        action="append",
        default=None,
        metavar="NAME[,NAME]",
        help="also scrub from cassettes these header, query parameter or body field names, and "
        "re:PATTERN matches (a re: entry runs to the end of its value; repeat the option for "
        "more). Adds to the ini's list. Default: %(default)r",
    )
    group.addoption(
        "--patterns-evidence-chars",
        dest="agentpatterns_evidence_chars",
        type=evidence_chars,
        default=None,
        metavar="N",
        help="characters kept in reports of each repetition's output and message and of each "
        "call's prompt and response excerpts, scrubbed of secrets; 0 keeps none. "
        f"Default: %(default)r ({DEFAULT_CHARS})",
    )
    group.addoption(
        "--patterns-otel",
        dest="agentpatterns_otel",
        action="store_true",
        default=None,
        help="export one OpenTelemetry trace per repetition, one span per call (GenAI "
        "conventions), over OTLP as the OTEL_EXPORTER_OTLP_* variables say; needs "
        "pip install 'pytest-agentpatterns[otel]'. Default: off",
    )
    parser.addini(
        "agentpatterns_evidence_chars",
        "characters of evidence kept per text (as --patterns-evidence-chars)",
        default="",
    )
    parser.addini(
        "agentpatterns_otel",
        "export OpenTelemetry traces (as --patterns-otel)",
        type="bool",
        default=False,
    )
    group.addoption(
        "--patterns-plan",
        dest="agentpatterns_plan",
        type=difference,
        nargs="?",
        const=0.10,
        default=None,
        metavar="DIFF",
        help="print how many cases x repetitions each test needs to detect an accuracy "
        "difference of DIFF with 80%% power, from --patterns-baseline or else the last "
        "--patterns-save (running nothing), or with neither from a pilot run of the selected "
        "tests at 2 repetitions (docs/statistics.md). Default: %(default)r (0.10 when given "
        "without a value: write --patterns-plan=DIFF)",
    )
    group.addoption(
        "--patterns-adaptive",
        dest="agentpatterns_adaptive",
        action="store_true",
        default=None,
        help="run repetitions in rounds and stop each test once its comparisons are decided "
        "(group-sequential, docs/statistics.md); the repeat count becomes the maximum. "
        "Default: off (a marker's repeat='auto' turns it on for one test)",
    )
    group.addoption(
        "--patterns-precision",
        dest="agentpatterns_precision",
        type=precision_value,
        default=None,
        metavar="W",
        help="adaptive runs also stop a test once every accuracy interval's half-width is at "
        "most W, e.g. 0.05. Default: %(default)r (stop on decisions only)",
    )
    parser.addini(
        "agentpatterns_adaptive",
        "adaptive runs for every test (as --patterns-adaptive)",
        type="bool",
        default=False,
    )
    parser.addini("agentpatterns_fail_on", "gates (as --patterns-fail-on)", default="")
    parser.addini(
        "agentpatterns_fail_on_inconclusive",
        "inconclusive gates fail the run (as --patterns-fail-on-inconclusive)",
        type="bool",
        default=False,
    )
    parser.addini(
        "agentpatterns_scrub",
        "names and re:PATTERNs to scrub from cassettes, one or more per line (as --patterns-scrub)",
        type="linelist",
        default=[],
    )
    parser.addini("agentpatterns_patterns", "patterns to run (as --patterns)", default="")
    parser.addini("agentpatterns_repeat", "repetitions per item (as --patterns-repeat)", default="")
    parser.addini("agentpatterns_record", "cassette record mode (as --patterns-record)", default="")
    parser.addini(
        "agentpatterns_cassette_dir", "cassette directory (as --patterns-cassette-dir)", default=""
    )
    parser.addini(
        "agentpatterns_budget", "live-spend budget in USD (as --patterns-budget)", default=""
    )
    parser.addini(
        "agentpatterns_max_calls", "cap on live calls (as --patterns-max-calls)", default=""
    )
    parser.addini(
        "agentpatterns_prices",
        "price overrides, one per line: MODEL = input:USD output:USD [cache_write:USD] "
        "[cache_read:USD] (USD per million tokens)",
        type="linelist",
        default=[],
    )
    parser.addini(
        "agentpatterns_max_concurrency",
        "bound on concurrent role calls (as --patterns-max-concurrency)",
        default="",
    )


@dataclass(frozen=True)
class Settings:
    """The validated run-wide settings; per-test values come from the marker."""

    patterns: tuple[PatternSpec, ...] | None
    ini_patterns: tuple[PatternSpec, ...] | None
    repeat: int | None
    ini_repeat: int | None
    max_concurrency: int | None
    json_path: Path | None
    seed: int
    record_mode: str
    cassette_dir: Path | None
    budget: float | None
    trace_path: Path | None
    alpha: float = 0.05
    markdown_path: Path | None = None
    markdown_append: bool = False
    html_path: Path | None = None
    save_path: Path | None = None
    baseline_path: Path | None = None
    baseline: tuple[ItemResult, ...] | None = None
    rules: tuple[GateRule, ...] = ()
    ledger: Path | None = None
    fail_on_inconclusive: bool = False
    scrub: ScrubRules = field(default_factory=ScrubRules)
    max_calls: int | None = None
    evidence_chars: int = DEFAULT_CHARS
    otel: bool = False
    plan: float | None = None
    pilot: int | None = None
    """With ``plan`` and no saved run: the repetitions each item runs as the plan's pilot."""
    adaptive: bool = False
    precision: float | None = None

    def for_workers(self) -> dict[str, Any]:
        """What every xdist worker must share with the controller (JSON-safe)."""
        return {
            "seed": self.seed,
            "record_mode": self.record_mode,
            "ledger": str(self.ledger) if self.ledger else None,
            "pilot": self.pilot,
        }


def _from_ini(config: pytest.Config, key: str, parse: Callable[[str], Any]) -> Any:
    raw = str(config.getini(key)).strip()
    if not raw:
        return None
    try:
        return parse(raw)
    except (argparse.ArgumentTypeError, SpecError) as exc:
        raise pytest.UsageError(f"ini {key} = {quoted(raw)}: {exc}") from None


def _option_or_ini(config: pytest.Config, name: str, parse: Callable[[str], Any]) -> Any:
    """The option's value when given, else the ini key's (both named ``name``).

    A bad ini value is refused even when the option overrides it: the ini file is shared,
    and the next run without the option would stop on it anyway.
    """
    from_ini = _from_ini(config, name, parse)
    value = config.getoption(name)
    return value if value is not None else from_ini


def load_settings(config: pytest.Config, registry: Registry) -> Settings:
    """Read and validate options and ini keys; raise ``pytest.UsageError`` on bad values.

    On an xdist worker, the run-wide values come from the controller (``workerinput``).
    """
    settings = _load_settings(config, registry)
    shared = getattr(config, "workerinput", {}).get("agentpatterns")
    if not hasattr(config, "workerinput"):
        # Before any test runs, so no live call is paid for a report that cannot be written.
        check_paths(settings, cassette_option=_cassette_option(config))
    if shared:
        ledger = Path(shared["ledger"]) if shared["ledger"] else None
        settings = replace(
            settings,
            seed=shared["seed"],
            record_mode=shared["record_mode"],
            ledger=ledger,
            pilot=shared.get("pilot"),
        )
    elif settings.budget is not None or settings.max_calls is not None:
        fd, name = tempfile.mkstemp(prefix="agentpatterns-budget-", suffix=".txt")
        os.close(fd)
        settings = replace(settings, ledger=Path(name))
    return settings


def _load_settings(config: pytest.Config, registry: Registry) -> Settings:
    cli_patterns = config.getoption("agentpatterns_patterns")
    try:
        patterns = registry.parse(cli_patterns) if cli_patterns is not None else None
    except SpecError as exc:
        raise pytest.UsageError(f"--patterns={cli_patterns}: {exc}") from None
    json_path = config.getoption("agentpatterns_json")
    return Settings(
        patterns=patterns,
        ini_patterns=_from_ini(config, "agentpatterns_patterns", registry.parse),
        repeat=config.getoption("agentpatterns_repeat"),
        ini_repeat=_from_ini(config, "agentpatterns_repeat", repeat_count),
        max_concurrency=_option_or_ini(config, "agentpatterns_max_concurrency", concurrency),
        json_path=Path(json_path) if json_path else None,
        seed=config.getoption("agentpatterns_seed") or 0,
        record_mode=_option_or_ini(config, "agentpatterns_record", record_mode)
        or ("none" if os.environ.get("CI") else "once"),
        cassette_dir=_path(
            config,
            config.getoption("agentpatterns_cassette_dir")
            or str(config.getini("agentpatterns_cassette_dir")).strip(),
        ),
        budget=_option_or_ini(config, "agentpatterns_budget", non_negative_float),
        max_calls=_option_or_ini(config, "agentpatterns_max_calls", positive_int),
        trace_path=Path(trace) if (trace := config.getoption("agentpatterns_trace")) else None,
        alpha=config.getoption("agentpatterns_alpha") or 0.05,
        markdown_path=_opt_path(config.getoption("agentpatterns_markdown")),
        markdown_append=_markdown_append(config),
        html_path=_opt_path(config.getoption("agentpatterns_html")),
        fail_on_inconclusive=bool(
            config.getoption("agentpatterns_fail_on_inconclusive")
            or config.getini("agentpatterns_fail_on_inconclusive")
        ),
        scrub=_scrub_rules(config),
        evidence_chars=_evidence_chars(config),
        otel=bool(config.getoption("agentpatterns_otel") or config.getini("agentpatterns_otel")),
        plan=config.getoption("agentpatterns_plan"),
        adaptive=bool(
            config.getoption("agentpatterns_adaptive") or config.getini("agentpatterns_adaptive")
        ),
        precision=config.getoption("agentpatterns_precision"),
        **_gate_settings(config),
    )


def _evidence_chars(config: pytest.Config) -> int:
    value = _option_or_ini(config, "agentpatterns_evidence_chars", evidence_chars)
    return DEFAULT_CHARS if value is None else int(value)


def _scrub_rules(config: pytest.Config) -> ScrubRules:
    entries = [e for value in config.getoption("agentpatterns_scrub") or () for e in value]
    for line in config.getini("agentpatterns_scrub"):
        try:
            entries.extend(check_entry(entry) for entry in split_entries(line))
        except ValueError as exc:
            raise pytest.UsageError(f"ini agentpatterns_scrub: {exc}") from None
    return ScrubRules.parse(entries)


def _markdown_append(config: pytest.Config) -> bool:
    append = bool(config.getoption("agentpatterns_markdown_append"))
    if append and not config.getoption("agentpatterns_markdown"):
        raise pytest.UsageError(
            "--patterns-markdown-append needs --patterns-markdown=PATH, the file to append to, "
            'e.g. --patterns-markdown="$GITHUB_STEP_SUMMARY" --patterns-markdown-append'
        )
    return append


def _opt_path(text: str | None) -> Path | None:
    return Path(text) if text else None


def _rules(text: str) -> tuple[GateRule, ...]:
    from .gates import parse_rules  # numpy and scipy: only when there are gates

    try:
        return parse_rules(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _gate_settings(config: pytest.Config) -> dict[str, Any]:
    cli_rules = config.getoption("agentpatterns_fail_on")
    rules = _from_ini(config, "agentpatterns_fail_on", _rules) or ()
    if cli_rules is not None:
        try:
            rules = _rules(cli_rules) if cli_rules.strip() else ()
        except argparse.ArgumentTypeError as exc:
            raise pytest.UsageError(f"--patterns-fail-on={quoted(cli_rules)}: {exc}") from None
    baseline_path = _opt_path(config.getoption("agentpatterns_baseline"))
    save_path = _opt_path(config.getoption("agentpatterns_save"))
    if cli_rules and baseline_path is None:
        raise pytest.UsageError(
            "--patterns-fail-on needs --patterns-baseline=PATH: gates compare this run "
            "against a saved one (save one with --patterns-save=PATH)"
        )
    if baseline_path and save_path and baseline_path.resolve() == save_path.resolve():
        raise pytest.UsageError(
            f"--patterns-save={save_path} would overwrite the baseline this run is compared "
            "against; save to another path and replace the baseline once the run is accepted"
        )
    baseline = None
    if baseline_path is not None and not hasattr(config, "workerinput"):
        from .report import load_run  # imports the gates, so numpy and scipy

        try:
            baseline = tuple(load_run(baseline_path))
        except ValueError as exc:
            raise pytest.UsageError(f"--patterns-baseline: {exc}") from None
    return {
        "save_path": save_path,
        "baseline_path": baseline_path,
        "baseline": baseline,
        "rules": rules,
    }


OUTPUT_OPTIONS = (
    ("--patterns-json", "json_path"),
    ("--patterns-save", "save_path"),
    ("--patterns-markdown", "markdown_path"),
    ("--patterns-html", "html_path"),
    ("--patterns-trace", "trace_path"),
)
"""The options naming a file the run writes, and the settings that hold them."""


def check_paths(settings: Settings, cassette_option: str | None = None) -> None:
    """Refuse output files and a cassette folder that could not be written, at start-up.

    An output must not be a folder, the baseline, or another report's file (``--patterns-json``
    and ``--patterns-save`` may share one: they write the same document), and its folder must
    exist or be creatable. Raises ``pytest.UsageError`` naming the option and the path.
    """
    baseline = _resolved(settings.baseline_path)
    taken: dict[Path, str] = {}
    for option, attribute in OUTPUT_OPTIONS:
        path: Path | None = getattr(settings, attribute)
        if path is None:
            continue
        where = f"{option}={path}"
        problem = file_problem(path)
        if problem:
            raise pytest.UsageError(f"{where}: {problem}")
        resolved = _resolved(path)
        if resolved is not None and resolved == baseline and option != "--patterns-save":
            raise pytest.UsageError(
                f"{where} would overwrite the baseline this run is compared against "
                f"(--patterns-baseline); write the report to another path"
            )
        other = taken.get(resolved) if resolved is not None else None
        if other is not None and {option, other} != {"--patterns-json", "--patterns-save"}:
            raise pytest.UsageError(
                f"{where}: {other} writes the same file; give each report its own path"
            )
        if resolved is not None:
            taken.setdefault(resolved, option)
    directory = settings.cassette_dir
    if directory is not None:
        problem = folder_problem(directory, write=settings.record_mode != "none")
        if problem:
            where = cassette_option or f"--patterns-cassette-dir={directory}"
            raise pytest.UsageError(f"{where}: {problem}")


def file_problem(path: Path) -> str | None:
    """Why a file could not be written at ``path`` (its folder is made if missing), or None."""
    try:
        if path.is_dir():
            return "this is a folder; give the path of a file in it"
    except OSError as exc:
        return f"not a usable path ({exc.strerror or exc})"
    return folder_problem(path.parent, write=True)


def folder_problem(directory: Path, *, write: bool) -> str | None:
    """Why ``directory`` could not be used (made if missing, written to if ``write``), or None."""
    existing = directory
    try:
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        if not existing.is_dir():
            return f"{existing} is a file, not a folder, so nothing can be written under it"
    except OSError as exc:
        return f"not a usable path ({exc.strerror or exc})"
    if write and not os.access(existing, os.W_OK | os.X_OK):
        return f"the folder {existing} is not writable"
    return None


def _resolved(path: Path | None) -> Path | None:
    if path is None:
        return None
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return None


def _cassette_option(config: pytest.Config) -> str:
    """How the user wrote the cassette folder, for error messages."""
    given = config.getoption("agentpatterns_cassette_dir")
    if given:
        return f"--patterns-cassette-dir={given}"
    text = str(config.getini("agentpatterns_cassette_dir")).strip()
    return f"ini agentpatterns_cassette_dir = {quoted(text)}"


def _path(config: pytest.Config, text: str | None) -> Path | None:
    if not text:
        return None
    return config.rootpath / Path(text).expanduser()


@dataclass(frozen=True)
class MarkerSettings:
    """What ``@pytest.mark.agentpatterns(...)`` set for one test, validated."""

    patterns: tuple[PatternSpec, ...] | None = None
    repeat: int | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    baseline_pattern: str | None = None
    check_errors: str | None = None
    adaptive: bool = False
    """``repeat="auto"``: this test runs adaptively."""
    max_repeat: int | None = None
    precision: float | None = None


def marker_settings(kwargs: Mapping[str, Any], where: str, registry: Registry) -> MarkerSettings:
    """Validate marker keywords; raise ``pytest.UsageError`` naming the allowed ones."""
    unknown = [k for k in kwargs if k not in MARKER_KEYWORDS]
    if unknown:
        raise pytest.UsageError(
            f"{where}: unknown agentpatterns marker keyword {unknown[0]!r}; "
            f"allowed: {', '.join(MARKER_KEYWORDS)}"
        )

    def refuse(key: str, allowed: str) -> pytest.UsageError:
        return pytest.UsageError(
            f"{where}: agentpatterns({key}={_cut(repr(kwargs[key]))}) is not allowed: use {allowed}"
        )

    patterns = None
    raw = kwargs.get("patterns")
    if raw is not None:
        if isinstance(raw, str):
            text = raw
        elif isinstance(raw, (list, tuple)) and all(isinstance(p, str) for p in raw):
            text = ",".join(raw)
        else:
            raise refuse("patterns", "a spec string or a list of them, e.g. 'single,parallel(n=8)'")
        try:
            patterns = registry.parse(text)
        except SpecError as exc:
            raise pytest.UsageError(f"{where}: agentpatterns(patterns={raw!r}): {exc}") from None
    repeat = kwargs.get("repeat")
    adaptive = repeat == "auto"
    if adaptive:
        repeat = None
    elif repeat is not None and not _count(repeat, MAX_REPEAT):
        raise refuse("repeat", f"an integer from 1 to {MAX_REPEAT}, or 'auto' (adaptive)")
    max_repeat = kwargs.get("max_repeat")
    if max_repeat is not None and not (_count(max_repeat, MAX_REPEAT) and max_repeat >= 2):
        raise refuse("max_repeat", f"an integer from 2 to {MAX_REPEAT}")
    precision = kwargs.get("precision")
    if precision is not None and (
        isinstance(precision, bool)
        or not isinstance(precision, (int, float))
        or not 0 < precision < 1
    ):
        raise refuse("precision", "a number in (0, 1), e.g. 0.05")
    limits: dict[str, float] = {}
    for key, high in (("min_accuracy", 1.0), ("max_cost", None), ("max_latency", None)):
        value = kwargs.get(key)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
            or (high is not None and value > high)
        ):
            raise refuse(key, "a number from 0 to 1" if high else "a finite number >= 0")
        limits[key] = float(value)
    baseline = kwargs.get("baseline_pattern")
    if baseline is not None:
        if not isinstance(baseline, str):
            raise refuse("baseline_pattern", "one pattern spec as a string, e.g. 'single'")
        try:
            baseline = registry.parse_one(baseline).id
        except SpecError as exc:
            raise pytest.UsageError(
                f"{where}: agentpatterns(baseline_pattern={baseline!r}): {exc}"
            ) from None
    check_errors = kwargs.get("check_errors")
    if check_errors is not None and check_errors not in ("error", "incorrect"):
        raise refuse(
            "check_errors",
            "'error' (an exception in the test's checks is an error, the default) or "
            "'incorrect' (it counts as a wrong answer)",
        )
    return MarkerSettings(
        patterns,
        repeat,
        Thresholds(**limits),
        baseline,
        check_errors,
        adaptive,
        max_repeat,
        None if precision is None else float(precision),
    )


def _count(value: Any, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and 1 <= value <= high
