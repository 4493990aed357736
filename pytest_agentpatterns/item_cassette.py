"""An item's cassette, opened when the item first needs one.

Opening a cassette imports vcrpy (and with it every HTTP library it patches), switches the
patches on and reads the file. An item whose cassette file does not exist, in a process
that has imported no HTTP client, can send no request: its cassette stays unopened
(:class:`DeferredCassette` answers as an empty one would) unless an HTTP client is imported
while the item runs, which opens it at once, before the client can send anything. Items that
make no call (a task without LLM calls) so pay for none of it.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from .network import blocked

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

    from .cassettes import PatternCassette
    from .scrub import Scrubber, ScrubRules
    from .transport import CallInfo

T = TypeVar("T")

HTTP_MODULES = frozenset({"http.client", "httpx", "httpx2", "aiohttp", "tornado"})
"""The modules every HTTP client the cassettes intercept is built on: until one is imported,
no request can be sent."""


class CassetteError(Exception):
    """A cassette that cannot be read or must not be written; the message names the file."""


def cassette_path(directory: Path, module: str, nodename: str) -> Path:
    """``<directory>/<module>/<test name and ids>.json``, safe on every file system."""
    safe = re.sub(r'[\\/:*?"<>|\s]', "_", nodename)
    return directory / module / f"{safe}.json"


NAME_MAX = 255
"""The longest file name, in bytes, that common file systems take."""


def cassette_problems(paths: Mapping[str, Path]) -> list[str]:
    """What is wrong with the items' cassette paths (node id -> path): two items that would
    share one cassette, or a name too long for a file. One message each; none when fine."""
    problems: list[str] = []
    owners: dict[Path, str] = {}
    for nodeid, path in paths.items():
        size = len(path.name.encode("utf-8"))
        if size > NAME_MAX:
            problems.append(
                f"{nodeid}: its cassette's file name would be {size} bytes long, more than the "
                f"{NAME_MAX} a file name can have: give the case a shorter id"
            )
        first = owners.setdefault(path, nodeid)
        if first != nodeid:
            problems.append(
                f"{first} and {nodeid} would share one cassette, {path} (a cassette is named "
                'for the test function and its ids, with \\ / : * ? " < > | and whitespace '
                "as _): rename one, or give the cases ids that still differ after that"
            )
    return problems


def run_in_cassette(
    path: Path,
    mode: str,
    meter: Any,
    run: Callable[[Callable[[Any], None], Any], T],
    scrub: ScrubRules | None = None,
    defer: bool = True,
) -> tuple[T, CassetteError | None]:
    """:func:`.cassettes.run_in_cassette`, with the cassette left unopened while the item
    cannot need it (``defer``, no file at ``path``, no HTTP client imported yet)."""
    if not defer or http_imported() or path.exists():
        from . import cassettes

        return cassettes.run_in_cassette(path, mode, meter, run, scrub=scrub)
    _watch()
    with DeferredCassette(path, mode, scrub) as cassette:
        result = run_attached(cassette, path, mode, meter, run)
    return result, cassette.save_error


def run_attached(
    cassette: Any,
    path: Path,
    mode: str,
    meter: Any,
    run: Callable[[Callable[[Any], None], Any], T],
) -> T:
    """``run(attach, cassette)`` for the cassette at ``path`` in record ``mode``, where
    ``attach(state)`` meters a repetition's calls and sends them to ``cassette``; while the
    cassette only replays, no socket can be opened."""

    def attach(state: Any) -> None:
        state.meter = meter
        state.replayer = cassette
        state.scrubber = cassette.scrubber

    guard = (
        blocked(f"cassette {path} replays only (record mode {mode})")
        if cassette.write_protected
        else contextlib.nullcontext()
    )
    with guard:
        return run(attach, cassette)


class DeferredCassette:
    """An item's cassette before it is opened: it answers as an empty cassette of its record
    mode, and forwards to the opened one once an HTTP client is imported (:meth:`open`)."""

    def __init__(self, path: Path, mode: str, scrub: ScrubRules | None) -> None:
        self.path = path
        self.mode = mode
        self._scrub = scrub
        self._scrubber: Scrubber | None = None
        self._opened: PatternCassette | None = None
        self._stack = contextlib.ExitStack()
        self._lock = threading.RLock()

    def __enter__(self) -> DeferredCassette:
        with _LOCK:
            _WAITING.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with _LOCK:
            _WAITING.remove(self)
        with self._lock:
            self._stack.close()

    def open(self) -> PatternCassette:
        """Open the cassette now (once), as :func:`.cassettes.open_cassette` does."""
        with self._lock:
            if self._opened is None:
                from .cassettes import open_cassette

                opening = open_cassette(self.path, self.mode, self._scrub)
                cassette = self._stack.enter_context(opening)
                if self._scrubber is not None:
                    # Evidence already holds this scrubber: the cassette learns into it.
                    cassette._scrubber_made = self._scrubber
                self._opened = cassette
            return self._opened

    @property
    def write_protected(self) -> bool:
        # vcrpy's rule for a cassette with no file: only record mode none protects it.
        opened = self._opened
        return opened.write_protected if opened is not None else self.mode == "none"

    @property
    def scrubber(self) -> Scrubber:
        with self._lock:
            if self._opened is not None:
                return self._opened.scrubber
            if self._scrubber is None:
                from .scrub import Scrubber

                self._scrubber = Scrubber(self._scrub)
            return self._scrubber

    @property
    def save_error(self) -> CassetteError | None:
        return None if self._opened is None else self._opened.save_error

    # What the runner asks of every cassette; an empty one knows of no recording.

    def replays(self, repetition: int) -> bool:
        return self._opened is not None and self._opened.replays(repetition)

    def overhead(self, repetition: int) -> float:
        return 0.0 if self._opened is None else self._opened.overhead(repetition)

    def remember_overhead(self, repetition: int, seconds: float) -> None:
        if self._opened is not None:
            self._opened.remember_overhead(repetition, seconds)

    def keeps_overhead(self, repetition: int) -> bool:
        return self._opened is not None and self._opened.keeps_overhead(repetition)

    def forget_cancellations(self, repetition: int) -> None:
        if self._opened is not None:
            self._opened.forget_cancellations(repetition)

    def recorded_rounds(self) -> list[int] | None:
        return None if self._opened is None else self._opened.recorded_rounds()

    def remember_rounds(self, rounds: list[int]) -> None:
        self.open().remember_rounds(rounds)

    # What the transport asks: only once a client is imported, so the cassette is open.

    def will_replay(self, call: CallInfo) -> bool:
        return self.open().will_replay(call)

    def record_cancelled(self, call: CallInfo) -> None:
        self.open().record_cancelled(call)


_LOCK = threading.Lock()
_WAITING: list[DeferredCassette] = []
"""The deferred cassettes of the items running now (pytester nests sessions)."""


def http_imported() -> bool:
    """Whether the process has imported an HTTP client (any of :data:`HTTP_MODULES`)."""
    modules = sys.modules
    return any(name in modules for name in HTTP_MODULES)


_OPENING = threading.local()
"""Set while this thread opens cassettes: the imports that opening does are not watched."""
_DEPTH = threading.local()
"""How deep this thread is in the imports made while a deferred cassette waits."""


def _open_waiting() -> None:
    """An HTTP client was imported: open the cassette of every item running now."""
    with _LOCK:
        waiting = list(_WAITING)
    _OPENING.on = True
    try:
        for cassette in waiting:
            cassette.open()
    finally:
        _OPENING.on = False


class _Then(importlib.abc.Loader):
    """A module's own loader; once the outermost import of the thread is done, and it has
    brought an HTTP client, the waiting cassettes are opened (opening imports vcrpy, which
    must not happen while the modules it needs are half initialised)."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        created: ModuleType | None = self._loader.create_module(spec)
        return created

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        depth = getattr(_DEPTH, "n", 0)
        _DEPTH.n = depth + 1
        try:
            self._loader.exec_module(module)
        finally:
            _DEPTH.n = depth
        if depth == 0 and http_imported():
            _open_waiting()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _Watcher(importlib.abc.MetaPathFinder):
    """Sees the modules imported while a deferred cassette waits."""

    def __init__(self) -> None:
        self._finding = threading.local()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not _WAITING or getattr(self._finding, "on", False) or getattr(_OPENING, "on", False):
            return None
        self._finding.on = True
        try:
            spec = _find(self, fullname, path, target)
        finally:
            self._finding.on = False
        if spec is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Then(spec.loader)
        return spec


def _find(
    watcher: _Watcher, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> ModuleSpec | None:
    """The spec the other finders give, in their order."""
    for finder in list(sys.meta_path):
        find = getattr(finder, "find_spec", None)
        if finder is watcher or find is None:
            continue
        spec: ModuleSpec | None = find(fullname, path, target)
        if spec is not None:
            return spec
    return None


_WATCHER = _Watcher()


def _watch() -> None:
    """Put the watcher first on the import path (once per process)."""
    if _WATCHER not in sys.meta_path:
        with _LOCK:
            if _WATCHER not in sys.meta_path:
                sys.meta_path.insert(0, _WATCHER)
