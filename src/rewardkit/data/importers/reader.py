"""Stream records (dicts) out of JSONL, gzipped JSONL, CSV, Parquet and local Hugging Face ``datasets``
folders, one at a time, so an import's memory does not grow with the file.

- ``.jsonl`` / ``.json`` (one object a line) and ``.jsonl.gz`` / ``.json.gz``: read line by line; a line
  that is not UTF-8, not JSON (nested past Python's ~1,000-level limit included) or not an object is reported
  (not raised) so the importer can skip it. A
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

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from rewardkit.data.importers.errors import ImportFailed, Location
from rewardkit.data.importers.json_array import ARRAY_READ_BYTES, MalformedArray, json_array_items
from rewardkit.records import RecordError

ReadItem = tuple[Location, dict[str, Any] | RecordError]

BATCH_ROWS = 1000
NESTED_TOO_DEEPLY = "JSON nested too deeply to read (over ~1,000 levels of lists or objects)"


_KIND_OF_SUFFIX = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".jsonl.gz": "jsonl",
    ".json.gz": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
}
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
                yield (
                    Location(str(path), "item", i),
                    item
                    if isinstance(item, dict)
                    else RecordError("(item)", f"expected a JSON object, got {type(item).__name__}"),
                )
        except MalformedArray as exc:
            raise ImportFailed(f"{path}, {exc}") from None


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
            except RecursionError:  # json raises it past ~1,000 levels: bad input, not a crash
                yield loc, RecordError("(line)", NESTED_TOO_DEEPLY)
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
        except (json.JSONDecodeError, RecursionError):  # not the JSON list of messages it looked like: text
            return value
        if isinstance(decoded, list) and all(isinstance(m, dict) and "role" in m for m in decoded):
            return decoded
    return value


def _csv(path: Path) -> Iterator[ReadItem]:
    # surrogateescape keeps reading past bad bytes; a cell holding an escaped byte is then reported.
    with (
        path.open("rb") as raw,
        io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh,
    ):
        reader = csv.DictReader(fh)
        for row in reader:
            loc = Location(str(path), "line", reader.line_num)
            bad = next((k for k, v in row.items() if isinstance(v, str) and _has_surrogates(v)), None)
            if bad is not None:
                yield loc, RecordError(str(bad), "invalid UTF-8")
                continue
            if None in row:  # more cells than header columns
                cells, columns = len(row[None]) + len(row) - 1, len(reader.fieldnames or [])  # type: ignore[index]
                yield loc, RecordError("(row)", f"{cells} cells but the header has {columns} columns")
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
