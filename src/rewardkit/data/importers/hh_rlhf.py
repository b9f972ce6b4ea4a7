"""Anthropic HH-RLHF transcripts: ``{"chosen": "\\n\\nHuman: ...\\n\\nAssistant: ...", "rejected": ...}``.

Each side is a whole dialogue. Both are parsed into chat messages (Human -> user, Assistant -> assistant);
the messages they share become the prompt conversation and the two final assistant replies the responses
(``chosen`` is response ``a``, choice ``a``). Consecutive turns by the same speaker (a few real transcripts
have "Assistant: ...\n\nAssistant: ...") are one turn. An empty final reply is kept: the transcript has the
"Assistant:" turn, so the assistant said nothing, and that is what the crowd worker judged (3 of the 1,812
harmless-base training pairs prefer the empty reply, a silent refusal). Two identical replies are rejected.
Annotator: ``hh-rlhf-crowdworkers``, kind ``human``.
"""

from __future__ import annotations

import re
from typing import Any

from rewardkit.data.importers import fields
from rewardkit.data.importers.options import ImportOptions
from rewardkit.data.importers.trl import split_messages
from rewardkit.records import Annotator, Comparison, Message, PairwiseJudgement, RecordError, Response

_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def parse_transcript(transcript: str, name: str) -> list[Message]:
    """``"\\n\\nHuman: hi\\n\\nAssistant: hello"`` -> ``[{"role": "user", ...}, {"role": "assistant", ...}]``."""
    parts = _TURN.split(transcript)
    # parts = [text before the first turn, speaker, content, speaker, content, ...]
    if len(parts) < 3:
        raise RecordError(name, "expected a transcript of '\\n\\nHuman: ...\\n\\nAssistant: ...' turns, found no turn")
    if parts[0].strip():
        raise RecordError(name, f"text before the first 'Human:' turn: {parts[0][:40]!r}")
    messages: list[Message] = []
    for speaker, content in zip(parts[1::2], parts[2::2], strict=True):
        role = _ROLES[speaker]
        if messages and messages[-1]["role"] == role:
            # A few real transcripts repeat a speaker ("Assistant: ...\n\nAssistant: ..."): one turn.
            messages[-1] = {"role": role, "content": f"{messages[-1]['content']}\n\n{content.strip()}".strip()}
        else:
            messages.append({"role": role, "content": content.strip()})
    return messages


def parse(record: dict[str, Any], options: ImportOptions) -> Comparison:
    chosen = parse_transcript(fields.text(record, "chosen"), "chosen")
    rejected = parse_transcript(fields.text(record, "rejected"), "rejected")
    prompt, a, b = split_messages(chosen, rejected, allow_empty=True)
    fields.distinct(a, b)
    return Comparison(
        prompt=prompt,
        responses=(Response(a), Response(b)),
        judgement=PairwiseJudgement("a"),
        annotator=Annotator(options.annotator_id or "hh-rlhf-crowdworkers", options.annotator_kind or "human"),
        source=options.source,
    )
