"""Top-level JSON arrays read by DuckDB's reader (json_array.py), and the ijson fallback."""

from __future__ import annotations

import gzip
import io
import json
import tempfile

import pytest

import resultloader
from resultloader import LoadOptions, ParseError, RowBatch
from resultloader.parse import json_array
from resultloader.parse.json import parse_json
from resultloader.parse.jsonl import JsonlChunk, parse_chunk
from tests.support.duckdb_files import query

ROWS = [
    {"id": "a", "output": {"text": "two\nlines", "n": 123456789012345678901234567890}},
    {"id": 7, "output": None, "metadata": {"m": "é🙂"}},
    {"id": "b", "output": {"nested": [[1, {"k": []}], {}]}, "url": "https://x/1", "extra": 1},
    {"id": "a", "output": {"score": 0.5}, "metadata": {}},
]


@pytest.fixture
def spool_dir(tmp_path, monkeypatch):
    """Spooled copies go here, so a test can see that none is left behind."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def items(doc: bytes) -> list[tuple[str, int, str]]:
    """What parse_json yields for a top-level array: (kind, first item number, text)."""
    out = []
    for part in parse_json(io.BytesIO(doc), "d.json", LoadOptions(), as_lines=True):
        if isinstance(part, JsonlChunk):
            out.append(("chunk", part.first_line, part.data.decode()))
        else:
            assert isinstance(part, RowBatch)
            out.append(("rows", part.seq[0], ",".join(map(str, part.ids))))
    return out


def test_pretty_printed_items_land_exactly_like_the_same_rows_as_jsonl(write, tmp_path, spool_dir):
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS)
    lines += '{"id":"d","output":{"d":0.1000000000000000055511151231257827},"id2":1}\n'
    doc = "[\n" + ",\n".join(json.dumps(r, indent=2) for r in ROWS)
    doc += ',\n  {"id": "d",\n "output": {"d": 0.1000000000000000055511151231257827}, "id2": 1}\n]'
    resultloader.load(write("r.jsonl", lines), tmp_path / "l.duckdb")
    report = resultloader.load(write("r.json", doc), tmp_path / "j.duckdb")
    sql = "SELECT id, output, metadata, url, extra FROM results ORDER BY id"
    assert query(tmp_path / "j.duckdb", sql) == query(tmp_path / "l.duckdb", sql)
    assert (report.rows_read, report.rows_upserted, report.duplicates) == (5, 4, 1)
    decimal = query(tmp_path / "j.duckdb", "SELECT output FROM results WHERE id = 'd'")
    assert decimal == [('{"d":0.1000000000000000055511151231257827}',)]
    assert list(spool_dir.iterdir()) == []


def test_items_keep_their_text_and_number(monkeypatch):
    monkeypatch.setattr(json_array, "CHUNK_BYTES", 1)  # a chunk a batch
    monkeypatch.setattr(json_array, "_BATCH_ITEMS", 2)
    doc = b'\xef\xbb\xbf [ {"id":"a",\n "x": 1.50} , 5,\n"s", {"id":"b","y":[1, 2]} ,{"id":"c"}]'
    assert items(doc) == [
        ("chunk", 1, '{"id":"a",  "x": 1.50}\n5\n'),
        ("chunk", 3, '"s"\n{"id":"b","y":[1, 2]}\n'),
        ("chunk", 5, '{"id":"c"}\n'),
    ]


BIG = 40 * 2**20  # an item DuckDB's reader will not hold (its limit is 16 to 32 MB)


def test_an_item_too_large_for_the_native_reader_goes_to_ijson_from_there(monkeypatch):
    monkeypatch.setattr(json_array, "CHUNK_BYTES", 1)
    monkeypatch.setattr(json_array, "_BATCH_ITEMS", 2)
    rows: list[dict[str, object]] = [{"id": f"r{i}"} for i in range(1, 9)]
    rows[4]["output"] = "x" * BIG  # item 5
    refused = []
    native_items = json_array.native_items

    def watched(path: str, source: str, memory: int):  # the real reader, noting where it gave up
        try:
            yield from native_items(path, source, memory)
        except json_array.Refused:
            refused.append(True)
            raise

    monkeypatch.setattr("resultloader.parse.json.native_items", watched)
    got = items(json.dumps(rows).encode())
    assert refused == [True]
    # every item once, in order, each chunk numbered by its first item, wherever DuckDB stopped
    ids, expected_first = [], 1
    for kind, first, text in got:
        assert (kind, first) == ("chunk", expected_first)
        lines = text.splitlines()
        ids += [json.loads(line)["id"] for line in lines]
        expected_first += len(lines)
    assert ids == [f"r{i}" for i in range(1, 9)]


def test_an_item_too_large_still_loads_every_row(write, tmp_path):
    rows: list[object] = [{"id": f"r{i}", "output": i} for i in range(1, 8)]
    rows[3] = {"id": "r4", "output": "y" * BIG}
    rows[5] = 42  # item 6: not a row
    doc = write("r.json", json.dumps(rows))
    with pytest.raises(ParseError, match="item 6 of the array: not a JSON object"):
        resultloader.load(doc, tmp_path / "f.duckdb")
    report = resultloader.load(doc, tmp_path / "q.duckdb", on_error="quarantine")
    assert (report.rows_read, report.bad_rows) == (6, 1)
    got = query(tmp_path / "q.duckdb", "SELECT id, length(output) FROM results ORDER BY id")
    assert got == [("r1", 1), ("r2", 1), ("r3", 1), ("r4", BIG + 2), ("r5", 1), ("r7", 1)]
    rejects = query(tmp_path / "q.duckdb", "SELECT line, byte_offset, raw FROM results_rejects")
    assert rejects == [(6, -1, "42")]


def test_a_document_broken_after_many_items_fails_whole_and_leaves_no_spool(
    write, tmp_path, monkeypatch, spool_dir
):
    monkeypatch.setattr(json_array, "CHUNK_BYTES", 64)
    doc = "[" + ",".join(json.dumps({"id": f"r{i}"}) for i in range(2000)) + ', {"id": "x"'
    with pytest.raises(ParseError, match="invalid JSON document") as info:
        resultloader.load(write("r.json", doc), tmp_path / "b.duckdb")
    assert "\n" not in str(info.value)
    assert query(tmp_path / "b.duckdb", "SELECT count(*) FROM results") == [(0,)]
    assert list(spool_dir.iterdir()) == []


def test_a_gzipped_document_is_spooled_decompressed(write, tmp_path, spool_dir):
    doc = json.dumps([{"id": f"r{i}", "output": {"i": i}} for i in range(5000)]).encode()
    path = tmp_path / "r.json.gz"
    path.write_bytes(gzip.compress(doc))
    report = resultloader.load(path, tmp_path / "g.duckdb")
    assert (report.rows_read, report.rows_upserted) == (5000, 5000)
    got = query(tmp_path / "g.duckdb", "SELECT output FROM results WHERE id = 'r4999'")
    assert got == [('{"i":4999}',)]
    assert list(spool_dir.iterdir()) == []


def rows_of(doc: bytes, as_lines: bool, **options: object) -> tuple[object, ...]:
    """Everything parse_json makes of `doc`, chunks parsed the way non-JSONL sinks parse them."""
    opts = LoadOptions(**options)  # type: ignore[arg-type]
    batch = RowBatch()
    for part in parse_json(io.BytesIO(doc), "d.json", opts, as_lines=as_lines):
        batch.extend(parse_chunk(part, opts) if isinstance(part, JsonlChunk) else part)
    rejects = [(r.line, r.offset, r.reason) for r in batch.rejects]
    return batch.ids, batch.outputs, batch.metadata, batch.urls, batch.extras, batch.seq, rejects


BIG_HEAD = json.dumps({"blob": "h" * (3 << 20), "list": [1, 2]})  # more than ijson's 1 MiB read


@pytest.mark.parametrize(
    ("doc", "options"),
    [
        ('{"object":"list","data":[{"id":"a","output":1},{"id":"b"}],"has_more":false}', {}),
        ('{"data":[{"id":"a"}, 5, {"nokey":1}, {"id":"b","x":[1.25]}]}', {"on_error": "skip"}),
        ('{"data":[]}', {}),
        ('{"id":"solo","output":{"n":1}}', {}),
        ('{"meta":' + BIG_HEAD + ',"data":[{"id":"a"},{"id":"b","metadata":{"m":1}}]}', {}),
        (
            '{"job":{"rows":[{"id":"x"},{"id":"y"}]},"rows":[{"id":"no"}]}',
            {"items_path": "job.rows"},
        ),
        ('{"a":[{"b":[{"id":"1"}]},{"b":[{"id":"2"}]}]}', {"items_path": "a.item.b"}),
        ('\ufeff{"data":[{"id":"bom"}]}', {}),
    ],
)
def test_a_nested_items_array_reads_the_same_by_both_paths(doc, options):
    """`as_lines` builds a `data` array's or an items path's items with ijson's C backend,
    after a first pass finds the array; the result is what the event loop makes."""
    assert rows_of(doc.encode(), True, **options) == rows_of(doc.encode(), False, **options)


@pytest.mark.parametrize(
    "doc", ['{"data":[{"id":"a"},{"id":"b"}', '{"data":[{"id":"a"}]} junk', '{"meta": {"x": ]}']
)
def test_a_broken_document_with_a_data_array_is_one_parse_error(doc):
    with pytest.raises(ParseError, match="invalid JSON document"):
        rows_of(doc.encode(), True)


def test_a_data_array_comes_as_jsonl_chunks_numbered_by_item():
    doc = b'{"meta":' + BIG_HEAD.encode() + b',"data":[{"id":"a"},{"id":"b","n":1}],"more":1}'
    parts = list(parse_json(io.BytesIO(doc), "d.json", LoadOptions(), as_lines=True))
    assert [(type(p).__name__, getattr(p, "first_line", None)) for p in parts] == [
        ("JsonlChunk", 1)
    ]
    assert parts[0].data == b'{"id":"a"}\n{"id":"b","n":1}\n'  # type: ignore[union-attr]
