"""The process-reward-model objective's data and forward pass: step-labelled solutions in, per-step logits out.

``read_step_file(path)`` reads TRL's stepwise-supervision JSONL (``{"prompt", "completions": [step, ...],
"labels": [bool, ...]}``, one solution a line; ``.jsonl`` or ``.jsonl.gz``) into ``records.StepSolution``s;
``load_step_solutions`` splits them by prompt as pair files are split. ``encode_solutions`` encodes them once
(``model/steps.py``: the step token after every step) with a training label at each step token:

    good -> 1, bad -> 0, neutral -> 1, unlabelled (None) -> ignored

Neutral counts as good: it is not an error (ProcessBench and best-of-N look for the first *bad* step), and
PRM800K's neutral steps are mostly harmless restatements. An unlabelled step carries no supervision (e.g.
Math-Shepherd's steps after the first error); it is read in context but adds nothing to the loss, as TRL's
PRMTrainer's -100 labels do.

``StepRewards`` runs one forward pass per batch of solutions and returns the logits at the labelled step
tokens with their labels: the loss (``model.losses.step_bce_loss``) sees every labelled step of the batch.
"""

from __future__ import annotations

import gzip
import json
import math
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rewardkit.data.compile import split_of
from rewardkit.model.formatting import collate
from rewardkit.model.steps import StepEncoded, encode_steps
from rewardkit.records import STEP_LABELS, Annotator, RecordError, StepSolution

LABEL_VALUES = {"good": 1.0, "neutral": 1.0, "bad": 0.0}
"""The training target of each step label (module docstring); None is ignored."""


def step_label(value: Any, where: str) -> str | None:
    """A file's step label as a ``StepLabel``: true/false (TRL), null, or the label's name."""
    if value is None or value in STEP_LABELS:
        return value
    if isinstance(value, bool):
        return "good" if value else "bad"
    raise ValueError(f"{where}: expected true, false, null or one of {', '.join(STEP_LABELS)}, got {value!r}")


def solution_from_row(row: Any, where: str, source: str) -> StepSolution:
    """One stepwise JSONL row as a StepSolution; a ValueError naming ``where`` (file:line) and the field."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for key in ("prompt", "completions", "labels"):
        if key not in row:
            raise ValueError(f"{where}: missing field {key!r} (TRL stepwise rows have prompt, completions, labels)")
    steps, labels = row["completions"], row["labels"]
    if not isinstance(steps, list) or not isinstance(labels, list):
        raise ValueError(f"{where}: completions and labels must be lists")
    outcome = row.get("outcome")
    if outcome is not None and not isinstance(outcome, bool):
        raise ValueError(f"{where}: outcome: expected true, false or null, got {outcome!r}")
    known = ("prompt", "completions", "labels", "outcome", "model_name", "annotator", "annotator_kind")
    extra = {k: v for k, v in row.items() if k not in known}
    try:
        return StepSolution(
            prompt=row["prompt"],
            steps=tuple(steps),
            labels=tuple(step_label(v, f"{where}: labels[{i}]") for i, v in enumerate(labels)),
            annotator=Annotator(str(row.get("annotator") or source), row.get("annotator_kind") or "human"),
            source=source,
            outcome=outcome,
            model_name=str(row.get("model_name") or ""),
            metadata=extra,
        )
    except RecordError as exc:
        raise ValueError(f"{where}: {exc}") from None


def read_step_file(path: str | Path) -> list[StepSolution]:
    """Every solution of a stepwise JSONL file (``.gz`` read as gzip), in file order."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            out.append(solution_from_row(row, f"{path}:{n}", "trl-stepwise"))
    if not out:
        raise ValueError(f"{path}: no solutions (expected one JSON object a line)")
    return out


def load_step_solutions(data: str, validation_fraction: float, seed: int = 0) -> tuple[list[Any], list[Any], str]:
    """(train, validation, data id) for the prm objective: a steps snapshot's train and validation splits
    (``rewardkit dataset build-steps``: folder, id or id prefix; its ``StepExample``s read as solutions), or a
    stepwise JSONL file split by prompt (``data.compile.split_of``, as a pair file is split), so one problem's
    solutions never sit on both sides."""
    from rewardkit.data.training_data import file_digest

    path = Path(data)
    if not path.is_file():
        return load_step_snapshot(data, validation_fraction, seed)
    solutions = read_step_file(path)
    train, val = split_solutions(solutions, validation_fraction, seed)
    if not train or not val:
        raise ValueError(
            f"{data}: no {'training' if not train else 'validation'} solutions at validation_fraction "
            f"{validation_fraction} (solutions are split by prompt); add data"
        )
    return train, val, f"file:{file_digest(path)}"


def split_solutions(solutions: list[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    sides = [split_of(s.prompt, seed, (1.0 - fraction, fraction, 0.0)) for s in solutions]
    return [s for s, side in zip(solutions, sides) if side == "train"], [
        s for s, side in zip(solutions, sides) if side != "train"
    ]


def load_step_snapshot(data: str, validation_fraction: float, seed: int) -> tuple[list[Any], list[Any], str]:
    """A steps snapshot's train and validation splits (a snapshot without validation rows: its train split cut
    by prompt at ``validation_fraction``)."""
    from rewardkit.data.snapshot import read_manifest, resolve_snapshot, snapshot_kind
    from rewardkit.data.step_snapshot import load_step_split

    try:
        folder = resolve_snapshot(data)
    except LookupError as exc:
        raise ValueError(f"{exc}; the prm objective reads a steps snapshot or a stepwise JSONL file") from None
    if snapshot_kind(folder) != "steps":
        raise ValueError(f"{data}: a snapshot of pairs; the prm objective reads a steps snapshot (dataset build-steps)")
    train, val = load_step_split(folder, "train"), load_step_split(folder, "validation")
    if not val:
        train, val = split_solutions(train, validation_fraction, seed)
    if not train or not val:
        raise ValueError(f"{data}: no {'training' if not train else 'validation'} solutions in the snapshot")
    return train, val, str(read_manifest(folder).get("id", folder.name))


def label_targets(labels: tuple[str | None, ...]) -> list[float]:
    """Each step's target (``LABEL_VALUES``; NaN: ignored)."""
    return [math.nan if label is None else LABEL_VALUES[label] for label in labels]


@dataclass
class StepTensors:
    """N solutions encoded once, with each kept step's target (NaN: no supervision). ``pair_lengths`` and
    ``both_sides`` are named as ``PairTensors``' so that the epoch plan and the bf16 trial read either."""

    encoded: StepEncoded
    targets: list[list[float]]  # [N][kept steps of row i]

    @property
    def n(self) -> int:
        return len(self.encoded)

    def pair_lengths(self) -> list[int]:
        return self.encoded.lengths

    def both_sides(self, rows: list[int]) -> list[int]:
        return rows

    def labelled_steps(self) -> int:
        return sum(1 for row in self.targets for y in row if not math.isnan(y))


def encode_solutions(tokenizer: Any, solutions: list[StepSolution], max_length: int, step_id: int) -> StepTensors:
    enc = encode_steps(tokenizer, [s.prompt for s in solutions], [s.steps for s in solutions], max_length, step_id)
    targets = [label_targets(s.labels)[: len(pos)] for s, pos in zip(solutions, enc.step_positions)]
    return StepTensors(enc, targets)


def step_cut_counts(data: StepTensors, split: str) -> dict[str, int]:
    """Solutions of a split cut to fit max_length, and the labelled steps that cut dropped (their labels unused)."""
    return {
        f"truncated_{split}": sum(data.encoded.truncated),
        f"steps_cut_{split}": sum(data.encoded.cut_steps),
    }


@dataclass(frozen=True)
class StepRewards:
    """Step logits of a batch of solutions in ONE forward pass: [B, L] -> the logits at the labelled step tokens
    [K] and their targets [K] (K: labelled steps in the batch)."""

    pad_id: int
    device: torch.device
    bf16: bool

    def __call__(self, net: Any, data: StepTensors, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = {k: v.to(self.device) for k, v in collate(data.encoded, rows, self.pad_id).items()}
        with torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext():
            logits = net(**batch)  # [B, L]
        b_idx, p_idx, y = [], [], []
        positions = data.encoded.step_positions
        for b, r in enumerate(rows):
            for pos, target in zip(positions[r], data.targets[r]):
                if not math.isnan(target):
                    b_idx.append(b)
                    p_idx.append(pos)
                    y.append(target)
        return logits[b_idx, p_idx].float(), torch.tensor(y, dtype=torch.float32, device=self.device)


@torch.no_grad()
def validate_steps(
    forward: Any, rewards: StepRewards, data: StepTensors, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [K], targets [K]) of every labelled validation step, in length-sorted batches of 4 x batch_size,
    in eval mode."""
    model = forward.model
    was_training = model.training
    model.eval()
    logits, targets = [], []
    order = sorted(range(data.n), key=data.pair_lengths().__getitem__)
    for start in range(0, len(order), batch_size * 4):
        lg, y = rewards(forward, data, order[start : start + batch_size * 4])
        logits.append(lg.float().cpu())
        targets.append(y.cpu())
    model.train(was_training)
    return torch.cat(logits), torch.cat(targets)


@torch.no_grad()
def step_metrics(loss_fn: Any, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Loss, step accuracy (a step is predicted good when sigmoid(logit) >= 0.5), and the mean step score of
    the good and of the bad steps."""
    if not len(logits):
        return {"loss": float("nan"), "accuracy": float("nan")}
    p = torch.sigmoid(logits)
    good, bad = targets > 0.5, targets <= 0.5
    return {
        "loss": loss_fn(logits, targets).item(),
        "accuracy": ((p >= 0.5) == good).float().mean().item(),
        "good_mean": p[good].mean().item() if good.any() else float("nan"),
        "bad_mean": p[bad].mean().item() if bad.any() else float("nan"),
    }
