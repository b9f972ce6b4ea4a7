"""Offline scoring speed: rewardkit's batch scorer vs transformers' text-classification pipeline.

Run: ``.venv/bin/python benchmarks/score_bench.py [--n 1000] [--model M] [--data mix|alpaca] [--compile] [--int8]
[--precisions] [--budgets 1024,4096,16384]``
(needs ../shared/data).

Both score the same texts with the default backbone. ``--data mix`` (default): half HH-RLHF harmless replies
with their conversation as the prompt, half AlpacaEval outputs with their instruction, kept as (a, b) pairs
of the same prompt and shuffled pair-wise (seed 0), the short-and-long mix of RL rollouts and corpora.
``--data alpaca``: AlpacaEval only (long texts, a third truncated at 512: the worst case for sorting). ``--int8``
also runs the opt-in int8 path and prints its speed and its ranking against fp32 (Spearman, Kendall, pairwise
order agreement on the (a, b) pairs). ``--compile`` also times ``torch.compile`` of the same model (compile time
apart; throughput, ratios and largest score difference from eager). It is not a rewardkit option: at the
default token budget it measured no faster than eager here (0.82-1.00x); it was 1.1-1.3x at 16K-token
batches, where fusing the elementwise work mattered more. Scored
(all-MiniLM-L6-v2 + a scalar head) and the same truncation limit. Printed: sequences/s of each and the ratio
(target >= 5x), the peer's share of the bound (which caps any speedup),
achieved FLOP/s vs a large matmul in the same dtype
measured in this run (target >= 70%),
the dtype chosen, the max score difference between the two, and peak RSS (target < 1.5 GB).

FLOPs per sequence of T real tokens (padding excluded, so this is useful work): 2 * T * (non-embedding
parameters) for the dense layers + 4 * T^2 * hidden per layer for attention scores and values: the full
model's FLOPs, which the pipeline executes. rewardkit's last layer computes only the position the head reads
(``rewardkit.model.forward``), so it executes fewer; ``executed_fraction_of_matmul_bound`` counts only those
(how well the FLOPs it does run use the machine), ``fraction_of_matmul_bound`` the full model's (the
model-FLOPs convention: the work a forward pass stands for, however it is computed). ``--precisions`` also
times fp32, bf16 with the head in fp32 (what ``--dtype bf16`` and a bf16 ``auto`` run) and bf16 throughout
(how bf16 ran before), interleaved, and prints each one's distinct scores, its largest batch-vs-alone change
and the CPU model and flags beside them.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import torch

SHARED = Path(os.environ.get("RK_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def alpaca_pairs(n_pairs: int) -> list[tuple[str, str, str]]:
    out = []
    with gzip.open(SHARED / "alpacaeval" / "annotations.jsonl.gz", "rt") as f:
        for line in f:
            row = json.loads(line)
            out.append((row["instruction"], row["output_1"], row["output_2"]))
            if len(out) >= n_pairs:
                break
    return out


def hh_pairs(n_pairs: int) -> list[tuple[str, str, str]]:
    """(conversation before the last assistant turn, chosen reply, rejected reply)."""
    out = []
    marker = "\n\nAssistant:"
    with gzip.open(SHARED / "hh-rlhf-harmless" / "train.jsonl.gz", "rt") as f:
        for line in f:
            row = json.loads(line)
            cut_c, cut_r = row["chosen"].rfind(marker), row["rejected"].rfind(marker)
            out.append(
                (
                    row["chosen"][:cut_c],
                    row["chosen"][cut_c + len(marker) :].strip(),
                    row["rejected"][cut_r + len(marker) :].strip(),
                )
            )
            if len(out) >= n_pairs:
                break
    return out


def load_texts(n: int, data: str = "mix") -> tuple[list[str], list[str]]:
    """n texts as consecutive (a, b) rows of one prompt each; pairs shuffled (seed 0) for "mix"."""
    n_pairs = (n + 1) // 2
    if data == "alpaca":
        pairs = alpaca_pairs(n_pairs)
    else:
        pairs = hh_pairs(n_pairs // 2) + alpaca_pairs(n_pairs - n_pairs // 2)
        np.random.default_rng(0).shuffle(pairs)
    prompts = [p for p, _, _ in pairs for _ in range(2)]
    responses = [r for _, a, b in pairs for r in (a, b)]
    return prompts[:n], responses[:n]


def ranking(ref: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """Spearman and Kendall of two score vectors, and the share of consecutive (a, b) pairs ordered alike."""
    from scipy.stats import kendalltau, spearmanr

    m = len(ref) // 2 * 2
    same = np.sign(ref[0:m:2] - ref[1:m:2]) == np.sign(other[0:m:2] - other[1:m:2])
    return {
        "spearman": float(spearmanr(ref, other)[0]),
        "kendall": float(kendalltau(ref, other)[0]),
        "pair_order_agreement": float(same.mean()),
    }


def matmul_flops(dtype: torch.dtype, size: int = 2048, reps: int = 5, trials: int = 3) -> float:
    """FLOP/s of a large square matmul in ``dtype``: the machine's practical bound for dense layers. The best
    of ``trials`` timings: a bound should not be lowered by a noisy moment (this makes the ratio harder)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * size**3 * reps / (time.perf_counter() - start))
    return best


def weight_count(module: torch.nn.Module) -> int:
    """Weights and biases of ``module``, counting int8 Linears too (their packed weights are not parameters)."""
    from rewardkit.model.int8 import Int8Linear

    packed = sum(
        m.in_features * m.out_features + m.out_features * m.has_bias
        for m in module.modules()
        if isinstance(m, Int8Linear)
    )
    return sum(p.numel() for p in module.parameters()) + packed


def model_flops(model: torch.nn.Module, lengths: list[int]) -> float:
    cfg = model.config
    emb = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    dense = weight_count(model) - emb
    t = np.asarray(lengths, dtype=np.float64)
    return float((2 * t * dense + 4 * cfg.num_hidden_layers * t**2 * cfg.hidden_size).sum())


def executed_flops(model: torch.nn.Module, lengths: list[int]) -> float:
    """``model_flops`` less what rewardkit's forward skips: in the last layer every position but the first
    computes only its key and value (no query, attention output or feed-forward, no attention row)."""
    from rewardkit.model.forward import last_layer_path

    full = model_flops(model, lengths)
    inner = last_layer_path(model)
    if inner is None:
        return full
    last = inner.base_model.encoder.layer[-1]
    attention = last.attention.self
    skipped_params = weight_count(last) - weight_count(attention.key) - weight_count(attention.value)
    t = np.asarray(lengths, dtype=np.float64)
    others = t - 1  # every position but the first: no query row (t keys each), no projections but K and V
    return full - float((2 * others * skipped_params + 4 * others * t * model.config.hidden_size).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="texts to score (default 1000)")
    ap.add_argument(
        "--model",
        default="",
        help="a saved reward model (default: the default backbone, untrained head); "
        "a trained head spreads the scores, which is what --int8's ranking check is about",
    )
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    ap.add_argument(
        "--token-budget", type=int, default=2048, help="the scorer's token budget (default: its default, 2048)"
    )
    ap.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument(
        "--data",
        default="mix",
        choices=["mix", "alpaca"],
        help="mix: HH-RLHF + AlpacaEval (default); alpaca: long texts only",
    )
    ap.add_argument(
        "--int8", action="store_true", help="also run the opt-in int8 path and compare its ranking with fp32"
    )
    ap.add_argument(
        "--budgets", default="", help="also time the scorer at these token budgets (comma-separated), model work only"
    )
    ap.add_argument(
        "--compile",
        action="store_true",
        help="also time torch.compile of the same model (not a rewardkit option: see the docstring)",
    )
    ap.add_argument(
        "--precisions",
        action="store_true",
        help="also time fp32, bf16 with an fp32 head, bf16 throughout; count distinct scores; batch vs alone",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    from rewardkit.model.backbone import default_backbone_path
    from rewardkit.scoring.scorer import load_scorer

    hf_logging.set_verbosity_error()
    prompts, responses = load_texts(args.n, args.data)
    scorer = load_scorer(args.model or default_backbone_path(), token_budget=args.token_budget, dtype=args.dtype)
    scorer.score(prompts[:64], responses[:64])  # warm-up
    start = time.perf_counter()
    ours = scorer.score(prompts, responses)
    ours_s = time.perf_counter() - start
    enc = scorer.encode(prompts, responses)  # once, for the FLOP count and the --budgets timings
    lengths = enc.lengths
    # read before the peer runs: ru_maxrss only grows, and the pipeline's own peak would be counted as ours
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    member = scorer.members[0]
    peer_model = member.model.float()  # the peer runs the same weights in fp32, its default
    pipe = pipeline(
        "text-classification",
        model=peer_model,
        tokenizer=member.tokenizer,
        device="cpu",
        function_to_apply="none",
        truncation=True,
        max_length=scorer.max_length,
    )
    inputs = [{"text": p, "text_pair": r} for p, r in zip(prompts, responses)]
    list(pipe(inputs[:32], batch_size=32))  # warm-up
    start = time.perf_counter()
    # a head of several labels (the untrained default backbone has 2): the pipeline reports the top label
    # unless asked for all; rewardkit's score is their card-weighted mean (equal weights here)
    every_label = {"top_k": None} if peer_model.config.num_labels > 1 else {}
    theirs = np.array(
        [
            np.mean([d["score"] for d in o]) if isinstance(o, list) else o["score"]
            for o in pipe(inputs, batch_size=32, **every_label)
        ]
    )
    peer_s = time.perf_counter() - start

    flops = model_flops(peer_model, lengths)
    executed = executed_flops(peer_model, lengths)
    bound = matmul_flops(scorer.dtype)
    achieved = flops / ours_s
    report = {
        "model": args.model or "default backbone (untrained head)",
        "data": args.data,
        "texts": len(prompts),
        "mean_tokens": float(np.mean(lengths)),
        "truncated": int(sum(ours.truncated)),
        "threads": args.threads,
        "dtype": str(scorer.dtype).replace("torch.", ""),
        "rewardkit_seq_per_s": len(prompts) / ours_s,
        "pipeline_seq_per_s": len(prompts) / peer_s,
        "speedup_vs_pipeline": peer_s / ours_s,
        "pipeline_fraction_of_matmul_bound": flops / peer_s / bound,
        # the same work at 100% of the bound: no fp32 scorer can beat the pipeline by more than this
        "speedup_ceiling_at_bound": bound / (flops / peer_s),
        "achieved_gflops": achieved / 1e9,
        "matmul_bound_gflops": bound / 1e9,
        "fraction_of_matmul_bound": achieved / bound,
        "executed_flops_share_of_model": executed / flops,
        "executed_fraction_of_matmul_bound": executed / ours_s / bound,
        # rows that fit agree up to float error; truncated rows differ by design (the pipeline cuts the
        # response too, rewardkit only the prompt's start)
        "max_abs_diff_vs_pipeline_untruncated": float(
            np.abs(ours.raw - theirs)[~np.array(ours.truncated)].max(initial=0.0)
        ),
        "peak_rss_mb": rss_mb,
        "peak_rss_mb_incl_pipeline": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if args.budgets:
        default_budget = scorer.token_budget
        for budget in (int(b) for b in args.budgets.split(",")):
            scorer.token_budget = max(budget, scorer.max_length)
            start = time.perf_counter()
            scorer.score_encoded(enc)
            report[f"budget_{budget}_seq_per_s"] = len(prompts) / (time.perf_counter() - start)
        scorer.token_budget = default_budget
    if args.compile:
        from rewardkit.scoring.scorer import BatchScorer

        compiled = copy.copy(member)
        compiled.model = torch.compile(member.model, dynamic=True)  # the eager member above is untouched
        c = BatchScorer(
            [compiled], scorer.card, max_length=scorer.max_length, token_budget=scorer.token_budget, dtype=scorer.dtype
        )
        start = time.perf_counter()
        c.score(prompts[:64], responses[:64])  # compiles
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        c_raw = c.score(prompts, responses).raw
        c_s = time.perf_counter() - start
        report |= {
            "compile_s": compile_s,
            "compiled_seq_per_s": len(prompts) / c_s,
            "compiled_speedup_vs_eager": ours_s / c_s,
            "compiled_speedup_vs_pipeline": peer_s / c_s,
            "compiled_fraction_of_matmul_bound": flops / c_s / bound,
            "compiled_max_abs_diff_vs_eager": float(np.abs(c_raw - ours.raw).max()),
            "peak_rss_mb_after_compile": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    if args.int8:
        from rewardkit.scoring.precision import quantize_int8
        from rewardkit.scoring.scorer import BatchScorer

        q = BatchScorer(
            [copy.copy(member)], scorer.card, max_length=scorer.max_length, token_budget=scorer.token_budget
        )
        quantize_int8(q)  # quantizes a copy: the fp32 member above is untouched
        q.score(prompts[:64], responses[:64])  # warm-up
        start = time.perf_counter()
        q_raw = q.score(prompts, responses).raw
        q_s = time.perf_counter() - start
        report |= {
            "int8_seq_per_s": len(prompts) / q_s,
            "int8_speedup_vs_fp32": ours_s / q_s,
            "int8_speedup_vs_pipeline": peer_s / q_s,
            # int8 FLOPs are counted as the same model FLOPs against the FP32 matmul bound (not an int8 bound)
            "int8_fp32_flops_fraction_of_fp32_bound": flops / q_s / bound,
            **{f"int8_vs_fp32_{k}": v for k, v in ranking(ours.raw, q_raw).items()},
            "peak_rss_mb_after_int8": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    if args.precisions:
        report |= precision_costs(scorer, prompts, responses)
    for key, value in report.items():
        print(f"{key:>32}: {value:.4g}" if isinstance(value, float) else f"{key:>32}: {value}")


def precision_costs(scorer: object, prompts: list, responses: list) -> dict[str, object]:
    """fp32, bf16 with the head in fp32 (what rewardkit runs), bf16 throughout (before) and the remembered auto
    decision on the same texts, interleaved twice: rows/s, distinct scores (ties made by rounding) and the
    largest change of a row scored in its batch vs alone (batch invariance), beside the CPU and its flags."""
    from rewardkit.scoring.precision import cpu_description, to_bf16
    from rewardkit.scoring.scorer import BatchScorer

    member = scorer.members[0]
    fp32_model = copy.deepcopy(member.model).float()

    def variant(name: str) -> BatchScorer:
        m = copy.copy(member)
        if name == "fp32":
            m.model = fp32_model
        elif name == "bf16_fp32_head":
            m.model = to_bf16(copy.deepcopy(fp32_model))
        else:  # the whole model in bf16, head included: how bf16 ran before
            m.model = copy.deepcopy(fp32_model).to(torch.bfloat16)
        dtype = torch.float32 if name == "fp32" else torch.bfloat16
        return BatchScorer(
            [m], scorer.card, max_length=scorer.max_length, token_budget=scorer.token_budget, dtype=dtype
        )

    variants = {name: variant(name) for name in ("fp32", "bf16_fp32_head", "bf16_whole")}
    enc = scorer.encode(prompts, responses)
    times: dict[str, list[float]] = {name: [] for name in variants}
    scores: dict[str, np.ndarray] = {}
    for _ in range(2):  # interleaved: the machine is shared, so drift hits every variant alike
        for name, v in variants.items():
            v.score_encoded(enc.select(list(range(min(64, len(enc))))))  # warm-up
            start = time.perf_counter()
            scores[name] = v.score_encoded(enc)[0]
            times[name].append(time.perf_counter() - start)
    out: dict[str, object] = {**{f"cpu_{k}": v for k, v in cpu_description().items()}}
    out["auto_precision_decided"] = scorer.precision
    alone_rows = list(range(0, len(prompts), max(1, len(prompts) // 40)))  # ~40 rows scored one by one
    for name, v in variants.items():
        out[f"{name}_seq_per_s"] = len(prompts) / min(times[name])
        out[f"{name}_distinct_scores"] = int(len(set(scores[name].tolist())))
        alone = np.array([v.score_encoded(enc.select([i]))[0][0] for i in alone_rows])
        out[f"{name}_max_batch_vs_alone"] = float(np.abs(alone - scores[name][alone_rows]).max())
        out[f"{name}_max_abs_diff_vs_fp32"] = float(np.abs(scores[name] - scores["fp32"]).max())
    out["bf16_fp32_head_speedup_vs_fp32"] = min(times["fp32"]) / min(times["bf16_fp32_head"])
    out["bf16_whole_speedup_vs_fp32"] = min(times["fp32"]) / min(times["bf16_whole"])
    return out


if __name__ == "__main__":
    main()
