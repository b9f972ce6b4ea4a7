"""Steps snapshots: step-labelled solutions compiled (``step_compile.py``) into the same immutable, content-hashed
snapshot folders as pairs (``snapshot.py``), with ``"kind": "steps"`` in the manifest::

    <snapshots>/<id>/
        manifest.json            id, parent, kind, filters, options, counts, splits
        train.jsonl              one StepExample.to_json() per line: id, prompt, steps, labels, outcome, source,
        validation.jsonl         annotator_kind, model_name, prompt_id, solution_ids, metadata
        test.jsonl
        train.parquet ...        the same rows (prompt and metadata as JSON text)

Read a split with ``load_step_split``; export it as TRL stepwise JSONL (``stepwise_splits``, the rules of
``process/stepwise_jsonl.py``) with ``rewardkit dataset export ID --format trl-stepwise``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rewardkit.data.process.stepwise_jsonl import stepwise_row
from rewardkit.data.snapshot import (
    SPLITS,
    BuiltSnapshot,
    SnapshotError,
    publish_snapshot,
    split_rows,
    write_parquet_rows,
)
from rewardkit.data.step_compile import StepCompileConfig, StepExample, compile_steps

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

_PARQUET_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("prompt", pa.string()),  # JSON: text or a list of messages
        ("steps", pa.list_(pa.string())),
        ("labels", pa.list_(pa.string())),  # good | bad | neutral | null
        ("outcome", pa.bool_()),
        ("source", pa.string()),
        ("annotator_kind", pa.string()),
        ("model_name", pa.string()),
        ("prompt_id", pa.string()),
        ("solution_ids", pa.list_(pa.string())),
        ("metadata", pa.string()),  # JSON
    ]
)


def _write_parquet(path: Path, examples: list[StepExample]) -> None:
    write_parquet_rows(path, examples, _PARQUET_SCHEMA)


def iter_step_split(snapshot: Path, split: str) -> Iterator[StepExample]:
    return map(StepExample.from_json, split_rows(snapshot, split, "steps"))


def load_step_split(snapshot: Path, split: str) -> list[StepExample]:
    """The examples of one split of a steps snapshot (``resolve_snapshot`` turns an id into the folder)."""
    return list(iter_step_split(snapshot, split))


def stepwise_splits(snapshot: Path, *, neutral_as: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Every split as TRL stepwise rows (examples whose first step is unlabelled have no row)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in SPLITS:
        rows = (stepwise_row(e, neutral_as=neutral_as) for e in iter_step_split(snapshot, name))
        out[name] = [row for row in rows if row is not None]
    return out


def build_step_snapshot(
    session: Session,
    config: StepCompileConfig,
    snapshot_dir: Path,
    *,
    parent: str | None = None,
    on_solution: Callable[[], None] | None = None,
) -> BuiltSnapshot:
    """Compile the stored step solutions under ``config`` into a steps snapshot and register it in the store
    (the parent and the refusal of an empty selection as ``snapshot.build_snapshot``)."""
    result = compile_steps(session, config, on_solution=on_solution)
    if result.counts.solutions == 0:
        c = result.counts
        raise SnapshotError(
            f"the selection yields no step solutions ({c.solutions_selected} selected, {c.conflicts_dropped} "
            "dropped for conflicting labels); check the filters, or import some with rewardkit import trl-stepwise"
        )
    return publish_snapshot(
        session,
        snapshot_dir,
        options=config.as_json(),
        splits=result.splits,
        counts=asdict(result.counts),
        conflicts=[],
        parent=parent,
        kind="steps",
        write_parquet=_write_parquet,
    )
