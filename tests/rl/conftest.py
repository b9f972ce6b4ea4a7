"""Tiny causal LMs built from a config over the offline BPE tokenizer the formatting tests train."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))
from test_formatting_plain import CHAT_TEMPLATE, bpe_tokenizer  # noqa: E402


def tiny_lm(tokenizer: Any, seed: int, n_positions: int = 128) -> Any:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=n_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="module")
def bpe() -> Any:
    return bpe_tokenizer()


@pytest.fixture(scope="module")
def chat_bpe() -> Any:
    tokenizer = bpe_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


__all__ = ["CHAT_TEMPLATE", "bpe_tokenizer", "tiny_lm"]
