"""rewardkit's model input is what a plain-transformers user builds (the recipes in the docstring of
rewardkit.model.formatting), with a byte-level BPE tokenizer, where a prompt and a response tokenized apart are
not the whole text tokenized; and a chat prompt cut from the left keeps the template's start."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from rk_testing.bpe import CHAT_TEMPLATE, bpe_tokenizer

from rewardkit.model.formatting import (
    _tokens_before,
    chat_preamble,
    encode,
    flatten_messages,
    render,
    shared_prefix,
    tokens_before,
)

# a template whose reply follows "assistant: " on the same line, where BPE merges the space into the reply
INLINE_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)
PROMPTS = [
    "Hello there, what is two plus two?",
    "tell me about cats",
    [
        {"role": "user", "content": "tell me about tea"},
        {"role": "assistant", "content": "tea is good"},
        {"role": "user", "content": "why?"},
    ],
]
RESPONSES = ["excellent", "The answer is four.", " excellent answer"]


@pytest.fixture(scope="module")
def bpe():
    return bpe_tokenizer()


@pytest.fixture(scope="module")
def chat():
    tokenizer = bpe_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def plain_chat_ids(tokenizer, prompt, response) -> list[int]:
    """The docstring's chat recipe: the conversation with the reply, rendered by the template, tokenized."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    out = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": response}], tokenize=True)
    return out if isinstance(out, list) else out["input_ids"]  # a BatchEncoding in transformers 5


def test_the_case_this_is_about_bpe_tokenizes_apart_differently(bpe):
    # "Assistant: " + "excellent": apart, a lone " " then "excellent"; whole, one " excellent"
    ids = lambda text: bpe(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert ids("Assistant: excellent") != ids("Assistant: ") + ids("excellent")
    assert bpe.convert_ids_to_tokens(ids("Assistant: excellent")[-1]) == "Ġexcellent"
    assert shared_prefix(ids("Assistant: "), ids("Assistant: excellent")) == len(ids("Assistant:"))


def test_shared_prefix():
    assert shared_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert shared_prefix([1, 2], [1, 2, 3]) == 2
    assert shared_prefix([], [1]) == 0 and shared_prefix([7], [8]) == 0


def test_tokens_before_counts_the_tokens_wholly_before_a_character():
    # "Assistant:  ok" (ByteLevel): Ass 0-3, istant 3-9, : 9-10, " " 10-11, " ok" 11-14
    spans = [(0, 3), (3, 9), (9, 10), (10, 11), (11, 14)]
    assert [tokens_before(spans, end) for end in (0, 3, 5, 10, 11, 12, 14)] == [0, 1, 1, 3, 4, 4, 5]


def test_the_rust_lookup_counts_as_the_spans_do(bpe):
    text = "Hello there, what is two plus two?\n\nAssistant: excellent answer"
    encoding = bpe([text], add_special_tokens=False).encodings[0]
    assert [_tokens_before(encoding, end) for end in range(len(text) + 1)] == [
        tokens_before(encoding.offsets, end) for end in range(len(text) + 1)
    ]


def test_tokens_before_counts_a_trimmed_whitespace_token_where_it_ends():
    """With a trimming post-processor (RoBERTa's ByteLevel) the " " at 10..11 gets the span 11..11: still
    before 11, as the prompt part's own tokenization says; the next " " (11..12 -> 12..12) is after it."""
    from tokenizers import processors

    tokenizer = bpe_tokenizer()
    tokenizer.backend_tokenizer.post_processor = processors.ByteLevel(trim_offsets=True)
    spans = tokenizer("Assistant:  ok", add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    # As 0-2, sistan 2-8, t 8-9, : 9-10, " " 10-11 -> 11-11, " " 11-12 -> 12-12, o 12-13, k 13-14
    assert spans == [(0, 2), (2, 8), (8, 9), (9, 10), (11, 11), (12, 12), (12, 13), (13, 14)]
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert tokens_before(spans, len("Assistant: ")) == shared_prefix(ids("Assistant: "), ids("Assistant:  ok")) == 5
    # the Rust lookup encode uses: character 11 is in no token here, so it counts from the spans
    encoding = tokenizer(["Assistant:  ok"], add_special_tokens=False).encodings[0]
    assert encoding.char_to_token(11) is None
    assert [_tokens_before(encoding, end) for end in range(15)] == [tokens_before(spans, end) for end in range(15)]


def test_a_python_tokenizer_without_spans_gets_the_same_split():
    """ByT5's tokenizer is pure Python (no offsets): the prompt part is what the whole text shares with the
    prompt's own tokenization. One id per byte, EOS (1) is not the pad token (0), no BOS."""
    from transformers import ByT5Tokenizer

    byt5 = ByT5Tokenizer()
    enc = encode(byt5, ["hi", "why " * 20], ["ok", "because"], 24)
    assert enc.input_ids[0] == byt5("hi\n\nAssistant: ok", add_special_tokens=False)["input_ids"] + [byt5.eos_token_id]
    assert enc.truncated == [False, True] and enc.response_cut == [False, False]
    # max_length 24 = EOS + 23 bytes: "because" (7) and "\n\nAssistant: " (13) leave 3 for the prompt's end
    assert byt5.decode(enc.input_ids[1]) == "hy \n\nAssistant: because</s>"


def test_decoder_ids_are_the_plain_tokenization_of_the_whole_text(bpe):
    enc = encode(bpe, PROMPTS, RESPONSES, 512)
    assert enc.truncated == [False] * 3
    for prompt, response, ids in zip(PROMPTS, RESPONSES, enc.input_ids):
        text = flatten_messages(prompt) + "\n\nAssistant: " + response
        assert ids == bpe(bpe.bos_token + text)["input_ids"]  # GPT-2 style: BOS, no EOS (it is the pad token)
        assert ids == [bpe.bos_token_id] + bpe(text, add_special_tokens=False)["input_ids"]


def test_a_cut_decoder_row_keeps_bos_and_the_response_whole(bpe):
    long_prompt = "tell me about cats " * 40
    enc = encode(bpe, [long_prompt], ["excellent answer"], 24)
    ids = enc.input_ids[0]
    assert len(ids) == 24 and enc.truncated == [True] and enc.response_cut == [False]
    assert ids[0] == bpe.bos_token_id
    text = bpe.decode(ids[1:])
    assert text.endswith("\n\nAssistant: excellent answer")
    assert (long_prompt + "\n\nAssistant: excellent answer").endswith(text)  # a suffix of the whole text


@pytest.mark.parametrize("template", [CHAT_TEMPLATE, INLINE_TEMPLATE])
def test_chat_ids_are_the_chat_templates_tokenization(chat, template):
    chat.chat_template = template
    try:
        enc = encode(chat, PROMPTS, RESPONSES, 512)
        assert enc.truncated == [False] * 3
        for prompt, response, ids in zip(PROMPTS, RESPONSES, enc.input_ids):
            assert ids == plain_chat_ids(chat, prompt, response)
    finally:
        chat.chat_template = CHAT_TEMPLATE
    assert chat.decode(encode(chat, PROMPTS[:1], RESPONSES[:1], 512).input_ids[0]) == (
        "<|endoftext|><|user|>\nHello there, what is two plus "
        "two?<|endoftext|>\n<|assistant|>\nexcellent<|endoftext|>\n"
    )


def test_chat_preamble_is_the_templates_text_before_the_first_non_system_content(chat):
    assert chat_preamble(chat, "hi", render(chat, "hi", "ok")[0]) == "<|endoftext|><|user|>\n"
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    head, _ = render(chat, messages, "ok")
    assert chat_preamble(chat, messages, head) == "<|endoftext|><|system|>\nBe brief.<|endoftext|>\n<|user|>\n"


def test_a_cut_chat_row_keeps_bos_and_the_first_role_header(chat):
    long_prompt = "tell me about cats " * 40
    enc = encode(chat, [long_prompt, "short"], ["excellent answer", "ok"], 64)
    ids = enc.input_ids[0]
    assert len(ids) == 64 and enc.truncated == [True, False] and enc.response_cut == [False, False]
    assert ids[0] == chat.bos_token_id
    start, end = "<|endoftext|><|user|>\n", "<|endoftext|>\n<|assistant|>\nexcellent answer<|endoftext|>\n"
    text = chat.decode(ids)
    assert text.startswith(start) and text.endswith(end)
    middle = text[len(start) : -len(end)]
    assert long_prompt.endswith(middle) and len(middle) < len(long_prompt)  # the prompt's end, cut from the left


def test_a_cut_chat_row_keeps_a_system_message_that_fits_in_a_quarter_of_the_budget(chat):
    """The start before the user's content, "<|endoftext|><|system|>\\nBe brief.<|endoftext|>\\n<|user|>\\n", is
    31 tokens of this small BPE: kept at max_length 128 (31 <= 128 // 4), BOS alone at 64 (31 > 16)."""
    long_prompt = "tell me about cats " * 40
    system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": long_prompt}]
    start, end = (
        "<|endoftext|><|system|>\nBe brief.<|endoftext|>\n<|user|>\n",
        "<|assistant|>\nexcellent answer<|endoftext|>\n",
    )
    assert len(chat(start, add_special_tokens=False)["input_ids"]) == 31
    kept = encode(chat, [system], ["excellent answer"], 128).input_ids[0]
    assert len(kept) == 128 and chat.decode(kept).startswith(start) and chat.decode(kept).endswith(end)
    bos_only = encode(chat, [system], ["excellent answer"], 64).input_ids[0]
    text = chat.decode(bos_only[1:])
    assert len(bos_only) == 64 and bos_only[0] == chat.bos_token_id and text.endswith(end)
    assert (long_prompt + "<|endoftext|>\n" + end).endswith(text)  # BOS, then the end of the conversation


def test_a_template_that_rewrites_the_content_keeps_bos_alone(chat):
    chat.chat_template = CHAT_TEMPLATE.replace("{{ m['content'] }}", "{{ m['content'] | upper }}")
    try:
        long_prompt = "tell me about cats " * 40
        assert chat_preamble(chat, long_prompt, render(chat, long_prompt, "ok")[0]) == ""
        ids = encode(chat, [long_prompt], ["excellent answer"], 64).input_ids[0]
        assert len(ids) == 64 and ids[0] == chat.bos_token_id
        text = chat.decode(ids[1:])
        end = "<|endoftext|>\n<|assistant|>\nEXCELLENT ANSWER<|endoftext|>\n"
        assert text.endswith(end) and long_prompt.upper().endswith(text[: -len(end)])
    finally:
        chat.chat_template = CHAT_TEMPLATE


def test_a_saved_decoder_scores_the_same_in_plain_transformers(bpe, tmp_path: Path):
    """A tiny GPT-2 reward model saved with its tokenizer; plain AutoModelForSequenceClassification on the
    whole text (docstring recipe), row by row and as one padded batch, gives rewardkit's scores."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        GPT2Config,
        GPT2ForSequenceClassification,
    )

    from rewardkit.model.loading import load_reward_model
    from rewardkit.scoring.scorer import load_scorer

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(bpe),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=128,
        num_labels=1,
        bos_token_id=bpe.bos_token_id,
        eos_token_id=bpe.eos_token_id,
        pad_token_id=bpe.pad_token_id,
    )
    GPT2ForSequenceClassification(config).save_pretrained(tmp_path)
    bpe.save_pretrained(tmp_path)

    ours = load_scorer(str(tmp_path), dtype="fp32", device="cpu").score(PROMPTS, RESPONSES)
    assert ours.truncated == [False] * 3
    reference = load_reward_model(tmp_path).score(PROMPTS, RESPONSES)

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    texts = [tokenizer.bos_token + flatten_messages(p) + "\n\nAssistant: " + r for p, r in zip(PROMPTS, RESPONSES)]
    with torch.inference_mode():
        alone = [model(**tokenizer(t, return_tensors="pt")).logits[0, 0].item() for t in texts]
        batch = model(**tokenizer(texts, return_tensors="pt", padding=True)).logits[:, 0].tolist()
    assert ours.raw.tolist() == pytest.approx(alone, abs=1e-5)
    assert reference.tolist() == pytest.approx(alone, abs=1e-5)
    assert batch == pytest.approx(alone, abs=1e-5)
