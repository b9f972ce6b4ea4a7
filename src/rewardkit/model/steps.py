"""How a (prompt, list of steps) becomes process-reward-model input: ONE function for training and for scoring.

``encode_steps(tokenizer, prompts, steps, max_length, step_id)`` places the step token after every step and
returns the ids with the positions of those tokens: a process reward model (PRM) reads one logit at each.

    [CLS] prompt [SEP] step_1 <step> step_2 <step> ... step_n <step> [SEP]     encoder (token types 0 | 1)
    [BOS] prompt "\\n\\nAssistant: " step_1 <step> ... step_n <step>            decoder without a chat template
    chat template rendered with the generation prompt, then step_1 <step> ...   chat

The step token: the separator (``TrainConfig.step_separator``, default "\\n") when the tokenizer writes it as
exactly one token of its own (GPT-2's "Ċ" for "\\n"), else the special token ``<|step|>``, added to the
tokenizer (and the model's embeddings grown by one row) at training time: BERT's tokenizer normalizes "\\n"
away entirely, so a separator it cannot see would give the model nothing to read. The card names the token
(``RewardCard.step_token``); a plain-transformers user reads the logits where ``input_ids == step_token_id``.

Each step is tokenized on its own, its text as text (``split_special_tokens``: a step that writes "<|step|>"
or "[SEP]" gets ordinary tokens, never a forged step boundary), as TRL's PRMTrainer tokenizes completions.

Truncation never drops a solution and never silently drops a step's label: the prompt is cut from the LEFT
first, down to ``max_length // 4`` tokens; only then are whole steps dropped from the END (their positions are
missing: ``steps_cut[i]`` counts them, training ignores their labels, scoring returns None for them); a first
step that alone does not fit is cut from the right and keeps its step token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rewardkit.model.formatting import (
    DECODER_ASSISTANT_PREFIX,
    ChatTemplateError,
    Encoded,
    chat_messages,
    ensure_pad_token,
    flatten_messages,
    template_kind,
)
from rewardkit.records import Prompt

DEFAULT_STEP_SEPARATOR = "\n"
STEP_TOKEN = "<|step|>"
"""The special token added to a tokenizer that has no single token of its own for the step separator."""


@dataclass
class StepEncoded(Encoded):
    """Token ids of N solutions and where their step tokens are: ``positions[i]`` the index in row i of each
    kept step's token (a dropped step has none); ``steps_cut[i]`` how many steps were dropped from the end."""

    positions: list[list[int]] | None = None
    steps_cut: list[int] | None = None

    def select(self, rows: Sequence[int]) -> StepEncoded:
        base = super().select(rows)
        return StepEncoded(
            base.input_ids,
            base.token_type_ids,
            base.truncated,
            base.response_cut,
            [self.step_positions[i] for i in rows],
            [self.cut_steps[i] for i in rows],
        )

    @property
    def step_positions(self) -> list[list[int]]:
        return self.positions or [[] for _ in self.input_ids]

    @property
    def cut_steps(self) -> list[int]:
        return self.steps_cut or [0] * len(self.input_ids)


def split_steps(response: str, separator: str = DEFAULT_STEP_SEPARATOR) -> list[str]:
    """A response's steps: its text split at ``separator``, blank pieces (a trailing newline) left out."""
    return [s for s in response.split(separator) if s.strip()]


def step_token_for(tokenizer: Any, separator: str = DEFAULT_STEP_SEPARATOR) -> str | None:
    """The token the separator is written as when the tokenizer has exactly one for it (a decoder's "\\n"),
    else None (then ``add_step_token`` adds ``STEP_TOKEN``)."""
    ids = tokenizer(separator, add_special_tokens=False)["input_ids"]
    if len(ids) != 1 or ids[0] in set(tokenizer.all_special_ids):
        return None
    return str(tokenizer.convert_ids_to_tokens(ids[0]))


def add_step_token(tokenizer: Any, separator: str = DEFAULT_STEP_SEPARATOR) -> str:
    """The step token of this tokenizer for ``separator``, adding ``STEP_TOKEN`` as a special token when the
    tokenizer has no single token for it (the caller grows the model's embeddings to ``len(tokenizer)``)."""
    own = step_token_for(tokenizer, separator)
    if own is not None:
        return own
    if STEP_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [STEP_TOKEN]})
    return STEP_TOKEN


def step_token_id(tokenizer: Any, token: str) -> int:
    """The id of a saved model's step token; a ValueError when its tokenizer does not know it."""
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise ValueError(f"the tokenizer has no step token {token!r} (rewardkit.json step_token)")
    return int(token_id)


def _prompt_ids(tokenizer: Any, kind: str, prompt: Prompt) -> tuple[list[int], list[int], int]:
    """(fixed start, prompt ids that may be cut from the left, fixed end) of one prompt's part."""
    if kind == "encoder":
        ids = tokenizer(flatten_messages(prompt), add_special_tokens=False)["input_ids"]
        return [tokenizer.cls_token_id], ids, tokenizer.sep_token_id
    if kind == "chat":
        try:
            text = tokenizer.apply_chat_template(chat_messages(prompt), tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # jinja's TemplateError, raised by the template's raise_exception
            raise ChatTemplateError(str(exc)) from None
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        keep = 1 if ids and ids[0] in set(tokenizer.all_special_ids) else 0  # BOS survives the cut
        return ids[:keep], ids[keep:], -1
    ids = tokenizer(flatten_messages(prompt) + DECODER_ASSISTANT_PREFIX, add_special_tokens=False)["input_ids"]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return bos, ids, -1


def fit_steps(prompt_ids: list[int], step_ids: list[list[int]], budget: int) -> tuple[list[int], list[list[int]], bool]:
    """(kept prompt ids, kept steps' ids, was anything cut) within ``budget`` tokens, every step's ids
    already ending with its step token: the prompt from the left down to budget // 4 tokens, then whole steps
    from the end, then the first step's text from the right (its step token kept)."""
    body = sum(len(s) for s in step_ids)
    if len(prompt_ids) + body <= budget:
        return prompt_ids, step_ids, False
    keep = max(budget - body, min(len(prompt_ids), budget // 4))
    prompt_ids = prompt_ids[len(prompt_ids) - keep :] if keep else []
    room, kept = budget - len(prompt_ids), []
    for ids in step_ids:
        if len(ids) > room:
            break
        kept.append(ids)
        room -= len(ids)
    if not kept:  # the first step alone does not fit: its text cut from the right, its step token kept
        kept = [step_ids[0][: max(0, room - 1)] + step_ids[0][-1:]]
    return prompt_ids, kept, True


def encode_steps(
    tokenizer: Any, prompts: Sequence[Prompt], steps: Sequence[Sequence[str]], max_length: int, step_id: int
) -> StepEncoded:
    """N (prompt, steps) into ids of at most ``max_length`` with each kept step's token position (module
    docstring). A solution without steps is a ValueError naming its row."""
    if len(prompts) != len(steps):
        raise ValueError(f"encode_steps: {len(prompts)} prompts but {len(steps)} step lists")
    kind = template_kind(tokenizer)
    if kind == "decoder":
        ensure_pad_token(tokenizer)
    heads: dict[str, tuple[list[int], list[int], int]] = {}
    all_steps = [s for row in steps for s in row]
    warned = getattr(tokenizer, "deprecation_warnings", None)  # rows are cut below: the "too long" warning misleads
    if isinstance(warned, dict):
        warned["sequence-length-is-longer-than-the-specified-maximum"] = True
    options = {"split_special_tokens": True}
    tokenized = tokenizer(all_steps, add_special_tokens=False, **options)["input_ids"] if all_steps else []
    out = StepEncoded([], [] if kind == "encoder" else None, [], [])
    all_positions: list[list[int]] = []
    steps_cut: list[int] = []
    start = 0
    for row, (prompt, row_steps) in enumerate(zip(prompts, steps)):
        if not row_steps:
            raise ValueError(f"input {row}: no steps (a solution needs at least one non-empty step)")
        key = prompt if isinstance(prompt, str) else repr(prompt)
        if key not in heads:
            try:
                heads[key] = _prompt_ids(tokenizer, kind, prompt)
            except ChatTemplateError as exc:
                raise ChatTemplateError(exc.reason, row) from None
        before, prompt_ids, end = heads[key]
        step_ids = [ids + [step_id] for ids in tokenized[start : start + len(row_steps)]]
        start += len(row_steps)
        after = [end] if end >= 0 else []  # the encoder's closing [SEP]
        between = [tokenizer.sep_token_id] if kind == "encoder" else []
        budget = max_length - len(before) - len(between) - len(after)
        if budget < 2:
            raise ValueError(f"max_length {max_length} leaves no room for a step")
        kept_prompt, kept, cut = fit_steps(prompt_ids, step_ids, budget)
        first = before + kept_prompt + between
        ids, positions = list(first), []
        for s in kept:
            ids += s
            positions.append(len(ids) - 1)
        ids += after
        out.input_ids.append(ids)
        if out.token_type_ids is not None:
            out.token_type_ids.append([0] * len(first) + [1] * (len(ids) - len(first)))
        out.truncated.append(cut)
        out.response_cut.append(len(kept) < len(step_ids) or len(kept[-1]) < len(step_ids[len(kept) - 1]))
        all_positions.append(positions)
        steps_cut.append(len(row_steps) - len(kept))
    out.positions, out.steps_cut = all_positions, steps_cut
    return out


def step_logits(token_logits: torch.Tensor) -> torch.Tensor:
    """A token classifier's logits [B, L, C] -> [B, L], the logit of "this step is good": the one output of a
    num_labels=1 head (rewardkit's), or l_good - l_bad of a num_labels=2 head (TRL's PRMTrainer; softmax over
    two classes is the sigmoid of their difference)."""
    if token_logits.shape[-1] == 1:
        return token_logits[..., 0]
    if token_logits.shape[-1] == 2:
        return token_logits[..., 1] - token_logits[..., 0]
    raise ValueError(f"a process reward model has 1 or 2 outputs per token, got {token_logits.shape[-1]}")


class StepForward(torch.nn.Module):
    """``StepForward(model)(**batch) -> [B, L]``: every position's step logit (float32) of a token classifier.
    A module so that training can wrap it in DistributedDataParallel."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        return step_logits(self.model(**batch).logits.float())


def gather_positions(logits: torch.Tensor, positions: Sequence[Sequence[int]]) -> list[torch.Tensor]:
    """[B, L] step logits -> per row the logits at its step tokens ([n_i] each), in step order."""
    return [logits[b, list(pos)] for b, pos in enumerate(positions)]


# token classifiers whose encoder layers are BERT layers and whose head is classifier(dropout(h)) per token
FAST_TOKEN_CLASSIFIERS = (
    "BertForTokenClassification",
    "RobertaForTokenClassification",
    "XLMRobertaForTokenClassification",
)


def fast_step_model(model: Any) -> Any | None:
    """The HF model whose last layer can be computed at the step tokens only (a peft model's base model), or None
    when it must run its own forward (``forward.last_layer_path``'s rules, for token classifiers)."""
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    config = model.config
    if type(model).__name__ not in FAST_TOKEN_CLASSIFIERS or config.is_decoder:
        return None
    if (
        getattr(config, "add_cross_attention", False)
        or getattr(config, "position_embedding_type", "absolute") != "absolute"
    ):
        return None
    return model


def logits_at_steps(
    model: Any, batch: dict[str, torch.Tensor], positions: Sequence[Sequence[int]]
) -> list[torch.Tensor]:
    """Each row's step logits ([n_i], float32) of a collated batch, read at its step tokens: the scorer's path.

    For BERT-family token classifiers the last layer runs only at the step tokens (keys and values over every
    token, queries at the n_i step tokens: ``forward.bert_layer``), as ``forward.first_position_logits`` does
    for the outcome head at its one position: the same weights and numbers up to float rounding (tested), and
    about 1/num_layers less work, so a PRM scores as fast as an outcome model on the same texts."""
    from rewardkit.model.forward import bert_layer

    inner = fast_step_model(model)
    if inner is None:
        return gather_positions(step_logits(model(**batch).logits.float()), positions)
    ids = batch["input_ids"]
    mask = batch.get("attention_mask", torch.ones_like(ids))
    base = inner.base_model
    hidden = base.embeddings(input_ids=ids, token_type_ids=batch.get("token_type_ids"))  # [B, L, H]
    keep = None if bool(mask.all()) else mask.bool()[:, None, None, :]
    *lower, last = base.encoder.layer
    for layer in lower:
        hidden = bert_layer(layer, hidden, hidden, keep)
    width = max(1, max((len(p) for p in positions), default=1))
    index = torch.zeros((len(positions), width), dtype=torch.long, device=ids.device)  # [B, Q], 0-padded
    for b, pos in enumerate(positions):
        index[b, : len(pos)] = torch.tensor(list(pos), dtype=torch.long)
    queries = hidden.gather(1, index[:, :, None].expand(-1, -1, hidden.shape[-1]))  # [B, Q, H]
    logits = step_logits(inner.classifier(inner.dropout(bert_layer(last, queries, hidden, keep))).float())  # [B, Q]
    return [logits[b, : len(pos)] for b, pos in enumerate(positions)]
