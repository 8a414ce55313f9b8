"""Typed values as the raw row stores them, and their refusals where they came from: a long
decimal in a json or text column is spelt as `output` keeps it (parse/_numbers.py's canonical
text) on every route; under an atomic load of many files, a value that does not fit names its
own file and line."""

from __future__ import annotations

import pytest

import resultloader
from resultloader import LoadOptions, parse_column
from tests.support.duckdb_files import query
from tests.support.openai_lines import EXPECTED, OPENAI_LINES, TYPED, jsonl, routes
from tests.support.typed_targets import target  # noqa: F401  (a fixture: each table sink)

# ruff: noqa: F811  (the `target` fixture, by name)

NUMBERS = [
    "123456789012345678901234567890.50",
    "1E-400",
    "0.10000000000000000000000001e5",
    "1.00000000000000000000",
    "0.1000000000000000055511151231257827",
]
SPELT = [  # as `output` stores each (canonical text)
    "123456789012345678901234567890.5",
    "1e-400",
    "10000.000000000000000000001",
    "1.0",
    "0.1000000000000000055511151231257827",
]
COLUMNS = (
    parse_column("j=output.v::json"),
    parse_column("t=output.v::text"),
    parse_column("tj=output.list::json"),
    parse_column("tt=output.list::text"),
    parse_column("each=output.items[*].n::text"),
)


@pytest.mark.parametrize("n", range(len(NUMBERS)))
def test_json_and_text_columns_spell_a_number_as_the_raw_output_does(write, tmp_path, n):
    lines = [
        {
            "id": "a",
            "output": {"v": "NUMBER", "list": ["x", "NUMBER"], "items": [{"n": "NUMBER"}]},
            "pad": 0,
        }
    ]
    spelt = SPELT[n]
    for name, path in routes(write, lines, number=NUMBERS[n]).items():
        db = tmp_path / f"{name}.duckdb"
        resultloader.load(path, db, LoadOptions(columns=COLUMNS))
        ((output, *values),) = query(db, "SELECT output::VARCHAR, j, t, tj, tt, each FROM results")
        assert f'"v":{spelt},' in output, (name, output)  # the raw row's own spelling
        assert values == [spelt, spelt, f'["x",{spelt}]', f"x{spelt}", spelt], name


@pytest.mark.parametrize("workers", [1, 2])
def test_under_atomic_a_value_that_does_not_fit_names_its_own_file_and_line(write, target, workers):
    total = parse_column("total=output.total::bigint")
    a = write("a.jsonl", '{"id":"a1","output":{"total":1}}\n{"id":"a2","output":{"total":1.5}}\n')
    b = write(
        "b.jsonl",
        '{"id":"b1","output":{"total":2}}\n{"id":"b2","output":{"total":"x"}}\n'
        '{"id":"b3","output":{"total":1e400}}\n',
    )
    options = LoadOptions(columns=(total,), on_error="quarantine")
    into = target.sink() if target.kind == "postgres" else target.into
    resultloader.load_many([str(a), str(b)], into, options, atomic=True, workers=workers)
    rejects = "SELECT _source, line, reason FROM results_rejects ORDER BY _source, line"
    assert [tuple(r) for r in target.query(rejects)] == [
        (str(a), 2, "column 'total': not a bigint: 1.5"),
        (str(b), 2, """column 'total': not a bigint: "x\""""),
        (str(b), 3, "column 'total': not a bigint: 1e400"),
    ]
    assert [tuple(r) for r in target.query("SELECT id FROM results ORDER BY id")] == [
        ("a1",),
        ("b1",),
    ]
    failing = target.another()
    into = failing.sink() if failing.kind == "postgres" else failing.into
    with pytest.raises(resultloader.ParseError) as raised:
        resultloader.load_many(
            [str(a), str(b)], into, LoadOptions(columns=(total,)), atomic=True, workers=workers
        )
    assert (raised.value.source, raised.value.line) == (str(a), 2)


@pytest.mark.parametrize(("workers", "atomic"), [(2, False), (1, True), (2, True)])
def test_many_files_as_a_provider_get_its_typed_columns(write, target, workers, atomic):
    a = write("a.jsonl", jsonl(OPENAI_LINES[:2]))
    b = write("b.jsonl", jsonl(OPENAI_LINES[2:]))
    into = target.sink() if target.kind == "postgres" else target.into
    options = LoadOptions(provider="openai-batch")
    results = resultloader.load_many(
        [str(a), str(b)], into, options, workers=workers, atomic=atomic
    )
    assert [tuple(r) for r in target.query(TYPED)] == EXPECTED
    if atomic:
        assert results[-1].report.statuses == {
            "succeeded": 2, "errored": 1, "expired": 1, "cancelled": 1
        }  # fmt: skip
        assert results[-1].report.tokens == 33
