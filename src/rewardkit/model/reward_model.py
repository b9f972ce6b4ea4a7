"""A reward model: a HF sequence-classification model, its tokenizer, and its card.

    rm = load_reward_model("runs/rm1")                 # rewardkit.model.loading; or any HF reward model folder / id
    rm.score(["What is 2+2?"], ["4"])                   # -> np.ndarray [N], raw aggregate reward
    rm.score(prompts, responses, normalize=True)        # (r - reward_mean) / reward_std from the card
    rm.prob_better(prompts, responses_a, responses_b)   # calibrated sigmoid((r_a - r_b) / T)

``score`` is the simple reference path (length-sorted batches, no_grad); the fast batch scorer lives in
``rewardkit.scoring.scorer``. Both format inputs with ``formatting.encode`` and call ``RewardModel.forward``
(``forward.reward_logits``: for BERT-family models the last layer computes only the position the head reads).

Saved layout (``save``): the ``save_pretrained`` model and tokenizer, so
``AutoModelForSequenceClassification.from_pretrained(folder)`` alone gives the same raw outputs, plus
``rewardkit.json`` (see ``card.py``). A folder whose card lists ``members`` loads as an ``Ensemble``
(``loading.py`` tells them apart).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit.atomic import share_folder_like_open
from rewardkit.model.backbone import align_pad_token, load_tokenizer
from rewardkit.model.calibration import p_better
from rewardkit.model.card import RewardCard, write_card
from rewardkit.model.formatting import collate, encode
from rewardkit.model.forward import reward_logits
from rewardkit.model.steps import step_logits
from rewardkit.records import Prompt


@dataclass
class RewardModel:
    """``model`` outputs [B, A] (one scalar per attribute); ``card`` holds calibration and normalization."""

    model: Any
    tokenizer: Any
    card: RewardCard

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def max_length(self) -> int:
        return self.card.max_length

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Raw per-attribute rewards [B, A] of a collated batch; a process reward model's step logits at every
        position [B, L] (``model/steps.py``: read at the step tokens)."""
        batch = {k: v.to(self.device) for k, v in batch.items()}
        if self.card.is_prm:
            return step_logits(self.model(**batch).logits.float())
        return reward_logits(self.model, batch)

    def aggregate(self, per_attribute: torch.Tensor) -> torch.Tensor:
        """[B, A] -> [B]: the weighted sum over attributes (the identity for a scalar head)."""
        weights = torch.tensor(self.card.attribute_weights, dtype=per_attribute.dtype, device=per_attribute.device)
        return per_attribute @ weights

    @torch.inference_mode()
    def score_attributes(self, prompts: Sequence[Prompt], responses: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Raw rewards [N, A], in input order."""
        encoded = encode(self.tokenizer, prompts, responses, self.max_length)
        order = np.argsort(encoded.lengths, kind="stable")  # similar lengths together: less padding
        out = np.zeros((len(encoded), len(self.card.attributes)), dtype=np.float32)
        self.model.eval()
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size].tolist()
            out[rows] = self.forward(collate(encoded, rows, self.tokenizer.pad_token_id)).cpu().numpy()
        return out

    def score(
        self, prompts: Sequence[Prompt], responses: Sequence[str], batch_size: int = 32, normalize: bool = False
    ) -> np.ndarray:
        """Aggregate reward [N]; ``normalize`` applies the card's (r - mean) / std."""
        per_attribute = torch.from_numpy(self.score_attributes(prompts, responses, batch_size))
        rewards = self.aggregate(per_attribute).numpy()
        if normalize:
            rewards = (rewards - self.card.reward_mean) / self.card.reward_std
        return rewards

    def prob_better(
        self, prompts: Sequence[Prompt], responses_a: Sequence[str], responses_b: Sequence[str], batch_size: int = 32
    ) -> np.ndarray:
        """Calibrated P(a better than b) = sigmoid((r_a - r_b) / T), [N]."""
        n = len(prompts)
        rewards = self.score(list(prompts) * 2, list(responses_a) + list(responses_b), batch_size)
        return p_better(rewards[:n], rewards[n:], self.card.temperature)

    def save(self, folder: str | Path) -> None:
        """save_pretrained (model + tokenizer) and rewardkit.json. A peft model is merged first so the
        folder loads with plain transformers."""
        folder = Path(folder)
        model = self.model
        if hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
        model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        write_card(folder, self.card)
        share_folder_like_open(folder)  # safetensors writes model.safetensors 0600, the rest of the folder 0644


def load_single(
    path: str, card: RewardCard, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> RewardModel:
    """The ``RewardModel`` of one model folder or HF id ``path`` whose card (``read_card``, the defaults where it
    has none) is ``card``; ``rewardkit.model.loading.load_reward_model`` tells an ensemble folder from one.

    A folder without rewardkit.json loads with the defaults (T = 1, no normalization, max_length the
    tokenizer's limit capped at 512)."""
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    tokenizer = load_tokenizer(path)
    # a process reward model (its card names a step token) is a token classifier read at each step token
    auto = AutoModelForTokenClassification if card.is_prm else AutoModelForSequenceClassification
    model = auto.from_pretrained(path, **({"dtype": dtype} if dtype else {}))
    align_pad_token(model, tokenizer)
    if not (Path(path) / "rewardkit.json").is_file():
        limit = getattr(tokenizer, "model_max_length", 512) or 512
        card.max_length = int(min(limit, 512))
        card.attributes = (
            [f"reward_{i}" for i in range(model.config.num_labels)] if model.config.num_labels > 1 else ["reward"]
        )
        card.attribute_weights = [1.0 / model.config.num_labels] * model.config.num_labels
    if device is not None:
        model.to(device)
    model.eval()
    return RewardModel(model=model, tokenizer=tokenizer, card=card)
