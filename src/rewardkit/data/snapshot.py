"""Immutable dataset snapshots on disk: layout, reading and resolving references.

A snapshot is a folder named by its id (the hash of its content)::

    <snapshots>/<id>/
        manifest.json            id, parent, created_at, filters, options, counts, conflicts, splits
        train.jsonl              one PreferencePair.to_json() per line
        validation.jsonl
        test.jsonl
        train.parquet ...        the same rows as Parquet

Training, scoring and evaluation read snapshots only through ``load_split`` and ``read_manifest``, so the
layout can evolve in one place. Building snapshots lives in ``data/compile.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rewardkit.data.types import PreferencePair

SPLITS: tuple[str, ...] = ("train", "validation", "test")
MANIFEST = "manifest.json"


class SnapshotNotFound(LookupError):
    pass


def resolve_snapshot(ref: str | Path, snapshot_dir: Path | None = None) -> Path:
    """Turn a snapshot reference (a folder path, or an id or unique id prefix under ``snapshot_dir``) into
    the snapshot folder."""
    path = Path(ref)
    if (path / MANIFEST).is_file():
        return path
    if snapshot_dir is None:
        from rewardkit.settings import get_settings

        snapshot_dir = get_settings().snapshot_dir
    if snapshot_dir.is_dir():
        matches = [p for p in snapshot_dir.iterdir() if p.name.startswith(str(ref)) and (p / MANIFEST).is_file()]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise SnapshotNotFound(f"snapshot id prefix {ref!r} is ambiguous: {', '.join(sorted(p.name for p in matches))}")
    raise SnapshotNotFound(f"no snapshot {str(ref)!r} (not a snapshot folder, nor an id under {snapshot_dir})")


def read_manifest(snapshot: Path) -> dict[str, Any]:
    return json.loads((snapshot / MANIFEST).read_text(encoding="utf-8"))


def iter_split(snapshot: Path, split: str) -> Iterator[PreferencePair]:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    with (snapshot / f"{split}.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield PreferencePair.from_json(json.loads(line))


def load_split(snapshot: Path, split: str) -> list[PreferencePair]:
    return list(iter_split(snapshot, split))
