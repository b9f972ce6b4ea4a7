"""What ``rewardkit eval --data`` accepts: a dataset snapshot (a folder or id; split "test" by default) or a
file of TRL preference rows (``rewardkit.data.pair_files``: JSONL, .jsonl.gz, CSV, Parquet or a ``datasets``
folder; RewardBench's ``prompt, chosen, rejected, subset`` columns are such rows). A row's ``subset`` goes to
``metadata["subset"]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rewardkit.data.importers.reader import DATA_SUFFIXES
from rewardkit.data.pair_files import PairFileError, is_pair_file, read_pair_file
from rewardkit.records import PreferencePair


class EvalDataError(ValueError):
    """The evaluation data cannot be read; the message names the file, line and field."""


def load_eval_pairs(data: str | Path, *, split: str = "test", snapshot_dir: Path | None = None) -> list[PreferencePair]:
    """Pairs from a pair file, a Hugging Face Hub dataset id (``data/hub.py``) or a snapshot reference. Ties are
    dropped (accuracy needs a winner)."""
    from rewardkit.data.hub import HubDatasetError, resolve_data

    try:
        path = resolve_data(data)
    except HubDatasetError as exc:
        raise EvalDataError(str(exc)) from None
    if is_pair_file(path):
        try:
            return read_pair_file(path, split)  # the split matters only for a DatasetDict folder
        except PairFileError as exc:
            raise EvalDataError(str(exc)) from None
    if path.is_file():
        raise EvalDataError(
            f"{path}: expected a file of prompt/chosen/rejected rows ({', '.join(DATA_SUFFIXES)}) or a snapshot"
        )
    from rewardkit.data.snapshot import SnapshotNotFound, load_split, resolve_snapshot

    try:
        snapshot = resolve_snapshot(data, snapshot_dir)
        pairs = [p for p in load_split(snapshot, split) if not p.tie]
    except (SnapshotNotFound, ValueError) as exc:
        raise EvalDataError(str(exc)) from exc
    if not pairs:
        raise EvalDataError(f"snapshot {snapshot.name}: split {split!r} has no non-tie pairs")
    return pairs


def sample_rows(n: int, k: int, seed: int = 0) -> np.ndarray:
    """Indices (sorted) of ``k`` of ``n`` rows: all of them when k >= n, else a seeded draw without
    replacement, so a sample (``--max-pairs``, the probed responses, the drift reference) spreads over every
    source and subset of the data instead of taking whichever comes first in the file."""
    if k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))
