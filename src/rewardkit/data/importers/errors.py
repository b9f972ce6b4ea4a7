"""Import errors that name the file, the line (or row) and the field, so a user can fix their data.

A record parser raises ``RecordError`` (``rewardkit.records``) naming the field; the reader raises
``RecordError`` for a line that is not JSON or not UTF-8. The import driver wraps either in a
``RejectedRecord`` with the location, which ``--on-error fail`` turns into one error line and
``--on-error skip`` writes to the rejects file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ImportFailed(ValueError):
    """An import cannot go on: a missing or unreadable file, an unknown format, or (``--on-error fail``)
    a bad record. The message is one line, meant for the user."""


@dataclass(frozen=True)
class Location:
    """Where a record came from: ``unit`` is "line" for JSONL and CSV (1-based, the header is line 1 of a
    CSV) and "row" for Parquet and Hugging Face folders (0-based, as pandas/datasets index them)."""

    path: str
    unit: str
    number: int

    def __str__(self) -> str:
        return f"{self.path}, {self.unit} {self.number}"


@dataclass(frozen=True)
class RejectedRecord:
    location: Location
    field: str
    reason: str
    record: Any = None  # the raw record when it could be parsed (for the rejects file)

    @property
    def message(self) -> str:
        return f"{self.location}: field '{self.field}': {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.location.path,
            self.location.unit: self.location.number,
            "field": self.field,
            "reason": self.reason,
            "record": self.record,
        }
