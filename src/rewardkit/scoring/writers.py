"""What ``rewardkit score`` writes: scored rows in the format of the output's suffix (.jsonl, .json, .jsonl.gz,
.csv, .parquet), a chunk at a time (``RowWriter``) or all at once (``write_rows``), always atomically.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from rewardkit.atomic import atomic_file
from rewardkit.scoring.rows import InputError

OUTPUT_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".csv", ".parquet")


def check_output_path(path: Path, input_path: Path | None = None) -> None:
    """An InputError unless ``path`` is a file ``write_rows`` writes: a format it knows, not a folder, and
    not the input file itself (checked before any scoring; whether its folder can be written is the CLI's
    ``check_out_file``)."""
    if not path.name.lower().endswith(OUTPUT_SUFFIXES):
        raise InputError(f"{path}: unknown output format; use {', '.join(OUTPUT_SUFFIXES)}")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; name a file to write, e.g. {path / 'scored.jsonl'}")
    if input_path is not None and path.exists() and input_path.exists() and os.path.samefile(path, input_path):
        raise InputError(
            f"{path}: is the input file; writing the scores there would replace it: choose another output file"
        )


def writes_parquet(path: Path) -> bool:
    return path.name.lower().endswith(".parquet")


class RowWriter:
    """Writes rows to ``path`` (named like the final file ``name``: its suffix picks the format) a chunk at
    a time. The columns must be known before the first row: CSV writes a header, Parquet a schema. They are
    the input's ``fields`` (``schema`` for Parquet: the types of every row, not only the first chunk's),
    then the fields scoring adds, as in ``added`` (``score_extras`` of the first chunk)."""

    def __init__(self, path: Path, name: str, fields: Sequence[str], schema: Any, added: list[dict[str, Any]]) -> None:
        name = name.lower()
        self._csv: Any = None
        self._parquet: Any = None
        self._file: IO[str] | None = None
        if name.endswith(".parquet"):
            import pyarrow as pa
            import pyarrow.parquet as pq

            scored = pa.schema(list(pa.array(added).type)) if added else pa.schema([])
            # a field the input already had (its own "score") takes the scored type, in its place
            kept = [scored.field(f.name) if f.name in scored.names else f for f in schema or []]
            self._schema = pa.schema(kept + [f for f in scored if f.name not in {k.name for k in kept}])
            self._parquet = pq.ParquetWriter(path, self._schema)
        elif name.endswith(".csv"):
            self._file = path.open("w", newline="", encoding="utf-8")
            self._csv = csv.DictWriter(
                self._file, fieldnames=list(dict.fromkeys([*fields, *(k for r in added[:1] for k in r)]))
            )
            self._csv.writeheader()
        else:
            self._file = (
                gzip.open(path, "wt", encoding="utf-8") if name.endswith(".gz") else path.open("w", encoding="utf-8")
            )

    def write(self, rows: list[dict[str, Any]]) -> None:
        if self._parquet is not None:
            import pyarrow as pa

            self._parquet.write_table(pa.Table.from_pylist(rows, schema=self._schema))
        elif self._csv is not None:  # CSV cells hold lists (chat prompts) and objects as JSON
            self._csv.writerows(
                {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()} for r in rows
            )
        else:
            assert self._file is not None
            self._file.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._file is not None:
            self._file.close()


def write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    """Write rows held in memory atomically (``rewardkit.atomic``) in the format of ``path``'s suffix."""
    check_output_path(path)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    schema = merge_schema(None, rows, ["row 1", f"row {len(rows)}"]) if rows and writes_parquet(path) else None
    with atomic_file(path) as tmp:
        writer = RowWriter(tmp, path.name, fields, schema, [])
        try:
            writer.write(rows)
        finally:
            writer.close()


def merge_schema(known: Any, rows: list[dict[str, Any]], places: list[str]) -> Any:
    """``known`` (a pyarrow schema or None) widened to the columns and types of ``rows``: a new column is
    added, a null column takes the type seen now; types that cannot share a column are an InputError."""
    import pyarrow as pa

    try:
        # pa.array of dicts: a struct of EVERY key seen (Table.from_pylist keeps only the first row's keys)
        seen = pa.schema(list(pa.array(rows).type))
        return seen if known is None else pa.unify_schemas([known, seen], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(
            f"{places[0]} to {places[-1]}: cannot be written as Parquet, which needs one type per column "
            f"({' '.join(str(exc).split())}); write .jsonl or .csv instead"
        ) from None
