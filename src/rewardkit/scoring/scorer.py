"""The batch scorer: many (prompt, response) rows through a reward model, as fast as the hardware allows.

Library: ``scorer = load_scorer("path/or/hf-id"); result = scorer.score(prompts, responses)``.
CLI: ``rewardkit score INPUT --model M --out OUT`` (see ``rewardkit score --help``).

Why it is fast: rows are tokenized once (``rewardkit.model.formatting.encode``, the same function training
uses), sorted by token length and packed into batches up to a TOKEN budget (rows x padded width), so a batch
of short rows holds many rows and almost no padding; each distinct model input runs once; the forward
(``rewardkit.model.forward``) computes a BERT-family model's last layer only for the position the head
reads; the model runs under ``torch.inference_mode``; the precision is measured once per machine and model
and remembered (``rewardkit.scoring.precision``: bf16 only where it is faster here and ranks the same, its
head and scores fp32 all the same); input order is restored.

Why scores do not depend on the batch: padding is on the right and masked, so a row's score is the same alone
or beside any others up to float rounding: in fp32 within 1e-3 (tested). In bf16 the body's kernels sum in
another order at another padded width and a score moves with its batch by bf16 rounding of the activations
(``docs/serving.md`` gives the measured sizes); ``precision`` says which a scorer uses.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit.model.card import RewardCard
from rewardkit.model.device import resolve_device
from rewardkit.model.ensemble import member_stats, standardize
from rewardkit.model.formatting import MIN_TEXT_TOKENS, collate, encode
from rewardkit.model.heap import TRIM_HEAP_EVERY, release_free_heap
from rewardkit.model.loading import load_reward_model
from rewardkit.model.source import check_model_source
from rewardkit.model.step_aggregate import DEFAULT_STEP_AGGREGATE, aggregate_steps, check_step_aggregate
from rewardkit.model.steps import DEFAULT_STEP_SEPARATOR, encode_steps, logits_at_steps, split_steps, step_token_id
from rewardkit.records import Prompt

# rl.conservative is pure numpy (no model code): the one rl module the scorer uses, so the service, the CLI and the
# RL adapters all aggregate an ensemble the same way
from rewardkit.scoring.aggregate import DEFAULT_UWO_LAMBDA, Aggregate, check_aggregate, uwo
from rewardkit.scoring.head_norms import capture_head_input, model_pad_id, reads_last_token, take_norms
from rewardkit.scoring.precision import choose_dtype, precision_name

log = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 512
# Tokens (rows x padded width) per forward pass. On CPU, 1-4K tokens per batch run fastest per token: the
# activations stay in cache (benchmarks/score_bench.py --budgets measures it: at 16384 a token costs ~20% more
# here). On a GPU, raise it (--token-budget / RK_TOKEN_BUDGET) until memory or throughput stops improving.
DEFAULT_TOKEN_BUDGET = 2048


def model_version(path: str) -> str:
    """A short content-derived version: folder name + hash of its files' names, sizes and mtimes."""
    p = Path(path)
    if not p.is_dir():
        return path
    h = hashlib.sha256()
    for f in sorted(p.rglob("*")):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.relative_to(p)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return f"{p.name}@{h.hexdigest()[:10]}"


@dataclass
class ScoreResult:
    """Per-row results, in input order. ``std`` and ``normalized_std`` are None for a single model."""

    raw: np.ndarray  # (n,) the score before normalization: a single model's raw reward; an ensemble's s, the
    # mean over members of each member's reward standardized with its own reference mean/std
    normalized: np.ndarray  # (n,) (raw - reward_mean) / reward_std of the (ensemble's) card
    std: np.ndarray | None  # (n,) std over ensemble members (ddof 0), in the units of raw
    truncated: list[bool]
    model_version: str
    embedding_norm: np.ndarray | None = None  # (n,) L2 norm of what the (first member's) head reads: drift input
    normalized_std: np.ndarray | None = None  # (n,) std over members in the units of normalized: std / reward_std
    member_min: np.ndarray | None = None  # (n,) the lowest standardized member (ensembles): the WCO reward
    aggregate: str = "mean"  # how raw combines the members: mean, uwo (mean - lambda * std) or wco (member_min)
    step_scores: list[list[float | None]] | None = None  # a process reward model's: per row, each step's
    # sigmoid(logit) (None: a step truncation dropped); raw is their ``step_aggregate`` (model/step_aggregate.py)


def pack_batches(lengths: Sequence[int], token_budget: int, max_rows: int = 512) -> list[list[int]]:
    """Row indices grouped into batches, longest first, each with rows x (its longest row) <= token_budget.

    A single row longer than the budget still gets its own batch (it is never dropped)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]  # sorted descending: the first row is widest
        if current and ((len(current) + 1) * width > token_budget or len(current) >= max_rows):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


@dataclass
class BatchScorer:
    """Scores rows with one model or the mean/std of an ensemble's members."""

    members: list[Any]
    """``rewardkit.model.RewardModel`` objects (one, or an ensemble's members)."""
    card: RewardCard = field(default_factory=RewardCard)
    """The model's ``rewardkit.json`` (an ensemble's own card): temperature and reward_mean/std of the score."""
    max_length: int = DEFAULT_MAX_LENGTH
    token_budget: int = DEFAULT_TOKEN_BUDGET
    dtype: torch.dtype = torch.float32
    version: str = ""
    """The model version named in every served response (``scorer_version``)."""
    member_stats: tuple[tuple[float, float], ...] = ()
    """Ensembles only: each member's (reward_mean, reward_std). A member's raw rewards are standardized with
    them before the members' mean and std are taken (``rewardkit.model.ensemble``: BT leaves each member's
    offset and scale arbitrary); ``card``'s temperature and reward_mean/std are then the ensemble's own, fitted
    on that mean. Empty for a single model, whose raw reward is its score."""
    aggregate: Aggregate = "mean"
    """How an ensemble's raw score combines its members (``rewardkit.scoring.aggregate``): their mean, ``uwo``
    (mean - uwo_lambda * std) or ``wco`` (the lowest member). A single model's score is all three."""
    uwo_lambda: float = DEFAULT_UWO_LAMBDA
    step_aggregate: str = ""
    """A process reward model's solution score from its step scores: min, product, mean or last
    (``model/step_aggregate.py``); empty: the card's choice."""
    _batches_run: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("BatchScorer needs at least one model")
        if self.token_budget < self.max_length:
            raise ValueError(f"token_budget {self.token_budget} must be >= max_length {self.max_length}")
        for m in self.members:
            m.model.eval()
        first = self.members[0].tokenizer
        if any(m.tokenizer.get_vocab() != first.get_vocab() for m in self.members[1:]):
            # rows are tokenized once, with the first member's tokenizer, for every member
            raise ValueError("ensemble members must share one tokenizer (the same backbone)")
        check_aggregate(self.aggregate, self.uwo_lambda)
        if self.is_prm:
            if len(self.members) > 1:
                raise ValueError("an ensemble of process reward models is not supported: score with one model")
            self.step_aggregate = self.step_aggregate or self.card.step_aggregate or DEFAULT_STEP_AGGREGATE
            check_step_aggregate(self.step_aggregate)
            self.step_id = step_token_id(self.tokenizer, self.card.step_token)

    @property
    def is_prm(self) -> bool:
        """A process reward model: rows are scored per step (``score_steps_encoded``)."""
        return self.card.is_prm

    @property
    def precision(self) -> str:
        """ "fp32", "bf16" or "int8": what the scores are computed in (``rewardkit.scoring.precision``)."""
        return precision_name(self.dtype)

    @property
    def row_tags(self) -> dict[str, Any]:
        """What every row ``rewardkit score`` writes says about how its score was made: the precision, and for
        an ensemble scored with another aggregate than the mean, which one (and its lambda)."""
        tags: dict[str, Any] = {"precision": self.precision}
        if len(self.members) > 1 and self.aggregate != "mean":
            tags["aggregate"] = self.aggregate
            if self.aggregate == "uwo":
                tags["uwo_lambda"] = self.uwo_lambda
        return tags

    @property
    def tokenizer(self) -> Any:
        return self.members[0].tokenizer

    def encode(self, prompts: Sequence[Prompt], responses: Sequence[Any]) -> Any:
        """Rows as model input. A process reward model's response is a list of steps, or text split into steps
        at the card's separator (``model/steps.py``)."""
        if not self.is_prm:
            return encode(self.tokenizer, prompts, responses, self.max_length)
        sep = self.card.step_separator or DEFAULT_STEP_SEPARATOR
        steps = [split_steps(r, sep) if isinstance(r, str) else list(r) for r in responses]
        return encode_steps(self.tokenizer, prompts, steps, self.max_length, self.step_id)

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], on_batch: Any = None) -> ScoreResult:
        """Score n rows; ``on_batch(rows_done)`` is called after each batch (progress bars)."""
        enc = self.encode(prompts, responses)
        if self.is_prm:
            raw, steps = self.score_steps_encoded(enc, on_batch=on_batch)
            return self.result(raw, enc.truncated, step_scores=steps)
        scores, norms = self.run_encoded(enc, on_batch=on_batch)  # (members, n), (n,)
        return self.result(scores, enc.truncated, norms)

    def score_steps(
        self, prompts: Sequence[Prompt], steps: Sequence[Sequence[str]], on_batch: Any = None
    ) -> ScoreResult:
        """A process reward model's scores of n solutions given as lists of steps: ``step_scores`` per row and
        ``raw`` their ``step_aggregate``; ONE forward pass per solution reads every step."""
        if not self.is_prm:
            raise ValueError("score_steps needs a process reward model (its rewardkit.json names a step_token)")
        return self.score(prompts, [list(s) for s in steps], on_batch=on_batch)

    def result(
        self,
        member_scores: np.ndarray,
        truncated: Sequence[bool],
        norms: np.ndarray | None = None,
        step_scores: list[list[float | None]] | None = None,
    ) -> ScoreResult:
        """The ScoreResult of rows' member scores (members, n) as ``score_encoded`` returns them: the mean over
        members (or this scorer's ``aggregate`` of them), its normalized form, and for an ensemble the std over
        members in both units."""
        mean = member_scores.mean(axis=0)
        ensemble = member_scores.shape[0] > 1
        std = member_scores.std(axis=0) if ensemble else None  # ddof 0, as rl.conservative's
        normalized_std = None if std is None else std / self.card.reward_std
        lowest = member_scores.min(axis=0) if ensemble else None
        res = ScoreResult(mean, self.normalize(mean), std, list(truncated), self.version, norms, normalized_std, lowest)
        res.step_scores = step_scores
        return self.aggregated(res, self.aggregate, self.uwo_lambda)

    def aggregated(self, res: ScoreResult, aggregate: Aggregate, uwo_lambda: float = DEFAULT_UWO_LAMBDA) -> ScoreResult:
        """``res`` (a mean) with raw and normalized replaced by ``aggregate`` of the members; std is kept. The
        service scores with the mean and aggregates per request. A single model's result is returned as it is."""
        check_aggregate(aggregate, uwo_lambda)
        if aggregate == res.aggregate or res.std is None or res.member_min is None:
            return res
        if res.aggregate != "mean":
            raise ValueError(f"cannot re-aggregate a {res.aggregate} result as {aggregate}: score with the mean")
        raw = res.member_min if aggregate == "wco" else uwo(res.raw, res.std, uwo_lambda)
        return replace(res, raw=raw, normalized=self.normalize(raw), aggregate=aggregate)

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        return (raw - self.card.reward_mean) / self.card.reward_std

    def score_encoded(self, enc: Any, on_batch: Any = None) -> np.ndarray:
        """Member scores (members, n) of already-encoded rows, in input order (no norms: no hook on this hot
        path, which the service and the dtype probe use): raw rewards for a single model, each member's reward
        on its own reference scale for an ensemble (``member_stats``); ``result`` combines them. A process
        reward model's: the step aggregate of each row."""
        if self.is_prm:
            return self.score_steps_encoded(enc, on_batch)[0]
        return self.run_encoded(enc, on_batch, with_norms=False)[0]

    def score_steps_encoded(self, enc: Any, on_batch: Any = None) -> tuple[np.ndarray, list[list[float | None]]]:
        """A process reward model's (aggregate scores (1, n), step scores per row) of encoded rows
        (``model.steps.StepEncoded``), in input order: ONE forward pass per distinct solution, every step's
        score read from it at its step token, sigmoid(logit); steps truncation dropped are None."""
        first, inverse = enc.distinct()
        distinct = enc if len(first) == len(enc) else enc.select(first)
        steps: list[list[float | None]] = [[] for _ in range(len(distinct))]
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        member = self.members[0]
        positions, cut = distinct.step_positions, distinct.cut_steps
        with torch.inference_mode():
            for rows in pack_batches(distinct.lengths, self.token_budget) if len(distinct) else []:
                batch = {k: v.to(member.device) for k, v in collate(distinct, rows, pad_id).items()}
                logits = logits_at_steps(member.model, batch, [positions[r] for r in rows])  # [n_i] per row
                for r, row_logits in zip(rows, logits):
                    steps[r] = [*torch.sigmoid(row_logits).cpu().tolist(), *[None] * cut[r]]
                if on_batch is not None:
                    on_batch(len(rows))
                self._batches_run += 1
                if self._batches_run % TRIM_HEAP_EVERY == 0:
                    release_free_heap()
        if on_batch is not None and len(distinct) < len(enc):
            on_batch(len(enc) - len(distinct))
        per_row = [steps[i] for i in inverse]
        raw = np.array([aggregate_steps(s, self.step_aggregate) for s in per_row], dtype=np.float64)
        return raw.reshape(1, len(per_row)), per_row

    def run_encoded(
        self, enc: Any, on_batch: Any = None, with_norms: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Member scores (members, n) as ``score_encoded`` gives them and the first member's embedding norms (n,)
        of encoded rows, in input order.

        Rows with the same model input (repeats, or texts that differ only past the truncation point: a GRPO
        group's identical completions, an evaluation probe appended to a response already cut) run once.
        The norms come from a hook on the head during the same forward pass: drift checks get them for free.
        They are None when the head could not be found or did not show its input for every batch (then no
        norm is better than a wrong one). Not for concurrent calls on one scorer: the hook is per model."""
        first, inverse = enc.distinct()
        if len(first) == len(enc):
            return self._run_distinct(enc, on_batch, with_norms)
        out, norms = self._run_distinct(enc.select(first), on_batch, with_norms)
        if on_batch is not None:
            on_batch(len(enc) - len(first))  # the repeats: done without a forward pass
        return out[:, inverse], None if norms is None else norms[inverse]

    def _run_distinct(self, enc: Any, on_batch: Any, with_norms: bool) -> tuple[np.ndarray, np.ndarray | None]:
        n = len(enc.input_ids)
        out = np.zeros((len(self.members), n), dtype=np.float64)
        norms: np.ndarray | None = np.zeros(n, dtype=np.float64) if with_norms else None
        if n == 0:
            return out, None
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        first = self.members[0].model
        reads_last, head_pad_id = reads_last_token(first), model_pad_id(first, pad_id)
        with torch.inference_mode(), capture_head_input(first) if with_norms else nullcontext([]) as seen:
            for rows in pack_batches(enc.lengths, self.token_budget):
                batch = collate(enc, rows, pad_id)
                for k, member in enumerate(self.members):
                    # (B, attributes) -> (B,) the card's weighted aggregate (identity for a scalar head)
                    out[k, rows] = member.aggregate(member.forward(batch)).cpu().numpy()
                    if k == 0 and with_norms:  # the hook is on the first member only: its one capture is this batch's
                        batch_norms = take_norms(seen, len(rows), batch["input_ids"], head_pad_id, reads_last)
                        if norms is not None and batch_norms is not None:
                            norms[rows] = batch_norms
                        else:
                            norms = None
                if on_batch is not None:
                    on_batch(len(rows))
                self._batches_run += 1
                if self._batches_run % TRIM_HEAP_EVERY == 0:
                    release_free_heap()
        if self.member_stats:  # an ensemble: each member on its own reference scale before they are combined
            out = standardize(out, self.member_stats)
        return out, norms


def scorer_for(loaded: Any, version: str = "", **options: Any) -> BatchScorer:
    """A BatchScorer over a loaded RewardModel or Ensemble, reading its ``RewardCard`` as it is: for an
    ensemble its own card (temperature and normalization fitted on the ensemble score) and each member's
    reference statistics. ``options``: BatchScorer's (max_length, token_budget); max_length defaults to the
    card's."""
    members = getattr(loaded, "members", None)
    card = getattr(loaded, "card", None) or RewardCard()
    options.setdefault("max_length", card.max_length or DEFAULT_MAX_LENGTH)
    return BatchScorer(
        list(members or [loaded]),
        card,
        version=version,
        member_stats=tuple(member_stats(members)) if members is not None else (),
        **options,
    )


def scorer_version(path: str, card: RewardCard) -> str:
    """The version a scorer names: the folder's content-derived ``model_version``, plus the first 12 characters
    of the snapshot it was trained on when the card knows it."""
    return model_version(path) + (f"+{card.snapshot_id[:12]}" if card.snapshot_id else "")


class MaxLengthError(ValueError):
    """A max_length that leaves too few tokens for text once the model's special tokens are placed."""


def check_max_length(max_length: int | None) -> None:
    """A MaxLengthError for a max_length below what any model needs (cheap: before anything loads; the exact
    floor, with the tokenizer's special tokens, is ``check_max_length_fits``)."""
    if max_length is not None and max_length < MIN_TEXT_TOKENS:
        raise MaxLengthError(
            f"max_length must be at least {MIN_TEXT_TOKENS} tokens of text plus the model's special tokens, "
            f"got {max_length}"
        )


def check_max_length_fits(scorer: BatchScorer) -> None:
    """A MaxLengthError when the max_length leaves under MIN_TEXT_TOKENS for text with this tokenizer's special
    tokens (encoding no rows runs that check alone), before any row is read into a batch."""
    try:
        scorer.encode([], [])
    except ValueError as exc:
        raise MaxLengthError(str(exc)) from None


def load_scorer(
    path: str,
    *,
    max_length: int | None = None,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    dtype: str = "auto",
    threads: int | None = None,
    device: str = "auto",
    aggregate: Aggregate = "mean",
    uwo_lambda: float = DEFAULT_UWO_LAMBDA,
    step_aggregate: str = "",
) -> BatchScorer:
    """Load a reward model (rewardkit folder, ensemble folder or any HF sequence-classification id/path) onto
    ``device`` (auto: the GPU when torch sees one; see ``rewardkit.model.device``), in the precision ``dtype``
    asks for (auto: the one decided for this machine and model, ``rewardkit.scoring.precision``).

    ``aggregate``/``uwo_lambda``: how an ensemble's score combines its members (``BatchScorer.aggregate``).
    ``step_aggregate``: a process reward model's solution score from its step scores (empty: the card's).
    A process reward model scores in fp32 under ``dtype`` auto (the precision trial measures outcome scores).

    Raises ModelNotFoundError when ``path`` names no model, MaxLengthError for a max_length too small for it."""
    check_max_length(max_length)
    check_aggregate(aggregate, uwo_lambda)
    if threads:
        torch.set_num_threads(threads)
    try:  # a RewardModel, or an Ensemble with its own card
        loaded = load_reward_model(path, device=resolve_device(device))
    except (OSError, ValueError):
        # transformers' reason for a mistyped name is often another problem (a missing sentencepiece, the
        # network): say what is wrong with the name; checked only on failure, so a load costs no hub round trip
        check_model_source(path)
        raise
    card = loaded.card
    length = max_length if max_length is not None else card.max_length or DEFAULT_MAX_LENGTH
    scorer = scorer_for(
        loaded,
        scorer_version(path, card),
        max_length=length,
        token_budget=max(token_budget, length),
        aggregate=aggregate,
        uwo_lambda=uwo_lambda,
        step_aggregate=step_aggregate,
    )
    check_max_length_fits(scorer)
    scorer.dtype = torch.float32 if scorer.is_prm and dtype == "auto" else choose_dtype(scorer, dtype)
    return scorer
