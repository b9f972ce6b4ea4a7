"""The DPO implicit reward on tiny GPT-2 policies built from a config: equal to what a plain-transformers
user computes by hand (chat and plain templates), independent of the batch, left-truncating the prompt, and
refusing a reference with another tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rk_testing.bpe import bpe_tokenizer, tiny_lm

from rewardkit.rl.dpo import DPOReward, TokenizerMismatchError, implicit_reward

PROMPTS = [
    "Hello there, what is two plus two?",
    "tell me about cats",
    [
        {"role": "user", "content": "tell me about tea"},
        {"role": "assistant", "content": "tea is good"},
        {"role": "user", "content": "why?"},
    ],
    "tell me about cats",
]
RESPONSES = ["excellent", "The answer is four.", " excellent answer", "cats and tea, why? an excellent question"]


def plain_logp(model: Any, tokenizer: Any, prompt: Any, response: str) -> tuple[float, int]:
    """What a transformers user writes: the text tokenized whole, the response = tokens not wholly inside the
    prompt part (character offsets), log-softmax over the whole row, summed at the response tokens."""
    if tokenizer.chat_template:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        text = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": response}], tokenize=False)
        prefix: list[int] = []
    else:
        flat = (
            prompt
            if isinstance(prompt, str)
            else "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in prompt)
        )
        head, text = flat + "\n\nAssistant: ", flat + "\n\nAssistant: " + response
        prefix = [tokenizer.bos_token_id]
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    in_prompt = sum(1 for _, end in encoded["offset_mapping"] if end <= len(head))
    ids = prefix + encoded["input_ids"]
    start = len(prefix) + in_prompt
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
    total = sum(float(logp[t - 1, ids[t]]) for t in range(start, len(ids)))
    return total, len(ids) - start


@pytest.mark.parametrize("template", ["plain", "chat"])
def test_equals_the_hand_computation(template: str, bpe: Any, chat_bpe: Any) -> None:
    tokenizer = chat_bpe if template == "chat" else bpe
    policy, ref = tiny_lm(tokenizer, 1), tiny_lm(tokenizer, 2)
    dpo = DPOReward(policy, tokenizer, ref, ref_tokenizer=tokenizer, beta=0.1)
    out = dpo.logps(PROMPTS, RESPONSES)
    for i, (p, r) in enumerate(zip(PROMPTS, RESPONSES)):
        lp, n = plain_logp(policy, tokenizer, p, r)
        lr, _ = plain_logp(ref, tokenizer, p, r)
        assert out.response_tokens[i] == n
        assert out.policy_logps[i] == pytest.approx(lp, abs=1e-4)
        assert out.ref_logps[i] == pytest.approx(lr, abs=1e-4)
        assert out.rewards[i] == pytest.approx(0.1 * (lp - lr), abs=1e-5)
    mean = dpo.score(PROMPTS, RESPONSES, beta=0.5, normalize="mean")
    np.testing.assert_allclose(mean, 0.5 * (out.policy_logps - out.ref_logps) / out.response_tokens, rtol=1e-6)


def test_batch_invariant_and_zero_against_itself(chat_bpe: Any) -> None:
    policy, ref = tiny_lm(chat_bpe, 1), tiny_lm(chat_bpe, 2)
    dpo = DPOReward(policy, chat_bpe, ref, beta=0.1)
    together = dpo.score(PROMPTS, RESPONSES)
    alone = np.array([dpo.score([p], [r])[0] for p, r in zip(PROMPTS, RESPONSES)])
    np.testing.assert_allclose(together, alone, atol=1e-4)
    assert np.abs(together).max() > 1e-3  # two different models: a visible reward
    same = DPOReward(policy, chat_bpe, policy, beta=0.1).score(PROMPTS, RESPONSES)
    np.testing.assert_allclose(same, 0.0, atol=1e-6)


def test_reference_free_is_beta_times_policy_logp(bpe: Any) -> None:
    policy = tiny_lm(bpe, 1)
    out = DPOReward(policy, bpe, None, beta=2.0, normalize="mean").logps(PROMPTS, RESPONSES)
    assert out.ref_logps is None
    np.testing.assert_allclose(out.rewards, 2.0 * out.policy_logps / out.response_tokens)


def test_prompt_cut_from_the_left_keeps_the_response(chat_bpe: Any) -> None:
    policy, ref = tiny_lm(chat_bpe, 1), tiny_lm(chat_bpe, 2)
    long_prompt = "tell me about cats and tea, " * 6
    response = "The answer is four."
    wide = DPOReward(policy, chat_bpe, ref, max_length=128).logps([long_prompt], [response])
    narrow = DPOReward(policy, chat_bpe, ref, max_length=32).logps([long_prompt], [response])
    assert narrow.truncated == [True] and wide.truncated == [False]
    assert narrow.response_tokens[0] == wide.response_tokens[0]  # the whole response, less context
    # the response alone longer than max_length: cut from the right, the kept prompt is not scored
    cut = DPOReward(policy, chat_bpe, ref, max_length=16).logps(["hi"], [response * 6])
    assert (
        cut.truncated == [True] and cut.response_tokens[0] == 16 - 16 // 4
    )  # encode keeps max_length // 4 of the prompt


def test_helpers_refuse_bad_options() -> None:
    with pytest.raises(ValueError, match="normalize"):
        implicit_reward(np.zeros(1), None, np.ones(1), 0.1, "max")
    with pytest.raises(ValueError, match="beta"):
        implicit_reward(np.zeros(1), None, np.ones(1), 0.0)


def _other_tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(
        ["completely different words here"] * 20,
        trainers.BpeTrainer(vocab_size=300, special_tokens=["</s>"], show_progress=False),
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="</s>")


def test_load_refuses_a_reference_with_another_tokenizer(tmp_path: Path, bpe: Any) -> None:
    policy_dir, ref_dir, other_dir = tmp_path / "policy", tmp_path / "ref", tmp_path / "other"
    for folder, tokenizer, seed in ((policy_dir, bpe, 1), (ref_dir, bpe, 2)):
        tiny_lm(tokenizer, seed).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    other = _other_tokenizer()
    tiny_lm(other, 3).save_pretrained(other_dir)
    other.save_pretrained(other_dir)
    with pytest.raises(TokenizerMismatchError, match="must share one tokenizer, but they have different vocabularies"):
        DPOReward.load(str(policy_dir), str(other_dir), device="cpu")
    loaded = DPOReward.load(str(policy_dir), str(ref_dir), device="cpu", beta=0.1)
    direct = DPOReward(tiny_lm(bpe, 1), bpe, tiny_lm(bpe, 2), beta=0.1)
    np.testing.assert_allclose(loaded.score(PROMPTS, RESPONSES), direct.score(PROMPTS, RESPONSES), atol=1e-5)
    assert "\n" not in str(pytest.raises(TokenizerMismatchError, DPOReward.load, str(policy_dir), str(other_dir)).value)


def test_special_token_difference_is_named() -> None:
    a, b = bpe_tokenizer(), bpe_tokenizer()
    b.add_special_tokens({"pad_token": "<|pad|>"})
    with pytest.raises(TokenizerMismatchError, match="vocabularies"):
        DPOReward(tiny_lm(a, 1), a, tiny_lm(a, 2), ref_tokenizer=b)


class _NoLogitsToKeep(torch.nn.Module):
    """A causal LM whose forward has no ``logits_to_keep`` (older or custom models): full logits are used."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner, self.config = inner, inner.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, use_cache: bool = False) -> Any:
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, use_cache=use_cache)


def test_models_without_logits_to_keep_score_the_same(chat_bpe: Any) -> None:
    policy, ref = tiny_lm(chat_bpe, 1), tiny_lm(chat_bpe, 2)
    fast = DPOReward(policy, chat_bpe, ref).score(PROMPTS, RESPONSES)
    plain = DPOReward(_NoLogitsToKeep(policy), chat_bpe, _NoLogitsToKeep(ref)).score(PROMPTS, RESPONSES)
    np.testing.assert_allclose(fast, plain, atol=1e-5)
