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
    from rewardkit import train
    from rewardkit.train_config import TrainConfig

    monkeypatch.setattr(train, "bf16_matmul_is_faster", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def must_not_run(**batch):
        raise AssertionError("the bf16 trial ran")

    assert train.decide_bf16(TrainConfig(data="x", out="y", bf16="auto"), must_not_run, None, 0) is False
