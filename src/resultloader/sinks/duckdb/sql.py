"""The SQL of DuckDBSink: tables, the native JSONL insert, the merge's comparison."""

from __future__ import annotations

from .. import LEDGER_COLUMNS

TYPES = {"text": "VARCHAR", "integer": "BIGINT", "timestamp": "TIMESTAMP"}  # LEDGER_COLUMNS'
# Internal tables live in DuckDB's `temp` catalog, always named with it (names.py)
_STAGE, _STAGE_REJECTS = "temp.main._rl_stage", "temp.main._rl_stage_rejects"
_DUPS, _SAME = "temp.main._rl_dups", "temp.main._rl_same"
_LINES = "_rl_lines"  # a registered Arrow view: DuckDB puts those in `temp` too
# What the native insert leaves to Python, so that every route reads a line the same way.
# Over a relation of lines (seq, maybe_inexact, raw), `maybe_inexact` from the byte scan of
# _duckdb_lines.maybe_inexact: 2 always goes to Python (a trailing comma, NaN or Infinity, which
# DuckDB accepts but JSON does not, or a negative exponent of 3+ digits, which DuckDB rounds to 0.0
# or a subnormal); 1 goes if this regex finds 15+ digits around a dot (or before an exponent), a
# decimal a double would round. Then ids that are numbers but not integers (number_key writes
# them), duplicate top-level keys and rows that may be nested too deeply. False alarms only
# cost Python time. The regex runs only on marked lines: RE2 over every byte would cost a
# second a million rows.
_NEEDS_PYTHON = "|".join(
    [*(f"[0-9]{{{k}}}\\.[0-9]{{{15 - k}}}" for k in range(1, 15)), "[0-9]{15}[.eE]"]
)
# Rows with more than 254 `[`/`{` may be nested deeper than the Python parser accepts
# (parse._rows.MAX_DEPTH); the native insert leaves them to Python, so both paths agree.
_BLANK = r"[ \t\r\n\x0b\x0c]*"  # what bytes.isspace() calls blank, as the Python parser does
_BATCH_ROWS = 4096  # Arrow record batches: DuckDB scans one per thread, so several a chunk

_TARGET_DDL = """CREATE TABLE IF NOT EXISTS {t} (
    id VARCHAR, output JSON, metadata JSON, url VARCHAR, extra JSON,
    _source VARCHAR, _loaded_at TIMESTAMP)"""
# A new table stores its long text columns with zstd: DuckDB's default for strings (trying
# dictionary and FSST compression on each segment) costs half the merge's time on a fresh
# table, 0.6-0.7 CPU seconds a million rows here, and zstd makes the file smaller still (1M
# rows: 41 MB against 49 MB). `id` keeps the default, which the merge's joins read fastest.
# A database file of an older storage version refuses zstd: the table then gets _TARGET_DDL.
_TARGET_DDL_ZSTD = _TARGET_DDL.replace(" JSON,", " JSON USING COMPRESSION zstd,").replace(
    "url VARCHAR,", "url VARCHAR USING COMPRESSION zstd,"
)
_REJECTS_DDL = """CREATE TABLE IF NOT EXISTS {r} (
    _source VARCHAR, line BIGINT, byte_offset BIGINT, reason VARCHAR, raw VARCHAR,
    _loaded_at TIMESTAMP, load_id VARCHAR);
-- a rejects table from before rejects carried their load: NULL for its old rows
ALTER TABLE {r} ADD COLUMN IF NOT EXISTS load_id VARCHAR"""
# Rejects of a re-run: those already kept for the same source, line, offset, reason and raw text
# are not added again, so re-running a load changes nothing; each keeps the load_id that first
# quarantined it.
_REJECTS_INSERT = """INSERT INTO {r}
    (_source, line, byte_offset, reason, raw, _loaded_at, load_id)
SELECT coalesce(s.source, $source), s.line, s.byte_offset, s.reason, s.raw, $now, $load_id
FROM {stage} s WHERE NOT EXISTS (
    SELECT 1 FROM {r} r WHERE r._source = coalesce(s.source, $source) AND r.line = s.line
        AND r.byte_offset = s.byte_offset AND r.reason = s.reason AND r.raw = s.raw)"""
_LEDGER_DDL = (
    "CREATE TABLE IF NOT EXISTS {ledger} ("
    + ", ".join(f"{name} {TYPES[kind]}" for name, kind in LEDGER_COLUMNS)
    + ")"
)
# JSON columns: DuckDB validates text cast to JSON; the native path's values are JSON already
# then the typed columns' values (sinks/columns.py), `{values}`
_STAGE_DDL = f"""CREATE OR REPLACE TEMP TABLE {_STAGE} (
    seq BIGINT, id VARCHAR, output JSON, metadata JSON, url VARCHAR, extra JSON{{values}})"""
_STAGE_REJECTS_DDL = f"""CREATE OR REPLACE TEMP TABLE {_STAGE_REJECTS} (
    line BIGINT, byte_offset BIGINT, reason VARCHAR, raw VARCHAR, source VARCHAR)"""

# Ids whose winning row equals the stored one. Rows are compared by DuckDB's 64-bit hash of
# their fields (order-sensitive, NULL distinct from ''): joining 8-byte hashes instead of the
# JSON keeps the join's memory small and off disk, and hashing costs a third of an MD5 (1M rows:
# 0.5 s against 1.4 s). A changed row passes for unchanged only if its hash equals its own old
# version's: odds of 2^-64 a changed row.
_SAME_SQL = f"""CREATE OR REPLACE TEMP TABLE {_SAME} AS
SELECT s.id FROM (
    SELECT s.id, hash(s.output, coalesce(s.metadata, '{{{{}}}}'::JSON), s.url, s.extra{{staged}})
        AS digest
    FROM {{winners}}) s
JOIN (SELECT id, hash(output, metadata, url, extra{{stored}}) AS digest FROM {{t}}) o
    ON o.id = s.id AND o.digest = s.digest"""

# The one definition of a line the native insert may store as DuckDB read it, over the
# relation (seq, raw, maybe_inexact) and the parsed columns `k` (top-level keys, NULL when the
# line is just its known fields) and `v` (the key, output, metadata and url). A route that
# hands lines to DuckDB applies it; the lines it refuses go to parse.parse_chunk, which stores
# them exactly or names their fault.
_NATIVE_ROW = """NOT coalesce(
    -- the first character of the compact JSON tells its type: '"' a string, '-' or a digit a
    -- number, 'n' null; the id must be a string or an integer (other numbers: number_key),
    -- the url a string or null
    CASE WHEN ascii(v[1]) = 34 THEN false
         WHEN ascii(v[1]) IN (45, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57)
         THEN NOT regexp_full_match(v[1], '-?[0-9]+')
         ELSE true END
    OR coalesce(ascii(v[4]) NOT IN (34, 110), false)
    -- CASE, not AND: DuckDB then runs the costly test only on the few rows that need it
    OR CASE WHEN len(k) > (v[1] IS NOT NULL)::INT + (v[2] IS NOT NULL)::INT
                          + (v[3] IS NOT NULL)::INT + (v[4] IS NOT NULL)::INT
            THEN len(k) <> len(list_distinct(k)) ELSE false END
    OR CASE WHEN maybe_inexact = 0 THEN false WHEN maybe_inexact = 2 THEN true
            ELSE regexp_matches(raw, '{needs_python}') END
    OR CASE WHEN strlen(raw) > 508  -- bytes: no UTF-8 decoding, and `[`/`{{` are one byte
            THEN strlen(raw) - strlen(replace(replace(raw, '[', ''), '{{', '')) > 254
            ELSE false END, true)"""

# The rows (seq, id, output, metadata, url, extra) of the lines the native insert stores, as
# `INSERT INTO stage` with the typed columns' values after them. No RETURNING: it would cost a
# third of the statement's time (DuckDB then inserts serially). The count of rows inserted
# says whether any line was left to Python; the report's counts of null outputs and missing
# metadata come from one scan of the stage at commit.
_NATIVE_ROWS = (
    """SELECT seq, v[1]->>'$' AS id,
    CASE WHEN v[2] <> 'null' THEN v[2] END AS output,
    CASE WHEN v[3] <> 'null' THEN v[3] END AS metadata,
    v[4]->>'$' AS url,
    CASE {usual_extra}
         WHEN len(k) > (v[1] IS NOT NULL)::INT + (v[2] IS NOT NULL)::INT
                     + (v[3] IS NOT NULL)::INT + (v[4] IS NOT NULL)::INT
         THEN json_merge_patch(raw, '{patch}') END AS extra
FROM (
    -- a line that reads exactly as its known fields written back compactly has no other key
    -- and none twice: its top-level keys (a second parse of the line) are not needed; nor
    -- those of a line that reads as the file's usual keys written back (`usual`)
    SELECT *, CASE WHEN usual OR (starts_with(raw, plain) AND strlen(raw) <= strlen(plain) + 1)
                   THEN NULL ELSE json_keys(raw) END AS k
    FROM (
        SELECT *, coalesce(starts_with(raw, usual_text)
                           AND strlen(raw) <= strlen(usual_text) + 1, false) AS usual
        FROM (
        SELECT *, concat('{{"{key}":', v[1], CASE WHEN v[2] IS NOT NULL THEN ',"output":' END,
                         v[2], CASE WHEN v[3] IS NOT NULL THEN ',"metadata":' END, v[3],
                         CASE WHEN v[4] IS NOT NULL THEN ',"url":' END, v[4], '}}') AS plain,
                  {usual_text} AS usual_text
        FROM (
            SELECT seq, raw, maybe_inexact,
                   json_extract(raw, ['$.{key}', '$.output', '$.metadata', '$.url'{paths}]) AS v
            FROM {lines} WHERE starts_with(raw, '{{') OR NOT regexp_full_match(raw, '{blank}')))))
WHERE """
    + _NATIVE_ROW
)


def native_rows_sql(key: str, usual: tuple[str, ...] = ()) -> str:
    """The native insert's rows (_NATIVE_ROWS) of a load keyed by `key`. `usual`: the
    top-level keys the file's lines have, in their order (plain names, read from a line): a
    line that reads exactly as those fields written back compactly gets the `extra` of the
    fields beyond the row's own written from the values already read, where
    json_merge_patch would parse and write the whole line again: the same text, DuckDB's
    writing of the same values, in the line's order."""
    core = [key, "output", "metadata", "url"]
    at = {name: i + 1 for i, name in reversed(list(enumerate(core)))}
    others = [name for name in usual if name not in at]
    at.update({name: len(core) + i + 1 for i, name in enumerate(others)})
    patch = "{" + ",".join(f'"{k}":null' for k in core) + "}"
    usual_text, usual_extra = "NULL::VARCHAR", ""
    if others:  # with no other key, `plain` covers the line already

        def written(names: list[str] | tuple[str, ...]) -> str:
            """The fields' compact text, in one concat: one copy of the long values."""
            fields = ", ',', ".join(f"""'"{name}":', v[{at[name]}]""" for name in names)
            return f"concat('{{', {fields}, '}}')"

        present = " AND ".join(f"v[{at[name]}] IS NOT NULL" for name in usual)
        usual_text = f"CASE WHEN {present} THEN {written(usual)} END"
        usual_extra = f"WHEN usual THEN {written(others)}"
    return _NATIVE_ROWS.format(
        lines=_LINES,
        key=key,
        patch=patch,
        needs_python=_NEEDS_PYTHON,
        blank=_BLANK,
        usual_text=usual_text,
        usual_extra=usual_extra,
        paths="".join(f", '$.{name}'" for name in others),
    )
