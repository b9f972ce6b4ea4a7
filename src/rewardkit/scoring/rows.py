"""The rows ``rewardkit score`` reads: a (prompt, response), chat ``messages`` ending in the assistant's response,
or a pair (prompt, response_a, response_b | chosen, rejected), every row of a file shaped like the first.

``located_rows`` streams a file through the importers' reader (``data/importers/reader.py``: .jsonl, .jsonl.gz,
.csv, .parquet, a ``datasets`` folder), so a line that is not UTF-8, not JSON or not an object is reported as
``rewardkit import`` reports it; ``row_texts`` / ``parse_rows`` check each row and take out the texts to score.
Every error is an ``InputError`` naming the file, the line or row, the field and what was expected.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit.data.importers.errors import ImportFailed
from rewardkit.data.importers.reader import check_readable, iter_records
from rewardkit.records import Prompt, RecordError, validate_prompt

PAIR_KEYS = (("response_a", "response_b"), ("chosen", "rejected"))


class InputError(ValueError):
    """Bad input for scoring: a file that cannot be read as rows, a row that is not a (prompt, response),
    messages or pair row, a conversation the model's chat template refuses, or an output path that cannot
    be written. The message names the file, the line or row, the field and what was expected: it is shown
    to the user as it is."""


def located_rows(path: Path) -> Iterator[tuple[dict[str, Any], str]]:
    """Stream the rows of ``path`` and where each was ("in.jsonl, line 3"); an InputError for the first
    line that holds no row of fields (not UTF-8, not JSON, not an object) or a file that cannot be read."""
    try:
        check_readable(path)
        for location, record in iter_records(path):
            if isinstance(record, RecordError):  # the line itself ("(line)", "(row)") or one cell of it
                what = record.message if record.field.startswith("(") else str(record)
                raise InputError(f"{location}: {what}; a row is an object of fields such as prompt, response")
            yield record, str(location)
    except ImportFailed as exc:
        raise InputError(str(exc)) from None


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every row of ``path`` in a list (see ``located_rows``)."""
    return [row for row, _ in located_rows(path)]


def describe(value: Any) -> str:
    """A value's JSON kind and a short preview, for 'expected X, got ...' messages."""
    kinds = {str: "text", bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "an object"}
    if value is None:
        return "null"
    preview = json.dumps(value, ensure_ascii=False, default=str)
    return f"{kinds.get(type(value), type(value).__name__)} {preview[:40] + '...' if len(preview) > 40 else preview}"


def split_messages(messages: Any, where: str) -> tuple[Prompt, str]:
    """A chat ending in an assistant turn -> (the turns before it, its content)."""
    if isinstance(messages, str):
        try:
            messages = json.loads(messages)  # CSV cells hold JSON
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: 'messages' is text but not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(messages, list) or not messages:
        raise InputError(
            f"{where}: 'messages' must be a non-empty list of {{role, content}} objects, got {describe(messages)}"
        )
    try:
        validate_prompt(messages, "messages")  # every turn an object with a known role and text content
    except RecordError as exc:
        raise InputError(f"{where}: {exc}") from None
    last = messages[-1]
    if last["role"] != "assistant":
        raise InputError(
            f"{where}: the last message must be the assistant's response (role 'assistant'), got role {last['role']!r}"
        )
    return [dict(role=m["role"], content=m["content"]) for m in messages[:-1]], last["content"]


def chat_cell(prompt: Any) -> Any:
    """A prompt as read: text, or a list of messages; a CSV cell holding a JSON list of objects (as
    ``write_rows`` writes a chat prompt) is that list again, to be checked as messages like any other."""
    if isinstance(prompt, str) and prompt.startswith("[{"):
        try:
            value = json.loads(prompt)
        except json.JSONDecodeError:
            return prompt
        if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
            return value  # checked as messages by the caller; JSON that is not a chat stays text
    return prompt


def row_prompt(row: dict[str, Any], where: str) -> Prompt:
    """The row's prompt: text (empty or absent: a response scored with no prompt), or checked messages."""
    raw = row.get("prompt")
    prompt = "" if raw is None else chat_cell(raw)  # absent, null or an empty CSV cell: no prompt
    if isinstance(prompt, str):
        return prompt
    try:
        return validate_prompt(prompt, "prompt")
    except RecordError as exc:
        raise InputError(f"{where}: {exc}") from None


def row_kind(row: dict[str, Any], where: str) -> str:
    """'pair', 'messages', 'steps' (a process reward model's solution: prompt + a list of steps) or 'single', or
    an InputError naming what was expected."""
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected an object of fields (prompt, response, ...), got {describe(row)}")
    if any(a in row and b in row for a, b in PAIR_KEYS):
        return "pair"
    if "messages" in row:
        return "messages"
    if "steps" in row:
        return "steps"
    if "response" in row:
        return "single"
    raise InputError(
        f"{where}: expected fields prompt+response, messages, prompt+steps, or prompt+response_a+response_b "
        f"(or prompt+chosen+rejected); got {sorted(str(k) for k in row)}"
    )


def row_texts(row: dict[str, Any], place: str, kind: str) -> list[tuple[Prompt, str]]:
    """The (prompt, response) texts to score in one row of shape ``kind`` (two for a pair), or an InputError
    naming the row (``place``), the field and what was expected."""
    if row_kind(row, place) != kind:
        raise InputError(f"{place}: all rows must have the same shape as the first ({kind})")
    if kind == "messages":
        return [split_messages(row["messages"], place)]
    prompt = row_prompt(row, place)
    if kind == "steps":
        steps = row["steps"]
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s.strip() for s in steps):
            raise InputError(
                f"{place}: field 'steps': expected a non-empty list of non-empty texts, got {describe(steps)}"
            )
        return [(prompt, tuple(steps))]  # a tuple: the scorer reads it as the steps themselves, never re-split
    keys = next(k for k in PAIR_KEYS if k[0] in row and k[1] in row) if kind == "pair" else ("response",)
    for key in keys:
        if not isinstance(row[key], str):
            raise InputError(f"{place}: field '{key}': expected text, got {describe(row[key])}")
    return [(prompt, row[key]) for key in keys]


@dataclass
class ParsedRows:
    """The rows' shape and the (prompt, response) texts to score, in order (two per pair row)."""

    kind: str
    prompts: list[Prompt]
    responses: list[str]

    @classmethod
    def of(cls, kind: str, texts: list[tuple[Prompt, str]]) -> ParsedRows:
        return cls(kind, [p for p, _ in texts], [r for _, r in texts])


def parse_rows(rows: Sequence[dict[str, Any]], where: Sequence[str] | None = None) -> ParsedRows:
    """Check every row and take out the texts to score. Needs no model. Errors name the row (``where[i]``,
    e.g. "in.jsonl, line 3"; default "row i"), the field and what was expected."""
    if not rows:
        return ParsedRows("single", [], [])
    places = list(where) if where is not None else [f"row {i}" for i in range(1, len(rows) + 1)]
    kind = row_kind(rows[0], places[0])
    return ParsedRows.of(
        kind, [text for row, place in zip(rows, places, strict=True) for text in row_texts(row, place, kind)]
    )


def text_chars(texts: list[tuple[Prompt, str]]) -> int:
    """Characters of prompt and response text: what a chunk's tokenization costs (memory) grows with."""
    return sum(
        (len(r) if isinstance(r, str) else sum(map(len, r)))
        + (len(p) if isinstance(p, str) else sum(len(m["content"]) for m in p))
        for p, r in texts
    )


def text_key(prompt: Prompt, response: str) -> bytes:
    """A short digest of a (prompt, response): the same texts, the same key (16 bytes to remember, not the text)."""
    return hashlib.blake2b(json.dumps([prompt, response]).encode(), digest_size=16).digest()
