"""Benchmark: do the review queue's active-learning strategies buy a better reward model than random picks at
the same labelling budget?

    PYTHONPATH=src .venv/bin/python benchmarks/active_learning_bench.py                  # the reported run (probe)
    PYTHONPATH=src .venv/bin/python benchmarks/active_learning_bench.py --trainer cli --repeats 1   # rewardkit train

Simulation on the shared AlpacaEval annotations (the GPT-4-turbo judge's preferences stand in for the human
annotator: a picked pair is "labelled" by revealing its held-back judge label). Instructions are split into a
pool and a test set (no instruction in both). Every strategy starts from the same random seed set of labelled
pairs and the same seed model; each round, the current model scores the unlabelled pool, the strategy picks
``--step`` pairs (``rewardkit.review.candidates.choose``: the code ``rewardkit review enqueue`` runs), their
judge labels are added, and a fresh model is trained on all labels so far. Accuracy on the test pairs after
each round is the learning curve; at the final budget each strategy is compared with random by a paired
bootstrap over test pairs (95% interval of the accuracy difference, averaged over ``--repeats`` seed sets).

Two trainers:
- ``probe`` (default): the default backbone (all-MiniLM-L6-v2) embeds every "prompt + response" once (mean
  pooled, cached in the work folder); the reward model is a linear Bradley-Terry head on those frozen features
  (L2-regularised logistic regression on e_a - e_b), retrained from scratch each round in well under a second.
  ``disagreement`` uses an ensemble of 5 such heads on bootstrap resamples (std of member margins). Cheap
  enough for several repeats on a 2-core machine.
- ``cli``: ``rewardkit train`` (1 epoch, full fine-tuning) and ``rewardkit score`` as subprocesses: the real
  pipeline, independent of the training package's module layout, but about 1-2 training pairs/s on the shared
  2-core machine, so only small runs are affordable (no ``disagreement``: one model per round).

Ties (preference exactly 1.5) are left out of pool and test. ``margin`` orders pairs exactly as
``uncertainty`` when P(a > b) = sigmoid((s_a - s_b) / T), which is the case for both trainers, so it is not
run separately.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rewardkit.review.candidates import Candidate, choose

SHARED = Path(os.environ.get("RK_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
PY = sys.executable


def load_pairs(limit_instructions: int | None = None) -> dict[str, list[dict]]:
    """AlpacaEval rows grouped by instruction: {instruction: [{a, b, b_wins}]} (ties dropped)."""
    groups: dict[str, list[dict]] = {}
    with gzip.open(SHARED / "alpacaeval" / "annotations.jsonl.gz", "rt") as f:
        for line in f:
            row = json.loads(line)
            pref = row.get("preference")
            if pref is None or pref == 1.5 or row["output_1"] == row["output_2"]:
                continue
            if not row["output_1"].strip() or not row["output_2"].strip():
                continue
            groups.setdefault(row["instruction"], []).append(
                {"prompt": row["instruction"], "a": row["output_1"], "b": row["output_2"], "b_wins": pref > 1.5}
            )
    return groups


def cli(*args: str, log: Path) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    with log.open("a") as out:
        out.write(f"$ rewardkit {' '.join(args)}\n")
        out.flush()
        done = subprocess.run([PY, "-m", "rewardkit.cli.main", *args], stdout=out, stderr=out, env=env)
    if done.returncode != 0:
        raise SystemExit(f"rewardkit {args[0]} failed (exit {done.returncode}); see {log}")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def train(pairs: list[dict], out: Path, work: Path, args: argparse.Namespace) -> Path:
    data = out.with_suffix(".train.jsonl")
    # the judge's label decides which side is chosen
    rows = [
        {
            "prompt": p["prompt"],
            "chosen": p["b"] if p["b_wins"] else p["a"],
            "rejected": p["a"] if p["b_wins"] else p["b"],
        }
        for p in pairs
    ]
    write_jsonl(data, rows)
    cli(
        "train",
        "--data", str(data),
        "--out", str(out),
        "--epochs", str(args.epochs),
        "--max-length", str(args.max_length),
        "--batch-size", "16",
        "--seed", str(args.train_seed),
        "--validation-fraction", "0.1",
        "--no-progress",
        log=work / "log.txt",
    )  # fmt: skip
    return out


def score(model: Path, pairs: list[dict], path: Path, work: Path, args: argparse.Namespace) -> list[dict]:
    write_jsonl(path, [{"prompt": p["prompt"], "response_a": p["a"], "response_b": p["b"]} for p in pairs])
    out = path.with_suffix(".scored.jsonl")
    cli("score", str(path), "--model", str(model), "--out", str(out), "--max-length", str(args.max_length),
        log=work / "log.txt")  # fmt: skip
    return [json.loads(line) for line in out.open()]


def accuracy_vector(scored: list[dict], pairs: list[dict]) -> np.ndarray:
    """(n,) 1 where the model prefers the judge's choice (a model tie counts half)."""
    out = []
    for s, p in zip(scored, pairs, strict=True):
        d = s["score_b"] - s["score_a"]
        out.append(0.5 if d == 0 else float((d > 0) == p["b_wins"]))
    return np.asarray(out)


def paired_bootstrap(x: np.ndarray, y: np.ndarray, *, reps: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of x - y and its 95% percentile interval over test items resampled with replacement."""
    rng = np.random.default_rng(seed)
    diff = x - y
    idx = rng.integers(0, len(diff), size=(reps, len(diff)))
    means = diff[idx].mean(axis=1)
    return float(diff.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


class CliTrainer:
    """rewardkit train / rewardkit score as subprocesses."""

    def __init__(self, pairs: list[dict], work: Path, args: argparse.Namespace) -> None:
        self.pairs, self.work, self.args, self.n = pairs, work, args, 0

    def fit(self, idx: list[int], name: str) -> Path:
        return train([self.pairs[i] for i in idx], self.work / name, self.work, self.args)

    def score(self, model: Path, idx: list[int]) -> list[dict]:
        self.n += 1
        return score(model, [self.pairs[i] for i in idx], self.work / f"score-{self.n}.jsonl", self.work, self.args)


def embed_texts(texts: list[str], max_length: int, batch: int = 32) -> np.ndarray:
    """(n,) texts -> (n, 384) mean-pooled all-MiniLM-L6-v2 embeddings, L2-normalised."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from rewardkit.model.backbone import default_backbone_path

    path = default_backbone_path()
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    out = []
    order = np.argsort([len(t) for t in texts])  # similar lengths batched together: less padding
    with torch.inference_mode():
        for start in range(0, len(texts), batch):
            chunk = [texts[j] for j in order[start : start + batch]]
            enc = tok(chunk, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            hidden = model(**enc).last_hidden_state  # (b, t, 384)
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    emb = np.concatenate(out)
    result = np.empty_like(emb)
    result[order] = emb
    return result


def fit_bt_head(diff: np.ndarray, y: np.ndarray, l2: float = 1e-2) -> np.ndarray:
    """Linear Bradley-Terry head: w minimising mean softplus(-(2y-1) w.d) + l2 |w|^2 (no bias: swapping a and b
    must flip the margin)."""
    from scipy.optimize import minimize

    sign = 2.0 * y - 1.0
    z = diff * sign[:, None]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        m = z @ w
        value = np.mean(np.logaddexp(0.0, -m)) + l2 * w @ w
        grad = -(z.T @ (1.0 / (1.0 + np.exp(m)))) / len(m) + 2 * l2 * w
        return float(value), grad

    return minimize(loss, np.zeros(diff.shape[1]), jac=True, method="L-BFGS-B").x


class ProbeTrainer:
    """A linear BT head (or a bootstrap ensemble of 5) on frozen MiniLM features."""

    def __init__(self, pairs: list[dict], work: Path, args: argparse.Namespace) -> None:
        cache = work / f"embeddings-{len(pairs)}-{args.seed}-{args.max_length}.npy"
        if cache.exists():
            emb = np.load(cache)
        else:
            t0 = time.perf_counter()
            texts = [f"{p['prompt']}\n\n{side}" for p in pairs for side in (p["a"], p["b"])]
            emb = embed_texts(texts, args.max_length)
            np.save(cache, emb)
            print(f"embedded {len(texts)} texts in {time.perf_counter() - t0:.0f}s", flush=True)
        self.ea, self.eb = emb[0::2], emb[1::2]
        self.y = np.asarray([float(not p["b_wins"]) for p in pairs])  # 1 = a better
        self.rng_seed = args.train_seed

    def fit(self, idx: list[int], name: str) -> list[np.ndarray]:
        ix = np.asarray(idx)
        diff = self.ea[ix] - self.eb[ix]
        heads = [fit_bt_head(diff, self.y[ix])]
        rng = np.random.default_rng(self.rng_seed + len(idx))
        for _ in range(4):  # bootstrap members, for disagreement only
            b = rng.integers(0, len(ix), len(ix))
            heads.append(fit_bt_head(diff[b], self.y[ix][b]))
        return heads

    def score(self, heads: list[np.ndarray], idx: list[int]) -> list[dict]:
        ix = np.asarray(idx)
        sa, sb = self.ea[ix] @ heads[0], self.eb[ix] @ heads[0]
        members = np.stack([(self.ea[ix] - self.eb[ix]) @ w for w in heads[1:]], axis=1)  # (n, 4)
        p = 1.0 / (1.0 + np.exp(-(sa - sb)))
        return [
            {"score_a": float(a), "score_b": float(b), "p_a_better": float(q), "member_margins": tuple(m.tolist())}
            for a, b, q, m in zip(sa, sb, p, members)
        ]


def run_repeat(trainer, pairs, test_idx, seed_idx, pool_idx, strategies, args, started, seed):  # noqa: ANN001, ANN201
    seed_model = trainer.fit(seed_idx, f"seed-{seed}")
    seed_test = accuracy_vector(trainer.score(seed_model, test_idx), [pairs[i] for i in test_idx])
    curves: dict[str, list[tuple[int, float]]] = {}
    final: dict[str, np.ndarray] = {}
    for strategy in strategies:
        labelled, unlabelled, model, acc = list(seed_idx), list(pool_idx), seed_model, seed_test
        curves[strategy] = [(len(labelled), float(seed_test.mean()))]
        for r in range(args.rounds):
            scored = trainer.score(model, unlabelled)
            candidates = [
                Candidate(
                    prompt=pairs[i]["prompt"],
                    responses=(pairs[i]["a"], pairs[i]["b"]),
                    origin={"kind": "file", "index": i},
                    score_a=s["score_a"],
                    score_b=s["score_b"],
                    p_a=s["p_a_better"],
                    member_margins=s.get("member_margins"),
                )
                for i, s in zip(unlabelled, scored, strict=True)
            ]
            picked = choose(candidates, strategy, args.step, seed=seed * 7919 + r)
            chosen = {unlabelled[j] for j, _ in picked}
            labelled += sorted(chosen)
            unlabelled = [i for i in unlabelled if i not in chosen]
            model = trainer.fit(labelled, f"{strategy}-{seed}-{r}")
            acc = accuracy_vector(trainer.score(model, test_idx), [pairs[i] for i in test_idx])
            curves[strategy].append((len(labelled), float(acc.mean())))
            if args.trainer == "cli":
                print(f"{strategy:>12} round {r + 1}: {len(labelled)} labels, test accuracy {acc.mean():.3f} "
                      f"({time.perf_counter() - started:.0f}s)", flush=True)  # fmt: skip
        final[strategy] = acc
    return curves, final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trainer", choices=["probe", "cli"], default="probe")
    parser.add_argument("--seed-size", type=int, default=500)
    parser.add_argument("--step", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pool", type=int, default=3000, help="unlabelled candidate pairs")
    parser.add_argument("--test", type=int, default=1500, help="held-out test pairs")
    parser.add_argument("--repeats", type=int, default=5, help="seed sets (different random seed labels)")
    parser.add_argument("--strategies", default="random,uncertainty,disagreement,diversity")
    parser.add_argument("--epochs", type=float, default=1.0, help="cli trainer")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0, help="data split")
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="keep models, files and embeddings here")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if args.trainer == "cli" and "disagreement" in strategies:
        strategies.remove("disagreement")

    rng = np.random.default_rng(args.seed)
    groups = load_pairs()
    instructions = sorted(groups)
    rng.shuffle(instructions)
    test_pairs: list[dict] = []
    pool_pairs: list[dict] = []
    for ins in instructions:  # whole instructions to one side, so no prompt is in both
        target = test_pairs if len(test_pairs) < args.test else pool_pairs
        target.extend(groups[ins])
        if len(pool_pairs) >= args.pool + args.seed_size:
            break
    test_pairs = test_pairs[: args.test]
    pool_pairs = pool_pairs[: args.pool + args.seed_size]
    pairs = test_pairs + pool_pairs
    test_idx = list(range(len(test_pairs)))
    pool_all = list(range(len(test_pairs), len(pairs)))
    print(
        f"AlpacaEval: {len(test_pairs)} test pairs; pool {len(pool_all)} pairs of which {args.seed_size} seed labels; "
        f"{args.rounds} rounds of {args.step}; trainer {args.trainer}; {args.repeats} repeat(s)",
        flush=True,
    )
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rk-al-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    trainer = ProbeTrainer(pairs, work, args) if args.trainer == "probe" else CliTrainer(pairs, work, args)

    all_curves: dict[str, list[list[tuple[int, float]]]] = {s: [] for s in strategies}
    finals: dict[str, list[np.ndarray]] = {s: [] for s in strategies}
    for rep in range(args.repeats):
        order = np.random.default_rng(1000 + rep).permutation(pool_all)
        seed_idx = [int(i) for i in order[: args.seed_size]]
        pool_idx = [int(i) for i in order[args.seed_size :]]
        curves, final = run_repeat(trainer, pairs, test_idx, seed_idx, pool_idx, strategies, args, started, rep)
        for s in strategies:
            all_curves[s].append(curves[s])
            finals[s].append(final[s])
        print(f"repeat {rep + 1}: " + ", ".join(f"{s} {curves[s][-1][1]:.3f}" for s in strategies)
              + f" ({time.perf_counter() - started:.0f}s)", flush=True)  # fmt: skip

    print("\nlearning curves, mean test accuracy over repeats (labels: accuracy)")
    results: dict = {"trainer": args.trainer, "repeats": args.repeats, "test_pairs": len(test_pairs), "curves": {}}
    for s in strategies:
        budgets = [n for n, _ in all_curves[s][0]]
        means = np.mean([[a for _, a in c] for c in all_curves[s]], axis=0)
        results["curves"][s] = list(zip(budgets, means.tolist()))
        print(f"  {s:>12}: " + "  ".join(f"{n}: {a:.3f}" for n, a in zip(budgets, means)))
    results["comparisons"] = {}
    if "random" in finals:
        budget = results["curves"]["random"][-1][0]
        print(f"\nat {budget} labels, accuracy minus random's (paired bootstrap over test pairs, 95% interval):")
        rand = np.mean(finals["random"], axis=0)
        for s in strategies:
            if s == "random":
                continue
            per_repeat = [float(np.mean(a - b)) for a, b in zip(finals[s], finals["random"])]
            mean, lo, hi = paired_bootstrap(np.mean(finals[s], axis=0), rand)
            verdict = "beats random" if lo > 0 else ("worse than random" if hi < 0 else "no clear difference")
            results["comparisons"][s] = {"difference": mean, "lo": lo, "hi": hi, "verdict": verdict,
                                         "per_repeat": per_repeat}  # fmt: skip
            print(f"  {s:>12}: {mean:+.3f}  [{lo:+.3f}, {hi:+.3f}]  {verdict}; per repeat "
                  + " ".join(f"{d:+.3f}" for d in per_repeat))  # fmt: skip
    print(f"\ntotal {time.perf_counter() - started:.0f}s; work folder {work}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
