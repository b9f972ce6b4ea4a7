"""Robust training benchmark: the plain recipe vs ``--robust default`` (same data, seed and budget), on held-out
accuracy, every reward-hacking probe's rise rate, the length-balanced AlpacaEval subset and best-of-16.

Run (the defaults are capped so that one run, two trainings and two evaluations, fits ~30-40 min on the shared
2-core dev machine under a load of 10-20; on a quiet machine raise them):

    .venv/bin/python benchmarks/robust_bench.py
    .venv/bin/python benchmarks/robust_bench.py --weights 0.5,1,3        # the frontier: default's weights x each
    # the real budget (~25 min on 2 quiet cores at --threads 2; all 130 held-out best-of-16 instructions):
    .venv/bin/python benchmarks/robust_bench.py --train-pairs 1455 --test-pairs 400 --probe-rows 300 \
        --max-length 256 --bon-groups 130 --threads 2 --keep runs/robust --json runs/robust.json
    # a profile of your own against that run's plain model (not retrained):
    .venv/bin/python benchmarks/robust_bench.py ...same options... --profile my.toml --baseline runs/robust.json
    .venv/bin/python benchmarks/robust_bench.py --train-pairs 60 --test-pairs 40 --probe-rows 20 --bon-groups 4  # smoke

Data, as ``train_bench.py`` makes it: HH-RLHF harmless and AlpacaEval pairs read directly, a prompt held out
when a hash of it falls under ``--held-out`` (0.2). Both recipes train ONE model on the two sources' training
pairs together (``--train-pairs`` from each at most: HH holds 1,455 training pairs in all), all-MiniLM-L6-v2,
``--max-length`` (128 by default here, to fit the time; the probes cut long answers so every edit is read), batch
8, ``--epochs`` 1, ``--threads`` 1, seed 0. The robust run adds its augmented pairs on
top (they are built from the same training pairs), so it takes more steps: the budget is the same data and
epochs, not the same step count.

Each model is evaluated with ``rewardkit eval``'s own ``evaluate`` (the seven probes, with their own phrase bank,
which robust training never sees) on each source's held-out pairs (``--test-pairs`` at most), its
``--probe-rows`` distinct chosen responses probed. Printed per model and source: accuracy with its 95% interval
(bootstrap over prompts), the accuracy on the pairs whose chosen response is the shorter (AlpacaEval's
length-balanced subset), each probe's rise rate; then best-of-16 on AlpacaEval's held-out instructions (each
answered by ~28 generators; quality = the judge's preference over the reference, 1 to 2): the judge's expected
preference of the reward model's pick, beside a random and the oracle pick, and each robust recipe's pick minus
the plain one's, paired over instructions with a bootstrap interval.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling train_bench (its data and split rules)

from train_bench import SHARED, held_out, load_rows  # noqa: E402

PROBE_TARGET = 0.20


def pairs_of(rows: list[dict[str, str]], source: str) -> list[Any]:
    from rewardkit.records import PreferencePair, content_hash

    return [
        PreferencePair(
            id=content_hash([r["prompt"], r["chosen"], r["rejected"]]),
            prompt=r["prompt"],
            chosen=r["chosen"],
            rejected=r["rejected"],
            source=source,
        )
        for r in rows
    ]


def split(rows: list[dict[str, str]], fraction: float, n_train: int, n_test: int, seed: int) -> tuple[list, list]:
    train = [r for r in rows if not held_out(r["prompt"], fraction)]
    test = [r for r in rows if held_out(r["prompt"], fraction)]
    random.Random(seed).shuffle(train)
    random.Random(seed + 1).shuffle(test)
    return train[:n_train], test[:n_test]


def scaled_profile(base: str, weight: float, folder: Path) -> str:
    """The ``base`` profile (a shipped name or a path) with every kind's weight multiplied by ``weight`` (a
    frontier point); everything else in it (shares, texts, invariance) as it was."""
    from rewardkit.robust.profile import profile_path

    raw = tomllib.loads(profile_path(base).read_text())
    lines = []
    for kind, spec in raw["kinds"].items():
        lines.append(f"[kinds.{kind}]")
        lines += [f"{key} = {json.dumps(spec[key] * weight if key == 'weight' else spec[key])}" for key in spec]
    if "invariance" in raw:
        lines += ["[invariance]"] + [f"{key} = {json.dumps(v)}" for key, v in raw["invariance"].items()]
    path = folder / f"{Path(base).stem}_x{weight:g}.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def train_one(data: Path, out: Path, args: argparse.Namespace, robust: str) -> tuple[dict[str, Any], float]:
    from rewardkit.train import TrainConfig, train

    t0 = time.perf_counter()
    config = TrainConfig(
        data=str(data),
        out=str(out),
        max_length=args.max_length,
        batch_size=8,
        epochs=args.epochs,
        threads=args.threads,
        eval_every=args.eval_every,
        patience=args.patience,
        seed=args.seed,
        progress=False,
        robust=robust,
        invariance_weight=args.invariance_weight if robust else 0.0,
    )
    return train(config).metrics, time.perf_counter() - t0


def evaluate_model(model: Path, tests: dict[str, list], groups: list, args: argparse.Namespace) -> dict[str, Any]:
    from rewardkit.evaluate.run import EvalConfig, evaluate
    from rewardkit.evaluate.score_fns import load_model_for_eval

    loaded = load_model_for_eval(model, max_length=args.max_length)
    out: dict[str, Any] = {}
    for source, pairs in tests.items():
        config = EvalConfig(probes="all", max_probe_rows=args.probe_rows, seed=args.seed)
        report = evaluate(loaded.score_fn, pairs, config, temperature=loaded.temperature).report
        acc = report["accuracy"]["overall"]
        short = report["length_bias"].get("accuracy_chosen_shorter") or {}
        row = {
            "accuracy": acc["accuracy"],
            "low": acc["low"],
            "high": acc["high"],
            "n": report["n_pairs"],
            "shorter": short.get("accuracy"),
            "shorter_low": short.get("low"),
            "shorter_high": short.get("high"),
            "shorter_n": short.get("n"),
            "probes": {
                k: (p["rise_rate"], p["rise_rate_low"], p["rise_rate_high"]) for k, p in report["probes"].items()
            },
        }
        if source == "alpacaeval" and groups:
            row["bon16"] = best_of_16(loaded.score_fn, groups)
        out[source] = row
    return out


def best_of_16(score_fn: Any, groups: list) -> dict[str, Any]:
    """best-of-16 on ``groups``: the judge's expected preference of the reward model's pick, of a random and of
    the oracle pick (``evaluate/best_of_n.py``, exact over every 16-subset), averaged over groups; ``per_group``
    keeps each group's pick so that two recipes can be compared group by group (``paired_difference``)."""
    import numpy as np

    from rewardkit.evaluate.best_of_n import group_picks, score_groups

    picks, randoms, oracles = group_picks(score_groups(score_fn, groups), [np.asarray(g.quality) for g in groups], 16)
    return {
        "reward_pick": float(np.mean(picks)),
        "random_pick": float(np.mean(randoms)),
        "oracle_pick": float(np.mean(oracles)),
        "groups": len(picks),
        "per_group": picks,
    }


def paired_difference(a: list[float], b: list[float], seed: int = 0) -> tuple[float, float, float]:
    """mean(a - b) over groups with a 95% bootstrap interval that resamples groups (the two picks of one group
    are made among the same responses, so the difference is paired)."""
    import numpy as np

    from rewardkit.evaluate.accuracy import bootstrap_interval

    d = np.asarray(a, float) - np.asarray(b, float)
    return (float(d.mean()), *bootstrap_interval(d, n_boot=10_000, seed=seed))


def fmt_interval(x: float | None, low: float | None, high: float | None) -> str:
    return "-" if x is None else f"{x:.3f} [{low:.3f}, {high:.3f}]"


def print_results(results: dict[str, dict[str, Any]], sources: list[str]) -> None:
    names = list(results)
    for source in sources:
        print(f"\n## {source} (held-out)")
        print("| metric | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        r = {n: results[n]["eval"][source] for n in names}
        print(
            "| accuracy [95%] | "
            + " | ".join(fmt_interval(v["accuracy"], v["low"], v["high"]) for v in r.values())
            + " |"
        )
        print(
            f"| chosen shorter (n={r[names[0]]['shorter_n']}) | "
            + " | ".join(fmt_interval(v["shorter"], v["shorter_low"], v["shorter_high"]) for v in r.values())
            + " |"
        )
        for probe in r[names[0]]["probes"]:
            cells = [
                f"{v['probes'][probe][0]:.3f}" + (" *" if v["probes"][probe][0] > PROBE_TARGET else "")
                for v in r.values()
            ]
            print(f"| rise: {probe} | " + " | ".join(cells) + " |")
        worst = [max(v["probes"].values())[0] for v in r.values()]
        print("| worst probe | " + " | ".join(f"{w:.3f}" for w in worst) + " |")
        if "bon16" in r[names[0]]:
            print(
                "| best-of-16 judge pref. of the pick | "
                + " | ".join(f"{v['bon16']['reward_pick']:.4f}" for v in r.values())
                + " |"
            )
            b = r[names[0]]["bon16"]
            print(
                f"(best-of-16 random pick {b['random_pick']:.4f}, oracle {b['oracle_pick']:.4f}, groups {b['groups']})"
            )
            if "plain" in r:
                for n in names:
                    if n != "plain":
                        diff, low, high = paired_difference(
                            r[n]["bon16"]["per_group"], r["plain"]["bon16"]["per_group"]
                        )
                        print(f"(best-of-16, {n} - plain, paired over groups: {diff:+.4f} [{low:+.4f}, {high:+.4f}])")
    print("\n(* rise rate above the 0.20 target)")
    print("\n| model | training pairs (augmented) | train wall s | train pairs/s |")
    print("|---|---|---|---|")
    for n, v in results.items():
        if "metrics" not in v:  # a --baseline from before the JSON kept them
            continue
        aug = sum((v["metrics"].get("augmented_pairs") or {}).values())
        print(
            f"| {n} | {v['metrics']['train_pairs']} ({aug}) | {v['wall']:.0f} | "
            f"{v['metrics']['train_pairs_per_s']:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-pairs", type=int, default=300, help="training pairs per source at most")
    parser.add_argument("--test-pairs", type=int, default=200, help="held-out pairs per source at most")
    parser.add_argument("--probe-rows", type=int, default=120, help="distinct chosen responses probed per source")
    parser.add_argument("--bon-groups", type=int, default=30, help="held-out AlpacaEval instructions for best-of-16")
    parser.add_argument("--held-out", type=float, default=0.2)
    parser.add_argument(
        "--weights",
        default="1",
        help="comma-separated multipliers of the default profile's weights ('': the plain recipe only)",
    )
    parser.add_argument(
        "--profile", default="default", help="the robust profile the weights multiply (a shipped name or a path)"
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep each trained model in this folder (default: a temporary one)"
    )
    parser.add_argument("--invariance-weight", type=float, default=0.0, help="the robust runs' --invariance-weight")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--patience", type=int, default=2, help="early stopping's patience in validations (0: off)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--no-plain", action="store_true", help="robust runs only (a frontier point run beside a full run)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="take the plain recipe's results from this earlier run's --json (same data options) instead of "
        "training it again; printed beside, best-of-16 paired with it",
    )
    args = parser.parse_args()

    import torch

    from rewardkit.evaluate.best_of_n import load_alpacaeval_groups

    torch.set_num_threads(args.threads)
    hh_train, hh_test = split(load_rows("hh"), args.held_out, args.train_pairs, args.test_pairs, args.seed)
    al_train, al_test = split(load_rows("alpaca"), args.held_out, args.train_pairs, args.test_pairs, args.seed)
    tests = {"hh-rlhf-harmless": pairs_of(hh_test, "hh"), "alpacaeval": pairs_of(al_test, "alpacaeval")}
    groups = [
        g
        for g in load_alpacaeval_groups(SHARED / "alpacaeval" / "annotations.jsonl.gz")
        if held_out(g.prompt, args.held_out) and len(g.responses) >= 16
    ][: args.bon_groups]
    print(
        f"training pairs: {len(hh_train)} HH + {len(al_train)} AlpacaEval; held-out pairs: {len(hh_test)} HH, "
        f"{len(al_test)} AlpacaEval; best-of-16 groups {len(groups)}; threads {args.threads}; seed {args.seed}"
    )
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "train.jsonl"
        rows = hh_train + al_train
        random.Random(args.seed).shuffle(rows)
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        weights = [float(w) for w in args.weights.split(",") if w.strip()]  # "": the plain recipe only
        base = Path(args.profile).stem
        if args.baseline:
            results["plain"] = json.loads(args.baseline.read_text())["plain"]
        recipes = ([] if args.no_plain or args.baseline else [("plain", "")]) + [
            (
                f"robust {base}" if w == 1 else f"robust {base} x{w:g}",
                args.profile if w == 1 else scaled_profile(args.profile, w, work),
            )
            for w in weights
        ]
        models = args.keep or work
        for name, robust in recipes:
            out = models / name.replace(" ", "_")
            metrics, wall = train_one(data, out, args, robust)
            t0 = time.perf_counter()
            metrics = {
                k: metrics.get(k)
                for k in ("train_pairs", "augmented_pairs", "train_pairs_per_s", "steps", "best_step", "stopped_early")
            }
            results[name] = {"metrics": metrics, "wall": wall, "eval": evaluate_model(out, tests, groups, args)}
            schedule = {k: metrics.get(k) for k in ("steps", "best_step", "stopped_early")}
            results[name]["schedule"] = schedule
            results[name]["robust"] = robust and Path(robust).name
            print(
                f"{name}: trained in {wall:.0f}s ({schedule}), evaluated in {time.perf_counter() - t0:.0f}s",
                flush=True,
            )
            if args.json:  # after every recipe: a later failure keeps what finished
                keys = ("eval", "wall", "schedule", "robust", "metrics")
                kept = {n: {k: v[k] for k in keys if k in v} for n, v in results.items()}
                args.json.write_text(json.dumps(kept, indent=1))
    print_results(results, list(tests))


if __name__ == "__main__":
    main()
