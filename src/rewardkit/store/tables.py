"""The database tables (SQLAlchemy 2, typed ``Mapped[...]``).

Primary keys of prompts, responses, comparisons and events are content hashes computed in Python
(``records.py``): ingestion can then insert whole batches without a round trip per row to learn ids,
and the same record sent twice maps to the same key, which is what makes ingestion idempotent.

Secondary indexes cost ingestion speed (each is one more B-tree insert per row), so there is one only where a
query in ``queries.py`` uses it; add an index together with the query that needs it.

Schema changes go through Alembic (``store/migrations``); ``tests/store/test_migrations.py`` checks that the
migrations produce exactly these tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

KEY = String(32)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class PromptRow(Base):
    __tablename__ = "prompts"

    id: Mapped[str] = mapped_column(KEY, primary_key=True)
    content: Mapped[Any] = mapped_column(JSON)  # text, or a list of {"role", "content"} messages
    text: Mapped[str] = mapped_column(Text)  # flat rendering, for lengths and display
    created_at: Mapped[datetime]


class ResponseRow(Base):
    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(KEY, primary_key=True)
    prompt_id: Mapped[str] = mapped_column(KEY, ForeignKey("prompts.id"))
    text: Mapped[str] = mapped_column(Text)
    # "" rather than NULL when unknown: NULLs never collide in unique keys, "" does.
    model_name: Mapped[str] = mapped_column(String(200), default="")
    model_version: Mapped[str] = mapped_column(String(200), default="")
    sampling: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime | None]
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class AnnotatorRow(Base):
    __tablename__ = "annotators"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # human | ai | implicit | rule


class ImportRow(Base):
    """One run of an importer: what was read, and how it ended (an audit trail of where data came from)."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    format: Mapped[str] = mapped_column(String(40))
    paths: Mapped[list[Any]] = mapped_column(default=list)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    # running | done | failed | superseded (interrupted, then completed by a later run of the same import)
    status: Mapped[str] = mapped_column(String(16), default="running")
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {"host", "pid", "started"} of the importing process: a "running" row whose process is gone was killed
    process: Mapped[dict[str, Any] | None]


class ComparisonRow(Base):
    __tablename__ = "comparisons"
    __table_args__ = (Index("ix_comparisons_filters", "source", "annotator_kind", "attribute"),)

    id: Mapped[str] = mapped_column(KEY, primary_key=True)  # Comparison.dedupe_key
    prompt_id: Mapped[str] = mapped_column(KEY, ForeignKey("prompts.id"))
    kind: Mapped[str] = mapped_column(String(16))  # pairwise | ranking | ratings
    judgement: Mapped[dict[str, Any]]  # records.judgement_payload
    choice: Mapped[str | None] = mapped_column(String(16))  # pairwise only: a | b | tie | both_bad
    strength: Mapped[float | None] = mapped_column(Float)
    margin: Mapped[float | None] = mapped_column(Float)
    annotator_id: Mapped[str] = mapped_column(String(200), ForeignKey("annotators.id"))
    annotator_kind: Mapped[str] = mapped_column(String(16))  # copied from the annotator for filtering
    attribute: Mapped[str | None] = mapped_column(String(100))
    rubric: Mapped[str | None] = mapped_column(Text)
    rationale: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    client_event_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class ComparisonResponseRow(Base):
    """Which responses a comparison judged, in the order its judgement refers to (position 0 = 'a')."""

    __tablename__ = "comparison_responses"

    comparison_id: Mapped[str] = mapped_column(KEY, ForeignKey("comparisons.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    response_id: Mapped[str] = mapped_column(KEY, ForeignKey("responses.id"))


class StepSolutionRow(Base):
    """A step-labelled solution (``records.StepSolution``): what a process reward model learns from (migration 0006;
    queries in store/steps.py). Prompt, steps and labels are JSON: a solution is read and written whole, never
    joined step by step, so a row per step would only cost inserts. ``n_steps`` and ``first_error`` are copied
    out of the JSON for statistics without parsing it."""

    __tablename__ = "step_solutions"
    __table_args__ = (Index("ix_step_solutions_filters", "source", "annotator_kind"),)

    id: Mapped[str] = mapped_column(KEY, primary_key=True)  # StepSolution.dedupe_key
    prompt_id: Mapped[str] = mapped_column(KEY)  # queries.prompt_id of the prompt: solutions of one problem
    prompt: Mapped[Any] = mapped_column(JSON)  # text, or a list of {"role", "content"} messages
    steps: Mapped[list[Any]]  # the step texts, in order
    labels: Mapped[list[Any]]  # one of good | bad | neutral | null per step
    n_steps: Mapped[int] = mapped_column(Integer)
    first_error: Mapped[int | None] = mapped_column(Integer)  # index of the first "bad" step, null when none
    outcome: Mapped[bool | None]  # the final answer is right (True), wrong (False), or not known (null)
    annotator_id: Mapped[str] = mapped_column(String(200), ForeignKey("annotators.id"))
    annotator_kind: Mapped[str] = mapped_column(String(16))  # copied from the annotator for filtering
    source: Mapped[str] = mapped_column(String(200))
    model_name: Mapped[str] = mapped_column(String(200), default="")  # "" when unknown (see ResponseRow)
    created_at: Mapped[datetime]
    client_event_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class FeedbackEventRow(Base):
    __tablename__ = "feedback_events"

    id: Mapped[str] = mapped_column(KEY, primary_key=True)  # FeedbackEvent.dedupe_key
    client_event_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    prompt_id: Mapped[str] = mapped_column(KEY, ForeignKey("prompts.id"), index=True)
    response_id: Mapped[str] = mapped_column(KEY, ForeignKey("responses.id"))
    other_response_id: Mapped[str | None] = mapped_column(KEY, ForeignKey("responses.id"))
    user_id: Mapped[str | None] = mapped_column(String(200))
    session_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(index=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class SnapshotRow(Base):
    """A compiled dataset snapshot: files live on disk (``path``), the manifest is mirrored here."""

    __tablename__ = "snapshots"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    parent_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    path: Mapped[str] = mapped_column(Text)
    manifest: Mapped[dict[str, Any]]


class ServedScoreRow(Base):
    """One served score in full: logged for a sampled fraction of requests (``score_log_sample_rate`` per route),
    so that feedback can cite its ``id`` (the ``score_id`` the service returned) instead of resending texts."""

    __tablename__ = "served_scores"

    id: Mapped[str] = mapped_column(KEY, primary_key=True)  # the score_id
    created_at: Mapped[datetime] = mapped_column(index=True)
    model_version: Mapped[str] = mapped_column(String(200))
    route: Mapped[str] = mapped_column(String(40))
    prompt: Mapped[Any] = mapped_column(JSON)  # text, or a list of {"role", "content"} messages
    response: Mapped[str] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Float)
    normalized: Mapped[float | None] = mapped_column(Float)
    uncertainty: Mapped[float | None] = mapped_column(Float)  # ensemble std, in the units of score
    latency_ms: Mapped[float | None] = mapped_column(Float)
    request_id: Mapped[str | None] = mapped_column(String(200))


class ScoreAggregateRow(Base):
    """Every served score, summed per model version, route and minute: what monitoring reads, at the cost of a
    few additions per score. Rows are append-only partial sums (one per flush of one process), so replicas never
    contend for a row; readers add up the rows of a window."""

    __tablename__ = "score_aggregates"
    __table_args__ = (Index("ix_score_aggregates_minute", "minute", "model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_version: Mapped[str] = mapped_column(String(200))
    route: Mapped[str] = mapped_column(String(40))
    minute: Mapped[datetime]  # the minute (UTC, seconds zeroed) the scores were served in
    count: Mapped[int] = mapped_column(Integer)
    total: Mapped[float] = mapped_column(Float)  # sum of raw scores
    total_sq: Mapped[float] = mapped_column(Float)  # sum of squared raw scores
    edges: Mapped[list[Any]]  # histogram bin edges (raw score units): the model's reference bins
    histogram: Mapped[list[Any]]  # len(edges) + 1 counts: below edges[0], between consecutive edges, above the last
    uncertain: Mapped[int] = mapped_column(Integer)  # scores whose uncertainty was at or over the threshold
    uncertainty_total: Mapped[float] = mapped_column(Float)  # sum of uncertainties (ensembles; 0 otherwise)
    uncertainty_count: Mapped[int] = mapped_column(Integer)  # scores that came with an uncertainty
    length_total: Mapped[float] = mapped_column(Float)  # sum of response lengths in characters


class ScoreReferenceRow(Base):
    """A served model version's reference score distribution (written by the service when it loads the model):
    what monitoring measures drift against, and the bins the score aggregates use."""

    __tablename__ = "score_references"

    model_version: Mapped[str] = mapped_column(String(200), primary_key=True)
    edges: Mapped[list[Any]]  # bin edges, raw score units (len B - 1 for B bins)
    proportions: Mapped[list[Any]]  # the reference share of scores in each of the B bins (sums to 1)
    reward_mean: Mapped[float | None] = mapped_column(Float)
    reward_std: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16))  # card: fitted at training time | normal: from mean/std only
    created_at: Mapped[datetime]


# --- the human review queue (migration 0003; queries in store/review.py) ---------------------------------


class ReviewItemRow(Base):
    """One thing to judge: a prompt and 2+ responses, why it is queued, how many labels it needs (``needed``, the
    overlap k) and how many it has. ``dedupe_key`` makes enqueueing the same prompt and responses twice a no-op.
    Gold items carry a known answer (``gold_choice``, in the stored response order) and are never done."""

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_next", "status", "priority", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(KEY, unique=True)
    prompt: Mapped[Any] = mapped_column(JSON)  # text, or a list of {"role", "content"} messages
    responses: Mapped[list[Any]]  # [{"text", "model_name", "model_version"}], position 0 = 'a'
    origin: Mapped[dict[str, Any]]  # {"kind": "log" | "snapshot" | "file" | "routing" | "adjudication", ...}
    reason: Mapped[str] = mapped_column(String(40))  # the strategy or rule that queued it
    priority: Mapped[float] = mapped_column(Float)  # higher is served first
    status: Mapped[str] = mapped_column(String(16))  # open | done
    needed: Mapped[int] = mapped_column(Integer)
    labels: Mapped[int] = mapped_column(Integer, default=0)  # labels given (skips do not count)
    gold_choice: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]


class ReviewAssignmentRow(Base):
    """Slot ``slot`` (0..needed-1) of an item, held by one annotator until ``expires_at`` or filled by their label.
    The primary key is what keeps two annotators out of one slot; an expired, unfilled slot may be taken over."""

    __tablename__ = "review_assignments"
    __table_args__ = (Index("ix_review_assignments_annotator", "annotator", "item_id", unique=True),)

    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id", ondelete="CASCADE"), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    annotator: Mapped[str] = mapped_column(String(200))
    swap: Mapped[bool]  # the page shows response b on the left
    assigned_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    label_id: Mapped[int | None] = mapped_column(Integer)  # set when the slot is filled


class ReviewLabelRow(Base):
    """An annotator's verdict on an item, in stored response order (the page's left/right swap undone). A skip is
    kept too (so the item is not shown to them again) but fills no slot and makes no comparison."""

    __tablename__ = "review_labels"
    __table_args__ = (Index("ix_review_labels_item", "item_id", "annotator", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id", ondelete="CASCADE"))
    annotator: Mapped[str] = mapped_column(String(200), index=True)
    choice: Mapped[str] = mapped_column(String(16))  # a | b | tie | both_bad | skip
    swap: Mapped[bool]
    seconds: Mapped[float] = mapped_column(Float)
    rationale: Mapped[str | None] = mapped_column(Text)
    attribute: Mapped[str | None] = mapped_column(String(100))
    comparison_id: Mapped[str | None] = mapped_column(KEY)  # the comparison it became (not for skips or gold)
    created_at: Mapped[datetime] = mapped_column(index=True)


class ReviewAnnotatorRow(Base):
    """A person allowed on the labeling page. Only a hash of their token is kept (tokens are 256-bit random, so a
    plain SHA-256 suffices: there is nothing to brute-force)."""

    __tablename__ = "review_annotators"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    admin: Mapped[bool]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


# --- the model registry and the continuous-training loop (migration 0005) ------------------------------------


class ModelVersionRow(Base):
    """One registered model version: an immutable folder (``path``) whose files hash to ``sha256``."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_model_versions_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per name
    path: Mapped[str] = mapped_column(Text)  # the registry's own copy (or a URI the loader understands)
    sha256: Mapped[str] = mapped_column(String(64))  # of every file's relative path and content (registry/files.py)
    snapshot_id: Mapped[str | None] = mapped_column(String(64))  # the dataset snapshot it was trained on
    snapshot_parent_id: Mapped[str | None] = mapped_column(String(64))  # that snapshot's parent
    train_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    eval_summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source: Mapped[str] = mapped_column(Text, default="")  # where the files were registered from
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))


class ModelAliasRow(Base):
    """Which version an alias (champion, challenger, any name) points to. ``moves`` counts the moves: a move is
    an UPDATE ... WHERE version = <what the mover read>, so of two racing moves the second matches no row."""

    __tablename__ = "model_aliases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    moves: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime]


class AliasMoveRow(Base):
    """The append-only history of alias moves: who moved it, when, why, from which version, and (promotions) the
    gates' verdict with both evaluation reports."""

    __tablename__ = "alias_moves"
    __table_args__ = (Index("ix_alias_moves_name_alias", "name", "alias", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    alias: Mapped[str] = mapped_column(String(100))
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # set | promote | rollback
    forced: Mapped[bool] = mapped_column(default=False)
    who: Mapped[str] = mapped_column(String(200))
    why: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]
    verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the gates' verdict (promotions)
    reports: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {"candidate": report, "champion": report}


class GoldenSnapshotRow(Base):
    """A dataset snapshot marked golden: human labels held out of training, on which promotions are gated."""

    __tablename__ = "golden_snapshots"

    snapshot_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    marked_at: Mapped[datetime]
    marked_by: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")


class LoopRunRow(Base):
    """One continuous-training run, a state machine (loop/machine.py): every step's outcome is committed before
    the next starts, so a killed tick resumes where the last commit left it."""

    __tablename__ = "loop_runs"
    __table_args__ = (Index("ix_loop_runs_name_state", "name", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))  # the registered model name the loop trains
    state: Mapped[str] = mapped_column(String(16))  # see loop/machine.py STATES
    trigger: Mapped[dict[str, Any]] = mapped_column(default=dict)
    champion_version: Mapped[int | None] = mapped_column(Integer)  # the champion when the run started
    snapshot_id: Mapped[str | None] = mapped_column(String(64))
    candidate_path: Mapped[str | None] = mapped_column(Text)
    candidate_version: Mapped[int | None] = mapped_column(Integer)
    verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failed attempts of the current step
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class LeaseRow(Base):
    """A named lease: one holder at a time until ``expires_at``; the holder renews it, anyone takes it over once
    expired (a plain conditional UPDATE, the same on SQLite and PostgreSQL)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]
