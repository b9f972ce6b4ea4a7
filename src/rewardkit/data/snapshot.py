"""Immutable dataset snapshots on disk: layout, reading and resolving references.

A snapshot is a folder named by its id (the hash of its content)::

    <snapshots>/<id>/
        manifest.json            id, parent, created_at, filters, options, counts, conflicts, splits
        train.jsonl              one PreferencePair.to_json() per line
        validation.jsonl
        test.jsonl
        train.parquet ...        the same rows as Parquet

Training, scoring and evaluation read snapshots only through ``load_split`` and ``read_manifest``, so the
layout can evolve in one place. What goes into a snapshot is decided in ``data/compile.py``; this module
writes it (atomically: a temporary folder renamed into place); ``data/export.py`` exports it:

- ``trl-jsonl``: one file per split with TRL's ``prompt``/``chosen``/``rejected`` (+ ``margin``) columns,
  conversational when any prompt is a chat; ties are left out (TRL has no ties);
- ``hf``: the same rows as a Hugging Face ``datasets`` folder (``DatasetDict.save_to_disk``, one split each);
- ``ab-jsonl``: ``prompt``/``response_a``/``response_b``/``label`` rows whose positions follow each pair's
  ``chosen_position`` (see ``CompileConfig.balance_positions``).

A snapshot of step-labelled solutions (``"kind": "steps"`` in the manifest) has the same layout with other rows;
``data/step_snapshot.py`` builds and reads it, ``data/export.py`` exports it (``trl-stepwise``), and
``iter_split`` refuses it.

The Parquet files hold the JSONL rows with ``prompt`` and ``metadata`` as JSON text (a prompt may be text or
messages); ``read_parquet_split`` turns them back into pairs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from rewardkit.atomic import temporary_folder
from rewardkit.data.compile import SPLIT_NAMES, CompileConfig, compile_pairs
from rewardkit.records import PreferencePair, canonical_json, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

SPLITS: tuple[str, ...] = SPLIT_NAMES
MANIFEST = "manifest.json"


class SnapshotNotFound(LookupError):
    pass


class SnapshotError(ValueError):
    """A snapshot cannot be built, read or exported as asked (the message says why)."""


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
            raise SnapshotNotFound(
                f"snapshot id prefix {ref!r} is ambiguous: {', '.join(sorted(p.name for p in matches))}"
            )
    raise SnapshotNotFound(f"no snapshot {str(ref)!r} (not a snapshot folder, nor an id under {snapshot_dir})")


def read_manifest(snapshot: Path) -> dict[str, Any]:
    return json.loads((snapshot / MANIFEST).read_text(encoding="utf-8"))


def snapshot_kind(snapshot: Path) -> str:
    """``pairs`` (preference pairs) or ``steps`` (step-labelled solutions, ``data/step_snapshot.py``)."""
    return str(read_manifest(snapshot).get("kind", "pairs"))


def split_rows(snapshot: Path, split: str, kind: str = "pairs") -> Iterator[dict[str, Any]]:
    """The JSON rows of one split of a snapshot that must be of ``kind`` (pairs, or steps)."""
    held = snapshot_kind(snapshot)
    if held != kind:
        reader = "data.step_snapshot.load_step_split" if held == "steps" else "data.snapshot.load_split"
        what = {"pairs": "pairs", "steps": "step solutions"}
        raise SnapshotError(f"snapshot {snapshot.name} holds {what[held]}, not {what[kind]}: read it with {reader}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    with (snapshot / f"{split}.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def iter_split(snapshot: Path, split: str) -> Iterator[PreferencePair]:
    return map(PreferencePair.from_json, split_rows(snapshot, split))


def load_split(snapshot: Path, split: str) -> list[PreferencePair]:
    return list(iter_split(snapshot, split))


# --- building ---------------------------------------------------------------------------------------


def snapshot_id(options: dict[str, Any], splits: dict[str, list[Any]]) -> str:
    """The hash of a snapshot's content: its options and every row of every split (no timestamps, no
    parent), so the same store and options always give the same id."""
    digest = hashlib.sha256(canonical_json(options).encode("utf-8"))
    for split in SPLITS:
        digest.update(f"\x1e{split}\x1e".encode())
        for pair in splits.get(split, []):  # a PreferencePair, or a StepExample of a steps snapshot
            digest.update(canonical_json(pair.to_json()).encode("utf-8"))
            digest.update(b"\n")
    return digest.hexdigest()[:32]


_PARQUET_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("prompt", pa.string()),  # JSON: text or a list of messages
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("tie", pa.bool_()),
        ("strength", pa.float64()),
        ("margin", pa.float64()),
        ("source", pa.string()),
        ("annotator_kind", pa.string()),
        ("attribute", pa.string()),
        ("prompt_id", pa.string()),
        ("comparison_ids", pa.list_(pa.string())),
        ("metadata", pa.string()),  # JSON
        ("target", pa.float64()),  # a soft label, P(chosen better); null for a hard one
        ("weight", pa.float64()),  # the training loss weight (--source-weight); null for 1
    ]
)


def write_parquet_rows(path: Path, items: list[Any], schema: pa.Schema = _PARQUET_SCHEMA) -> None:
    """The JSONL rows of ``items`` (pairs, or a steps snapshot's examples) as Parquet, ``prompt`` and ``metadata``
    as JSON text (a prompt may be text or messages)."""
    rows = [item.to_json() for item in items]
    for row in rows:
        row["prompt"] = canonical_json(row["prompt"])
        row["metadata"] = canonical_json(row["metadata"])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def _write_parquet(path: Path, pairs: list[PreferencePair]) -> None:
    write_parquet_rows(path, pairs)


def read_parquet_split(snapshot: Path, split: str) -> list[PreferencePair]:
    """The pairs of a split read from its Parquet file (the same rows as the JSONL file)."""
    out = []
    for row in pq.read_table(snapshot / f"{split}.parquet").to_pylist():
        row["prompt"] = json.loads(row["prompt"])
        row["metadata"] = json.loads(row["metadata"])
        out.append(PreferencePair.from_json(row))
    return out


@dataclass(frozen=True)
class BuiltSnapshot:
    id: str
    path: Path
    manifest: dict[str, Any]
    created: bool  # False when a snapshot with this id (the same content) already existed


def write_snapshot(
    snapshot_dir: Path,
    *,
    options: dict[str, Any],
    splits: dict[str, list[Any]],
    counts: dict[str, Any],
    conflicts: list[dict[str, Any]],
    parent: str | None = None,
    kind: str = "pairs",
    write_parquet: Callable[[Path, list[Any]], None] | None = None,
) -> BuiltSnapshot:
    """Write a snapshot folder atomically (a temporary folder renamed into place). A snapshot is immutable:
    when its id exists already the existing one is returned untouched. ``kind`` other than ``pairs`` is recorded
    in the manifest, with ``write_parquet`` writing its rows (``data/step_snapshot.py``)."""
    sid = snapshot_id(options, splits)
    final = snapshot_dir / sid
    if (final / MANIFEST).is_file():
        return BuiltSnapshot(sid, final, read_manifest(final), created=False)
    snapshot_dir.mkdir(parents=True, exist_ok=True)
    manifest = {
        "id": sid,
        "parent": parent,
        "created_at": utcnow().isoformat(),
        "filters": {
            k: options[k] for k in ("sources", "annotator_kinds", "attributes", "since", "until") if k in options
        },
        "options": {
            k: v for k, v in options.items() if k not in ("sources", "annotator_kinds", "attributes", "since", "until")
        },
        "counts": counts,
        "conflicts": conflicts,
        "splits": {
            name: {"rows": len(splits.get(name, [])), "prompts": len({p.prompt_id for p in splits.get(name, [])})}
            for name in SPLITS
        },
        "files": [f"{name}.{ext}" for name in SPLITS for ext in ("jsonl", "parquet")],
    }
    if kind != "pairs":  # pair manifests stay as they were
        manifest["kind"] = kind
    tmp = temporary_folder(snapshot_dir, f".tmp-{sid}-")
    try:
        for name in SPLITS:
            rows = splits.get(name, [])
            with (tmp / f"{name}.jsonl").open("w", encoding="utf-8") as f:
                for pair in rows:
                    f.write(json.dumps(pair.to_json(), ensure_ascii=False) + "\n")
            (write_parquet or _write_parquet)(tmp / f"{name}.parquet", rows)
        # the manifest goes last: a folder with a manifest is a complete snapshot
        (tmp / MANIFEST).write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
        )
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / MANIFEST).is_file():  # a concurrent build of the same content won the race
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return BuiltSnapshot(sid, final, read_manifest(final), created=False)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuiltSnapshot(sid, final, manifest, created=True)


def recipe_parent(session: Session, options: dict[str, Any], sid: str) -> str | None:
    """The newest registered snapshot built with the same filters and options (the previous version of this
    recipe), other than ``sid`` itself."""
    from rewardkit.store.queries import list_snapshots

    same_recipe = [
        row
        for row in list_snapshots(session)
        if row.id != sid and {**row.manifest.get("filters", {}), **row.manifest.get("options", {})} == options
    ]
    return same_recipe[-1].id if same_recipe else None


def build_snapshot(
    session: Session,
    config: CompileConfig,
    snapshot_dir: Path,
    *,
    parent: str | None = None,
    on_comparison: Callable[[], None] | None = None,
) -> BuiltSnapshot:
    """Compile the store under ``config`` into a snapshot folder and register it in the store.

    ``parent`` defaults to the newest registered snapshot built with the same filters and options (the
    previous version of this recipe), so a rebuild after new data records what it supersedes. A selection
    that yields no pair is refused (SnapshotError) rather than written as an empty snapshot."""
    result = compile_pairs(session, config, on_comparison=on_comparison)
    if result.counts.pairs == 0:
        c = result.counts
        raise SnapshotError(
            f"the selection yields no pairs ({c.comparisons_selected} comparisons selected, {c.labels} labels, "
            f"{c.ties_dropped} ties dropped, {c.conflicts_dropped} conflicts dropped); check the filters or use "
            "--keep-ties"
        )
    return publish_snapshot(
        session,
        snapshot_dir,
        options=config.as_json(),
        splits=result.splits,
        counts=asdict(result.counts),
        conflicts=result.conflicts,
        parent=parent,
    )


def publish_snapshot(
    session: Session,
    snapshot_dir: Path,
    *,
    options: dict[str, Any],
    splits: dict[str, list[Any]],
    counts: dict[str, Any],
    conflicts: list[dict[str, Any]],
    parent: str | None = None,
    kind: str = "pairs",
    write_parquet: Callable[[Path, list[Any]], None] | None = None,
) -> BuiltSnapshot:
    """Write compiled rows as a snapshot (``write_snapshot``) and register it in the store; ``parent`` defaults to
    the previous build of the same recipe (``recipe_parent``)."""
    from rewardkit.store.queries import record_snapshot

    if parent is None:
        parent = recipe_parent(session, options, snapshot_id(options, splits))
    built = write_snapshot(
        snapshot_dir,
        options=options,
        splits=splits,
        counts=counts,
        conflicts=conflicts,
        parent=parent,
        kind=kind,
        write_parquet=write_parquet,
    )
    record_snapshot(
        session,
        id=built.id,
        parent_id=built.manifest.get("parent"),
        path=str(built.path.resolve()),
        manifest=built.manifest,
    )
    return built
