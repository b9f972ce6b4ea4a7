"""Fixtures for the loop tests: a tiny trainable backbone, tiny reward models, and a store seeded with
learnable synthetic comparisons (the chosen answer says 'excellent', the rejected one 'terrible'), with a
golden snapshot of human labels held out of training by source."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A saved random 2-layer BERT (hidden 32) with the MiniLM tokenizer (as tests/test_train.py builds it): a
    backbone to train from, not the shared tiny_model (a finished reward model with a card)."""
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
def tiny_rm(tiny_model: Path) -> Path:
    """The shared tiny reward model (read-only: registering copies it)."""
    return tiny_model
