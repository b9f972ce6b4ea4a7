"""What trains and what does not: frozen embeddings and lower blocks, LoRA adapters, dropout off.

Called once on a freshly loaded backbone, before it moves to its device (``loop.train_member``).
"""

from __future__ import annotations

import re
from typing import Any

import torch

from rewardkit.train.config import TrainConfig


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
