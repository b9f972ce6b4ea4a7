"""A tiny randomly initialised BERT reward model (MiniLM's tokenizer, 2 layers of width 32), saved in the
``save_pretrained`` layout with a ``rewardkit.json``: fast enough to serve in every test."""

from __future__ import annotations

import json
from pathlib import Path


def build_tiny_model(path: Path, seed: int = 0, temperature: float = 2.0, mean: float = 0.5, std: float = 2.0) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from rewardkit.model.backbone import default_backbone_path

    tokenizer = AutoTokenizer.from_pretrained(default_backbone_path())
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512, num_labels=1, problem_type="regression",
    )
    model = BertForSequenceClassification(config)
    with torch.no_grad():  # a visibly non-constant head so rankings differ between inputs
        model.classifier.weight.normal_(0, 30.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    card = {"temperature": temperature, "reward_mean": mean, "reward_std": std, "max_length": 128}
    (path / "rewardkit.json").write_text(json.dumps(card))
    return path
