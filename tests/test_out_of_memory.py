"""Running out of memory is the process's fault, never the row's: it fails the load in one line
and is never counted as a bad row that --on-error skip or quarantine would drop."""

from __future__ import annotations

import duckdb
import orjson
import pytest
from click.testing import CliRunner

import resultloader
from resultloader.cli import main
from resultloader.parse import _rows

# orjson's own report of a parse buffer it could not allocate (seen under `ulimit -v`: the load
# ended with "line 127598: invalid JSON: Not enough memory to allocate buffer for parsing")
_ORJSON_OUT_OF_MEMORY = "Not enough memory to allocate buffer for parsing"
LINES = b'{"id":"a","output":1}\n{"id":"b","output":0.1000000000000000000000001}\n'


@pytest.fixture
def orjson_out_of_memory(monkeypatch):
    """orjson failing to allocate for the second row, which the Python route decodes."""
    real = orjson.loads

    def loads(data: bytes | str) -> object:
        if b'"b"' in (data.encode() if isinstance(data, str) else bytes(data)):
            raise orjson.JSONDecodeError(_ORJSON_OUT_OF_MEMORY, str(data), 0)
        return real(data)

    monkeypatch.setattr(_rows.orjson, "loads", loads)


@pytest.mark.parametrize("on_error", ["skip", "quarantine"])
def test_orjson_out_of_memory_is_not_a_bad_row(orjson_out_of_memory, write, tmp_path, on_error):
    db = tmp_path / "r.duckdb"
    with pytest.raises(MemoryError, match="out of memory parsing a JSON text"):
        resultloader.load(write("r.jsonl", LINES), db, resultloader.LoadOptions(on_error=on_error))
    with duckdb.connect(str(db)) as con:
        query = "SELECT table_name FROM information_schema.tables"
        tables = {t for (t,) in con.execute(query).fetchall()}
        for table in {"results", "results_rejects"} & tables:  # made up front, nothing kept
            assert con.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]


def test_out_of_memory_ends_the_cli_in_one_line(orjson_out_of_memory, write, tmp_path):
    source = write("r.jsonl", LINES)
    args = ["load", str(source), "--into", str(tmp_path / "r.duckdb"), "--on-error", "skip"]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 1
    assert done.output.strip().startswith("error: out of memory: this process may not use")
    assert done.output.strip().endswith("nothing was committed")
    assert len(done.output.strip().splitlines()) == 1
