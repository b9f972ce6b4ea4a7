"""Where review candidates come from: a file of pairs, a dataset snapshot, or the served-score log.

- **FILE**: rows of a JSONL / CSV / Parquet file with ``prompt`` and ``response_a``/``response_b`` (or
  ``chosen``/``rejected``), plus whatever ``rewardkit score`` wrote for pairs: ``score_a``, ``score_b``,
  ``p_a_better``, ``score_a_std``/``score_b_std`` (ensembles), and optionally ``member_margins`` (a list per
  row). Scoring strategies need those fields; ``random`` and ``diversity`` need none.
- **snapshot**: the pairs of a snapshot split (no scores: ``random`` or ``diversity``, or export them with
  ``rewardkit dataset export`` and score them first).
- **log**: the logged served scores (``store.score_log.iter_served_scores``) since a time; responses to the
  same prompt under the same model version are paired (each response with the next one logged for that
  prompt), their scores and ensemble stds (``uncertainty``) carried over, P(a > b) = sigmoid((s_a - s_b) / T).
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from rewardkit.records import RecordError, canonical_json, validate_prompt
from rewardkit.review.candidates import Candidate

PAIR_KEYS = (("response_a", "response_b"), ("chosen", "rejected"))


class SourceError(ValueError):
    """A candidate source that cannot be read (names the file and line, or the snapshot)."""


def _number(row: dict[str, Any], key: str, where: str) -> float | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SourceError(f"{where}: field '{key}': expected a number, got {type(value).__name__}")
    try:
        number = float(value)
    except ValueError:
        raise SourceError(f"{where}: field '{key}': expected a number, got {value!r}") from None
    if math.isnan(number):
        raise SourceError(f"{where}: field '{key}': is NaN")
    return number


def candidate_from_row(row: dict[str, Any], where: str, origin: dict[str, Any]) -> Candidate:
    """One file row -> a Candidate, or SourceError naming the row and field."""
    try:
        prompt = validate_prompt(row.get("prompt"))
    except RecordError as exc:
        raise SourceError(f"{where}: {exc}") from None
    keys = next((k for k in PAIR_KEYS if k[0] in row and k[1] in row), None)
    if keys is None:
        raise SourceError(f"{where}: expected response_a and response_b (or chosen and rejected); got {sorted(row)}")
    texts = tuple(row[k] for k in keys)
    for key, text in zip(keys, texts, strict=True):
        if not isinstance(text, str):
            raise SourceError(f"{where}: field '{key}': expected text, got {type(text).__name__}")
    if texts[0] == texts[1]:
        raise SourceError(f"{where}: the two responses are identical")
    margins = row.get("member_margins")
    if margins is not None and not (isinstance(margins, list) and all(isinstance(m, int | float) for m in margins)):
        raise SourceError(f"{where}: field 'member_margins': expected a list of numbers")
    return Candidate(
        prompt=prompt,
        responses=texts,
        origin=origin,
        score_a=_number(row, "score_a", where),
        score_b=_number(row, "score_b", where),
        p_a=_number(row, "p_a_better", where),
        std_a=_number(row, "score_a_std", where),
        std_b=_number(row, "score_b_std", where),
        member_margins=tuple(float(m) for m in margins) if margins is not None else None,
    )


def from_file(path: Path) -> list[Candidate]:
    from rewardkit.data.importers.errors import ImportFailed
    from rewardkit.data.importers.reader import check_readable, iter_records

    try:
        check_readable(path)
        out = []
        for i, (location, record) in enumerate(iter_records(path)):
            where = str(location)
            if isinstance(record, RecordError):
                raise SourceError(f"{where}: {record}")
            out.append(candidate_from_row(record, where, {"kind": "file", "path": str(path), "row": i}))
        return out
    except ImportFailed as exc:
        raise SourceError(str(exc)) from None


def from_snapshot(ref: str, split: str = "train") -> list[Candidate]:
    from rewardkit.data.snapshot import SnapshotNotFound, iter_split, resolve_snapshot

    try:
        folder = resolve_snapshot(ref)
    except SnapshotNotFound as exc:
        raise SourceError(str(exc)) from None
    if not (folder / f"{split}.jsonl").is_file():
        raise SourceError(f"snapshot {folder.name} has no split {split!r}")
    return [
        Candidate(
            prompt=pair.prompt,
            responses=(pair.chosen, pair.rejected),
            origin={"kind": "snapshot", "snapshot": folder.name, "split": split, "pair_id": pair.id},
        )
        for pair in iter_split(folder, split)
        if pair.chosen != pair.rejected
    ]


def _sigmoid(x: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * x))


def from_log(session: Session, *, since: datetime, temperature: float = 1.0) -> list[Candidate]:
    from rewardkit.store.score_log import iter_served_scores

    if temperature <= 0:
        raise SourceError(f"temperature must be > 0, got {temperature}")
    last: dict[tuple[str, str], dict[str, Any]] = {}
    out = []
    for row in iter_served_scores(session, since=since):
        key = (canonical_json(row["prompt"]), row["model_version"])
        previous = last.get(key)
        last[key] = row
        if previous is None or previous["response"] == row["response"]:
            continue
        out.append(
            Candidate(
                prompt=row["prompt"],
                responses=(previous["response"], row["response"]),
                origin={"kind": "log", "score_ids": [previous["id"], row["id"]], "model_version": row["model_version"]},
                score_a=previous["score"],
                score_b=row["score"],
                p_a=_sigmoid((previous["score"] - row["score"]) / temperature),
                std_a=previous["uncertainty"],
                std_b=row["uncertainty"],
            )
        )
        del last[key]  # each logged response is paired once
    return out
