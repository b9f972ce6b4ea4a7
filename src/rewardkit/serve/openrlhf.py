"""OpenRLHF's remote reward-model protocol: ``POST /get_reward {"query", "prompts", "labels"}``.

OpenRLHF decodes each rollout with its special tokens kept, so a query arrives as the policy's left padding,
maybe a BOS token, the prompt (chat template applied), the response and an EOS token; ``prompts`` holds the
prompt strings. OpenRLHF's own ``serve_rm`` strips runs of pad/EOS tokens at both ends before scoring. We
do the same with a configurable list of the usual pad/EOS strings (we do not have the policy's tokenizer),
then find the prompt inside the query: what follows it is the response the reward model scores.

The prompt is the POLICY's chat template applied to the dataset's messages. Scored as text, the reward model would
read that markup as words (an encoder) or wrap it in its own template (double templating). So ``parse_chat`` reads
the common policy templates back into messages (ChatML, Llama 3, Llama 2 / Mistral ``[INST]``, Gemma, Phi-3,
Zephyr) and the reward model formats those messages its own way; a text it does not recognise exactly stays text.
Parsing is one forward scan per template (``str.find`` from a position, no backtracking regex): a rollout batch
is 8,192 queries and tens of MB. The reward model's own template may refuse what was parsed (Gemma and Mistral v0.1
refuse the system turn Qwen always writes): ``fit_messages`` folds system messages into the first user message,
and a row still refused is scored as its text, so one refusal never fails a whole rollout batch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from rewardkit.records import Message, Prompt

PromptFormat = Literal["auto", "conversation", "text"]
"""How /get_reward reads a query's prompt: ``auto`` parses ``prompts`` when sent (a query without one is text);
``conversation`` also reads a prompt-less query as a conversation; ``text`` never parses."""

# pad / end-of-sequence strings of common policy tokenizers (Llama 2/3, Mistral, Qwen, GPT-2/NeoX, Gemma, Phi-3, BERT)
DEFAULT_STRIP_TOKENS = (
    "<pad>",
    "</s>",
    "<|endoftext|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<eos>",
    "<|end|>",
    "[PAD]",
    "[SEP]",
)


@lru_cache(maxsize=16)
def _ordered(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """Longest first, so '</s>' is not cut short by a shorter token it starts with."""
    return tuple(sorted(tokens, key=len, reverse=True))


@lru_cache(maxsize=16)
def _reversed(tokens: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(t[::-1] for t in tokens)


def strip_special(text: str, tokens: Sequence[str], *, start: bool = True, end: bool = True) -> str:
    """``text`` without runs of ``tokens`` (whitespace around them included) at its start unless ``start`` is
    False, and at its end unless ``end`` is False (found as the start of the text reversed). Fast on long runs: a
    run of one repeated token (a rollout's padding) is skipped with O(log run) string comparisons, not a Python step
    per token or character (a regex anchored at the end would backtrack quadratically over a run of tokens
    inside a long query)."""
    if not tokens:
        return text
    ordered = _ordered(tuple(tokens))
    first = _run_end(text, ordered) if start else 0
    stop = len(text) - _run_end(text[::-1], _reversed(ordered)) if end else len(text)
    return text[first : max(first, stop)]


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
    """(prompt, response) of one OpenRLHF query, as text. The response is what follows the prompt's first
    occurrence (a BOS token before it is dropped); a query without its prompt is one response to an empty
    prompt. The prompt's end is left as it is: a template may end it with one of these tokens."""
    query = strip_special(query, tokens)
    prompt = strip_special(prompt, tokens, end=False)
    at = query.find(prompt) if prompt else -1
    if at >= 0:
        return prompt, query[at + len(prompt) :]
    end = loose_prompt_end(query, prompt) if prompt else -1
    if end < 0:
        return "", query
    return prompt, query[end:]


@lru_cache(maxsize=64)
def _squeezed(text: str) -> str:
    """``text`` after its leading BOS tokens and whitespace (``_LEAD``), without whitespace; cached because a GRPO
    group's queries share one prompt."""
    return "".join(text[_LEAD.match(text).end() :].split())  # type: ignore[union-attr]  # `*` always matches


def loose_prompt_end(query: str, prompt: str) -> int:
    """Where the response starts in ``query`` when ``prompt`` opens it up to whitespace, else -1. Legacy
    SentencePiece tokenizers (Llama 2, Mistral v0.1/v0.2, Zephyr) decode a space after each special token, so the
    query holds ``<s> [INST] Hi [/INST] Hello</s>`` where the prompt is ``<s>[INST] Hi [/INST]``. Leading BOS tokens
    and whitespace are skipped in both (``_LEAD``), then the prompt's non-whitespace characters must open the
    query's, in order; the response starts after the last one matched, and after the prompt's trailing
    whitespace when the query repeats it verbatim (Zephyr's ``<|assistant|>\n``). Linear, and in C: a Python
    loop over the words took 4 s for a rollout batch of 8,192 Llama 2 queries."""
    target = _squeezed(prompt)
    start = _LEAD.match(query).end()  # type: ignore[union-attr]
    if not target or not "".join(query[start : start + 2 * len(prompt) + 64].split()).startswith(target):
        # (a query matching the prompt holds its characters within 2x the prompt's length plus a few spaces:
        # legacy tokenizers add one space per special token; beyond that the match would be a stretch anyway)
        return -1
    # the end of the len(target)-th non-whitespace character: `\s*\S` cannot backtrack, so this is one scan
    end = re.compile(r"(?:\s*\S){%d}" % len(target)).match(query, start).end()  # type: ignore[union-attr]
    tail = prompt[len(prompt.rstrip()) :]
    return end + len(tail) if query.startswith(tail, end) else end


class ParsedChat(NamedTuple):
    """A templated text read back as chat messages."""

    messages: list[Message]
    generation_prompt: bool
    """The text ended with an empty assistant header (a prompt's generation prompt), dropped from ``messages``."""
    end_of_turn: str
    """The template's end-of-turn string: what may still close a response."""
    trims: bool
    """The template trims message contents (so the response, which the template would trim too, is trimmed)."""


@dataclass(frozen=True)
class _Turns:
    """A template whose turns are ``start ROLE role_end CONTENT end``, separated by ``sep``; ``roles`` maps the
    role as written to ours."""

    start: str
    role_end: str
    end: str
    sep: str
    roles: Mapping[str, str]
    trims: bool = False


_ROLES = {"system": "system", "user": "user", "assistant": "assistant"}
# The templates as their tokenizer_config.json chat_template renders them (transformers: trim_blocks, lstrip_blocks);
# tests/serve/test_openrlhf_templates.py renders those templates and parses the result back.
TURN_TEMPLATES: dict[str, _Turns] = {
    # Qwen2/2.5, Yi, OpenHermes: <|im_start|>user\nhi<|im_end|>\n ... <|im_start|>assistant\n
    "chatml": _Turns("<|im_start|>", "\n", "<|im_end|>", "\n", {**_ROLES, "tool": "tool"}),
    # Llama 3/3.1 Instruct: <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|> (content | trim)
    "llama3": _Turns(
        "<|start_header_id|>",
        "<|end_header_id|>\n\n",
        "<|eot_id|>",
        "",
        {**_ROLES, "ipython": "tool", "tool": "tool"},
        trims=True,
    ),
    # gemma-it: <bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n (content | trim; no system role)
    "gemma": _Turns("<start_of_turn>", "\n", "<end_of_turn>", "\n", {"user": "user", "model": "assistant"}, trims=True),
    # Phi-3 mini: <s><|user|>\nhi<|end|>\n<|assistant|>\n
    "phi3": _Turns("<|", "|>\n", "<|end|>", "\n", _ROLES),
    # Zephyr: <|system|>\nbe brief</s>\n<|user|>\nhi</s>\n<|assistant|>\n
    "zephyr": _Turns("<|", "|>\n", "</s>", "\n", _ROLES),
}
_MAX_ROLE = 16  # the longest role name a header may hold: bounds the search for its end
# BOS tokens and whitespace before a template's first turn, and (Llama 2) between turns. No nested repeats: linear
_LEAD = re.compile(r"(?:\s|<s>|<bos>|<\|begin_of_text\|>)*")


def parse_chat(text: str) -> ParsedChat | None:
    """``text``, a chat template's rendering (leading BOS tokens allowed), as messages: the first template of
    ``TURN_TEMPLATES`` (then Llama 2 / Mistral ``[INST]``) that reads the whole text. A trailing empty assistant
    header (the generation prompt) is dropped; an unclosed last assistant turn (a response whose end token was
    stripped) is a message. None when no template reads it exactly: a role it does not know, a turn not closed
    before the next one, text outside the turns."""
    pos = _LEAD.match(text).end()  # type: ignore[union-attr]  # `*` always matches
    for turns in TURN_TEMPLATES.values():
        parsed = _parse_turns(text, pos, turns)
        if parsed is not None:
            return parsed
    return _parse_inst(text, pos)


def _parse_turns(text: str, pos: int, t: _Turns) -> ParsedChat | None:
    messages: list[Message] = []
    while pos < len(text):
        if not text.startswith(t.start, pos):
            return None
        at = pos + len(t.start)
        stop = text.find(t.role_end, at, at + _MAX_ROLE + len(t.role_end))
        role = t.roles.get(text[at:stop]) if stop >= 0 else None
        if role is None:
            return None
        body = stop + len(t.role_end)
        close = text.find(t.end, body)
        if close < 0:  # the last turn is open: the generation prompt, or the response of a whole query
            if role != "assistant":
                return None
            if body == len(text):
                return ParsedChat(messages, True, t.end, t.trims) if messages else None
            return ParsedChat(messages + [{"role": role, "content": text[body:]}], False, t.end, t.trims)
        messages.append({"role": role, "content": text[body:close]})
        pos = close + len(t.end)
        if pos < len(text):
            if not text.startswith(t.sep, pos):
                return None
            pos += len(t.sep)
    return ParsedChat(messages, False, t.end, t.trims) if messages else None


_SYS_OPEN, _SYS_CLOSE = "<<SYS>>\n", "\n<</SYS>>\n\n"


def _parse_inst(text: str, pos: int) -> ParsedChat | None:
    """Llama 2 chat and Mistral Instruct: ``<s>[INST] user [/INST] reply </s>``, turns after the first also opened
    by ``<s>`` (Llama 2) or not (Mistral); Llama 2 writes a system message as ``<<SYS>>\\n...\\n<</SYS>>\\n\\n`` at
    the start of the first user turn. The spaces around the contents differ between versions (Mistral v0.1
    ``[INST] u [/INST]a</s>``, v0.3 ``[INST] u[/INST] a</s>``, Nemo ``[INST]u[/INST]a</s>``) and the templates
    strip contents: contents are stripped."""
    messages: list[Message] = []
    while True:
        if not text.startswith("[INST]", pos):
            return None
        close = text.find("[/INST]", pos + 6)
        if close < 0:
            return None
        user = text[pos + 6 : close].strip()
        if "[INST]" in user:
            return None
        if not messages and user.startswith(_SYS_OPEN):
            cut = user.find(_SYS_CLOSE, len(_SYS_OPEN))
            if cut < 0:
                return None
            messages.append({"role": "system", "content": user[len(_SYS_OPEN) : cut]})
            user = user[cut + len(_SYS_CLOSE) :]
        messages.append({"role": "user", "content": user})
        pos = close + 7
        eos = text.find("</s>", pos)
        reply = text[pos : eos if eos >= 0 else len(text)]
        if "[INST]" in reply or "[/INST]" in reply:
            return None
        reply = reply.strip()
        if eos < 0 and not reply:
            return ParsedChat(messages, True, "</s>", True)
        messages.append({"role": "assistant", "content": reply})
        if eos < 0:
            return ParsedChat(messages, False, "</s>", True)
        pos = _LEAD.match(text, eos + 4).end()  # type: ignore[union-attr]
        if pos == len(text):
            return ParsedChat(messages, False, "</s>", True)


def _response(text: str, parsed: ParsedChat, tokens: Sequence[str]) -> str:
    """A response without the template's end-of-turn token (and pad/EOS tokens) at its end; trimmed where the
    template trims contents."""
    text = strip_special(text, (parsed.end_of_turn, *tokens), start=False)
    return text.strip() if parsed.trims else text


def split_conversation(query: str, tokens: Sequence[str] = DEFAULT_STRIP_TOKENS) -> tuple[Prompt, str]:
    """A query sent without its prompt (``get_reward_prompt_format`` conversation): when ``parse_chat`` reads it as
    a conversation that ends with an assistant turn after at least one other message, (the messages before that
    turn, its content); else ("", the query). The policy writes the response and can write the template's turn
    markers in it (``idk<|im_end|>\n<|im_start|>user\nSay hello<|im_end|>\n<|im_start|>assistant\nHello!``),
    so it chooses the prompt it is scored against: only a prompt (``split_queries`` with ``prompts``) pins where
    the response starts."""
    text = strip_special(query, tokens)
    parsed = parse_chat(text)
    if (
        parsed is None
        or parsed.generation_prompt
        or len(parsed.messages) < 2
        or parsed.messages[-1]["role"] != "assistant"
    ):
        return "", text
    return parsed.messages[:-1], _response(parsed.messages[-1]["content"], parsed, tokens)


def fold_system(messages: list[Message]) -> list[Message] | None:
    """``messages`` with the system messages' contents put before the first user message's (``system + "\n\n" +
    user``, as Mistral v0.3's template does): what a template that refuses a system turn can take. None when there
    is no system message or no user message to fold it into."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    rest = [m for m in messages if m["role"] != "system"]
    first = next((i for i, m in enumerate(rest) if m["role"] == "user"), None)
    if not system or first is None:
        return None
    rest[first] = {**rest[first], "content": "\n\n".join(system + [rest[first]["content"]])}
    return rest


def fit_messages(messages: list[Message], accepts: Callable[[list[Message]], bool]) -> list[Message] | None:
    """``messages`` if the reward model's template ``accepts`` them, else ``fold_system``'s if it accepts those,
    else None (the row is scored as its text)."""
    if accepts(messages):
        return messages
    folded = fold_system(messages)
    return folded if folded is not None and accepts(folded) else None


def template_accepts(tokenizer: Any) -> Callable[[list[Message]], bool] | None:
    """Whether the tokenizer's chat template renders a prompt (``formatting.render``, as scoring will); None for a
    tokenizer without one (its plain templates take any messages)."""
    # here, not at the top: ServeSettings imports this module, and formatting imports torch
    from rewardkit.model.formatting import ChatTemplateError, render, template_kind

    if template_kind(tokenizer) != "chat":
        return None

    def accepts(messages: list[Message]) -> bool:
        try:
            render(tokenizer, messages, "")
        except ChatTemplateError:
            return False
        return True

    return accepts


def split_queries(
    queries: Sequence[str],
    prompts: Sequence[str] | None,
    tokens: Sequence[str],
    fmt: PromptFormat = "auto",
    accepts: Callable[[list[Message]], bool] | None = None,
) -> list[tuple[Prompt, str]]:
    """(prompt, response) per query of a request. Unless ``fmt`` is text: a prompt that ``parse_chat`` reads and
    that ends with the generation prompt becomes messages, and the response (still what follows the prompt text in
    the query, so markup inside the prompt cannot move where it starts) loses its end-of-turn token; without
    ``prompts``, ``split_conversation`` when ``fmt`` is conversation. Otherwise ``split_query`` (without
    ``prompts``, every query is a response to an empty prompt). With ``accepts`` (the reward model's template
    check), parsed messages go through ``fit_messages`` and a row it refuses is scored as the text split. Each
    distinct prompt is parsed and checked once (a GRPO group shares one) and its rows share one message list."""
    if prompts is None:
        if fmt != "conversation":
            return [("", strip_special(q, tokens)) for q in queries]
        texts = [("", strip_special(q, tokens)) for q in queries]
        # split_conversation strips again and finds nothing: the runs of pad tokens are gone
        return _fitted([split_conversation(text, tokens) for _, text in texts], texts, accepts)
    pairs = [split_query(q, p, tokens) for q, p in zip(queries, prompts)]
    if fmt == "text":
        return list(pairs)
    parses = {text: parse_chat(text) for text in dict.fromkeys(text for text, _ in pairs if text)}
    out: list[tuple[Prompt, str]] = []
    for text, response in pairs:
        parsed = parses.get(text)
        if parsed is None or not parsed.generation_prompt:
            out.append((text, response))
        else:
            out.append((parsed.messages, _response(response, parsed, tokens)))
    return _fitted(out, pairs, accepts)


def _fitted(
    split: list[tuple[Prompt, str]],
    texts: Sequence[tuple[Prompt, str]],
    accepts: Callable[[list[Message]], bool] | None,
) -> list[tuple[Prompt, str]]:
    """``split`` with each message prompt through ``fit_messages`` (once per distinct conversation), and a row it
    refuses replaced by the same row of ``texts``."""
    if accepts is None:
        return split
    fits: dict[tuple[tuple[str, str], ...], list[Message] | None] = {}
    out: list[tuple[Prompt, str]] = []
    for (prompt, response), text in zip(split, texts):
        if isinstance(prompt, str):
            out.append((prompt, response))
            continue
        key = tuple((m["role"], m["content"]) for m in prompt)
        if key not in fits:
            fits[key] = fit_messages(prompt, accepts)
        fit = fits[key]
        out.append(text if fit is None else (fit, response))
    return out
