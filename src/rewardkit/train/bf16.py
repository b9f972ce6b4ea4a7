"""Whether a run trains under bf16 autocast (``TrainConfig.bf16``: auto, on, off)."""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from typing import Any

import torch

from rewardkit.model.formatting import collate
from rewardkit.model.precision import bf16_matmul_is_faster
from rewardkit.train.batches import PairTensors
from rewardkit.train.config import TrainConfig


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
