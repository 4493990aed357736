"""Cassettes read as they are replayed: the file in the plugin's layout is indexed at open and
each interaction parsed again when it is used; any other layout is parsed whole, as before.
Both paths must give the same recordings, the same errors and the same saved file."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from test_bad_input import cassette_doc
from test_fuzz import one_change
from vcr.request import Request

from pytest_agentpatterns import cassettes, slices
from pytest_agentpatterns.cassettes import ADDRESS_HEADER, UNANSWERED, CompactJson


def _interaction(i: int, body: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "status": {"code": 500 if i == 2 else 200, "message": "OK"},
        "headers": {"content-type": ["application/json"], "x-sim-outcome": ["a", "b"]},
        "body": {"string": json.dumps({"id": i, "text": f'Réponse {i} \u2603 "q" \\n'})},
        "duration": 0.25 * i,
    }
    if i == 3:
        response["error"] = {"type": "ReadError", "message": "cut"}
    return {
        "request": {
            "method": "POST",
            "uri": f"http://127.0.0.1:9/v1/messages?i={i}",
            "body": json.dumps({"i": i, "q": "{\n  }"}) if body is None else body,
            "headers": {
                "content-type": ["application/json"],
                ADDRESS_HEADER: [f"r{i // 2}/main/propose#{i % 2}"],
            },
        },
        "response": response,
    }


def _document(size: int = 6) -> dict[str, Any]:
    interactions = [_interaction(i) for i in range(size)]
    interactions[4]["request"]["body"] = None
    return {
        "version": 1,
        "interactions": interactions,
        "metadata": {
            "overhead": {"r0": 0.5, "r1": 0.25},
            "rounds": [2, 1],
            UNANSWERED: {"r9/main/propose#0": {"cancelled": True}},
        },
    }


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


@contextlib.contextmanager
def _parsed_whole() -> Iterator[None]:
    """Open cassettes as before: the whole file parsed, whatever its layout."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cassettes.Persister, "scan", classmethod(lambda cls, path: None))
        yield


def _read(path: Path, mode: str = "none") -> tuple[bool, list[Any], dict[str, Any]]:
    """Whether the cassette was read lazily, each recording as replay sees it, and its
    metadata."""
    with cassettes.open_cassette(path, mode) as cassette:
        seen = []
        for index, (request, response) in enumerate(cassette.data):
            probe = cassette._probe_at(index)
            seen.append((request._to_dict(), response, probe.key()))
        return cassette.data.lazy, seen, json.loads(json.dumps(cassette._metadata))


def _outcome(path: Path) -> str:
    """What opening and replaying the cassette gives, as text (a NaN equals itself there)."""
    try:
        return json.dumps(_read(path)[1:], default=repr)
    except cassettes.CassetteError as exc:
        return str(exc)


@pytest.mark.parametrize("indent", [1, 2, 4])
def test_an_interaction_read_back_from_the_file_equals_the_whole_parse(
    tmp_path: Path, indent: int
) -> None:
    path = _write(tmp_path / "c.json", json.dumps(_document(), indent=indent) + "\n")
    lazy, seen, metadata = _read(path)
    assert lazy
    assert len(seen) == 6
    with _parsed_whole():
        assert _read(path) == (False, seen, metadata)


def test_the_plugins_own_layout_is_read_lazily(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.json", CompactJson.serialize(_document()))
    with cassettes.open_cassette(path, "none") as cassette:
        assert cassette.data.lazy
        assert cassette.data.response(1)["body"]["string"] == _interaction(1)["response"]["body"][
            "string"
        ].encode("utf-8")
        assert cassette.data._requests == [None] * 6  # nothing built is kept
        assert cassette._probes == {}
    assert cassette.data._loaded.closed  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(_document()),
        json.dumps(_document(), indent=1).replace("\n", "\r\n"),
        json.dumps(_document(), indent="\t"),
        "\ufeff" + json.dumps(_document(), indent=1),
        # A hand edit: the second interaction's closing brace moved.
        json.dumps(_document(), indent=1).replace(
            '\n  },\n  {\n   "request"', '},\n  {\n   "request"', 1
        ),
        # Metadata first, holding a key named like the interactions, at the top level's indent.
        '{\n "metadata": {\n "interactions": [\n  {}\n ]},\n "version": 1,\n "interactions": '
        + json.dumps(_document()["interactions"], indent=1).replace("\n", "\n ")
        + "\n}\n",
    ],
    ids=["one-line", "crlf", "tabs", "bom", "moved-brace", "nested-key-first"],
)
def test_other_layouts_are_parsed_whole_with_the_same_outcome(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path / "c.json", text)
    handle = path.open("rb")
    try:
        assert slices.scan(handle, lambda interaction: "") is None
    finally:
        handle.close()
    outcome = _outcome(path)
    with _parsed_whole():
        assert _outcome(path) == outcome


def _broken(field: str) -> str:
    document = _document()
    if field == "status":
        document["interactions"][3]["response"]["status"]["code"] = "abc"
    elif field == "uri":
        document["interactions"][3]["request"]["uri"] = "not a url"
    elif field == "address":
        document["interactions"][3]["request"]["headers"][ADDRESS_HEADER] = ["main"]
    elif field == "metadata":
        document["metadata"]["rounds"] = [-1]
    return CompactJson.serialize(document)


@pytest.mark.parametrize("field", ["status", "uri", "address", "metadata", "json", "duplicate"])
def test_a_malformed_cassette_is_one_error_at_open_naming_the_file(
    tmp_path: Path, field: str
) -> None:
    if field == "json":  # a quote lost in the middle
        text = CompactJson.serialize(_document()).replace('"ReadError"', '"ReadError', 1)
    elif field == "duplicate":  # json.loads keeps the last "interactions": so must we
        text = CompactJson.serialize(_document()).replace(
            ' "metadata"', ' "interactions": [],\n "metadata"', 1
        )
    else:
        text = _broken(field)
    path = _write(tmp_path / "c.json", text)
    try:
        lazy = _read(path)
    except cassettes.CassetteError as exc:
        message = str(exc)
        assert str(path) in message and "left untouched" in message
    else:
        assert field == "duplicate" and lazy[1] == []
        message = ""
    assert path.read_text(encoding="utf-8") == text
    with _parsed_whole():
        assert _outcome(path) == (message or json.dumps(lazy[1:], default=repr))


def _record_one(cassette: cassettes.PatternCassette) -> None:
    cassette.append(
        Request(
            "POST",
            "http://127.0.0.1:9/v1/messages",
            b'{"new": true}',
            {ADDRESS_HEADER: "r0/main/propose#7"},
        ),
        {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": b"{}"}},
    )


@pytest.mark.parametrize("mode", ["new_episodes", "all"])
def test_saving_after_a_lazy_open_writes_what_the_whole_parse_writes(
    tmp_path: Path, mode: str
) -> None:
    text = CompactJson.serialize(_document())
    lazy = _write(tmp_path / "lazy.json", text)
    whole = _write(tmp_path / "whole.json", text)
    with cassettes.open_cassette(lazy, mode) as cassette:
        assert cassette.data.lazy
        cassette.data.response(1)  # replayed before the save
        _record_one(cassette)
    assert cassette.save_error is None
    assert not cassette.data.lazy  # read into memory and closed before the file was replaced
    with _parsed_whole():
        with cassettes.open_cassette(whole, mode) as cassette:
            assert not cassette.data.lazy
            _record_one(cassette)
    saved = lazy.read_bytes()
    assert saved == whole.read_bytes()
    assert len(json.loads(saved)["interactions"]) == 7


def test_a_cassette_replaced_while_open_is_read_as_it_was(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.json", CompactJson.serialize(_document()))
    with cassettes.open_cassette(path, "none") as cassette:
        before = cassette.data.response(2)
        cassettes.write_atomic(path, CompactJson.serialize({"version": 1, "interactions": []}))
        assert cassette.data.response(2) == before
        assert cassette.data.response(5)["duration"] == 1.25


def _edit_in_place(path: Path) -> bytes:
    data = path.read_bytes()
    edited = data.replace(b'"duration": 1.25', b'"duration": 9.99')
    assert len(edited) == len(data) and edited != data
    stat = path.stat()
    with path.open("r+b") as handle:
        handle.write(edited)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    return edited


def test_a_cassette_changed_in_place_while_open_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.json", CompactJson.serialize(_document()))
    with cassettes.open_cassette(path, "none") as cassette:
        cassette.data.response(4)
        _edit_in_place(path)
        with pytest.raises(cassettes.CassetteError, match="changed on disk") as raised:
            cassette.data.response(5)
        assert str(path) in str(raised.value)


def test_a_cassette_changed_in_place_is_not_saved_over(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.json", CompactJson.serialize(_document()))
    with cassettes.open_cassette(path, "new_episodes") as cassette:
        _record_one(cassette)
        edited = _edit_in_place(path)
    assert isinstance(cassette.save_error, cassettes.CassetteError)
    assert "nothing was written" in str(cassette.save_error)
    assert path.read_bytes() == edited


def test_scan_keeps_each_interactions_place(tmp_path: Path) -> None:
    document = _document(12)
    path = _write(tmp_path / "c.json", json.dumps(document, indent=1, ensure_ascii=False))
    with path.open("rb") as handle:
        scanned = slices.scan(handle, lambda i: i["request"]["method"])
        assert scanned is not None
        assert scanned.keys == ["POST"] * 12
        assert scanned.document == {**document, "interactions": []}
        assert list(scanned.slices) == document["interactions"]
        assert scanned.slices[7] == document["interactions"][7]
    # A key the caller refuses sends the file to the whole parse.
    with path.open("rb") as handle:
        assert slices.scan(handle, lambda i: None if i["response"].get("error") else 1) is None
    empty = _write(tmp_path / "e.json", json.dumps({"version": 1, "interactions": []}, indent=1))
    with empty.open("rb") as handle:
        assert slices.scan(handle, lambda i: 1) is None


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(one_change(cassette_doc()))
def test_lazy_and_whole_reads_agree_on_any_cassette(
    tmp_path_factory: pytest.TempPathFactory, doc: Any
) -> None:
    folder = tmp_path_factory.mktemp("agree")
    path = _write(folder / "c.json", json.dumps(doc, indent=1, ensure_ascii=False))
    lazy = _outcome(path)
    with _parsed_whole():
        assert _outcome(path) == lazy
