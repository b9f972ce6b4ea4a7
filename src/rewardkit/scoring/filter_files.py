"""``rewardkit filter``'s passes over scored rows: keep rows by reward, or make preference pairs, in constant
memory per row.

The rows are scored first (``files.score_file``, a chunk at a time, into a temporary file; the Ray engine
writes scored shards instead). Then:

1. one pass reads every scored row and keeps only its score (8 bytes) and, for per-prompt rules, a 64-bit hash
   of its prompt (8 bytes): 16 MB for a million rows, whatever their length;
2. the pure functions of ``selection`` turn those arrays into a keep mask (or pairs of row indices);
3. a second pass writes the rows selected, in input order, atomically. Pairs join two rows that may be far
   apart in the file, so the selected halves go through a temporary SQLite file on disk, not memory.

Rows of a prompt need not be contiguous: grouping is by the hash, over the whole input. Two different prompts
share a 64-bit hash with probability about n^2 / 2^65 (3e-8 for a million prompts).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tempfile
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.atomic import atomic_file
from rewardkit.scoring.rows import InputError, located_rows, row_kind, row_texts
from rewardkit.scoring.selection import KeepRule, preference_pairs, select
from rewardkit.scoring.writers import RowWriter, writes_parquet


@dataclass
class ScoredColumns:
    """What pass 1 keeps of n scored rows: their scores (n,), prompt hashes (n,) and field names."""

    scores: np.ndarray
    groups: np.ndarray | None
    fields: list[str]
    kind: str
    rows_per_shard: list[int] = field(default_factory=list)


def prompt_hash(prompt: Any) -> int:
    """A 64-bit id of a prompt (text, or a list of messages keyed by its JSON)."""
    text = prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, ensure_ascii=False)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def read_scores(shards: Sequence[Path], score_field: str, with_groups: bool) -> ScoredColumns:
    """Pass 1 over scored shards (in order): every row's ``score_field`` and, ``with_groups``, its prompt hash."""
    scores = array("d")  # 8 bytes a row (a list of Python floats holds ~32)
    groups = array("Q")
    fields: dict[str, None] = {}
    kind = ""
    per_shard = []
    for shard in shards:
        before = len(scores)
        for row, place in located_rows(shard):
            kind = kind or row_kind(row, place)
            if kind == "pair":
                raise InputError(
                    f"{place}: rewardkit filter keeps single responses (prompt, response or messages), "
                    "not pairs; give one response per row (N rows per prompt for best-of-N)"
                )
            value = row.get(score_field)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise InputError(f"{place}: field '{score_field}': expected a number, got {value!r}")
            scores.append(float(value))
            if with_groups:
                groups.append(prompt_hash(row_texts(row, place, kind)[0][0]))
            fields.update(dict.fromkeys(row))
        per_shard.append(len(scores) - before)
    return ScoredColumns(
        np.frombuffer(scores, dtype=np.float64).copy(),
        np.frombuffer(groups, dtype=np.uint64).copy() if with_groups else None,
        list(fields),
        kind or "single",
        per_shard,
    )


def output_schema(shard: Path) -> Any:
    """The Parquet schema of a scored Parquet shard (the kept rows are written with it), else None."""
    if not writes_parquet(shard):
        return None
    import pyarrow.parquet as pq

    return pq.read_schema(shard)


def write_kept(shard: Path, out: Path, keep: np.ndarray, fields: list[str], schema: Any, chunk: int = 5000) -> int:
    """Pass 2 over one scored shard: its rows where ``keep`` (the shard's slice of the mask) is true, into
    ``out`` (format from its suffix; atomically), in order. Returns the rows written."""
    written = 0
    with atomic_file(out) as tmp:
        writer = RowWriter(tmp, out.name, fields, schema, [])
        try:
            batch: list[dict[str, Any]] = []
            for i, (row, _) in enumerate(located_rows(shard)):
                if keep[i]:
                    batch.append(row)
                if len(batch) == chunk:
                    writer.write(batch)
                    written += len(batch)
                    batch = []
            if batch:
                writer.write(batch)
                written += len(batch)
        finally:
            writer.close()
    return written


def pair_row(chosen: dict[str, Any], rejected: dict[str, Any], kind: str, score_field: str) -> dict[str, Any]:
    """A TRL preference row from two scored rows of one prompt (conversational for ``messages`` rows)."""
    prompt, chosen_text = row_texts(chosen, "chosen", kind)[0]
    _, rejected_text = row_texts(rejected, "rejected", kind)[0]
    a, b = float(chosen[score_field]), float(rejected[score_field])
    if kind == "messages":
        return {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": chosen_text}],
            "rejected": [{"role": "assistant", "content": rejected_text}],
            "score_chosen": a,
            "score_rejected": b,
            "margin": a - b,
        }
    return {
        "prompt": prompt,
        "chosen": chosen_text,
        "rejected": rejected_text,
        "score_chosen": a,
        "score_rejected": b,
        "margin": a - b,
    }


def write_pairs(
    shards: Sequence[Path],
    columns: ScoredColumns,
    chosen: np.ndarray,
    rejected: np.ndarray,
    out: Path,
    score_field: str,
) -> int:
    """Pass 2 for preference pairs: the selected rows go to a temporary SQLite file keyed by pair number, then
    the pairs are written in order (the order of each prompt's first row). Returns the pairs written."""
    n = len(columns.scores)
    pair_of = np.full(n, -1, dtype=np.int64)
    role = np.zeros(n, dtype=np.int8)
    pair_of[chosen], role[chosen] = np.arange(len(chosen)), 1
    pair_of[rejected], role[rejected] = np.arange(len(rejected)), 2
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".rk-pairs-", dir=out.parent) as tmpdir:
        db = sqlite3.connect(Path(tmpdir) / "halves.db")
        db.execute("CREATE TABLE half (pair INTEGER, role INTEGER, row TEXT, PRIMARY KEY (pair, role))")
        i = 0
        for shard in shards:
            for row, _ in located_rows(shard):
                if pair_of[i] >= 0:
                    db.execute("INSERT INTO half VALUES (?, ?, ?)", (int(pair_of[i]), int(role[i]), json.dumps(row)))
                i += 1
        db.commit()
        query = (
            "SELECT c.row, r.row FROM half c JOIN half r ON c.pair = r.pair AND c.role = 1 AND r.role = 2 "
            "ORDER BY c.pair"
        )
        written = 0
        with atomic_file(out) as tmp:
            writer: RowWriter | None = None
            try:
                batch: list[dict[str, Any]] = []
                for c, r in db.execute(query):
                    batch.append(pair_row(json.loads(c), json.loads(r), columns.kind, score_field))
                    if len(batch) == 1000:  # the first thousand pairs also give a Parquet output its column types
                        writer = writer or _pair_writer(tmp, out, batch)
                        writer.write(batch)
                        written, batch = written + len(batch), []
                writer = writer or _pair_writer(tmp, out, batch)
                if batch:
                    writer.write(batch)
                    written += len(batch)
            finally:
                if writer is not None:
                    writer.close()
                db.close()
    return written


def _pair_writer(tmp: Path, out: Path, first: list[dict[str, Any]]) -> RowWriter:
    from rewardkit.scoring.writers import merge_schema

    fields = ["prompt", "chosen", "rejected", "score_chosen", "score_rejected", "margin"]
    schema = merge_schema(None, first, ["pair 1", f"pair {len(first)}"]) if first and writes_parquet(out) else None
    return RowWriter(tmp, out.name, fields, schema, [])


@dataclass
class Selection:
    """What a filter run selected: the columns read, the mask (or pairs) and the rows written."""

    columns: ScoredColumns
    keep: np.ndarray
    written: int
    pairs: bool = False
    details: dict[str, Any] = field(default_factory=dict)


def select_scored(
    shards: Sequence[Path],
    outs: Sequence[Path],
    rule: KeepRule | None,
    *,
    score_field: str = "score",
    min_margin: float | None = None,
) -> Selection:
    """Pass 1 over the scored ``shards``, the selection, and pass 2 writing each shard's kept rows to its
    ``outs`` entry (or, with ``min_margin``, preference pairs to ``outs[0]``)."""
    columns = read_scores(
        shards, score_field, with_groups=min_margin is not None or (rule is not None and rule.per_prompt)
    )
    if min_margin is not None:
        chosen, rejected = preference_pairs(columns.scores, columns.groups, min_margin)
        written = write_pairs(shards, columns, chosen, rejected, outs[0], score_field)
        keep = np.zeros(len(columns.scores), dtype=bool)
        keep[chosen] = keep[rejected] = True
        return Selection(columns, keep, written, pairs=True, details={"pairs": written})
    assert rule is not None
    keep = select(rule, columns.scores, columns.groups)
    details: dict[str, Any] = {}
    if rule.kind == "top" and keep.any():
        details["score_cutoff"] = float(columns.scores[keep].min())
    written, start = 0, 0
    for shard, out, rows in zip(shards, outs, columns.rows_per_shard, strict=True):
        written += write_kept(shard, out, keep[start : start + rows], columns.fields, output_schema(shard))
        start += rows
    return Selection(columns, keep, written, details=details)
