"""Best-of-N pressure on an ensemble reward: mean vs UWO vs WCO, judged by AlpacaEval's GPT-4 judge.

Run: ``.venv/bin/python benchmarks/bon_overopt_bench.py [--members 3] [--train-pairs 600] [--threads 1]
[--eval-instructions 60] [--draws 20] [--out runs/bon-overopt]`` (needs ../shared/data; with the defaults about 12
CPU-minutes on one thread: 56 minutes wall at a load average of 9-17). ``--model DIR`` reuses an ensemble
trained by an earlier run.

Issue 26 item 1 (Coste et al., 2023, "Reward Model Ensembles Help Mitigate Overoptimization"):

1. The AlpacaEval instructions are split by a hash of their text: ``--held-out`` of them (and at most
   ``--eval-instructions``) are kept for the best-of-N evaluation, the rest give the training pairs (the
   reference output vs a model's output, the judge's choice as the label, its ties left out; capped at
   ``--train-pairs``). No instruction is on both sides.
2. An ensemble of ``--members`` reward models is trained on them with rewardkit's defaults (default backbone,
   one epoch, ``--threads``), members on different seeds (``--bootstrap``: also on bootstrap resamples).
3. Every output of every held-out instruction (~30 models' outputs each) is scored once by every member; each
   member's score is standardized by its own reference statistics, as the scorer does, and combined three
   ways (``rewardkit.scoring.aggregate.combine``): the mean, UWO (mean - lambda * std) and WCO (the lowest).
4. For N in 1, 2, ..., 64: N outputs are drawn WITH replacement from an instruction's outputs (the way N
   samples from a policy would repeat its likely answers; N can exceed the ~30 outputs), each aggregate picks
   the highest-reward draw, and the pick's quality is the judge's preference of it over the reference output
   (AlpacaEval's ``preference`` - 1, in [0, 1]: the judge's probability that the pick beats the reference; a
   draw is 0.5), as ``rewardkit.evaluate.best_of_n`` reads it. ``--draws`` draws per instruction and N, seeded,
   averaged; the 95% interval is a bootstrap over instructions (the draws' noise is far smaller). The random
   pick (N=1 for every N) and the oracle pick (the best quality drawn) bound the curve.

Over-optimization would show as the mean's curve rising, then bending down at large N while its proxy reward
still climbs; UWO/WCO should bend later or less. Printed: one table per aggregate (judge preference of the pick
with its interval, the proxy reward of the pick, the pick's length in characters), then the curves side by side;
written: results.json and bon_overopt.png in ``--out``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RK_SHARED_DATA", ROOT.parent / "shared" / "data"))
ANNOTATIONS = SHARED / "alpacaeval" / "annotations.jsonl.gz"
NS = (1, 2, 4, 8, 16, 32, 64)

from train_bench import held_out  # noqa: E402  (the sibling benchmark's hash split; run as a script, its folder is on sys.path)


def split_annotations(fraction: float, max_eval: int, max_train_pairs: int, seed: int) -> tuple[list, list]:
    """(training pairs {prompt, chosen, rejected} from the instructions NOT held out, held-out response groups).

    An instruction is held out by the hash of its text (``train_bench.held_out``), so the split is the same in
    every run; groups come from ``load_alpacaeval_groups`` (one output per generator, its judge preference)."""
    from rewardkit.evaluate.best_of_n import load_alpacaeval_groups

    pairs = []
    with gzip.open(ANNOTATIONS, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if held_out(r["instruction"], fraction) or r.get("preference") is None:
                continue
            pref = float(r["preference"])
            if pref in (0.0, 1.5) or not r["output_1"].strip() or not r["output_2"].strip():
                continue  # a draw teaches Bradley-Terry nothing
            win, lose = (r["output_2"], r["output_1"]) if pref > 1.5 else (r["output_1"], r["output_2"])
            pairs.append({"prompt": r["instruction"], "chosen": win, "rejected": lose})
    rng = np.random.default_rng(seed)
    if len(pairs) > max_train_pairs:
        pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), max_train_pairs, replace=False))]
    groups = [g for g in load_alpacaeval_groups(ANNOTATIONS, min_responses=8) if held_out(g.prompt, fraction)]
    return pairs, groups[:max_eval]


def train_ensemble(pairs: list[dict[str, str]], out: Path, args: argparse.Namespace) -> dict[str, Any]:
    from rewardkit.train import TrainConfig, train

    data = out / "train.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    config = TrainConfig(
        data=str(data),
        out=str(out / "ensemble"),
        epochs=args.epochs,
        threads=args.threads,
        ensemble=args.members,
        bootstrap=args.bootstrap,
        max_length=args.max_length,
        eval_every=50,
        progress=False,
        seed=args.seed,
    )
    start = time.perf_counter()
    result = train(config)
    return {"train_seconds": time.perf_counter() - start, "metrics": result.metrics}


def member_scores(model: Path, groups: list, threads: int) -> tuple[list[np.ndarray], float]:
    """Per group, (members, k) standardized member scores (``BatchScorer.score_encoded``), and the seconds taken."""
    import torch

    from rewardkit.scoring.scorer import load_scorer

    torch.set_num_threads(threads)
    scorer = load_scorer(str(model), dtype="fp32", device="cpu")
    if len(scorer.members) < 2:
        raise SystemExit(f"{model}: not an ensemble (one member): mean, UWO and WCO would all be the same")
    prompts = [g.prompt for g in groups for _ in g.responses]
    responses = [r for g in groups for r in g.responses]
    start = time.perf_counter()
    flat = scorer.score_encoded(scorer.encode(prompts, responses))  # (M, total)
    seconds = time.perf_counter() - start
    out, at = [], 0
    for g in groups:
        out.append(flat[:, at : at + len(g.responses)])
        at += len(g.responses)
    return out, seconds


def draw_picks(reward: np.ndarray, n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """(draws,) index of the highest-reward response among n drawn with replacement from reward's k, per draw.

    A tie in reward (the same output drawn twice, or equal scores) goes to the first drawn: draws are in random
    order, so that is a random tie-break."""
    idx = rng.integers(0, reward.size, size=(draws, n))  # (draws, n)
    return idx[np.arange(draws), np.argmax(reward[idx], axis=1)]


def bootstrap_interval(per_group: np.ndarray, rng: np.random.Generator, n_boot: int = 2000) -> tuple[float, float]:
    """95% percentile interval of the mean over groups, resampling the groups."""
    means = per_group[rng.integers(0, per_group.size, size=(n_boot, per_group.size))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def curves(
    members: list[np.ndarray], groups: list, aggregates: dict[str, tuple[str, float]], draws: int, seed: int
) -> dict[str, list[dict[str, float]]]:
    """For each aggregate (and the oracle), one row per N: the judge preference of the pick (mean over groups of
    the mean over draws, with its bootstrap interval), the pick's proxy reward and length."""
    from rewardkit.scoring.aggregate import combine

    quality = [np.asarray(g.quality) - 1.0 for g in groups]  # the judge's P(pick beats the reference)
    lengths = [np.array([len(r) for r in g.responses], dtype=float) for g in groups]
    rewards = {name: [combine(m, agg, lam) for m in members] for name, (agg, lam) in aggregates.items()}
    rewards["oracle"] = quality
    out: dict[str, list[dict[str, float]]] = {}
    for name, per_group_reward in rewards.items():
        rows = []
        for n in NS:
            rng = np.random.default_rng([seed, n])  # the same draws for every aggregate at this N
            pref, proxy, chars = [], [], []
            for reward, q, length in zip(per_group_reward, quality, lengths):
                picks = draw_picks(reward, n, draws, rng)
                pref.append(q[picks].mean())
                proxy.append(reward[picks].mean())
                chars.append(length[picks].mean())
            pref_arr = np.asarray(pref)
            low, high = bootstrap_interval(pref_arr, np.random.default_rng([seed, n, 1]))
            rows.append(
                {
                    "n": n,
                    "judge_pref": float(pref_arr.mean()),
                    "low": low,
                    "high": high,
                    "proxy_reward": float(np.mean(proxy)),
                    "chars": float(np.mean(chars)),
                }
            )
        out[name] = rows
    return out


def plot(result: dict[str, list[dict[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, rows in result.items():
        ns = [r["n"] for r in rows]
        style = {"linestyle": "--", "color": "gray"} if name == "oracle" else {"marker": "o"}
        ax.plot(ns, [r["judge_pref"] for r in rows], label=name, **style)
        if name != "oracle":
            ax.fill_between(ns, [r["low"] for r in rows], [r["high"] for r in rows], alpha=0.15)
    ax.set_xscale("log", base=2)
    ax.set(
        xlabel="N (best of N, drawn with replacement)",
        ylabel="judge P(pick beats reference)",
        title="Best-of-N on held-out AlpacaEval instructions",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--train-pairs", type=int, default=600)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--bootstrap", action="store_true", help="members train on bootstrap resamples")
    parser.add_argument("--held-out", type=float, default=0.25, help="share of instructions held out")
    parser.add_argument("--eval-instructions", type=int, default=60)
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--uwo-lambda", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bon-overopt")
    parser.add_argument("--model", type=Path, default=None, help="an ensemble trained before (skips training)")
    args = parser.parse_args()
    if not ANNOTATIONS.is_file():
        sys.exit(f"no {ANNOTATIONS}: this benchmark needs the shared AlpacaEval annotations")
    args.out.mkdir(parents=True, exist_ok=True)
    pairs, groups = split_annotations(args.held_out, args.eval_instructions, args.train_pairs, args.seed)
    outputs = sum(len(g.responses) for g in groups)
    print(f"{len(pairs)} training pairs; {len(groups)} held-out instructions with {outputs} outputs", flush=True)
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "train_pairs": len(pairs)}
    model = args.model
    if model is None:
        trained = train_ensemble(pairs, args.out, args)
        model = args.out / "ensemble"
        report["train_seconds"] = round(trained["train_seconds"], 1)
        print(f"trained {args.members} members in {trained['train_seconds'] / 60:.1f} min", flush=True)
    members, seconds = member_scores(model, groups, args.threads)
    report |= {"eval_instructions": len(groups), "eval_outputs": outputs, "score_seconds": round(seconds, 1)}
    std = np.concatenate([m.std(axis=0) for m in members])
    print(
        f"scored {outputs} outputs x {members[0].shape[0]} members in {seconds:.0f} s; member std: mean "
        f"{std.mean():.3f}, p90 {np.quantile(std, 0.9):.3f}",
        flush=True,
    )
    aggregates = {"mean": ("mean", 0.0), f"uwo({args.uwo_lambda:g})": ("uwo", args.uwo_lambda), "wco": ("wco", 0.0)}
    result = curves(members, groups, aggregates, args.draws, args.seed)
    report["curves"] = result
    for name, rows in result.items():
        print(f"\n{name}: N, judge P(pick beats reference) [95% CI], proxy reward of the pick, pick chars")
        for r in rows:
            print(
                f"  {r['n']:>3}  {r['judge_pref']:.3f} [{r['low']:.3f}, {r['high']:.3f}]  "
                f"{r['proxy_reward']:+.3f}  {r['chars']:7.0f}"
            )
    names = list(result)
    print("\n  N  " + "  ".join(f"{n:>12}" for n in names))
    for i, n in enumerate(NS):
        print(f"{n:>3}  " + "  ".join(f"{result[name][i]['judge_pref']:>12.3f}" for name in names))
    (args.out / "results.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    plot(result, args.out / "bon_overopt.png")
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'bon_overopt.png'}")


if __name__ == "__main__":
    main()
