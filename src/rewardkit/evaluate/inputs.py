"""What ``rewardkit eval --data`` accepts: a dataset snapshot (a folder or id; split "test" by default) or
a JSONL file of ``{"prompt", "chosen", "rejected"[, "subset"]}`` rows (RewardBench's columns). Both become
``PreferencePair`` records; a JSONL row's ``subset`` goes to ``metadata["subset"]``.
"""

from __future__ import annotations

import json
from pathlib import Path

from rewardkit.data.types import PreferencePair, RecordError, content_hash, prompt_text, validate_prompt


class EvalDataError(ValueError):
    """The evaluation data cannot be read; the message names the file, line and field."""


def read_pairs_jsonl(path: Path) -> list[PreferencePair]:
    pairs = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalDataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise EvalDataError(f"{path}:{lineno}: expected an object with prompt, chosen, rejected")
            for key in ("prompt", "chosen", "rejected"):
                if key not in row:
                    raise EvalDataError(f"{path}:{lineno}: missing field '{key}' (expected prompt, chosen, rejected[, subset])")
            for key in ("chosen", "rejected"):
                if not isinstance(row[key], str) or not row[key].strip():
                    raise EvalDataError(f"{path}:{lineno}: field '{key}' must be non-empty text")
            try:
                prompt = validate_prompt(row["prompt"])
            except RecordError as exc:
                raise EvalDataError(f"{path}:{lineno}: {exc}") from exc
            subset = str(row.get("subset") or "")
            pairs.append(
                PreferencePair(
                    id=str(row.get("id") or content_hash([prompt, row["chosen"], row["rejected"]])),
                    prompt=prompt,
                    chosen=row["chosen"],
                    rejected=row["rejected"],
                    source=str(row.get("source") or subset or path.stem),
                    annotator_kind=str(row.get("annotator_kind") or ""),
                    attribute=row.get("attribute"),
                    prompt_id=content_hash(prompt_text(prompt)),
                    metadata={"subset": subset} if subset else {},
                )
            )
    if not pairs:
        raise EvalDataError(f"{path}: no rows")
    return pairs


def load_eval_pairs(data: str | Path, *, split: str = "test", snapshot_dir: Path | None = None) -> list[PreferencePair]:
    """Pairs from a JSONL file or a snapshot reference. Ties are dropped (accuracy needs a winner)."""
    path = Path(data)
    if path.is_file():
        if path.suffix not in (".jsonl", ".json"):
            raise EvalDataError(f"{path}: expected a .jsonl file of prompt/chosen/rejected rows or a snapshot folder")
        return read_pairs_jsonl(path)
    from rewardkit.data.snapshot import SnapshotNotFound, load_split, resolve_snapshot

    try:
        snapshot = resolve_snapshot(data, snapshot_dir)
        pairs = [p for p in load_split(snapshot, split) if not p.tie]
    except (SnapshotNotFound, ValueError) as exc:
        raise EvalDataError(str(exc)) from exc
    if not pairs:
        raise EvalDataError(f"snapshot {snapshot.name}: split {split!r} has no non-tie pairs")
    return pairs
