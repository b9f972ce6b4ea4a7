"""int8 scoring on the CPU: each Linear of the transformer body swapped for ``Int8Linear``.

    quantize_body(model)   # in place, on a CPU fp32 copy: ~1.3-1.4x fp32's speed on an AVX2 CPU

``Int8Linear`` keeps the weights as int8 with one scale per output row (per-channel, symmetric, 7 bits) and
quantizes its input per call to uint8 over the input's own range (fbgemm's dynamic-quantization kernel); the
int32 products are scaled back to fp32 and the bias added in fp32. Embeddings, LayerNorm, softmax, the pooler
and the head stay fp32: the head reads one position per row, so quantizing it saves nothing.

Why not ``torch.ao.quantization.quantize_dynamic(model, {nn.Linear})``, the one-line recipe (rewardkit's
until session 10): it keeps one scale per weight matrix, and its module always asks the kernel for 7-bit
inputs (``reduce_range=True``), which guards against int16 saturation on x86 without VNNI. BERT's
activations have outlier channels, so the input's resolution matters more than the weights' last bit: here
the weights give up that bit instead (``WEIGHT_MAX``). Measured on an AVX2 CPU, two trained MiniLM-L6 reward
models on their held-out pairs (HH-RLHF 357, AlpacaEval 600), against fp32, the one-line recipe -> this:
Spearman 0.976 -> 0.998 and 0.978 -> 0.997; pairs ordered as fp32 orders them 0.899 -> 0.961 and
0.952 -> 0.975; mean |score change| 0.198 -> 0.052 and 0.709 -> 0.240 (score std 1.00 and 3.75); speed
1.28x -> 1.43x and 1.27x -> 1.27x fp32 (best of 3, interleaved). Per-channel weights with 7-bit inputs came
between the two (Spearman 0.994 and 0.993).

Why scoring never picks int8 by itself, and evaluation should not use it: activation scales depend on the
whole batch (one range per call), so a row's int8 score moves with its batch (by 0.04 on average on the HH
model, as much as int8 moves it from fp32): not batch-invariant to 1e-3. And the error is not neutral: it
grows with the row's length (Spearman 0.28 between the score change and the token count on the HH model),
and of the 14 held-out pairs whose order int8 changed, 13 had been right in fp32 (accuracy 65.8 -> 62.5).
Quantizing each row over its own tokens (one kernel call per row) gave 9:9 flips but 1.10x fp32 speed and
still no exact batch invariance: not worth it.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

WEIGHT_MAX = 63
"""Largest int8 weight magnitude (7 bits): see ``Int8Linear.__init__``."""


class Int8Linear(torch.nn.Module):
    """``y = dequant(quant_u8(x) @ quant_s8(W).T) + b``: an ``nn.Linear`` with int8 weights (one scale per
    output feature) and inputs quantized to 8 bits at run time. Inference only (no gradient)."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float().cpu()  # (out, in)
        # symmetric, zero point 0, and 7 bits (|q| <= 63) so that the kernel can take 8-bit inputs: fbgemm's
        # AVX2 kernel sums two uint8 x int8 products in int16, and 255 * 63 * 2 = 32,130 fits where
        # 255 * 127 * 2 does not (a random 64x2 layer was off by 40-70% with full-range weights)
        scales = (weight.abs().amax(dim=1) / WEIGHT_MAX).clamp(min=1e-12).double()
        with warnings.catch_warnings():  # torch 2.13 marks quantized-tensor constructors deprecated (still the
            warnings.simplefilter("ignore")  # only way to feed fbgemm's prepack); a torch without them fails here
            qweight = torch.quantize_per_channel(
                weight, scales, torch.zeros(weight.shape[0], dtype=torch.long), 0, torch.qint8
            )
        bias = None if linear.bias is None else linear.bias.detach().float().cpu()
        self.in_features, self.out_features, self.has_bias = linear.in_features, linear.out_features, bias is not None
        self._packed = torch.ops.quantized.linear_prepack(qweight, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # reduce_range=False: the full 8-bit input range (the weights left the headroom; module docstring)
        return torch.ops.quantized.linear_dynamic(x.float(), self._packed, reduce_range=False)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-channel"


def quantize_body(model: Any) -> int:
    """Swap, in place, every ``nn.Linear`` of the model's transformer body (``model.base_model``) for an
    ``Int8Linear``; returns how many were swapped (0 for a body without ``nn.Linear``, such as GPT-2's
    ``Conv1D`` layers). The pooler and the head (``classifier``, ``score``) stay fp32: they run once per row.
    Runs on the CPU (fbgemm kernels); give it a CPU fp32 model."""
    body = model.base_model
    pooler = getattr(body, "pooler", None)
    keep = {id(m) for m in pooler.modules()} if isinstance(pooler, torch.nn.Module) else set()
    swapped = 0
    for parent in list(body.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear and id(child) not in keep:
                setattr(parent, name, Int8Linear(child))
                swapped += 1
    return swapped
