"""The embedding norm of each scored row: the L2 norm of the vector the reward head reads, taken from the same
forward pass that scores the row (a forward pre-hook on the head), so drift checks get it for free.

    with capture_head_input(model) as seen:        # the head's input of each forward pass lands in ``seen``
        model(**batch)
    norms = take_norms(seen, n_rows, batch["input_ids"], pad_id, reads_last_token(model))   # (n_rows,)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from rewardkit.model.backbone import head_module_name


def take_norms(
    seen: list[torch.Tensor], n_rows: int, input_ids: torch.Tensor, pad_id: int, reads_last: bool
) -> np.ndarray | None:
    """Empty ``seen`` (what the head hook captured during one batch) into that batch's (n_rows,) norms; None
    unless it holds exactly one capture of the batch's rows."""
    hidden = seen[0] if len(seen) == 1 and seen[0].shape[0] == n_rows else None
    seen.clear()
    return None if hidden is None else read_position_norms(hidden, input_ids, pad_id, reads_last).cpu().numpy()


def reads_last_token(model: Any) -> bool:
    """Does the head read the last real token (HF decoders: a ``score`` head over every position) rather than
    the first (encoders: ``classifier``, given a pooled vector or reading position 0 itself)?"""
    try:
        return head_module_name(model) == "score"
    except ValueError:
        return False


def model_pad_id(model: Any, fallback: int) -> int:
    pad = getattr(getattr(model, "config", None), "pad_token_id", None)
    return int(pad) if pad is not None else fallback


@contextmanager
def capture_head_input(model: Any) -> Iterator[list[torch.Tensor]]:
    """Inside the block, the scalar head's input of each forward pass is appended to the yielded list
    (a forward pre-hook; removed on exit, also on errors). A model without a recognisable head, or a head
    called with keyword arguments only, leaves the list empty."""
    seen: list[torch.Tensor] = []
    try:
        head = getattr(model, head_module_name(model))
    except ValueError:
        yield seen
        return

    def hook(module: Any, args: tuple[Any, ...]) -> None:
        if args and isinstance(args[0], torch.Tensor):
            seen.append(args[0].detach())

    handle = head.register_forward_pre_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def read_position_norms(hidden: torch.Tensor, input_ids: torch.Tensor, pad_id: int, reads_last: bool) -> torch.Tensor:
    """(B,) L2 norm of the vector whose head output becomes the reward. [B, H] (a pooled vector): as is.
    [B, T, H]: position 0 for encoder heads (RoBERTa-style); for decoder heads the rightmost token that is not
    the pad id, the same rule transformers uses to read the reward (so pad == eos reads where HF reads)."""
    if hidden.dim() == 3 and not reads_last:
        hidden = hidden[:, 0]
    elif hidden.dim() == 3:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        index = ((input_ids != pad_id).long() * positions).argmax(dim=-1)
        hidden = hidden[torch.arange(hidden.shape[0], device=hidden.device), index.to(hidden.device)]
    return hidden.float().norm(dim=-1)
