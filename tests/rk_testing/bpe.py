"""A byte-level BPE tokenizer trained offline (where a prompt and a response tokenized apart are not the whole
text tokenized), a chat template for it, and tiny GPT-2 causal LMs built from a config over it."""

from __future__ import annotations

from typing import Any

from rewardkit.model.formatting import ensure_pad_token

# BOS, then <|role|> headers, each turn ended by EOS (the template of the review that found BOS cut off)
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def bpe_tokenizer() -> Any:
    """A GPT-2-style byte-level BPE tokenizer trained offline: bos == eos == <|endoftext|>, pad := eos."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [
        "Hello there, what is two plus two? The answer is four. Assistant: excellent answer. User: tell me "
        "about cats and tea, why? tea is good, an excellent question"
    ] * 50
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=["<|endoftext|>"],
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    eot = "<|endoftext|>"
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=eot, eos_token=eot, unk_token=eot)
    ensure_pad_token(tokenizer)
    return tokenizer


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
