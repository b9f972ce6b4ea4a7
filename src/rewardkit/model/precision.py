"""Is bf16 worth timing on this CPU? ``bf16_matmul_is_faster()``: one small matmul in each dtype, cached.

Training (``--bf16 auto``) and scoring (``--dtype auto``) pick bf16 by timing the real model in both dtypes.
That trial is expensive exactly where bf16 loses: a CPU without native bf16 (AVX2 only) emulates it, and one
bf16 forward+backward of a training batch took ~15 s there (the trial was 38 s of a 4-minute training run).
A model cannot run faster in bf16 than its matmuls do, so when a bf16 matmul is not faster than an fp32 one
the model trial is skipped and fp32 kept. Cost of this check: a few milliseconds on a CPU with native bf16,
under a second without.
"""

from __future__ import annotations

import functools
import time

import torch


@functools.cache
def bf16_matmul_is_faster(size: int = 512, reps: int = 3) -> bool:
    """On the CPU: does a ``size`` x ``size`` matmul run at least 10% faster in bf16 than in fp32 (best of
    ``reps``)? (A question about the CPU only: callers with a model on a GPU do not ask it.)"""

    def best_time(dtype: torch.dtype) -> float:
        a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
        a @ b  # warm-up: kernel selection, first-touch allocation
        best = float("inf")
        for _ in range(reps):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
        return best

    return best_time(torch.bfloat16) * 1.1 < best_time(torch.float32)
