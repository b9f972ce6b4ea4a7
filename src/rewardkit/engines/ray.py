"""The Ray Data engine: ``rewardkit score|filter|eval --engine ray`` over a cluster (or a local one).

    ray start --head                      # or: nothing, and a local cluster starts in-process
    RAY_ADDRESS=auto rewardkit score data/ --model M --out s3://bucket/scored/ --engine ray --actors 8

The input is a file or a folder of shards (.jsonl, .jsonl.gz, .csv, .parquet) on any pyarrow filesystem
(a local path, ``file://``, ``s3://``, ``gs://``). The unit of work is a shard: Ray Data's ``map_batches``
hands shards to a pool of actors (``ShardScorer``), each of which loads the model once (CPU threads or a GPU
from the options) and scores a shard exactly as the local engine scores a file (``scoring.files.score_file``:
a chunk at a time, input order kept, the same columns, written atomically), to the shard's name under OUT.
So the results are the local engine's, shard by shard; a shard is the unit of retry too: an actor that dies
is restarted and its shard scored again from the start (its output is only ever whole).

Every shard is checked first, by plain Ray tasks that load no model, so a bad row in shard 900 stops the run
before any scoring, naming the shard and its line. Evaluation scores rows (not files) with ``RowScorer``.
Ray is an optional extra: without it every entry point raises ``RayMissingError`` saying how to install it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.data.importers.reader import data_suffix
from rewardkit.scoring.rows import InputError

INSTALL_HINT = "Ray is not installed: pip install rewardkit[ray] (or pip install 'ray[data]>=2.9')"
SHARD_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".csv", ".parquet")


class RayMissingError(RuntimeError):
    """The ``ray`` extra is not installed."""


def require_ray() -> Any:
    """The ``ray`` module with Ray Data, or a RayMissingError with the one line that says how to get it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayMissingError(INSTALL_HINT) from None
    return ray


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide: the cluster, the actor pool, the resources of one actor."""

    address: str | None = None
    """A running cluster (``ray://host:10001``, ``auto``); None: ``RAY_ADDRESS``, else start a local one."""
    actors: int = 1
    """Actors in the pool, each holding one copy of the model."""
    cpus_per_actor: float = 1.0
    """CPUs each actor reserves; its torch threads are this many (at least one)."""
    gpus_per_actor: float = 0.0
    """GPUs each actor reserves (1: one GPU each; 0.5: two actors share one)."""
    max_restarts: int = 3
    """An actor that dies (a lost node, an out-of-memory kill) is restarted this many times and its shard
    retried; past that the run fails."""
    scorer: dict[str, Any] = field(default_factory=dict)
    """``load_scorer``'s options (max_length, token_budget, dtype, device)."""

    def __post_init__(self) -> None:
        if self.actors < 1:
            raise ValueError(f"--actors must be at least 1, got {self.actors}")
        if self.cpus_per_actor <= 0 or self.gpus_per_actor < 0:
            raise ValueError("--actor-cpus must be > 0 and --actor-gpus >= 0")

    def pool_args(self) -> dict[str, Any]:
        """``map_batches`` keywords for an actor pool of these actors."""
        args: dict[str, Any] = {
            "concurrency": self.actors,
            "num_cpus": self.cpus_per_actor,
            "max_restarts": self.max_restarts,
            "max_task_retries": self.max_restarts,
        }
        if self.gpus_per_actor:
            args["num_gpus"] = self.gpus_per_actor
        return args

    def scorer_options(self) -> dict[str, Any]:
        options = {"threads": max(1, int(self.cpus_per_actor))} | self.scorer
        if self.gpus_per_actor and options.get("device", "auto") == "auto":
            options["device"] = "cuda"
        return options


def connect(options: RayOptions) -> float:
    """Join the cluster ``options.address`` or ``RAY_ADDRESS`` names, else start a local one; returns seconds."""
    ray = require_ray()
    start = time.perf_counter()
    if not ray.is_initialized():
        address = options.address or os.environ.get("RAY_ADDRESS")
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False)
    quiet()
    return time.perf_counter() - start


def quiet() -> None:
    """No Ray Data progress bars or per-dataset log lines on the terminal: rewardkit prints its own summary."""
    import logging

    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    if hasattr(context, "enable_operator_progress_bars"):
        context.enable_operator_progress_bars = False
    for name in ("ray.data", "ray.data._internal.execution.streaming_executor"):
        logging.getLogger(name).setLevel(logging.WARNING)


def pool_map(ds: Any, actor_cls: type, *, options: RayOptions, **kwargs: Any) -> Any:
    """``ds.map_batches`` over an actor pool of ``options``. max_restarts / max_task_retries go as Ray remote
    arguments: Ray >= 2.60 warns that these are deprecated without naming a replacement for them, and Ray
    Data's own default (restart and retry without limit) would retry a shard that always kills its actor
    forever, so they stay, with that one warning silenced."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        return ds.map_batches(actor_cls, **kwargs, **options.pool_args())


# --- files on any pyarrow filesystem -----------------------------------------------------------------


def resolve(uri: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path on it) of a local path or a URI (file://, s3://, gs://, hdfs://)."""
    from pyarrow import fs

    if "://" in uri:
        return fs.FileSystem.from_uri(uri)
    return fs.LocalFileSystem(), str(Path(uri).resolve())


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def join(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


def list_shards(uri: str) -> list[tuple[str, str]]:
    """(full URI of a shard, its name relative to ``uri``) for a file, or every data file under a folder in
    name order (files and folders starting with ``_`` or ``.`` are skipped, as Spark and Ray write them)."""
    from pyarrow import fs

    filesystem, path = resolve(uri)
    info = filesystem.get_file_info(path)
    if info.type == fs.FileType.NotFound:
        raise InputError(f"{uri}: no such file or folder")
    if info.type == fs.FileType.File:
        return [(uri, Path(path).name)]
    found = []
    for f in filesystem.get_file_info(fs.FileSelector(path, recursive=True)):
        relative = f.path[len(path.rstrip("/")) + 1 :]
        hidden = any(part.startswith(("_", ".")) for part in relative.split("/"))
        if f.type == fs.FileType.File and not hidden and f.path.lower().endswith(SHARD_SUFFIXES):
            found.append((join(uri, relative), relative))
    if not found:
        raise InputError(f"{uri}: no data files in this folder (expected {', '.join(SHARD_SUFFIXES)})")
    return sorted(found, key=lambda item: item[1])


@contextmanager
def local_copy(uri: str) -> Iterator[Path]:
    """A local path holding the file ``uri``: the file itself on a local filesystem, else a temporary copy."""
    if "://" not in uri:
        yield Path(uri)
        return
    filesystem, path = resolve(uri)
    if uri.startswith("file://"):
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="rk-shard-") as tmp:
        local = Path(tmp) / Path(path).name
        with filesystem.open_input_stream(path) as src, local.open("wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
        yield local


@contextmanager
def local_target(uri: str) -> Iterator[Path]:
    """A local path to write; when the block ends without an error its file is at ``uri`` (uploaded whole
    for a remote filesystem, where an object appears only when complete)."""
    if is_local(uri):
        yield Path(resolve(uri)[1])
        return
    filesystem, path = resolve(uri)
    with tempfile.TemporaryDirectory(prefix="rk-out-") as tmp:
        local = Path(tmp) / Path(path).name
        yield local
        filesystem.create_dir(str(Path(path).parent), recursive=True)
        with local.open("rb") as src, filesystem.open_output_stream(path) as dst:
            while block := src.read(1 << 20):
                dst.write(block)


def renamed(message: str, local: Path, uri: str) -> str:
    """An error about a temporary copy, naming the shard as the user knows it."""
    return message.replace(str(local), uri)


# --- the checking pass (tasks, no model) and the scoring pass (actors, one model each) ---------------


def check_shard(batch: dict[str, np.ndarray]) -> dict[str, Any]:
    """Ray task: ``files.check_input`` on each shard of the batch; an error is returned, not raised, so the
    driver reports the first bad shard by name (a raised error arrives wrapped in Ray's)."""
    from rewardkit.scoring.files import check_input

    kinds, rows, errors = [], [], []
    for src in batch["src"]:
        with local_copy(str(src)) as local:
            try:
                summary = check_input(local)
                kinds.append(summary.kind)
                rows.append(summary.rows)
                errors.append("")
            except InputError as exc:
                kinds.append("")
                rows.append(0)
                errors.append(renamed(str(exc), local, str(src)))
    return {"index": batch["index"], "kind": kinds, "rows": rows, "error": errors}


class ShardScorer:
    """Ray actor: loads the model once, then scores whole shards as the local engine scores a file."""

    def __init__(self, model: str, scorer_options: dict[str, Any]) -> None:
        from rewardkit.scoring.scorer import load_scorer

        self.scorer = load_scorer(model, **scorer_options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from rewardkit.scoring.files import score_file

        rows, truncated, errors, began, ended = [], [], [], [], []
        for src, dst in zip(batch["src"], batch["dst"], strict=True):
            began.append(time.time())  # wall clock, comparable across actors on one machine
            with local_copy(str(src)) as local:
                try:
                    with local_target(str(dst)) as target:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        scored = score_file(self.scorer, local, target)
                    rows.append(scored.rows)
                    truncated.append(scored.truncated_rows)
                    errors.append("")
                except InputError as exc:  # a conversation the chat template refuses: the driver reports it
                    rows.append(0)
                    truncated.append(0)
                    errors.append(renamed(str(exc), local, str(src)))
            ended.append(time.time())
        return {
            "index": batch["index"],
            "began": began,
            "ended": ended,
            "rows": rows,
            "truncated": truncated,
            "error": errors,
            "version": [self.scorer.version] * len(rows),
            "precision": [self.scorer.precision] * len(rows),
        }


@dataclass
class ShardRun:
    """What ``score_shards`` did: rows and truncated rows per shard, the model, and where time went."""

    outputs: list[str]
    rows: int
    truncated_rows: int
    model_version: str
    precision: str
    startup_seconds: float
    """Joining or starting the cluster."""
    seconds: float
    """The whole run after startup: the checking pass, actors starting and loading the model, scoring."""
    scoring_seconds: float
    """From the first shard an actor began to score to the last it finished: the pool's throughput, without
    the cluster's startup or the models' loading (a benchmark compares it with the local engine's scoring)."""


def out_name(relative: str, out_suffix: str | None) -> str:
    """A shard's output name: its input name, in another format when ``out_suffix`` is given."""
    if out_suffix is None:
        return relative
    return relative[: len(relative) - len(data_suffix(relative))] + out_suffix


def score_shards(
    model: str,
    input_uri: str,
    out_uri: str,
    options: RayOptions,
    *,
    out_suffix: str | None = None,
    actor_cls: type = ShardScorer,
) -> ShardRun:
    """Score every shard of ``input_uri`` into ``out_uri`` (a folder: each shard under its own name, in
    ``out_suffix``'s format if given) with a pool of ``options.actors`` actors. ``actor_cls``: the actor
    (a subclass in tests, which kill one mid-run)."""
    ray = require_ray()
    startup = connect(options)
    start = time.perf_counter()
    shards = list_shards(input_uri)
    items = [
        {"index": i, "src": src, "dst": join(out_uri, out_name(rel, out_suffix))} for i, (src, rel) in enumerate(shards)
    ]
    if any(dst == src for src, dst in ((i["src"], i["dst"]) for i in items)):
        raise InputError(f"{out_uri}: is the input folder; writing there would replace the shards")
    checks = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(check_shard, batch_size=1)
    results = sorted(checks.take_all(), key=lambda r: r["index"])
    for r in results:
        if r["error"]:
            raise InputError(r["error"])
    kinds = {r["kind"] for r in results}
    if len(kinds) > 1:
        first = results[0]["kind"]
        odd = next(items[r["index"]]["src"] for r in results if r["kind"] != first)
        raise InputError(
            f"{odd}: its rows are {kinds - {first}} rows, the first shard's are {first}: one shape for all"
        )
    ds = pool_map(
        ray.data.from_items(items, override_num_blocks=len(items)),
        actor_cls,
        batch_size=1,
        fn_constructor_kwargs={"model": model, "scorer_options": options.scorer_options()},
        options=options,
    )
    scored = sorted(ds.take_all(), key=lambda r: r["index"])
    for r in scored:
        if r["error"]:
            raise InputError(r["error"])
    return ShardRun(
        outputs=[i["dst"] for i in items],
        rows=sum(int(r["rows"]) for r in scored),
        truncated_rows=sum(int(r["truncated"]) for r in scored),
        model_version=str(scored[0]["version"]) if scored else "",
        precision=str(scored[0]["precision"]) if scored else "",
        startup_seconds=startup,
        seconds=time.perf_counter() - start,
        scoring_seconds=max(float(r["ended"]) for r in scored) - min(float(r["began"]) for r in scored),
    )


# --- rows (evaluation) -----------------------------------------------------------------------------


class RowScorer:
    """Ray actor: loads the model once, then scores batches of (prompt, response) rows."""

    def __init__(self, model: str, scorer_options: dict[str, Any]) -> None:
        from rewardkit.scoring.scorer import load_scorer

        self.scorer = load_scorer(model, **scorer_options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        prompts = [json.loads(p) for p in batch["prompt"]]
        result = self.scorer.score(prompts, [str(r) for r in batch["response"]])
        norms = result.embedding_norm if result.embedding_norm is not None else np.full(len(prompts), np.nan)
        return {"i": batch["i"], "score": np.asarray(result.raw, dtype=float), "norm": np.asarray(norms, dtype=float)}


@dataclass
class RayScoreFn:
    """An evaluation ``ScoreFn`` (``rewardkit.evaluate.score_fns``) that scores on Ray: each call is one Ray
    Data job of ``rows_per_batch``-row batches over an actor pool. ``rewardkit.evaluate.run`` prefetches every
    row it will need in one call, so a run starts its actors about once. ``encode`` (what the probes use to
    see which edits the model can see) loads the tokenizer side of the scorer on the driver, on the CPU."""

    model: str
    options: RayOptions
    rows_per_batch: int = 1024
    _local: Any = None

    def __call__(self, prompts: list[Any], responses: list[str]) -> np.ndarray:
        return self.with_features(prompts, responses)[0]

    def with_features(self, prompts: list[Any], responses: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        ray = require_ray()
        connect(self.options)
        n = len(responses)
        if n == 0:
            return np.zeros(0), {}
        items = [{"i": i, "prompt": json.dumps(p), "response": r} for i, (p, r) in enumerate(zip(prompts, responses))]
        blocks = max(self.options.actors, math.ceil(n / self.rows_per_batch))
        ds = pool_map(
            ray.data.from_items(items, override_num_blocks=blocks),
            RowScorer,
            batch_size=self.rows_per_batch,
            fn_constructor_kwargs={"model": self.model, "scorer_options": self.options.scorer_options()},
            options=self.options,
        )
        scores, norms = np.zeros(n), np.zeros(n)
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            scores[batch["i"]] = batch["score"]
            norms[batch["i"]] = batch["norm"]
        return scores, ({} if np.isnan(norms).any() else {"embedding_norm": norms})

    def encode(self, prompts: list[Any], responses: list[str]) -> Any:
        if self._local is None:
            from rewardkit.scoring.scorer import load_scorer

            self._local = load_scorer(self.model, **(self.options.scorer | {"device": "cpu"}))
        return self._local.encode(prompts, responses)
