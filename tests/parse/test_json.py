"""JSON documents: which array's items are rows, one-object documents, rejects, exact numbers."""

from __future__ import annotations

import io

import orjson
import pytest

from resultloader import LoadOptions, ParseError, RowBatch
from resultloader.parse.json import document_row, parse_json
from tests.support.rows import merge_batches

BOM = b"\xef\xbb\xbf"


def parse(doc: str | bytes, **options: object) -> RowBatch:
    data = doc.encode() if isinstance(doc, str) else doc
    return merge_batches(parse_json(io.BytesIO(data), "doc.json", LoadOptions(**options)))  # type: ignore[arg-type]


def test_top_level_array_items_are_rows():
    got = parse('[{"id":"a","output":{"x":1},"metadata":{"m":2},"url":"u"},{"id":"b"}]')
    assert got.ids == ["a", "b"]
    assert got.outputs == ['{"x":1}', None]
    assert got.metadata == ['{"m":2}', None]
    assert got.urls == ["u", None]
    assert got.seq == [1, 2]


def test_data_array_items_are_rows_and_the_envelope_is_ignored():
    doc = {
        "namespace": "products",
        "request_id": "req_1",
        "status": "succeeded",
        "data": [{"id": "product_12345", "output": None}, {"id": "product_67890"}],
    }
    got = parse(orjson.dumps(doc))
    assert got.ids == ["product_12345", "product_67890"]
    assert got.extras == [None, None]


def test_data_array_after_other_keys_holding_arrays():
    got = parse(
        '{"warnings":[{"id":"not a row"}],"meta":{"data":[{"id":"nested"}]},"data":[{"id":"a"}]}'
    )
    assert got.ids == ["a"]


@pytest.mark.parametrize(
    ("doc", "path", "ids"),
    [
        ('{"results":[{"id":"a"},{"id":"b"}]}', "results", ["a", "b"]),
        ('{"a":{"b":[{"id":"x"}]},"b":[{"id":"wrong"}]}', "a.b", ["x"]),
        ('{"data":[{"id":"wrong"}],"rows":[{"id":"right"}]}', "rows", ["right"]),
        ('{"item":[{"id":"i"}]}', "item", ["i"]),
        (
            '{"pages":[{"rows":[{"id":"p1"}]},{"rows":[{"id":"p2"}]}]}',
            "pages.item.rows",
            ["p1", "p2"],
        ),
    ],
)
def test_explicit_items_path(doc, path, ids):
    assert parse(doc, items_path=path).ids == ids


def test_an_items_path_that_is_missing_is_a_clear_error():
    with pytest.raises(ParseError, match=r"no array at items path 'results'") as info:
        parse('{"data":[{"id":"a"}]}', items_path="results")
    assert 'items_path="results.items"' in str(info.value)  # Python's words: the API raised it
    assert "-1" not in str(info.value)


def test_an_items_path_to_an_empty_array_is_zero_rows():
    assert len(parse('{"results":[]}', items_path="results")) == 0


def test_a_document_that_is_one_object_is_one_row():
    got = parse('{"id":"doc-1","output":{"pages":[{"text":"hi"}]},"status":"completed"}')
    assert got.ids == ["doc-1"]
    assert got.outputs == ['{"pages":[{"text":"hi"}]}']
    assert got.extras == ['{"status":"completed"}']


def test_a_top_level_key_named_item_is_not_mistaken_for_array_items():
    # ijson names top-level array items "item": a key "item" must not look the same.
    got = parse('{"id":"doc","item":{"id":"inner"},"other":[{"id":"x"}]}')
    assert got.ids == ["doc"]
    assert orjson.loads(got.extras[0]) == {"item": {"id": "inner"}, "other": [{"id": "x"}]}


@pytest.mark.parametrize("on_error", ["fail", "skip", "quarantine"])
def test_an_object_without_id_but_with_arrays_suggests_an_items_path(on_error):
    # the rows are surely in the array: one bad row would hide that, so the load stops
    with pytest.raises(ParseError, match=r"arrays: 'item', 'more'\)\. .*pass items_path="):
        parse('{"item":[{"id":"a"}],"n":1,"more":[]}', on_error=on_error)


def test_an_object_without_id_or_arrays_is_one_bad_row():
    got = parse('{"name":"x","status":{"ok":true}}', on_error="quarantine")
    assert got.ids == []
    assert [(r.line, r.reason, r.raw) for r in got.rejects] == [
        (0, "no 'id' field", '{"name":"x","status":{"ok":true}}')
    ]


@pytest.mark.parametrize(
    "doc", ["[]", '{"data":[]}', "  [ ]  ", '{"status":"succeeded","data":[]}']
)
def test_an_empty_array_is_zero_rows_not_a_bad_row(doc):
    got = parse(doc)
    assert (len(got), got.rejects) == (0, [])


def test_non_object_items_are_rejects_with_their_item_number_and_raw_json():
    got = parse('[1,"x",[2],null,{"id":"ok"},{"noid":1},{"id":false}]', on_error="quarantine")
    assert got.ids == ["ok"]
    assert [(r.line, r.raw) for r in got.rejects] == [
        (1, "1"),
        (2, '"x"'),
        (3, "[2]"),
        (4, "null"),
        (6, '{"noid":1}'),
        (7, '{"id":false}'),
    ]
    assert got.rejects[1].reason == "not a JSON object (a string)"
    assert got.rejects[4].reason == "no 'id' field"


def test_on_error_fail_names_the_item_not_a_line():
    with pytest.raises(ParseError) as info:
        parse('[{"id":"a"},{"id":"b"},42]')
    message = str(info.value)
    assert "item 3 of the array" in message
    assert "line" not in message and "-1" not in message


@pytest.mark.parametrize(
    "doc", ['[{"id":"a"}', '{"data":[{"id":"a"}]', '[{"id":"a"}] trailing', "", "{"]
)
def test_a_broken_document_is_one_line_parse_error(doc):
    with pytest.raises(ParseError) as info:
        parse(doc)
    assert "invalid JSON document" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("doc", ["42", '"text"', "null", "true"])
def test_a_document_that_is_a_scalar_is_an_error(doc):
    with pytest.raises(ParseError, match="not an array or an object"):
        parse(doc)


def test_a_bom_is_accepted():
    assert parse(BOM + b'[{"id":"a"}]').ids == ["a"]
    assert parse(BOM + b'{"id":"solo"}').ids == ["solo"]


def test_big_integers_and_long_decimals_are_kept_exactly():
    doc = (
        '[{"id":123456789012345678901234567890,'
        '"output":{"n":123456789012345678901234567890,"d":0.1000000000000000055511151231257827,'
        '"e":1E+400,"small":1.5},"metadata":{"score":-98765432109876543210.123456789}}]'
    )
    got = parse(doc)
    assert got.ids == ["123456789012345678901234567890"]
    out = got.outputs[0]
    assert "123456789012345678901234567890" in out
    assert "0.1000000000000000055511151231257827" in out
    assert '"small":1.5' in out
    assert got.metadata == ['{"score":-98765432109876543210.123456789}']


def test_batches_are_bounded_by_batch_rows():
    doc = orjson.dumps([{"id": str(i)} for i in range(25)])
    batches = list(parse_json(io.BytesIO(doc), "d", LoadOptions(batch_rows=10)))
    assert [len(b) for b in batches] == [10, 10, 5]
    assert [b.ids[0] for b in batches] == ["0", "10", "20"]


def test_custom_key():
    got = parse('[{"custom_id":"c1","id":"ignored-as-key","output":1}]', key="custom_id")
    assert got.ids == ["c1"]
    assert got.extras == ['{"id":"ignored-as-key"}']


def test_document_row_keeps_the_bytes_of_the_document():
    text = b'{ "pages": [ {"n": 123456789012345678901234567890} ] }\n'
    batch = document_row(io.BytesIO(BOM + text), "d", "job-1")
    assert batch.ids == ["job-1"]
    assert batch.outputs == [text.decode().strip()]


def test_document_row_refuses_a_broken_document():
    with pytest.raises(ParseError, match="invalid JSON document"):
        document_row(io.BytesIO(b'{"pages": ['), "d", "job-1")


def test_rejects_count_towards_the_batch_size_so_memory_stays_bounded():
    doc = orjson.dumps(list(range(25)))
    opts = LoadOptions(batch_rows=10, on_error="skip")
    batches = list(parse_json(io.BytesIO(doc), "d", opts))
    assert [len(b.rejects) for b in batches] == [10, 10, 5]


# -- an item longer than max_line_bytes (issue 10 point 5) -------------------------------------

_PEAK_RSS_CHILD = """
import re, sys
import resultloader
from resultloader import LoadOptions, ParseError
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak RSS from here on, not the parent's from before exec
try:
    items_path = sys.argv[4] or None
    options = LoadOptions(max_line_bytes=1_000_000, on_error=sys.argv[3], items_path=items_path)
    resultloader.load(sys.argv[1], sys.argv[2], options=options)
    print("loaded")
except ParseError as exc:
    print(exc)
with open("/proc/self/status") as f:
    print(int(re.search(r"VmHWM:\\s+(\\d+) kB", f.read())[1]) // 1024)
"""


@pytest.mark.parametrize(
    ("shape", "items_path"),
    [("[{items}]", ""), ('{{"data":[{items}]}}', ""), ('{{"r":{{"rows":[{items}]}}}}', "r.rows")],
)
def test_an_item_over_max_line_bytes_is_refused_before_it_is_held(tmp_path, shape, items_path):
    import subprocess
    import sys

    head, tail = shape.format(items='{"id":"a"},{"id":"big","output":"\0"}').split("\0")
    path = tmp_path / "big.json"
    with path.open("w") as out:  # written in pieces: a big parent would blur the child's peak
        out.write(head)
        for _ in range(100):
            out.write("x" * 2**20)
        out.write(tail)
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS_CHILD, str(path), str(tmp_path / "r.duckdb"), "skip",
         items_path],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    message, peak_mb = done.stdout.splitlines()
    # held whole, the item alone is 100 MB (ijson peaked at ~830 MB); refused early, the
    # process stays near its size after imports
    assert int(peak_mb) < 250, peak_mb
    assert "item 2 of the array is longer than max_line_bytes (1,000,000 bytes)" in message
