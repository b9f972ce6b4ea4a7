"""Fixtures for the loop tests: a tiny trainable backbone, tiny reward models, and a store seeded with
learnable synthetic comparisons (the chosen answer says 'excellent', the rejected one 'terrible'), with a
golden snapshot of human labels held out of training by source."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "serve"))
from rk_helpers import build_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A saved random 2-layer BERT (hidden 32) with the MiniLM tokenizer (as tests/test_train.py builds it)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from rewardkit.model.backbone import default_backbone_path, load_tokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = load_tokenizer(default_backbone_path())
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512, num_labels=1, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_rm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_rm"), seed=0)
