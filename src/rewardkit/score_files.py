"""What ``rewardkit score`` reads and writes: rows of a JSONL / CSV / Parquet file in, the same rows with
their scores out (``score_rows``), in the input's order and in the output suffix's format.

A row is (prompt, response), chat ``messages`` ending in the assistant's response, or a pair (prompt,
response_a, response_b | chosen, rejected); every row of a file has the shape of the first. Files are read
by the importers' reader (``data/importers/reader.py``: .jsonl, .jsonl.gz, .csv, .parquet, a ``datasets``
folder), so a line that is not UTF-8, not JSON or not an object, a gzip that is not gzip and a Parquet file
that is not Parquet are reported as they are for ``rewardkit import``: naming the file and the line or row.
``parse_rows`` checks every row before a model is loaded.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit.atomic import atomic_file
from rewardkit.data.importers.errors import ImportFailed
from rewardkit.data.importers.reader import check_readable, iter_records
from rewardkit.data.types import Prompt, RecordError, validate_prompt
from rewardkit.score import BatchScorer, p_better

PAIR_KEYS = (("response_a", "response_b"), ("chosen", "rejected"))
OUTPUT_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".csv", ".parquet")


class InputError(ValueError):
    """Bad input for scoring: a file that cannot be read as rows, a row that is not a (prompt, response),
    messages or pair row, or an output path that cannot be written. The message names the file, the line or
    row, the field and what was expected: it is shown to the user as it is."""


def read_located_rows(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of ``path`` and where each was ("in.jsonl, line 3"), or an InputError for the first line
    that holds no row of fields (not UTF-8, not JSON, not an object) or a file that cannot be read."""
    rows: list[dict[str, Any]] = []
    places: list[str] = []
    try:
        check_readable(path)
        for location, record in iter_records(path):
            if isinstance(record, RecordError):  # the line itself ("(line)", "(row)") or one cell of it
                what = record.message if record.field.startswith("(") else str(record)
                raise InputError(f"{location}: {what}; a row is an object of fields such as prompt, response")
            rows.append(record)
            places.append(str(location))
    except ImportFailed as exc:
        raise InputError(str(exc)) from None
    return rows, places


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of ``path`` (see ``read_located_rows``)."""
    return read_located_rows(path)[0]


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
        raise InputError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects, got {describe(messages)}")
    try:
        validate_prompt(messages, "messages")  # every turn an object with a known role and text content
    except RecordError as exc:
        raise InputError(f"{where}: {exc}") from None
    last = messages[-1]
    if last["role"] != "assistant":
        raise InputError(f"{where}: the last message must be the assistant's response (role 'assistant'), got role {last['role']!r}")
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
    """'pair', 'messages' or 'single', or an InputError naming what was expected."""
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected an object of fields (prompt, response, ...), got {describe(row)}")
    if any(a in row and b in row for a, b in PAIR_KEYS):
        return "pair"
    if "messages" in row:
        return "messages"
    if "response" in row:
        return "single"
    raise InputError(
        f"{where}: expected fields prompt+response, messages, or prompt+response_a+response_b "
        f"(or prompt+chosen+rejected); got {sorted(str(k) for k in row)}"
    )


@dataclass
class ParsedRows:
    """The rows' shape and the (prompt, response) texts to score, in order (two per pair row)."""

    kind: str
    prompts: list[Prompt]
    responses: list[str]


def parse_rows(rows: list[dict[str, Any]], where: Sequence[str] | None = None) -> ParsedRows:
    """Check every row and take out the texts to score. Needs no model: a caller checks a whole file before
    loading one. Errors name the row (``where[i]``, e.g. "in.jsonl, line 3"; default "row i"), the field
    and what was expected."""
    if not rows:
        return ParsedRows("single", [], [])
    places = list(where) if where is not None else [f"row {i}" for i in range(1, len(rows) + 1)]
    kind = row_kind(rows[0], places[0])
    prompts: list[Prompt] = []
    responses: list[str] = []
    for row, place in zip(rows, places, strict=True):
        if row_kind(row, place) != kind:
            raise InputError(f"{place}: all rows must have the same shape as the first ({kind})")
        if kind == "messages":
            p, r = split_messages(row["messages"], place)
            prompts.append(p)
            responses.append(r)
            continue
        prompt = row_prompt(row, place)
        keys = next(k for k in PAIR_KEYS if k[0] in row and k[1] in row) if kind == "pair" else ("response",)
        for key in keys:
            if not isinstance(row[key], str):
                raise InputError(f"{place}: field '{key}': expected text, got {describe(row[key])}")
            prompts.append(prompt)
            responses.append(row[key])
    return ParsedRows(kind, prompts, responses)


def score_rows(
    scorer: BatchScorer, rows: list[dict[str, Any]], on_batch: Any = None, parsed: ParsedRows | None = None
) -> list[dict[str, Any]]:
    """Each row with its scores added: score, score_normalized, [score_std], truncated; pairs get
    score_a, score_b, p_a_better (calibrated), truncated_a/_b. ``parsed``: ``parse_rows(rows)`` when the
    caller has already checked them."""
    if parsed is None:
        parsed = parse_rows(rows)
    if not rows:
        return []
    kind = parsed.kind
    res = scorer.score(parsed.prompts, parsed.responses, on_batch=on_batch)
    out = []
    if kind == "pair":
        n = len(rows)
        a, b = res.raw[0::2], res.raw[1::2]
        p = p_better(a, b, scorer.card.temperature)
        for i, row in enumerate(rows):
            extra = {"score_a": float(a[i]), "score_b": float(b[i]), "p_a_better": float(p[i]),
                     "score_a_normalized": float(res.normalized[2 * i]), "score_b_normalized": float(res.normalized[2 * i + 1]),
                     "truncated_a": res.truncated[2 * i], "truncated_b": res.truncated[2 * i + 1]}
            if res.std is not None:
                extra |= {"score_a_std": float(res.std[2 * i]), "score_b_std": float(res.std[2 * i + 1])}
            out.append({**row, **extra})
        assert len(out) == n
        return out
    for i, row in enumerate(rows):
        extra = {"score": float(res.raw[i]), "score_normalized": float(res.normalized[i]), "truncated": res.truncated[i]}
        if res.std is not None:
            extra["score_std"] = float(res.std[i])
        out.append({**row, **extra})
    return out


def check_output_path(path: Path, input_path: Path | None = None) -> None:
    """An InputError unless ``path`` is a file ``write_rows`` writes: a format it knows, not a folder, and
    not the input file itself (checked before any scoring; whether its folder can be written is the CLI's
    ``check_out_file``)."""
    if not path.name.lower().endswith(OUTPUT_SUFFIXES):
        raise InputError(f"{path}: unknown output format; use {', '.join(OUTPUT_SUFFIXES)}")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; name a file to write, e.g. {path / 'scored.jsonl'}")
    if input_path is not None and path.exists() and input_path.exists() and os.path.samefile(path, input_path):
        raise InputError(f"{path}: is the input file; writing the scores there would replace it: choose another output file")


def write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    """Write rows atomically (``rewardkit.atomic``) in the format of ``path``'s suffix."""
    check_output_path(path)
    name = path.name.lower()
    with atomic_file(path) as tmp:
        if name.endswith(".parquet"):
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(rows), tmp)
        elif name.endswith(".csv"):
            fields = list(dict.fromkeys(k for r in rows for k in r))
            with tmp.open("w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, fieldnames=fields)
                w.writeheader()
                for r in rows:
                    w.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()})
        else:
            with (gzip.open if name.endswith(".gz") else open)(tmp, "wt", encoding="utf-8") as f:
                for r in rows:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
