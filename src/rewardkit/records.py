"""The typed in-memory records of preference data.

Everything downstream (store, snapshots, training, scoring, evaluation) speaks these types:

- a ``Prompt`` is plain text or a list of chat messages;
- a ``Response`` is one model output with its inference context;
- a ``Comparison`` is one prompt, 2..k responses and one ``Judgement`` (pairwise choice, full ranking,
  or per-response ratings) by one ``Annotator``;
- a ``FeedbackEvent`` is an implicit signal (thumbs, regenerate, copy, edit), see ``data/implicit.py``;
- a ``PreferencePair`` is what a compiled snapshot holds and what training consumes.

The records validate themselves in ``__post_init__`` and raise ``RecordError`` naming the field, so an
importer can turn a user's mistake into a one-line message instead of a traceback.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias, get_args

Role = Literal["system", "user", "assistant", "tool"]
Message: TypeAlias = dict[str, str]  # {"role": Role, "content": str}
Prompt: TypeAlias = str | list[Message]

AnnotatorKind = Literal["human", "ai", "implicit", "rule"]
ANNOTATOR_KINDS: tuple[str, ...] = get_args(AnnotatorKind)

# "both_bad" is a pairwise verdict that neither response is acceptable: it carries no preference
# between the two, so compilation treats it like a tie that is dropped unless asked for.
PairwiseChoice = Literal["a", "b", "tie", "both_bad"]
PAIRWISE_CHOICES: tuple[str, ...] = get_args(PairwiseChoice)

FeedbackKind = Literal["thumbs_up", "thumbs_down", "regenerate", "copy", "edit"]
FEEDBACK_KINDS: tuple[str, ...] = get_args(FeedbackKind)

ROLES: tuple[str, ...] = get_args(Role)


class RecordError(ValueError):
    """A record is malformed. ``field`` names the offending field (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"field '{field}': {message}")
        self.field = field
        self.message = message


def utcnow() -> datetime:
    return datetime.now(UTC)


def validate_prompt(prompt: Any, field_name: str = "prompt") -> Prompt:
    """Return the prompt if it is non-empty text or a well-formed list of chat messages."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise RecordError(field_name, "is empty")
        return prompt
    if isinstance(prompt, list):
        if not prompt:
            raise RecordError(field_name, "is an empty list of messages")
        for i, message in enumerate(prompt):
            validate_message(message, f"{field_name}[{i}]")
        return prompt
    raise RecordError(field_name, f"expected text or a list of messages, got {type(prompt).__name__}")


def validate_message(message: Any, field_name: str) -> Message:
    if not isinstance(message, dict):
        raise RecordError(field_name, f"expected a message object, got {type(message).__name__}")
    role, content = message.get("role"), message.get("content")
    if role not in ROLES:
        raise RecordError(f"{field_name}.role", f"expected one of {', '.join(ROLES)}, got {role!r}")
    if not isinstance(content, str):
        raise RecordError(f"{field_name}.content", f"expected text, got {type(content).__name__}")
    return message


def prompt_text(prompt: Prompt) -> str:
    """A flat rendering of a prompt, for lengths, hashing and display (not the model input format)."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in prompt)


def user_request(prompt: Prompt) -> str:
    """What the user asked: a chat prompt's last user turn (its last turn when none is the user's), or a
    text prompt whole. (The probes show it to their edits; robust training's echo does the same.)"""
    if isinstance(prompt, str):
        return prompt
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return users[-1] if users else (prompt[-1]["content"] if prompt else "")


def canonical_json(value: Any) -> str:
    """Deterministic JSON: the basis of every content hash in rewardkit."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_hash(value: Any, length: int = 32) -> str:
    """A short hex SHA-256 of a value's canonical JSON (used as primary keys and snapshot ids)."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()[:length]


@dataclass(frozen=True)
class Response:
    """One model output and the context it was generated in."""

    text: str
    model_name: str = ""
    model_version: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)  # temperature, top_p, seed, max_tokens...
    created_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Emptiness is the importer's call, not the record's: an empty final turn in an HH-RLHF transcript,
        # or an empty model output an AlpacaEval judge rated, is real data (it usually loses), while an empty
        # `chosen` in a TRL file is a mistake.
        if not isinstance(self.text, str):
            raise RecordError("text", f"expected text, got {type(self.text).__name__}")


@dataclass(frozen=True)
class Annotator:
    id: str
    kind: AnnotatorKind

    def __post_init__(self) -> None:
        if self.kind not in ANNOTATOR_KINDS:
            raise RecordError("annotator.kind", f"expected one of {', '.join(ANNOTATOR_KINDS)}, got {self.kind!r}")
        if not self.id:
            raise RecordError("annotator.id", "is empty")


@dataclass(frozen=True)
class PairwiseJudgement:
    """A choice between responses 0 ('a') and 1 ('b'). ``strength`` in [0, 1] where the source gives one
    (e.g. AlpacaEval's |preference - 1.5| * 2); ``margin`` is a source's own score gap (TRL ``margin``);
    ``probability`` P('a' better than 'b') where the source gives a soft label (AlpacaEval: 2 - preference),
    the target of ``--loss soft``."""

    choice: PairwiseChoice
    strength: float | None = None
    margin: float | None = None
    probability: float | None = None

    def __post_init__(self) -> None:
        if self.choice not in PAIRWISE_CHOICES:
            raise RecordError("judgement.choice", f"expected one of {', '.join(PAIRWISE_CHOICES)}, got {self.choice!r}")
        if self.strength is not None and not 0.0 <= self.strength <= 1.0:
            raise RecordError("judgement.strength", f"expected a number in [0, 1], got {self.strength!r}")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise RecordError("judgement.probability", f"expected a number in [0, 1], got {self.probability!r}")


@dataclass(frozen=True)
class RankingJudgement:
    """A full ranking: ``order`` lists response indices best first (a permutation of range(k))."""

    order: tuple[int, ...]

    def __post_init__(self) -> None:
        if sorted(self.order) != list(range(len(self.order))):
            raise RecordError(
                "judgement.order", f"expected a permutation of 0..{len(self.order) - 1}, got {list(self.order)}"
            )


@dataclass(frozen=True)
class RatingsJudgement:
    """A scalar rating per response, optionally per attribute. ``ratings[attr][i]`` rates response i;
    the overall rating (or the only one) is under the attribute name ``"overall"``."""

    ratings: dict[str, tuple[float | None, ...]]

    def __post_init__(self) -> None:
        if not self.ratings:
            raise RecordError("judgement.ratings", "is empty")
        lengths = {len(v) for v in self.ratings.values()}
        if len(lengths) != 1:
            raise RecordError("judgement.ratings", "every attribute must rate every response")


Judgement: TypeAlias = PairwiseJudgement | RankingJudgement | RatingsJudgement


def judgement_kind(judgement: Judgement) -> str:
    return {PairwiseJudgement: "pairwise", RankingJudgement: "ranking", RatingsJudgement: "ratings"}[type(judgement)]


@dataclass(frozen=True)
class Comparison:
    """One prompt, 2..k responses and a judgement of them."""

    prompt: Prompt
    responses: tuple[Response, ...]
    judgement: Judgement
    annotator: Annotator
    source: str
    attribute: str | None = None  # e.g. "helpfulness", "harmlessness"; None = overall preference
    rubric: str | None = None
    rationale: str | None = None
    created_at: datetime | None = None
    client_event_id: str | None = None  # sending the same id again stores nothing new
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_prompt(self.prompt)
        k = len(self.responses)
        if k < 2:
            raise RecordError("responses", f"a comparison needs at least 2 responses, got {k}")
        if not self.source:
            raise RecordError("source", "is empty")
        # A preference between two identical responses is the classic chosen == rejected mistake. A tie
        # between them is consistent, and real: AlpacaEval judges the reference model against itself (649
        # rows) and models that reproduce the reference verbatim (83 rows), all judged ties.
        identities = {(r.text, r.model_name, r.model_version) for r in self.responses}
        tie = isinstance(self.judgement, PairwiseJudgement) and self.judgement.choice == "tie"
        if len(identities) != k and not tie:
            raise RecordError("responses", "two responses are identical (chosen == rejected?)")
        j = self.judgement
        if isinstance(j, PairwiseJudgement) and k != 2:
            raise RecordError("judgement", f"a pairwise choice needs exactly 2 responses, got {k}")
        if isinstance(j, RankingJudgement) and len(j.order) != k:
            raise RecordError("judgement.order", f"ranks {len(j.order)} responses but there are {k}")
        if isinstance(j, RatingsJudgement) and len(next(iter(j.ratings.values()))) != k:
            raise RecordError("judgement.ratings", f"rates a different number of responses than the {k} given")

    @property
    def dedupe_key(self) -> str:
        """Identity for idempotent ingestion: the client's event id when given, else the content."""
        if self.client_event_id:
            return content_hash({"client_event_id": self.client_event_id})
        return content_hash(
            {
                "prompt": self.prompt,
                "responses": [[r.text, r.model_name, r.model_version] for r in self.responses],
                "judgement": judgement_payload(self.judgement),
                "annotator": [self.annotator.id, self.annotator.kind],
                "source": self.source,
                "attribute": self.attribute,
            }
        )


def judgement_payload(judgement: Judgement) -> dict[str, Any]:
    """A JSON-ready form of a judgement (stored in the database and hashed)."""
    if isinstance(judgement, PairwiseJudgement):
        payload = {
            "kind": "pairwise",
            "choice": judgement.choice,
            "strength": judgement.strength,
            "margin": judgement.margin,
        }
        if judgement.probability is not None:  # only when given: every earlier judgement keeps its hash
            payload["probability"] = judgement.probability
        return payload
    if isinstance(judgement, RankingJudgement):
        return {"kind": "ranking", "order": list(judgement.order)}
    return {"kind": "ratings", "ratings": {k: list(v) for k, v in sorted(judgement.ratings.items())}}


def judgement_from_payload(payload: dict[str, Any]) -> Judgement:
    kind = payload.get("kind")
    if kind == "pairwise":
        return PairwiseJudgement(
            payload["choice"], payload.get("strength"), payload.get("margin"), payload.get("probability")
        )
    if kind == "ranking":
        return RankingJudgement(tuple(payload["order"]))
    if kind == "ratings":
        return RatingsJudgement({k: tuple(v) for k, v in payload["ratings"].items()})
    raise RecordError("judgement.kind", f"expected pairwise, ranking or ratings, got {kind!r}")


@dataclass(frozen=True)
class FeedbackEvent:
    """An implicit signal from a product surface. ``other_response`` is the response this one replaced or
    was replaced by (regenerate: the new one; edit: the user's edited text)."""

    kind: FeedbackKind
    prompt: Prompt
    response: Response
    other_response: Response | None = None
    user_id: str | None = None
    session_id: str | None = None
    created_at: datetime | None = None
    client_event_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in FEEDBACK_KINDS:
            raise RecordError("kind", f"expected one of {', '.join(FEEDBACK_KINDS)}, got {self.kind!r}")
        validate_prompt(self.prompt)
        if self.kind in ("regenerate", "edit") and self.other_response is None:
            raise RecordError("other_response", f"a {self.kind} event needs the other response")

    @property
    def dedupe_key(self) -> str:
        if self.client_event_id:
            return content_hash({"client_event_id": self.client_event_id})
        return content_hash(
            {
                "kind": self.kind,
                "prompt": self.prompt,
                "response": self.response.text,
                "other": self.other_response.text if self.other_response else None,
                "user": self.user_id,
                "session": self.session_id,
                "created_at": self.created_at.isoformat() if self.created_at else None,
            }
        )


@dataclass(frozen=True)
class PreferencePair:
    """One training/evaluation example of a compiled snapshot: ``chosen`` is preferred over ``rejected``
    (or neither, when ``tie``). ``strength`` in [0, 1] or None; ``margin`` a source's own score gap;
    ``target`` P(chosen better than rejected) where the source gave a soft label (None: a hard label);
    ``weight`` the pair's relative weight in the training loss (``dataset build --source-weight``; 1: plain)."""

    id: str
    prompt: Prompt
    chosen: str
    rejected: str
    tie: bool = False
    strength: float | None = None
    margin: float | None = None
    source: str = ""
    annotator_kind: str = ""
    attribute: str | None = None
    prompt_id: str = ""
    comparison_ids: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)  # e.g. generator names, subset/category
    target: float | None = None
    weight: float = 1.0

    def to_json(self) -> dict[str, Any]:
        row = {
            "id": self.id,
            "prompt": self.prompt,
            "chosen": self.chosen,
            "rejected": self.rejected,
            "tie": self.tie,
            "strength": self.strength,
            "margin": self.margin,
            "source": self.source,
            "annotator_kind": self.annotator_kind,
            "attribute": self.attribute,
            "prompt_id": self.prompt_id,
            "comparison_ids": list(self.comparison_ids),
            "metadata": self.metadata,
        }
        if self.target is not None:  # only when given: snapshots without soft labels keep their bytes and ids
            row["target"] = self.target
        if self.weight != 1.0:  # likewise: unweighted snapshots keep their bytes and ids
            row["weight"] = self.weight
        return row

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> PreferencePair:
        return cls(
            id=row["id"],
            prompt=row["prompt"],
            chosen=row["chosen"],
            rejected=row["rejected"],
            tie=bool(row.get("tie", False)),
            strength=row.get("strength"),
            margin=row.get("margin"),
            source=row.get("source", ""),
            annotator_kind=row.get("annotator_kind", ""),
            attribute=row.get("attribute"),
            prompt_id=row.get("prompt_id", ""),
            comparison_ids=tuple(row.get("comparison_ids", ())),
            metadata=row.get("metadata") or {},
            target=row.get("target"),
            weight=1.0 if row.get("weight") is None else float(row["weight"]),  # Parquet: null where unweighted
        )


# A process reward model's label for one step. "neutral" is PRM800K's 0 (a step that neither helps nor
# hurts); an unlabelled step (None) carries no supervision, e.g. the steps after the first error in
# Math-Shepherd-style data, or a step an annotator skipped.
StepLabel = Literal["good", "bad", "neutral"]
STEP_LABELS: tuple[str, ...] = get_args(StepLabel)


@dataclass(frozen=True)
class StepSolution:
    """A prompt, one solution split into steps, and a label per step (None: unlabelled).

    ``outcome`` is whether the final answer is right where that is known (GSM8K's ``is_correct``), so that
    outcome supervision (every step labelled by the outcome) and best-of-N evaluation need no second record.
    """

    prompt: Prompt
    steps: tuple[str, ...]
    labels: tuple[StepLabel | None, ...]
    annotator: Annotator
    source: str
    outcome: bool | None = None
    model_name: str = ""
    created_at: datetime | None = None
    client_event_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_prompt(self.prompt)
        if not self.steps:
            raise RecordError("steps", "a solution needs at least one step")
        for i, step in enumerate(self.steps):
            if not isinstance(step, str) or not step.strip():
                raise RecordError(f"steps[{i}]", "expected non-empty text")
        if len(self.labels) != len(self.steps):
            raise RecordError("labels", f"expected one label per step ({len(self.steps)}), got {len(self.labels)}")
        for i, label in enumerate(self.labels):
            if label is not None and label not in STEP_LABELS:
                raise RecordError(f"labels[{i}]", f"expected one of {', '.join(STEP_LABELS)} or null, got {label!r}")
        if not self.source:
            raise RecordError("source", "is empty")

    @property
    def first_error(self) -> int | None:
        """The index of the first step labelled bad, or None when no step is (ProcessBench's convention)."""
        return next((i for i, label in enumerate(self.labels) if label == "bad"), None)

    @property
    def dedupe_key(self) -> str:
        if self.client_event_id:
            return content_hash({"client_event_id": self.client_event_id})
        return content_hash(
            {
                "prompt": self.prompt,
                "steps": list(self.steps),
                "labels": list(self.labels),
                "annotator": [self.annotator.id, self.annotator.kind],
                "source": self.source,
                "model": self.model_name,
            }
        )
