"""One ``rewardkit filter`` run on the local engine, and the record every run leaves beside its output.

``filter_file(scorer, INPUT, OUT, options)`` scores INPUT a chunk at a time into a temporary file beside OUT
(``files.score_file``), selects (``filter_files.select_scored``) and writes OUT, then the report: a manifest
(``OUT.manifest.json``: the model version and precision, the options, the input's fingerprint, kept/dropped
counts) and the score histograms before and after (``OUT.hist.png``), so a filtered dataset can be traced back
to what made it. The Ray engine (``rewardkit.engines.ray``) scores shards instead and writes the same report.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.atomic import atomic_file
from rewardkit.scoring.files import InputSummary, check_input, score_file
from rewardkit.scoring.filter_files import Selection, select_scored
from rewardkit.scoring.rows import InputError
from rewardkit.scoring.selection import KeepRule, histogram, parse_keep
from rewardkit.scoring.writers import check_output_path, writes_parquet


@dataclass(frozen=True)
class FilterOptions:
    """What to keep. Exactly one of ``keep`` and ``min_margin`` is set."""

    keep: str | None = None
    """A ``--keep`` rule (``selection.parse_keep``): top:P%, top:N, threshold:X, best-per-prompt, top-k-per-prompt:K."""
    min_margin: float | None = None
    """Make preference pairs instead: per prompt, its best row against its worst when they differ by this much."""
    normalized: bool = False
    """Select on ``score_normalized`` (the card's reference scale) instead of the raw ``score``."""

    def __post_init__(self) -> None:
        if (self.keep is None) == (self.min_margin is None):
            raise ValueError("give --keep RULE or --min-margin M (one of them)")
        if self.keep is not None:
            parse_keep(self.keep)  # a ValueError naming the rule
        if self.min_margin is not None and not (self.min_margin >= 0 and np.isfinite(self.min_margin)):
            raise ValueError(f"--min-margin must be a finite number >= 0, got {self.min_margin}")

    @property
    def rule(self) -> KeepRule | None:
        return None if self.keep is None else parse_keep(self.keep)

    @property
    def score_field(self) -> str:
        return "score_normalized" if self.normalized else "score"


def fingerprint(paths: Sequence[Path]) -> str:
    """sha256 over the bytes of every input file, in order (names included): the input a manifest names."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.name.encode() + b"\0")
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def plot_histograms(before: np.ndarray, after: np.ndarray, path: Path, label: str) -> None:
    """Score histograms of all rows and of the rows kept, on the same bins, as one PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, edges = histogram(before)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(before[np.isfinite(before)], bins=edges, alpha=0.5, label=f"all ({len(before)})")
    ax.hist(after[np.isfinite(after)], bins=edges, alpha=0.7, label=f"kept ({len(after)})")
    ax.set_xlabel(label)
    ax.set_ylabel("rows")
    ax.legend()
    fig.tight_layout()
    with atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def report_paths(out: Path, folder: bool) -> tuple[Path, Path]:
    """Where a run's manifest and histogram go: beside a file output, inside a folder output."""
    if folder:
        return out / "_manifest.json", out / "_hist.png"
    return out.with_name(out.name + ".manifest.json"), out.with_name(out.name + ".hist.png")


def write_report(
    selection: Selection,
    options: FilterOptions,
    *,
    out: Path,
    folder: bool,
    inputs: Sequence[str],
    input_fingerprint: str,
    model_version: str,
    precision: str,
    engine: str,
    seconds: float,
) -> dict[str, Any]:
    """Write the manifest and the histogram PNG; returns the manifest (the run's summary)."""
    manifest_path, plot_path = report_paths(out, folder)
    scores = selection.columns.scores
    kept = scores[selection.keep]
    manifest = {
        "rewardkit_filter": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "engine": engine,
        "model_version": model_version,
        "precision": precision,
        "options": asdict(options),
        "input": list(inputs),
        "input_sha256": input_fingerprint,
        "out": str(out),
        "rows": len(scores),
        "kept": int(selection.keep.sum()),
        "dropped": int(len(scores) - selection.keep.sum()),
        "written": selection.written,
        "pairs": selection.pairs,
        "score_field": options.score_field,
        "score_mean_before": float(scores.mean()) if len(scores) else None,
        "score_mean_after": float(kept.mean()) if len(kept) else None,
        "histogram": str(plot_path),
        "seconds": round(seconds, 3),
        **selection.details,
    }
    plot_histograms(scores, kept, plot_path, options.score_field)
    with atomic_file(manifest_path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def filter_file(
    scorer: Any,
    input_path: Path,
    out: Path,
    options: FilterOptions,
    checked: InputSummary | None = None,
    on_rows: Any = None,
) -> dict[str, Any]:
    """Score INPUT with ``scorer`` (a ``BatchScorer``), keep rows by ``options`` into OUT and write the report.
    Memory: a scoring chunk, plus 16 bytes per row for the selection (``filter_files``). ``checked``:
    ``files.check_input(input_path)`` when the caller ran it (the input is not read once more to check it)."""
    check_output_path(out, input_path)
    start = time.perf_counter()
    if checked is None or (checked.schema is None and writes_parquet(out)):
        checked = check_input(input_path, schema=writes_parquet(out))
    if checked.kind == "pair":
        raise InputError(
            f"{input_path}: rewardkit filter keeps single responses (prompt, response or messages), not pairs"
        )
    suffix = ".parquet" if writes_parquet(out) else ".jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".rk-filter-", dir=out.parent) as tmpdir:
        scored = Path(tmpdir) / f"scored{suffix}"
        score_file(scorer, input_path, scored, checked=checked, on_rows=on_rows)
        selection = select_scored(
            [scored], [out], options.rule, score_field=options.score_field, min_margin=options.min_margin
        )
    return write_report(
        selection,
        options,
        out=out,
        folder=False,
        inputs=[str(input_path)],
        input_fingerprint=fingerprint([input_path]),
        model_version=scorer.version,
        precision=scorer.precision,
        engine="local",
        seconds=time.perf_counter() - start,
    )
