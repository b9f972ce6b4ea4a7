"""OpenRLHF's remote reward-model protocol: ``POST /get_reward {"query", "prompts", "labels"}``.

OpenRLHF decodes each rollout with its special tokens kept, so a query arrives as the policy's left padding,
maybe a BOS token, the prompt (chat template applied), the response and an EOS token; ``prompts`` holds the
prompt strings. OpenRLHF's own ``serve_rm`` strips runs of pad/EOS tokens at both ends before scoring. We
do the same with a configurable list of the usual pad/EOS strings (we do not have the policy's tokenizer),
then find the prompt inside the query: what follows it is the response the reward model scores.
"""

from __future__ import annotations

from collections.abc import Sequence

# pad / end-of-sequence strings of common policy tokenizers (Llama 2/3, Mistral, Qwen, GPT-2/NeoX, Gemma, Phi-3, BERT)
DEFAULT_STRIP_TOKENS = ("<pad>", "</s>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>",
                        "<eos>", "<|end|>", "[PAD]", "[SEP]")


def strip_special(text: str, tokens: Sequence[str], *, end: bool = True) -> str:
    """``text`` without runs of ``tokens`` (whitespace around them included) at its start and, unless
    ``end`` is False, its end. Linear in the text (a regex anchored at the end backtracks quadratically over
    a run of tokens inside a long query)."""
    if not tokens:
        return text
    ordered = sorted(tokens, key=len, reverse=True)
    start = _run_end(text, ordered)
    stop = len(text) - _run_end(text[::-1], [t[::-1] for t in ordered]) if end else len(text)
    return text[start:max(start, stop)]


def _run_end(text: str, tokens: Sequence[str]) -> int:
    """Where the run of ``tokens`` (and whitespace) at the start of ``text`` ends: 0 when it starts with none."""
    cut = pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        hit = next((t for t in tokens if text.startswith(t, pos)), None)
        if hit is None:
            return cut
        cut = pos = pos + len(hit)


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
