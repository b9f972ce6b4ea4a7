"""The pairs a training run reads: a snapshot's train/validation splits, or a pair file with a validation split
carved by prompt.

    train_pairs, val_pairs, data_id = load_pairs("SNAPSHOT", validation_fraction=0.1)
    train_pairs, val_pairs, data_id = load_pairs("HuggingFaceH4/ultrafeedback_binarized", split="train_prefs")

``data`` is a snapshot (folder, id or id prefix), a file ``data/pair_files.py`` reads (JSONL, .jsonl.gz, CSV,
Parquet, a datasets folder) or a Hugging Face Hub dataset id (``data/hub.py``).
"""

from __future__ import annotations

import csv
import hashlib
import zlib
from pathlib import Path

from rewardkit.data.compile import split_of
from rewardkit.data.hub import resolve_data
from rewardkit.records import PreferencePair, prompt_text

# what reading a user's file or snapshot raises for a missing, unreadable or malformed one (zlib.error and
# EOFError: a corrupt or cut gzip); anything else from load_pairs is a bug and keeps its traceback
DATA_ERRORS: tuple[type[Exception], ...] = (ValueError, LookupError, OSError, EOFError, csv.Error, zlib.error)


def load_pairs(
    data: str, validation_fraction: float = 0.1, split: str = "train"
) -> tuple[list[PreferencePair], list[PreferencePair], str]:
    """(train, validation, snapshot id). A snapshot without validation pairs, or a pair file (any file
    ``data/pair_files.py`` reads: JSONL, .jsonl.gz, CSV, Parquet, a datasets folder, a Hub dataset id), gets a
    validation split carved by prompt (``split_by_prompt``, so no prompt is in both). ``split``: the split of a
    datasets folder or Hub dataset to train on (its ``validation`` split, when it has one, validates); a
    snapshot and a single file train on their train pairs only, so another ``split`` is an error there."""
    from rewardkit.data.importers.reader import dataset_splits
    from rewardkit.data.pair_files import is_pair_file, read_pair_file

    path = resolve_data(data)  # a Hugging Face Hub dataset id: its saved copy (data/hub.py)
    if is_pair_file(path):
        splits = dataset_splits(path)  # a DatasetDict: the split asked for, and its validation split if any
        if splits and split not in splits:
            raise ValueError(
                f"{data}: no {split!r} split to train on (its splits: {', '.join(splits)}); choose one with `split`"
            )
        if not splits and split != "train":
            raise ValueError(f"{data}: a single file has no splits to choose from (`split` {split!r})")
        train_pairs = read_pair_file(path, split if splits else None)
        val_pairs = read_pair_file(path, "validation") if "validation" in splits and split != "validation" else []
        snapshot_id = "file:" + file_digest(path) + ("" if split == "train" else f":{split}")
    else:
        from rewardkit.data.snapshot import load_split, read_manifest, resolve_snapshot

        if split != "train":
            raise ValueError(
                f"{data}: a snapshot trains on its train split (`split` {split!r} is for a datasets folder or a "
                "Hub dataset)"
            )
        folder = resolve_snapshot(data)
        snapshot_id = str(read_manifest(folder).get("id", folder.name))
        train_pairs, val_pairs = load_split(folder, "train"), load_split(folder, "validation")
    carved = not val_pairs
    if carved:
        train_pairs, val_pairs = split_by_prompt(train_pairs, validation_fraction)
    # validation picks the best checkpoint and fits the temperature: no run without it, nor without training pairs
    for side, found in (("training", train_pairs), ("validation", val_pairs)):
        if found:
            continue
        if not carved or not (train_pairs or val_pairs):
            raise ValueError(f"{data}: no {side} pairs")
        every = train_pairs or val_pairs
        prompts = len({p.prompt_id or prompt_text(p.prompt) for p in every})
        raise ValueError(
            f"{data}: no {side} pairs: its {prompts:,} prompt(s) leave none at validation_fraction "
            f"{validation_fraction} (pairs are split by prompt); add data, or a snapshot with a validation split"
        )
    return train_pairs, val_pairs, snapshot_id


def file_digest(path: Path) -> str:
    """16 hex digits of SHA-256 over a file's bytes, or a folder's files (names and bytes, in name order),
    read in chunks: the data id a model card records for a pair file."""
    digest = hashlib.sha256()
    for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
        if file != path:  # a folder's layout is part of its content; a single file is its bytes alone
            digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def split_by_prompt(
    pairs: list[PreferencePair], fraction: float, seed: int = 0
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, validation): the snapshot compiler's split rule (``data/compile.py`` ``split_of``: a seeded hash of
    the normalised prompt) with shares (1 - fraction, fraction, 0), so a file and a snapshot split alike and
    prompts that differ only in case or spacing land on the same side."""
    sides = [split_of(p.prompt, seed, (1.0 - fraction, fraction, 0.0)) for p in pairs]
    return [p for p, s in zip(pairs, sides) if s == "train"], [p for p, s in zip(pairs, sides) if s != "train"]
