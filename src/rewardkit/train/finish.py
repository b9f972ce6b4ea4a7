"""The end of a member's training: best weights back, calibration and normalization fitted on what is served,
the card's metrics, and the saved model folder.

The temperature and the reward mean/std describe the score that is served: the weighted aggregate over the
heads, fitted on the validation pairs (``model/calibration.py``). Only rank 0 writes files.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from rewardkit.atomic import atomic_write_text
from rewardkit.model.calibration import BOUND_NOTES, calibrate
from rewardkit.model.card import RewardCard, plot_curves, write_readme
from rewardkit.model.formatting import template_kind
from rewardkit.model.forward import RewardForward
from rewardkit.model.length_control import pearson
from rewardkit.train.batches import PairTensors, cut_counts
from rewardkit.train.checkpoint import weights_digest
from rewardkit.train.config import TrainConfig
from rewardkit.train.rewards import PairRewards, validate

log = logging.getLogger(__name__)


@dataclass
class Member:
    """What the finish needs of a trained member: the model (peft-wrapped under LoRA), its tokenizer, the head's
    module name and initial weights, the run's config and seed, and the data id."""

    model: Any
    tokenizer: Any
    head: str
    head_init: dict[str, torch.Tensor]
    config: TrainConfig
    seed: int
    snapshot_id: str


def best_weights(member: Member, out: Path, world: int = 1) -> Any:
    """The member's model with checkpoint/best.pt loaded (after every rank is there) and LoRA merged into plain
    HF weights, the trained head in place of the original."""
    model = member.model
    if world > 1:
        import torch.distributed as dist

        dist.barrier()  # rank 0 has written best.pt
    if (out / "checkpoint" / "best.pt").is_file():
        model.load_state_dict(torch.load(out / "checkpoint" / "best.pt", weights_only=True, map_location="cpu"))
    return model.merge_and_unload() if member.config.lora_r else model


def finish_member(
    member: Member,
    out: Path,
    rewards: PairRewards,
    val_data: PairTensors,
    reused: tuple[torch.Tensor, torch.Tensor] | None,
    run: dict[str, Any],
    history: list[dict[str, Any]],
    rank: int = 0,
    world: int = 1,
) -> dict[str, Any]:
    """Load best.pt (merging LoRA), fit calibration, write the model folder (rank 0); returns the metrics.
    ``reused``: the validation rewards of the best step when the loop has them (None: score again); ``run``:
    the loop's own metrics (steps, timings, bf16...), put first in the card's."""
    config, model = member.config, best_weights(member, out, world)
    if config.lora_r:
        reused = None  # merging changes the arithmetic: the merged model is scored again
    forward = RewardForward(model)
    model.eval()
    rc, rr = reused or validate(forward, rewards, val_data, config.batch_size)
    decided = ~val_data.tie
    diff = (rc - rr)[decided]
    # temperature and normalization describe what is scored and served: the weighted aggregate over heads. A
    # multi-attribute pair was judged on its own head above; with one head the judged reward is the aggregate
    attributes = config.attribute_names()
    served = (
        (rc, rr)
        if len(attributes) == 1
        else validate(
            forward, rewards, replace(val_data, attribute=torch.full_like(val_data.attribute, -1)), config.batch_size
        )
    )
    cal = calibrate(*served, decided, config.reference_size)
    if cal.at_bound and rank == 0:
        log.warning("%s: the fitted temperature T = %g is %s", out, cal.temperature, BOUND_NOTES[cal.at_bound])
    metrics = {
        **run,
        "validation_pairs": val_data.n,
        **cut_counts(val_data, "validation"),
        "val_accuracy": (diff > 0).float().mean().item() if len(diff) else None,
        "val_margin": diff.mean().item() if len(diff) else None,
        "ece_before": cal.ece_before,
        "ece_after": cal.ece_after,
        "ece_after_cross_fit": cal.ece_after_cross_fit,
        "temperature_at_bound": cal.at_bound,
        "weights_sha256": weights_digest(model),
        "head_changed": head_changed(member, model),
        "val_length_corr": float(pearson(torch.cat([rc, rr]), val_data.log_length)) if len(rc) > 1 else None,
    }
    if rank == 0:
        card = RewardCard(
            backbone=config.backbone,
            snapshot_id=member.snapshot_id,
            max_length=config.max_length,
            template=template_kind(member.tokenizer),
            temperature=cal.temperature,
            attributes=attributes,
            attribute_weights=config.attribute_weight_values(),
            reward_mean=cal.reward_mean,
            reward_std=cal.reward_std,
            reference=cal.reference,
            config={**asdict(config), "seed": member.seed},
            metrics=metrics,
        )
        save_member(out, model, member, card, history)
    return metrics


def head_changed(member: Member, model: Any) -> bool:
    """Whether training moved the head away from its initial weights (a frozen or dead head is a bug)."""
    head_now = getattr(model, member.head).state_dict()
    return not all(torch.equal(v, head_now[k].cpu()) for k, v in member.head_init.items())


def save_member(out: Path, model: Any, member: Member, card: RewardCard, history: list[dict[str, Any]]) -> None:
    """The model folder (weights, tokenizer, card) and the run's files beside it: rank 0's last act."""
    from rewardkit.model.reward_model import RewardModel

    RewardModel(model, member.tokenizer, card).save(out)
    write_run_files(out, card, history)


def write_run_files(out: Path, card: RewardCard, history: list[dict[str, Any]]) -> None:
    atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    write_readme(out, card)
    plot_curves(history, out / "curves.png", card.metrics.get("best_step"))


def finish_step_member(
    member: Member,
    out: Path,
    rewards: Any,
    val_data: Any,
    reused: tuple[torch.Tensor, torch.Tensor] | None,
    run: dict[str, Any],
    history: list[dict[str, Any]],
    rank: int = 0,
    world: int = 1,
) -> dict[str, Any]:
    """A process reward model's end (``train/steps.py``): best.pt back (LoRA merged), the step metrics on the
    validation solutions, and the folder: a token classifier (num_labels=1) that plain
    ``AutoModelForTokenClassification`` loads, its tokenizer with the step token, and a card naming that token.
    No temperature or normalization is fitted: a step score is already a probability, sigmoid(logit); the step
    threshold is (the score below which a step is an error, by balanced accuracy on the validation steps)."""
    from rewardkit.model.calibration import fit_step_threshold
    from rewardkit.model.losses import step_bce_loss
    from rewardkit.model.step_aggregate import DEFAULT_STEP_AGGREGATE
    from rewardkit.model.steps import StepForward
    from rewardkit.train.steps import step_cut_counts, step_metrics, validate_steps

    config, model = member.config, best_weights(member, out, world)
    if config.lora_r:
        reused = None
    model.eval()
    logits, targets = reused or validate_steps(StepForward(model), rewards, val_data, config.batch_size)
    val = step_metrics(step_bce_loss, logits, targets)
    threshold, balanced = fit_step_threshold(torch.sigmoid(logits).tolist(), (targets > 0.5).tolist())
    token = model.config.rewardkit_step_token
    metrics = {
        **run,
        "validation_solutions": val_data.n,
        "validation_steps": len(targets),
        **step_cut_counts(val_data, "validation"),
        "val_step_accuracy": val["accuracy"],
        "val_good_mean": val.get("good_mean"),
        "val_bad_mean": val.get("bad_mean"),
        "step_threshold": threshold,
        "val_step_balanced_accuracy": balanced,
        "weights_sha256": weights_digest(model),
        "head_changed": head_changed(member, model),
    }
    if rank == 0:
        card = RewardCard(
            backbone=config.backbone,
            snapshot_id=member.snapshot_id,
            max_length=config.max_length,
            template=template_kind(member.tokenizer),
            step_token=token,
            step_separator=config.step_separator,
            step_aggregate=DEFAULT_STEP_AGGREGATE,
            step_threshold=threshold,
            config={**asdict(config), "seed": member.seed},
            metrics=metrics,
        )
        save_member(out, model, member, card, history)
    return metrics
