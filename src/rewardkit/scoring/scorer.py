"""The batch scorer: many (prompt, response) rows through a reward model, as fast as the hardware allows.

Library: ``scorer = load_scorer("path/or/hf-id"); result = scorer.score(prompts, responses)``.
CLI: ``rewardkit score INPUT --model M --out OUT`` (see ``rewardkit score --help``).

Why it is fast: rows are tokenized once (``rewardkit.model.formatting.encode``, the same function training
uses), sorted by token length and packed into batches up to a TOKEN budget (rows x padded width), so a batch
of short rows holds many rows and almost no padding; each distinct model input runs once; the forward
(``rewardkit.model.forward``) computes a BERT-family model's last layer only for the position the head
reads; the model runs under ``torch.inference_mode``; the dtype is chosen by measuring (bf16 only where it
is faster here and ranks the same); input order is restored.

Why scores do not depend on the batch: padding is on the right and masked, so a row's score is the same alone
or beside any others up to float rounding (tested within 1e-3 in fp32).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit.model.backbone import head_module_name
from rewardkit.model.ensemble import member_stats, standardize
from rewardkit.model.formatting import MIN_TEXT_TOKENS, collate, encode
from rewardkit.model.heap import TRIM_HEAP_EVERY, release_free_heap
from rewardkit.model.precision import bf16_matmul_is_faster
from rewardkit.model.source import check_model_source
from rewardkit.records import Prompt
from rewardkit.settings import SCORE_DTYPES

log = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 512
# Tokens (rows x padded width) per forward pass. On CPU, 1-4K tokens per batch run fastest per token: the
# activations stay in cache (benchmarks/score_bench.py --budgets measures it: at 16384 a token costs ~20% more
# here). On a GPU, raise it (--token-budget / RK_TOKEN_BUDGET) until memory or throughput stops improving.
DEFAULT_TOKEN_BUDGET = 2048


@dataclass
class ModelCard:
    """What scoring needs from a model's ``rewardkit.json`` (all optional for plain HF models)."""

    temperature: float = 1.0
    """Calibration temperature T: P(a better than b) = sigmoid((r_a - r_b) / T)."""
    reward_mean: float = 0.0
    """Mean raw reward on the reference set (normalized = (raw - mean) / std)."""
    reward_std: float = 1.0
    """Std of the raw reward on the reference set."""
    version: str = ""
    """The model version named in every served response."""
    max_length: int | None = None
    """The max_length the model was trained with, used when scoring does not set one."""
    member_stats: tuple[tuple[float, float], ...] = ()
    """Ensembles only: each member's (reward_mean, reward_std). A member's raw rewards are standardized with
    them before the members' mean and std are taken (``rewardkit.model.ensemble``: BT leaves each member's
    offset and scale arbitrary); temperature and reward_mean/std above are then the ensemble's own, fitted on
    that mean. Empty for a single model, whose raw reward is its score."""


def _number(d: Any, *paths: str) -> float | None:
    """The first finite number found at one of the dotted ``paths`` in nested dicts."""
    for path in paths:
        node = d
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, (int, float)) and math.isfinite(node):
            return float(node)
    return None


def card_from_dict(raw: dict[str, Any], version: str) -> ModelCard:
    """Read temperature, normalization and max_length from a rewardkit.json-like dict (``RewardCard`` fields;
    a nested ``calibration``/``normalization`` layout is accepted too). ``version``: the card's
    ``version`` if it has one, else the given one; the snapshot id is appended when known."""
    std = _number(raw, "reward_std", "normalization.std", "normalization.reward_std", "stats.std")
    max_len = _number(raw, "max_length", "config.max_length")
    return ModelCard(
        temperature=_number(raw, "temperature", "calibration.temperature") or 1.0,
        reward_mean=_number(raw, "reward_mean", "normalization.mean", "normalization.reward_mean", "stats.mean") or 0.0,
        reward_std=std if std and std > 0 else 1.0,
        version=str(raw.get("version") or version) + (f"+{raw['snapshot_id'][:12]}" if raw.get("snapshot_id") else ""),
        max_length=int(max_len) if max_len else None,
    )


def model_version(path: str) -> str:
    """A short content-derived version: folder name + hash of its files' names, sizes and mtimes."""
    import hashlib

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
    card: ModelCard = field(default_factory=ModelCard)
    max_length: int = DEFAULT_MAX_LENGTH
    token_budget: int = DEFAULT_TOKEN_BUDGET
    dtype: torch.dtype = torch.float32
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

    @property
    def tokenizer(self) -> Any:
        return self.members[0].tokenizer

    def encode(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> Any:
        return encode(self.tokenizer, prompts, responses, self.max_length)

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], on_batch: Any = None) -> ScoreResult:
        """Score n rows; ``on_batch(rows_done)`` is called after each batch (progress bars)."""
        enc = self.encode(prompts, responses)
        scores, norms = self.run_encoded(enc, on_batch=on_batch)  # (members, n), (n,)
        return self.result(scores, enc.truncated, norms)

    def result(
        self, member_scores: np.ndarray, truncated: Sequence[bool], norms: np.ndarray | None = None
    ) -> ScoreResult:
        """The ScoreResult of rows' member scores (members, n) as ``score_encoded`` returns them: the mean over
        members, its normalized form, and for an ensemble the std over members in both units."""
        mean = member_scores.mean(axis=0)
        std = member_scores.std(axis=0) if member_scores.shape[0] > 1 else None
        normalized_std = None if std is None else std / self.card.reward_std
        return ScoreResult(mean, self.normalize(mean), std, list(truncated), self.card.version, norms, normalized_std)

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        return (raw - self.card.reward_mean) / self.card.reward_std

    def score_encoded(self, enc: Any, on_batch: Any = None) -> np.ndarray:
        """Member scores (members, n) of already-encoded rows, in input order (no norms: no hook on this hot
        path, which the service and the dtype probe use): raw rewards for a single model, each member's reward
        on its own reference scale for an ensemble (``ModelCard.member_stats``); ``result`` combines them."""
        return self.run_encoded(enc, on_batch, with_norms=False)[0]

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
        if self.card.member_stats:  # an ensemble: each member on its own reference scale before they are combined
            out = standardize(out, self.card.member_stats)
        return out, norms


def take_norms(
    seen: list[torch.Tensor], n_rows: int, input_ids: torch.Tensor, pad_id: int, reads_last: bool
) -> np.ndarray | None:
    """Empty ``seen`` (what the head hook captured during one batch) into that batch's (n_rows,) norms; None
    unless it holds exactly one capture of the batch's rows."""
    hidden = seen[0] if len(seen) == 1 and seen[0].shape[0] == n_rows else None
    seen.clear()
    return None if hidden is None else read_position_norms(hidden, input_ids, pad_id, reads_last).cpu().numpy()


def reads_last_token(model: Any) -> bool:
    """Does the head read the last real token (HF decoders: a ``score`` head over every position) rather than
    the first (encoders: ``classifier``, given a pooled vector or reading position 0 itself)?"""
    try:
        return head_module_name(model) == "score"
    except ValueError:
        return False


def model_pad_id(model: Any, fallback: int) -> int:
    pad = getattr(getattr(model, "config", None), "pad_token_id", None)
    return int(pad) if pad is not None else fallback


@contextmanager
def capture_head_input(model: Any) -> Iterator[list[torch.Tensor]]:
    """Inside the block, the scalar head's input of each forward pass is appended to the yielded list
    (a forward pre-hook; removed on exit, also on errors). A model without a recognisable head, or a head
    called with keyword arguments only, leaves the list empty."""
    seen: list[torch.Tensor] = []
    try:
        head = getattr(model, head_module_name(model))
    except ValueError:
        yield seen
        return

    def hook(module: Any, args: tuple[Any, ...]) -> None:
        if args and isinstance(args[0], torch.Tensor):
            seen.append(args[0].detach())

    handle = head.register_forward_pre_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def read_position_norms(hidden: torch.Tensor, input_ids: torch.Tensor, pad_id: int, reads_last: bool) -> torch.Tensor:
    """(B,) L2 norm of the vector whose head output becomes the reward. [B, H] (a pooled vector): as is.
    [B, T, H]: position 0 for encoder heads (RoBERTa-style); for decoder heads the rightmost token that is not
    the pad id, the same rule transformers uses to read the reward (so pad == eos reads where HF reads)."""
    if hidden.dim() == 3 and not reads_last:
        hidden = hidden[:, 0]
    elif hidden.dim() == 3:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        index = ((input_ids != pad_id).long() * positions).argmax(dim=-1)
        hidden = hidden[torch.arange(hidden.shape[0], device=hidden.device), index.to(hidden.device)]
    return hidden.float().norm(dim=-1)


def quantize_int8(scorer: BatchScorer) -> torch.dtype:
    """Swap each member for a CPU copy whose transformer body runs int8 Linears (``rewardkit.model.int8``:
    per-channel int8 weights, 8-bit inputs quantized per call; embeddings, LayerNorm, softmax, pooler and
    head stay fp32) and return ``torch.qint8``; a model whose body has no ``nn.Linear`` (GPT-2's ``Conv1D``)
    stays as it is, with a warning, and fp32 is returned.

    Opt-in only (``dtype="int8"``), never chosen by "auto": 1.3-1.4x faster than fp32 on the CPUs measured
    and close in ranking (Spearman 0.998 with fp32 on two trained models' held-out pairs), but activation
    scales depend on the whole batch, so int8 scores are NOT batch-invariant to 1e-3 (the scorer's promise),
    and the error grows with length. ``benchmarks/score_bench.py --int8`` prints its speed and ranking."""
    from rewardkit.model.int8 import quantize_body

    copies = [_merged(copy.deepcopy(m.model)).cpu().float() for m in scorer.members]  # upcast on the CPU, not the GPU
    if not all(quantize_body(c) for c in copies):
        log.warning("int8: the model's body has no nn.Linear layers to quantize; scoring in fp32")
        return scorer.dtype
    for m, quantized in zip(scorer.members, copies):
        # the int8 kernels are CPU kernels (fbgemm): a model loaded on a GPU moves back for them
        if m.device.type != "cpu":
            log.warning("int8 runs on the CPU: moving the model off %s", m.device)
        m.model = quantized
    scorer.dtype = torch.qint8
    return scorer.dtype


def _merged(model: Any) -> Any:
    """A peft model with its adapters merged into the base weights (int8 swaps plain Linears only; a LoRA
    layer's own Linears must not be swapped one by one); any other model as it is."""
    merge = getattr(model, "merge_and_unload", None)
    return merge() if callable(merge) else model


def choose_dtype(scorer: BatchScorer, requested: str = "auto") -> torch.dtype:
    """fp32, or bf16 where it is at least 15% faster on this machine AND ranks a probe batch the same;
    ``"int8"`` (opt-in, see ``quantize_int8``) returns ``torch.qint8`` where the model has Linears to quantize.

    Many CPUs without AMX/AVX512-BF16 run bf16 slower than fp32, so this is measured, not assumed."""
    if requested == "fp32":
        return torch.float32
    if requested == "bf16":
        for m in scorer.members:
            m.model = m.model.to(torch.bfloat16)  # asked for, so no trial: the loaded weights themselves
        return torch.bfloat16
    if requested == "int8":
        return quantize_int8(scorer)
    if requested != "auto":
        raise ValueError(f"dtype must be one of {', '.join(SCORE_DTYPES)}, got {requested!r}")
    device = scorer.members[0].device.type
    if device == "mps" or (device == "cpu" and not bf16_matmul_is_faster()):
        return torch.float32  # no native bf16 on this CPU (or MPS, where bf16 needs macOS 14): bf16 cannot win
    probe_p = ["What is the capital of France, and why is it famous?"] * 32
    probe_r = [("Paris is the capital. " * (1 + i % 8)) + f"Answer {i}." for i in range(32)]
    enc = scorer.encode(probe_p, probe_r)

    def timed() -> tuple[float, np.ndarray]:
        scorer.score_encoded(enc)  # warm-up
        t = time.perf_counter()
        s = scorer.score_encoded(enc)
        return time.perf_counter() - t, s[0]

    t32, s32 = timed()
    # the trial runs on bf16 COPIES: casting the model down and back up would round its fp32 weights
    originals = [m.model for m in scorer.members]
    for m in scorer.members:
        m.model = copy.deepcopy(m.model).to(torch.bfloat16)
    t16, s16 = timed()
    same_rank = bool(np.array_equal(np.argsort(s32), np.argsort(s16))) or _spearman(s32, s16) > 0.99
    if t16 * 1.15 < t32 and same_rank:
        return torch.bfloat16
    for m, original in zip(scorer.members, originals):
        m.model = original
    return torch.float32


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if ra.std() == 0 or rb.std() == 0:
        return 1.0
    return float(np.corrcoef(ra, rb)[0, 1])


def card_of(loaded: Any, version: str) -> ModelCard:
    """The scoring card of a loaded RewardModel or Ensemble: for an ensemble its own card (temperature and
    normalization fitted on the ensemble score) and each member's reference statistics."""
    card = getattr(loaded, "card", None)
    raw = dict(vars(card)) if card is not None and not isinstance(card, dict) else dict(card or {})
    scoring = card_from_dict(raw, version)
    members = getattr(loaded, "members", None)
    if members is not None:  # an Ensemble
        scoring.member_stats = tuple(member_stats(members))
    return scoring


def members_of(loaded: Any) -> list[Any]:
    return list(getattr(loaded, "members", None) or [loaded])


class MaxLengthError(ValueError):
    """A max_length that leaves too few tokens for text once the model's special tokens are placed."""


def check_max_length(max_length: int | None) -> None:
    """A MaxLengthError for a max_length below what any model needs (cheap: before anything loads; the exact
    floor, with the tokenizer's special tokens, is ``check_max_length_fits``)."""
    if max_length is not None and max_length < MIN_TEXT_TOKENS:
        raise MaxLengthError(
            f"max_length must be at least {MIN_TEXT_TOKENS} tokens of text plus the model's special tokens, got {max_length}"
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
) -> BatchScorer:
    """Load a reward model (rewardkit folder, ensemble folder or any HF sequence-classification id/path) onto
    ``device`` (auto: the GPU when torch sees one; see ``rewardkit.model.device``).

    Raises ModelNotFoundError when ``path`` names no model, MaxLengthError for a max_length too small for it."""
    check_max_length(max_length)
    if threads:
        torch.set_num_threads(threads)
    from rewardkit.model import load_reward_model
    from rewardkit.model.device import resolve_device

    try:  # a RewardModel, or an Ensemble with its own card
        loaded = load_reward_model(path, device=resolve_device(device))
    except (OSError, ValueError):
        # transformers' reason for a mistyped name is often another problem (a missing sentencepiece, the
        # network): say what is wrong with the name; checked only on failure, so a load costs no hub round trip
        check_model_source(path)
        raise
    members = members_of(loaded)
    card = card_of(loaded, model_version(path))
    length = max_length if max_length is not None else card.max_length or DEFAULT_MAX_LENGTH
    scorer = BatchScorer(members, card, max_length=length, token_budget=max(token_budget, length))
    check_max_length_fits(scorer)
    scorer.dtype = choose_dtype(scorer, dtype)
    return scorer


def make_score_fn(model: Any) -> Any:
    """Adapter for ``rewardkit.evaluate``: a loaded RewardModel/Ensemble -> ``fn(prompts, responses) -> (n,)``."""
    members = members_of(model)
    card = card_of(model, "")
    scorer = BatchScorer(members, card, max_length=card.max_length or DEFAULT_MAX_LENGTH)

    def score_fn(prompts: Sequence[Prompt], responses: Sequence[str]) -> np.ndarray:
        return scorer.score(prompts, responses).raw

    return score_fn
