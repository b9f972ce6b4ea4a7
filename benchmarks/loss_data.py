"""Inputs of the loss comparison in docs/results.md ("Which loss"): soft vs hard labels, listwise vs pairwise.

    python benchmarks/loss_data.py --annotations ../shared/data/alpacaeval/annotations.jsonl.gz --out /tmp/losses

writes two files, each imported and built into a snapshot as docs/results.md shows:

- ``soft.jsonl``: the AlpacaEval annotations of ``--instructions`` instructions (seeded choice), as they are: each
  row a pair (reference output vs a model's output) whose ``preference`` is the judge's probability, so
  ``--loss soft`` and ``--loss bt`` train on the very same pairs, with and without the probability;
- ``lists.jsonl``: UltraFeedback-style records built from AlpacaEval's many models per instruction: for each
  instruction, ``--k`` distinct model outputs (seeded choice), each rated ``overall_score = 1 + 9 * P(output
  beats the reference)`` (AlpacaEval's ``preference - 1``), so the snapshot's pairs are the pairs of one
  ranking per instruction and ``--loss plackett-luce`` trains on the lists those pairs rebuild.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections import defaultdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotations", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--instructions", type=int, default=210, help="instructions in soft.jsonl")
    parser.add_argument("--k", type=int, default=4, help="responses per list in lists.jsonl")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    by_instruction: dict[str, list[dict]] = defaultdict(list)
    with gzip.open(args.annotations, "rt") as f:
        for line in f:
            row = json.loads(line)
            if row.get("preference") is not None:
                by_instruction[row["instruction"]].append(row)
    rng = random.Random(args.seed)
    names = sorted(by_instruction)
    rng.shuffle(names)
    args.out.mkdir(parents=True, exist_ok=True)

    soft = [row for name in names[: args.instructions] for row in by_instruction[name]]
    (args.out / "soft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in soft))

    records = []
    for name in names:
        distinct: dict[str, dict] = {}
        for row in by_instruction[name]:
            if row["output_2"].strip() and row["output_2"] != row["output_1"]:
                distinct.setdefault(row["output_2"], row)
        if len(distinct) < args.k:
            continue
        chosen = rng.sample(sorted(distinct), args.k)
        completions = [
            {
                "model": distinct[text]["generator_2"],
                "response": text,
                "overall_score": round(1 + 9 * (distinct[text]["preference"] - 1), 4),
            }
            for text in chosen
        ]
        records.append({"source": "alpacaeval-lists", "instruction": name, "completions": completions})
    (args.out / "lists.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    print(json.dumps({"soft_rows": len(soft), "lists": len(records)}))


if __name__ == "__main__":
    main()
