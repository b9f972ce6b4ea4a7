"""What every record parser needs to know besides the record: where the data comes from and who judged it."""

from __future__ import annotations

from dataclasses import dataclass

from rewardkit.records import ANNOTATOR_KINDS


@dataclass(frozen=True)
class ImportOptions:
    source: str
    """Source dataset name stored on every comparison (``--source``; default: the format's name)."""
    annotator_id: str | None = None
    """Overrides the annotator id a format would use (e.g. ``hh-rlhf-crowdworkers``)."""
    annotator_kind: str | None = None
    """Overrides the annotator kind a format would use (human | ai | implicit | rule)."""

    def __post_init__(self) -> None:
        if not self.source.strip():
            raise ValueError("source must not be empty")
        if self.annotator_kind is not None and self.annotator_kind not in ANNOTATOR_KINDS:
            raise ValueError(f"annotator kind must be one of {', '.join(ANNOTATOR_KINDS)}, got {self.annotator_kind!r}")
