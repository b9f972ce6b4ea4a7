"""An ensemble's own card: after its members are trained (``member_<i>/``), the temperature and reward mean/std
are fitted on the ensemble score (``model/ensemble.py``) over the validation pairs, and rewardkit.json and
README.md are written beside the members.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.model.calibration import BOUND_NOTES, calibrate
from rewardkit.model.card import RewardCard, write_card, write_readme
from rewardkit.records import PreferencePair
from rewardkit.train.batches import cut_counts, cut_keys, encode_pairs
from rewardkit.train.config import TrainConfig

log = logging.getLogger(__name__)


def write_ensemble_card(
    config: TrainConfig,
    out: Path,
    snapshot_id: str,
    members: list[tuple[str, dict[str, Any]]],
    train_pairs: list[PreferencePair],
    val_pairs: list[PreferencePair],
) -> dict[str, Any]:
    """The ensemble's own rewardkit.json and README: temperature and reward mean/std fitted on the ensemble
    score s (the mean of the members' standardized scores, ``model/ensemble.py``) over the validation pairs,
    as each member's were fitted on its own reward."""
    from rewardkit.model.ensemble import MEMBER_SCALE
    from rewardkit.model.loading import load_reward_model

    prompts = [p.prompt for p in val_pairs]
    chosen, rejected = [p.chosen for p in val_pairs], [p.rejected for p in val_pairs]
    z_chosen, z_rejected, member_metrics = [], [], {}
    for name, m in members:  # one member in memory at a time
        rm = load_reward_model(out / name)
        # [N] each: the member's reward on its own reference scale, (r - reward_mean) / reward_std of its card
        z_chosen.append(rm.score(prompts, chosen, normalize=True))
        z_rejected.append(rm.score(prompts, rejected, normalize=True))
        member_metrics[name] = {
            **m,
            "temperature": rm.card.temperature,
            "reward_mean": rm.card.reward_mean,
            "reward_std": rm.card.reward_std,
        }
        tokenizer, template = rm.tokenizer, rm.card.template
    zc, zr = np.stack(z_chosen), np.stack(z_rejected)  # [M, N]
    sc, sr = zc.mean(axis=0), zr.mean(axis=0)
    decided = np.array([not p.tie for p in val_pairs])
    cal = calibrate(sc, sr, decided, config.reference_size)
    if cal.at_bound:
        log.warning(
            "%s: the ensemble's fitted temperature T = %g is %s", out, cal.temperature, BOUND_NOTES[cal.at_bound]
        )
    attributes = config.attribute_names()
    diff = (sc - sr)[decided]
    accs = [m["val_accuracy"] for _, m in members if m.get("val_accuracy") is not None]
    metrics: dict[str, Any] = {
        "train_pairs": len(train_pairs),
        "validation_pairs": len(val_pairs),
        # the members' counts (same tokenizer, max_length and validation pairs); with bootstrap each member
        # trained on a resample, so the training set itself is counted here
        **(
            {k: members[0][1][k] for k in cut_keys("train")}
            if not config.bootstrap
            else cut_counts(
                encode_pairs(tokenizer, train_pairs, config.max_length, config.margin_scale, attributes), "train"
            )
        ),
        **{k: members[0][1][k] for k in cut_keys("validation")},
        "val_accuracy": float((diff > 0).mean()) if diff.size else None,
        "val_margin": float(diff.mean()) if diff.size else None,
        "member_val_accuracy_mean": float(np.mean(accs)) if accs else None,
        # the uncertainty signal on validation: the std over members (units of s), averaged over responses
        "val_member_std_mean": float(np.concatenate([zc.std(axis=0), zr.std(axis=0)]).mean()),
        "ece_before": cal.ece_before,
        "ece_after": cal.ece_after,
        "ece_after_cross_fit": cal.ece_after_cross_fit,
        "temperature_at_bound": cal.at_bound,
        "members": member_metrics,
    }
    card = RewardCard(
        backbone=config.backbone,
        snapshot_id=snapshot_id,
        max_length=config.max_length,
        template=template,
        attributes=attributes,
        attribute_weights=config.attribute_weight_values(),
        temperature=cal.temperature,
        reward_mean=cal.reward_mean,
        reward_std=cal.reward_std,
        reference=cal.reference,
        members=[name for name, _ in members],
        member_scale=MEMBER_SCALE,
        config=asdict(config),
        metrics=metrics,
    )
    write_card(out, card)
    write_readme(out, card)
    return metrics
