"""TRL preference datasets (https://huggingface.co/docs/trl/dataset_formats#preference).

Four shapes, told apart per record:

==========================  ==================================================================================
standard, explicit prompt   ``{"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}``
standard, implicit prompt   ``{"chosen": "The sky is blue.", "rejected": "The sky is green."}``
conversational, explicit    ``{"prompt": [{"role": "user", ...}], "chosen": [{"role": "assistant", ...}], ...}``
conversational, implicit    ``{"chosen": [user, assistant], "rejected": [user, assistant]}``
==========================  ==================================================================================

An optional ``margin`` (a number) is kept as the judgement's margin. Each record becomes a pairwise
comparison with ``chosen`` as response ``a`` and choice ``a``.

Implicit prompts are split off the shared prefix, as TRL's own ``extract_prompt`` does: for messages, the
longest common list of messages (what remains of each side must be one assistant message); for text, the
longest common prefix cut back to a word boundary (what remains is the response).

A text ``prompt`` beside whole conversations (``HuggingFaceH4/ultrafeedback_binarized``: ``"prompt": "..."``,
``"chosen": [user, assistant]``) is read as TRL's ``maybe_extract_prompt`` reads it: the prompt is the
messages chosen and rejected share, and the text column is left aside (it repeats the user turn).
"""

from __future__ import annotations

from typing import Any

from rewardkit.data.importers import fields
from rewardkit.data.importers.options import ImportOptions
from rewardkit.records import Annotator, Comparison, Message, PairwiseJudgement, Prompt, RecordError, Response


def split_messages(
    chosen: list[Message],
    rejected: list[Message],
    names: tuple[str, str] = ("chosen", "rejected"),
    *,
    allow_empty: bool = False,
) -> tuple[list[Message], str, str]:
    """Split two conversations into (shared prompt messages, final chosen reply, final rejected reply).
    ``allow_empty``: an empty final reply is a real reply (HH-RLHF), not a mistake (TRL files)."""
    if chosen == rejected:
        raise RecordError(names[1], f"is identical to {names[0]}")
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == 0:
        raise RecordError(names[0], f"{names[0]} and {names[1]} share no opening message, so there is no prompt")
    replies = []
    for name, conversation in zip(names, (chosen, rejected), strict=True):
        rest = conversation[shared:]
        if len(rest) != 1 or rest[0]["role"] != "assistant":
            if not rest:
                raise RecordError(name, "has no reply after the messages it shares with the other side")
            roles = ", ".join(m["role"] for m in rest)
            raise RecordError(
                name,
                f"expected one final assistant message after the {shared} shared messages, got {len(rest)} ({roles})",
            )
        if not allow_empty and not rest[0]["content"].strip():
            raise RecordError(f"{name}[{shared}].content", "is empty")
        replies.append(rest[0]["content"])
    return chosen[:shared], replies[0], replies[1]


def split_text(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split two texts at their longest common prefix, cut back to whitespace so no word is split."""
    n = 0
    limit = min(len(chosen), len(rejected))
    while n < limit and chosen[n] == rejected[n]:
        n += 1
    if n == len(chosen) == len(rejected):
        raise RecordError("rejected", "is identical to chosen")
    cut = n
    while cut > 0 and not chosen[cut - 1].isspace():
        cut -= 1
    prompt = chosen[:cut].rstrip()
    if not prompt:
        raise RecordError("prompt", "is missing, and chosen and rejected share no opening text to take it from")
    return prompt, chosen[cut:], rejected[cut:]


def _response(value: Any, name: str) -> str:
    """A completion: text, or a conversational completion (a list ending in one assistant message)."""
    if isinstance(value, str):
        if not value.strip():
            raise RecordError(name, "is empty")
        return value
    msgs = fields.messages(value, name)
    if len(msgs) != 1 or msgs[0]["role"] != "assistant":
        raise RecordError(
            name, f"expected one assistant message, got {len(msgs)} message(s) ({', '.join(m['role'] for m in msgs)})"
        )
    if not msgs[0]["content"].strip():
        raise RecordError(f"{name}[0].content", "is empty")
    return msgs[0]["content"]


def pair(record: dict[str, Any]) -> tuple[Prompt, str, str]:
    """(prompt, chosen text, rejected text) of a TRL record in any of its four shapes."""
    chosen, rejected = fields.required(record, "chosen"), fields.required(record, "rejected")
    whole_conversations = all(isinstance(v, list) and len(v) > 1 for v in (chosen, rejected))
    if isinstance(record.get("prompt"), str) and whole_conversations:  # see the module docstring
        prompt, c, r = split_messages(fields.messages(chosen, "chosen"), fields.messages(rejected, "rejected"))
    elif record.get("prompt") is not None:
        prompt = fields.prompt(record["prompt"], "prompt")
        c, r = _response(chosen, "chosen"), _response(rejected, "rejected")
    elif isinstance(chosen, list) or isinstance(rejected, list):
        prompt, c, r = split_messages(fields.messages(chosen, "chosen"), fields.messages(rejected, "rejected"))
    else:
        for name, value in (("chosen", chosen), ("rejected", rejected)):
            if not isinstance(value, str):
                raise RecordError(name, f"expected text or a list of chat messages, got {type(value).__name__}")
            if not value.strip():
                raise RecordError(name, "is empty")
        prompt, c, r = split_text(chosen, rejected)
    fields.distinct(c, r)
    return prompt, c, r


def parse(record: dict[str, Any], options: ImportOptions) -> Comparison:
    prompt, chosen, rejected = pair(record)
    return Comparison(
        prompt=prompt,
        responses=(Response(chosen), Response(rejected)),
        judgement=PairwiseJudgement("a", margin=fields.optional_number(record, "margin")),
        annotator=Annotator(options.annotator_id or options.source, options.annotator_kind or "human"),
        source=options.source,
    )
