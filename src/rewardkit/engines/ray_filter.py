"""``rewardkit filter --engine ray``: score shards on the actor pool, then select exactly, the passes spread
over Ray tasks.

1. ``ray.score_shards`` scores every input shard into ``OUT/_scored/`` (same names, same order);
2. one Ray task per scored shard reads its scores (and prompt hashes): ``filter_files.read_scores``;
3. the driver concatenates them in shard order (16 bytes a row: 100 million rows are 1.6 GB) and selects with
   the same pure functions as the local engine (``selection``), so the rows kept are the same, exactly,
   ties and all; no quantile sketch, no approximation;
4. one Ray task per shard writes its kept rows to ``OUT/<shard name>`` (preference pairs, which join rows
   from anywhere, are written by the driver to ``OUT/pairs.jsonl``);
5. the manifest and histograms go to ``OUT/_manifest.json`` and ``OUT/_hist.png``; ``_scored/`` is removed.

The tasks read and write plain paths, so OUT must be a folder every node sees (local disk for a one-machine
cluster, NFS or another shared mount for several).
"""

from __future__ import annotations

import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.engines.ray import RayOptions, list_shards, local_copy, require_ray, resolve, score_shards
from rewardkit.scoring.filter_files import ScoredColumns, Selection, read_scores, write_kept, write_pairs
from rewardkit.scoring.filter_run import FilterOptions, fingerprint, write_report
from rewardkit.scoring.rows import InputError
from rewardkit.scoring.selection import preference_pairs, select


def _read(shard: str, score_field: str, with_groups: bool) -> ScoredColumns:
    return read_scores([Path(shard)], score_field, with_groups)


def _write(shard: str, out: str, keep: np.ndarray, fields: list[str]) -> int:
    from rewardkit.scoring.filter_files import output_schema

    return write_kept(Path(shard), Path(out), keep, fields, output_schema(Path(shard)))


def select_shards(scored: list[Path], scored_root: Path, out: Path, options: FilterOptions) -> Selection:
    """Select over scored shards (under ``scored_root``, in order) and write each shard's kept rows to the same
    name under ``out`` (pairs: ``out/pairs.jsonl``), the reading and writing in one Ray task per shard."""
    ray = require_ray()
    field, rule = options.score_field, options.rule
    with_groups = options.min_margin is not None or (rule is not None and rule.per_prompt)
    read = ray.remote(_read)
    parts: list[ScoredColumns] = ray.get([read.remote(str(s), field, with_groups) for s in scored])
    columns = ScoredColumns(
        np.concatenate([p.scores for p in parts]),
        np.concatenate([p.groups for p in parts]) if with_groups else None,  # type: ignore[misc]
        list(dict.fromkeys(f for p in parts for f in p.fields)),
        next((p.kind for p in parts if p.scores.size), "single"),
        [len(p.scores) for p in parts],
    )
    if options.min_margin is not None:
        chosen, rejected = preference_pairs(columns.scores, columns.groups, options.min_margin)
        written = write_pairs(scored, columns, chosen, rejected, out / "pairs.jsonl", field)
        keep = np.zeros(len(columns.scores), dtype=bool)
        keep[chosen] = keep[rejected] = True
        return Selection(columns, keep, written, pairs=True, details={"pairs": written})
    assert rule is not None
    keep = select(rule, columns.scores, columns.groups)
    write = ray.remote(_write)
    bounds = np.cumsum([0, *columns.rows_per_shard])
    pending = [
        write.remote(str(s), str(out / s.relative_to(scored_root)), keep[a:b], columns.fields)
        for s, a, b in zip(scored, bounds[:-1], bounds[1:], strict=True)
    ]
    details = {"score_cutoff": float(columns.scores[keep].min())} if rule.kind == "top" and keep.any() else {}
    return Selection(columns, keep, int(sum(ray.get(pending))), details=details)


def filter_shards(
    model: str, input_uri: str, out: Path, options: FilterOptions, ray_options: RayOptions
) -> dict[str, Any]:
    """Score ``input_uri``'s shards on Ray, keep rows by ``options`` into the folder ``out``; returns the
    manifest (``filter_run.write_report``)."""
    if "://" in str(out):
        raise InputError(f"{out}: rewardkit filter --engine ray writes to a folder every node sees (not a URI)")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is a file; rewardkit filter --engine ray writes a folder of shards")
    start = time.perf_counter()
    scored_dir = out / "_scored"
    run = score_shards(model, input_uri, str(scored_dir), ray_options)
    try:
        selection = select_shards(
            [Path(resolve(o)[1]) for o in run.outputs], Path(resolve(str(scored_dir))[1]), out, options
        )
    finally:
        shutil.rmtree(scored_dir, ignore_errors=True)
    with ExitStack() as stack:  # remote shards are hashed from temporary copies
        digest = fingerprint([stack.enter_context(local_copy(src)) for src, _ in list_shards(input_uri)])
    return write_report(
        selection,
        options,
        out=out,
        folder=True,
        inputs=[input_uri],
        input_fingerprint=digest,
        model_version=run.model_version,
        precision=run.precision,
        engine="ray",
        seconds=time.perf_counter() - start,
    ) | {"startup_seconds": round(run.startup_seconds, 3)}
