"""How a (prompt, response) pair becomes model input: ONE function for training and for scoring.

``encode(tokenizer, prompts, responses, max_length)`` returns token ids per example and a ``truncated`` flag.
``collate(encoded, rows, pad_id)`` pads a batch dynamically (to its own longest row, not to max_length).

The template, by tokenizer kind, and what a plain-transformers user does to get the same ids (rewardkit's ids
equal these whenever ``truncated`` is False; ``prompt_text`` is the prompt, chat messages flattened as below):

- **chat template** (the tokenizer has ``chat_template``): the conversation (a text prompt becomes one user
  message) with the response appended as the assistant message, rendered by the template and tokenized
  whole, without added special tokens (the template writes its own)::

      conversation = messages + [{"role": "assistant", "content": response}]
      text = tokenizer.apply_chat_template(conversation, tokenize=False)
      ids = tokenizer(text, add_special_tokens=False)["input_ids"]
      # = tokenizer.apply_chat_template(conversation, tokenize=True)  (["input_ids"] in transformers 5)

  The prompt part is the rendering with ``add_generation_prompt=True``; the response part is what the
  assistant turn adds to it. (A template that renders the assistant turn differently after a generation
  prompt gets the generation-prompt rendering followed by the raw response instead.)
- **encoder** (the tokenizer has CLS and SEP tokens, BERT family): ``[CLS] prompt [SEP] response [SEP]`` with
  token_type_ids 0 for the prompt segment and 1 for the response segment::

      tokenizer(prompt_text, response)   # input_ids and token_type_ids

- **decoder without a chat template**: ``[BOS] prompt "\\n\\nAssistant: " response [EOS]``, the text tokenized
  whole; BOS when the tokenizer has one; EOS when it has one that is not also the pad token (with EOS as pad
  the model would read the reward at the token before it)::

      text = prompt_text + "\\n\\nAssistant: " + response
      ids = tokenizer(text, add_special_tokens=False)["input_ids"]
      ids = [tokenizer.bos_token_id] + ids   # when bos_token_id is not None
      ids = ids + [tokenizer.eos_token_id]   # when eos_token_id is not None and != pad_token_id
      # GPT-2 style (bos == eos == pad, no post-processor): tokenizer(tokenizer.bos_token + text)["input_ids"]

  The reward is read at the last non-pad token by the HF head (``config.pad_token_id`` is saved with the
  model; a tokenizer without a pad token gets EOS as one, see ``ensure_pad_token``). rewardkit pads batches
  on the right: ``tokenizer.padding_side = "right"`` before ``tokenizer(texts, padding=True)``.

**The response is text, never special tokens.** The policy writes the response, and a response holding the
text ``<|im_end|>`` (or ``[SEP]``, ``</s>``: any of the tokenizer's special tokens) would be tokenized as that
special token by the ids above: the policy could end its own turn early and write what the reward model reads
as a new user turn. So the response is tokenized with special tokens split (``split_special_tokens``: the
text ``<|im_end|>`` becomes ``<``, ``|``, ``im``... as any other text), while the template's own special
tokens (the assistant turn's end) stay special. Parity with plain transformers holds for every response that
holds no special token's text; one that does gets different ids from the snippets above (which read the forged
text as special tokens), and for chat and decoder templates its prompt, the template's pieces and the
response are tokenized apart rather than whole (``_tokenize_response_as_text``).

A prompt given as chat messages and no chat template is flattened as ``"Role: content"`` blocks separated by
blank lines (``"User: hi\\n\\nAssistant: hello"``).

Chat and decoder texts are tokenized whole, as above, because byte-level BPE tokenizes a prompt and a response
apart differently from their concatenation (``"Assistant: " + "excellent"`` gives ``" "``, ``"excellent"``
apart but ``" excellent"`` whole). Where a row must be cut, its prompt part is the tokens that lie wholly in
the prompt text (by the fast tokenizer's character offsets): a token straddling the boundary belongs to the
response. The encoder's two segments are tokenized apart, as ``tokenizer(prompt, response)`` does.

Truncation never drops a pair. When prompt + response exceed ``max_length`` the prompt is cut from the LEFT
(the end of the conversation is what the response answers) at token level. The template's own start survives
the cut: the encoder's CLS/SEP and the decoder's BOS/EOS are outside it; a chat template's text before the
content of the first message that is not a system message (BOS, the system messages or the template's default
system block, that message's role header: what the model expects at the start of its input) is kept when it
is found and takes at most ``max_length // 4`` tokens, else its BOS. Only
when the response alone does not fit is the response cut (from the right), keeping ``max_length // 4`` prompt
tokens (the template's start among them) so the model still sees the question. Either way ``truncated[i]`` is
True and callers count and report it.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rewardkit.records import Message, Prompt

DECODER_ASSISTANT_PREFIX = "\n\nAssistant: "
MIN_TEXT_TOKENS = 8
"""Tokens ``encode`` needs for text besides the template's special tokens: a smaller max_length is an error."""
Spans = list[tuple[int, int]]
"""The (start, end) character span of each token of a text: a fast tokenizer's offset mapping."""


class ChatTemplateError(ValueError):
    """The model's chat template refused a conversation (e.g. Mistral's and Gemma's templates reject a system
    message or roles that do not alternate). The input's fault, not the server's: callers answer 422 or name
    the input row. ``row`` is the index of the refused example in the call to ``encode`` (None from ``render``).
    """

    def __init__(self, reason: str, row: int | None = None) -> None:
        self.reason, self.row = reason, row
        where = "" if row is None else f"input {row}: "
        super().__init__(f"{where}the model's chat template refuses this conversation: {reason}")


@dataclass
class Encoded:
    """Token ids for N examples. ``token_type_ids`` is None for models without segments."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    truncated: list[bool]
    response_cut: list[bool]
    """Per example: was the RESPONSE cut (its end not in the input), not just the prompt? What the
    evaluation's probes need to know: whether the model reads an edited response to its last token."""

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]

    def select(self, rows: Sequence[int]) -> Encoded:
        """The examples at ``rows``, in that order."""
        types = self.token_type_ids
        return Encoded(
            [self.input_ids[i] for i in rows],
            None if types is None else [types[i] for i in rows],
            [self.truncated[i] for i in rows],
            [self.response_cut[i] for i in rows],
        )

    def key(self, i: int) -> tuple[Any, ...]:
        """Row i's model input as a hashable value: equal keys, equal inputs (texts that differ only past
        the truncation point included)."""
        return tuple(self.input_ids[i]), None if self.token_type_ids is None else tuple(self.token_type_ids[i])

    def distinct(self) -> tuple[list[int], list[int]]:
        """(first, inverse): the first row of each distinct model input, and for every row the position in
        ``first`` of its input."""
        seen: dict[tuple[Any, ...], int] = {}
        first: list[int] = []
        inverse: list[int] = []
        for i in range(len(self)):
            key = self.key(i)
            if key not in seen:
                seen[key] = len(first)
                first.append(i)
            inverse.append(seen[key])
        return first, inverse


def ensure_pad_token(tokenizer: Any) -> int:
    """Give a tokenizer without a pad token one (eos, else unk, else a new '<|pad|>') and return the pad id.
    The model's ``config.pad_token_id`` must be set to the same id (``backbone.load_backbone`` does). With
    pad == eos the decoder template appends no EOS, so the reward is read at the response's last token."""
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        elif tokenizer.unk_token is not None:
            tokenizer.pad_token = tokenizer.unk_token
        else:
            tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    return int(tokenizer.pad_token_id)


def template_kind(tokenizer: Any) -> str:
    """'chat', 'encoder' or 'decoder': which of the documented templates this tokenizer gets."""
    if getattr(tokenizer, "chat_template", None):
        return "chat"
    if tokenizer.cls_token_id is not None and tokenizer.sep_token_id is not None:
        return "encoder"
    return "decoder"


def flatten_messages(prompt: Prompt) -> str:
    """The plain template for a prompt without a chat template: text as is, messages as 'Role: content'."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in prompt)


def chat_messages(prompt: Prompt) -> list[Message]:
    """The prompt as chat messages: a text prompt is one user message."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def render(tokenizer: Any, prompt: Prompt, response: str, heads: dict[str, str] | None = None) -> tuple[str, str]:
    """The (prompt part, response part) strings of one example, before tokenization. ``heads``: chat prompt
    parts rendered so far, by prompt (a GRPO group's completions share one prompt: its template runs once)."""
    kind = template_kind(tokenizer)
    if kind == "chat":
        messages = chat_messages(prompt)
        key = prompt if isinstance(prompt, str) else json.dumps(prompt)
        head = heads.get(key) if heads is not None else None
        if head is None:
            head = _apply_chat_template(tokenizer, messages, add_generation_prompt=True)
            if heads is not None:
                heads[key] = head
        full = _apply_chat_template(tokenizer, messages + [{"role": "assistant", "content": response}])
        # Templates that render the assistant turn differently after a generation prompt fall back to
        # appending the raw response: the prompt part is still the template's.
        return head, full[len(head) :] if full.startswith(head) else response
    if kind == "encoder":
        return flatten_messages(prompt), response
    return flatten_messages(prompt) + DECODER_ASSISTANT_PREFIX, response


def _apply_chat_template(tokenizer: Any, messages: list[Message], add_generation_prompt: bool = False) -> str:
    from jinja2 import TemplateError  # transformers renders chat templates with jinja2

    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    except TemplateError as exc:  # the template's own raise_exception("...") for conversations it rejects
        raise ChatTemplateError(str(exc)) from None


_CONTENT_MARK = "RewardkitFirstMessageContent"
"""Stands in for a message's content to find where a chat template puts it (plain letters: templates trim or
escape content, and this survives both)."""


def chat_preamble(tokenizer: Any, prompt: Prompt, head: str) -> str:
    """The start of ``head`` (a chat prompt part) before the content of the first message that is not a system
    message: BOS, the system messages (or the template's default system block), that message's role header.
    '' when the template does not show that content verbatim."""
    messages = chat_messages(prompt)
    first = next((i for i, m in enumerate(messages) if m.get("role") != "system"), None)
    if first is None:
        return ""
    marked = messages[:first] + [{**messages[first], "content": _CONTENT_MARK}] + messages[first + 1 :]
    try:
        text = _apply_chat_template(tokenizer, marked, add_generation_prompt=True)
    except ChatTemplateError:
        return ""
    start = text.find(_CONTENT_MARK)
    # a template whose start depends on the content (or on the clock: "Today Date") has no fixed preamble
    return text[:start] if start >= 0 and head.startswith(text[:start]) else ""


def _special_tokens(tokenizer: Any, kind: str) -> tuple[list[int], list[int], list[int]]:
    """Token ids before the prompt, between prompt and response, after the response."""
    if kind == "encoder":
        return [tokenizer.cls_token_id], [tokenizer.sep_token_id], [tokenizer.sep_token_id]
    if kind == "chat":
        return [], [], []
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    eos_is_pad = tokenizer.eos_token_id is None or tokenizer.eos_token_id == tokenizer.pad_token_id
    return bos, [], [] if eos_is_pad else [tokenizer.eos_token_id]


def fit(
    prompt_ids: list[int], response_ids: list[int], budget: int, keep: int = 0
) -> tuple[list[int], list[int], bool]:
    """Cut (prompt, response) token lists to at most ``budget`` tokens: prompt from the left first, except its
    first ``keep`` tokens (a chat template's start; at most ``budget // 4`` of them survive); the response (from
    the right) only when it alone does not fit, keeping ``budget // 4`` prompt tokens, the kept start among them."""
    if len(prompt_ids) + len(response_ids) <= budget:
        return prompt_ids, response_ids, False
    share = min(len(prompt_ids), budget // 4)
    keep = min(keep, share)
    if len(response_ids) <= budget - share:
        tail = budget - len(response_ids) - keep  # < len(prompt_ids) - keep: the prompt does not fit whole
        return prompt_ids[:keep] + prompt_ids[len(prompt_ids) - tail :], response_ids, True
    tail = share - keep
    return prompt_ids[:keep] + prompt_ids[len(prompt_ids) - tail :], response_ids[: budget - share], True


def encode(tokenizer: Any, prompts: Sequence[Prompt], responses: Sequence[str], max_length: int) -> Encoded:
    """Turn N (prompt, response) pairs into token ids of at most ``max_length`` (see the module docstring)."""
    if len(prompts) != len(responses):
        raise ValueError(f"encode: {len(prompts)} prompts but {len(responses)} responses")
    kind = template_kind(tokenizer)
    if kind == "decoder":
        ensure_pad_token(tokenizer)
    before, between, after = _special_tokens(tokenizer, kind)
    budget = max_length - len(before) - len(between) - len(after)
    if budget < MIN_TEXT_TOKENS:
        raise ValueError(
            f"max_length {max_length} leaves {budget} tokens for text; "
            f"use at least {max_length - budget + MIN_TEXT_TOKENS}"
        )
    rendered = []
    heads: dict[str, str] = {}
    for row, (p, r) in enumerate(zip(prompts, responses)):
        try:
            rendered.append(render(tokenizer, p, r, heads))
        except ChatTemplateError as exc:
            raise ChatTemplateError(exc.reason, row) from None
    if kind == "encoder":
        parts, starts = _tokenize_apart(tokenizer, rendered), {}
    else:
        parts, encodings = _tokenize_whole(tokenizer, rendered, budget)
        forged = special_token_text(tokenizer)
        for row, response in enumerate(responses):
            if forged is not None and forged.search(response):
                parts[row] = _tokenize_response_as_text(tokenizer, rendered[row], response)
        starts = _chat_starts(tokenizer, prompts, rendered, parts, encodings, budget) if kind == "chat" else {}
    input_ids: list[list[int]] = []
    type_ids: list[list[int]] = []
    truncated: list[bool] = []
    response_cut: list[bool] = []
    for (head, _), (prompt_ids, whole) in zip(rendered, parts):
        p_ids, r_ids, cut = fit(prompt_ids, whole, budget, starts.get(head, 0))
        first = before + p_ids + between
        input_ids.append(first + r_ids + after)
        type_ids.append([0] * len(first) + [1] * (len(r_ids) + len(after)))
        truncated.append(cut)
        response_cut.append(len(r_ids) < len(whole))
    return Encoded(input_ids, type_ids if kind == "encoder" else None, truncated, response_cut)


def _chat_starts(
    tokenizer: Any,
    prompts: Sequence[Prompt],
    rendered: list[tuple[str, str]],
    parts: list[tuple[list[int], list[int]]],
    encodings: list[Any] | None,
    budget: int,
) -> dict[str, int]:
    """For each chat prompt part that must be cut: how many of its first tokens are the template's start
    (``chat_preamble``) when they are at most ``budget // 4``, else its BOS (1 when it starts with BOS; also for
    a Python tokenizer, without offsets)."""
    starts: dict[str, int] = {}
    for row, ((head, _), (prompt_ids, whole)) in enumerate(zip(rendered, parts)):
        if len(prompt_ids) + len(whole) <= budget or head in starts:
            continue
        preamble = chat_preamble(tokenizer, prompts[row], head) if encodings is not None else ""
        n = _tokens_before(encodings[row], len(preamble)) if encodings is not None and preamble else 0
        # a start longer than a quarter of the budget (a long system prompt) would crowd out the question
        starts[head] = n if 0 < n <= budget // 4 else int(bool(prompt_ids) and prompt_ids[0] == tokenizer.bos_token_id)
    return starts


def _tokenize_apart(tokenizer: Any, rendered: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, response ids) per example, the two parts tokenized on their own (the encoder's segments):
    each distinct prompt once (pairs share prompts), the responses in one batched call."""
    heads = list(dict.fromkeys(h for h, _ in rendered))
    head_ids = dict(zip(heads, _tokenize(tokenizer, heads)["input_ids"]))
    responses = _tokenize(tokenizer, [t for _, t in rendered], as_text=True)["input_ids"]  # "[SEP]" is text here
    return list(zip([head_ids[h] for h, _ in rendered], responses))


def special_token_text(tokenizer: Any) -> re.Pattern[str] | None:
    """A pattern matching the text of any of the tokenizer's special tokens (``<|im_end|>``, ``</s>``,
    ``[SEP]``...), longest first; None for a tokenizer without any."""
    texts = set(getattr(tokenizer, "all_special_tokens", None) or [])
    for token in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        if getattr(token, "special", False):
            texts.add(str(token))
    ordered = sorted((t for t in texts if t), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


def _tokenize_response_as_text(tokenizer: Any, rendered: tuple[str, str], response: str) -> tuple[list[int], list[int]]:
    """(prompt ids, response ids) of a row whose response holds the text of a special token: the response
    tokenized with special tokens split (as plain text), so a policy cannot end its own turn with a written
    ``<|im_end|>`` and write a turn the reward model reads as the user's. What the template writes around the
    response (the assistant turn's own end) keeps its special tokens. The prompt part and the template's
    pieces are tokenized apart from the response (not whole, as other rows are): these rows differ from
    plain transformers' ids anyway, since transformers reads the forged text as special tokens."""
    head, part = rendered
    content = response if response in part else response.strip()
    at = part.find(content) if content else -1
    if at < 0:  # a template that rewrites the content: all of the response part as text, its end-of-turn too
        return _tokenize(tokenizer, [head])["input_ids"][0], _tokenize(tokenizer, [part], as_text=True)["input_ids"][0]
    before, after = part[:at], part[at + len(content) :]
    ids = _tokenize(tokenizer, [head, before, after])["input_ids"]
    return ids[0], ids[1] + _tokenize(tokenizer, [content], as_text=True)["input_ids"][0] + ids[2]


def _tokenize_whole(
    tokenizer: Any, rendered: list[tuple[str, str]], budget: int
) -> tuple[list[tuple[list[int], list[int]]], list[Any] | None]:
    """(prompt ids, response ids) per example, split from the tokenization of the whole text, and the fast
    tokenizer's encodings (None for a Python tokenizer). Only rows over ``budget`` are split (a row that fits
    is (all its ids, []): its split would change nothing). The prompt part is the tokens wholly inside the
    prompt text: one that straddles the boundary (" excellent" over "Assistant: " + "excellent") belongs to
    the response. A Python tokenizer has no character offsets: there the prompt part is the tokens the whole
    text shares with the prompt text's own tokenization."""
    whole = _tokenize(tokenizer, [h + t for h, t in rendered])
    ids = whole["input_ids"]
    cut = [row for row in range(len(ids)) if len(ids[row]) > budget]
    encodings = getattr(whole, "encodings", None)  # the fast tokenizer's own results, offsets included
    if encodings is not None:
        ends = {row: _tokens_before(encodings[row], len(rendered[row][0])) for row in cut}
    else:
        heads = list(dict.fromkeys(rendered[row][0] for row in cut))
        head_ids = dict(zip(heads, _tokenize(tokenizer, heads)["input_ids"]))
        ends = {row: shared_prefix(head_ids[rendered[row][0]], ids[row]) for row in cut}
    return [(x[: ends[row]], x[ends[row] :]) if row in ends else (x, []) for row, x in enumerate(ids)], encodings


def _tokens_before(encoding: Any, end: int) -> int:
    """``tokens_before`` for a fast tokenizer's encoding of a text: the index of the token that holds character
    ``end`` (a lookup in Rust instead of a conversion of every offset to Python: the tokens before that one end
    at or before ``end``, it and those after it do not), else from all the offsets (``end`` is in no token:
    whitespace a tokenizer leaves out of its offsets, or the end of the text)."""
    at = encoding.char_to_token(end)
    return at if at is not None else tokens_before(encoding.offsets, end)


def tokens_before(spans: Spans, end: int) -> int:
    """How many leading tokens lie wholly in ``text[:end]``, given their character spans in ``text``: a token
    that straddles ``end`` is not one of them. An empty span counts where it ends: byte-level post-processors
    that trim offsets (RoBERTa's) give a whitespace-only token at 10..11 the span 11..11."""
    return bisect_right(spans, end, key=lambda span: span[1])  # spans are in text order, their ends too


def shared_prefix(a: list[int], b: list[int]) -> int:
    """The length of the longest common prefix of two id lists."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:  # the usual case, compared at C speed
        return n
    return next(i for i in range(n) if a[i] != b[i])


def _tokenize(tokenizer: Any, texts: list[str], as_text: bool = False) -> Any:
    """The tokenizer's answer (``["input_ids"]``) for the texts, without added special tokens: the templates
    place them. ``as_text``: the text of a special token inside them is tokenized as plain text
    (``split_special_tokens``): for responses, which the policy writes."""
    if not texts:
        return {"input_ids": []}
    # Texts are tokenized whole and cut by ``fit`` afterwards, so transformers' "longer than the maximum
    # sequence length ... will result in indexing errors" warning is wrong here: mark it as already shown.
    warned = getattr(tokenizer, "deprecation_warnings", None)
    if isinstance(warned, dict):
        warned["sequence-length-is-longer-than-the-specified-maximum"] = True
    options = {"split_special_tokens": True} if as_text else {}
    return tokenizer(texts, add_special_tokens=False, return_attention_mask=False, **options)


def collate(encoded: Encoded, rows: Sequence[int], pad_id: int) -> dict[str, torch.Tensor]:
    """A right-padded batch of the given rows, padded to the batch's own longest row.

    Returns input_ids and attention_mask [B, L] (+ token_type_ids [B, L] for encoders)."""
    width = max(len(encoded.input_ids[i]) for i in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    types = torch.zeros((len(rows), width), dtype=torch.long) if encoded.token_type_ids is not None else None
    for b, i in enumerate(rows):
        n = len(encoded.input_ids[i])
        ids[b, :n] = torch.tensor(encoded.input_ids[i])
        mask[b, :n] = 1
        if types is not None:
            types[b, :n] = torch.tensor(encoded.token_type_ids[i])  # type: ignore[index]
    batch = {"input_ids": ids, "attention_mask": mask}
    if types is not None:
        batch["token_type_ids"] = types
    return batch
