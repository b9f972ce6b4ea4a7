"""Checkpoints written so that a kill never leaves a half-written one: best.pt (weights) and the resumable
last.pt (weights, AdamW moments, scheduler, position, RNG, history), each through a temporary file and a rename.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from rewardkit.atomic import atomic_file


def checkpoint_due(step: int, last_saved: int, every: int, total_steps: int) -> bool:
    """Write last.pt now? At least ``every`` steps since the last one, or the final step."""
    return step - last_saved >= every or step == total_steps


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, fsync, rename: a kill mid-write leaves the previous checkpoint."""
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())  # the rename must not land before the bytes


def weights_digest(model: Any) -> str:
    """SHA-256 over every parameter and buffer: equal digests mean bit-identical weights (DDP check)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_resumable(
    path: Path,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    position: dict[str, Any],
    config: Any,
    bf16: bool,
) -> None:
    """last.pt: weights, AdamW moments, scheduler, ``position`` (step, micro, history, best), torch's RNG state
    (and the GPU's), the config and the bf16 decision; what ``load_resumable`` continues from bit-identically."""
    device = next(model.parameters()).device
    atomic_torch_save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            **position,
            "torch_rng": torch.get_rng_state(),
            "config": asdict(config),
            "bf16": bf16,
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        },
        path,
    )


def load_resumable(
    path: Path, model: Any, optimizer: Any, scheduler: Any, device: torch.device
) -> tuple[int, int, list[dict[str, Any]], dict[str, Any], bool | None]:
    """Put last.pt's state back into place; returns (step, micro, history, best, bf16 decision or None)."""
    state = torch.load(path, weights_only=False, map_location="cpu")  # copied into place below
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    return state["step"], state["micro"], state["history"], state["best"], state.get("bf16")
