"""Preference pairs read straight from a file, for ``rewardkit train --data`` and ``rewardkit eval --data``
(no database, no snapshot).

Any file the importers read (``.jsonl`` / ``.json``, ``.jsonl.gz``, ``.csv``, ``.parquet`` or a folder saved by
``datasets``; ``importers/reader.py``) of TRL preference rows in any of TRL's four shapes (``importers/trl.py``:
explicit or implicit prompt, text or chat messages). Optional columns: ``margin`` (a number, the margin
losses use), ``attribute``, ``subset`` (RewardBench's column: kept as ``metadata["subset"]``, and as the source
when there is none), ``category`` (kept as ``metadata["category"]``: the evaluation groups accuracy by it),
``annotator`` (who labelled the row, ``metadata["annotator"]``: between-annotator agreement needs it),
``source``, ``annotator_kind``, ``id``.

An implicit text prompt in HH-RLHF transcript form (``"\\n\\nHuman: ... \\n\\nAssistant: ..."``) is cut after
the last ``"\\n\\nAssistant:"`` both sides share (``split_shared_prompt``) rather than at their longest common
prefix, which would move the first words the two replies happen to share into the prompt.

Unlike an import, reading is all-or-nothing: the first unusable record is an error naming the file, the line
(or row) and the field, because a training or evaluation set with rows silently left out is another set.
The one exception is a row whose chosen and rejected are the same text: it carries no preference (its
Bradley-Terry gradient is zero) and is left out with a logged count. A ``DatasetDict`` folder is read one
split at a time.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from rewardkit.data.importers import fields, trl
from rewardkit.data.importers.errors import ImportFailed
from rewardkit.data.importers.reader import check_readable, data_suffix, dataset_splits, iter_records
from rewardkit.records import PreferencePair, Prompt, RecordError, content_hash, prompt_text

log = logging.getLogger(__name__)

TRANSCRIPT_MARKER = "\n\nAssistant:"


class PairFileError(ValueError):
    """A pair file cannot be used; the one-line message names the file, the line or row, and the field."""


def source_name(path: Path) -> str:
    """The file's name without its data suffix (run.v2.jsonl.gz -> run.v2): a pair's default source."""
    suffix = data_suffix(path.name)
    return path.name[: len(path.name) - len(suffix)] or path.name


def is_pair_file(path: Path) -> bool:
    """A file with a suffix the reader knows, or a ``datasets`` folder (not a snapshot folder)."""
    if path.is_dir():
        return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()
    return bool(data_suffix(path.name))


def split_shared_prompt(
    chosen: str, rejected: str, marker: str = TRANSCRIPT_MARKER, common: str | None = None
) -> tuple[str, str, str]:
    """HH-RLHF transcripts: the prompt is the shared prefix up to (and including) the last shared marker.
    ``common``: that prefix when the caller has it (a per-character scan)."""
    common = os.path.commonprefix([chosen, rejected]) if common is None else common
    cut = common.rfind(marker)
    cut = cut + len(marker) if cut >= 0 else len(common)
    return chosen[:cut], chosen[cut:].strip() or chosen, rejected[cut:].strip() or rejected


def record_pair(record: dict[str, Any]) -> tuple[Prompt, str, str]:
    """(prompt, chosen, rejected) of one TRL row; a ``RecordError`` naming the field when it is not one."""
    chosen, rejected = record.get("chosen"), record.get("rejected")
    if (
        record.get("prompt") is None
        and isinstance(chosen, str)
        and isinstance(rejected, str)
        and TRANSCRIPT_MARKER in chosen
    ):
        common = os.path.commonprefix([chosen, rejected])  # scanned once, only for rows that may be transcripts
        if TRANSCRIPT_MARKER in common:
            prompt, chosen, rejected = split_shared_prompt(chosen, rejected, common=common)
            fields.distinct(chosen, rejected)
            return prompt, chosen, rejected
    return trl.pair(record)


def pair_from_record(record: dict[str, Any], default_source: str) -> PreferencePair:
    prompt, chosen, rejected = record_pair(record)
    subset = fields.optional_text(record, "subset")
    raw_id = record.get("id")
    return PreferencePair(
        id=str(raw_id) if raw_id not in (None, "") else content_hash([prompt, chosen, rejected]),
        prompt=prompt,
        chosen=chosen,
        rejected=rejected,
        margin=fields.optional_number(record, "margin"),
        source=fields.optional_text(record, "source") or subset or default_source,
        annotator_kind=fields.optional_text(record, "annotator_kind"),
        attribute=fields.optional_text(record, "attribute") or None,
        prompt_id=content_hash(prompt_text(prompt)),
        metadata={
            k: v
            for k, v in (
                ("subset", subset),
                ("category", fields.optional_text(record, "category")),
                ("annotator", fields.optional_text(record, "annotator")),
            )
            if v
        },
    )


def read_pair_file(path: Path, split: str | None = None) -> list[PreferencePair]:
    """Every row of ``path`` as a ``PreferencePair``, or a ``PairFileError`` for the first unusable one.

    A ``DatasetDict`` folder needs ``split`` (its splits are separate data: train and test must not be read as
    one); for any other file ``split`` is ignored. Rows whose chosen and rejected are the
    same text carry no preference and are left out, with a count in the log (full HH-RLHF has some)."""
    splits = dataset_splits(path)
    if splits:
        if split not in splits:
            raise PairFileError(
                f"{path}: a DatasetDict with splits {', '.join(splits)}; choose one (asked for {split!r})"
            )
        path = path / split
    try:
        check_readable(path)  # exists, readable, a known kind
        default_source = source_name(path)
        pairs, identical = [], 0
        for location, record in iter_records(path):
            try:
                if isinstance(record, RecordError):
                    raise record
                if record.get("chosen") is not None and record.get("chosen") == record.get("rejected"):
                    identical += 1
                    continue
                pairs.append(pair_from_record(record, default_source))
            except RecordError as exc:
                raise PairFileError(
                    f"{location}: {exc} (expected TRL preference rows: prompt, chosen, rejected)"
                ) from None
    except ImportFailed as exc:
        raise PairFileError(str(exc)) from None
    if identical:
        log.warning(
            "%s: %d row(s) whose chosen and rejected are identical left out (no preference to learn)", path, identical
        )
    if not pairs:
        raise PairFileError(
            f"{path}: no rows" + (f" ({identical} with chosen identical to rejected)" if identical else "")
        )
    return pairs
