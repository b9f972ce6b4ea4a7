"""Offline scoring speed: rewardkit's batch scorer vs transformers' text-classification pipeline.

Run: ``.venv/bin/python benchmarks/score_bench.py [--n 1000] [--threads N]`` (needs ../shared/data).

Both score the same (instruction, response) texts from ../shared/data/alpacaeval with the default backbone
(all-MiniLM-L6-v2 + a scalar head) and the same truncation limit. Printed: sequences/s of each and the ratio
(target >= 5x), the peer's share of the bound (which caps any speedup), achieved FLOP/s vs a large matmul in the same dtype measured in this run (target >= 70%),
the dtype chosen, the max score difference between the two, and peak RSS (target < 1.5 GB).

FLOPs per sequence of T real tokens (padding excluded, so this is useful work): 2 * T * (non-embedding
parameters) for the dense layers + 4 * T^2 * hidden per layer for attention scores and values.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import torch

SHARED = Path(os.environ.get("RK_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def load_texts(n: int) -> tuple[list[str], list[str]]:
    prompts, responses = [], []
    with gzip.open(SHARED / "alpacaeval" / "annotations.jsonl.gz", "rt") as f:
        for line in f:
            row = json.loads(line)
            for key in ("output_1", "output_2"):
                prompts.append(row["instruction"])
                responses.append(row[key])
            if len(prompts) >= n:
                return prompts[:n], responses[:n]
    return prompts, responses


def matmul_flops(dtype: torch.dtype, size: int = 2048, reps: int = 5) -> float:
    """FLOP/s of a large square matmul in ``dtype``: the machine's practical bound for dense layers."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * size**3 * reps / (time.perf_counter() - start)


def model_flops(model: torch.nn.Module, lengths: list[int]) -> float:
    cfg = model.config
    emb = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    dense = sum(p.numel() for p in model.parameters()) - emb
    t = np.asarray(lengths, dtype=np.float64)
    return float((2 * t * dense + 4 * cfg.num_hidden_layers * t**2 * cfg.hidden_size).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="texts to score (default 1000)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    ap.add_argument("--token-budget", type=int, default=16384)
    ap.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    from rewardkit.model.backbone import default_backbone_path
    from rewardkit.score import load_scorer

    hf_logging.set_verbosity_error()
    prompts, responses = load_texts(args.n)
    scorer = load_scorer(default_backbone_path(), token_budget=args.token_budget, dtype=args.dtype)
    scorer.score(prompts[:64], responses[:64])  # warm-up
    start = time.perf_counter()
    ours = scorer.score(prompts, responses)
    ours_s = time.perf_counter() - start
    lengths = scorer.encode(prompts, responses).lengths

    member = scorer.members[0]
    peer_model = member.model.float()  # the peer runs the same weights in fp32, its default
    pipe = pipeline("text-classification", model=peer_model, tokenizer=member.tokenizer, device="cpu",
                    function_to_apply="none", truncation=True, max_length=scorer.max_length)
    inputs = [{"text": p, "text_pair": r} for p, r in zip(prompts, responses)]
    list(pipe(inputs[:32], batch_size=32))  # warm-up
    start = time.perf_counter()
    theirs = np.array([o["score"] for o in pipe(inputs, batch_size=32)])
    peer_s = time.perf_counter() - start

    flops = model_flops(peer_model, lengths)
    bound = matmul_flops(scorer.dtype)
    achieved = flops / ours_s
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "texts": len(prompts), "mean_tokens": float(np.mean(lengths)), "truncated": int(sum(ours.truncated)),
        "threads": args.threads, "dtype": str(scorer.dtype).replace("torch.", ""),
        "rewardkit_seq_per_s": len(prompts) / ours_s, "pipeline_seq_per_s": len(prompts) / peer_s,
        "speedup_vs_pipeline": peer_s / ours_s,
        "pipeline_fraction_of_matmul_bound": flops / peer_s / bound,
        "achieved_gflops": achieved / 1e9, "matmul_bound_gflops": bound / 1e9, "fraction_of_matmul_bound": achieved / bound,
        # rows that fit agree up to float error; truncated rows differ by design (the pipeline cuts the
        # response too, rewardkit only the prompt's start)
        "max_abs_diff_vs_pipeline_untruncated": float(np.abs(ours.raw - theirs)[~np.array(ours.truncated)].max(initial=0.0)),
        "peak_rss_mb": rss_mb,
    }
    for key, value in report.items():
        print(f"{key:>32}: {value:.4g}" if isinstance(value, float) else f"{key:>32}: {value}")


if __name__ == "__main__":
    main()
