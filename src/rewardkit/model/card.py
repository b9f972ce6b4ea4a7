"""What a trained reward model says about itself: ``rewardkit.json``, the README model card, the curves.

``rewardkit.json`` (the ``RewardCard``) sits beside the ``save_pretrained`` weights::

    format             "rewardkit.reward_model/1"
    backbone           the HF id or folder it was trained from
    snapshot_id        the dataset snapshot it was trained on ("" when unknown)
    max_length         the token budget of formatting.encode (scoring must use the same)
    template           'encoder' | 'decoder' | 'chat' (formatting.template_kind at training time)
    attributes         one name per head output (["reward"] for a scalar head)
    attribute_weights  the weights of the aggregate score over attributes
    temperature        T of the calibrated P(a > b) = sigmoid((r_a - r_b) / T)
    reward_mean/std    raw reward statistics on a reference set, for normalized = (r - mean) / std
    members            ensemble only: member subfolders, each a loadable reward model
    config             the TrainConfig it was trained with
    metrics            final and best validation metrics, calibration (ECE before/after), truncation counts

A folder without ``rewardkit.json`` (any HF sequence-classification reward model) reads as the defaults:
T = 1, no normalization, one attribute.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rewardkit.atomic import atomic_write_text

CARD_FILE = "rewardkit.json"
FORMAT = "rewardkit.reward_model/1"


@dataclass
class RewardCard:
    """The parsed ``rewardkit.json`` (see the module docstring for each field)."""

    backbone: str = ""
    snapshot_id: str = ""
    max_length: int = 512
    template: str = ""
    attributes: list[str] = field(default_factory=lambda: ["reward"])
    attribute_weights: list[float] = field(default_factory=lambda: [1.0])
    temperature: float = 1.0
    reward_mean: float = 0.0
    reward_std: float = 1.0
    members: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT

    def __post_init__(self) -> None:
        if len(self.attribute_weights) != len(self.attributes):
            raise ValueError(f"{CARD_FILE}: {len(self.attributes)} attributes but {len(self.attribute_weights)} weights")
        if not self.temperature > 0:
            raise ValueError(f"{CARD_FILE}: temperature must be > 0, got {self.temperature}")
        if not self.reward_std > 0:
            raise ValueError(f"{CARD_FILE}: reward_std must be > 0, got {self.reward_std}")

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RewardCard:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def read_card(folder: str | Path) -> RewardCard:
    """The card of a model folder; the defaults when the folder has none (a plain HF reward model)."""
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        return RewardCard()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    return RewardCard.from_json(data)


def write_card(folder: str | Path, card: RewardCard) -> None:
    atomic_write_text(Path(folder) / CARD_FILE, json.dumps(asdict(card), indent=2, default=str) + "\n")


def write_readme(folder: str | Path, card: RewardCard) -> None:
    """A README.md model card: data, config and validation results, from the card itself."""
    m = card.metrics
    lines = [
        "---",
        "library_name: transformers",
        "tags: [reward-model, rewardkit]",
        "---",
        "",
        f"# Reward model ({'ensemble of ' + str(len(card.members)) if card.is_ensemble else card.backbone})",
        "",
        "Trained with rewardkit. Load it with plain transformers "
        "(`AutoModelForSequenceClassification.from_pretrained(folder)`, one scalar per attribute) "
        "or with `rewardkit.model.load_reward_model(folder)`.",
        "",
        "## Data",
        f"- snapshot: `{card.snapshot_id or 'unknown'}`",
        f"- train pairs: {m.get('train_pairs', '?')}, validation pairs: {m.get('validation_pairs', '?')}",
        f"- truncated (prompt cut from the left to fit max_length {card.max_length}): "
        f"{m.get('truncated_train', '?')} train, {m.get('truncated_validation', '?')} validation; no pair dropped",
        "",
        "## Input format",
        f"template `{card.template}` (see rewardkit docs/training.md): for encoders "
        "`[CLS] prompt [SEP] response [SEP]`, i.e. `tokenizer(prompt, response)`.",
        "",
        "## Validation results",
        "| metric | value |",
        "|---|---|",
    ]
    for key in ("best_step", "val_accuracy", "val_loss", "val_margin", "val_length_corr", "ece_before", "ece_after", "test_accuracy"):
        if key in m:
            value = m[key]
            lines.append(f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |")
    lines += [
        "",
        "## Calibration and normalization",
        f"- P(a better than b) = sigmoid((r_a - r_b) / T), T = {card.temperature:.4f}",
        f"- normalized reward = (r - {card.reward_mean:.4f}) / {card.reward_std:.4f}",
        f"- attributes: {', '.join(f'{a} (weight {w})' for a, w in zip(card.attributes, card.attribute_weights))}",
        *([f"- length-controlled training: the preference was modelled as r_c - r_r + {m['length_coef']:.4f} * "
           "(log(1 + chars_c) - log(1 + chars_r)); scores are r alone, without the length term"] if m.get("length_coef") else []),
        "",
        "## Config",
        "```json",
        json.dumps(card.config, indent=2, default=str),
        "```",
        "",
        "Training curves: `curves.png`; every logged step: `metrics.jsonl`.",
        "",
    ]
    atomic_write_text(Path(folder) / "README.md", "\n".join(lines))


def plot_curves(rows: list[dict[str, Any]], path: str | Path) -> None:
    """curves.png: train/validation loss, validation accuracy, mean margin, chosen/rejected reward means."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in rows if r.get("kind") == "train"]
    val = [r for r in rows if r.get("kind") == "val"]
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    panels = [
        ("loss", [(train, "loss", "train"), (val, "loss", "validation")]),
        ("accuracy", [(train, "accuracy", "train"), (val, "accuracy", "validation")]),
        ("mean margin r_chosen - r_rejected", [(train, "margin", "train"), (val, "margin", "validation")]),
        ("reward means (validation)", [(val, "chosen_mean", "chosen"), (val, "rejected_mean", "rejected")]),
    ]
    for ax, (title, series) in zip(axes, panels):
        for points, key, label in series:
            xs = [r["step"] for r in points if key in r]
            if xs:
                ax.plot(xs, [r[key] for r in points if key in r], label=label, marker="o" if len(xs) < 30 else None)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)
