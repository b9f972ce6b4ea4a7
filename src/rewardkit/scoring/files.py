"""What ``rewardkit score`` reads and writes: rows of a JSONL / CSV / Parquet file in, the same rows with
their scores out, in the input's order and in the output suffix's format.

A row is (prompt, response), chat ``messages`` ending in the assistant's response, or a pair (prompt,
response_a, response_b | chosen, rejected); every row of a file has the shape of the first. Files are read
by the importers' reader (``data/importers/reader.py``: .jsonl, .jsonl.gz, .csv, .parquet, a ``datasets``
folder), so a line that is not UTF-8, not JSON or not an object, a gzip that is not gzip and a Parquet file
that is not Parquet are reported as they are for ``rewardkit import``: naming the file and the line or row.

A file is streamed two or three times, so memory follows the chunk, not the corpus (a million rows tokenized
at once held ~65 GB): ``check_input`` reads every row once, checking it and counting, before a model is
loaded; for a model with a chat template, ``check_chat_template`` renders every distinct conversation with it
once the model is loaded (a template refuses some: a system turn, roles that do not alternate); ``score_file``
then reads, scores and writes a chunk at a time (``CHUNK_ROWS`` rows or ``CHUNK_CHARS`` characters of text,
whichever comes first), into a temporary file renamed into place at the end. Every error is found before the
first chunk is scored: the output appears only whole, so one found later threw away all the scoring before it.
``score_rows`` (and ``writers.write_rows``) are the in-memory versions for a list a caller already holds.
Rows are read and checked in ``rows``; written in ``writers``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.atomic import atomic_file
from rewardkit.model.calibration import p_better
from rewardkit.model.formatting import ChatTemplateError, render, template_kind
from rewardkit.records import Prompt
from rewardkit.scoring.rows import (
    InputError,
    ParsedRows,
    located_rows,
    parse_rows,
    row_kind,
    row_texts,
    text_chars,
    text_key,
)
from rewardkit.scoring.scorer import BatchScorer, ScoreResult
from rewardkit.scoring.writers import RowWriter, check_output_path, merge_schema, writes_parquet

# A chunk is tokenized whole (at full length, before truncation: ~35 bytes of Python ints per character of
# text), so its text bounds the memory: 4M characters (~1,800 AlpacaEval rows) peaked 135-170 MB above a
# one-row run. Rows sort by length within a chunk; a thousand rows already pack token-budget batches with
# almost no padding.
CHUNK_ROWS = 10_000
CHUNK_CHARS = 4_000_000
RECENT_TEXTS = 100_000  # texts whose results score_file remembers (RecentScores): ~20 MB
SCHEMA_ROWS = 1_000  # rows per look at the values' Parquet types in check_input


@dataclass
class InputSummary:
    """What ``check_input``'s pass over a whole file learned, holding no row: enough to write the output
    a chunk at a time (a CSV header and a Parquet schema must come before the first row)."""

    kind: str
    rows: int
    fields: list[str]
    """Every field name of the input, in first-seen order (rows of a JSONL file may differ)."""
    schema: Any = None
    """The pyarrow schema of all rows (only when asked for: a Parquet output)."""
    conversations: int | None = None
    """Distinct conversations the model's chat template rendered (``check_chat_template``; 0 for a model
    without one); None until they are checked (``score_file`` checks them first)."""


def check_input(path: Path, schema: bool = False) -> InputSummary:
    """Read every row of ``path`` once, checking it as ``parse_rows`` does, and keep only counts and field
    names: the whole file is checked before a model loads, holding one row (``SCHEMA_ROWS`` with
    ``schema``). ``schema``: also learn the Parquet column types of all rows (a column null at first and text
    later is text; a column holding numbers in some rows and text in others is an InputError, before any
    scoring)."""
    kind, rows, fields = "", 0, {}
    arrow_schema, batch, batch_places = None, [], []
    for row, place in located_rows(path):
        kind = kind or row_kind(row, place)
        row_texts(row, place, kind)
        rows += 1
        fields.update(dict.fromkeys(row))
        if schema:
            batch.append(row)
            batch_places.append(place)
            if len(batch) == SCHEMA_ROWS:
                arrow_schema = merge_schema(arrow_schema, batch, batch_places)
                batch, batch_places = [], []
    if not rows:
        raise InputError(f"{path}: no rows to score")
    if batch:
        arrow_schema = merge_schema(arrow_schema, batch, batch_places)
    return InputSummary(kind, rows, list(fields), arrow_schema)


@dataclass
class Chunk:
    """Consecutive rows of a file, where each was, and their texts to score."""

    rows: list[dict[str, Any]]
    places: list[str]
    parsed: ParsedRows


def read_chunks(path: Path, kind: str, max_rows: int = CHUNK_ROWS, max_chars: int = CHUNK_CHARS) -> Iterator[Chunk]:
    """The rows of ``path`` (every one of shape ``kind``) in consecutive chunks of at most ``max_rows`` rows
    and, past its first row, ``max_chars`` characters of text."""
    rows: list[dict[str, Any]] = []
    places: list[str] = []
    texts: list[tuple[Prompt, str]] = []
    chars = 0
    for row, place in located_rows(path):
        row_text = row_texts(row, place, kind)
        size = text_chars(row_text)
        if rows and (len(rows) == max_rows or chars + size > max_chars):
            yield Chunk(rows, places, ParsedRows.of(kind, texts))
            rows, places, texts, chars = [], [], [], 0
        rows.append(row)
        places.append(place)
        texts.extend(row_text)
        chars += size
    if rows:
        yield Chunk(rows, places, ParsedRows.of(kind, texts))


def check_chat_template(tokenizer: Any, path: Path, kind: str, on_rows: Callable[[float], Any] | None = None) -> int:
    """Render every conversation of ``path`` (rows of shape ``kind``, checked by ``check_input``) with the
    tokenizer's chat template as the scorer will (``formatting.render``) and raise the InputError scoring would
    (``template_refusal``) for the first one it refuses, before any row is scored: found when its chunk reached
    the model, a refusal ended the run and threw away the scoring before it (an hour of CPU for a bad row near
    the end of 100,000). Each distinct (prompt, response) once, of the last ``RECENT_TEXTS``; memory holds a
    chunk (``read_chunks``). Without a chat template nothing is refused and the file is not read. Returns the
    conversations rendered; ``on_rows(n)``: called as rows are checked."""
    if template_kind(tokenizer) != "chat":
        return 0
    seen: set[bytes] = set()
    rendered = 0
    for chunk in read_chunks(path, kind):
        heads: dict[str, str] = {}  # prompt parts rendered in this chunk (a pair's two texts share one)
        for i, (prompt, response) in enumerate(zip(chunk.parsed.prompts, chunk.parsed.responses)):
            key = text_key(prompt, response)
            if key in seen:
                continue
            try:
                render(tokenizer, prompt, response if isinstance(response, str) else "\n".join(response), heads)
            except ChatTemplateError as exc:
                raise template_refusal(ChatTemplateError(exc.reason, i), kind, chunk.places) from None
            if len(seen) == RECENT_TEXTS:
                seen.clear()  # bounded: a repeat further back than this is rendered again
            seen.add(key)
            rendered += 1
        if on_rows is not None:
            on_rows(len(chunk.rows))
    return rendered


def template_refusal(exc: ChatTemplateError, kind: str, places: Sequence[str]) -> InputError:
    """The error for a conversation the model's chat template refuses, naming its row (``exc.row`` indexes the
    texts given to the model, two per pair row: ``places`` names the rows) and the field that holds the
    conversation's turns before the response ('messages', else 'prompt'), with the template's reason."""
    place = "a row" if exc.row is None else places[exc.row // (2 if kind == "pair" else 1)]
    field = "messages" if kind == "messages" else "prompt"
    return InputError(f"{place}: field '{field}': the model's chat template refuses this conversation: {exc.reason}")


class RecentScores:
    """The results of the last ``size`` distinct texts scored, so a file that repeats rows further apart than a
    chunk still scores each once, as the scorer does within one call: AlpacaEval's annotations hold 649
    distinct (instruction, output) rows among 19,466, one per annotator. ~250 bytes a text."""

    def __init__(self, size: int = RECENT_TEXTS) -> None:
        self.size = size
        # (member scores, truncated, a process reward model's step scores or None)
        self.results: OrderedDict[bytes, tuple[np.ndarray, bool, list[float | None] | None]] = OrderedDict()

    def score(
        self, scorer: BatchScorer, prompts: Sequence[Prompt], responses: Sequence[str], on_batch: Any = None
    ) -> ScoreResult:
        """``scorer.score(prompts, responses)``, scoring only the texts not seen lately."""
        keys = [text_key(p, r) for p, r in zip(prompts, responses)]
        new = [i for i, k in enumerate(keys) if k not in self.results]
        if new:  # a chunk of repeats only (common in AlpacaEval's annotations) needs no model call
            try:
                enc = scorer.encode([prompts[i] for i in new], [responses[i] for i in new])
            except ChatTemplateError as exc:  # its row: among the texts scored, which are not all of them
                raise ChatTemplateError(exc.reason, None if exc.row is None else new[exc.row]) from None
            if getattr(
                scorer, "is_prm", False
            ):  # the aggregates (1, n) and every row's step scores, from one forward per row
                members, steps = scorer.score_steps_encoded(enc, on_batch=on_batch)
            else:  # (members, n): no norm hook, nobody reads it
                members, steps = scorer.score_encoded(enc, on_batch=on_batch), None
            for j, i in enumerate(new):
                self.results[keys[i]] = (members[:, j], enc.truncated[j], None if steps is None else steps[j])
        if on_batch is not None and len(new) < len(keys):
            on_batch(len(keys) - len(new))  # the texts seen lately: done without the model
        values = [self.results[k] for k in keys]
        for k in keys:
            self.results.move_to_end(k)
        while len(self.results) > self.size:
            self.results.popitem(last=False)
        # a process reward model's step scores ride along; any other scorer's result takes none (a DPO policy's)
        steps = {"step_scores": [v[2] for v in values]} if getattr(scorer, "is_prm", False) else {}
        if not values:
            return scorer.result(np.zeros((len(scorer.members), 0)), [], **steps)
        return scorer.result(np.stack([v[0] for v in values], axis=1), [v[1] for v in values], **steps)


def score_extras(
    scorer: BatchScorer,
    parsed: ParsedRows,
    where: Sequence[str],
    on_batch: Any = None,
    recent: RecentScores | None = None,
) -> list[dict[str, Any]]:
    """The fields scoring adds to each parsed row: score, score_normalized, [score_std], truncated; pairs
    get score_a, score_b, p_a_better (calibrated), their normalized scores, truncated_a/_b [, std]; every row
    the scorer's ``row_tags``: its ``precision`` (fp32, bf16 or int8: ``BatchScorer.precision``) and, where
    the score is not an ensemble's mean, which reward it is (aggregate; a DPO policy's reward_kind and beta),
    so scores of different runs can be told apart. A conversation the model's chat template refuses is an
    InputError naming its row (``where[i]``). ``recent``: texts scored in earlier calls, not scored again. A
    process reward model's rows also get ``step_scores`` (one per step; ``score`` is their ``step_aggregate``,
    named in the row too)."""
    check_steps_model(scorer, parsed.kind)
    try:
        res = (recent or RecentScores(0)).score(scorer, parsed.prompts, parsed.responses, on_batch=on_batch)
    except ChatTemplateError as exc:
        raise template_refusal(exc, parsed.kind, where) from None
    if parsed.kind != "pair":
        extras = [
            {"score": float(raw), "score_normalized": float(norm), "truncated": cut}
            for raw, norm, cut in zip(res.raw, res.normalized, res.truncated)
        ]
        if res.std is not None:
            for extra, std in zip(extras, res.std):
                extra["score_std"] = float(std)
        if res.step_scores is not None:
            for extra, steps in zip(extras, res.step_scores):
                extra["step_scores"] = steps
                extra["step_aggregate"] = scorer.step_aggregate
        return [extra | scorer.row_tags for extra in extras]
    a, b = res.raw[0::2], res.raw[1::2]
    p = p_better(a, b, scorer.card.temperature)
    extras = []
    for i in range(len(a)):
        extra = {
            "score_a": float(a[i]),
            "score_b": float(b[i]),
            "p_a_better": float(p[i]),
            "score_a_normalized": float(res.normalized[2 * i]),
            "score_b_normalized": float(res.normalized[2 * i + 1]),
            "truncated_a": res.truncated[2 * i],
            "truncated_b": res.truncated[2 * i + 1],
        }
        if res.std is not None:
            extra |= {"score_a_std": float(res.std[2 * i]), "score_b_std": float(res.std[2 * i + 1])}
        extras.append(extra | scorer.row_tags)
    return extras


def check_steps_model(scorer: BatchScorer, kind: str) -> None:
    """Rows of steps need a process reward model: an InputError for them with an outcome model."""
    if kind == "steps" and not getattr(scorer, "is_prm", False):
        raise InputError(
            "rows of 'steps' need a process reward model (trained with --objective prm); this model scores "
            "whole responses: give prompt+response rows"
        )


def score_rows(
    scorer: BatchScorer, rows: list[dict[str, Any]], on_batch: Any = None, where: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Each row with its scores added (``score_extras``), all in memory: for a list a caller holds. A file
    is ``score_file``'s, a chunk at a time. ``where``: how errors name the rows (default "row i")."""
    places = list(where) if where is not None else [f"row {i}" for i in range(1, len(rows) + 1)]
    parsed = parse_rows(rows, places)
    if not rows:
        return []
    return [{**row, **extra} for row, extra in zip(rows, score_extras(scorer, parsed, places, on_batch), strict=True)]


def is_truncated(row: dict[str, Any]) -> bool:
    return bool(row.get("truncated") or row.get("truncated_a") or row.get("truncated_b"))


@dataclass
class ScoredFile:
    rows: int
    truncated_rows: int


def score_file(
    scorer: BatchScorer,
    input_path: Path,
    out_path: Path,
    checked: InputSummary | None = None,
    on_rows: Callable[[float], Any] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    chunk_chars: int = CHUNK_CHARS,
) -> ScoredFile:
    """Score every row of ``input_path`` into ``out_path`` (format from its suffix), in input order, a chunk
    at a time: memory holds one chunk, however long the file. The output appears whole when every row is
    scored, never in part (an error or Ctrl-C leaves any earlier file there untouched).

    ``checked``: ``check_input(input_path)``'s result when the caller has it (with ``schema=True`` for a
    Parquet output; with ``conversations`` when the caller ran ``check_chat_template``, else it runs first);
    ``on_rows(n)``: called as rows are scored (n is fractional while a pair's two responses are scored in
    different batches)."""
    check_output_path(out_path, input_path)
    if checked is None or (checked.schema is None and writes_parquet(out_path)):
        checked = check_input(input_path, schema=writes_parquet(out_path))
    if checked.conversations is None:  # a conversation the template refuses is found before any row is scored
        check_chat_template(scorer.tokenizer, input_path, checked.kind)
    per_row = 2 if checked.kind == "pair" else 1
    on_batch = None if on_rows is None else (lambda texts: on_rows(texts / per_row))
    rows = truncated = 0
    recent = RecentScores()
    with atomic_file(out_path) as tmp:
        writer: RowWriter | None = None
        try:
            for chunk in read_chunks(input_path, checked.kind, chunk_rows, chunk_chars):
                extras = score_extras(scorer, chunk.parsed, chunk.places, on_batch, recent)
                scored = [{**row, **extra} for row, extra in zip(chunk.rows, extras, strict=True)]
                if writer is None:  # the columns scoring adds are known now
                    writer = RowWriter(tmp, out_path.name, checked.fields, checked.schema, extras)
                writer.write(scored)
                rows += len(scored)
                truncated += sum(map(is_truncated, scored))
            if writer is None:
                raise InputError(f"{input_path}: no rows to score")
        finally:
            if writer is not None:
                writer.close()  # before atomic_file renames (or deletes) the file
    return ScoredFile(rows, truncated)
