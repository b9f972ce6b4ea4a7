"""Exports of a snapshot to the formats other tools read: TRL's preference JSONL (``trl-jsonl``), a Hugging
Face ``DatasetDict`` folder (``hf``), A/B JSONL for labeling tools (``ab-jsonl``) and, for a steps snapshot,
TRL's stepwise-supervision JSONL (``trl-stepwise``). Its own module because it reads both kinds of snapshot
(``data/snapshot.py`` and ``data/step_snapshot.py``), which otherwise import one way only.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rewardkit.atomic import temporary_folder
from rewardkit.data.snapshot import SPLITS, SnapshotError, load_split, snapshot_kind
from rewardkit.data.step_snapshot import stepwise_splits
from rewardkit.records import PreferencePair

EXPORT_FORMATS: tuple[str, ...] = ("trl-jsonl", "hf", "ab-jsonl", "trl-stepwise")  # the last for steps snapshots


def _trl_rows(pairs: Iterable[PreferencePair], conversational: bool, with_margin: bool) -> list[dict[str, Any]]:
    rows = []
    for p in pairs:
        if p.tie:
            continue
        if conversational:
            prompt = p.prompt if isinstance(p.prompt, list) else [{"role": "user", "content": p.prompt}]
            row: dict[str, Any] = {
                "prompt": [{"role": m["role"], "content": m["content"]} for m in prompt],
                "chosen": [{"role": "assistant", "content": p.chosen}],
                "rejected": [{"role": "assistant", "content": p.rejected}],
            }
        else:
            row = {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
        if with_margin:
            row["margin"] = float(p.margin) if p.margin is not None else 0.0  # 0 = no margin in TRL's loss
        rows.append(row)
    return rows


def trl_rows(snapshot: Path) -> dict[str, list[dict[str, Any]]]:
    """The snapshot's non-tie pairs per split in TRL's preference format (see the module docstring)."""
    splits = {name: load_split(snapshot, name) for name in SPLITS}
    every = [p for rows in splits.values() for p in rows]
    conversational = any(isinstance(p.prompt, list) for p in every)
    with_margin = any(p.margin is not None and not p.tie for p in every)
    return {name: _trl_rows(rows, conversational, with_margin) for name, rows in splits.items()}


def _ab_rows(pairs: Iterable[PreferencePair]) -> list[dict[str, Any]]:
    rows = []
    for p in pairs:
        chosen_a = p.metadata.get("chosen_position", "a") == "a"
        a, b = (p.chosen, p.rejected) if chosen_a else (p.rejected, p.chosen)
        label = "tie" if p.tie else ("a" if chosen_a else "b")
        rows.append(
            {
                "id": p.id,
                "prompt": p.prompt,
                "response_a": a,
                "response_b": b,
                "label": label,
                "strength": p.strength,
                "source": p.source,
            }
        )
    return rows


def _hf_features(conversational: bool, with_margin: bool) -> Any:
    from datasets import Features, List, Value

    message = {"role": Value("string"), "content": Value("string")}
    text_or_chat = List(message) if conversational else Value("string")
    cols: dict[str, Any] = {"prompt": text_or_chat, "chosen": text_or_chat, "rejected": text_or_chat}
    if with_margin:
        cols["margin"] = Value("float64")
    return Features(cols)


def export_snapshot(snapshot: Path, fmt: str, out: Path) -> dict[str, int]:
    """Write ``fmt`` (one of EXPORT_FORMATS) to folder ``out`` atomically; returns rows per split."""
    if fmt not in EXPORT_FORMATS:
        raise SnapshotError(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    steps = snapshot_kind(snapshot) == "steps"
    if steps != (fmt == "trl-stepwise"):
        held = "step solutions: export it as trl-stepwise" if steps else "pairs: trl-stepwise is for steps snapshots"
        raise SnapshotError(f"snapshot {snapshot.name} holds {held}")
    if out.exists():
        raise SnapshotError(f"{out} exists already; choose a new output folder")
    tmp = temporary_folder(out.parent, f".tmp-{out.name}-")
    try:
        if steps:
            splits = stepwise_splits(snapshot)
        elif fmt == "ab-jsonl":
            splits = {name: _ab_rows(load_split(snapshot, name)) for name in SPLITS}
        else:
            splits = trl_rows(snapshot)
        if fmt == "hf":
            from datasets import Dataset, DatasetDict

            first = next((r for rows in splits.values() for r in rows), None)
            conversational = first is not None and isinstance(first["prompt"], list)
            features = _hf_features(conversational, first is not None and "margin" in first)
            columns = list(features)
            from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled

            was_enabled = is_progress_bar_enabled()
            disable_progress_bar()  # datasets' own tqdm bars would interleave with rewardkit's output
            try:
                DatasetDict(
                    {
                        name: Dataset.from_dict({c: [r[c] for r in rows] for c in columns}, features=features)
                        for name, rows in splits.items()
                    }
                ).save_to_disk(str(tmp))
            finally:
                if was_enabled:
                    enable_progress_bar()
        else:
            for name, rows in splits.items():
                with (tmp / f"{name}.jsonl").open("w", encoding="utf-8") as f:
                    for row in rows:
                        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {name: len(rows) for name, rows in splits.items()}
