"""The pytest glue: options, the marker, parametrisation, the per-item run, the summary.

Each hook routes to a plain module; no decision is made here.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import options, rounds, transport
from .budget import Ledger
from .fixture import Agent
from .patterns import PatternSpec, Registry, SpecError, builtin_registry
from .records import ItemResult
from .runner import ItemPlan, run_item

if TYPE_CHECKING:
    from .sim import Simulator
    from .sim.config import ModelsSource, WorldSource

METER = pytest.StashKey[transport.Meter]()
REGISTRY = pytest.StashKey[Registry]()
SETTINGS = pytest.StashKey[options.Settings]()
RESULTS = pytest.StashKey[list[ItemResult]]()
SUMMARY = pytest.StashKey[tuple[Any, Any, list[str]]]()
GATES = pytest.StashKey[Any]()
MARKER_ERRORS = pytest.StashKey[list[str]]()
INSTALLED = pytest.StashKey[bool]()
OTEL = pytest.StashKey[Any]()
PROBE = pytest.StashKey[Any]()
PLAN = pytest.StashKey[Any]()
PLAN_SOURCE = pytest.StashKey[tuple[Path, tuple[ItemResult, ...]]]()
PLANNED_REPEATS = pytest.StashKey[dict[str, int]]()
GROUPS = pytest.StashKey[dict[str, Any]]()
CASSETTE = pytest.StashKey[Path]()
"""An agent item's cassette path, worked out (and checked) at collection."""
MARKS = pytest.StashKey[dict[tuple[int, ...], tuple[list[pytest.Mark], options.MarkerSettings]]]()
PROPERTY = "agentpatterns"
PLANNED = "agentpatterns_planned_repeat"
"""A pilot item's property: the repetitions its test is set to (the pilot runs fewer)."""
USAGE_ERROR = "agentpatterns_usage_error"
DIST = "agentpatterns_dist"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "agentpatterns(patterns=None, repeat=None, min_accuracy=None, max_cost=None, "
        "max_latency=None, baseline_pattern='single', check_errors='error', max_repeat=None, "
        "precision=None): settings for a pattern test; repeat='auto' runs it adaptively.",
    )
    registry = _registry(config)
    config.stash[REGISTRY] = registry
    config.stash[SETTINGS] = options.load_settings(config, registry)
    _plan_or_pilot(config)
    config.stash[RESULTS] = []
    config.stash[PLANNED_REPEATS] = {}
    config.stash[MARKER_ERRORS] = []
    config.stash[METER] = _meter(config)
    if config.stash[SETTINGS].otel:
        from .otel import OtelUnavailable, require

        try:
            require()
        except OtelUnavailable as exc:
            raise pytest.UsageError(str(exc)) from None
    config.pluginmanager.register(
        _ResultsCollector(config.stash[RESULTS], config.stash[PLANNED_REPEATS]),
        "agentpatterns-results",
    )
    _live_status(config)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(config), "agentpatterns-xdist")
        dist = config.getoption("dist", "no")
        if config.stash[SETTINGS].adaptive and dist in ("loadgroup", "worksteal"):
            raise pytest.UsageError(
                f"--patterns-adaptive with --dist {dist}: an adaptive test decides from all its "
                "items, which must run on one worker; use --dist load (the default), "
                "loadscope or loadfile"
            )


def _live_status(config: pytest.Config) -> None:
    """The one-line live status while recording on a terminal (:mod:`.progress`)."""
    from . import progress

    settings = config.stash[SETTINGS]
    if _is_controller(config) and progress.wanted(settings.record_mode, sys.stdout, sys.stderr):
        status = progress.LiveStatus(config, sys.stderr, settings.budget)
        config.pluginmanager.register(status, "agentpatterns-progress")


def _registry(config: pytest.Config) -> Registry:
    registry = builtin_registry()
    try:
        config.hook.pytest_agentpatterns_register.call_historic(kwargs={"registry": registry})
    except SpecError as exc:
        raise pytest.UsageError(f"pytest_agentpatterns_register: {exc}") from None
    return registry


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--patterns-list`` prints the registry and exits, as ``--markers`` does."""
    if not config.getoption("agentpatterns_list"):
        return None
    import shutil
    import sys

    from .listing import render_registry

    sys.stdout.write(render_registry(_registry(config), shutil.get_terminal_size().columns))
    return 0


class _XdistHooks:
    """Hands run-wide settings (seed, record mode, budget ledger) to every worker."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["agentpatterns"] = self.config.stash[SETTINGS].for_workers()
        # Workers see "--dist no"; adaptive tests need to know how their items are spread.
        node.workerinput[DIST] = self.config.getvalue("dist")

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        # With --patterns-adaptive, a test's pattern items run on one worker: an adaptive
        # test decides from all of them after each round (rounds.py). Other items, and every
        # item of a run that is not adaptive, are scheduled as by "load".
        if config.getvalue("dist") != "load" or not config.stash[SETTINGS].adaptive:
            return None
        from .scheduling import TestScheduling

        return TestScheduling(config, log, config.stash[REGISTRY])

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        # Workers collect, so a bad marker stops them; the run must stop with the same usage
        # error (exit code 4) rather than as a crashed worker.
        message = getattr(node, "workeroutput", {}).get(USAGE_ERROR)
        if message:
            raise pytest.UsageError(message)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    _print_gate_verdict(config)
    exporter = config.stash.get(OTEL, None)
    if exporter is not None:
        exporter.shutdown()
    if config.stash.get(INSTALLED, False):
        transport.uninstall()
    settings = config.stash.get(SETTINGS, None)
    if settings is not None and settings.ledger is not None and _is_controller(config):
        settings.ledger.unlink(missing_ok=True)


def _meter(config: pytest.Config) -> transport.Meter:
    from .prices import load_default_prices, parse_price_lines

    try:
        overrides = parse_price_lines(config.getini("agentpatterns_prices"))
    except ValueError as exc:
        raise pytest.UsageError(f"ini agentpatterns_prices: {exc}") from None
    config.hook.pytest_agentpatterns_prices(prices=overrides)
    prices = load_default_prices().with_overrides(overrides)
    settings = config.stash[SETTINGS]

    return transport.Meter(
        cost_of=prices.cost,
        budget=settings.budget,
        ledger=Ledger(settings.ledger),
        max_calls=settings.max_calls,
        estimate=prices.dearest,
    )


def _marker(node: pytest.Function | Any, config: pytest.Config) -> options.MarkerSettings:
    marks = list(node.iter_markers("agentpatterns"))
    # Validated once per set of marks (most tests share none): the marks are kept with the
    # settings, so their ids stay theirs.
    known = config.stash.setdefault(MARKS, {})
    key = tuple(map(id, marks))
    found = known.get(key)
    if found is not None:
        return found[1]
    settings = _marker_settings(node, config, marks)
    known[key] = (marks, settings)
    return settings


def _marker_settings(
    node: pytest.Function | Any, config: pytest.Config, marks: list[pytest.Mark]
) -> options.MarkerSettings:
    kwargs: dict[str, Any] = {}
    for mark in reversed(marks):
        if mark.args:
            raise pytest.UsageError(
                f"{node.nodeid}: the agentpatterns marker takes keywords only, "
                f"e.g. agentpatterns(repeat=10); allowed: {', '.join(options.MARKER_KEYWORDS)}"
            )
        kwargs.update(mark.kwargs)
    return options.marker_settings(kwargs, node.nodeid, config.stash[REGISTRY])


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "agent" not in metafunc.fixturenames:
        return
    config = metafunc.config
    settings = config.stash[SETTINGS]
    try:
        marker = _marker(metafunc.definition, config)
    except pytest.UsageError as exc:
        # Raised here it would be a collection error with a traceback (exit code 2): it is
        # raised once collection is over, where pytest reports it as a usage error.
        config.stash[MARKER_ERRORS].append(str(exc))
        marker = options.MarkerSettings()
    specs = settings.patterns or marker.patterns or settings.ini_patterns
    if not specs:
        specs = (config.stash[REGISTRY].parse_one("single"),)
    metafunc.parametrize("agent", specs, ids=[s.id for s in specs], indirect=True)


def _cassette_of(item: pytest.Item, settings: options.Settings) -> Path:
    from .item_cassette import cassette_path

    directory = settings.cassette_dir or item.path.parent / "cassettes"
    return cassette_path(directory, item.path.stem, item.name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from .item_cassette import cassette_problems

    settings = config.stash[SETTINGS]
    paths: dict[str, Path] = {}
    for item in items:
        if "agent" in getattr(item, "fixturenames", ()):
            paths[item.nodeid] = item.stash[CASSETTE] = _cassette_of(item, settings)
    errors = config.stash.get(MARKER_ERRORS, []) + cassette_problems(paths)
    if not errors and hasattr(config, "workerinput"):
        errors = _split_adaptive_tests(config, items)
    if errors:
        message = "\n".join(dict.fromkeys(errors))
        if hasattr(config, "workeroutput"):
            # The controller raises it too: _XdistHooks.pytest_testnodedown.
            config.workeroutput[USAGE_ERROR] = message
        raise pytest.UsageError(message)
    if settings.plan is not None and settings.pilot is None:
        # --patterns-plan reads a saved run: nothing is run (or paid for). Here, before
        # xdist's workers report what they collected, so they agree with the controller.
        config.hook.pytest_deselected(items=list(items))
        items[:] = []


def _split_adaptive_tests(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    """On an xdist worker: the marker-adaptive tests whose items xdist may split between
    workers (only --patterns-adaptive brings the scheduler that keeps them together)."""
    settings = config.stash[SETTINGS]
    dist = getattr(config, "workerinput", {}).get(DIST)
    if settings.adaptive or settings.pilot is not None or dist not in ("load", "worksteal"):
        return []
    return [
        f"{test} runs adaptively (repeat='auto'), and --dist {dist} can split its items "
        "between workers: run with --patterns-adaptive (which keeps each test's items on one "
        "worker), or --dist loadscope or loadfile"
        for test in sorted(_adaptive_tests(config, items))
    ]


def _plan_or_pilot(config: pytest.Config) -> None:
    """``--patterns-plan`` on the controller: read the saved run, or with none set the
    settings (which workers share) to run a pilot."""
    settings = config.stash[SETTINGS]
    if settings.plan is None or not _is_controller(config):
        return
    source = _plan_source(config)
    if source is None:
        from .planning import PILOT_REPEAT

        config.stash[SETTINGS] = replace(settings, pilot=PILOT_REPEAT)
    else:
        config.stash[PLAN_SOURCE] = source


def _plan_source(config: pytest.Config) -> tuple[Path, tuple[ItemResult, ...]] | None:
    """The saved run ``--patterns-plan`` reads: the baseline, else the last saved run, else
    None (a pilot is run)."""
    settings = config.stash[SETTINGS]
    if settings.baseline_path is not None and settings.baseline is not None:
        return settings.baseline_path, settings.baseline
    cache = getattr(config, "cache", None)  # None under -p no:cacheprovider
    last = cache.get(LAST_SAVE, None) if cache is not None else None
    if not isinstance(last, str):
        return None
    from .report import load_run

    try:
        return Path(last), tuple(load_run(Path(last)))
    except ValueError as exc:
        raise pytest.UsageError(
            f"--patterns-plan reads the last --patterns-save, which cannot be read ({exc}): "
            "pass --patterns-baseline RUN.json"
        ) from None


LAST_SAVE = "agentpatterns/last-save"
"""The pytest cache key holding the path of the last ``--patterns-save``."""


@pytest.fixture
def agent(request: pytest.FixtureRequest) -> Agent:
    """Runs a task under the current item's pattern: ``agent.run(task, input)``."""
    from . import diagnostics

    # The item's pattern spec: "agent" is parametrized (indirectly) by pytest_generate_tests.
    spec: PatternSpec = request.param
    config = request.config
    registry = config.stash[REGISTRY]
    pattern = registry.patterns[spec.name]
    probe = diagnostics.probe(pattern, spec)
    if probe is not None:
        request.node.stash[PROBE] = probe
        pattern = probe.pattern
    return Agent(
        pattern,
        spec,
        registry.aggregators,
        config.stash[SETTINGS].max_concurrency,
    )


@pytest.fixture(scope="session")
def agentpatterns_sim_world() -> WorldSource:
    """The world of ``agentpatterns_sim``: ``None``, the shipped one.

    Override it in a conftest.py (session scope) to return a ``World``, a mapping in the
    world.json format, or a path to such a file.
    """
    return None


@pytest.fixture(scope="session")
def agentpatterns_sim_models() -> ModelsSource:
    """Model profiles merged over the shipped ones for ``agentpatterns_sim``: ``None``, none.

    Override it in a conftest.py (session scope) to return a mapping of model name to profile,
    or a path to a models.json file.
    """
    return None


@pytest.fixture(scope="session")
def agentpatterns_sim(
    request: pytest.FixtureRequest,
    agentpatterns_sim_world: WorldSource,
    agentpatterns_sim_models: ModelsSource,
) -> Iterator[Simulator]:
    """A running simulator for the session (docs/simulator.md), seeded with --patterns-seed.

    Point the SDKs at it: ``anthropic.Anthropic(base_url=agentpatterns_sim.anthropic_base_url,
    api_key="sim-key")`` or ``openai.OpenAI(base_url=agentpatterns_sim.openai_base_url, ...)``.
    Its world and models come from the ``agentpatterns_sim_world`` and
    ``agentpatterns_sim_models`` fixtures.
    """
    from .sim import SimConfigError, Simulator, load_models, load_world

    try:
        world = load_world(agentpatterns_sim_world)
    except SimConfigError as exc:
        pytest.fail(f"agentpatterns_sim_world: {exc}", pytrace=False)
    try:
        models = load_models(agentpatterns_sim_models)
    except SimConfigError as exc:
        pytest.fail(f"agentpatterns_sim_models: {exc}", pytrace=False)
    seed = request.config.stash[SETTINGS].seed
    with Simulator(world=world, models=models, seed=seed) as simulator:
        yield simulator


def _plan(item: pytest.Function) -> ItemPlan:
    settings = item.config.stash[SETTINGS]
    marker = _marker(item, item.config)
    spec = item.callspec.params["agent"]
    assert isinstance(spec, PatternSpec)
    all_specs = settings.patterns or marker.patterns or settings.ini_patterns or (spec,)
    ids = [s.id for s in all_specs]
    baseline = marker.baseline_pattern or ("single" if "single" in ids else ids[0])
    case = item.callspec.id
    case = case[: -len(spec.id)].rstrip("-") if case.endswith(spec.id) else case
    return ItemPlan(
        nodeid=item.nodeid,
        test=item.nodeid.split("[", 1)[0],
        case=case,
        pattern=spec.id,
        repeat=settings.repeat or marker.repeat or settings.ini_repeat or 1,
        thresholds=marker.thresholds,
        baseline_pattern=baseline,
        max_concurrency=settings.max_concurrency,
        evidence_chars=settings.evidence_chars,
        check_errors=marker.check_errors,
    )


def _group(item: pytest.Item) -> Any:
    """The adaptive test ``item`` belongs to (:class:`.rounds.Group`), or None."""
    config = item.config
    groups: dict[str, Any] | None = config.stash.get(GROUPS, None)
    if groups is None:
        groups = config.stash[GROUPS] = _groups(item.session)
    return groups.get(item.nodeid.split("[", 1)[0]) if groups else None


def _groups(session: pytest.Session) -> dict[str, Any]:
    """Every adaptive test of the session, by test id (a plan's pilot runs none)."""
    config = session.config
    settings = config.stash[SETTINGS]
    if settings.pilot is not None:
        return {}  # a plan's pilot runs its fixed small count
    tests = _adaptive_tests(config, session.items)
    if not tests:
        return {}
    from . import adaptive

    share = None
    if settings.budget is not None:
        share = settings.budget / max(1, len(tests))
    groups: dict[str, Any] = {}
    for test, members in tests.items():
        marker = _marker(members[0], config)
        max_repeat = max(
            2,
            marker.max_repeat
            or settings.repeat
            or marker.repeat
            or settings.ini_repeat
            or options.DEFAULT_MAX_REPEAT,
        )
        precision = marker.precision or settings.precision
        groups[test] = rounds.Group(
            test,
            list(members),
            adaptive.Settings.for_max(
                max_repeat,
                settings.alpha,
                # The option and the marker give a half-width (+-W); the rule takes the width.
                precision=None if precision is None else 2 * precision,
            ),
            _plan(members[0]).baseline_pattern,
            share=share,
            seed=settings.seed,
        )
    return groups


def _adaptive_tests(
    config: pytest.Config, items: list[pytest.Item]
) -> dict[str, list[pytest.Function]]:
    """The tests that run adaptively (the option, or the marker of their first item), each
    with its pattern items in run order."""
    settings = config.stash[SETTINGS]
    tests: dict[str, list[pytest.Function]] = {}
    plain: set[str] = set()
    for item in items:
        if not isinstance(item, pytest.Function) or "agent" not in item.fixturenames:
            continue
        test = item.nodeid.split("[", 1)[0]
        if test in plain:
            continue
        if test not in tests and not (settings.adaptive or _marker(item, config).adaptive):
            plain.add(test)
            continue
        tests.setdefault(test, []).append(item)
    return tests


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    group = _group(item)
    if group is None:
        return None
    rounds.protocol(group, item, nextitem)
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if "agent" not in pyfuncitem.fixturenames:
        return None
    plan = _plan(pyfuncitem)
    pilot = pyfuncitem.config.stash[SETTINGS].pilot
    if pilot is not None:
        pyfuncitem.user_properties.append((PLANNED, [plan.test, plan.repeat]))
        plan = replace(plan, repeat=pilot)
    function = pyfuncitem.obj
    names = _parameters(function)
    kwargs = {name: pyfuncitem.funcargs[name] for name in names if name in pyfuncitem.funcargs}
    agent: Agent = pyfuncitem.funcargs["agent"]  # type: ignore[assignment]

    def body() -> None:
        if inspect.iscoroutinefunction(function):
            import asyncio

            asyncio.run(function(**kwargs))
        else:
            function(**kwargs)

    config = pyfuncitem.config
    settings = config.stash[SETTINGS]
    meter = config.stash[METER]
    from .item_cassette import CassetteError, http_imported, run_in_cassette

    if not config.stash.get(INSTALLED, False) and http_imported():
        # Only sessions whose items can send a request pay for patching the HTTP clients;
        # until one is imported, an item's cassette opens only when it needs one.
        transport.install()
        config.stash[INSTALLED] = True

    path = pyfuncitem.stash[CASSETTE]
    probe = pyfuncitem.stash.get(PROBE, None)
    from .diagnostics import enrich

    problem: str | None = None
    states: list[Any] = []
    group = _group(pyfuncitem)

    def run(attach: Any, cassette: Any) -> Any:
        if group is None:
            return enrich(
                run_item(plan, body, agent, hooks=[attach, states.append]), body, agent, probe
            )
        this = group.count(pyfuncitem, cassette.recorded_rounds())
        cassette.remember_rounds(group.rounds_of(pyfuncitem, this))
        rounds_plan = replace(plan, repeat=this.count, first=this.first, earlier=this.earlier)
        done = enrich(
            run_item(rounds_plan, body, agent, hooks=[attach, states.append]), body, agent, probe
        )
        group.ran(pyfuncitem, this, done.result, live=not cassette.write_protected)
        return done

    mode = settings.record_mode
    if group is not None:
        mode = group.record_mode(pyfuncitem, mode)
        pyfuncitem.user_properties[:] = [p for p in pyfuncitem.user_properties if p[0] != PROPERTY]
    try:
        outcome, not_saved = run_in_cassette(
            path, mode, meter, run, scrub=settings.scrub, defer=group is None
        )
    except CassetteError as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    if settings.otel:
        _exporter(config).export(outcome.result, states)
    if not_saved is not None:
        result = replace(outcome.result, cassette_error=str(not_saved))
        pyfuncitem.user_properties.append((PROPERTY, result.to_dict()))
        pytest.fail(str(not_saved), pytrace=False)
    pyfuncitem.user_properties.append((PROPERTY, outcome.result.to_dict()))
    if outcome.result.skipped is not None:
        pytest.skip(outcome.result.skipped)
    if outcome.failure is not None:
        pytest.fail(outcome.failure, pytrace=False)
    return True


def _parameters(function: Any) -> tuple[str, ...]:
    """The names a test function takes (those of ``inspect.signature``, perhaps in another
    order); for a plain function read from its code object, a fraction of the cost."""
    if type(function) is not types.FunctionType or hasattr(function, "__wrapped__"):
        return tuple(inspect.signature(function).parameters)
    code = function.__code__
    count = code.co_argcount + code.co_kwonlyargcount
    count += bool(code.co_flags & inspect.CO_VARARGS) + bool(code.co_flags & inspect.CO_VARKEYWORDS)
    return code.co_varnames[:count]


def _exporter(config: pytest.Config) -> Any:
    """The session's OpenTelemetry exporter, made at the first item that needs it."""
    exporter = config.stash.get(OTEL, None)
    if exporter is None:
        from .otel import Exporter, OtelUnavailable

        try:
            exporter = Exporter()
        except OtelUnavailable as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[OTEL] = exporter
    return exporter


class _ResultsCollector:
    """Collects item results from reports: our own items, or xdist workers' on the controller."""

    def __init__(self, results: list[ItemResult], planned: dict[str, int]) -> None:
        self.results = results
        self.planned = planned

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == PROPERTY and isinstance(value, dict):
                self.results.append(ItemResult.from_dict(value))
            elif name == PLANNED and isinstance(value, (list, tuple)):
                test, repeat = str(value[0]), int(value[1])
                self.planned[test] = max(repeat, self.planned.get(test, 1))


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if not _is_controller(config) or session.exitstatus == pytest.ExitCode.USAGE_ERROR:
        return
    settings = config.stash[SETTINGS]
    results = config.stash[RESULTS]
    if settings.plan is not None:
        _make_plan(config)
        if session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.OK  # running nothing is what was asked
        return
    if not results and settings.baseline is None:
        return
    from .analysis import analyse, evaluate_gates
    from .atomic import write_atomic
    from .report import build_report, trace_lines, unpriced_models, write_json
    from .table import render_markdown

    analyses = analyse(results, seed=settings.seed, alpha=settings.alpha)
    gate_run = None
    if settings.baseline is not None and settings.rules:
        gate_run = evaluate_gates(
            settings.rules,
            results,
            settings.baseline,
            alpha=settings.alpha,
            seed=settings.seed,
            fail_on_inconclusive=settings.fail_on_inconclusive,
        )
        from .changes import annotate

        gate_run = annotate(gate_run, results, settings.baseline)
        config.stash[GATES] = gate_run
        if gate_run.failed:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    notes = [
        f"warning: no price for model {model!r}: its tokens are counted, its cost is n/a. "
        "Price it with the agentpatterns_prices ini option."
        for model in unpriced_models(results)
    ]
    if settings.baseline is not None and not settings.rules:
        notes.append("note: --patterns-baseline given without gates (--patterns-fail-on).")
    if settings.rules and settings.baseline is None:
        notes.append("note: gates are configured but not evaluated: no --patterns-baseline.")
    config.stash[SUMMARY] = (analyses, gate_run, notes)
    if settings.json_path is not None or settings.save_path is not None:
        document = build_report(results, settings, analyses, gate_run)  # only when written
        if settings.json_path is not None:
            write_json(settings.json_path, document)
        if settings.save_path is not None:
            write_json(settings.save_path, document)
            cache = getattr(config, "cache", None)
            if cache is not None:
                cache.set(LAST_SAVE, str(settings.save_path.resolve()))
    if settings.markdown_path is not None:
        text = render_markdown(analyses, gate_run, notes)
        if settings.markdown_append:
            settings.markdown_path.parent.mkdir(parents=True, exist_ok=True)
            with open(settings.markdown_path, "a", encoding="utf-8") as handle:
                handle.write(text)
        else:
            write_atomic(settings.markdown_path, text)
    if settings.html_path is not None:
        from .html import render_html

        page = render_html(analyses, results, (), notes, alpha=settings.alpha, gate_run=gate_run)
        write_atomic(settings.html_path, page)
    if settings.trace_path is not None:
        lines = trace_lines(results)
        write_atomic(settings.trace_path, "".join(line + "\n" for line in lines))


def _make_plan(config: pytest.Config) -> None:
    """``--patterns-plan``: plan every test of the saved run or the pilot (:mod:`.planning`)."""
    from .planning import pilot_summary, plan_from_run

    settings = config.stash[SETTINGS]
    diff = settings.plan or 0.1
    if settings.pilot is not None:
        results = config.stash[RESULTS]
        source, note = pilot_summary(results)
        config.stash[PLAN] = plan_from_run(
            results,
            diff,
            alpha=settings.alpha,
            repeat=config.stash[PLANNED_REPEATS],
            source=source,
            note=note,
        )
        return
    path, items = config.stash[PLAN_SOURCE]
    config.stash[PLAN] = plan_from_run(items, diff, alpha=settings.alpha, source=f"from {path}")


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    plan = config.stash.get(PLAN, None)
    if plan is not None:
        from .planning import render

        terminalreporter.write_sep("=", "agentpatterns plan")
        terminalreporter.write(render(plan, config.get_terminal_writer().fullwidth))
    summary = config.stash.get(SUMMARY, None)
    if not summary:
        return
    from .table import render_terminal

    analyses, gate_run, notes = summary
    results: list[ItemResult] = config.stash[RESULTS]
    width = config.get_terminal_writer().fullwidth
    text = render_terminal(
        analyses,
        gate_run,
        notes,
        width=width,
        verbose=config.get_verbosity() > 0,
        results=results,
    )
    terminalreporter.write_sep("=", "agentpatterns summary")
    terminalreporter.write(text)


def _print_gate_verdict(config: pytest.Config) -> None:
    """The gate verdict is the run's last line, after pytest's own counts."""
    gate_run = config.stash.get(GATES, None)
    if gate_run is None:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(gate_run.verdict_line(), red=gate_run.failed, bold=True)
