"""Where a model runs: ``resolve_device("auto")`` is this process's GPU when torch sees one, else the CPU.

Under torchrun / accelerate launch every process drives the GPU its LOCAL_RANK names; explicit names
("cpu", "cuda", "cuda:1", "mps") are taken as given, and asking for a GPU torch cannot see is an error, not
a silent run on the CPU.
"""

from __future__ import annotations

import os

import torch

from rewardkit.settings import DEVICE_HELP, DEVICE_NAME


def resolve_device(requested: str = "auto") -> torch.device:
    if not DEVICE_NAME.fullmatch(requested):
        raise ValueError(f"device: expected {DEVICE_HELP}, got {requested!r}")
    if requested == "auto":
        return _local_gpu() if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r}: torch sees no CUDA GPU here (use auto or cpu)")
    if device.type == "cuda" and device.index is None:
        return _local_gpu()  # plain "cuda": each torchrun process its own GPU, and an index set_device/DDP need
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {requested!r}: MPS is not available here (use auto or cpu)")
    return device


def _local_gpu() -> torch.device:
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
