"""OpenRLHF's remote reward-model protocol: ``POST /get_reward {"query", "prompts", "labels"}``.

OpenRLHF decodes each rollout with its special tokens kept, so a query arrives as the policy's left padding,
maybe a BOS token, the prompt (chat template applied), the response and an EOS token; ``prompts`` holds the
prompt strings. OpenRLHF's own ``serve_rm`` strips runs of pad/EOS tokens at both ends before scoring. We
do the same with a configurable list of the usual pad/EOS strings (we do not have the policy's tokenizer),
then find the prompt inside the query: what follows it is the response the reward model scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

# pad / end-of-sequence strings of common policy tokenizers (Llama 2/3, Mistral, Qwen, GPT-2/NeoX, Gemma, Phi-3, BERT)
DEFAULT_STRIP_TOKENS = ("<pad>", "</s>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>",
                        "<eos>", "<|end|>", "[PAD]", "[SEP]")


@lru_cache(maxsize=16)
def _ordered(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """Longest first, so '</s>' is not cut short by a shorter token it starts with."""
    return tuple(sorted(tokens, key=len, reverse=True))


@lru_cache(maxsize=16)
def _reversed(tokens: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(t[::-1] for t in tokens)


def strip_special(text: str, tokens: Sequence[str], *, end: bool = True) -> str:
    """``text`` without runs of ``tokens`` (whitespace around them included) at its start and, unless
    ``end`` is False, its end (found as the start of the text reversed). Fast on long runs: a run of one
    repeated token (a rollout's padding) is skipped with O(log run) string comparisons, not a Python step
    per token or character (a regex anchored at the end would backtrack quadratically over a run of tokens
    inside a long query)."""
    if not tokens:
        return text
    ordered = _ordered(tuple(tokens))
    start = _run_end(text, ordered)
    stop = len(text) - _run_end(text[::-1], _reversed(ordered)) if end else len(text)
    return text[start:max(start, stop)]


@lru_cache(maxsize=64)
def _skippable(tokens: tuple[str, ...]) -> frozenset[str]:
    """Tokens whose runs can be skipped at once: those no other token starts with (else, token by token,
    the longer token may match in the middle of the run, as '<|endoftext|>x' inside '<|endoftext|>' x 3 + 'x')."""
    return frozenset(t for t in tokens if not any(o != t and o.startswith(t) for o in tokens))


def _run_end(text: str, tokens: tuple[str, ...]) -> int:
    """Where the run of ``tokens`` (longest first; and whitespace) at the start of ``text`` ends: 0 when it
    starts with none."""
    skippable = _skippable(tokens)
    cut = pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        hit = next((t for t in tokens if text.startswith(t, pos)), None)
        if hit is None:
            return cut
        cut = pos = _repeats_end(text, hit, pos) if hit in skippable else pos + len(hit)


def _repeats_end(text: str, token: str, pos: int) -> int:
    """The end of the run of ``token`` repeated that starts at ``pos`` (it occurs there at least once):
    doubling, then bisecting, the repeat count."""
    low = 1
    while text.startswith(token * (2 * low), pos):
        low *= 2
    high = 2 * low  # the run holds at least `low` and fewer than `high` repeats
    while high - low > 1:
        mid = (low + high) // 2
        if text.startswith(token * mid, pos):
            low = mid
        else:
            high = mid
    return pos + low * len(token)


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


def split_queries(queries: Sequence[str], prompts: Sequence[str] | None, tokens: Sequence[str]) -> list[tuple[str, str]]:
    """``split_query`` over a whole request (``prompts`` None: every query is a response to an empty prompt)."""
    if prompts is None:
        return [("", strip_special(q, tokens)) for q in queries]
    return [split_query(q, p, tokens) for q, p in zip(queries, prompts)]
