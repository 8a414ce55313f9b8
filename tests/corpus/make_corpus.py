"""Writes the bad-input corpus next to this script. Run it after changing a case:
`python tests/corpus/make_corpus.py`. (The 50 MB line and the 10,000-level nesting are made by
the tests at run time, not kept here.) Expected outcomes live in tests/test_bad_input.py."""

from __future__ import annotations

from pathlib import Path

OK_A = b'{"id":"a","output":1}\n'
CASES: dict[str, bytes] = {
    "malformed.jsonl": OK_A + b'{"id": "b", oops}\n{"id":"c","output":3}\n',
    "truncated_last_line.jsonl": OK_A + b'{"id":"b","output":{"x":',
    "array_line.jsonl": OK_A + b'[1,2]\n{"id":"c"}\n',
    "scalar_lines.jsonl": OK_A + b'42\n"text"\ntrue\nnull\n',
    "no_id.jsonl": OK_A + b'{"output":2,"metadata":{"m":1}}\n',
    "id_types.jsonl": (
        b'{"id":42,"output":"int"}\n{"id":-7}\n{"id":123456789012345678901234567890}\n'
        b'{"id":true}\n{"id":null}\n{"id":{"k":1}}\n{"id":["a"]}\n'
    ),
    "empty.jsonl": b"",
    "blank_lines.jsonl": b"\n\n   \n\t\n\r\n",
    "crlf.jsonl": b'{"id":"a","output":"x"}\r\n{"id":"b","metadata":{"k":"v"}}\r\n\r\n',
    "bom.jsonl": b'\xef\xbb\xbf{"id":"a","output":1}\n{"id":"b"}\n',
    "invalid_utf8.jsonl": OK_A + b'{"id":"b","output":"caf\xe9"}\n{"id":"c","output":"\xc3\xa9"}\n',
    "nan_infinity.jsonl": (
        OK_A + b'{"id":"b","output":NaN}\n{"id":"c","output":-Infinity}\n'
        b'{"id":"d","output":{"x":Infinity}}\n'
    ),
    "big_numbers.jsonl": (
        b'{"id":"big","output":123456789012345678901234567890123,'
        b'"metadata":{"neg":-98765432109876543210987654321}}\n'
        b'{"id":"dec","output":3.14159265358979323846264338327950288419716939937510,'
        b'"metadata":{"tiny":1.000000000000000000000000001,"e":1e400,"u64":18446744073709551616}}\n'
        b'{"id":"edge","output":[9223372036854775807,-9223372036854775808,0.1,-0.0]}\n'
    ),
    "duplicate_keys.jsonl": (
        b'{"id":"a","output":1,"output":2,"x":1,"x":{"y":2}}\n'
        b'{"id":"first","id":"second","output":"which id?"}\n'
        b'{"id":"m","metadata":{"k":1,"k":2}}\n'
    ),
    "output_types.jsonl": (
        b'{"id":"string","output":"text \\u00e9 \\ud83d\\ude00"}\n'
        b'{"id":"int","output":-12}\n{"id":"float","output":2.5e-3}\n'
        b'{"id":"true","output":true}\n{"id":"false","output":false}\n'
        b'{"id":"null","output":null}\n{"id":"missing"}\n'
        b'{"id":"array","output":[1,"two",null,[],{}]}\n'
        b'{"id":"object","output":{"a":{"b":[{"c":null}]}}}\n'
        b'{"id":"empty_string","output":""}\n'
    ),
    "missing_key_column.csv": b"name,output\nx,1\n",
    "ragged.csv": b"id,output,score\na,1,2\nb,2\nc,3,4,5\nd,4,5\n",
    "quoted_newlines.csv": b'id,output\na,"line1\nline2"\nb,"say ""hi"""\nc,"x,y"\n',
}


def main() -> None:
    here = Path(__file__).parent
    for name, data in CASES.items():
        (here / name).write_bytes(data)


if __name__ == "__main__":
    main()
