"""Where each interaction of a cassette file lies, so that it is parsed when it is replayed.

A cassette written by ``json.dumps(..., indent=N)`` (the plugin writes ``N = 1``) puts each
interaction on lines of its own: it starts with a line that is exactly ``2N`` spaces and
``{`` and ends with one that is ``2N`` spaces and ``}`` (then ``,`` unless it is the last);
JSON strings cannot hold a raw newline, so no other line looks like that. :func:`scan` reads
such a file line by line (never the whole text at once), parses each interaction on its own
so the caller can check it and keep what it needs, and returns where each one lies, so that
a run holds only the index and reads back the interactions it replays.

Anything else (one line, tabs, CRLF, a hand edit that moved a brace) is not this layout:
:func:`scan` returns None and the caller parses the whole file, as before.
"""

from __future__ import annotations

import json
import os
import re
import threading
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Generic, TypeVar

K = TypeVar("K")

_INTERACTIONS = re.compile(rb'( +)"interactions": \[\n')
_STRING = re.compile(rb'"(?:[^"\\\n]|\\.)*"')


class Changed(Exception):
    """The file changed on disk since it was scanned."""


@dataclass(frozen=True)
class Scanned(Generic[K]):
    """A scanned cassette: its document without the interactions (``"interactions": []``),
    the key the caller kept of each interaction, and the open file they are read from."""

    document: dict[str, Any]
    keys: list[K]
    slices: Slices


class Slices:
    """The interactions of an open cassette file, each parsed again when it is read.

    The file stays open until :meth:`close`, so a cassette replaced on disk (a rename, as
    every cassette is written) is still read as it was scanned; one changed in place is
    refused with :class:`Changed`.
    """

    def __init__(self, handle: IO[bytes], starts: array[int], ends: array[int]) -> None:
        self._handle = handle
        self._starts = starts
        self._ends = ends
        stat = os.fstat(handle.fileno())
        self._stat = (stat.st_size, stat.st_mtime_ns)
        self._lock = threading.Lock()
        self._last: tuple[int, dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self._starts)

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Interaction ``index`` as the file holds it (the last one read is kept)."""
        with self._lock:
            last = self._last
            if last is not None and last[0] == index:
                return last[1]
            stat = os.fstat(self._handle.fileno())
            if (stat.st_size, stat.st_mtime_ns) != self._stat:
                raise Changed()
            start = self._starts[index]
            self._handle.seek(start)
            data = self._handle.read(self._ends[index] - start)
            interaction: dict[str, Any] = json.loads(data.decode("utf-8"))
            self._last = (index, interaction)
            return interaction

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for index in range(len(self)):
            yield self[index]

    def close(self) -> None:
        with self._lock:
            self._last = None
            self._handle.close()


def scan(handle: IO[bytes], key: Callable[[Any], K | None]) -> Scanned[K] | None:
    """Index the cassette open in ``handle`` (binary, at its start); None when the file is
    not in the layout, or ``key`` returned None for an interaction (the caller then parses
    the whole file, which says what is wrong). ``handle`` is kept open in the result and
    left to the caller otherwise."""
    try:
        return _scan(handle, key)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _scan(handle: IO[bytes], key: Callable[[Any], K | None]) -> Scanned[K] | None:
    readline = handle.readline
    head = [readline()]
    if head[0] != b"{\n":
        return None
    while True:
        line = readline()
        if not line:
            return None
        head.append(line)
        found = _INTERACTIONS.fullmatch(line)
        if found is not None:
            break
    if _depth(b"".join(head)) != 2:
        return None  # that "interactions" is not the document's own
    indent = found.group(1) * 2
    opening, closing, last = indent + b"{\n", indent + b"},\n", indent + b"}\n"
    end_of_list = found.group(1) + b"]"
    offset = sum(len(line) for line in head)
    starts: array[int] = array("q")
    ends: array[int] = array("q")
    keys: list[K] = []
    line = readline()
    while True:
        if line != opening:
            return None
        start = offset
        parts = []
        while line != closing and line != last:
            if not line:
                return None
            parts.append(line)
            offset += len(line)
            line = readline()
        more = line == closing
        parts.append(last)  # without the comma
        offset += len(line)
        found_key = key(json.loads(b"".join(parts).decode("utf-8")))
        if found_key is None:
            return None
        keys.append(found_key)
        starts.append(start)
        ends.append(offset - (2 if more else 1))
        line = readline()
        if not more:
            break
    if not line.startswith(end_of_list):
        return None
    tail = line + handle.read()
    seen_twice: list[bool] = []
    document = json.loads(
        (b"".join(head) + tail).decode("utf-8"),
        object_pairs_hook=lambda pairs: _object(pairs, seen_twice),
    )
    if seen_twice or not isinstance(document, dict) or document.get("interactions") != []:
        return None
    return Scanned(document, keys, Slices(handle, starts, ends))


def _object(pairs: list[tuple[str, Any]], seen_twice: list[bool]) -> dict[str, Any]:
    made = dict(pairs)
    if len(made) != len(pairs) and "interactions" in made:
        seen_twice.append(True)  # json.loads keeps the last: the whole parse must decide
    return made


def _depth(text: bytes) -> int:
    """How many brackets are open at the end of ``text`` (strings skipped)."""
    bare = _STRING.sub(b"", text)
    return bare.count(b"{") + bare.count(b"[") - bare.count(b"}") - bare.count(b"]")
