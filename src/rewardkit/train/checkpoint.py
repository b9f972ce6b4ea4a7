"""Checkpoints written so that a kill never leaves a half-written one: best.pt (weights) and the resumable
last.pt (weights, AdamW moments, scheduler, position, RNG, history), each through a temporary file and a rename.
"""

from __future__ import annotations

import hashlib
import os
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
