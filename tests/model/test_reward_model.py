"""RewardModel: scoring, the saved layout (plain transformers gets the same scores), cards, defaults."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rewardkit.model.card import RewardCard, read_card
from rewardkit.model.loading import load_reward_model
from rewardkit.model.reward_model import RewardModel

PROMPTS = ["What is 2+2?", "Name a colour.", "Say hi " * 40]
RESPONSES = ["4", "Blue, like the sky on a clear day.", "hi"]


def tiny_bert(num_labels: int = 1, seed: int = 0):
    """A 2-layer random BERT with the MiniLM tokenizer: fast, offline. In memory and with num_labels to choose,
    which the shared tiny_model (a saved folder, one label) is not."""
    from transformers import BertConfig, BertForSequenceClassification

    from rewardkit.model.backbone import default_backbone_path, load_tokenizer

    tokenizer = load_tokenizer(default_backbone_path())
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=num_labels,
        problem_type="regression",
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertForSequenceClassification(config).eval(), tokenizer


@pytest.fixture()
def saved(tmp_path):
    model, tokenizer = tiny_bert()
    card = RewardCard(
        backbone="tiny", max_length=64, temperature=2.0, reward_mean=0.5, reward_std=2.0, snapshot_id="abc"
    )
    rm = RewardModel(model, tokenizer, card)
    rm.save(tmp_path / "rm")
    return rm, tmp_path / "rm"


def test_plain_transformers_loads_the_folder_and_gets_the_same_scores(saved):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    rm, folder = saved
    ours = load_reward_model(folder).score(PROMPTS[:2], RESPONSES[:2])
    hf_model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    hf_tok = AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        theirs = [
            hf_model(**hf_tok(p, r, return_tensors="pt")).logits[0, 0].item()
            for p, r in zip(PROMPTS[:2], RESPONSES[:2])
        ]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    assert np.allclose(ours, rm.score(PROMPTS[:2], RESPONSES[:2]), atol=1e-5)


def test_card_round_trips_and_normalization_uses_it(saved):
    _, folder = saved
    loaded = load_reward_model(folder)
    assert loaded.card.temperature == 2.0 and loaded.card.snapshot_id == "abc" and loaded.card.max_length == 64
    raw = loaded.score(PROMPTS, RESPONSES)
    np.testing.assert_allclose(loaded.score(PROMPTS, RESPONSES, normalize=True), (raw - 0.5) / 2.0, rtol=1e-5)


def test_batching_and_padding_do_not_change_scores(saved):
    rm, _ = saved
    one_by_one = np.concatenate([rm.score([p], [r], batch_size=1) for p, r in zip(PROMPTS, RESPONSES)])
    np.testing.assert_allclose(rm.score(PROMPTS, RESPONSES, batch_size=3), one_by_one, rtol=1e-4, atol=1e-5)


def test_prob_better_is_the_tempered_sigmoid_of_the_difference(saved):
    rm, _ = saved
    a, b = rm.score(["q"], ["yes"]), rm.score(["q"], ["no"])
    expected = 1 / (1 + np.exp(-(a - b) / 2.0))
    np.testing.assert_allclose(rm.prob_better(["q"], ["yes"], ["no"]), expected, rtol=1e-5)


def test_folder_without_card_loads_with_defaults(saved):
    _, folder = saved
    (folder / "rewardkit.json").unlink()
    rm = load_reward_model(folder)
    assert rm.card.temperature == 1.0 and rm.card.reward_mean == 0.0 and rm.card.reward_std == 1.0
    assert rm.card.max_length == 512
    assert rm.score(["q"], ["a"]).shape == (1,)


def test_multi_attribute_head_scores_the_weighted_aggregate(tmp_path):
    model, tokenizer = tiny_bert(num_labels=2)
    card = RewardCard(attributes=["helpful", "harmless"], attribute_weights=[0.25, 0.75], max_length=64)
    rm = RewardModel(model, tokenizer, card)
    per = rm.score_attributes(PROMPTS, RESPONSES)
    assert per.shape == (3, 2)
    np.testing.assert_allclose(rm.score(PROMPTS, RESPONSES), per @ np.array([0.25, 0.75]), rtol=1e-5, atol=1e-6)


def test_bad_card_is_a_clear_error(tmp_path):
    (tmp_path / "rewardkit.json").write_text(json.dumps({"temperature": -1}))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        read_card(tmp_path)
    (tmp_path / "rewardkit.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_card(tmp_path)
