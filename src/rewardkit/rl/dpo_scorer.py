"""A DPO policy (and its reference) in the batch scorer's place, so files score with it as with a reward model.

``rewardkit score --dpo-policy P --dpo-ref R --beta B`` runs ``rewardkit.scoring.files.score_file`` with a
``DPOScorer``: the same rows as a reward model's (score, score_normalized, truncated, precision; pairs get
score_a, score_b, p_a_better), the same checks (a conversation the policy's chat template refuses is found before
any row is scored), the same chunked, atomic output; each row also names what its score is (``row_tags``:
reward_kind, beta, dpo_normalize).

What differs from a reward model, and why:

- ``score`` is the implicit reward ``beta * (log pi(y|x) - log pi_ref(y|x))`` (``rewardkit.rl.dpo``), summed
  over the response tokens, or averaged per token with ``normalize="mean"``;
- ``score_normalized`` equals ``score``: a DPO pair has no reference distribution (no card) to standardize by;
- ``p_a_better = sigmoid(score_a - score_b)``: temperature 1 is DPO's own Bradley-Terry model, in which beta
  already sets the scale (the DPO loss is ``-log sigmoid(r_chosen - r_rejected)``).

Library::

    from rewardkit.rl.dpo import DPOReward
    from rewardkit.rl.dpo_scorer import DPOScorer
    from rewardkit.scoring.files import score_file

    scorer = DPOScorer(DPOReward.load("policy", "reference", beta=0.1), version="my-dpo")
    score_file(scorer, Path("in.jsonl"), Path("out.jsonl"))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardkit.model.card import RewardCard
from rewardkit.model.formatting import Encoded
from rewardkit.records import Prompt
from rewardkit.rl.dpo import DPOReward
from rewardkit.rl.dpo import reward_kind as dpo_reward_kind
from rewardkit.scoring.precision import precision_name
from rewardkit.scoring.scorer import ScoreResult, model_version


@dataclass
class DPOEncoded:
    """Rows encoded for the DPO reward: the token ids and where each row's response begins."""

    enc: Encoded
    starts: list[int]

    @property
    def truncated(self) -> list[bool]:
        return self.enc.truncated

    def __len__(self) -> int:
        return len(self.enc)


@dataclass
class DPOScorer:
    """What ``score_file`` and ``score_rows`` use of a ``BatchScorer``, over a ``DPOReward``: encode, score the
    encoded rows as one "member", combine them into a ``ScoreResult``; its tokenizer, card, precision, version."""

    reward: DPOReward
    version: str = ""
    card: RewardCard = field(default_factory=RewardCard)
    """The default card: temperature 1 (DPO's Bradley-Terry model), mean 0 and std 1 (normalized = score)."""

    @property
    def members(self) -> list[DPOReward]:
        return [self.reward]

    @property
    def tokenizer(self) -> Any:
        return self.reward.tokenizer

    @property
    def dtype(self) -> Any:
        return self.reward.dtype

    @property
    def precision(self) -> str:
        return precision_name(self.reward.dtype)

    @property
    def reward_kind(self) -> str:
        """dpo, or dpo-reference-free without a reference model (``rewardkit.rl.dpo.reward_kind``)."""
        return dpo_reward_kind(self.reward.ref is not None)

    @property
    def row_tags(self) -> dict[str, Any]:
        """What every scored row says about how its score was made."""
        return {
            "precision": self.precision,
            "reward_kind": self.reward_kind,
            "beta": self.reward.beta,
            "dpo_normalize": self.reward.normalize,
        }

    def encode(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> DPOEncoded:
        enc, starts = self.reward.encode(prompts, responses)
        return DPOEncoded(enc, starts)

    def score_encoded(self, enc: DPOEncoded, on_batch: Callable[[int], Any] | None = None) -> np.ndarray:
        """(1, n) implicit rewards of encoded rows, in input order."""
        return self.reward.logps_encoded(enc.enc, enc.starts, on_batch).rewards[None, :]

    def result(self, member_scores: np.ndarray, truncated: Sequence[bool], norms: Any = None) -> ScoreResult:
        raw = np.asarray(member_scores, dtype=np.float64)[0]
        normalized = (raw - self.card.reward_mean) / self.card.reward_std
        return ScoreResult(raw, normalized, None, list(truncated), self.version)

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], on_batch: Any = None) -> ScoreResult:
        enc = self.encode(prompts, responses)
        return self.result(self.score_encoded(enc, on_batch), enc.truncated)


def dpo_version(policy: str, ref: str | None) -> str:
    """The version a DPO scorer names: the policy's content-derived version, and the reference's after a '~'."""
    return model_version(policy) + ("" if ref is None else "~" + model_version(ref))
