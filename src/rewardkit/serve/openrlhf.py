"""OpenRLHF's remote reward-model protocol: ``POST /get_reward {"query", "prompts", "labels"}``.

OpenRLHF decodes each rollout with its special tokens kept, so a query arrives as the policy's left padding,
maybe a BOS token, the prompt (chat template applied), the response and an EOS token; ``prompts`` holds the
prompt strings. OpenRLHF's own ``serve_rm`` strips runs of pad/EOS tokens at both ends before scoring. We
do the same with a configurable list of the usual pad/EOS strings (we do not have the policy's tokenizer),
then find the prompt inside the query: what follows it is the response the reward model scores.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# pad / end-of-sequence strings of common policy tokenizers (Llama 2/3, Mistral, Qwen, GPT-2/NeoX, Gemma, Phi-3, BERT)
DEFAULT_STRIP_TOKENS = ("<pad>", "</s>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>",
                        "<eos>", "<|end|>", "[PAD]", "[SEP]")


def strip_special(text: str, tokens: Sequence[str], *, end: bool = True) -> str:
    """``text`` without runs of ``tokens`` (whitespace between them included) at its start and, unless
    ``end`` is False, its end."""
    if not tokens:
        return text
    one = "(?:" + "|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True)) + ")"
    run = rf"{one}(?:\s*{one})*"
    text = re.sub(f"^{run}", "", text)
    return re.sub(f"{run}$", "", text) if end else text


def split_query(query: str, prompt: str, tokens: Sequence[str] = DEFAULT_STRIP_TOKENS) -> tuple[str, str]:
    """(prompt, response) of one OpenRLHF query. The response is what follows the prompt's first
    occurrence (a BOS token before it is dropped); a query without its prompt is one response to an empty
    prompt. The prompt's end is left as it is: a template may end it with one of these tokens."""
    query = strip_special(query, tokens)
    prompt = strip_special(prompt, tokens, end=False)
    at = query.find(prompt) if prompt else -1
    if at < 0:
        return "", query
    return prompt, query[at + len(prompt):]
