"""How a (prompt, response) pair becomes model input: ONE function for training and for scoring.

``encode(tokenizer, prompts, responses, max_length)`` returns token ids per example and a ``truncated`` flag.
``collate(encoded, rows, pad_id)`` pads a batch dynamically (to its own longest row, not to max_length).

The template, by tokenizer kind:

- **chat template** (the tokenizer has ``chat_template``): the prompt (text becomes one user message) is
  rendered with ``add_generation_prompt=True``; the response is what the template adds when the assistant
  message is appended. The template supplies its own special tokens.
- **encoder** (the tokenizer has CLS and SEP tokens, BERT family): ``[CLS] prompt [SEP] response [SEP]`` with
  token_type_ids 0 for the prompt segment and 1 for the response segment, exactly what
  ``tokenizer(prompt, response)`` gives, so plain transformers users reproduce rewardkit's scores.
- **decoder without a chat template**: ``[BOS] prompt "\\n\\nAssistant: " response [EOS]`` (BOS/EOS where the
  tokenizer has them; no EOS when EOS doubles as the pad token, else the model would read the reward at the
  token before it). The reward is read at the last non-pad token by the HF head.

A prompt given as chat messages and no chat template is flattened as ``"Role: content"`` blocks separated by
blank lines (``"User: hi\\n\\nAssistant: hello"``).

Truncation never drops a pair. When prompt + response exceed ``max_length`` the prompt is cut from the LEFT
(the end of the conversation is what the response answers). Only when the response alone does not fit is the
response cut (from the right), keeping the last ``max_length // 4`` prompt tokens so the model still sees
the question. Either way ``truncated[i]`` is True and callers count and report it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rewardkit.data.types import Prompt

DECODER_ASSISTANT_PREFIX = "\n\nAssistant: "
MIN_TEXT_TOKENS = 8
"""Tokens ``encode`` needs for text besides the template's special tokens: a smaller max_length is an error."""


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
        return Encoded([self.input_ids[i] for i in rows], None if types is None else [types[i] for i in rows],
                       [self.truncated[i] for i in rows], [self.response_cut[i] for i in rows])

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


def render(tokenizer: Any, prompt: Prompt, response: str) -> tuple[str, str]:
    """The (prompt part, response part) strings of one example, before tokenization."""
    kind = template_kind(tokenizer)
    if kind == "chat":
        from jinja2 import TemplateError  # transformers renders chat templates with jinja2

        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        try:
            head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": response}], tokenize=False)
        except TemplateError as exc:  # the template's own raise_exception("...") for conversations it rejects
            raise ChatTemplateError(str(exc)) from None
        # Templates that render the assistant turn differently after a generation prompt fall back to
        # appending the raw response: the prompt part is still the template's.
        return head, full[len(head):] if full.startswith(head) else response
    if kind == "encoder":
        return flatten_messages(prompt), response
    return flatten_messages(prompt) + DECODER_ASSISTANT_PREFIX, response


def _special_tokens(tokenizer: Any, kind: str) -> tuple[list[int], list[int], list[int]]:
    """Token ids before the prompt, between prompt and response, after the response."""
    if kind == "encoder":
        return [tokenizer.cls_token_id], [tokenizer.sep_token_id], [tokenizer.sep_token_id]
    if kind == "chat":
        return [], [], []
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    eos_is_pad = tokenizer.eos_token_id is None or tokenizer.eos_token_id == tokenizer.pad_token_id
    return bos, [], [] if eos_is_pad else [tokenizer.eos_token_id]


def fit(prompt_ids: list[int], response_ids: list[int], budget: int) -> tuple[list[int], list[int], bool]:
    """Cut (prompt, response) token lists to at most ``budget`` tokens: prompt from the left first; the
    response (from the right) only when it alone does not fit, keeping ``budget // 4`` prompt tokens."""
    if len(prompt_ids) + len(response_ids) <= budget:
        return prompt_ids, response_ids, False
    if len(response_ids) <= budget - min(len(prompt_ids), budget // 4):
        keep = budget - len(response_ids)
        return (prompt_ids[len(prompt_ids) - keep:] if keep else []), response_ids, True
    keep = min(len(prompt_ids), budget // 4)
    return (prompt_ids[len(prompt_ids) - keep:] if keep else []), response_ids[: budget - keep], True


def encode(tokenizer: Any, prompts: Sequence[Prompt], responses: Sequence[str], max_length: int) -> Encoded:
    """Turn N (prompt, response) pairs into token ids of at most ``max_length`` (see the module docstring).

    Each distinct prompt is tokenized once (pairs share prompts), responses in one batched call.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"encode: {len(prompts)} prompts but {len(responses)} responses")
    kind = template_kind(tokenizer)
    if kind == "decoder":
        ensure_pad_token(tokenizer)
    before, between, after = _special_tokens(tokenizer, kind)
    budget = max_length - len(before) - len(between) - len(after)
    if budget < MIN_TEXT_TOKENS:
        raise ValueError(f"max_length {max_length} leaves {budget} tokens for text; use at least {max_length - budget + MIN_TEXT_TOKENS}")
    rendered = []
    for row, (p, r) in enumerate(zip(prompts, responses)):
        try:
            rendered.append(render(tokenizer, p, r))
        except ChatTemplateError as exc:
            raise ChatTemplateError(exc.reason, row) from None
    heads = list(dict.fromkeys(h for h, _ in rendered))
    head_ids = dict(zip(heads, _tokenize(tokenizer, heads)))
    tail_ids = _tokenize(tokenizer, [t for _, t in rendered])
    input_ids: list[list[int]] = []
    type_ids: list[list[int]] = []
    truncated: list[bool] = []
    response_cut: list[bool] = []
    for (head, _), whole in zip(rendered, tail_ids):
        p_ids, r_ids, cut = fit(head_ids[head], whole, budget)
        first = before + p_ids + between
        input_ids.append(first + r_ids + after)
        type_ids.append([0] * len(first) + [1] * (len(r_ids) + len(after)))
        truncated.append(cut)
        response_cut.append(len(r_ids) < len(whole))
    return Encoded(input_ids, type_ids if kind == "encoder" else None, truncated, response_cut)


def _tokenize(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    # Texts are tokenized whole and cut by ``fit`` afterwards, so transformers' "longer than the maximum
    # sequence length ... will result in indexing errors" warning is wrong here: mark it as already shown.
    warned = getattr(tokenizer, "deprecation_warnings", None)
    if isinstance(warned, dict):
        warned["sequence-length-is-longer-than-the-specified-maximum"] = True
    return tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]


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
