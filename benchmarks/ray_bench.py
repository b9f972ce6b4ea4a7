"""The Ray engine's overhead: a local Ray cluster scoring Parquet shards vs the local engine, in the same run.

Run: ``.venv/bin/python benchmarks/ray_bench.py [--texts 2000] [--shards 8] [--cpus 2] [--model default|tiny|PATH]``
(needs ../shared/data and the ray extra: pip install rewardkit[ray]).

The texts: GSM8K model solutions with their question as the prompt (../shared/data/gsm8k), ``--texts`` of
them dealt into ``--shards`` Parquet files. The local engine scores each shard with one scorer of ``--cpus``
torch threads, then of one (``scoring.files.score_file``; the faster is the one compared: on a loaded machine
one thread ran 5x faster than two); the Ray engine starts a local cluster of ``--cpus`` CPUs and
scores the same shards with ``--cpus`` actors of one CPU each (``engines.ray.score_shards``). Both in fp32 on
the same model, so the only difference is Ray's. Printed: the CPU (model name, avx/amx flags) beside every
figure, each engine's sequences/s while scoring, the ratio (target: Ray >= 80% of local), the largest score
difference, and, apart, the startup: the cluster's start, and the actors' start and model load.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
SHARED = ROOT.parent / "shared" / "data"
SOLVERS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def cpu_line() -> str:
    """The CPU's model name and its vector flags (avx*, amx*), as lscpu reports them."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "cpu: unknown (no lscpu)"
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    name = fields.get("Model name", "?").strip()
    flags = sorted(f for f in fields.get("Flags", "").split() if f.startswith(("avx", "amx")))
    return f"cpu: {name} [{' '.join(flags) or 'no avx/amx'}]"


def texts(n: int) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    with gzip.open(SHARED / "gsm8k" / "model_solutions.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            rows += [{"prompt": record["question"], "response": record[s]["solution"]} for s in SOLVERS]
            if len(rows) >= n:
                break
    return rows[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument(
        "--model", default="default", help="a model path or Hub id; 'tiny': a random 2-layer BERT (Ray's share largest)"
    )
    args = parser.parse_args()

    import ray

    from rewardkit.engines.ray import RayOptions, score_shards
    from rewardkit.scoring.files import score_file
    from rewardkit.scoring.rows import read_rows
    from rewardkit.scoring.scorer import load_scorer
    from rewardkit.scoring.writers import write_rows

    cpu = cpu_line()
    rows = texts(args.texts)
    with tempfile.TemporaryDirectory(prefix="rk-ray-bench-") as tmp:
        model_name = args.model
        if args.model == "tiny":
            sys.path.insert(0, str(ROOT / "tests"))  # the tests' tiny model (a benchmark is no package of tests)
            from rk_testing.tiny_models import build_tiny_model

            args.model = str(build_tiny_model(Path(tmp) / "tiny"))
        folder = Path(tmp) / "in"
        folder.mkdir()
        for i in range(args.shards):
            write_rows(rows[i :: args.shards], folder / f"part-{i:03d}.parquet")
        shards = sorted(folder.iterdir())

        local_rates = {}  # torch threads -> seq/s; on a loaded machine one thread can beat two by far
        for threads in sorted({args.cpus, 1}, reverse=True):
            start = time.perf_counter()
            scorer = load_scorer(args.model, dtype="fp32", threads=threads)
            local_load = time.perf_counter() - start
            start = time.perf_counter()
            for shard in shards:
                score_file(scorer, shard, Path(tmp) / "local" / shard.name)
            local_rates[threads] = (len(rows) / (time.perf_counter() - start), local_load)

        start = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        cluster_s = time.perf_counter() - start
        options = RayOptions(actors=args.cpus, cpus_per_actor=1, scorer={"dtype": "fp32"})
        run = score_shards(args.model, str(folder), str(Path(tmp) / "ray"), options)
        ray.shutdown()

        diff = max(
            abs(a["score"] - b["score"])
            for shard in shards
            for a, b in zip(read_rows(Path(tmp) / "ray" / shard.name), read_rows(Path(tmp) / "local" / shard.name))
        )
    n = len(rows)
    ray_rate = run.rows / run.scoring_seconds
    print(f"{cpu}")
    print(f"texts: {n} in {args.shards} Parquet shards, model {model_name}, fp32, {args.cpus} CPUs")
    for threads, (rate, load) in local_rates.items():
        print(f"local engine, {threads} torch threads: {rate:8.1f} seq/s (model load {load:.1f} s)  [{cpu}]")
    local_rate = max(rate for rate, _ in local_rates.values())  # Ray is compared with the local engine's best
    print(
        f"ray engine:   {ray_rate:8.1f} seq/s ({run.scoring_seconds:.1f} s scoring, {args.cpus} actors x 1 CPU) [{cpu}]"
    )
    print(f"ray / local:  {ray_rate / local_rate:.2f} (target >= 0.80)  largest score difference {diff:.2e}  [{cpu}]")
    print(
        f"startup (apart): cluster {cluster_s:.1f} s; checking pass, actors' start and model load "
        f"{run.seconds - run.scoring_seconds:.1f} s; whole Ray run {run.seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
