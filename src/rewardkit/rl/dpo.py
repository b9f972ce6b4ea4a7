"""The DPO implicit reward: a DPO-trained policy and its reference scored like a reward model.

    r(x, y) = beta * (log pi(y|x) - log pi_ref(y|x))        normalize="sum" (DPO; RewardBench's DPO rule)
    r(x, y) = beta * (log pi(y|x) - log pi_ref(y|x)) / |y|  normalize="mean" (SimPO-style length average)

log pi(y|x) is summed over the RESPONSE tokens only (the prompt's tokens are context). Without a reference
(``ref=None``) the reward is ``beta * log pi(y|x)`` (summed or averaged): SimPO's reference-free reward.

Library::

    dpo = DPOReward.load("path/to/policy", "path/to/reference", beta=0.1)
    rewards = dpo.score(prompts, responses)          # (n,) numpy
    score_fn = dpo.score_fn()                        # fn(prompts, responses) -> (n,) for rewardkit.evaluate

The input is what the reward models get (``rewardkit.model.formatting.encode``): the POLICY's chat template
when its tokenizer has one (the prompt rendered with the generation prompt, the assistant turn's text and the
template's end-of-turn tokens as the response, as TRL's DPOTrainer builds its examples), else the decoder
template; too-long rows lose the start of the prompt (left truncation), then the end of the response. Rows are
packed into batches by a token budget (``rewardkit.scoring.scorer.pack_batches``) and each batch runs once
through each model. Any causal LM that ``AutoModelForCausalLM`` loads; the two models must share one tokenizer
(vocabulary and special tokens), else ``TokenizerMismatchError``.

Which tokens are the response: the encoded row's tokens after the longest prefix it shares with the same
prompt encoded with a placeholder reply (two placeholders, the shorter shared prefix): a token that straddles
the prompt/response boundary (BPE merging "Assistant: " with "excellent") counts as response, as in
``encode``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rewardkit.model.formatting import Encoded, collate, encode, shared_prefix
from rewardkit.records import Prompt
from rewardkit.scoring.scorer import DEFAULT_TOKEN_BUDGET, pack_batches

NORMALIZE = ("sum", "mean")
UNBOUNDED = 1 << 30
"""A max_length no row reaches: the untruncated encodings that locate each response."""
PLACEHOLDERS = ("A", "B")
"""Two replies that differ in their first character: at least one of them differs from any response's first
token, so the shorter of the two shared prefixes ends exactly where the response begins."""
DEFAULT_MAX_LENGTH = 2048


class TokenizerMismatchError(ValueError):
    """The policy and the reference tokenize differently: their log-probs are not of the same tokens."""


@dataclass
class DPOScores:
    """Per row: the reward, its parts and what was cut."""

    rewards: np.ndarray
    """(n,) the implicit reward with the beta and normalization asked for."""
    policy_logps: np.ndarray
    """(n,) log pi(y|x) summed over the response tokens."""
    ref_logps: np.ndarray | None
    """(n,) log pi_ref(y|x) summed over the response tokens; None without a reference."""
    response_tokens: np.ndarray
    """(n,) how many response tokens were scored."""
    truncated: list[bool]


def reward_kind(has_reference: bool) -> str:
    """What a DPO score is: "dpo" with a reference model, "dpo-reference-free" (``beta * log pi(y|x)``, SimPO's
    reward) without one."""
    return "dpo" if has_reference else "dpo-reference-free"


def implicit_reward(
    policy_logps: np.ndarray,
    ref_logps: np.ndarray | None,
    response_tokens: np.ndarray,
    beta: float,
    normalize: str = "sum",
) -> np.ndarray:
    """beta * (policy - ref), summed (``"sum"``) or per response token (``"mean"``); ref None: beta * policy."""
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZE)}, got {normalize!r}")
    if not (beta > 0 and np.isfinite(beta)):
        raise ValueError(f"beta must be a positive number, got {beta!r}")
    margin = np.asarray(policy_logps, dtype=np.float64)
    if ref_logps is not None:
        margin = margin - np.asarray(ref_logps, dtype=np.float64)
    if normalize == "mean":
        margin = margin / np.maximum(np.asarray(response_tokens, dtype=np.float64), 1.0)
    return beta * margin


def tokenizer_difference(policy: Any, ref: Any) -> str | None:
    """Why two tokenizers do not give the same ids for the same text (None when they do): the vocabulary
    (token -> id) and the special tokens (bos, eos, pad, unk and the rest of the special-token map)."""
    a, b = policy.get_vocab(), ref.get_vocab()
    if a != b:
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        moved = sorted(t for t in set(a) & set(b) if a[t] != b[t])
        example = (
            f"{only_a[0]!r} is only in the policy's"
            if only_a
            else f"{only_b[0]!r} is only in the reference's"
            if only_b
            else f"{moved[0]!r} has id {a[moved[0]]} vs {b[moved[0]]}"
        )
        return f"different vocabularies ({len(a)} vs {len(b)} tokens; {example})"
    for name in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
        x, y = getattr(policy, name, None), getattr(ref, name, None)
        if x != y and x is not None and y is not None:  # a missing pad is given one (eos) before scoring
            return f"different special tokens ({name} {x} vs {y})"
    return None


def check_same_tokenizer(policy: Any, ref: Any) -> None:
    reason = tokenizer_difference(policy, ref)
    if reason is not None:
        raise TokenizerMismatchError(
            f"the policy and the reference model must share one tokenizer, but they have {reason}"
        )


def response_starts(tokenizer: Any, prompts: Sequence[Prompt], responses: Sequence[str], enc: Encoded) -> list[int]:
    """Per encoded row, the index of its first response token (see the module docstring)."""
    n = len(enc)
    cut = [i for i in range(n) if enc.truncated[i]]
    full: dict[int, list[int]] = {i: enc.input_ids[i] for i in range(n)}
    if cut:
        again = encode(tokenizer, [prompts[i] for i in cut], [responses[i] for i in cut], UNBOUNDED)
        full.update(zip(cut, again.input_ids))
    keys = [p if isinstance(p, str) else json.dumps(p) for p in prompts]
    distinct = list(dict.fromkeys(keys))
    first_of: dict[str, Prompt] = {}
    for key, prompt in zip(keys, prompts):
        first_of.setdefault(key, prompt)
    probes = [
        encode(tokenizer, [first_of[k] for k in distinct], [reply] * len(distinct), UNBOUNDED).input_ids
        for reply in PLACEHOLDERS
    ]
    probe_of = {k: [p[j] for p in probes] for j, k in enumerate(distinct)}
    starts = []
    for i in range(n):
        ids = full[i]
        boundary = min(shared_prefix(ids, probe) for probe in probe_of[keys[i]])
        row = enc.input_ids[i]
        if not enc.response_cut[i]:
            start = len(row) - (len(ids) - boundary)  # a left-cut prompt leaves the response's length alone
        else:
            start = _start_in_cut_row(row, ids, boundary)
        starts.append(max(start, 1))  # the first token has nothing to be predicted from
    return starts


def _start_in_cut_row(row: list[int], full: list[int], boundary: int) -> int:
    """Where the response begins in a row whose response was cut from the right: the earliest position from
    which the row continues as the response does (its last token may be the template's end, e.g. EOS)."""
    response = full[boundary:]
    for j in range(1, len(row)):
        m = len(row) - j
        if row[j:] == response[:m] or (row[j:-1] == response[: m - 1] and row[-1] == full[-1]):
            return j
    return len(row) - 1


def sequence_logps(
    model: Any, batch: dict[str, torch.Tensor], starts: Sequence[int], lengths: Sequence[int]
) -> torch.Tensor:
    """(B,) sum of log p(token | tokens before it) over each row's tokens starts[b] .. lengths[b] - 1.

    Only the positions that predict a response token go through the LM head (``logits_to_keep``, where the
    model takes it): with a vocabulary of 32K-150K the head costs as much as the body, and prompts are long."""
    device = next(model.parameters()).device
    ids = batch["input_ids"].to(device)
    width = ids.shape[1]
    positions = torch.arange(width, device=device)
    start = torch.tensor(list(starts), device=device)[:, None]
    end = torch.tensor(list(lengths), device=device)[:, None]
    target = (positions >= start) & (positions < end)  # (B, T): the tokens whose probability counts
    target[:, 0] = False
    rows, cols = target.nonzero(as_tuple=True)  # (N,) each: a scored token
    first = int(cols.min()) - 1 if len(cols) else 0  # the first position whose logits are read
    inputs = {"input_ids": ids, "attention_mask": batch["attention_mask"].to(device), "use_cache": False}
    if _takes_logits_to_keep(model):
        logits = model(**inputs, logits_to_keep=torch.arange(first, width, device=device)).logits  # (B, T-first, V)
    else:
        logits = model(**inputs).logits[:, first:]
    picked = logits[rows, cols - 1 - first].float()  # (N, V) the logits that predicted each token (float32 sums)
    token_logp = picked.gather(1, ids[rows, cols][:, None]).squeeze(1) - picked.logsumexp(dim=-1)
    return torch.zeros(len(starts), device=device, dtype=torch.float32).index_add_(0, rows, token_logp).cpu()


def _takes_logits_to_keep(model: Any) -> bool:
    return "logits_to_keep" in inspect.signature(model.forward).parameters


class DPOReward:
    """A DPO policy and its reference (or none: reference-free) as a reward model; see the module docstring."""

    def __init__(
        self,
        policy: Any,
        tokenizer: Any,
        ref: Any = None,
        *,
        ref_tokenizer: Any = None,
        beta: float = 0.1,
        normalize: str = "sum",
        max_length: int | None = None,
        token_budget: int = DEFAULT_TOKEN_BUDGET,
    ) -> None:
        if ref_tokenizer is not None:
            check_same_tokenizer(tokenizer, ref_tokenizer)
        implicit_reward(np.zeros(1), None, np.ones(1), beta, normalize)  # validates beta and normalize
        self.policy, self.ref, self.tokenizer = policy.eval(), None if ref is None else ref.eval(), tokenizer
        self.beta, self.normalize = beta, normalize
        positions = getattr(policy.config, "max_position_embeddings", None) or getattr(
            policy.config, "n_positions", None
        )
        self.max_length = max_length or min(positions or DEFAULT_MAX_LENGTH, DEFAULT_MAX_LENGTH)
        if positions and self.max_length > positions:
            raise ValueError(f"max_length {self.max_length} exceeds the policy's {positions} positions")
        self.token_budget = max(token_budget, self.max_length)

    @classmethod
    def load(
        cls,
        policy_path: str,
        ref_path: str | None = None,
        *,
        device: str = "auto",
        dtype: str = "fp32",
        **options: Any,
    ) -> DPOReward:
        """Load both models with ``AutoModelForCausalLM`` (tokenizers checked before the weights load)."""
        import transformers
        from packaging.version import Version
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from rewardkit.model.device import resolve_device
        from rewardkit.model.source import check_model_source

        torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}.get(dtype)
        if torch_dtype is None:
            raise ValueError(f"dtype must be fp32, bf16 or fp16, got {dtype!r}")
        target = resolve_device(device)
        paths = [policy_path] if ref_path is None else [policy_path, ref_path]
        for path in paths:
            check_model_source(path)
        tokenizers = [AutoTokenizer.from_pretrained(p) for p in paths]
        if len(tokenizers) == 2:
            check_same_tokenizer(tokenizers[0], tokenizers[1])
        # transformers renamed torch_dtype to dtype in 4.56 (and warns about the old name since)
        dtype_key = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
        models = [AutoModelForCausalLM.from_pretrained(p, **{dtype_key: torch_dtype}).to(target) for p in paths]
        return cls(models[0], tokenizers[0], models[1] if len(models) == 2 else None, **options)

    def encode(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> tuple[Encoded, list[int]]:
        enc = encode(self.tokenizer, prompts, responses, self.max_length)
        return enc, response_starts(self.tokenizer, prompts, responses, enc)

    def logps(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> DPOScores:
        """Summed response log-probs under both models, and the reward with this object's beta/normalize."""
        return self.logps_encoded(*self.encode(prompts, responses))

    def logps_encoded(
        self, enc: Encoded, starts: Sequence[int], on_batch: Callable[[int], Any] | None = None
    ) -> DPOScores:
        """``logps`` of rows already encoded (``encode``'s two results); ``on_batch(rows)`` after each batch."""
        n = len(enc)
        policy_logps = np.zeros(n)
        ref_logps = None if self.ref is None else np.zeros(n)
        lengths = enc.lengths
        pad_id = self.tokenizer.pad_token_id
        pad_id = pad_id if pad_id is not None else (self.tokenizer.eos_token_id or 0)
        with torch.inference_mode():
            for rows in pack_batches(lengths, self.token_budget):
                batch = collate(enc, rows, pad_id)
                row_starts, row_lengths = [starts[i] for i in rows], [lengths[i] for i in rows]
                policy_logps[rows] = sequence_logps(self.policy, batch, row_starts, row_lengths).numpy()
                if ref_logps is not None:
                    ref_logps[rows] = sequence_logps(self.ref, batch, row_starts, row_lengths).numpy()
                if on_batch is not None:
                    on_batch(len(rows))
        tokens = np.array([max(length - s, 0) for length, s in zip(lengths, starts)])
        rewards = implicit_reward(policy_logps, ref_logps, tokens, self.beta, self.normalize)
        return DPOScores(rewards, policy_logps, ref_logps, tokens, list(enc.truncated))

    def score(
        self,
        prompts: Sequence[Prompt],
        responses: Sequence[str],
        beta: float | None = None,
        normalize: str | None = None,
    ) -> np.ndarray:
        """(n,) implicit rewards (this object's beta and normalization unless given here)."""
        out = self.logps(prompts, responses)
        return implicit_reward(
            out.policy_logps, out.ref_logps, out.response_tokens, beta or self.beta, normalize or self.normalize
        )

    @property
    def dtype(self) -> torch.dtype:
        """What the policy computes in (``load``'s dtype)."""
        return next(self.policy.parameters()).dtype

    def score_fn(self) -> Callable[[Sequence[Prompt], Sequence[str]], np.ndarray]:
        """``fn(prompts, responses) -> (n,)``: the score function ``rewardkit.evaluate`` takes."""
        return lambda prompts, responses: self.score(prompts, responses)
