"""`--into TARGET` and `load(src, TARGET)`: the sink is chosen by the target's form."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import resultloader
from resultloader import DuckDBSink, SinkError
from resultloader.sinks.registry import sink_for


@pytest.mark.parametrize(
    ("target", "kind", "where"),
    [
        ("r.duckdb", "DuckDBSink", "r.duckdb"),
        ("duckdb:r.duckdb", "DuckDBSink", "r.duckdb"),
        ("DUCKDB:/data/x.db", "DuckDBSink", "/data/x.db"),
        ("C:\\data\\r.duckdb", "DuckDBSink", "C:\\data\\r.duckdb"),
        ("postgresql://u@db.example:5432/app", "PostgresSink", "postgresql://db.example:5432/app"),
        ("postgres://u:pw@db.example/app", "PostgresSink", "postgres://db.example/app"),
        ("delta:/lake/results", "DeltaSink", "/lake/results"),
        ("delta:s3://bucket/prefix/results", "DeltaSink", "s3://bucket/prefix/results"),
        ("iceberg:lake/ns.results", "IcebergSink", "iceberg:lake/ns.results"),
    ],
)
def test_the_target_form_chooses_the_sink(target, kind, where):
    sink = sink_for(target)
    assert type(sink).__name__ == kind
    assert repr(sink).startswith(f"{kind}({where!r}")
    assert "pw" not in repr(sink)


def test_a_path_object_is_a_duckdb_file(tmp_path):
    sink = sink_for(tmp_path / "r.duckdb", "t")
    assert isinstance(sink, DuckDBSink) and sink.table == "t"


def test_an_unknown_scheme_is_refused_without_its_credentials():
    with pytest.raises(SinkError, match="unknown target") as caught:
        sink_for("mysql://root:hunter2@db/app?token=abc")
    assert "hunter2" not in str(caught.value) and "abc" not in str(caught.value)


@pytest.mark.parametrize(
    ("target", "package", "extra"),
    [
        ("postgresql://u@h/db", "psycopg", "postgres"),
        ("delta:/lake", "deltalake", "delta"),
        ("iceberg:lake/ns.results", "pyiceberg", "iceberg"),
    ],
)
def test_a_missing_optional_dependency_names_the_extra(monkeypatch, target, package, extra):
    for name in list(sys.modules):
        if (
            name == package
            or name.startswith(f"{package}.")
            or name.startswith(
                (
                    "resultloader.sinks.postgres",
                    "resultloader.sinks.delta.sink",
                    "resultloader.sinks.iceberg.",
                )
            )
        ):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)  # as if it were not installed
    with pytest.raises(SinkError, match=rf"pip install 'resultloader\[{extra}\]'"):
        sink_for(target)


def test_load_into_a_target_string(tmp_path: Path, write):
    report = resultloader.load(write("r.jsonl", '{"id":"a"}\n'), f"duckdb:{tmp_path / 'x.db'}")
    assert report.rows_upserted == 1
    assert (tmp_path / "x.db").exists()


def test_a_sink_declares_its_capabilities():
    """The pipeline reads `capabilities`, never probes for methods: an object with the four
    methods but no declaration is refused with what to add."""

    class NoDeclaration:
        def begin(self, info): ...
        def write(self, batch): ...
        def commit(self, report): ...
        def abort(self, error=None): ...

    with pytest.raises(TypeError, match="capabilities"):
        resultloader.load("-", NoDeclaration())  # type: ignore[arg-type]
