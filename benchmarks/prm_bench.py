"""Process reward models on GSM8K: best-of-4 selection over real GPT-3 solutions, PRM vs outcome RM.

Run (~35 min with the defaults on a shared 2-core machine at load average 10-24; see docs/process-rewards.md):

    .venv/bin/python benchmarks/prm_bench.py --out runs/prm-bench.json
    .venv/bin/python benchmarks/prm_bench.py --max-steps 100 --gen-solutions 800   # a quick slice

The data (``../shared/data/gsm8k``, written by ``rewardkit data gsm8k-steps``):

- the 655 test problems with four GPT-3 solutions each and their real outcome labels are split by problem id
  (a seeded hash, half and half) into TRAIN problems and EVAL problems; every number below is on EVAL;
- PRM-generated: trained on step labels generated from the human solutions of GSM8K's training set (each
  calculation checked; a corrupted calculation carried forward gives a known first error), a seeded sample of
  ``--gen-solutions`` of them;
- PRM-outcome: trained on the TRAIN problems' model solutions with outcome labels as step labels (every step of
  a correct solution good, of a wrong one bad: the outcome-supervised value model of Uesato et al., 2022);
- ORM: an outcome reward model (Bradley-Terry) on pairs of the TRAIN problems' solutions, a correct one chosen
  over a wrong one of the same problem (every such pair).

Every model: the default backbone (all-MiniLM-L6-v2), the same ``--max-steps`` optimizer steps of
``--batch-size`` sequences (a PRM's solutions; the ORM's pairs are two sequences each, so it gets half as many
pairs), max_length 384, lr 1e-4, ``--threads`` torch threads (1), ``--freeze-layers`` (rewardkit's default: a
third of the blocks), rewardkit's other defaults.

Selection accuracy: per EVAL problem pick the highest-scored of its four solutions (ties: the expected value
over the tied ones), the share whose pick is correct, with a 95% bootstrap interval over problems; beside it
random (expected), oracle (any correct) and majority vote over final answers, and each scorer's weighted vote
(``NAME_vote``: the final answer whose solutions' scores sum highest, Math-Shepherd's weighted self-consistency).
Speed: the PRM scorer and the outcome scorer on the same EVAL texts (prompt + solution), one thread, best of three
rounds taking turns, sequences/s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RK_SHARED_DATA", ROOT.parent / "shared" / "data"))
MAX_LENGTH = 384  # GSM8K question + solution: median ~155 MiniLM tokens, 7.5% over 256, 99th percentile ~340


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def generate(out: Path, model_solutions: bool) -> Path:
    """``rewardkit data gsm8k-steps`` (the data half's generator) into ``out``."""
    source = SHARED / "gsm8k" / ("model_solutions.jsonl.gz" if model_solutions else "train.jsonl.gz")
    cmd = [sys.executable, "-m", "rewardkit", "data", "gsm8k-steps", "--out", str(out), "--input", str(source)]
    cmd += ["--model-solutions"] if model_solutions else []
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


def side(problem_id: str, seed: int) -> str:
    """'train' or 'eval' for a problem: a seeded hash, half and half."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{problem_id}".encode()).digest()[:8], "big")
    return "train" if h % 2 == 0 else "eval"


def text_of(row: dict[str, Any]) -> str:
    return "\n".join(row["completions"])


def orm_pairs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A correct solution chosen over a wrong one of the same problem, every such pair."""
    by_problem: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_problem.setdefault(r["problem_id"], []).append(r)
    pairs = []
    for group in by_problem.values():
        for good in (r for r in group if r["outcome"]):
            for bad in (r for r in group if not r["outcome"]):
                pairs.append({"prompt": good["prompt"], "chosen": text_of(good), "rejected": text_of(bad)})
    return pairs


def train_model(name: str, data: Path, out: Path, args: argparse.Namespace, objective: str) -> dict[str, Any]:
    from rewardkit.train import TrainConfig, train

    # the same compute per optimizer step: batch_size sequences (a PRM's solutions, or half as many ORM pairs)
    batch = args.batch_size if objective == "prm" else max(1, args.batch_size // 2)
    config = TrainConfig(
        objective=objective, data=str(data), out=str(out), max_steps=args.max_steps, batch_size=batch,
        max_length=MAX_LENGTH, eval_every=max(1, args.max_steps // 2), threads=args.threads, progress=False,
        bf16="off", validation_fraction=0.1, seed=args.seed, freeze_layers=args.freeze_layers,
    )  # fmt: skip
    t0 = time.perf_counter()
    metrics = train(config).metrics
    seconds = time.perf_counter() - t0
    print(f"  trained {name} in {seconds:.0f} s (val loss {metrics.get('val_loss'):.4f})", file=sys.stderr)
    return {"seconds": seconds, **{k: metrics.get(k) for k in ("val_loss", "val_step_accuracy", "val_accuracy")}}


def step_threshold(scorer: Any, folder: Path, data: Path) -> float:
    """The card's fitted step threshold; for a card written before cards held one, fitted as training fits it
    (``fit_step_threshold`` on the validation split ``load_step_solutions`` makes of the training file)."""
    from rewardkit.evaluate.process import POSITIVE
    from rewardkit.model.calibration import fit_step_threshold
    from rewardkit.model.card import read_card
    from rewardkit.train.steps import load_step_solutions

    card = read_card(folder)
    if "step_threshold" in card.metrics:
        return card.step_threshold
    _, val, _ = load_step_solutions(str(data), card.config.get("validation_fraction", 0.1))
    scores = scorer.score_steps([s.prompt for s in val], [s.steps for s in val]).step_scores
    pairs = [(p, POSITIVE[y]) for ss, s in zip(scores, val) for p, y in zip(ss, s.labels) if p is not None and y]
    return fit_step_threshold([p for p, _ in pairs], [g for _, g in pairs])[0]


def sequences_per_s(
    scorers: dict[str, Any], prompts: list[str], texts: list[str], rounds: int = 3
) -> dict[str, dict[str, float]]:
    """Each scorer's sequences/s on the same texts, best of ``rounds``, the scorers taking turns within each round,
    by the wall clock and by the process's CPU time (one thread: on a shared, loaded machine the wall clock of one
    pass varied 2.5x from round to round, the CPU time is what the scorer itself costs)."""
    best = {name: {"wall": float("inf"), "cpu": float("inf")} for name in scorers}
    for _ in range(rounds):
        for name, scorer in scorers.items():
            wall, cpu = time.perf_counter(), time.process_time()
            scorer.score(prompts, texts)
            best[name]["wall"] = min(best[name]["wall"], time.perf_counter() - wall)
            best[name]["cpu"] = min(best[name]["cpu"], time.process_time() - cpu)
    return {name: {k: len(texts) / v for k, v in times.items()} for name, times in best.items()}


def measure_speed(prm: Any, orm: Any, prompts: list[str], texts: list[str]) -> dict[str, Any]:
    rates = sequences_per_s({"prm": prm, "orm": orm}, prompts, texts)
    return {
        "texts": len(texts),
        "prm_sequences_per_s": rates["prm"]["wall"],
        "orm_sequences_per_s": rates["orm"]["wall"],
        "prm_over_orm": rates["prm"]["wall"] / rates["orm"]["wall"],
        "prm_sequences_per_cpu_s": rates["prm"]["cpu"],
        "orm_sequences_per_cpu_s": rates["orm"]["cpu"],
        "prm_over_orm_cpu": rates["prm"]["cpu"] / rates["orm"]["cpu"],
    }


def print_speed(speed: dict[str, Any]) -> None:
    load = os.getloadavg()[0]
    print(
        f"\nscoring speed on {speed['texts']} texts, 1 thread: PRM {speed['prm_sequences_per_s']:.1f} seq/s, outcome "
        f"{speed['orm_sequences_per_s']:.1f} seq/s (ratio {speed['prm_over_orm']:.2f}); per CPU second: PRM "
        f"{speed['prm_sequences_per_cpu_s']:.1f}, outcome {speed['orm_sequences_per_cpu_s']:.1f} (ratio "
        f"{speed['prm_over_orm_cpu']:.2f}); load average {load:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-steps", type=int, default=80, help="Optimizer steps of every model (same budget).")
    parser.add_argument("--batch-size", type=int, default=8, help="Sequences per step (the ORM: half as many pairs).")
    parser.add_argument("--gen-solutions", type=int, default=1000, help="Generated solutions sampled for PRM-gen.")
    parser.add_argument("--gen-eval", type=int, default=300, help="Held-out generated solutions for ProcessBench F1.")
    parser.add_argument("--eval-problems", type=int, default=0, help="Use only N EVAL problems (0: all; quick runs).")
    parser.add_argument("--speed-texts", type=int, default=200, help="EVAL texts the two scorers are timed on.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="Torch threads while training (scoring: 1).")
    parser.add_argument(
        "--freeze-layers", type=int, default=-1, help="Frozen lowest blocks (-1: rewardkit's default, a third)."
    )
    parser.add_argument("--generated", type=Path, help="A gsm8k-steps file (default: generate one).")
    parser.add_argument(
        "--model-solutions", type=Path, help="A gsm8k-steps --model-solutions file (default: make one)."
    )
    parser.add_argument("--keep", type=Path, help="Keep the trained models here (default: a temporary folder).")
    parser.add_argument("--out", type=Path, help="Write the results as JSON here.")
    parser.add_argument("--speed-only", action="store_true", help="Only time the scorers of the models in --keep.")
    parser.add_argument(
        "--eval-only", action="store_true", help="Evaluate the models a run kept in --keep again (no training)."
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(1)
    from rewardkit.evaluate.process import (
        final_answer,
        known_first_error,
        predicted_first_error,
        processbench_f1,
        selection_report,
        step_accuracy,
    )
    from rewardkit.model.step_aggregate import STEP_AGGREGATES, aggregate_steps
    from rewardkit.scoring.scorer import load_scorer
    from rewardkit.train.steps import step_label

    work = Path(args.keep or tempfile.mkdtemp(prefix="prm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.speed_only:  # the models a run kept in --keep, timed on its EVAL texts
        rows = [r for r in read_jsonl(args.model_solutions) if side(r["problem_id"], args.seed) == "eval"]
        rows = rows[: args.speed_texts]
        prm, orm = (load_scorer(str(work / name), dtype="fp32", threads=1) for name in ("prm_outcome", "orm"))
        print_speed(measure_speed(prm, orm, [r["prompt"] for r in rows], [text_of(r) for r in rows]))
        return
    kept = args.eval_only and not args.generated
    generated = read_jsonl(
        args.generated or (work / "generated.jsonl" if kept else generate(work / "generated.jsonl", False))
    )
    kept = args.eval_only and not args.model_solutions
    solutions = read_jsonl(
        args.model_solutions
        or (work / "model_solutions.jsonl" if kept else generate(work / "model_solutions.jsonl", True))
    )
    train_rows = [r for r in solutions if side(r["problem_id"], args.seed) == "train"]
    eval_rows = [r for r in solutions if side(r["problem_id"], args.seed) == "eval"]
    rng = random.Random(args.seed)
    gen_order = rng.sample(range(len(generated)), len(generated))
    gen_train = [generated[i] for i in gen_order[: args.gen_solutions]]
    gen_held = [generated[i] for i in gen_order[args.gen_solutions : args.gen_solutions + args.gen_eval]]
    pairs = orm_pairs(train_rows)
    print(
        f"data: {len(gen_train)} generated solutions; model solutions of {len({r['problem_id'] for r in train_rows})} "
        f"train / {len({r['problem_id'] for r in eval_rows})} eval problems; {len(pairs)} ORM pairs",
        file=sys.stderr,
    )
    runs = {
        "prm_generated": (write_jsonl(work / "gen_train.jsonl", gen_train), "prm"),
        "prm_outcome": (write_jsonl(work / "outcome_train.jsonl", train_rows), "prm"),
        "orm": (write_jsonl(work / "orm_pairs.jsonl", pairs), "outcome"),
    }
    if args.eval_only:
        trained = {name: {"kept": str(work / name)} for name in runs}
    else:
        trained = {name: train_model(name, data, work / name, args, kind) for name, (data, kind) in runs.items()}

    # -- best-of-4 on the EVAL problems -------------------------------------------------------------------
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in eval_rows:
        groups.setdefault(r["problem_id"], []).append(r)
    groups = {k: g for k, g in groups.items() if len(g) >= 2}
    if args.eval_problems:
        groups = dict(list(groups.items())[: args.eval_problems])
    flat = [r for g in groups.values() for r in g]
    prompts, texts = [r["prompt"] for r in flat], [text_of(r) for r in flat]
    correct = [[bool(r["outcome"]) for r in g] for g in groups.values()]
    answers = [[r.get("final_answer") or final_answer(text_of(r)) for r in g] for g in groups.values()]

    def regroup(values: list[Any]) -> list[list[Any]]:
        out, i = [], 0
        for g in groups.values():
            out.append(values[i : i + len(g)])
            i += len(g)
        return out

    scored: dict[str, list[list[float]]] = {}
    scorers = {}
    for name in ("prm_generated", "prm_outcome"):
        scorer = scorers[name] = load_scorer(str(work / name), dtype="fp32", threads=1)
        steps = scorer.score_steps(prompts, [r["completions"] for r in flat]).step_scores
        for how in STEP_AGGREGATES:
            scored[f"{name}_{how}"] = regroup([aggregate_steps(s, how) for s in steps])
    orm = scorers["orm"] = load_scorer(str(work / "orm"), dtype="fp32", threads=1)
    scored["orm"] = regroup(list(orm.score(prompts, texts).raw))
    # weighted voting over final answers: PRM solution scores are probabilities and weigh as they are; the ORM's
    # are rewards (any real number), weighed as exp(r - max r) per problem, the softmax's ratios
    votes = {name: groups for name, groups in scored.items() if name != "orm"}
    votes["orm"] = [[math.exp(r - max(g)) for r in g] for g in scored["orm"]]
    report = selection_report(correct, answers, scored, n_boot=2000, vote_weights=votes)

    # -- PRM-generated on held-out generated solutions: step accuracy and ProcessBench F1 --------------------
    # at 0.5 and at the threshold fitted on the model's validation steps (the card's; for a model trained before
    # cards held one, fitted here on the same validation split the trainer made)
    held_labels = [tuple(step_label(v, "generated") for v in r["labels"]) for r in gen_held]
    held_scores = scorers["prm_generated"].score_steps(
        [r["prompt"] for r in gen_held], [r["completions"] for r in gen_held]
    )
    fitted = step_threshold(scorers["prm_generated"], work / "prm_generated", runs["prm_generated"][0])
    synthetic: dict[str, Any] = {"solutions": len(gen_held), "fitted_threshold": fitted}
    for name, threshold in (("at_0.5", 0.5), ("at_fitted", fitted)):
        known = [
            (predicted_first_error(s, threshold), known_first_error(y)[1])
            for s, y in zip(held_scores.step_scores, held_labels)
            if known_first_error(y)[0]
        ]
        synthetic[name] = {
            "step_accuracy": step_accuracy(held_scores.step_scores, held_labels, threshold),
            "processbench": processbench_f1([p for p, _ in known], [t for _, t in known]),
        }

    # -- speed: the PRM scorer vs the outcome scorer on the same texts --------------------------------------
    timed = slice(0, args.speed_texts)
    speed = measure_speed(scorers["prm_outcome"], orm, prompts[timed], texts[timed])
    load = os.getloadavg()
    result = {
        "config": vars(args) | {"generated": str(args.generated), "model_solutions": str(args.model_solutions)},
        "train": trained,
        "best_of_n": report,
        "generated_held_out": synthetic,
        "speed": speed,
        "load_average": load,
    }
    n, problems = report["candidates"], report["problems"]
    print(f"\nbest-of-{n} selection accuracy on {problems} EVAL problems (95% bootstrap interval)")
    for name, row in sorted(report["selection"].items(), key=lambda kv: -kv[1]["value"]):
        print(f"  {name:>24}: {row['value']:.3f} [{row['low']:.3f}, {row['high']:.3f}]")
    print(f"\nPRM-generated on {synthetic['solutions']} held-out generated solutions:")
    for name, threshold in (("at_0.5", 0.5), ("at_fitted", fitted)):
        pb, acc = synthetic[name]["processbench"], synthetic[name]["step_accuracy"]["accuracy"]
        print(
            f"  threshold {threshold:.3f}: step accuracy {acc:.3f}, ProcessBench F1 {pb['f1']:.3f} (erroneous "
            f"{pb['error_accuracy']:.3f} of {pb['erroneous']}, correct {pb['correct_accuracy']:.3f} of {pb['correct']})"
        )
    print_speed(speed)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
