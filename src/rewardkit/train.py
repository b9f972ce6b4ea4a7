"""Train a reward model on a dataset snapshot: the loop, top to bottom.

Run it:

    rewardkit train --data SNAPSHOT --out runs/rm1                 # CLI (cli/train_cmd.py)
    python -c "from rewardkit.train import TrainConfig, train; train(TrainConfig(data='SNAP', out='runs/rm1'))"
    torchrun --nproc_per_node 2 -m rewardkit.train --data SNAP --out runs/rm1   # DDP (gloo on CPU)
    accelerate launch --multi_gpu --num_processes 2 -m rewardkit.train --data SNAP --out runs/rm1   # CPU too

``train(config)`` reads the snapshot's train/validation splits, formats every pair with
``model.formatting.encode`` (cutting the prompt from the left, and a response that alone does not fit from
the right; never dropping a pair), and runs one
function, ``train_member``: AdamW, linear warmup then linear decay, gradient accumulation and clipping,
length-grouped batches (chosen and rejected in one forward pass, padded to the batch's own longest row),
optional bf16 autocast, validation every ``eval_every`` steps, best-checkpoint selection, early stopping,
atomic checkpoints that ``--resume`` continues from after a kill. After training it fits the temperature on
validation and the reward mean/std on a reference set of validation responses, both on the score that is
served (``calibration.calibrate``), and writes the ``save_pretrained`` folder, ``rewardkit.json``, README.md,
metrics.jsonl and curves.png. ``ensemble > 1`` trains N members (different seeds, optionally bootstrap
resamples) into ``member_<i>/`` under one ensemble card, whose temperature and statistics are fitted on the
ensemble score (``write_ensemble_card``, ``model/ensemble.py``).

Only rank 0 writes files; every rank runs validation (cheap) so early-stopping decisions agree.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import random
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit.atomic import atomic_file, atomic_write_text
from rewardkit.data.hub import hub_dataset, resolve_data
from rewardkit.model.calibration import BOUND_NOTES, calibrate
from rewardkit.model.card import RewardCard, plot_curves, write_card, write_readme
from rewardkit.model.device import resolve_device
from rewardkit.model.formatting import Encoded, collate, encode, template_kind
from rewardkit.model.forward import RewardForward
from rewardkit.model.heap import TRIM_HEAP_EVERY, release_free_heap
from rewardkit.model.length_control import fit_length_coefficient, log_length, pearson
from rewardkit.model.losses import aggregate_attributes
from rewardkit.model.precision import bf16_matmul_is_faster
from rewardkit.model.source import ModelNotFoundError, check_model_source
from rewardkit.records import PreferencePair, content_hash, prompt_text
from rewardkit.train_config import USER_ERRORS, ConfigError, LossName, TrainConfig, check_out, option_name, user_message

__all__ = ["LossName", "TrainConfig", "TrainResult", "train"]

log = logging.getLogger(__name__)

# --- data ---------------------------------------------------------------------------------------------


def load_pairs(config: TrainConfig) -> tuple[list[PreferencePair], list[PreferencePair], str]:
    """(train, validation, snapshot id). A snapshot without validation pairs, or a pair file (any file
    ``data/pair_files.py`` reads: JSONL, .jsonl.gz, CSV, Parquet, a datasets folder, a Hub dataset id), gets a
    validation split carved by prompt hash (so no prompt is in both)."""
    from rewardkit.data.importers.reader import dataset_splits
    from rewardkit.data.pair_files import is_pair_file, read_pair_file

    path = resolve_data(config.data)  # a Hugging Face Hub dataset id: its saved copy (data/hub.py)
    if is_pair_file(path):
        splits = dataset_splits(path)  # a DatasetDict: its train split, and its validation split when it has one
        if splits and "train" not in splits:
            raise ValueError(
                f"{config.data}: no 'train' split to train on (its splits: {', '.join(splits)}); import the one "
                f"you want (rewardkit import trl {config.data} --split NAME) and build a snapshot"
            )
        train_pairs = read_pair_file(path, "train" if splits else None)
        val_pairs = read_pair_file(path, "validation") if "validation" in splits else []
        snapshot_id = "file:" + file_digest(path)
    else:
        from rewardkit.data.snapshot import load_split, read_manifest, resolve_snapshot

        folder = resolve_snapshot(config.data)
        snapshot_id = str(read_manifest(folder).get("id", folder.name))
        train_pairs, val_pairs = load_split(folder, "train"), load_split(folder, "validation")
    if not val_pairs:
        train_pairs, val_pairs = split_by_prompt(train_pairs, config.validation_fraction)
    if not train_pairs:
        raise ValueError(f"{config.data}: no training pairs")
    if not val_pairs:  # validation picks the best checkpoint and fits the temperature: no run without it
        prompts = len({p.prompt_id or prompt_text(p.prompt) for p in train_pairs})
        raise ValueError(
            f"{config.data}: no validation pairs: its {prompts:,} prompt(s) leave none at validation_fraction "
            f"{config.validation_fraction} (pairs are split by prompt); add data, or a snapshot with a validation split"
        )
    return train_pairs, val_pairs, snapshot_id


def file_digest(path: Path) -> str:
    """16 hex digits of SHA-256 over a file's bytes, or a folder's files (names and bytes, in name order),
    read in chunks: the data id a model card records for a pair file."""
    digest = hashlib.sha256()
    for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
        if file != path:  # a folder's layout is part of its content; a single file is its bytes alone
            digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def split_by_prompt(pairs: list[PreferencePair], fraction: float) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """Deterministic split by a hash of the prompt: a prompt's pairs all land on one side."""

    def held_out(p: PreferencePair) -> bool:
        return int(content_hash(prompt_text(p.prompt), 8), 16) / 16**8 < fraction

    return [p for p in pairs if not held_out(p)], [p for p in pairs if held_out(p)]


@dataclass
class PairTensors:
    """N pairs encoded once: rows 0..N-1 are chosen, N..2N-1 rejected, so one collate call builds one
    forward pass over both (rows i and N+i). ``margin``/``tie`` [N] feed the losses."""

    encoded: Encoded
    margin: torch.Tensor
    tie: torch.Tensor
    attribute: torch.Tensor  # [N] the head a pair is judged on, -1: the weighted aggregate
    log_length: torch.Tensor  # [2N] log(1 + characters) of each row's whole response (length_control.py)

    @property
    def n(self) -> int:
        return len(self.encoded) // 2

    def pair_lengths(self) -> list[int]:
        lengths = self.encoded.lengths
        return [max(lengths[i], lengths[i + self.n]) for i in range(self.n)]

    def both_sides(self, rows: list[int]) -> list[int]:
        """Row indices of the chosen (i) then the rejected (N + i) side of the given pairs."""
        return rows + [r + self.n for r in rows]

    def length_feature(self, rows: list[int] | None = None) -> torch.Tensor:
        """[len(rows)] (all pairs when None) log(1 + chars chosen) - log(1 + chars rejected): the
        length-controlled model's feature (``length_control.length_feature``) of the given pairs."""
        feature = self.log_length[: self.n] - self.log_length[self.n :]
        return feature if rows is None else feature[rows]


def attribute_index(pairs: list[PreferencePair], attributes: list[str]) -> list[int]:
    """Each pair's head: the index of its attribute in ``attributes``, or -1 (the aggregate) for a pair with
    no attribute, "overall", or when the model has a single head. An attribute the model has no head for is
    a ValueError naming it."""
    if len(attributes) == 1:
        return [-1] * len(pairs)
    out = []
    for p in pairs:
        if p.attribute in (None, "", "overall"):
            out.append(-1)
        elif p.attribute in attributes:
            out.append(attributes.index(p.attribute))
        else:
            raise ValueError(
                f"pair {p.id}: attribute {p.attribute!r} has no head (--attributes {','.join(attributes)})"
            )
    return out


def encode_pairs(
    tokenizer: Any,
    pairs: list[PreferencePair],
    max_length: int,
    margin_scale: float,
    attributes: list[str] | None = None,
) -> PairTensors:
    prompts = [p.prompt for p in pairs]
    encoded = encode(tokenizer, prompts + prompts, [p.chosen for p in pairs] + [p.rejected for p in pairs], max_length)
    margin = [p.margin if p.margin is not None else (p.strength or 0.0) * margin_scale for p in pairs]
    heads = attribute_index(pairs, attributes or ["reward"])
    lengths = torch.from_numpy(log_length([len(p.chosen) for p in pairs] + [len(p.rejected) for p in pairs])).float()
    return PairTensors(
        encoded,
        torch.tensor(margin, dtype=torch.float32),
        torch.tensor([p.tie for p in pairs]),
        torch.tensor(heads, dtype=torch.long),
        lengths,
    )


def judged_rewards(logits: torch.Tensor, heads: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """[B, A] head outputs -> [B] the reward each row is judged on: its attribute's head, or (head -1) the
    weighted aggregate ``logits @ weights`` that users are served. BT on these scores is the multi-attribute
    loss (``losses.multi_attribute_loss``) with one labelled cell per pair, plus BT on the aggregate."""
    aggregate = aggregate_attributes(logits, weights)
    own = logits.gather(1, heads.clamp(min=0).unsqueeze(1)).squeeze(1)
    return torch.where(heads >= 0, own, aggregate)


def length_balanced_order(
    chosen_shorter: Sequence[bool], chosen_longer: Sequence[bool], share: float, seed: int
) -> list[int]:
    """One epoch's pair indices: every pair once, plus repeats of the chosen-is-shorter pairs so that they make
    up ``share`` of the pairs whose two responses differ in length (no change when share is 0 or already met).

    Whole repeats first, then a seeded random draw for the fraction, so the count is exact and reproducible."""
    n = len(chosen_shorter)
    order = list(range(n))
    short = [i for i in order if chosen_shorter[i]]
    n_long = sum(1 for flag in chosen_longer if flag)
    if share <= 0 or not short or len(short) >= share * (len(short) + n_long):
        return order
    wanted = round(share * n_long / (1 - share))  # m / (m + n_long) = share
    extra = wanted - len(short)
    whole, rest = divmod(extra, len(short))
    return order + short * whole + random.Random(seed).sample(short, rest)


def length_balance_weights(chosen_shorter: Sequence[bool], chosen_longer: Sequence[bool], share: float) -> list[float]:
    """Per-pair loss weights that give the chosen-is-shorter pairs ``share`` of the total weight of the pairs
    whose responses differ in length, the same total as before (so the mean weight stays 1); every other
    pair weighs 1. No change when share is 0, already met, or one side is empty.

    The same objective as ``length_balanced_order`` at no extra compute: an epoch stays one pass over the
    data, so a fixed time budget covers more distinct pairs."""
    n_short = sum(1 for flag in chosen_shorter if flag)
    n_long = sum(1 for flag in chosen_longer if flag)
    if share <= 0 or not n_short or n_short >= share * (n_short + n_long):  # n_long == 0 counts as met
        return [1.0] * len(chosen_shorter)
    total = n_short + n_long
    w_short, w_long = share * total / n_short, (1 - share) * total / n_long
    return [w_short if s else w_long if lg else 1.0 for s, lg in zip(chosen_shorter, chosen_longer)]


def length_grouped_batches(
    lengths: list[int], batch_size: int, seed: int, chunk_batches: int = 32, order: list[int] | None = None
) -> list[list[int]]:
    """Batches of similar length, in random order: shuffle, sort within chunks of ``chunk_batches`` batches,
    cut into batches, shuffle the batches. Most pairs are short, so this cuts padding a lot while keeping
    the order random. ``order``: the epoch's pair indices (default: each pair once)."""
    rng = random.Random(seed)
    order = list(range(len(lengths))) if order is None else list(order)
    rng.shuffle(order)
    chunk = batch_size * chunk_batches
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


# what reading a user's file or snapshot raises for a missing, unreadable or malformed one (zlib.error and
# EOFError: a corrupt or cut gzip); anything else from load_pairs is a bug and keeps its traceback
DATA_ERRORS: tuple[type[Exception], ...] = (ValueError, LookupError, OSError, EOFError, csv.Error, zlib.error)


def data_error(data: str, exc: Exception) -> ConfigError:
    """A data error as one line that names the data: an OSError as its reason (and file, when it is another
    one), anything else as its message; the ``data`` value goes in front unless the message names it."""
    if isinstance(exc, OSError) and exc.strerror:
        detail = (
            exc.strerror if exc.filename is None or str(exc.filename) == data else f"{exc.strerror}: {exc.filename}"
        )
    else:
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
    detail = " ".join(detail.split()) or type(exc).__name__
    return ConfigError("data", detail, None if data in detail else data)


# --- distributed --------------------------------------------------------------------------------------


def setup_distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size). Under torchrun / accelerate launch (WORLD_SIZE > 1) joins an nccl (GPU) or gloo
    (CPU) process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        if "ACCELERATE_MIXED_PRECISION" in os.environ and "WORLD_SIZE" not in os.environ:
            # accelerate launch's single-process mode sets its own variables but no WORLD_SIZE; it is also what
            # `--num_processes N` without `--multi_gpu` silently starts, even on a CPU-only machine
            log.warning(
                "accelerate launch started one process; for N processes use "
                "`accelerate launch --multi_gpu --num_processes N` (also on a CPU-only machine)"
            )
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


@contextmanager
def rank_zero_first(rank: int, world: int, needed: bool = True) -> Iterator[None]:
    """Rank 0 runs the block before the other ranks do (it downloads and saves a Hub dataset once; they find it
    saved). It reaches the barrier even when the block fails, so the others do not wait forever."""
    import torch.distributed as dist

    wait = needed and world > 1
    if wait and rank != 0:
        dist.barrier()
    try:
        yield
    finally:
        if wait and rank == 0:
            dist.barrier()


# --- the loop -----------------------------------------------------------------------------------------


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
            train_pairs, val_pairs, snapshot_id = load_pairs(config)
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
    from rewardkit.model import losses
    from rewardkit.model.backbone import head_module_name, load_backbone

    # -- setup: seeds, model, data ---------------------------------------------------------------------
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    attributes, attribute_weights = config.attribute_names(), config.attribute_weight_values()
    try:
        model, tokenizer = load_backbone(config.backbone, num_labels=len(attributes))
    except (OSError, ValueError) as exc:  # transformers' answer to a name that is no model (several lines)
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError("backbone", f"cannot load it ({first_line})", config.backbone) from exc
    if config.disable_dropout:
        disable_dropout(model)
    kind = template_kind(tokenizer)
    head = head_module_name(model)
    head_init = {k: v.detach().clone() for k, v in getattr(model, head).state_dict().items()}
    if config.lora_r:
        model = wrap_lora(model, config, head)
    else:
        freeze_as_configured(model, config)
    model.to(device)  # the encoded pairs stay on the CPU; each batch moves to the model's device
    train_data = encode_pairs(tokenizer, train_pairs, config.max_length, config.margin_scale, attributes)
    val_data = encode_pairs(tokenizer, val_pairs, config.max_length, config.margin_scale, attributes)
    head_weights = torch.tensor(attribute_weights, dtype=torch.float32, device=device)
    pad_id = tokenizer.pad_token_id
    chosen_shorter = [len(p.chosen) < len(p.rejected) and not p.tie for p in train_pairs]
    chosen_longer = [len(p.chosen) > len(p.rejected) and not p.tie for p in train_pairs]
    # length-controlled BT: beta of the fixed length term, fitted on the training pairs before the model trains
    length_coef = (
        fit_length_coefficient(train_data.length_feature().numpy(), np.where(train_data.tie.numpy(), 0.5, 1.0))
        if config.length_control
        else 0.0
    )

    # length balance, one of two ways: per-pair loss weights (one pass per epoch) or repeats in each epoch
    by_weight = config.length_balance_by == "weight"
    repeat_share = 0.0 if by_weight else config.length_balance
    pair_weight = (
        torch.tensor(length_balance_weights(chosen_shorter, chosen_longer, config.length_balance))
        if by_weight
        else None
    )

    def epoch_order(epoch: int) -> list[int]:
        # the same length every epoch (whole repeats + an exact count drawn); which pairs get the drawn
        # extra copy changes with the epoch
        return length_balanced_order(chosen_shorter, chosen_longer, repeat_share, seed + epoch)

    def batches_of_epoch(epoch: int) -> list[list[int]]:
        # every rank builds the same order, then takes its share
        batches = length_grouped_batches(
            train_data.pair_lengths(), config.batch_size, seed + epoch, order=epoch_order(epoch)
        )
        return rank_share(batches, rank, world)

    epoch_batches = {0: batches_of_epoch(0)}  # the loop's cache of the current epoch's batches
    micro_per_epoch = len(epoch_batches[0])  # what each rank really gets (the same count every epoch)
    total_steps = config.max_steps or max(1, math.ceil(micro_per_epoch * config.epochs / config.grad_accum))
    warmup = int(total_steps * config.warmup_ratio)

    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )
    # linear warmup to lr, then linear decay to 0 at total_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total_steps - s) / max(1, total_steps - warmup))
        ),
    )
    # logits [B, A] of a batch; for BERT-family models the last layer computes only the position the head reads
    forward = RewardForward(model)
    ddp_forward = forward
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp_forward = DistributedDataParallel(forward, device_ids=[device.index] if device.type == "cuda" else None)

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
        use_bf16 = decide_bf16(config, ddp_forward, train_data, pad_id, device) if step < total_steps else False
    use_bf16 = same_on_every_rank(use_bf16, world, device)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if use_bf16 else nullcontext

    def loss_of(
        rewards_c: torch.Tensor,
        rewards_r: torch.Tensor,
        rows: list[int],
        data: PairTensors,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        on = rewards_c.device
        margin, tie = data.margin[rows].to(on), data.tie[rows].to(on)
        weight = None if weight is None else weight.to(on)
        # length control: the preference is explained by r_c - r_r + beta * length feature (0 when off)
        judged_c = rewards_c + length_coef * data.length_feature(rows).to(on) if length_coef else rewards_c
        if config.loss == "tie":
            loss = losses.tie_aware_loss(judged_c, rewards_r, tie, weight)
        elif config.loss == "margin":
            loss = losses.margin_bradley_terry_loss(judged_c, rewards_r, margin, weight)
        else:
            loss = losses.bradley_terry_loss(judged_c, rewards_r, weight)
        if config.center_coef:
            loss = loss + losses.centering_loss(rewards_c, rewards_r, config.center_coef)
        return loss

    def rewards_of(net: Any, data: PairTensors, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        # chosen rows i and rejected rows N+i in ONE forward pass: [2B, L] -> logits [2B, A] -> [B], [B]
        batch = {k: v.to(device) for k, v in collate(data.encoded, data.both_sides(rows), pad_id).items()}
        with autocast():
            logits = net(**batch)
        heads = data.attribute[rows].to(device)
        rewards = judged_rewards(logits, torch.cat([heads, heads]), head_weights)
        return rewards[: len(rows)], rewards[len(rows) :]

    @torch.no_grad()
    def val_rewards(data: PairTensors = val_data) -> tuple[torch.Tensor, torch.Tensor]:
        # every validation pair in its own order, computed in length-sorted batches (little padding)
        was_training = model.training
        model.eval()
        rc, rr = torch.zeros(data.n), torch.zeros(data.n)
        order = sorted(range(data.n), key=data.pair_lengths().__getitem__)
        for start in range(0, len(order), config.batch_size * 4):
            rows = order[start : start + config.batch_size * 4]
            rc[rows], rr[rows] = (r.float().cpu() for r in rewards_of(forward, data, rows))
        model.train(was_training)
        return rc, rr

    @torch.no_grad()
    def val_metrics(rc: torch.Tensor, rr: torch.Tensor) -> dict[str, float]:
        diff = (rc - rr)[~val_data.tie]
        return {
            # every loss here is a mean over pairs, so one call over all of them equals the batch-weighted mean
            "loss": loss_of(rc, rr, list(range(val_data.n)), val_data).item() if val_data.n else float("nan"),
            "accuracy": (diff > 0).float().mean().item() if len(diff) else float("nan"),
            "margin": diff.mean().item() if len(diff) else float("nan"),
            "chosen_mean": rc.mean().item(),
            "rejected_mean": rr.mean().item(),
            # how much the reward follows length: Pearson of reward and log length over both sides
            "length_corr": pearson(torch.cat([rc, rr]), val_data.log_length).item(),
        }

    # -- the loop ---------------------------------------------------------------------------------------
    model.train()
    last_val: tuple[int, torch.Tensor, torch.Tensor] | None = None  # (step, rc, rr) of the latest validation
    run_stats = {"pairs": 0, "seconds": 0.0}
    with _progress(config, rank, total_steps * config.grad_accum * config.batch_size * world) as bar:
        bar.advance(step * config.grad_accum * config.batch_size * world)
        # (a run killed after early stopping had saved last.pt, then resumed, does not train on)
        while step < total_steps and not stopped_early(best, config.patience):
            t0 = time.perf_counter()
            sums = {"loss": 0.0, "correct": 0.0, "margin": 0.0, "pairs": 0}
            for k in range(config.grad_accum):
                epoch, index = divmod(micro, micro_per_epoch)
                if epoch not in epoch_batches:
                    epoch_batches = {epoch: batches_of_epoch(epoch)}
                rows = epoch_batches[epoch][index % len(epoch_batches[epoch])]
                micro += 1
                sync = k == config.grad_accum - 1 or world == 1
                with nullcontext() if sync else ddp_forward.no_sync():
                    rc, rr = rewards_of(ddp_forward, train_data, rows)
                    loss = loss_of(rc, rr, rows, train_data, None if pair_weight is None else pair_weight[rows])
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
                last_val = (step, *val_rewards())
                metrics = val_metrics(*last_val[1:])
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
    rc, rr = reused or val_rewards()
    decided = ~val_data.tie
    diff = (rc - rr)[decided]
    # temperature and normalization describe what is scored and served: the weighted aggregate over heads. A
    # multi-attribute pair was judged on its own head above; with one head the judged reward is the aggregate
    served = (
        (rc, rr)
        if len(attributes) == 1
        else val_rewards(replace(val_data, attribute=torch.full_like(val_data.attribute, -1)))
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
            template=kind,
            temperature=cal.temperature,
            attributes=attributes,
            attribute_weights=attribute_weights,
            reward_mean=cal.reward_mean,
            reward_std=cal.reward_std,
            config={**asdict(config), "seed": seed},
            metrics=metrics,
        )
        RewardModel(model, tokenizer, card).save(out)
        write_run_files(out, card, history)
    return metrics


def write_run_files(out: Path, card: RewardCard, history: list[dict[str, Any]]) -> None:
    atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    write_readme(out, card)
    plot_curves(history, out / "curves.png")


def cut_keys(split: str) -> tuple[str, str, str]:
    """The metric names ``cut_counts`` gives a split."""
    return f"truncated_{split}", f"prompt_cut_{split}", f"response_cut_{split}"


def cut_counts(data: PairTensors, split: str) -> dict[str, int]:
    """Pairs of a split cut to fit max_length (either response's row), by what was cut: only the prompt (from
    the left), or a response itself (from the right, as it alone did not fit): ``truncated_<split>`` is their
    sum. Counted per pair, as the card reports pairs."""
    n, enc = data.n, data.encoded
    cut = [enc.truncated[i] or enc.truncated[i + n] for i in range(n)]
    response = [enc.response_cut[i] or enc.response_cut[i + n] for i in range(n)]
    return dict(zip(cut_keys(split), (sum(cut), sum(c and not r for c, r in zip(cut, response)), sum(response))))


def write_ensemble_card(
    config: TrainConfig,
    out: Path,
    snapshot_id: str,
    members: list[tuple[str, dict[str, Any]]],
    train_pairs: list[PreferencePair],
    val_pairs: list[PreferencePair],
) -> dict[str, Any]:
    """The ensemble's own rewardkit.json and README: temperature and reward mean/std fitted on the ensemble
    score s (the mean of the members' standardized scores, ``model/ensemble.py``) over the validation pairs,
    as each member's were fitted on its own reward."""
    from rewardkit.model.ensemble import MEMBER_SCALE
    from rewardkit.model.loading import load_reward_model

    prompts = [p.prompt for p in val_pairs]
    chosen, rejected = [p.chosen for p in val_pairs], [p.rejected for p in val_pairs]
    z_chosen, z_rejected, member_metrics = [], [], {}
    for name, m in members:  # one member in memory at a time
        rm = load_reward_model(out / name)
        # [N] each: the member's reward on its own reference scale, (r - reward_mean) / reward_std of its card
        z_chosen.append(rm.score(prompts, chosen, normalize=True))
        z_rejected.append(rm.score(prompts, rejected, normalize=True))
        member_metrics[name] = {
            **m,
            "temperature": rm.card.temperature,
            "reward_mean": rm.card.reward_mean,
            "reward_std": rm.card.reward_std,
        }
        tokenizer, template = rm.tokenizer, rm.card.template
    zc, zr = np.stack(z_chosen), np.stack(z_rejected)  # [M, N]
    sc, sr = zc.mean(axis=0), zr.mean(axis=0)
    decided = np.array([not p.tie for p in val_pairs])
    cal = calibrate(sc, sr, decided, config.reference_size)
    if cal.at_bound:
        log.warning(
            "%s: the ensemble's fitted temperature T = %g is %s", out, cal.temperature, BOUND_NOTES[cal.at_bound]
        )
    attributes = config.attribute_names()
    diff = (sc - sr)[decided]
    accs = [m["val_accuracy"] for _, m in members if m.get("val_accuracy") is not None]
    metrics: dict[str, Any] = {
        "train_pairs": len(train_pairs),
        "validation_pairs": len(val_pairs),
        # the members' counts (same tokenizer, max_length and validation pairs); with bootstrap each member
        # trained on a resample, so the training set itself is counted here
        **(
            {k: members[0][1][k] for k in cut_keys("train")}
            if not config.bootstrap
            else cut_counts(
                encode_pairs(tokenizer, train_pairs, config.max_length, config.margin_scale, attributes), "train"
            )
        ),
        **{k: members[0][1][k] for k in cut_keys("validation")},
        "val_accuracy": float((diff > 0).mean()) if diff.size else None,
        "val_margin": float(diff.mean()) if diff.size else None,
        "member_val_accuracy_mean": float(np.mean(accs)) if accs else None,
        # the uncertainty signal on validation: the std over members (units of s), averaged over responses
        "val_member_std_mean": float(np.concatenate([zc.std(axis=0), zr.std(axis=0)]).mean()),
        "ece_before": cal.ece_before,
        "ece_after": cal.ece_after,
        "ece_after_cross_fit": cal.ece_after_cross_fit,
        "temperature_at_bound": cal.at_bound,
        "members": member_metrics,
    }
    card = RewardCard(
        backbone=config.backbone,
        snapshot_id=snapshot_id,
        max_length=config.max_length,
        template=template,
        attributes=attributes,
        attribute_weights=config.attribute_weight_values(),
        temperature=cal.temperature,
        reward_mean=cal.reward_mean,
        reward_std=cal.reward_std,
        members=[name for name, _ in members],
        member_scale=MEMBER_SCALE,
        config=asdict(config),
        metrics=metrics,
    )
    write_card(out, card)
    write_readme(out, card)
    return metrics


def checkpoint_due(step: int, last_saved: int, every: int, total_steps: int) -> bool:
    """Write last.pt now? At least ``every`` steps since the last one, or the final step."""
    return step - last_saved >= every or step == total_steps


def disable_dropout(model: Any) -> int:
    """Set every dropout probability to 0; returns how many modules had one."""
    changed = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout) and module.p > 0:
            module.p = 0.0
            changed += 1
    return changed


def frozen_block_count(model: Any, requested: int) -> int:
    """``requested`` blocks, or for -1 a third of the model's blocks rounded down (0 for a 2-block model)."""
    if requested >= 0:
        return requested
    cfg = model.config
    blocks = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", None) or 0
    return int(blocks) // 3


def freeze_as_configured(model: Any, config: TrainConfig) -> int:
    """Freeze what ``freeze_layers`` and ``freeze_embeddings`` ask for; returns the count of parameters frozen.
    Unset, the embeddings follow the blocks: frozen when any block is, as gradients stop above frozen blocks
    and the embeddings would be the only parameters below them still training."""
    blocks = frozen_block_count(model, config.freeze_layers)
    embeddings = bool(blocks) if config.freeze_embeddings is None else config.freeze_embeddings
    return freeze(model, blocks, embeddings=embeddings)


def freeze(model: Any, layers: int, embeddings: bool = True) -> int:
    """Stop gradients to the embeddings and the lowest ``layers`` transformer blocks (found by the
    ``layer.<i>.`` / ``layers.<i>.`` / ``h.<i>.`` name they share in BERT, Llama and GPT-2). Frozen
    parameters leave the optimizer too (no AdamW moments, no weight decay). Returns the count frozen."""
    import re

    frozen = 0
    block = re.compile(r"(?:^|\.)(?:layer|layers|h)\.(\d+)\.")
    for name, param in model.named_parameters():
        match = block.search(name)
        hit = (embeddings and re.search(r"embed|\bwte\b|\bwpe\b", name) is not None and not match) or (
            match is not None and int(match.group(1)) < layers
        )
        if hit:
            param.requires_grad_(False)
            frozen += param.numel()
    return frozen


def wrap_lora(model: Any, config: TrainConfig, head: str) -> Any:
    """LoRA on the backbone's linear layers; the head in ``modules_to_save`` so it is trained and saved."""
    from peft import LoraConfig, TaskType, get_peft_model

    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=0.0,
        target_modules="all-linear",
        modules_to_save=[head],
    )
    return get_peft_model(model, lora)


def weights_digest(model: Any) -> str:
    """SHA-256 over every parameter and buffer: equal digests mean bit-identical weights (DDP check)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, fsync, rename: a kill mid-write leaves the previous checkpoint."""
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())  # the rename must not land before the bytes


def unused_labels(pairs: list[PreferencePair], loss: str) -> list[str]:
    """What the chosen loss leaves out of the data, one line each: margins under plain Bradley-Terry (TRL's
    RewardTrainer subtracts a ``margin`` column whenever there is one) and ties trained as wins."""
    lines = []
    margins = sum(p.margin is not None for p in pairs)
    if margins and loss == "bt":
        lines.append(
            f"{margins} of {len(pairs)} training pairs carry a margin, which --loss bt ignores "
            "(TRL's RewardTrainer uses it); --loss margin trains with it"
        )
    ties = sum(p.tie for p in pairs)
    if ties and loss != "tie":
        lines.append(
            f"{ties} of {len(pairs)} training pairs are ties, trained by --loss {loss} as wins for the "
            "'chosen' side; --loss tie models them"
        )
    return lines


def rank_share(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """This rank's batches of an epoch. DDP ranks step in lockstep, so each gets the same count: the first
    ``len // world * world`` batches dealt round-robin (the rest wait for another epoch's shuffle); with fewer
    batches than ranks every rank takes them all."""
    if len(batches) < world:
        return list(batches)
    return batches[: len(batches) // world * world][rank::world]


def stopped_early(best: dict[str, Any], patience: int) -> bool:
    """Early stopping: ``patience`` validations in a row without a better loss (0: never stop early)."""
    return bool(patience) and best["evals_since"] >= patience


def same_on_every_rank(flag: bool, world: int, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank (a broadcast; the flag itself with one process)."""
    if world <= 1:
        return flag
    import torch.distributed as dist

    value = torch.tensor([int(flag)], device=device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def decide_bf16(
    config: TrainConfig, forward: Any, data: PairTensors, pad_id: int, device: torch.device = torch.device("cpu")
) -> bool:
    """'auto': time forward+backward of one realistic batch in fp32 and in bf16 autocast, keep the faster
    (``forward``: a ``RewardForward``, batch -> logits).
    (Without native bf16 instructions bf16 autocast is usually slower on CPU.)"""
    if config.bf16 != "auto":
        return config.bf16 == "on"
    if device.type == "cuda":
        # emulated bf16 (V100, T4) counts as "supported" by default and is much slower than fp32 there
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type != "cpu":
        return False  # mps: no trial, fp32
    if not bf16_matmul_is_faster():
        return False  # without native bf16 the trial alone costs tens of seconds, and bf16 cannot win
    rows = sorted(range(data.n), key=data.pair_lengths().__getitem__)[data.n // 2 :][: config.batch_size]
    batch = collate(data.encoded, data.both_sides(rows), pad_id)

    def timed(ctx: Any) -> float:
        best = math.inf
        for _ in range(2):
            t0 = time.perf_counter()
            with ctx():
                loss = forward(**batch).sum()
            loss.backward()
            best = min(best, time.perf_counter() - t0)
        forward.zero_grad(set_to_none=True)
        return best

    fp32 = timed(nullcontext)
    bf16 = timed(lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    return bf16 < 0.9 * fp32


def _progress(config: TrainConfig, rank: int, total: int) -> Any:
    from rewardkit.progress import progress_bar

    return progress_bar("training", total=total, unit="pairs", enabled=config.progress and rank == 0)


def main(argv: list[str] | None = None) -> None:
    """``python -m rewardkit.train --data ... --out ...`` (what torchrun / accelerate launch run)."""
    import argparse
    from typing import get_args, get_type_hints

    hints = get_type_hints(TrainConfig)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for f in fields(TrainConfig):
        default = f.default
        if bool in (hints[f.name], *get_args(hints[f.name])):  # bool, or bool | None (None: derived)
            parser.add_argument(option_name(f.name), action=argparse.BooleanOptionalAction, default=default)
        else:
            parser.add_argument(
                option_name(f.name), type=type(default) if default is not None else str, default=default
            )
    args = parser.parse_args(argv)
    try:
        config = TrainConfig(**vars(args))
        result = train(config)
    except USER_ERRORS as exc:
        print(f"rewardkit train: error: {user_message(exc)}", file=sys.stderr)
        sys.exit(2)
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()  # the launcher warns about (and some backends hang on) a group left open
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({"out": str(result.out), "metrics": result.metrics}, default=str))


if __name__ == "__main__":
    main()
