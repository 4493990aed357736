"""Command-line options, ini keys and marker keywords: parsing and validation.

Every value a user can get wrong is checked here, at start-up, and a bad one becomes one
``pytest.UsageError`` that names the option, the value and what is allowed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .patterns import PatternSpec, Registry, SpecError
from .records import ItemResult
from .runner import Thresholds

if TYPE_CHECKING:
    from .gates import GateRule

MARKER_KEYWORDS = (
    "patterns",
    "repeat",
    "min_accuracy",
    "max_cost",
    "max_latency",
    "baseline_pattern",
)

RECORD_MODES = ("none", "once", "new_episodes", "all", "rewrite")


def positive_int(text: str) -> int:
    """An integer >= 1 (argparse ``type=``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: use an integer >= 1")
    return value


def non_negative_float(text: str) -> float:
    """A number >= 0 (argparse ``type=``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: use a number >= 0")
    return value


def record_mode(text: str) -> str:
    """One of the record modes (argparse ``type=``)."""
    if text not in RECORD_MODES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a record mode; allowed: {', '.join(RECORD_MODES)}"
        )
    return text


def alpha_value(text: str) -> float:
    """A significance level in (0, 0.5) (argparse ``type=``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 0.5:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: use a number in (0, 0.5)")
    return value


def integer(text: str) -> int:
    """Any integer (argparse ``type=``)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


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
        type=positive_int,
        default=None,
        metavar="N",
        help="repetitions per item; wins over the marker's repeat. Default: %(default)r",
    )
    group.addoption(
        "--patterns-max-concurrency",
        dest="agentpatterns_max_concurrency",
        type=positive_int,
        default=None,
        metavar="K",
        help="bound on concurrent role calls within an item. Default: %(default)r (unbounded)",
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
        type=integer,
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
        help="write the summary as Markdown (e.g. $GITHUB_STEP_SUMMARY). Default: %(default)r",
    )
    group.addoption(
        "--patterns-html",
        dest="agentpatterns_html",
        default=None,
        metavar="PATH",
        help="write a self-contained HTML report with charts (docs/html-report.md). "
        "Default: %(default)r",
    )
    parser.addini("agentpatterns_fail_on", "gates (as --patterns-fail-on)", default="")
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
    html_path: Path | None = None
    save_path: Path | None = None
    baseline_path: Path | None = None
    baseline: tuple[ItemResult, ...] | None = None
    rules: tuple[GateRule, ...] = ()
    ledger: Path | None = None
    max_calls: int | None = None

    def for_workers(self) -> dict[str, Any]:
        """What every xdist worker must share with the controller (JSON-safe)."""
        return {
            "seed": self.seed,
            "record_mode": self.record_mode,
            "ledger": str(self.ledger) if self.ledger else None,
        }


def _from_ini(config: pytest.Config, key: str, parse: Callable[[str], Any]) -> Any:
    raw = str(config.getini(key)).strip()
    if not raw:
        return None
    try:
        return parse(raw)
    except (argparse.ArgumentTypeError, SpecError) as exc:
        raise pytest.UsageError(f"ini {key} = {raw!r}: {exc}") from None


def load_settings(config: pytest.Config, registry: Registry) -> Settings:
    """Read and validate options and ini keys; raise ``pytest.UsageError`` on bad values.

    On an xdist worker, the run-wide values come from the controller (``workerinput``).
    """
    settings = _load_settings(config, registry)
    shared = getattr(config, "workerinput", {}).get("agentpatterns")
    if shared:
        ledger = Path(shared["ledger"]) if shared["ledger"] else None
        settings = replace(
            settings, seed=shared["seed"], record_mode=shared["record_mode"], ledger=ledger
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
        ini_repeat=_from_ini(config, "agentpatterns_repeat", positive_int),
        max_concurrency=config.getoption("agentpatterns_max_concurrency")
        or _from_ini(config, "agentpatterns_max_concurrency", positive_int),
        json_path=Path(json_path) if json_path else None,
        seed=config.getoption("agentpatterns_seed") or 0,
        record_mode=config.getoption("agentpatterns_record")
        or _from_ini(config, "agentpatterns_record", record_mode)
        or ("none" if os.environ.get("CI") else "once"),
        cassette_dir=_path(
            config,
            config.getoption("agentpatterns_cassette_dir")
            or str(config.getini("agentpatterns_cassette_dir")).strip(),
        ),
        budget=config.getoption("agentpatterns_budget")
        if config.getoption("agentpatterns_budget") is not None
        else _from_ini(config, "agentpatterns_budget", non_negative_float),
        max_calls=config.getoption("agentpatterns_max_calls")
        or _from_ini(config, "agentpatterns_max_calls", positive_int),
        trace_path=Path(trace) if (trace := config.getoption("agentpatterns_trace")) else None,
        alpha=config.getoption("agentpatterns_alpha") or 0.05,
        markdown_path=_opt_path(config.getoption("agentpatterns_markdown")),
        html_path=_opt_path(config.getoption("agentpatterns_html")),
        **_gate_settings(config),
    )


def _opt_path(text: str | None) -> Path | None:
    return Path(text) if text else None


def _gate_settings(config: pytest.Config) -> dict[str, Any]:
    cli_rules = config.getoption("agentpatterns_fail_on")
    text = cli_rules if cli_rules is not None else str(config.getini("agentpatterns_fail_on"))
    where = "--patterns-fail-on" if cli_rules is not None else "ini agentpatterns_fail_on"
    try:
        rules: tuple[Any, ...] = ()
        if text.strip():
            from .gates import parse_rules  # numpy and scipy: only when there are gates

            rules = parse_rules(text)
    except ValueError as exc:
        raise pytest.UsageError(f"{where}={text!r}: {exc}") from None
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


def marker_settings(kwargs: Mapping[str, Any], where: str, registry: Registry) -> MarkerSettings:
    """Validate marker keywords; raise ``pytest.UsageError`` naming the allowed ones."""
    unknown = [k for k in kwargs if k not in MARKER_KEYWORDS]
    if unknown:
        raise pytest.UsageError(
            f"{where}: unknown agentpatterns marker keyword {unknown[0]!r}; "
            f"allowed: {', '.join(MARKER_KEYWORDS)}"
        )
    patterns = None
    if kwargs.get("patterns") is not None:
        raw = kwargs["patterns"]
        text = raw if isinstance(raw, str) else ",".join(raw)
        try:
            patterns = registry.parse(text)
        except SpecError as exc:
            raise pytest.UsageError(f"{where}: agentpatterns(patterns={raw!r}): {exc}") from None
    repeat = kwargs.get("repeat")
    if repeat is not None and (
        isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1
    ):
        raise pytest.UsageError(
            f"{where}: agentpatterns(repeat={repeat!r}) is not allowed: use an integer >= 1"
        )
    limits: dict[str, float] = {}
    for key, low, high in (
        ("min_accuracy", 0.0, 1.0),
        ("max_cost", 0.0, None),
        ("max_latency", 0.0, None),
    ):
        value = kwargs.get(key)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or value < low
            or (high is not None and value > high)
        ):
            allowed = f"a number from {low:g} to {high:g}" if high is not None else "a number >= 0"
            raise pytest.UsageError(
                f"{where}: agentpatterns({key}={value!r}) is not allowed: use {allowed}"
            )
        limits[key] = float(value)
    baseline = kwargs.get("baseline_pattern")
    if baseline is not None:
        try:
            baseline = registry.parse_one(str(baseline)).id
        except SpecError as exc:
            raise pytest.UsageError(
                f"{where}: agentpatterns(baseline_pattern={baseline!r}): {exc}"
            ) from None
    return MarkerSettings(patterns, repeat, Thresholds(**limits), baseline)
