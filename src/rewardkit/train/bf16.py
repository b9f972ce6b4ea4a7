"""Whether a run trains under bf16 autocast (``TrainConfig.bf16``: auto, on, off), and why.

The rule of ``auto``, in order:
- a GPU: bf16 where it supports it natively (emulated bf16 on V100/T4 is much slower than fp32);
- mps: fp32, no trial;
- a CPU without AMX (Intel's matrix unit; e.g. AVX512-BF16 only, as AMD EPYC here): fp32, no trial. A bf16
  matmul alone is faster there (512x512: 1.2 vs 3.0 ms), but a whole training step was not steadily so, and
  the timing trial flipped with the machine's load (three trials on MiniLM, 8 AlpacaEval pairs, 2 shared
  cores: 17.2 vs 15.9 s, 14.1 vs 26.6 s, 20.1 vs 20.4 s bf16 vs fp32): the same command trained in bf16 one
  day and fp32 the next (issue 29);
- a CPU whose bf16 matmul is not faster than fp32 (no native bf16, e.g. AVX2 only: ``model/precision.py``):
  fp32, no trial (the trial alone cost 38 s of a 4-minute run there, and bf16 cannot win);
- a CPU with AMX and fast bf16 matmuls: one training step of a realistic batch is timed in fp32 and in bf16
  autocast (best of 2 each), and bf16 is kept when it is at least 10% faster.

The loop logs the choice and its reason in one line at the start of training and keeps it in the metrics.
"""

from __future__ import annotations

import functools
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from rewardkit.model.formatting import collate
from rewardkit.model.precision import bf16_matmul_is_faster
from rewardkit.train.batches import PairTensors
from rewardkit.train.config import TrainConfig


@dataclass(frozen=True)
class Bf16Choice:
    on: bool
    reason: str

    def line(self) -> str:
        return f"bf16 autocast {'on' if self.on else 'off'}: {self.reason}"


def decide_bf16(
    config: TrainConfig, forward: Any, data: PairTensors, pad_id: int, device: torch.device = torch.device("cpu")
) -> Bf16Choice:
    """The rule of the module docstring (``forward``: a ``RewardForward``, batch -> logits)."""
    if config.bf16 != "auto":
        return Bf16Choice(config.bf16 == "on", f"--bf16 {config.bf16}")
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
        return Bf16Choice(native, f"--bf16 auto on a GPU {'with' if native else 'without'} native bf16")
    if device.type != "cpu":
        return Bf16Choice(False, f"--bf16 auto on {device.type}: fp32 without a trial")
    if not has_amx():
        return Bf16Choice(
            False,
            "--bf16 auto on a CPU without AMX: fp32 (bf16 autocast gave no steady speed-up of a training step "
            "there; docs/training.md)",
        )
    if not bf16_matmul_is_faster():
        return Bf16Choice(False, "--bf16 auto: a bf16 matmul is not faster than fp32 on this CPU (no native bf16)")
    rows = sorted(range(data.n), key=data.pair_lengths().__getitem__)[data.n // 2 :][: config.batch_size]
    batch = collate(data.encoded, data.both_sides(rows), pad_id)
    fp32, bf16 = step_seconds(forward, batch, False), step_seconds(forward, batch, True)
    on = bf16 < 0.9 * fp32
    return Bf16Choice(
        on,
        f"--bf16 auto: this CPU has AMX and a timed training step took {bf16:.3f} s in bf16 vs {fp32:.3f} s "
        f"in fp32 (bf16 is kept when at least 10% faster)",
    )


@functools.cache
def has_amx() -> bool:
    """Does this CPU have AMX bf16 (Linux /proc/cpuinfo flag amx_bf16)? False where it cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and "amx_bf16" in line.split() for line in f)
    except OSError:
        return False


def step_seconds(forward: Any, batch: dict[str, torch.Tensor], bf16: bool, tries: int = 2) -> float:
    """Best wall time of ``tries`` forward+backward passes of ``batch``; gradients cleared afterwards."""
    best = math.inf
    for _ in range(tries):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            loss = forward(**batch).sum()
        loss.backward()
        best = min(best, time.perf_counter() - t0)
    forward.zero_grad(set_to_none=True)
    return best
