"""``cases("cases.jsonl")``: cases from a file, ids from a field, one clear error per problem."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_agentpatterns import CasesError, cases

ROWS = [
    {"id": "apples", "question": "23 + 17", "answer": "40"},
    {"id": "pencils", "question": "48 / 6", "answer": "8"},
    {"id": "eggs", "question": "3 * 16", "answer": "48"},
]


def write(directory: Path, name: str, rows: list[dict[str, str]] = ROWS) -> Path:
    path = directory / name
    if name.endswith((".jsonl", ".ndjson")):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif name.endswith(".csv"):
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        path.write_text(out.getvalue())
    elif name.endswith(".json"):
        path.write_text(json.dumps(rows))
    else:
        path.write_text(yaml.safe_dump(rows, sort_keys=False))
    return path


# A user's test module: the task answers from a lookup; the case supplies input and answer.
MODULE = """
import pytest
from pytest_agentpatterns import Task, cases

ANSWERS = {"23 + 17": "40", "48 / 6": "8", "3 * 16": "48"}
solver = Task(name="solver", propose=lambda q: ANSWERS[q])

@pytest.mark.parametrize("case", cases("data/NAME"))
def test_solve(agent, case):
    assert isinstance(case, dict) and set(case) == {"id", "question", "answer"}
    assert agent.run(solver, case["question"]) == case["answer"]
"""


@pytest.mark.parametrize("name", ["cases.jsonl", "cases.csv", "cases.yaml", "cases.json"])
def test_cases_parametrize_a_pattern_test_with_ids_from_the_file(
    pytester: pytest.Pytester, name: str
) -> None:
    (pytester.path / "tests" / "data").mkdir(parents=True)
    write(pytester.path / "tests" / "data", name)
    pytester.makepyfile(**{"tests/test_solve": MODULE.replace("NAME", name)})
    report = pytester.path / "report.json"
    # Run from the project's root: the path is relative to the test module, not the cwd.
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--patterns-record=none",
        "--patterns=single,parallel(n=2)",
        f"--patterns-json={report}",
        "-v",
    )
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        [
            "*test_solve[[]apples-single[]] PASSED*",
            "*test_solve[[]pencils-single[]] PASSED*",
            "*test_solve[[]eggs-parallel(n=2)[]] PASSED*",
        ]
    )
    items = json.loads(report.read_text())["items"]
    assert sorted({i["case"] for i in items}) == ["apples", "eggs", "pencils"]


def test_relative_paths_follow_the_calling_module_not_the_cwd(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    (pytester.path / "suite").mkdir()
    write(pytester.path / "suite", "cases.jsonl")
    pytester.makepyfile(
        **{
            "suite/test_ids": """
import pytest
from pytest_agentpatterns import cases

@pytest.mark.parametrize("case", cases("cases.jsonl"))
def test_ids(case):
    assert case["id"] in ("apples", "pencils", "eggs")
"""
        }
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(elsewhere)
        result = pytester.runpytest(str(pytester.path / "suite"), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_a_bad_file_is_one_collection_error_naming_file_and_line(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "cases.jsonl").write_text(
        '{"id": "a", "q": 1}\n\n{"id": "b", "q": 2}\n{"q": 3}\n'
    )
    pytester.makepyfile(
        test_bad="""
import pytest
from pytest_agentpatterns import cases

@pytest.mark.parametrize("case", cases("cases.jsonl"))
def test_x(case):
    pass
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "E   pytest_agentpatterns.datasets.CasesError: */cases.jsonl, line 4: the case has "
            "no 'id' field (its fields: 'q'); give every case one, name another field with "
            "id_field=..., or pass id_field=None to let pytest number the cases",
        ]
    )
    # The plugin's own frames are hidden: the traceback is the user's line and the message.
    assert "datasets.py" not in result.stdout.str()


# --- the reader, called directly ---------------------------------------------------------------


def values(params: list[object]) -> list[tuple[str | None, object]]:
    return [(p.id, p.values[0]) for p in params]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["c.jsonl", "c.ndjson", "c.csv", "c.yaml", "c.yml", "c.json"])
def test_every_format_gives_the_same_dicts_in_file_order(tmp_path: Path, name: str) -> None:
    params = cases(write(tmp_path, name))
    assert values(params) == [(r["id"], r) for r in ROWS]


def test_id_field_and_numbering(tmp_path: Path) -> None:
    rows = [{"name": "x", "n": 1}, {"name": "y", "n": 2}]
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [p.id for p in cases(path, id_field="name")] == ["x", "y"]  # type: ignore[attr-defined]
    assert [p.id for p in cases(path, id_field=None)] == [None, None]  # type: ignore[attr-defined]
    path.write_text('{"id": 7}\n{"id": 8}\n')
    assert [p.id for p in cases(path)] == ["7", "8"]  # type: ignore[attr-defined]


def test_relative_to_this_module(tmp_path: Path) -> None:
    here = Path(__file__).parent
    name = f".cases-{tmp_path.name}.jsonl"
    (here / name).write_text('{"id": "only"}\n')
    try:
        assert [p.id for p in cases(name)] == ["only"]  # type: ignore[attr-defined]
    finally:
        (here / name).unlink()


def test_format_given_when_the_suffix_says_nothing(tmp_path: Path) -> None:
    path = tmp_path / "cases.txt"
    path.write_text("id,q\na,1\n")
    assert values(cases(path, format="csv")) == [("a", {"id": "a", "q": "1"})]


def test_a_byte_order_mark_from_a_spreadsheet_is_not_part_of_the_header(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes("id,q\r\na,1\r\n".encode("utf-8-sig"))
    assert values(cases(path)) == [("a", {"id": "a", "q": "1"})]


BAD = [
    (
        "c.jsonl",
        '{"id": "a"}\n{"id": "a"}\n',
        "c.jsonl, line 2: id 'a' is already the id of the case at line 1; ids must be unique",
    ),
    (
        "c.jsonl",
        '{"id": "a"}\n{"id": \n',
        "c.jsonl, line 2: not JSON (Expecting value: line 1 column 8 (char 7)); JSON lines hold one object per line",
    ),
    (
        "c.jsonl",
        '["a"]\n',
        "c.jsonl, line 1: a case must be a mapping of field to value, got a list",
    ),
    ("c.jsonl", '{"id": ""}\n', "c.jsonl, line 1: id is empty; an id is a non-empty string"),
    (
        "c.jsonl",
        '{"id": true}\n',
        "c.jsonl, line 1: id bool True is not allowed; an id is a non-empty string or an integer",
    ),
    (
        "c.jsonl",
        '{"id": {"x": 1}}\n',
        "c.jsonl, line 1: id a mapping is not allowed; an id is a non-empty string or an integer",
    ),
    ("c.jsonl", "\n\n", "c.jsonl: holds no cases; add at least one"),
    (
        "c.csv",
        "id,q\na,1\nb,2,3\n",
        "c.csv, line 3: 3 values for 2 columns (id, q); quote values that hold commas",
    ),
    (
        "c.csv",
        "id,q\na,1\nb\n",
        "c.csv, line 3: 1 values for 2 columns (id, q); quote values that hold commas",
    ),
    (
        "c.csv",
        "id,id\na,1\n",
        "c.csv, line 1: column 'id' appears twice in the header; name each column once",
    ),
    ("c.csv", 'id,q\na,"open\n', "c.csv, line 2: not valid CSV (unexpected end of data)"),
    ("c.csv", "q\n1\n", "c.csv, line 2: the case has no 'id' field (its fields: 'q')"),
    ("c.yaml", "- id: a\n- id: b\n  q: [1\n", "c.yaml, line 4: not valid YAML"),
    ("c.yaml", "- id: a\n\n- q: 2\n", "c.yaml, line 3: the case has no 'id' field"),
    (
        "c.yaml",
        "- id: a\n- id: a\n",
        "c.yaml, line 2: id 'a' is already the id of the case at line 1",
    ),
    ("c.yaml", "id: a\n", "c.yaml: a YAML cases file holds a list of mappings, got a mapping"),
    ("c.json", '{"id": "a"}', "c.json: a .json cases file holds a list of objects, got a mapping"),
    (
        "c.json",
        '[{"id": "a"}, {"id": "a"}]',
        "c.json, case 2: id 'a' is already the id of the case at case 1",
    ),
    ("c.json", '[{"id": "a"},\n', "c.json, line 2: not JSON"),
    (
        "c.txt",
        "id\na\n",
        "c.txt: cannot tell the format from the suffix '.txt'; allowed: jsonl (.jsonl, .ndjson), json (.json: a list), csv (.csv), yaml (.yaml, .yml), or pass format=...",
    ),
]


@pytest.mark.parametrize(
    "name,text,message", BAD, ids=[m.split(": ", 1)[1][:40] for _, _, m in BAD]
)
def test_bad_files_say_where_and_what_is_allowed(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(CasesError) as info:
        cases(path)
    assert str(info.value).startswith(f"{tmp_path}/{message}")


def test_a_missing_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(CasesError, match=r"/nowhere\.jsonl: no such file \(relative to "):
        cases("nowhere.jsonl")
    with pytest.raises(
        CasesError, match="format='xml' is not allowed; allowed: jsonl, json, csv, yaml"
    ):
        cases(tmp_path / "c.jsonl", format="xml")


IDS = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1).filter(
    lambda s: s.strip() != ""
)
# Values may hold line ends, quotes, commas and U+2028: each format must keep them.
FIELD = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from('\r\n,"\u2028'),
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(IDS, FIELD), min_size=1, max_size=8, unique_by=lambda r: r[0]),
    suffix=st.sampled_from([".jsonl", ".csv", ".yaml", ".json"]),
)
def test_any_unique_ids_and_text_round_trip(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str]], suffix: str
) -> None:
    records = [{"id": i, "text": t} for i, t in rows]
    path = write(tmp_path_factory.mktemp("cases"), f"c{suffix}", records)
    assert values(cases(path)) == [(r["id"], r) for r in records]
