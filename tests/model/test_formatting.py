"""The one input format of training and scoring: templates, left truncation of the prompt, padding."""

from __future__ import annotations

import pytest
import torch

from rewardkit.model.formatting import collate, encode, fit, flatten_messages, render, template_kind


@pytest.fixture(scope="module")
def bert_tokenizer():
    from rewardkit.model.backbone import default_backbone_path, load_tokenizer

    return load_tokenizer(default_backbone_path())


@pytest.fixture(scope="module")
def decoder_tokenizer():
    """A word-level decoder tokenizer built offline, with BOS/EOS but no pad token (like GPT-2/Llama)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>"] + "hello world what is two plus four assistant : user the answer".split()
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def test_fit_cuts_prompt_from_the_left_and_keeps_the_response():
    # budget 6: prompt [1..6] (6) + response [7,8] (2) -> keep the last 4 prompt tokens
    p, r, cut = fit([1, 2, 3, 4, 5, 6], [7, 8], 6)
    assert (p, r, cut) == ([3, 4, 5, 6], [7, 8], True)
    assert fit([1, 2], [3], 6) == ([1, 2], [3], False)


def test_fit_cuts_the_response_only_when_it_alone_does_not_fit():
    # budget 8: the response (10 tokens) does not fit; keep 8 // 4 = 2 prompt tokens, 6 response tokens
    p, r, cut = fit([1, 2, 3], list(range(10, 20)), 8)
    assert (p, r, cut) == ([2, 3], [10, 11, 12, 13, 14, 15], True)


def test_fit_keeps_the_first_keep_prompt_tokens_through_a_cut():
    # budget 8, keep 2 (e.g. BOS and a role header): 2 response tokens leave 6 for the prompt: [1, 2] + last 4
    assert fit(list(range(1, 11)), [20, 21], 8, keep=2) == ([1, 2, 7, 8, 9, 10], [20, 21], True)
    # at most budget // 4 = 2 of them survive
    assert fit(list(range(1, 11)), [20, 21], 8, keep=5) == ([1, 2, 7, 8, 9, 10], [20, 21], True)
    # the response cut too: the prompt's 8 // 4 = 2 tokens are the first one kept and the last one
    assert fit([1, 2, 3, 4, 5], list(range(20, 30)), 8, keep=1) == ([1, 5], [20, 21, 22, 23, 24, 25], True)
    assert fit([1, 2], [3], 6, keep=1) == ([1, 2], [3], False)  # nothing to cut


def test_encoder_template_is_what_plain_transformers_builds(bert_tokenizer):
    enc = encode(bert_tokenizer, ["What is 2+2?"], ["It is 4."], 64)
    plain = bert_tokenizer("What is 2+2?", "It is 4.")
    assert enc.input_ids[0] == plain["input_ids"]
    assert enc.token_type_ids is not None and enc.token_type_ids[0] == plain["token_type_ids"]
    assert enc.truncated == [False]
    assert template_kind(bert_tokenizer) == "encoder"


def test_long_prompt_is_cut_from_the_left_and_flagged(bert_tokenizer):
    prompt = " ".join(f"word{i}" for i in range(300)) + " final question"
    enc = encode(bert_tokenizer, [prompt], ["the answer"], 32)
    assert len(enc.input_ids[0]) == 32 and enc.truncated == [True]
    text = bert_tokenizer.decode(enc.input_ids[0])
    assert text.endswith("final question [SEP] the answer [SEP]")  # the END of the prompt survives
    assert "word0 " not in text


def test_chat_messages_without_template_are_flattened(bert_tokenizer):
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "why"},
    ]
    assert flatten_messages(messages) == "User: hi\n\nAssistant: hello\n\nUser: why"
    assert render(bert_tokenizer, messages, "because") == ("User: hi\n\nAssistant: hello\n\nUser: why", "because")


def test_decoder_gets_a_pad_token_and_no_eos_when_eos_pads(decoder_tokenizer):
    enc = encode(decoder_tokenizer, ["what is two plus two"], ["four"], 32)
    assert decoder_tokenizer.pad_token == "</s>"
    ids = enc.input_ids[0]
    assert ids[0] == decoder_tokenizer.bos_token_id
    assert ids[-1] == decoder_tokenizer.convert_tokens_to_ids("four")  # reward read at the response's end
    assert enc.token_type_ids is None


def test_chat_template_is_used_when_present(decoder_tokenizer):
    decoder_tokenizer.chat_template = (
        "{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} </s> {% endfor %}"
        "{% if add_generation_prompt %}<s> assistant : {% endif %}"
    )
    try:
        head, tail = render(decoder_tokenizer, "hello", "world")
        assert head == "<s> user : hello </s> <s> assistant : "
        assert tail == "world </s> "  # what the template adds for the assistant turn
    finally:
        decoder_tokenizer.chat_template = None


def test_collate_pads_to_the_longest_row_of_the_batch(bert_tokenizer):
    enc = encode(bert_tokenizer, ["a", "a much longer prompt than the other"], ["b", "c"], 64)
    batch = collate(enc, [0, 1], bert_tokenizer.pad_token_id)
    width = max(enc.lengths)
    assert batch["input_ids"].shape == (2, width)
    assert batch["attention_mask"].sum(1).tolist() == enc.lengths
    assert torch.all(batch["input_ids"][0, enc.lengths[0] :] == bert_tokenizer.pad_token_id)


def test_mismatched_lengths_are_a_clear_error(bert_tokenizer):
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        encode(bert_tokenizer, ["a", "b"], ["c"], 64)


def test_encode_says_whether_the_response_itself_was_cut(bert_tokenizer):
    long_prompt, long_answer = "why " * 100, "because " * 100
    enc = encode(bert_tokenizer, [long_prompt, "Why?", "Why?"], ["Short.", long_answer, "because " * 12], 32)
    assert enc.truncated == [True, True, False]
    assert enc.response_cut == [False, True, False]  # row 0 lost prompt tokens only
    assert enc.select([1]).response_cut == [True]
