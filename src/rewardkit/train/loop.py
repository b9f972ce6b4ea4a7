"""Train a reward model on a dataset snapshot: the loop, top to bottom.

Run it:

    rewardkit train --data SNAPSHOT --out runs/rm1                 # CLI (cli/train_cmd.py)
    python -c "from rewardkit.train import TrainConfig, train; train(TrainConfig(data='SNAP', out='runs/rm1'))"
    torchrun --nproc_per_node 2 -m rewardkit train --data SNAP --out runs/rm1   # DDP (gloo on CPU)
    accelerate launch --multi_gpu --num_processes 2 -m rewardkit train --data SNAP --out runs/rm1   # CPU too

``train(config)`` reads the train/validation pairs (``data/training_data.py``) and trains one model
(``train_member``) or ``ensemble`` members into ``member_<i>/`` under one ensemble card (``ensemble_card.py``).
``train_member`` reads top to bottom: seeds; model (``freeze.py``); every pair encoded once
(``batches.encode_pairs``: the prompt cut from the left, a response that alone does not fit from the right,
never a pair dropped); the objective, chosen once (``objective.py``); AdamW with linear warmup then linear
decay; length-grouped batches (``batches.EpochPlan``; chosen and rejected in one forward pass); optional bf16
autocast (``bf16.py``); gradient accumulation and clipping; validation every ``eval_every`` steps (``validate``);
best-checkpoint selection, early stopping and atomic checkpoints that ``--resume`` continues from after a kill
(``checkpoint.py``). After training (``finish.py``) it fits the temperature on validation and the reward mean/std
on a reference set of validation responses, both on the score that is served (``calibration.calibrate``), and
writes the ``save_pretrained`` folder, ``rewardkit.json``, README.md, metrics.jsonl and curves.png. A listwise or
ratings loss (``--loss plackett-luce`` / ``regression``) trains on lists rebuilt from the pairs (``lists.py``);
validation is on pairs for every loss. ``--objective prm`` (the ``step-bce`` entry of the loss registry, data
"steps") trains a process reward model through the same loop: step-labelled solutions encoded once with a step
token after each step (``steps.py``), batches of solutions, the logits at the labelled step tokens, validation
and the card on steps (``finish.finish_step_member``).

Only rank 0 writes files; every rank runs validation (cheap) so early-stopping decisions agree.
"""

from __future__ import annotations

import logging
import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit.data.hub import hub_dataset
from rewardkit.data.training_data import DATA_ERRORS, load_pairs
from rewardkit.model.calibration import calibrated_nll
from rewardkit.model.device import resolve_device
from rewardkit.model.forward import RewardForward
from rewardkit.model.heap import TRIM_HEAP_EVERY, release_free_heap
from rewardkit.model.length_control import fit_length_coefficient, pearson
from rewardkit.model.losses import LOSSES
from rewardkit.model.source import ModelNotFoundError, check_model_source
from rewardkit.model.steps import StepForward, step_token_id
from rewardkit.records import PreferencePair, StepSolution
from rewardkit.robust.augment import augment_pairs, augment_summary, is_augmented, pair_roles, response_chars
from rewardkit.robust.invariance import invariance_penalty
from rewardkit.robust.profile import Profile, load_profile
from rewardkit.train.batches import (
    EpochPlan,
    PairTensors,
    combined_pair_weights,
    cut_counts,
    encode_pairs,
    length_balance_weights,
    length_sides,
    source_loss_weights,
)
from rewardkit.train.bf16 import Bf16Choice, decide_bf16
from rewardkit.train.checkpoint import atomic_torch_save, checkpoint_due, load_resumable, save_resumable
from rewardkit.train.config import ConfigError, TrainConfig, check_out, data_error
from rewardkit.train.distributed import rank_zero_first, same_on_every_rank, setup_distributed
from rewardkit.train.ensemble_card import write_ensemble_card
from rewardkit.train.finish import Member, finish_member, finish_step_member
from rewardkit.train.freeze import disable_dropout, freeze_as_configured, wrap_lora
from rewardkit.train.lists import encode_lists, rating_stats, response_lists
from rewardkit.train.objective import Objective, unused_labels
from rewardkit.train.rewards import PairRewards, validate
from rewardkit.train.steps import (
    StepRewards,
    encode_solutions,
    load_step_solutions,
    step_cut_counts,
    step_metrics,
    validate_steps,
)

__all__ = ["TrainResult", "train", "train_member"]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Where the model went, and its metrics (every rank gets them; only rank 0 wrote files)."""

    out: Path
    metrics: dict[str, Any]


def train(config: TrainConfig) -> TrainResult:
    """Train one model (or ``config.ensemble`` members) and write it to ``config.out``."""
    check_out(config)  # a wrong folder or --resume fails here, not at the first checkpoint minutes later
    try:  # and a backbone name that names no model, before the data is read (transformers' reason misleads)
        check_model_source(config.backbone)
    except ModelNotFoundError as exc:
        raise ConfigError("backbone", str(exc)) from None
    device = resolve_device(config.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # before the process group: nccl binds each rank to its GPU
    rank, world = setup_distributed(device)
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        if config.objective == "prm":  # step-labelled solutions (train/steps.py), split by prompt as pairs are
            train_pairs, val_pairs, snapshot_id = load_step_solutions(config.data, config.validation_fraction)
        else:
            with rank_zero_first(rank, world, hub_dataset(config.data) is not None):  # one rank fetches a Hub dataset
                train_pairs, val_pairs, snapshot_id = load_pairs(config.data, config.validation_fraction, config.split)
    except DATA_ERRORS as exc:
        raise data_error(config.data, exc) from exc
    if rank == 0 and config.objective == "outcome":
        for line in unused_labels(train_pairs, config.loss):
            log.warning(line)
    if config.robust or config.invariance_weight:  # robust training: pairs built from the TRAINING pairs only
        train_pairs = train_pairs + robust_pairs(config, train_pairs)
    out = Path(config.out)
    if config.ensemble == 1:
        return TrainResult(
            out, train_member(config, train_pairs, val_pairs, snapshot_id, out, config.seed, rank, world, device)
        )
    from rewardkit.model.ensemble import bootstrap_indices, member_seeds

    members = []
    for i, seed in enumerate(member_seeds(config.seed, config.ensemble)):
        member_pairs = train_pairs
        if config.bootstrap:
            member_pairs = [train_pairs[j] for j in bootstrap_indices(len(train_pairs), seed)]
        metrics = train_member(
            config, member_pairs, val_pairs, snapshot_id, out / f"member_{i}", seed, rank, world, device
        )
        members.append((f"member_{i}", metrics))
    if rank == 0:
        return TrainResult(out, write_ensemble_card(config, out, snapshot_id, members, train_pairs, val_pairs))
    return TrainResult(out, {"members": dict(members)})


def train_member(
    config: TrainConfig,
    train_pairs: list[PreferencePair] | list[StepSolution],
    val_pairs: list[PreferencePair] | list[StepSolution],
    snapshot_id: str,
    out: Path,
    seed: int,
    rank: int = 0,
    world: int = 1,
    device: torch.device = torch.device("cpu"),
) -> dict[str, Any]:
    """One model, top to bottom: setup, batches, (resume), loop with validation/checkpoints, finish."""
    # -- setup: seeds, model, data, objective ------------------------------------------------------------
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    attributes = config.attribute_names()
    chosen = LOSSES[config.loss]  # the one read of the loss registry
    steps = chosen.data == "steps"  # a process reward model: step-labelled solutions, a logit per step token
    model, tokenizer, head, head_init = load_model(config, len(attributes))
    model.to(device)  # the encoded pairs stay on the CPU; each batch moves to the model's device
    if steps:
        step_id = step_token_id(tokenizer, model.config.rewardkit_step_token)
        train_data = encode_solutions(tokenizer, train_pairs, config.max_length, step_id)
        val_data = encode_solutions(tokenizer, val_pairs, config.max_length, step_id)
    else:
        train_data = encode_pairs(tokenizer, train_pairs, config.max_length, config.margin_scale, attributes)
        val_data = encode_pairs(tokenizer, val_pairs, config.max_length, config.margin_scale, attributes)
    # length-controlled BT: beta of the fixed length term, fitted on the training pairs before the model trains
    # (on the judge's pairs: robust training's added pairs would teach it that longer loses)
    length_coef = 0.0
    if config.length_control:
        judged = np.asarray([not is_augmented(p) for p in train_pairs], dtype=bool)
        length_coef = fit_length_coefficient(
            train_data.length_feature().numpy()[judged], np.where(train_data.tie.numpy(), 0.5, 1.0)[judged]
        )
    # a listwise or ratings loss trains on each prompt's list of responses, rebuilt from its pairs (lists.py)
    lists = (
        encode_lists(tokenizer, response_lists(train_pairs), config.max_length)
        if chosen.data in ("lists", "ratings")
        else None
    )
    scale = rating_stats(lists) if lists is not None else (0.0, 1.0)
    objective = Objective(chosen, length_coef, config.center_coef, *scale)

    # -- batches (of pairs, or of lists): length balance by repeats in the epoch's order or by loss weights;
    # source weights (the snapshot's: dataset build --source-weight) are loss weights too ------------------
    chosen_shorter, chosen_longer = (
        length_sides(train_pairs) if lists is None and not steps else ([False] * (lists or train_data).n,) * 2
    )
    by_weight = config.length_balance_by == "weight"
    n = len(chosen_shorter)
    # robust training (robust/augment.py): each augmented pair's loss weight; invariance pairs take the penalty
    augment_weight, invariant_rows = ([1.0] * n, [False] * n) if steps else pair_roles(train_pairs)
    source_weight = None if steps else source_loss_weights(train_pairs)  # step solutions carry no source weight
    if source_weight is not None and lists is not None:
        raise ConfigError(
            "loss",
            f"{config.loss} takes no pair weights, and the train pairs carry source weights "
            "(dataset build --source-weight): train on them with a pairwise loss",
        )
    weights, weighted = combined_pair_weights(
        length_balance_weights(chosen_shorter, chosen_longer, config.length_balance) if by_weight else None,
        augment_weight,
        invariant_rows,
        source_weight,
    )
    pair_weight, invariant = torch.tensor(weights), torch.tensor(invariant_rows, dtype=torch.bool)
    plan = EpochPlan(
        train_data.pair_lengths() if lists is None else lists.list_lengths(),
        chosen_shorter,
        chosen_longer,
        0.0 if by_weight else config.length_balance,
        config.batch_size,
        seed,
        rank,
        world,
    )
    epoch, batches = 0, plan.batches(0)
    micro_per_epoch = len(batches)  # what each rank really gets (the same count every epoch)
    total_steps = config.max_steps or max(1, math.ceil(micro_per_epoch * config.epochs / config.grad_accum))
    optimizer, scheduler = adamw_with_schedule(model, config, total_steps)
    # logits [B, A] of a batch; for BERT-family models the last layer computes only the position the head reads
    forward = StepForward(model) if steps else RewardForward(model)  # [B, L] step logits of a PRM
    ddp_forward = forward
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp_forward = DistributedDataParallel(forward, device_ids=[device.index] if device.type == "cuda" else None)

    # -- resume, or clear a replaced run's checkpoints -------------------------------------------------------
    ckpt_dir = out / "checkpoint"
    # a PRM's step metrics have no calibrated loss (a step score is already a probability): it selects on the loss
    select_by = "loss" if steps else config.select_by
    step, micro, history, best = 0, 0, [], {select_by: math.inf, "step": 0, "evals_since": 0}
    resumed_bf16: bool | None = None
    # train() has checked that a resumed model has last.pt; a later ensemble member may not have started yet
    if config.resume and (ckpt_dir / "last.pt").is_file():
        step, micro, history, best, resumed_bf16 = load_resumable(
            ckpt_dir / "last.pt", model, optimizer, scheduler, device
        )
    elif rank == 0:
        # a fresh run in a folder it replaces: the old best.pt must not become this model (it is loaded at the
        # end whenever present, and no validation of this run may improve on inf, e.g. a NaN loss), nor the old
        # last.pt be continued by a later --resume
        for stale in ("best.pt", "last.pt"):
            (ckpt_dir / stale).unlink(missing_ok=True)
    last_saved = step

    # bf16 (bf16.py; 'auto' may time a step): every rank takes rank 0's answer (ranks must run the same
    # arithmetic), and a resumed run the one it started with (a bit-identical continuation)
    if config.resume and resumed_bf16 is not None:
        bf16 = Bf16Choice(bool(resumed_bf16), "as the resumed run started")
    elif step >= total_steps:
        bf16 = Bf16Choice(False, "no steps left to train")
    else:
        bf16 = decide_bf16(config, ddp_forward, train_data, tokenizer.pad_token_id, device)
    use_bf16 = same_on_every_rank(bf16.on, world, device)
    if rank == 0:
        log.info("%s", bf16.line())
    rewards: Any = (
        StepRewards(tokenizer.pad_token_id, device, use_bf16)
        if steps
        else PairRewards(tokenizer.pad_token_id, device, use_bf16, torch.tensor(config.attribute_weight_values()))
    )

    # -- the loop -----------------------------------------------------------------------------------------
    model.train()
    last_val: tuple[int, torch.Tensor, torch.Tensor] | None = None  # (step, rc, rr) of the latest validation
    run_stats = {"pairs": 0, "seconds": 0.0}
    with progress(config, rank, total_steps * config.grad_accum * config.batch_size * world) as bar:
        bar.advance(step * config.grad_accum * config.batch_size * world)
        # (a run killed after early stopping had saved last.pt, then resumed, does not train on)
        while step < total_steps and not stopped_early(best, config.patience):
            t0 = time.perf_counter()
            sums = {"loss": 0.0, "correct": 0.0, "margin": 0.0, "pairs": 0}
            for k in range(config.grad_accum):
                if micro // micro_per_epoch != epoch:
                    epoch = micro // micro_per_epoch
                    batches = plan.batches(epoch)
                rows = batches[micro % micro_per_epoch]
                micro += 1
                sync = k == config.grad_accum - 1 or world == 1
                with nullcontext() if sync else ddp_forward.no_sync():
                    if steps:  # every labelled step of the batch's solutions: logits and targets [K]
                        logits, targets = rewards(ddp_forward, train_data, rows)
                        loss = objective.on_steps(logits, targets)
                        # the statistics below count steps: "correct" is a step on the right side of 0.5
                        rc, rr = logits.detach() * (2 * targets - 1), torch.zeros_like(logits)
                    elif lists is None:
                        rc, rr = rewards(ddp_forward, train_data, rows)
                        loss = objective(rc, rr, train_data, rows, pair_weight[rows] if weighted else None)
                        if config.invariance_weight:
                            loss = loss + invariance_penalty(
                                rc, rr, invariant[rows].to(rc.device), config.invariance_weight
                            )
                    else:  # scores [B, k] best first; the statistics below read its neighbouring pairs
                        scores, mask, ratings = rewards.of_lists(ddp_forward, lists, rows)
                        loss = objective.on_list_batch(scores, mask, ratings)
                        rc, rr = scores[:, :-1][mask[:, 1:]], scores[:, 1:][mask[:, 1:]]
                    (loss / config.grad_accum).backward()
                sums["loss"] += loss.item() * len(rc)
                sums["correct"] += (rc > rr).float().sum().item()
                sums["margin"] += (rc - rr).sum().item()
                sums["pairs"] += len(rc)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm or float("inf"))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % TRIM_HEAP_EVERY == 0:
                release_free_heap()  # RSS otherwise creeps up with every batch width (model/heap.py)
            run_stats["pairs"] += sums["pairs"] * world
            run_stats["seconds"] += time.perf_counter() - t0
            n = max(1, sums["pairs"])
            history.append(
                {
                    "kind": "train",
                    "step": step,
                    "loss": sums["loss"] / n,
                    "accuracy": sums["correct"] / n,
                    "margin": sums["margin"] / n,
                    "lr": scheduler.get_last_lr()[0],
                    "grad_norm": float(grad_norm),
                }
            )
            # step and loss shown beside the counts (in a terminal's bar, and in the plain lines printed every few
            # seconds when stderr is a log: progress.py)
            done = config.grad_accum * config.batch_size if steps else sums["pairs"]  # a PRM's bar counts solutions
            bar.advance(done * world, step=f"{step}/{total_steps}", loss=sums["loss"] / n)

            if step % config.eval_every == 0 or step == total_steps:
                last_val = (
                    step,
                    *(validate_steps if steps else validate)(forward, rewards, val_data, config.batch_size),
                )
                metrics = (
                    step_metrics(objective.on_steps, *last_val[1:])
                    if steps
                    else validation_metrics(objective, *last_val[1:], val_data)
                )
                history.append({"kind": "val", "step": step, **metrics})
                # NaN never improves; a run resumed from a checkpoint of another select_by starts its best over
                improved = metrics[select_by] < best.get(select_by, math.inf)
                best = (
                    {"step": step, "evals_since": 0, **metrics}
                    if improved
                    else {**best, "evals_since": best["evals_since"] + 1}
                )
                if rank == 0:
                    if improved:
                        atomic_torch_save(
                            {k: v.detach().clone() for k, v in model.state_dict().items()}, ckpt_dir / "best.pt"
                        )
                    # the resumable checkpoint (weights + AdamW moments) is ~3x the model: not at every validation
                    if checkpoint_due(step, last_saved, config.checkpoint_every, total_steps) or stopped_early(
                        best, config.patience
                    ):
                        last_saved = step
                        position = {"step": step, "micro": micro, "history": history, "best": best}
                        save_resumable(ckpt_dir / "last.pt", model, optimizer, scheduler, position, config, use_bf16)
                if stopped_early(best, config.patience):
                    break

    # -- finish: best weights, calibration, normalization, files (finish.py) ------------------------------
    run = {
        ("train_solutions" if steps else "train_pairs"): train_data.n,
        **({"train_lists": lists.n} if lists is not None else {}),
        **({"train_steps": train_data.labelled_steps()} if steps else {}),
        **(step_cut_counts(train_data, "train") if steps else cut_counts(train_data, "train")),
        "best_step": best["step"],
        "steps": step,
        "total_steps": total_steps,
        "bf16": use_bf16,
        "bf16_reason": bf16.reason,
        "val_loss": best.get("loss"),
        "val_calibrated_loss": best.get("calibrated_loss"),
        "selected_by": select_by,
        "stopped_early": stopped_early(best, config.patience),
        "validation_curve": validation_curve(history),
        "train_pairs_per_s": run_stats["pairs"] / run_stats["seconds"] if run_stats["seconds"] else None,
        "world_size": world,
        "device": str(device),
        "length_coef": length_coef,
        **({"augmented_pairs": augment_summary(train_pairs)} if config.robust or config.invariance_weight else {}),
    }
    # the best checkpoint is usually the last validation's weights: its rewards need no second pass
    reused = last_val[1:] if last_val is not None and last_val[0] == best["step"] else None
    member = Member(model, tokenizer, head, head_init, config, seed, snapshot_id)
    if steps:
        return finish_step_member(member, out, rewards, val_data, reused, run, history, rank, world)
    return finish_member(member, out, rewards, val_data, reused, run, history, rank, world)


# --- the pieces the loop calls, in the order it calls them ---------------------------------------------


def load_model(config: TrainConfig, heads: int) -> tuple[Any, Any, str, dict[str, torch.Tensor]]:
    """(model, tokenizer, head module name, the head's initial weights): the backbone with ``heads`` scalar
    outputs, dropout off and frozen parts frozen (or LoRA-wrapped) as configured."""
    from rewardkit.model.backbone import head_module_name, load_backbone, load_step_backbone

    try:
        if config.objective == "prm":  # a token classifier with a step token (kept on its config until saved)
            model, tokenizer, token = load_step_backbone(config.backbone, config.step_separator)
            model.config.rewardkit_step_token = token
        else:
            model, tokenizer = load_backbone(config.backbone, num_labels=heads)
    except (OSError, ValueError) as exc:  # transformers' answer to a name that is no model (several lines)
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError("backbone", f"cannot load it ({first_line})", config.backbone) from exc
    if config.disable_dropout:
        disable_dropout(model)
    head = head_module_name(model)
    head_init = {k: v.detach().clone() for k, v in getattr(model, head).state_dict().items()}
    if config.lora_r:
        model = wrap_lora(model, config, head)
    else:
        freeze_as_configured(model, config)
    return model, tokenizer, head, head_init


def robust_pairs(config: TrainConfig, train_pairs: list[PreferencePair]) -> list[PreferencePair]:
    """The augmented pairs of ``--robust`` (and the rewrite pairs of ``--invariance-weight``), built from the
    training pairs (robust/augment.py); an ensemble's members share them."""
    profile = load_profile(config.robust) if config.robust else Profile("none")
    extra = augment_pairs(
        train_pairs,
        profile,
        config.seed,
        invariance=config.invariance_weight > 0,
        max_chars=response_chars(config.max_length),
    )
    log.info(
        "robust training (%s): %d augmented pairs added to %d training pairs",
        profile.name,
        len(extra),
        len(train_pairs),
    )
    return extra


def adamw_with_schedule(model: Any, config: TrainConfig, total_steps: int) -> tuple[Any, Any]:
    """AdamW (no weight decay on biases and LayerNorm weights) and its schedule: linear warmup to lr over
    ``warmup_ratio`` of the steps, then linear decay to 0 at ``total_steps``."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )
    schedule = partial(warmup_then_decay, warmup=int(total_steps * config.warmup_ratio), total=total_steps)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def warmup_then_decay(step: int, warmup: int, total: int) -> float:
    """The learning-rate factor at ``step``: (step + 1) / warmup while warming up, then linear to 0 at ``total``."""
    return (step + 1) / max(1, warmup) if step < warmup else max(0.0, (total - step) / max(1, total - warmup))


@torch.no_grad()
def validation_metrics(objective: Objective, rc: torch.Tensor, rr: torch.Tensor, data: PairTensors) -> dict[str, float]:
    """Loss (the training objective), the loss after calibration (``calibrated_nll``: what ``select_by``
    calibrated_loss selects on), accuracy and mean margin on the decided pairs, mean rewards, and how much the
    reward follows length (Pearson of reward and log length over both sides)."""
    diff = (rc - rr)[~data.tie]
    return {
        # every loss here is a mean over pairs, so one call over all of them equals the batch-weighted mean
        "loss": objective(rc, rr, data, list(range(data.n))).item() if data.n else float("nan"),
        # length control: judged beside its fixed length term, as the objective judges it
        "calibrated_loss": calibrated_nll(
            diff, objective.length_coef * data.length_feature()[~data.tie] if objective.length_coef else None
        ),
        "accuracy": (diff > 0).float().mean().item() if len(diff) else float("nan"),
        "margin": diff.mean().item() if len(diff) else float("nan"),
        "chosen_mean": rc.mean().item(),
        "rejected_mean": rr.mean().item(),
        "length_corr": pearson(torch.cat([rc, rr]), data.log_length).item(),
    }


def stopped_early(best: dict[str, Any], patience: int) -> bool:
    """Early stopping: ``patience`` validations in a row without a better criterion (0: never stop early)."""
    return bool(patience) and best["evals_since"] >= patience


def validation_curve(history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Each validation's step, loss, calibrated loss and accuracy, for the model card (rewardkit.json and
    README.md show the curve the kept checkpoint was chosen from)."""
    keys = ("step", "loss", "calibrated_loss", "accuracy")
    return [{k: r[k] for k in keys if k in r} for r in history if r.get("kind") == "val"]


def progress(config: TrainConfig, rank: int, total: int) -> Any:
    from rewardkit.progress import progress_bar

    return progress_bar("training", total=total, unit="pairs", enabled=config.progress and rank == 0)
