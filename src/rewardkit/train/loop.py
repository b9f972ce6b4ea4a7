"""Train a reward model on a dataset snapshot: the loop, top to bottom.

Run it:

    rewardkit train --data SNAPSHOT --out runs/rm1                 # CLI (cli/train_cmd.py)
    python -c "from rewardkit.train import TrainConfig, train; train(TrainConfig(data='SNAP', out='runs/rm1'))"
    torchrun --nproc_per_node 2 -m rewardkit.train --data SNAP --out runs/rm1   # DDP (gloo on CPU)
    accelerate launch --multi_gpu --num_processes 2 -m rewardkit.train --data SNAP --out runs/rm1   # CPU too

``train(config)`` reads the train/validation pairs (``data/training_data.py``) and trains one model
(``train_member``) or ``ensemble`` members into ``member_<i>/`` under one ensemble card (``ensemble_card.py``).
``train_member`` reads top to bottom: seeds; model (``freeze.py``); every pair encoded once
(``batches.encode_pairs``: the prompt cut from the left, a response that alone does not fit from the right,
never a pair dropped); the objective, chosen once (``objective.py``); AdamW with linear warmup then linear
decay; length-grouped batches (``batches.EpochPlan``; chosen and rejected in one forward pass); optional bf16
autocast (``bf16.py``); gradient accumulation and clipping; validation every ``eval_every`` steps (``validate``);
best-checkpoint selection, early stopping and atomic checkpoints that ``--resume`` continues from after a kill
(``checkpoint.py``). After training it fits the temperature on validation and the reward mean/std on a reference
set of validation responses, both on the score that is served (``calibration.calibrate``), and writes the
``save_pretrained`` folder, ``rewardkit.json``, README.md, metrics.jsonl and curves.png.

Only rank 0 writes files; every rank runs validation (cheap) so early-stopping decisions agree.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit.atomic import atomic_write_text
from rewardkit.data.hub import hub_dataset
from rewardkit.data.training_data import DATA_ERRORS, load_pairs
from rewardkit.model.calibration import BOUND_NOTES, calibrate
from rewardkit.model.card import RewardCard, plot_curves, write_readme
from rewardkit.model.device import resolve_device
from rewardkit.model.formatting import collate, template_kind
from rewardkit.model.forward import RewardForward
from rewardkit.model.heap import TRIM_HEAP_EVERY, release_free_heap
from rewardkit.model.length_control import fit_length_coefficient, pearson
from rewardkit.model.source import ModelNotFoundError, check_model_source
from rewardkit.records import PreferencePair
from rewardkit.train.batches import (
    EpochPlan,
    PairTensors,
    cut_counts,
    encode_pairs,
    length_balance_weights,
    length_sides,
)
from rewardkit.train.bf16 import decide_bf16
from rewardkit.train.checkpoint import atomic_torch_save, checkpoint_due, weights_digest
from rewardkit.train.config import ConfigError, TrainConfig, check_out, data_error
from rewardkit.train.distributed import rank_zero_first, same_on_every_rank, setup_distributed
from rewardkit.train.ensemble_card import write_ensemble_card
from rewardkit.train.freeze import disable_dropout, freeze_as_configured, wrap_lora
from rewardkit.train.objective import Objective, judged_rewards, unused_labels

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
        with rank_zero_first(rank, world, hub_dataset(config.data) is not None):  # one rank fetches a Hub dataset
            train_pairs, val_pairs, snapshot_id = load_pairs(config.data, config.validation_fraction)
    except DATA_ERRORS as exc:
        raise data_error(config.data, exc) from exc
    if rank == 0:
        for line in unused_labels(train_pairs, config.loss):
            log.warning(line)
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
    train_pairs: list[PreferencePair],
    val_pairs: list[PreferencePair],
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
    model, tokenizer, head, head_init = load_model(config, len(attributes))
    model.to(device)  # the encoded pairs stay on the CPU; each batch moves to the model's device
    train_data = encode_pairs(tokenizer, train_pairs, config.max_length, config.margin_scale, attributes)
    val_data = encode_pairs(tokenizer, val_pairs, config.max_length, config.margin_scale, attributes)
    # length-controlled BT: beta of the fixed length term, fitted on the training pairs before the model trains
    length_coef = (
        fit_length_coefficient(train_data.length_feature().numpy(), np.where(train_data.tie.numpy(), 0.5, 1.0))
        if config.length_control
        else 0.0
    )
    objective = Objective.of(config, length_coef)

    # -- batches: length balance by repeats (in the epoch's order) or by per-pair loss weights -----------
    chosen_shorter, chosen_longer = length_sides(train_pairs)
    by_weight = config.length_balance_by == "weight"
    pair_weight = torch.tensor(length_balance_weights(chosen_shorter, chosen_longer, config.length_balance))
    plan = EpochPlan(
        train_data.pair_lengths(),
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
    forward = RewardForward(model)
    ddp_forward = forward
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp_forward = DistributedDataParallel(forward, device_ids=[device.index] if device.type == "cuda" else None)

    # -- resume, or clear a replaced run's checkpoints -------------------------------------------------------
    ckpt_dir = out / "checkpoint"
    step, micro, history, best = 0, 0, [], {"loss": math.inf, "step": 0, "evals_since": 0}
    resumed_bf16: bool | None = None
    # train() has checked that a resumed model has last.pt; a later ensemble member may not have started yet
    if config.resume and (ckpt_dir / "last.pt").is_file():
        state = torch.load(ckpt_dir / "last.pt", weights_only=False, map_location="cpu")  # copied into place below
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, micro, history, best = state["step"], state["micro"], state["history"], state["best"]
        torch.set_rng_state(state["torch_rng"])
        resumed_bf16 = state.get("bf16")
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
    elif rank == 0:
        # a fresh run in a folder it replaces: the old best.pt must not become this model (it is loaded at the
        # end whenever present, and no validation of this run may improve on inf, e.g. a NaN loss), nor the old
        # last.pt be continued by a later --resume
        for stale in ("best.pt", "last.pt"):
            (ckpt_dir / stale).unlink(missing_ok=True)
    last_saved = step

    # 'auto' is a timing: every rank takes rank 0's answer (ranks must run the same arithmetic), and a resumed
    # run the one it started with (a bit-identical continuation)
    if config.resume and resumed_bf16 is not None:
        use_bf16 = bool(resumed_bf16)
    else:
        use_bf16 = (
            decide_bf16(config, ddp_forward, train_data, tokenizer.pad_token_id, device)
            if step < total_steps
            else False
        )
    use_bf16 = same_on_every_rank(use_bf16, world, device)
    rewards = PairRewards(tokenizer.pad_token_id, device, use_bf16, torch.tensor(config.attribute_weight_values()))

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
                    rc, rr = rewards(ddp_forward, train_data, rows)
                    loss = objective(rc, rr, train_data, rows, pair_weight[rows] if by_weight else None)
                    (loss / config.grad_accum).backward()
                sums["loss"] += loss.item() * len(rows)
                sums["correct"] += (rc > rr).float().sum().item()
                sums["margin"] += (rc - rr).sum().item()
                sums["pairs"] += len(rows)
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
            bar.advance(sums["pairs"] * world)

            if step % config.eval_every == 0 or step == total_steps:
                last_val = (step, *validate(forward, rewards, val_data, config.batch_size))
                metrics = validation_metrics(objective, *last_val[1:], val_data)
                history.append({"kind": "val", "step": step, **metrics})
                improved = metrics["loss"] < best["loss"]
                best = (
                    {"loss": metrics["loss"], "step": step, "evals_since": 0, **metrics}
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
                        atomic_torch_save(
                            {
                                "model": model.state_dict(),
                                "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict(),
                                "step": step,
                                "micro": micro,
                                "history": history,
                                "best": best,
                                "torch_rng": torch.get_rng_state(),
                                "config": asdict(config),
                                "bf16": use_bf16,
                                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                            },
                            ckpt_dir / "last.pt",
                        )
                if stopped_early(best, config.patience):
                    break

    # -- finish: best weights, calibration, normalization, files ------------------------------------------
    if world > 1:
        import torch.distributed as dist

        dist.barrier()  # rank 0 has written best.pt
    if (ckpt_dir / "best.pt").is_file():
        model.load_state_dict(torch.load(ckpt_dir / "best.pt", weights_only=True, map_location="cpu"))
    if config.lora_r:
        model = model.merge_and_unload()  # plain HF weights, the trained head in place of the original
        forward = RewardForward(model)
    model.eval()
    # the best checkpoint is usually the last validation's weights: reuse its rewards (LoRA merging changes
    # the arithmetic, so a merged model is scored again)
    reused = last_val[1:] if last_val is not None and last_val[0] == best["step"] and not config.lora_r else None
    rc, rr = reused or validate(forward, rewards, val_data, config.batch_size)
    decided = ~val_data.tie
    diff = (rc - rr)[decided]
    # temperature and normalization describe what is scored and served: the weighted aggregate over heads. A
    # multi-attribute pair was judged on its own head above; with one head the judged reward is the aggregate
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
        "train_pairs": train_data.n,
        "validation_pairs": val_data.n,
        **cut_counts(train_data, "train"),
        **cut_counts(val_data, "validation"),
        "best_step": best["step"],
        "steps": step,
        "total_steps": total_steps,
        "bf16": use_bf16,
        "val_accuracy": (diff > 0).float().mean().item() if len(diff) else None,
        "val_loss": best.get("loss"),
        "val_margin": diff.mean().item() if len(diff) else None,
        "ece_before": cal.ece_before,
        "ece_after": cal.ece_after,
        "ece_after_cross_fit": cal.ece_after_cross_fit,
        "temperature_at_bound": cal.at_bound,
        "train_pairs_per_s": run_stats["pairs"] / run_stats["seconds"] if run_stats["seconds"] else None,
        "world_size": world,
        "device": str(device),
        "weights_sha256": weights_digest(model),
        "head_changed": not all(
            torch.equal(v, getattr(model, head).state_dict()[k].cpu()) for k, v in head_init.items()
        ),
        "length_coef": length_coef,
        "val_length_corr": float(pearson(torch.cat([rc, rr]), val_data.log_length)) if len(rc) > 1 else None,
    }
    if rank == 0:
        from rewardkit.model.reward_model import RewardModel

        card = RewardCard(
            backbone=config.backbone,
            snapshot_id=snapshot_id,
            max_length=config.max_length,
            template=template_kind(tokenizer),
            temperature=cal.temperature,
            attributes=attributes,
            attribute_weights=config.attribute_weight_values(),
            reward_mean=cal.reward_mean,
            reward_std=cal.reward_std,
            config={**asdict(config), "seed": seed},
            metrics=metrics,
        )
        RewardModel(model, tokenizer, card).save(out)
        write_run_files(out, card, history)
    return metrics


# --- the pieces the loop calls, in the order it calls them ---------------------------------------------


def load_model(config: TrainConfig, heads: int) -> tuple[Any, Any, str, dict[str, torch.Tensor]]:
    """(model, tokenizer, head module name, the head's initial weights): the backbone with ``heads`` scalar
    outputs, dropout off and frozen parts frozen (or LoRA-wrapped) as configured."""
    from rewardkit.model.backbone import head_module_name, load_backbone

    try:
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


@dataclass(frozen=True)
class PairRewards:
    """Rewards of pairs: chosen rows i and rejected rows N+i in ONE forward pass, [2B, L] -> logits [2B, A] ->
    the reward each row is judged on (``objective.judged_rewards``) -> r_chosen [B], r_rejected [B]."""

    pad_id: int
    device: torch.device
    bf16: bool
    head_weights: torch.Tensor  # [A] the aggregate's weights over the heads

    def __call__(self, net: Any, data: PairTensors, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = {k: v.to(self.device) for k, v in collate(data.encoded, data.both_sides(rows), self.pad_id).items()}
        with torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext():
            logits = net(**batch)
        heads = data.attribute[rows].to(self.device)
        rewards = judged_rewards(logits, torch.cat([heads, heads]), self.head_weights.to(self.device))
        return rewards[: len(rows)], rewards[len(rows) :]


@torch.no_grad()
def validate(
    forward: Any, rewards: PairRewards, data: PairTensors, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """r_chosen, r_rejected [N] of every validation pair in its own order, computed in length-sorted batches
    of 4 x batch_size (little padding), in eval mode."""
    model = forward.model
    was_training = model.training
    model.eval()
    rc, rr = torch.zeros(data.n), torch.zeros(data.n)
    order = sorted(range(data.n), key=data.pair_lengths().__getitem__)
    for start in range(0, len(order), batch_size * 4):
        rows = order[start : start + batch_size * 4]
        rc[rows], rr[rows] = (r.float().cpu() for r in rewards(forward, data, rows))
    model.train(was_training)
    return rc, rr


@torch.no_grad()
def validation_metrics(objective: Objective, rc: torch.Tensor, rr: torch.Tensor, data: PairTensors) -> dict[str, float]:
    """Loss (the training objective), accuracy and mean margin on the decided pairs, mean rewards, and how much
    the reward follows length (Pearson of reward and log length over both sides)."""
    diff = (rc - rr)[~data.tie]
    return {
        # every loss here is a mean over pairs, so one call over all of them equals the batch-weighted mean
        "loss": objective(rc, rr, data, list(range(data.n))).item() if data.n else float("nan"),
        "accuracy": (diff > 0).float().mean().item() if len(diff) else float("nan"),
        "margin": diff.mean().item() if len(diff) else float("nan"),
        "chosen_mean": rc.mean().item(),
        "rejected_mean": rr.mean().item(),
        "length_corr": pearson(torch.cat([rc, rr]), data.log_length).item(),
    }


def stopped_early(best: dict[str, Any], patience: int) -> bool:
    """Early stopping: ``patience`` validations in a row without a better loss (0: never stop early)."""
    return bool(patience) and best["evals_since"] >= patience


def progress(config: TrainConfig, rank: int, total: int) -> Any:
    from rewardkit.progress import progress_bar

    return progress_bar("training", total=total, unit="pairs", enabled=config.progress and rank == 0)


def write_run_files(out: Path, card: RewardCard, history: list[dict[str, Any]]) -> None:
    atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    write_readme(out, card)
    plot_curves(history, out / "curves.png")
