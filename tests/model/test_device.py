"""Device choice: auto is the GPU only when torch sees one; a GPU that is not there is a clear error."""

from __future__ import annotations

import pytest
import torch

from rewardkit.model.device import resolve_device


def test_auto_is_the_gpu_when_there_is_one_else_the_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_gpu_that_is_not_there_or_a_typo_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        resolve_device("cuda:1")
    for typo in ("gpu", "xla"):
        with pytest.raises(ValueError, match="expected auto"):
            resolve_device(typo)


def test_plain_cuda_means_this_processs_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # torch.cuda.set_device and DDP's device_ids need an index; under torchrun LOCAL_RANK names the GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("cuda") == torch.device("cuda", 1) == resolve_device("auto")
    assert resolve_device("cuda:0") == torch.device("cuda", 0)  # an explicit index is kept
    monkeypatch.setenv("LOCAL_RANK", "3")  # more processes than GPUs: they share round-robin
    assert resolve_device("cuda") == torch.device("cuda", 1)
