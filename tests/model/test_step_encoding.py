"""Process-reward-model input, loss and aggregation: step tokens placed and found, truncation that never
silently drops a label, the per-step loss of a 2-step example by hand, and the aggregates by hand."""

from __future__ import annotations

import math

import pytest
import torch

from rewardkit.model.backbone import default_backbone_path, load_tokenizer
from rewardkit.model.losses import step_bce_loss
from rewardkit.model.step_aggregate import aggregate_steps
from rewardkit.model.steps import (
    STEP_TOKEN,
    add_step_token,
    encode_steps,
    fit_steps,
    split_steps,
    step_logits,
    step_token_for,
    step_token_id,
)


@pytest.fixture(scope="module")
def tokenizer():
    tok = load_tokenizer(default_backbone_path())
    add_step_token(tok, "\n")
    return tok


def test_bert_gets_a_step_token_because_it_cannot_see_a_newline(tokenizer) -> None:
    fresh = load_tokenizer(default_backbone_path())
    assert fresh("\n", add_special_tokens=False)["input_ids"] == []  # normalized away: nothing to read there
    assert step_token_for(fresh, "\n") is None
    assert add_step_token(fresh, "\n") == STEP_TOKEN and STEP_TOKEN in fresh.get_vocab()
    assert step_token_for(fresh, ".") == "."  # a separator the tokenizer writes as one token is that token
    with pytest.raises(ValueError, match="no step token"):
        step_token_id(load_tokenizer(default_backbone_path()), STEP_TOKEN)


def test_encoder_layout_equals_plain_tokenizer_and_positions_point_at_step_tokens(tokenizer) -> None:
    sid = step_token_id(tokenizer, STEP_TOKEN)
    enc = encode_steps(tokenizer, ["What is 2+2?"], [["2+2 = 4", "So 4. <|step|> [SEP]"]], 64, sid)
    ids = enc.input_ids[0]
    # plain transformers gives the same ids for a solution that writes no special token's text
    plain = encode_steps(tokenizer, ["What is 2+2?"], [["2+2 = 4", "So 4."]], 64, sid).input_ids[0]
    assert plain == tokenizer("What is 2+2?", "2+2 = 4<|step|>So 4.<|step|>")["input_ids"]
    assert [ids[p] for p in enc.step_positions[0]] == [sid, sid]
    assert ids.count(sid) == 2  # the step's own "<|step|>" text is text, not a forged boundary
    assert enc.token_type_ids[0][: ids.index(tokenizer.sep_token_id) + 1] == [0] * (
        ids.index(tokenizer.sep_token_id) + 1
    )
    assert enc.cut_steps == [0] and enc.truncated == [False]


def test_truncation_cuts_the_prompt_first_then_whole_steps_from_the_end() -> None:
    prompt = list(range(100, 120))  # 20 tokens
    steps = [[1, 2, 9], [3, 4, 9], [5, 6, 9]]  # each ends with its step token 9
    assert fit_steps(prompt, steps, 40) == (prompt, steps, False)
    kept_prompt, kept, cut = fit_steps(prompt, steps, 15)  # prompt cut from the left to 15 - 9 = 6 tokens
    assert kept_prompt == prompt[-6:] and kept == steps and cut
    kept_prompt, kept, cut = fit_steps(prompt, steps, 8)  # prompt down to 8 // 4 = 2, then the last steps go
    assert kept_prompt == prompt[-2:] and kept == steps[:2] and cut
    kept_prompt, kept, cut = fit_steps(prompt, [[1, 2, 3, 4, 5, 6, 9]], 8)  # a first step alone too long
    # the prompt keeps 8 // 4 = 2 tokens; the step's text is cut from the right, its step token kept
    assert kept_prompt == prompt[-2:] and kept == [[1, 2, 3, 4, 5, 9]] and cut


def test_long_inputs_report_the_steps_they_drop(tokenizer) -> None:
    sid = step_token_id(tokenizer, STEP_TOKEN)
    enc = encode_steps(tokenizer, ["word " * 50], [["one two three four"] * 6], 32, sid)
    assert len(enc.input_ids[0]) <= 32 and enc.truncated == [True] and enc.response_cut == [True]
    kept = len(enc.step_positions[0])
    assert 0 < kept < 6 and enc.cut_steps == [6 - kept]
    with pytest.raises(ValueError, match="input 1: no steps"):
        encode_steps(tokenizer, ["a", "b"], [["x"], []], 32, sid)


def test_split_steps_drops_blank_pieces() -> None:
    assert split_steps("a = 1\n\nb = 2\n", "\n") == ["a = 1", "b = 2"]
    assert split_steps("x ки y ки", " ки") == ["x", " y"]


def test_per_step_loss_of_a_two_step_example_by_hand() -> None:
    # step 1 good with logit 2, step 2 bad with logit -1:
    # (-log sigmoid(2) - log(1 - sigmoid(-1))) / 2 = (log(1 + e^-2) + log(1 + e^-1)) / 2 = (0.126928 + 0.313262) / 2
    loss = step_bce_loss(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 0.0]))
    assert math.isclose(loss.item(), 0.220095, abs_tol=1e-6)
    # a wrong-side step costs more: the same logits with the labels swapped
    swapped = step_bce_loss(torch.tensor([2.0, -1.0]), torch.tensor([0.0, 1.0]))
    assert math.isclose(swapped.item(), (math.log(1 + math.e**2) + math.log(1 + math.e)) / 2, abs_tol=1e-5)


def test_two_class_heads_read_as_the_difference_of_their_logits() -> None:
    logits = torch.tensor([[[0.5, 2.0], [1.0, -1.0]]])  # [B=1, L=2, C=2]: TRL's PRMTrainer's head
    assert torch.equal(step_logits(logits), torch.tensor([[1.5, -2.0]]))
    assert torch.equal(step_logits(torch.tensor([[[0.3], [0.4]]])), torch.tensor([[0.3, 0.4]]))


def test_aggregates_by_hand() -> None:
    p = [0.9, 0.5, 0.8]
    assert aggregate_steps(p, "min") == 0.5
    assert math.isclose(aggregate_steps(p, "product"), 0.36)
    assert math.isclose(aggregate_steps(p, "mean"), 2.2 / 3)
    assert aggregate_steps(p, "last") == 0.8
    assert aggregate_steps([0.9, None], "last") == 0.9  # a step truncation dropped is left out
    assert aggregate_steps([None], "min") is None
    with pytest.raises(ValueError, match="one of min, product, mean, last"):
        aggregate_steps(p, "max")
