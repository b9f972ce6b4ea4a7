"""bf16 is only trialled where its matmul can win: otherwise training and scoring keep fp32 without timing."""

from __future__ import annotations

import torch

from rewardkit.model import precision


def test_the_check_is_a_cached_bool():
    precision.bf16_matmul_is_faster.cache_clear()
    first = precision.bf16_matmul_is_faster()
    assert isinstance(first, bool)
    assert precision.bf16_matmul_is_faster.cache_info().currsize == 1
    assert precision.bf16_matmul_is_faster() is first


def test_training_keeps_fp32_without_running_the_model(monkeypatch):
    from rewardkit.train import bf16 as train
    from rewardkit.train.config import TrainConfig

    monkeypatch.setattr(train, "has_amx", lambda: True)
    monkeypatch.setattr(train, "bf16_matmul_is_faster", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def must_not_run(**batch):
        raise AssertionError("the bf16 trial ran")

    choice = train.decide_bf16(TrainConfig(data="x", out="y", bf16="auto"), must_not_run, None, 0)
    assert choice.on is False and "not faster than fp32 on this CPU" in choice.reason


def test_training_keeps_fp32_on_a_cpu_without_amx_whatever_a_matmul_says(monkeypatch):
    """issue 29: on an AVX512-BF16 CPU without AMX the timing trial flipped with the load; auto is fp32 there,
    without running the model, and says why."""
    from rewardkit.train import bf16
    from rewardkit.train.config import TrainConfig

    monkeypatch.setattr(bf16, "has_amx", lambda: False)
    monkeypatch.setattr(bf16, "bf16_matmul_is_faster", lambda: True)

    def must_not_run(**batch):
        raise AssertionError("the bf16 trial ran")

    choice = bf16.decide_bf16(TrainConfig(data="x", out="y", bf16="auto"), must_not_run, None, 0)
    assert choice.on is False and "without AMX" in choice.reason
    assert choice.line().startswith("bf16 autocast off: --bf16 auto on a CPU without AMX")
    on = bf16.decide_bf16(TrainConfig(data="x", out="y", bf16="on"), must_not_run, None, 0)
    assert on.on is True and on.line() == "bf16 autocast on: --bf16 on"
