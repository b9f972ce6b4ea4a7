"""A model version's files: what counts as a reward-model folder, the content hash that pins it, and the copy the
registry keeps (so a version's files never change under the name).

The hash covers every file's relative path and bytes, in sorted order: renaming, editing, adding or removing a
file changes it. It does not cover modification times (a copy keeps its hash)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
_CHUNK = 1 << 20


class NotARewardModel(ValueError):
    """A folder that is not a reward model (the message says what is missing)."""


def check_reward_model_folder(path: Path) -> None:
    """Raise NotARewardModel unless ``path`` is a ``save_pretrained`` sequence-classification folder with one
    output (config.json + weights), or a rewardkit ensemble (rewardkit.json naming member folders that are)."""
    if not path.is_dir():
        raise NotARewardModel(f"{path} is not a folder")
    card = path / "rewardkit.json"
    if card.is_file():
        try:
            members = json.loads(card.read_text(encoding="utf-8")).get("members")
        except (ValueError, AttributeError) as exc:
            raise NotARewardModel(f"{card} is not a JSON object ({exc})") from None
        if members:
            for member in members:
                check_reward_model_folder(path / str(member))
            return
    config = path / "config.json"
    if not config.is_file():
        raise NotARewardModel(f"{path} is not a reward model: no config.json (expected a save_pretrained folder)")
    try:
        raw = json.loads(config.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise NotARewardModel(f"{config} is not valid JSON ({exc})") from None
    labels = raw.get("num_labels", len(raw.get("id2label") or {}) or None)
    if labels not in (None, 1):
        raise NotARewardModel(f"{path} is not a reward model: {labels} output labels (a reward model has 1)")
    if not any(f.suffix in WEIGHT_SUFFIXES for f in path.rglob("*") if f.is_file()):
        raise NotARewardModel(f"{path} is not a reward model: no weights file ({', '.join(WEIGHT_SUFFIXES)})")


def tree_sha256(path: Path) -> str:
    """sha256 over (relative path, size, bytes) of every file under ``path``, sorted by path."""
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        digest.update(f"{rel}\x00{f.stat().st_size}\x00".encode())
        with f.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def copy_tree(source: Path, target: Path) -> None:
    """Copy ``source`` to the new folder ``target`` (hard links would share edits with the source: a copy)."""
    shutil.copytree(source, target, symlinks=False)
