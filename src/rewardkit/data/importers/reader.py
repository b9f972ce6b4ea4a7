"""Stream records (dicts) out of JSONL, gzipped JSONL, CSV, Parquet and local Hugging Face ``datasets``
folders, one at a time, so an import's memory does not grow with the file.

- ``.jsonl`` / ``.json`` (one object a line) and ``.jsonl.gz`` / ``.json.gz``: read line by line; a line
  that is not UTF-8, not JSON or not an object is reported (not raised) so the importer can skip it. A
  ``.json`` file that holds one JSON array of objects (``json.dump(rows)``) is read as that array, item by
  item (``json_array_items``: memory follows the largest item, not the file).
- ``.csv``: a header row, then one record a row (``csv.DictReader``). Empty cells are missing values; a
  cell holding a JSON list of chat messages (``[{"role": ..., "content": ...}]``) is decoded, so the
  conversational formats survive a round trip through CSV.
- ``.parquet``: ``pyarrow.parquet.ParquetFile.iter_batches`` (1,000 rows at a time).
- a folder written by ``datasets.Dataset.save_to_disk``: its ``.arrow`` files (Arrow IPC streams, listed
  in ``state.json``) read batch by batch with ``pyarrow.ipc``; a ``DatasetDict`` folder
  (``dataset_dict.json``) yields every split in the order it lists them. ``datasets`` itself is not needed.

Every record comes with a ``Location`` (file and line, or row) for error messages.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from rewardkit.data.importers.errors import ImportFailed, Location
from rewardkit.data.types import RecordError

ReadItem = tuple[Location, dict[str, Any] | RecordError]

BATCH_ROWS = 1000


_KIND_OF_SUFFIX = {".jsonl": "jsonl", ".json": "jsonl", ".jsonl.gz": "jsonl", ".json.gz": "jsonl", ".csv": "csv", ".parquet": "parquet"}
DATA_SUFFIXES = tuple(_KIND_OF_SUFFIX)
"""The file names the reader takes (import, ``train/eval --data`` pair files, ``rewardkit score`` input)."""


def data_suffix(name: str) -> str:
    """The data suffix ``name`` ends with, longest first ("run.v2.jsonl.gz" -> ".jsonl.gz"), "" for none."""
    lowered = name.lower()
    return next((s for s in sorted(DATA_SUFFIXES, key=len, reverse=True) if lowered.endswith(s)), "")


def dataset_splits(folder: Path) -> list[str]:
    """The splits of a saved ``DatasetDict`` folder, in its ``dataset_dict.json`` order; [] for anything else."""
    index = folder / "dataset_dict.json"
    return [str(s) for s in json.loads(index.read_text(encoding="utf-8"))["splits"]] if index.is_file() else []


def file_kind(path: Path) -> str:
    """jsonl | csv | parquet | hf, from the path (a folder is a Hugging Face datasets folder)."""
    if path.is_dir():
        return "hf"
    suffix = data_suffix(path.name)
    if suffix:
        return _KIND_OF_SUFFIX[suffix]
    raise ImportFailed(f"{path}: unknown file type (expected .jsonl, .jsonl.gz, .csv, .parquet or a datasets folder)")


def check_readable(path: Path) -> None:
    if not path.exists():
        raise ImportFailed(f"{path}: no such file or folder")
    file_kind(path)
    if path.is_file():
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise ImportFailed(f"{path}: cannot read: {exc.strerror}") from exc


def iter_records(path: Path) -> Iterator[ReadItem]:
    """Yield ``(location, record)`` for every record of ``path``; ``record`` is a ``RecordError`` when the
    line itself is unusable."""
    kind = file_kind(path)
    try:
        if kind == "jsonl":
            yield from _jsonl(path)
        elif kind == "csv":
            yield from _csv(path)
        elif kind == "parquet":
            yield from _parquet(path)
        else:
            yield from _hf_folder(path)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:  # truncated gzip, unreadable file
        raise ImportFailed(f"{path}: cannot read: {exc}") from exc


def _open_binary(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")  # type: ignore[return-value]


def _json_array(path: Path) -> Iterator[ReadItem] | None:
    """A ``.json`` file holding one JSON array of records (``json.dump(rows)``, pandas ``to_json(orient="records")``)
    rather than one object a line: its items, numbered from 1, streamed (``json_array_items``); None when the
    file is JSON lines. A malformed array is an ImportFailed naming the item and the position, raised when the
    stream reaches it (after the items before it)."""
    if not path.name.lower().endswith((".json", ".json.gz")):
        return None
    with _open_binary(path) as fh:
        head = fh.read(4096).decode("utf-8-sig", errors="replace").lstrip()
    if not head.startswith("["):
        return None
    return _array_records(path)


def _array_records(path: Path) -> Iterator[ReadItem]:
    with _open_binary(path) as fh:
        try:
            for i, item in enumerate(json_array_items(iter(lambda: fh.read(ARRAY_READ_BYTES), b"")), start=1):
                yield Location(str(path), "item", i), item if isinstance(item, dict) else RecordError("(item)", f"expected a JSON object, got {type(item).__name__}")
        except MalformedArray as exc:
            raise ImportFailed(f"{path}, {exc}") from None


ARRAY_READ_BYTES = 1 << 20
"""Bytes per read of a JSON array: the array is parsed from a buffer of about this size (or of its largest item),
never from the whole file (``json.loads(fh.read())`` held a few-GB array several times over)."""
_BOM = b"\xef\xbb\xbf"
_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace
_NEAR_END = 16
"""A value that ends, or an error found, this close to the end of the text read so far may be the buffer's cut,
not the file's (``12`` of ``12.5``, ``tr`` of ``true``, ``\\u12`` of ``\\u1234``): more is read first."""


class MalformedArray(ValueError):
    """A JSON array that is not valid JSON: where (the item being read, or after the array) and json's own
    reason and position, e.g. "item 3: not valid JSON: Expecting ',' delimiter: line 2 column 5 (char 17)"."""


def json_array_items(chunks: Iterable[bytes]) -> Iterator[Any]:
    """The items of the JSON array whose UTF-8 bytes come in ``chunks`` (of any sizes), one at a time:
    ``json.JSONDecoder.raw_decode`` over a sliding window of the text, so memory follows the largest item, not
    the array. Yields what ``json.loads`` of the whole text holds; raises MalformedArray where it raises, with
    its reason and position (a byte position for bytes that are not UTF-8), also for anything but whitespace
    after the closing ``]``. A byte-order mark before the array is skipped, as ``utf-8-sig`` does."""
    text = _Window(_utf8_text(chunks))
    decode = json.JSONDecoder().raw_decode
    text.skip_space()
    if text.peek() != "[":
        raise text.error("expected a JSON array ('[')" if text.peek() else "Expecting value")
    text.i += 1
    text.skip_space()
    if text.peek() == "]":
        text.i += 1
    else:
        while True:
            yield text.value(decode)
            text.skip_space()
            mark = text.peek()
            if mark == "]":
                text.i += 1
                break
            if mark != ",":  # also the end of the text: json.loads says the same
                raise text.error("Expecting ',' delimiter")
            text.i += 1
            text.item += 1
            text.skip_space()
    text.where = "after the array's closing ']'"
    text.skip_space()
    if text.peek() or text.bad_byte is not None:
        raise text.error("Extra data")


class _Window:
    """The text of a stream from the first character not yet parsed (``buf[i]``) to what has been read, and
    enough about the text dropped before it (characters, newlines, where the last line began) to name a
    position as json does."""

    def __init__(self, source: Iterator[str]) -> None:
        self.source = source
        self.buf, self.i, self.eof = "", 0, False
        self.base = self.lines = self.line_start = 0
        self.item = 1
        self.where = ""
        self.bad_byte: int | None = None  # where the text stopped being UTF-8: the text read ends there

    def more(self) -> bool:
        """Drop the parsed text and read at least as much again as is held unparsed (one chunk at least): an
        item larger than a chunk is parsed a few times, not once per chunk. False at the end of the stream."""
        if self.eof:
            return False
        dropped = self.buf.count("\n", 0, self.i)
        if dropped:
            self.lines += dropped
            self.line_start = self.base + self.buf.rfind("\n", 0, self.i) + 1
        kept = self.buf[self.i:]
        self.base += self.i
        pieces, size = [kept], 0
        while size < max(1, len(kept)):
            try:
                piece = next(self.source)
            except StopIteration:
                self.eof = True
                break
            except _NotUtf8 as exc:  # reported only if the parse needs text past it (see error)
                self.bad_byte, self.eof = exc.at, True
                break
            pieces.append(piece)
            size += len(piece)
        self.buf, self.i = "".join(pieces), 0
        return size > 0

    def peek(self) -> str:
        """The next character, '' at the end."""
        while self.i >= len(self.buf) and self.more():
            pass
        return self.buf[self.i:self.i + 1]

    def skip_space(self) -> None:
        while True:
            self.i = _SPACE.match(self.buf, self.i).end()  # type: ignore[union-attr]  # matches the empty string
            if self.i < len(self.buf) or not self.more():
                return

    def value(self, decode: Any) -> Any:
        """The JSON value at ``i``, read whole: when it, or its error, reaches the end of what is read (an
        unterminated string reaches it from where it starts), more is read and it is decoded again."""
        while True:
            try:
                value, end = decode(self.buf, self.i)
            except json.JSONDecodeError as exc:
                cut = exc.pos >= len(self.buf) - _NEAR_END or exc.msg.startswith("Unterminated string")
                if cut and not self.eof:
                    self.more()
                    continue
                raise self.error(exc.msg, exc.pos, cut) from None
            except RecursionError:  # nested deeper than Python's stack (json.loads raises the same)
                raise self.error("nested too deeply to read") from None
            if not self.eof and end >= len(self.buf) - _NEAR_END:
                self.more()
                continue
            self.i = end
            return value

    def place(self) -> str:
        return self.where or f"item {self.item}"

    def error(self, reason: str, at: int | None = None, cut: bool = False) -> MalformedArray:
        """json's message for an error at ``buf[at]`` (default ``i``): 'reason: line L column C (char P)'; the
        bytes that are not UTF-8 when the error is where the text read ends (``cut``: may be, see ``value``)."""
        at = self.i if at is None else at
        if self.bad_byte is not None and (cut or at >= len(self.buf)):
            return MalformedArray(f"{self.place()}: not UTF-8: invalid byte at byte {self.bad_byte}")
        last = self.buf.rfind("\n", 0, at)
        line = self.lines + self.buf.count("\n", 0, at) + 1
        column = at - last if last >= 0 else self.base + at - self.line_start + 1
        return MalformedArray(f"{self.place()}: not valid JSON: {reason}: line {line} column {column} (char {self.base + at})")


class _NotUtf8(ValueError):
    def __init__(self, at: int) -> None:
        super().__init__(f"invalid UTF-8 at byte {at}")
        self.at = at


def _utf8_text(chunks: Iterable[bytes]) -> Iterator[str]:
    """The text of UTF-8 byte chunks (a character may be split between two), a leading BOM skipped; _NotUtf8,
    after the text before it, names the first bad byte's position in the whole stream, the BOM counted."""
    source = iter(chunks)
    head = b""
    for chunk in source:  # the BOM's three bytes may come in more than one chunk
        head += chunk
        if len(head) >= len(_BOM):
            break
    fed = len(_BOM) if head.startswith(_BOM) else 0  # bytes given to the decoder so far, and the BOM
    decoder = codecs.getincrementaldecoder("utf-8")()
    for piece in itertools.chain([head[fed:]], source, [None]):
        pending = decoder.getstate()[0]  # the start of a character split by the last chunk
        try:
            text = decoder.decode(piece or b"", final=piece is None)
        except UnicodeDecodeError as exc:
            # the text before the bad byte first: the items in it are read, and the error names the item it is in
            yield (pending + (piece or b""))[: exc.start].decode("utf-8")
            raise _NotUtf8(fed - len(pending) + exc.start) from None
        fed += len(piece or b"")
        if text:
            yield text


def _jsonl(path: Path) -> Iterator[ReadItem]:
    array = _json_array(path)
    if array is not None:
        yield from array
        return
    with _open_binary(path) as fh:
        for number, raw in enumerate(fh, start=1):
            loc = Location(str(path), "line", number)
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # a byte-order mark some editors write first
            except UnicodeDecodeError as exc:
                yield loc, RecordError("(line)", f"invalid UTF-8 at byte {exc.start}")
                continue
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield loc, RecordError("(line)", f"malformed JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(record, dict):
                yield loc, RecordError("(line)", f"expected a JSON object, got {type(record).__name__}")
                continue
            yield loc, record


def _csv_cell(value: str | None) -> Any:
    if value is None or value == "":
        return None
    stripped = value.lstrip()
    if stripped.startswith("[{"):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value
        if isinstance(decoded, list) and all(isinstance(m, dict) and "role" in m for m in decoded):
            return decoded
    return value


def _csv(path: Path) -> Iterator[ReadItem]:
    # surrogateescape keeps reading past bad bytes; a cell holding an escaped byte is then reported.
    with path.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            loc = Location(str(path), "line", reader.line_num)
            bad = next((k for k, v in row.items() if isinstance(v, str) and _has_surrogates(v)), None)
            if bad is not None:
                yield loc, RecordError(str(bad), "invalid UTF-8")
                continue
            if None in row:  # more cells than header columns
                yield loc, RecordError("(row)", f"{len(row[None]) + len(row) - 1} cells but the header has {len(reader.fieldnames or [])} columns")  # type: ignore[index]
                continue
            yield loc, {k: _csv_cell(v) for k, v in row.items()}


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _parquet(path: Path) -> Iterator[ReadItem]:
    import pyarrow.parquet as pq

    try:
        # buffered, not pre-buffered: a file written as one row group is otherwise read whole before its first batch
        parquet = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
    except Exception as exc:  # pyarrow raises ArrowInvalid for a file that is not Parquet
        raise ImportFailed(f"{path}: not a readable Parquet file: {exc}") from exc
    number = 0
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
        for record in batch.to_pylist():
            yield Location(str(path), "row", number), record
            number += 1


def _hf_arrow_files(folder: Path) -> list[tuple[str, Path]]:
    """``(label, arrow file)`` in order for a saved Dataset or DatasetDict folder."""
    splits = dataset_splits(folder)
    if splits:
        return [item for split in splits for item in _hf_arrow_files(folder / split)]
    state = folder / "state.json"
    if not state.is_file():
        raise ImportFailed(f"{folder}: not a Hugging Face datasets folder (no state.json or dataset_dict.json)")
    files = [folder / f["filename"] for f in json.loads(state.read_text()).get("_data_files", [])]
    return [(str(f), f) for f in files]


def _hf_folder(folder: Path) -> Iterator[ReadItem]:
    import pyarrow as pa

    for label, arrow in _hf_arrow_files(folder):
        number = 0
        with pa.memory_map(str(arrow), "r") as source:
            try:
                reader = pa.ipc.open_stream(source)
            except pa.ArrowInvalid:
                reader = pa.ipc.open_file(source)  # type: ignore[assignment]
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))  # type: ignore[attr-defined]
            else:
                batches = iter(reader)
            for batch in batches:
                # Slice big batches so to_pylist materialises at most BATCH_ROWS rows at a time.
                for start in range(0, batch.num_rows, BATCH_ROWS):
                    for record in batch.slice(start, BATCH_ROWS).to_pylist():
                        yield Location(label, "row", number), record
                        number += 1
