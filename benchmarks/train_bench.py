"""Training benchmark: rewardkit vs TRL ``RewardTrainer`` on the same backbone, pairs and budget.

Run (full, ~1 h on 2 cores):

    .venv/bin/python benchmarks/train_bench.py --dataset hh
    .venv/bin/python benchmarks/train_bench.py --dataset alpaca --train-pairs 4000
    .venv/bin/python benchmarks/train_bench.py --dataset hh --limit 200 --test-pairs 200   # a quick slice
    .venv/bin/python benchmarks/train_bench.py --dataset hh --systems rewardkit --freeze-layers 4 --keep runs/hh

Each system trains in its own subprocess (so peak RSS is its own) on the same training pairs with
all-MiniLM-L6-v2, max_length 256, batch 8, 1 epoch, torch threads 2:

- ``rewardkit``: ``rewardkit.train`` defaults (length-grouped dynamic padding, chosen+rejected in one forward,
  bf16 only if a probe measures it faster, truncation instead of dropping, best checkpoint on a validation
  split carved from the training pairs by prompt hash, so it trains on ~90% of them);
- ``trl-default``: ``RewardTrainer`` with trl's defaults (gradient checkpointing on), ``eos_token="[SEP]"``
  (MiniLM has no EOS; trl does not run without one), ``use_cpu=True``;
- ``trl-tuned``: the same with ``bf16=True`` and gradient checkpointing off.

TRL drops pairs longer than max_length; its pairs/s counts the pairs it kept (its own
``train_samples_per_second``). rewardkit's counts every pair (training loop time, validation excluded; the
wall time including validation is printed too). Held-out accuracy is on prompts never seen in training
(split by a hash of the prompt), scored on every held-out pair: rewardkit with its own formatting, TRL's
model the way TRL formats (prompt + response + EOS, truncated from the left so the response stays).
Length rules ("longer wins", "shorter wins") and the length-balanced subset (the preferred response is the
shorter one) are printed beside them, with 95% Wilson interval half-widths.

``--select-shorter-wins S`` picks the training pairs so S of them are chosen-is-shorter, distinct pairs from
the whole training pool (AlpacaEval's holds 1,935), what ``rewardkit dataset build --length-balance`` does to a
snapshot's train split; the held-out pairs keep the natural mix. ``--trl-bf16 off`` runs TRL in fp32: TRL 1.16's
``RewardConfig`` defaults to ``bf16=True``, which CPUs without native bf16 (AVX2-only) emulate ~30x slower.
``--length-control`` trains rewardkit's length-controlled model (a fixed length term fitted first, left out at
scoring; docs/training.md).

The shared data is read directly (not through the importer): HH-RLHF transcripts are split into prompt and
reply at the last shared "Assistant:" turn; AlpacaEval ties (preference 1.5) are left out.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RK_SHARED_DATA", ROOT.parent / "shared" / "data"))
SYSTEMS = ("rewardkit", "trl-default", "trl-tuned")


# --- data ---------------------------------------------------------------------------------------------


def held_out(prompt: str, fraction: float) -> bool:
    return int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16) / 16**8 < fraction


def load_rows(dataset: str) -> list[dict[str, str]]:
    """{prompt, chosen, rejected} rows of a shared data set (read directly, no importer)."""
    from rewardkit.data.pair_files import split_shared_prompt

    rows = []
    if dataset == "hh":
        with gzip.open(SHARED / "hh-rlhf-harmless" / "train.jsonl.gz", "rt", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                prompt, chosen, rejected = split_shared_prompt(r["chosen"], r["rejected"])
                rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    else:
        with gzip.open(SHARED / "alpacaeval" / "annotations.jsonl.gz", "rt", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if (
                    r.get("preference") is None
                    or r["preference"] == 1.5
                    or not r["output_1"].strip()
                    or not r["output_2"].strip()
                ):
                    continue
                win, lose = (r["output_2"], r["output_1"]) if r["preference"] > 1.5 else (r["output_1"], r["output_2"])
                rows.append({"prompt": r["instruction"], "chosen": win, "rejected": lose})
    return rows


def select_shorter_wins(rows: list[dict[str, str]], n: int, share: float) -> list[dict[str, str]]:
    """``n`` pairs of which ``round(n * share)`` have the shorter response chosen, where the pool holds that many
    (else all it holds), the rest drawn from the other pairs; shuffled. The test split is untouched (natural)."""
    shorter = [r for r in rows if len(r["chosen"]) < len(r["rejected"])]
    rest = [r for r in rows if len(r["chosen"]) >= len(r["rejected"])]
    take = min(len(shorter), round(n * share))
    picked = shorter[:take] + rest[: n - take]
    random.Random(1).shuffle(picked)
    return picked


def wilson_half_width(p: float, n: int) -> float:
    if n == 0:
        return float("nan")
    z = 1.96
    return z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)


def accuracy_report(correct: list[bool], rows: list[dict[str, str]]) -> dict[str, Any]:
    balanced = [c for c, r in zip(correct, rows) if len(r["chosen"]) < len(r["rejected"])]
    acc = sum(correct) / max(1, len(correct))
    bal = sum(balanced) / max(1, len(balanced))
    return {
        "accuracy": acc,
        "hw": wilson_half_width(acc, len(correct)),
        "n": len(correct),
        "balanced_accuracy": bal,
        "balanced_hw": wilson_half_width(bal, len(balanced)),
        "balanced_n": len(balanced),
    }


# --- children -----------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_rewardkit(work: Path, args: argparse.Namespace, test: list[dict[str, str]]) -> dict[str, Any]:
    from rewardkit.model import load_reward_model
    from rewardkit.train import TrainConfig, train

    t0 = time.perf_counter()
    n_train = sum(1 for _ in open(work / "train.jsonl"))
    steps = math.ceil(n_train * 0.9 / args.batch_size)
    config = TrainConfig(
        data=str(work / "train.jsonl"),
        out=str(work / "rewardkit"),
        max_length=args.max_length,
        batch_size=args.batch_size,
        epochs=args.epochs,
        lr=args.lr,
        threads=args.threads,
        eval_every=max(10, steps // 4),
        progress=False,
        freeze_layers=args.freeze_layers,
        length_balance=args.length_balance,
        ensemble=args.ensemble,
        length_balance_by=args.length_balance_by,
        length_control=args.length_control,
        backbone=args.backbone,
    )
    result = train(config)
    wall = time.perf_counter() - t0
    rm = load_reward_model(work / "rewardkit")
    prompts = [r["prompt"] for r in test]
    diff = rm.score(prompts, [r["chosen"] for r in test], batch_size=32) - rm.score(
        prompts, [r["rejected"] for r in test], batch_size=32
    )
    m = result.metrics
    if args.ensemble > 1:  # an ensemble's metrics hold one entry per member: member 0's speed and calibration
        m = next(iter(m["members"].values()))
    return {
        "pairs_per_s": m["train_pairs_per_s"],
        # the share of the planned steps that ran: early stopping (on by default) may end the run sooner
        "wall_pairs_per_s": m["train_pairs"] * args.epochs * m["steps"] / m["total_steps"] / wall,
        "pairs_used": m["train_pairs"],
        "truncated": m["truncated_train"],
        "bf16": m["bf16"],
        "ece_before": m["ece_before"],
        "ece_after": m["ece_after"],
        "peak_rss_mb": peak_rss_mb(),
        **accuracy_report([bool(d > 0) for d in diff], test),
    }


def run_trl(work: Path, args: argparse.Namespace, test: list[dict[str, str]], tuned: bool) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from rewardkit.model.backbone import resolve_backbone

    path = resolve_backbone(args.backbone)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    # TRL appends its eos_token to every text; MiniLM's tokenizer has none, so "[SEP]" (its end token) there
    eos = tokenizer.eos_token or tokenizer.sep_token
    if tokenizer.pad_token is None:  # decoder tokenizers: TRL pads, and the head reads the last non-pad token
        tokenizer.pad_token = eos
        model.config.pad_token_id = tokenizer.pad_token_id
    rows = [json.loads(line) for line in open(work / "train.jsonl")]
    data = Dataset.from_list(
        [{"prompt": r["prompt"], "chosen": " " + r["chosen"], "rejected": " " + r["rejected"]} for r in rows]
    )
    extra = {"bf16": True, "gradient_checkpointing": False} if tuned else {}
    if args.trl_bf16 == "off":  # TRL 1.16 defaults to bf16=True; emulated on CPUs without native bf16 (~30x slower)
        extra["bf16"] = False
    config = RewardConfig(
        output_dir=str(work / ("trl-tuned" if tuned else "trl-default")),
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs,
        max_length=args.max_length,
        eos_token=eos,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=50,
        disable_tqdm=True,
        **extra,
    )
    trainer = RewardTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer)
    kept = len(trainer.train_dataset)
    output = trainer.train()
    model = trainer.model.eval().float()
    tokenizer.truncation_side = "left"  # score every held-out pair, keeping the response

    def score(texts: list[str]) -> list[float]:
        # batches of similar length (scores do not depend on padding; only the time does), input order restored
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = [0.0] * len(texts)
        with torch.no_grad():
            for s in range(0, len(order), 32):
                rows = order[s : s + 32]
                batch = tokenizer(
                    [texts[i] for i in rows],
                    truncation=True,
                    max_length=args.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                for i, value in zip(rows, model(**batch).logits[:, 0].tolist()):
                    out[i] = value
        return out

    c = score([r["prompt"] + " " + r["chosen"] + eos for r in test])
    rj = score([r["prompt"] + " " + r["rejected"] + eos for r in test])
    return {
        "pairs_per_s": output.metrics["train_samples_per_second"],
        "pairs_used": kept,
        "dropped": len(rows) - kept,
        "peak_rss_mb": peak_rss_mb(),
        **accuracy_report([a > b for a, b in zip(c, rj)], test),
    }


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.workdir)
    test = [json.loads(line) for line in open(work / "test.jsonl")]
    if args.child == "rewardkit":
        result = run_rewardkit(work, args, test)
    else:
        result = run_trl(work, args, test, tuned=args.child == "trl-tuned")
    print("RESULT " + json.dumps(result))


# --- parent -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description="rewardkit vs TRL RewardTrainer: speed, memory, held-out accuracy.")
    parser.add_argument("--dataset", choices=("hh", "alpaca"), default="hh")
    parser.add_argument(
        "--train-pairs", type=int, default=4000, help="cap on training pairs (AlpacaEval: the issue uses 4,000)"
    )
    parser.add_argument("--limit", type=int, default=0, help="use only this many training pairs (a quick slice)")
    parser.add_argument("--test-pairs", type=int, default=2000, help="cap on held-out pairs scored")
    parser.add_argument("--held-out", type=float, default=0.2, help="fraction of prompts held out (by hash)")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument(
        "--backbone",
        default="default",
        help="both systems' backbone: a Hugging Face id or folder (default: the bundled all-MiniLM-L6-v2)",
    )
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=1e-4, help="rewardkit's learning rate (its default)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--freeze-layers",
        type=int,
        default=-1,
        help="rewardkit: freeze the embeddings and the lowest N blocks (-1: its default, a third)",
    )
    parser.add_argument(
        "--length-balance",
        type=float,
        default=0.0,
        help="rewardkit: oversample chosen-is-shorter pairs to this share of the unequal-length pairs (0: off, its "
        "default)",
    )
    parser.add_argument(
        "--length-balance-by",
        choices=("repeat", "weight"),
        default="repeat",
        help="rewardkit: repeat those pairs (longer epochs) or weight their loss (same compute)",
    )
    parser.add_argument(
        "--length-control",
        action="store_true",
        help="rewardkit: length-controlled Bradley-Terry (a fixed length term in training, left out at scoring)",
    )
    parser.add_argument(
        "--select-shorter-wins",
        type=float,
        default=0.0,
        help="pick the training pairs so this share of them are chosen-is-shorter "
        "(distinct pairs from the whole training pool, as many as it holds; 0: a plain random sample)",
    )
    parser.add_argument(
        "--trl-bf16",
        choices=("default", "off"),
        default="default",
        help="off: TRL runs in fp32 (for CPUs without native bf16, where TRL's bf16=True default crawls)",
    )
    parser.add_argument(
        "--ensemble", type=int, default=1, help="rewardkit: train an ensemble of N seeds (scored by its mean)"
    )
    parser.add_argument("--keep", type=Path, default=None, help="copy rewardkit's model and the train/test files here")
    parser.add_argument("--child", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if not SHARED.is_dir():
        sys.exit(f"shared data not found at {SHARED} (set RK_SHARED_DATA)")

    rows = load_rows(args.dataset)
    rng = random.Random(0)
    train_rows = [r for r in rows if not held_out(r["prompt"], args.held_out)]
    test_rows = [r for r in rows if held_out(r["prompt"], args.held_out)]
    rng.shuffle(train_rows)
    rng.shuffle(test_rows)
    n_train = args.limit or args.train_pairs
    train_rows = (
        select_shorter_wins(train_rows, n_train, args.select_shorter_wins)
        if args.select_shorter_wins
        else train_rows[:n_train]
    )
    test_rows = test_rows[: args.test_pairs]
    print(f"{args.dataset}: {len(train_rows)} train pairs, {len(test_rows)} held-out pairs (prompts never trained on)")

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="rk-train-bench-") as tmp:
        work = Path(tmp)
        (work / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train_rows))
        (work / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test_rows))
        for system in args.systems.split(","):
            t0 = time.perf_counter()
            cmd = [
                sys.executable,
                __file__,
                "--child",
                system,
                "--workdir",
                str(work),
                "--max-length",
                str(args.max_length),
                "--batch-size",
                str(args.batch_size),
                "--epochs",
                str(args.epochs),
                "--lr",
                str(args.lr),
                "--threads",
                str(args.threads),
                "--freeze-layers",
                str(args.freeze_layers),
                "--length-balance",
                str(args.length_balance),
                "--length-balance-by",
                args.length_balance_by,
                "--ensemble",
                str(args.ensemble),
                "--trl-bf16",
                args.trl_bf16,
                "--backbone",
                args.backbone,
                *(["--length-control"] if args.length_control else []),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                print(f"{system}: FAILED\n{proc.stderr[-3000:]}")
                continue
            results[system] = json.loads(lines[-1][7:]) | {"wall_s": time.perf_counter() - t0}
            print(f"{system}: done in {results[system]['wall_s']:.0f} s", flush=True)
        if args.keep:
            import shutil

            args.keep.mkdir(parents=True, exist_ok=True)
            for name in ("rewardkit", "train.jsonl", "test.jsonl"):
                if (work / name).is_dir():
                    shutil.copytree(work / name, args.keep / name, dirs_exist_ok=True)
                elif (work / name).exists():
                    shutil.copy(work / name, args.keep / name)

    longer = accuracy_report([len(r["chosen"]) > len(r["rejected"]) for r in test_rows], test_rows)
    shorter = accuracy_report([len(r["chosen"]) < len(r["rejected"]) for r in test_rows], test_rows)
    print()
    print(
        f"{'system':<12} {'pairs/s':>8} {'pairs used':>11} {'peak RSS MB':>12} {'held-out acc':>16} "
        f"{'length-balanced acc':>22}"
    )
    for name, r in [*results.items(), ("longer wins", longer), ("shorter wins", shorter)]:
        speed = f"{r['pairs_per_s']:.2f}" if "pairs_per_s" in r else "-"
        used = str(r.get("pairs_used", "-"))
        rss = f"{r['peak_rss_mb']:.0f}" if "peak_rss_mb" in r else "-"
        acc = f"{100 * r['accuracy']:.1f} ± {100 * r['hw']:.1f}"
        bal = f"{100 * r['balanced_accuracy']:.1f} ± {100 * r['balanced_hw']:.1f} (n={r['balanced_n']})"
        print(f"{name:<12} {speed:>8} {used:>11} {rss:>12} {acc:>16} {bal:>22}")
    rk = results.get("rewardkit")
    if rk:
        print(
            f"\nrewardkit: truncated {rk['truncated']} pairs (none dropped); bf16 {rk['bf16']}; "
            f"wall pairs/s incl. validation {rk['wall_pairs_per_s']:.2f}; ECE {rk['ece_before']:.3f} -> "
            f"{rk['ece_after']:.3f}"
        )
        for name in ("trl-default", "trl-tuned"):
            if name in results:
                t = results[name]
                print(
                    f"speed ratio rewardkit / {name}: {rk['pairs_per_s'] / t['pairs_per_s']:.2f}x "
                    f"({name} dropped {t['dropped']} pairs longer than {args.max_length} tokens)"
                )
    print(json.dumps({"dataset": args.dataset, "results": results, "longer_wins": longer, "shorter_wins": shorter}))


if __name__ == "__main__":
    main()
