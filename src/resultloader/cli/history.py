"""`resultloader history`: the ledger of past loads, and one load with its rejects.

`--from` (or `--into`, its older name) takes the targets `load --into` does. The target's sink
reads its ledger (small: a row a load) into an in-memory DuckDB, where the same queries list
it, and a load's rejects (the `LedgerSink` protocol): no engine is special here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
import duckdb
import orjson
import pyarrow as pa

from .._errors import SinkError
from .._redact import display_name
from ..sinks import LEDGER, LEDGER_COLUMNS, REJECTS_SUFFIX, LedgerSink
from ..sinks.registry import sink_for
from ._common import examples, handle_errors

_COLUMNS = ", ".join(name for name, _ in LEDGER_COLUMNS)
_TYPES = {"text": "VARCHAR", "integer": "BIGINT", "timestamp": "TIMESTAMP"}


@click.command(
    "history",
    epilog=examples(
        "resultloader history --from lake.duckdb --limit 5",
        "resultloader history 3f9c2a1b --from postgresql://loader@db:5432/app --json",
    ),
)
@click.argument("load_id", required=False)
@click.option(
    "--from",
    "--into",
    "target",
    default="results.duckdb",
    show_default=True,
    metavar="TARGET",
    help="The database whose loads to read: a DuckDB file, postgresql://... or delta:PATH, "
    "as load --into takes them (--into is the older name of --from).",
)
@click.option(
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    metavar="N",
    help="Show the N newest loads.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the loads as JSON, one per line.")
def history_command(load_id: str | None, target: str, limit: int, as_json: bool) -> None:
    """The loads recorded in a database, newest first: when, source, provider and job,
    status, rows read / upserted / unchanged / bad, and seconds.

    With LOAD_ID (or the first characters of one), that load in full, with the rejects it
    quarantined.
    """
    with handle_errors():
        sink = _ledger_sink(target)
        con = _in_memory(sink.ledger(), target)
        try:
            if load_id is None:
                _print_loads(_loads(con, limit), as_json)
            else:
                load = _one_load(con, load_id, display_name(target))
                _print_load(load, sink.rejects(load), as_json)
        finally:
            con.close()


def _ledger_sink(target: str) -> LedgerSink:
    sink = sink_for(target)
    if not sink.capabilities.reads_ledger:
        raise SinkError(f"{display_name(target)}: {type(sink).__name__} keeps no ledger to list")
    return sink  # type: ignore[return-value]  # reads_ledger: a LedgerSink, as declared


def _in_memory(ledger: pa.Table | None, target: str) -> duckdb.DuckDBPyConnection:
    """The ledger (Arrow) as one DuckDB table of LEDGER_COLUMNS, its times in UTC without a
    zone; a column an older ledger lacks is NULL."""
    if ledger is None:
        raise SinkError(f"{display_name(target)}: no loads recorded (it has no {LEDGER} table)")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("_rl_ledger", ledger)
    columns = [
        f"{name if name in ledger.column_names else 'NULL'}::{_TYPES[kind]} AS {name}"
        for name, kind in LEDGER_COLUMNS
    ]
    con.execute(f"CREATE TABLE {LEDGER} AS SELECT {', '.join(columns)} FROM _rl_ledger")
    con.unregister("_rl_ledger")
    return con


def _rows(con: duckdb.DuckDBPyConnection, sql: str, args: list[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, args)
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _loads(con: duckdb.DuckDBPyConnection, limit: int) -> list[dict[str, Any]]:
    sql = f"SELECT {_COLUMNS} FROM {LEDGER} ORDER BY started_at DESC, load_id LIMIT ?"
    return [_with_seconds(load) for load in _rows(con, sql, [limit])]


def _one_load(con: duckdb.DuckDBPyConnection, wanted: str, path: str) -> dict[str, Any]:
    """The load whose id is `wanted`, or the only one whose id starts with it."""
    sql = f"SELECT {_COLUMNS} FROM {LEDGER} WHERE starts_with(load_id, ?) ORDER BY load_id"
    found = _rows(con, sql, [wanted.strip().lower()])
    if not found:
        raise SinkError(f"{path}: no load {wanted!r} (see resultloader history)")
    if len(found) > 1:
        raise SinkError(f"{path}: {len(found)} loads start with {wanted!r}; give more of the id")
    return _with_seconds(found[0])


def _with_seconds(load: dict[str, Any]) -> dict[str, Any]:
    started, finished = load["started_at"], load["finished_at"]
    seconds = None
    if isinstance(started, datetime) and isinstance(finished, datetime):
        seconds = round((finished - started).total_seconds(), 3)
    return {**load, "seconds": seconds}


# -- output -------------------------------------------------------------------------------------


def _print_loads(loads: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for load in loads:
            click.echo(_json(load))
        return
    header = ("load", "when (UTC)", "status", "read", "upserted", "unchanged", "bad", "seconds")
    table = [(header, "source")] + [(_line(load), _what(load)) for load in loads]
    widths = [max(len(cells[i]) for cells, _ in table) for i in range(len(header))]
    for cells, what in table:
        pairs = enumerate(zip(cells, widths, strict=True))
        padded = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in pairs]  # text left
        click.echo("  ".join(padded) + "  " + what)


def _line(load: dict[str, Any]) -> tuple[str, ...]:
    return (
        load["load_id"][:8],
        _when(load["started_at"]),
        load["status"] or "",
        _count(load["rows_read"]),
        _count(load["rows_upserted"]),
        _count(load["rows_unchanged"]),
        _count(load["bad_rows"]),
        "" if load["seconds"] is None else f"{load['seconds']:.2f}",
    )


def _what(load: dict[str, Any]) -> str:
    """What was loaded: the job (provider and id) and the source, and into which table."""
    what = load["source"]
    if load["job_id"]:
        what = f"{load['provider']} {load['job_id']}"
        what += f" ({load['job_status']})" if load["job_status"] else ""
    return f"{what} -> {load['target']}"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else ""


def _count(value: Any) -> str:
    return "" if value is None else f"{value:,}"


def _print_load(load: dict[str, Any], rejects: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        click.echo(_json({**load, "rejects": rejects}))
        return
    for name, value in load.items():
        if value is not None:
            shown = _when(value) if isinstance(value, datetime) else value
            click.echo(f"{name + ':':<16}{shown}")
    kept = len(rejects)
    bad = load["bad_rows"] or 0
    if kept:
        click.echo(f"rejects ({kept}, in {load['target']}{REJECTS_SUFFIX}):")
        for reject in rejects:
            where = f"line {reject['line']}"
            click.echo(f"  {where}: {reject['reason']}: {_short(reject['raw'])}")
    if bad > kept:
        click.echo(
            f"{bad - kept} bad rows not kept by this load: counted (--on-error skip), or "
            "kept already by an earlier load of the same source"
        )


def _short(raw: str | None, width: int = 80) -> str:
    text = " ".join((raw or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _json(value: dict[str, Any]) -> str:
    return orjson.dumps(value, default=str).decode()
