"""The precision a scorer computes in: fp32, bf16 or int8, decided once per machine and model, and remembered.

    dtype = choose_dtype(scorer, "auto")     # fp32 or bf16: the remembered decision, else a timing trial
    precision_name(dtype)                    # "fp32" | "bf16" | "int8", what every output row records

Why remembered: ``--dtype auto`` used to run a timing trial on every load, and a trial is a race between two
timings: on a CPU with AVX512-BF16 one evaluation ran 5 of its 7 scoring calls in bf16 and 2 in fp32, so the
same text scored twice differed by bf16 resolution. Now the first trial's answer is written to a small JSON
file (``cache_path``: ``RK_PRECISION_CACHE``, else ``$XDG_CACHE_HOME/rewardkit/precision.json``, else
``~/.cache/rewardkit/precision.json``) under a key of the machine (CPU model and its bf16/AVX flags, or the
GPU's name and compute capability), the model's weights (``weights_digest``) and the torch version; every
later load on that machine of that model reads it back. ``--dtype fp32|bf16|int8`` overrides it; deleting
the file asks again.

Why the head stays fp32: in bf16 the reward itself came out of a bf16 Linear, a number with 8 bits of
mantissa, so 9,076 distinct texts got 1,184 distinct scores and rankings were full of exact ties. ``to_bf16``
casts the transformer body to bf16 but keeps the scalar head in fp32 and feeds it the body's output upcast:
the head's dot product and the score are fp32 sums, and rounding no longer makes ties. What bf16 still
changes: the body's activations, so a score moves with bf16 rounding (and with the batch it lands in, since
kernels sum in another order at another padded width; ``docs/serving.md`` gives the measured sizes).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from rewardkit.atomic import atomic_write_text
from rewardkit.model.backbone import head_module_name
from rewardkit.model.int8 import quantize_body
from rewardkit.model.precision import bf16_matmul_is_faster
from rewardkit.settings import SCORE_DTYPES

log = logging.getLogger(__name__)

PRECISIONS = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.qint8: "int8"}
"""The name each scorer dtype is recorded under (output rows, summaries, the service's ``/info``)."""
MAX_ENTRIES = 256
"""Decisions the cache file keeps (the newest); each model a test trains is a new one."""
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
"""The CPU flags that decide whether bf16 can win; the key holds the ones this CPU has."""
BF16_MIN_GAIN = 1.15
"""bf16 is chosen only where the trial ran at least this much faster than fp32."""


class Scorable(Protocol):
    """What the trial needs of a scorer (``rewardkit.scoring.scorer.BatchScorer`` has it)."""

    members: list[Any]
    dtype: torch.dtype

    def encode(self, prompts: Sequence[Any], responses: Sequence[str]) -> Any: ...

    def score_encoded(self, enc: Any, on_batch: Any = None) -> np.ndarray: ...


def precision_name(dtype: torch.dtype) -> str:
    """ "fp32", "bf16" or "int8" for a scorer's dtype."""
    return PRECISIONS[dtype]


def cache_path() -> Path:
    """Where decisions are remembered (see the module docstring)."""
    if os.environ.get("RK_PRECISION_CACHE"):
        return Path(os.environ["RK_PRECISION_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rewardkit" / "precision.json"


def cpu_description() -> dict[str, Any]:
    """The CPU's model name and which of ``CPU_FLAGS`` it has (Linux /proc/cpuinfo; elsewhere the platform's
    processor string and no flags)."""
    import platform

    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    return {"cpu": name, "flags": [f for f in CPU_FLAGS if f in flags]}


def machine_description(device: torch.device) -> dict[str, Any]:
    """What makes bf16 win or lose on ``device``: the CPU and its flags, or the GPU and its capability."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return {"gpu": torch.cuda.get_device_name(index), "capability": list(torch.cuda.get_device_capability(index))}
    if device.type == "cpu":
        return cpu_description()
    return {"device": device.type}


def weights_digest(models: Sequence[Any], values: int = 64) -> str:
    """A digest of the models' weights: every tensor's name, shape and dtype and its first and last ``values``
    numbers. Cheap (no full read of a 7B model) and it tells apart two fine-tunes of one backbone, whose every
    tensor differs, as well as the same weights saved again (same digest: the decision is kept)."""
    h = hashlib.sha256()
    for model in models:
        for name, tensor in model.state_dict().items():
            flat = tensor.detach().reshape(-1)
            h.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
            if flat.is_floating_point():
                ends = torch.cat([flat[:values], flat[-values:]]).float().cpu().numpy()
                h.update(ends.tobytes())
    return h.hexdigest()[:20]


def decision_key(device: torch.device, models: Sequence[Any]) -> str:
    """The cache key: machine, model weights and torch version (a new torch brings new kernels)."""
    parts = {"machine": machine_description(device), "weights": weights_digest(models), "torch": torch.__version__}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def read_decisions(path: Path) -> dict[str, Any]:
    """The remembered decisions; none when the file is missing or unreadable (it is only a cache)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remembered(key: str, path: Path) -> str | None:
    """The precision decided earlier under ``key``, if one was."""
    entry = read_decisions(path).get(key)
    precision = entry.get("precision") if isinstance(entry, dict) else None
    return precision if precision in ("fp32", "bf16") else None


def remember(key: str, entry: dict[str, Any], path: Path) -> None:
    """Add a decision to the file (written atomically; the oldest dropped past ``MAX_ENTRIES``). A cache that
    cannot be written costs a trial next time, not the run: a warning, no error."""
    decisions = read_decisions(path)
    decisions.pop(key, None)
    decisions[key] = entry
    kept = dict(list(decisions.items())[-MAX_ENTRIES:])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(kept, indent=1) + "\n")
    except OSError as exc:
        log.warning("could not remember the scoring precision in %s (%s): the next load measures again", path, exc)


def _upcast_input(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    if args and isinstance(args[0], torch.Tensor) and args[0].is_floating_point():
        return (args[0].float(), *args[1:])
    return None


def to_bf16(model: Any) -> Any:
    """``model`` (modified in place and returned) with its body in bf16 and its scalar head in fp32, fed the
    body's output upcast (a forward pre-hook), so the reward is an fp32 sum and carries no bf16 rounding of
    its own. A model without a recognisable head runs wholly in bf16."""
    model.to(torch.bfloat16)
    try:
        head = getattr(model, head_module_name(model))
    except ValueError:
        return model
    head.float()
    head.register_forward_pre_hook(_upcast_input)
    return model


def quantize_int8(scorer: Scorable) -> torch.dtype:
    """Swap each member for a CPU copy whose transformer body runs int8 Linears (``rewardkit.model.int8``:
    per-channel int8 weights, 8-bit inputs quantized per call; embeddings, LayerNorm, softmax, pooler and
    head stay fp32) and return ``torch.qint8``; a model whose body has no ``nn.Linear`` (GPT-2's ``Conv1D``)
    stays as it is, with a warning, and fp32 is returned.

    Opt-in only (``dtype="int8"``), never chosen by "auto": 1.3-1.4x faster than fp32 on the CPUs measured
    and close in ranking (Spearman 0.998 with fp32 on two trained models' held-out pairs), but activation
    scales depend on the whole batch, so int8 scores are NOT batch-invariant to 1e-3 (the scorer's promise),
    and the error grows with length. ``benchmarks/score_bench.py --int8`` prints its speed and ranking."""
    copies = [_merged(copy.deepcopy(m.model)).cpu().float() for m in scorer.members]  # upcast on the CPU, not the GPU
    if not all(quantize_body(c) for c in copies):
        log.warning("int8: the model's body has no nn.Linear layers to quantize; scoring in fp32")
        return scorer.dtype
    for m, quantized in zip(scorer.members, copies):
        # the int8 kernels are CPU kernels (fbgemm): a model loaded on a GPU moves back for them
        if m.device.type != "cpu":
            log.warning("int8 runs on the CPU: moving the model off %s", m.device)
        m.model = quantized
    scorer.dtype = torch.qint8
    return scorer.dtype


def _merged(model: Any) -> Any:
    """A peft model with its adapters merged into the base weights (int8 swaps plain Linears only; a LoRA
    layer's own Linears must not be swapped one by one); any other model as it is."""
    merge = getattr(model, "merge_and_unload", None)
    return merge() if callable(merge) else model


def bf16_trial(scorer: Scorable) -> tuple[bool, dict[str, Any]]:
    """Time fp32 against bf16 (``to_bf16``) on a fixed probe batch of 32 rows and compare their rankings.
    Returns (bf16 wins, the timings) and leaves the scorer in the winner: bf16 where it ran at least
    ``BF16_MIN_GAIN`` times faster AND ranked the probe rows the same, else fp32 (the original weights)."""
    probe_p = ["What is the capital of France, and why is it famous?"] * 32
    probe_r = [("Paris is the capital. " * (1 + i % 8)) + f"Answer {i}." for i in range(32)]
    enc = scorer.encode(probe_p, probe_r)

    def timed() -> tuple[float, np.ndarray]:
        scorer.score_encoded(enc)  # warm-up
        t = time.perf_counter()
        s = scorer.score_encoded(enc)
        return time.perf_counter() - t, s[0]

    t32, s32 = timed()
    # the trial runs on bf16 COPIES: casting the model down and back up would round its fp32 weights
    originals = [m.model for m in scorer.members]
    for m in scorer.members:
        m.model = to_bf16(copy.deepcopy(m.model))
    t16, s16 = timed()
    same_rank = bool(np.array_equal(np.argsort(s32), np.argsort(s16))) or spearman(s32, s16) > 0.99
    wins = t16 * BF16_MIN_GAIN < t32 and same_rank
    if not wins:
        for m, original in zip(scorer.members, originals):
            m.model = original
    return wins, {"fp32_s": round(t32, 5), "bf16_s": round(t16, 5), "same_rank": same_rank}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two score vectors (1.0 when either is constant: nothing to disagree on)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if ra.std() == 0 or rb.std() == 0:
        return 1.0
    return float(np.corrcoef(ra, rb)[0, 1])


def choose_dtype(scorer: Scorable, requested: str = "auto") -> torch.dtype:
    """Put the scorer's members in the precision asked for and return its dtype.

    ``fp32``, ``bf16`` (body bf16, head fp32: ``to_bf16``) and ``int8`` (``quantize_int8``) are taken as asked.
    ``auto``: the decision remembered for this machine and model (``cache_path``); without one, fp32 where
    bf16 cannot win (MPS; a CPU whose bf16 matmul is no faster: emulated bf16, no trial needed), else the
    ``bf16_trial``; the answer is remembered either way, so every later load here scores the same."""
    if requested == "fp32":
        return torch.float32
    if requested == "bf16":
        for m in scorer.members:
            m.model = to_bf16(m.model)  # asked for, so no trial: the loaded weights themselves
        return torch.bfloat16
    if requested == "int8":
        return quantize_int8(scorer)
    if requested != "auto":
        raise ValueError(f"dtype must be one of {', '.join(SCORE_DTYPES)}, got {requested!r}")
    device = scorer.members[0].device
    if device.type == "mps":
        return torch.float32  # bf16 on MPS needs macOS 14: not worth a trial
    path = cache_path()
    key = decision_key(device, [m.model for m in scorer.members])
    known = remembered(key, path)
    if known == "bf16":
        for m in scorer.members:
            m.model = to_bf16(m.model)
        return torch.bfloat16
    if known == "fp32":
        return torch.float32
    if device.type == "cpu" and not bf16_matmul_is_faster():
        wins, timings = False, {"bf16_matmul_faster": False}
    else:
        wins, timings = bf16_trial(scorer)
    choice = "bf16" if wins else "fp32"
    remember(key, {"precision": choice, **machine_description(device), "torch": torch.__version__, **timings}, path)
    log.info("scoring precision for this machine and model: %s (remembered in %s)", choice, path)
    return torch.bfloat16 if wins else torch.float32
