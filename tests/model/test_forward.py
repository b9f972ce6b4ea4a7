"""reward_logits: the first-position last layer gives transformers' own logits (and gradients), or falls back."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2ForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
)

from rewardkit.model.forward import RewardForward, last_layer_path, reward_logits

SIZES = dict(
    hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64, max_position_embeddings=64
)


def _batch(vocab: int, pad_id: int, lengths: list[int], seed: int = 0) -> dict[str, torch.Tensor]:
    """Right-padded rows of the given lengths (as rewardkit's collate builds them)."""
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width), pad_id)
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(pad_id + 3, vocab, (n,), generator=g)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def _bert(num_labels: int = 1) -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(vocab_size=100, num_labels=num_labels, **SIZES)).eval()


def _roberta() -> RobertaForSequenceClassification:
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=100, num_labels=1, pad_token_id=1, type_vocab_size=1, **{**SIZES, "max_position_embeddings": 70}
    )
    return RobertaForSequenceClassification(config).eval()


@pytest.mark.parametrize("make", [_bert, _roberta], ids=["bert", "roberta"])
@pytest.mark.parametrize("lengths", [[7, 7, 7], [12, 3, 9, 1]], ids=["unpadded", "padded"])
def test_matches_the_models_own_forward(make, lengths):
    model = make()
    assert last_layer_path(model) is model
    batch = _batch(100, model.config.pad_token_id or 0, lengths)
    with torch.no_grad():
        expected = model(**batch).logits
        got = reward_logits(model, batch)
    assert got.shape == expected.shape == (len(lengths), 1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_multi_attribute_heads_match():
    model = _bert(num_labels=3)
    batch = _batch(100, 0, [5, 9])
    with torch.no_grad():
        torch.testing.assert_close(reward_logits(model, batch), model(**batch).logits, atol=1e-5, rtol=1e-5)


def test_gradients_match_in_training_mode_without_dropout():
    """The training path: the same loss gives the same gradient on every weight that takes part."""
    model = _bert()
    model.config.hidden_dropout_prob = 0.0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model.train()
    batch = _batch(100, 0, [10, 4, 8])
    model(**batch).logits.pow(2).sum().backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    RewardForward(model)(**batch).pow(2).sum().backward()
    got = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=1e-5, rtol=1e-4, msg=name)


def test_dropout_is_live_in_training_mode():
    model = _bert().train()
    batch = _batch(100, 0, [10, 6])
    assert not torch.equal(reward_logits(model, batch), reward_logits(model, batch))


def test_head_hook_sees_the_pooled_vector():
    """capture_head_input (drift norms) hooks the head: it must still be called, with [B, H]."""
    model = _bert()
    seen = []
    handle = model.classifier.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    with torch.no_grad():
        reward_logits(model, _batch(100, 0, [4, 6]))
    handle.remove()
    assert seen == [torch.Size([2, 32])]


def test_lora_model_runs_its_lora_layers():
    peft = pytest.importorskip("peft")
    model = _bert()
    lora = peft.get_peft_model(
        model, peft.LoraConfig(r=4, target_modules=["query", "value"], modules_to_save=["classifier"])
    )
    for name, p in lora.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p)  # LoRA B starts at zero: make the adapters change the output
    batch = _batch(100, 0, [8, 3])
    assert last_layer_path(lora) is lora.get_base_model()
    with torch.no_grad():
        torch.testing.assert_close(reward_logits(lora, batch), lora(**batch).logits, atol=1e-5, rtol=1e-5)


def test_other_architectures_run_their_own_forward():
    torch.manual_seed(0)
    gpt2 = GPT2ForSequenceClassification(
        GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=4, n_positions=64, num_labels=1, pad_token_id=0)
    ).eval()
    assert last_layer_path(gpt2) is None
    batch = _batch(100, 0, [6, 4])
    del batch["token_type_ids"]
    with torch.no_grad():
        torch.testing.assert_close(reward_logits(gpt2, batch), gpt2(**batch).logits)


def test_configurations_this_path_does_not_reproduce_fall_back():
    model = _bert()
    model.config.is_decoder = True
    assert last_layer_path(model) is None
    model = _bert()
    model.config.position_embedding_type = "relative_key"
    assert last_layer_path(model) is None


def test_a_batch_without_attention_mask_attends_everywhere():
    model = _bert()
    batch = _batch(100, 0, [6, 6])
    del batch["attention_mask"]
    with torch.no_grad():
        torch.testing.assert_close(reward_logits(model, batch), model(**batch).logits, atol=1e-5, rtol=1e-5)
