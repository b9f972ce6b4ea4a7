"""Drive one import: read files as a stream, parse each record, store in committed chunks, audit it.

With ``on_error="fail"`` (the default) a first pass parses every record of every file without touching
the store and stops at the first bad one, so a failed import commits nothing, not even its audit row.
The second pass (and the only pass with ``"skip"``) stores ``batch_size`` records per transaction and
calls ``on_commit`` with the running total after each commit: if the process dies, everything reported
committed is in the store, and its audit row stays ``running`` with its process recorded, so ``db check``
and ``dataset build`` report it as interrupted until the same import, run again, completes it (``audit.py``).
With ``"skip"`` every rejected record is written with its reason to the rejects
file (a temp file renamed into place at the end, never half-written).

Memory stays flat: one batch of parsed records is held at a time.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from sqlalchemy.orm import Session, sessionmaker

from rewardkit.atomic import share_like_open
from rewardkit.data.importers.audit import process_identity, supersede
from rewardkit.data.importers.errors import ImportFailed, RejectedRecord
from rewardkit.data.importers.formats import Format, get_format
from rewardkit.data.importers.options import ImportOptions
from rewardkit.data.importers.reader import check_readable, iter_records
from rewardkit.records import PairwiseJudgement, RecordError
from rewardkit.store.engine import session_scope
from rewardkit.store.queries import finish_import, start_import

OnError = Literal["fail", "skip"]


@dataclass(frozen=True)
class ImportConfig:
    """One ``rewardkit import`` run."""

    format: str
    """A name in ``FORMATS`` (trl, hh-rlhf, ultrafeedback, alpacaeval, events)."""
    paths: tuple[Path, ...]
    """Files (.jsonl, .jsonl.gz, .csv, .parquet) or Hugging Face datasets folders, imported in order."""
    on_error: OnError = "fail"
    """fail: a bad record stops the import and nothing is stored; skip: store the rest, write rejects."""
    rejects_path: Path | None = None
    """Where ``skip`` writes rejected records (JSONL with file, line/row, field, reason, record)."""
    source: str | None = None
    """Source dataset name stored on each comparison; default: the format's name."""
    annotator_id: str | None = None
    """Overrides the format's annotator id."""
    annotator_kind: str | None = None
    """Overrides the format's annotator kind (human | ai | implicit | rule)."""
    batch_size: int = 1000
    """Records per committed transaction."""

    def __post_init__(self) -> None:
        get_format(self.format)
        if not self.paths:
            raise ImportFailed("no input files given")
        if self.on_error not in ("fail", "skip"):
            raise ImportFailed(f"--on-error must be fail or skip, got {self.on_error!r}")
        if self.batch_size < 1:
            raise ImportFailed(f"batch size must be at least 1, got {self.batch_size}")
        for path in self.paths:
            check_readable(path)
        try:
            self.options
        except ValueError as exc:
            raise ImportFailed(str(exc)) from exc

    @property
    def options(self) -> ImportOptions:
        return ImportOptions(self.source or self.format, self.annotator_id, self.annotator_kind)


@dataclass
class ImportCounts:
    read: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    ties: int = 0  # valid records whose judgement is a pairwise tie


@dataclass
class ImportResult:
    import_id: int
    format: str
    paths: list[str]
    counts: ImportCounts
    rejects_path: str | None = None
    first_rejects: list[str] = field(default_factory=list)  # up to 5 messages, for the summary
    completed_imports: list[int] = field(default_factory=list)  # interrupted runs of this import it completed

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "counts": asdict(self.counts)}


def _parsed(fmt: Format, config: ImportConfig) -> Iterator[tuple[Any, RejectedRecord | None]]:
    """Every record of every file: ``(parsed, None)`` or ``(None, rejection)``."""
    options = config.options
    for path in config.paths:
        for location, raw in iter_records(path):
            if isinstance(raw, RecordError):
                yield None, RejectedRecord(location, raw.field, raw.message)
                continue
            try:
                yield fmt.parse(raw, options), None
            except RecordError as exc:
                yield None, RejectedRecord(location, exc.field, exc.message, raw)


def validate(config: ImportConfig, progress: Callable[[int], None] | None = None) -> int:
    """The ``fail`` mode's first pass: parse everything, raise ``ImportFailed`` at the first bad record."""
    fmt, n = get_format(config.format), 0
    for _, rejected in _parsed(fmt, config):
        if rejected is not None:
            raise ImportFailed(f"{rejected.message} (nothing was imported; use --on-error skip to import the rest)")
        n += 1
        if progress and n % 1000 == 0:
            progress(1000)
    return n


class _Rejects:
    """Rejected records to a temp file next to the target, renamed into place on close."""

    def __init__(self, path: Path | None) -> None:
        self.path, self._fh, self._tmp = path, None, None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            share_like_open(Path(tmp))  # mkstemp makes it owner-only
            self._tmp, self._fh = tmp, os.fdopen(fd, "w", encoding="utf-8")

    def write(self, rejected: RejectedRecord) -> None:
        if self._fh is not None:
            self._fh.write(json.dumps(rejected.to_json(), ensure_ascii=False, default=str) + "\n")

    def close(self, keep: bool) -> None:
        if self._fh is None:
            return
        fh: IO[str] = self._fh
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        if keep:
            os.replace(self._tmp, self.path)  # type: ignore[arg-type]
        else:
            os.unlink(self._tmp)  # type: ignore[arg-type]


def run_import(
    factory: sessionmaker[Session],
    config: ImportConfig,
    *,
    on_commit: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import ``config.paths``; see the module docstring. ``on_commit(n)`` gets the number of records
    committed so far (stored or found already stored); ``progress(n)`` the records just processed."""
    fmt = get_format(config.format)
    for path in config.paths:  # an empty file is a mistake (a wrong path, a failed export), not an import of nothing
        if next(iter_records(path), None) is None:
            raise ImportFailed(f"{path}: no records (the file is empty)")
    if config.on_error == "fail":
        validate(config)
    audit_paths = [str(p.resolve()) for p in config.paths]  # a re-run from another folder is the same import
    with session_scope(factory) as session:
        import_id = start_import(session, format=config.format, paths=audit_paths, process=process_identity())
    counts = ImportCounts()
    result = ImportResult(import_id, config.format, [str(p) for p in config.paths], counts)
    rejects = _Rejects(config.rejects_path if config.on_error == "skip" else None)
    batch: list[Any] = []

    def flush() -> None:
        with session_scope(factory) as session:
            added = fmt.add(session, batch, import_id)
        counts.imported += added.inserted
        counts.duplicates += added.duplicates
        if on_commit:
            on_commit(counts.imported + counts.duplicates)
        if progress:
            progress(len(batch))
        batch.clear()

    try:
        for parsed, rejected in _parsed(fmt, config):
            counts.read += 1
            if rejected is not None:
                if config.on_error == "fail":  # the file changed since the validation pass
                    raise ImportFailed(
                        f"{rejected.message} (the input changed during the import; the chunks before it were stored)"
                    )
                counts.rejected += 1
                rejects.write(rejected)
                if len(result.first_rejects) < 5:
                    result.first_rejects.append(rejected.message)
                continue
            if isinstance(getattr(parsed, "judgement", None), PairwiseJudgement) and parsed.judgement.choice == "tie":
                counts.ties += 1
            batch.append(parsed)
            if len(batch) >= config.batch_size:
                flush()
        if batch:
            flush()
    except BaseException:
        rejects.close(keep=False)
        with session_scope(factory) as session:
            finish_import(session, import_id, status="failed", counts=asdict(counts))
        raise
    rejects.close(keep=True)
    result.rejects_path = str(config.rejects_path) if config.rejects_path and config.on_error == "skip" else None
    with session_scope(factory) as session:
        finish_import(session, import_id, status="done", counts=asdict(counts))
        result.completed_imports = supersede(session, import_id, format=config.format, paths=audit_paths)
    return result
