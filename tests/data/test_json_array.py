"""A ``.json`` file holding one JSON array is streamed item by item (``reader.json_array_items``): the items are
those ``json.loads`` of the whole text gives, for every way the bytes can be cut into chunks, and a malformed
array is reported with json's own reason and position, plus the item it broke in."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rewardkit.data.importers.errors import ImportFailed
from rewardkit.data.importers.json_array import MalformedArray, json_array_items
from rewardkit.data.importers.reader import iter_records
from rewardkit.records import RecordError

BOM = b"\xef\xbb\xbf"
CHUNK_SIZES = (1, 2, 3, 5, 7, 16, 17, 64, 1 << 20)  # 1 byte a chunk cuts every token, escape and character


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def streamed(data: bytes, size: int) -> list[object]:
    return list(json_array_items(pieces(data, size)))


def streamed_error(data: bytes, size: int) -> str:
    with pytest.raises(MalformedArray) as caught:
        streamed(data, size)
    return str(caught.value)


VALID = {
    "empty": b"[]",
    "empty, spaced": b" \n[ \n\t ]\r\n ",
    "brackets and commas in strings": b'[{"a": "x,]\\"[}{", "b": [1, [2, "]", {"c": []}]]}, "],[", ",", "\\\\"]',
    "whitespace and newlines between items": b'[\n  {"a": 1}\n\n  ,\n\t{"b": 2} ,{"c":3}\n]\n',
    "numbers cut anywhere": b"[12345678901234567890, -0.5e-10, 1E+300, 0, -7, 3.25, Infinity, -Infinity, NaN]",
    "literals and nesting": b'[true, false, null, [[[]]], {}, [{}], {"k": {"k": {"k": null}}}]',
    "escapes and non-ASCII": '["caf\\u00e9 \\ud83d\\ude00 \\n\\t", "café 😀 €", {"ключ": "значение"}]'.encode(),
    "BOM": BOM + b'[{"prompt": "p", "response": "r"}]',
    "non-object items": b'[{"a": 1}, "text", 3, [1], null]',
}


@pytest.mark.parametrize("name", list(VALID))
@pytest.mark.parametrize("size", CHUNK_SIZES)
def test_the_items_are_json_loads_of_the_whole_text_item_by_item(name: str, size: int) -> None:
    data = VALID[name]
    want = json.loads(data.decode("utf-8-sig"))
    got = streamed(data, size)
    assert len(got) == len(want)
    for a, b in zip(got, want):  # NaN != NaN: compared as JSON text
        assert json.dumps(a) == json.dumps(b)


# text: (the item the error names, json.loads's own message for the same text, worked out by hand too)
MALFORMED = {
    b"": ("item 1", "Expecting value: line 1 column 1 (char 0)"),
    b"[": ("item 1", "Expecting value: line 1 column 2 (char 1)"),
    b'[{"a": 1}, {"b": 2}': ("item 2", "Expecting ',' delimiter: line 1 column 20 (char 19)"),  # truncated
    b'[{"a": 1}, {"b": ': ("item 2", "Expecting value: line 1 column 18 (char 17)"),
    b'[{"a": 1}, {"b": "tw': ("item 2", "Unterminated string starting at: line 1 column 18 (char 17)"),
    b"[1, 2, 3,]": ("item 4", "Expecting value: line 1 column 10 (char 9)"),
    b'[{"a": 1}\n {"b": 2}]': ("item 1", "Expecting ',' delimiter: line 2 column 2 (char 11)"),
    b'[\n {"a": 1},\n {"b" 2}\n]': ("item 2", "Expecting ':' delimiter: line 3 column 7 (char 19)"),
    b'["a\nb"]': ("item 1", "Invalid control character at: line 1 column 4 (char 3)"),
    b'[1, "\\u12"]': ("item 2", "Invalid \\uXXXX escape: line 1 column 7 (char 6)"),
    b"[1, tru]": ("item 2", "Expecting value: line 1 column 5 (char 4)"),
    b"[1] x": ("after the array's closing ']'", "Extra data: line 1 column 5 (char 4)"),
    b'[{"a": 1}]\n[{"b": 2}]\n': ("after the array's closing ']'", "Extra data: line 2 column 1 (char 11)"),
    b"[1],": ("after the array's closing ']'", "Extra data: line 1 column 4 (char 3)"),
    BOM + b"[\n1,\n2 3]": (
        "item 2",
        "Expecting ',' delimiter: line 3 column 3 (char 7)",
    ),  # chars after the BOM, as utf-8-sig
}


@pytest.mark.parametrize("data", list(MALFORMED), ids=[repr(k)[:30] for k in MALFORMED])
def test_a_malformed_array_names_the_item_and_json_loads_reason_and_position(data: bytes) -> None:
    where, reason = MALFORMED[data]
    with pytest.raises(json.JSONDecodeError) as loads:
        json.loads(data.decode("utf-8-sig"))
    assert str(loads.value) == reason  # the hand-written position is json's
    for size in CHUNK_SIZES:
        assert streamed_error(data, size) == f"{where}: not valid JSON: {reason}", size


def test_the_items_before_an_error_are_yielded_first() -> None:
    items = json_array_items(pieces(b'[{"a": 1}, {"b": 2}, {"c": ]', 4))
    assert next(items) == {"a": 1} and next(items) == {"b": 2}
    with pytest.raises(
        MalformedArray, match=r"^item 3: not valid JSON: Expecting value: line 1 column 28 \(char 27\)$"
    ):
        next(items)


@pytest.mark.parametrize("size", CHUNK_SIZES)
def test_bytes_that_are_not_utf8_are_named_by_byte_position_and_item(size: int) -> None:
    """Byte 24 of the file (counted from 0, the BOM's 3 bytes included) is 0xE9, latin-1's é; the items before it
    are read."""
    data = BOM + '[{"a": 1}, {"b": "caf\xe9"}]'.encode("latin-1")
    assert data[24:25] == b"\xe9"
    items = json_array_items(pieces(data, size))
    assert next(items) == {"a": 1}
    with pytest.raises(MalformedArray, match=r"^item 2: not UTF-8: invalid byte at byte 24$"):
        next(items)
    assert streamed_error(b"[1]\n\xff", size) == "after the array's closing ']': not UTF-8: invalid byte at byte 4"
    assert streamed_error(b"[1, 2, \xc3", size) == "item 3: not UTF-8: invalid byte at byte 7"  # cut inside a character


def test_the_array_is_read_as_a_stream_not_whole() -> None:
    """The first item comes out after the first chunk: the rest of the (here endless) array is not read."""
    read = 0

    def endless() -> Iterator[bytes]:
        nonlocal read
        yield b"["
        while True:
            read += 1
            yield b'{"prompt": "p", "response": "r"},\n'

    items = json_array_items(endless())
    assert [next(items) for _ in range(3)] == [{"prompt": "p", "response": "r"}] * 3
    assert read <= 4


def test_an_item_much_larger_than_a_chunk_is_read_whole() -> None:
    big = {"prompt": "p" * 100_000, "response": ["r" * 1000] * 50}
    data = json.dumps([{"a": 1}, big, {"z": 2}]).encode()
    assert streamed(data, 1000) == [{"a": 1}, big, {"z": 2}]


def test_json_arrays_through_the_reader_plain_gzipped_with_bom_and_broken(tmp_path: Path) -> None:
    rows = [{"prompt": "a, [b]", "response": "]"}, "not an object", {"prompt": "c", "response": "d"}]
    text = json.dumps(rows, indent=2).encode()
    (tmp_path / "rows.json").write_bytes(BOM + text)
    with gzip.open(tmp_path / "rows.json.gz", "wb") as f:
        f.write(text)
    for name in ("rows.json", "rows.json.gz"):
        got = list(iter_records(tmp_path / name))
        assert [str(loc) for loc, _ in got] == [f"{tmp_path / name}, item {i}" for i in (1, 2, 3)]
        assert got[0][1] == rows[0] and got[2][1] == rows[2]
        assert isinstance(got[1][1], RecordError) and got[1][1].message == "expected a JSON object, got str"
    (tmp_path / "cut.json").write_bytes(text[:-10])  # truncated inside the third item
    with pytest.raises(ImportFailed) as caught:
        list(iter_records(tmp_path / "cut.json"))
    assert str(caught.value).startswith(f"{tmp_path / 'cut.json'}, item 3: not valid JSON: ")
    (tmp_path / "lines.json").write_text('{"prompt": "p", "response": "r"}\n{"prompt": "q", "response": "s"}\n')
    assert [str(loc) for loc, _ in iter_records(tmp_path / "lines.json")] == [
        f"{tmp_path / 'lines.json'}, line {i}" for i in (1, 2)
    ]


def test_an_array_nested_deeper_than_the_stack_is_an_error_not_a_crash() -> None:
    deep = b"[" + b"[" * 200_000 + b"]" * 200_000 + b"]"
    with pytest.raises(MalformedArray, match="item 1: not valid JSON: nested too deeply"):
        list(json_array_items([deep]))
