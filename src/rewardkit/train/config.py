"""The training run's configuration, torch-free so that the CLI (generated from it) starts fast.

``TrainConfig`` is re-exported by ``rewardkit.train``; ``rewardkit train --help`` builds one option per field
from this module (``cli/config_options.py``) without importing torch or transformers.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from rewardkit.atomic import unwritable_reason

# the names of model/losses.py LOSSES (a test keeps the two the same set; this module must not import torch)
LossName = Literal["bt", "margin", "tie", "soft", "plackett-luce", "regression", "step-bce"]
Objective = Literal["outcome", "prm"]


class ConfigError(ValueError):
    """A bad value of one ``TrainConfig`` field. ``field``, ``value`` and ``problem`` are kept apart so that a
    command line can name its own option (``--batch-size``) where the library names the field; field names
    inside ``problem`` are written in backticks (`resume`) or with an underscore (max_steps), which the CLI
    rewrites the same way. ``value``: the offending value where the message reads better with it up front
    (a path)."""

    def __init__(self, field: str, problem: str, value: str | None = None) -> None:
        super().__init__(f"TrainConfig.{field}{'' if value is None else ' ' + value}: {problem}")
        self.field, self.problem, self.value = field, problem, value


@dataclass
class TrainConfig:
    """Everything a training run needs; the CLI is generated from these fields."""

    objective: Objective = "outcome"
    """outcome: a reward per whole response (pairs, lists or ratings; --loss); prm: a process reward model, one
    score per step (per-step binary classification at a step token after each step; the data is a TRL stepwise
    JSONL file of {prompt, completions, labels}; docs/process-rewards.md). prm implies --loss step-bce."""
    step_separator: str = "\n"
    """prm: the text between steps when a response is split into steps at scoring time; a model whose tokenizer
    writes it as one token of its own reads that token, any other gets a new special token <|step|>."""
    data: str = ""
    """Dataset snapshot (folder, id or id prefix), a file of {prompt, chosen, rejected} rows (.jsonl, .jsonl.gz,
    .json, .csv, .parquet, a datasets folder), or a Hugging Face Hub dataset id (owner/name, owner/name/DIR or
    owner/name:CONFIG; needs the datasets package)."""
    split: str = "train"
    """The split of a Hugging Face Hub dataset or datasets folder to train on (e.g. train_prefs for
    HuggingFaceH4/ultrafeedback_binarized); its validation split, when it has one, validates, else one is carved
    by prompt. Snapshots and single files train on their train pairs."""
    out: str = ""
    """Output folder (created if missing): the trained model in save_pretrained layout, rewardkit.json,
    README.md, metrics.jsonl, curves.png and checkpoint/ (last.pt, best.pt). A folder that already holds a
    trained model is overwritten, as Hugging Face Trainer does with its output_dir; one that holds a killed
    run needs `resume` (or deleting); any other non-empty folder is refused, so that the run cannot write over
    files that are not its own."""
    backbone: str = "all-MiniLM-L6-v2"
    """Hugging Face model id or folder; the default is the bundled pretrained all-MiniLM-L6-v2."""
    max_length: int = 256
    """Token budget per (prompt, response); longer prompts are cut from the left (counted, never dropped)."""
    batch_size: int = 8
    """Pairs per micro-batch (per process)."""
    grad_accum: int = 1
    """Micro-batches per optimizer step."""
    epochs: float = 3.0
    """Passes over the training pairs (fractions allowed; Hugging Face Trainer's default is 3 too)."""
    max_steps: int = 0
    """Stop after this many optimizer steps (0: derived from epochs)."""
    lr: float = 1e-4
    """Peak AdamW learning rate (LoRA runs usually want ~10x more)."""
    weight_decay: float = 0.01
    """AdamW weight decay (not applied to biases and LayerNorm weights)."""
    warmup_ratio: float = 0.1
    """Fraction of steps of linear warmup; then linear decay to 0."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (0 disables)."""
    attributes: str = ""
    """Multi-attribute heads: comma-separated names (e.g. "helpfulness,harmlessness"), one scalar output each.
    A pair whose ``attribute`` is one of them trains that head (per-attribute BT); a pair without one trains
    the weighted aggregate. Empty (default): one scalar head."""
    attribute_weights: str = ""
    """Comma-separated weights of the aggregate score over --attributes (default: equal, summing to 1)."""
    loss: LossName = "bt"
    """bt: Bradley-Terry; margin: BT with a margin from the pair's strength/margin; tie: tie-aware BT; soft:
    cross-entropy against the pair's soft label (its `target`, e.g. AlpacaEval's preference; a pair without one
    counts as 1, a tie as 0.5); plackett-luce: listwise, on each prompt's ranking rebuilt from its pairs
    (batch_size counts lists); regression: MSE on each response's rating (pairs compiled from ratings carry
    them; batch_size counts lists). Validation, early stopping and calibration use the pairs in every case
    (docs/losses.md)."""
    margin_scale: float = 1.0
    """Margin loss: margin = margin_scale * strength (or the pair's own margin)."""
    center_coef: float = 0.0
    """Coefficient of the centering term coef * mean((r_chosen + r_rejected)^2) (0 disables)."""
    eval_every: int = 100
    """Validate every N optimizer steps, and at the end. Each validation writes best.pt when it improved and
    the resumable last.pt (weights + AdamW state, ~3x the model size) at most every ``checkpoint_every`` steps."""
    checkpoint_every: int = 500
    """Write the resumable checkpoint/last.pt at most every N steps (checked at validations, always at the
    end); a killed run resumes from it and repeats at most N steps. Writing it costs ~1 s for MiniLM."""
    select_by: Literal["calibrated_loss", "loss"] = "calibrated_loss"
    """What makes a validation the best (its weights are the model kept): calibrated_loss, the validation loss at
    the temperature the run's calibration fits (model/calibration.py calibrated_nll: scale-free, so it tracks how
    well the pairs are ordered, where the raw loss also rises when rewards merely spread out); loss: the raw
    training objective on validation (the default before: it kept the first validation of most runs)."""
    patience: int = 2
    """Early stopping: stop after this many validations in a row without a better `select_by` (0: off). 2: a
    default 3-epoch run on the shared data validates 6-7 times (every 100 steps); one worse validation passes as
    noise, two end the run 200 steps after the best (docs/training.md)."""
    seed: int = 0
    """Seed of weights init, batch order and bootstrap."""
    bf16: Literal["auto", "on", "off"] = "auto"
    """bf16 autocast: auto is bf16 on a GPU that supports it natively; on a CPU fp32, unless it has AMX, where one
    training step is timed both ways and bf16 kept when at least 10% faster (train/bf16.py). The run logs the
    choice and why."""
    device: str = "auto"
    """auto (this process's GPU when torch sees one, under torchrun the one LOCAL_RANK names; else the CPU),
    cpu, cuda, cuda:N or mps."""
    threads: int = 0
    """torch threads (0: leave torch's default; the benchmark uses 2 on a 2-core machine)."""
    freeze_embeddings: bool | None = None
    """Freeze the token embeddings (MiniLM: 11.7M of 22.7M parameters; a batch touches a few hundred of the
    30k rows, yet AdamW updates every row each step). Faster steps, less to overfit on small data. Unset
    (default): frozen exactly when freeze_layers freezes at least one block. On: frozen even when
    no block is (e.g. with freeze_layers 0); off: trained even under frozen blocks. Not used with LoRA
    (lora_r > 0), which trains adapters only."""
    freeze_layers: int = -1
    """Freeze the lowest N transformer blocks, and with them the embeddings (see freeze_embeddings); -1
    (default): a third of the blocks, rounded down (MiniLM-L6: 2), 0: train everything. Gradients then stop
    above the frozen blocks: on HH-RLHF this trained 3.1x faster than freezing nothing, at higher held-out
    accuracy (see README, Results). Not used with LoRA (lora_r > 0)."""
    disable_dropout: bool = True
    """Set every dropout probability to 0, as TRL's RewardTrainer and OpenRLHF do for reward models: a reward is
    a difference of two forward passes, and independent dropout masks on chosen and rejected add noise to it."""
    length_balance: float = 0.0
    """Oversample the pairs whose chosen response is the shorter one (in characters) until they make up this
    share of the pairs whose responses differ in length, in each epoch (0: off; at most 0.5; with repeats an
    epoch grows accordingly, up to 2x at 0.5 when such pairs are rare; see length_balance_by). Where a judge
    favours length (AlpacaEval: "longer wins" is right 86% of the time), the few shorter-wins pairs are the
    ones that teach quality, not length."""
    length_balance_by: Literal["repeat", "weight"] = "repeat"
    """How length_balance is applied: repeat the shorter-wins pairs within each epoch (longer epochs), or weight
    each pair's loss so both sides carry their share (one pass over the data, no extra compute)."""
    length_control: bool = False
    """Length-controlled Bradley-Terry (model/length_control.py): fit a fixed length term beta * log-length
    difference on the training pairs first, train the reward on what length does not explain, score without
    the length term. For judges that favour length (AlpacaEval: "longer wins" 86-90%); off by default."""
    robust: str = ""
    """Robust training against reward hacking (docs/training.md, "Robust training"): a profile of exploit kinds
    (padding, flattery, confidence, echoing the prompt, another prompt's answer, ...), each with a loss weight
    and a share of the batch: "default" (the shipped profile), "strict" (the default with repetition's share doubled:
    less paid for repetition, ~3 points of AlpacaEval accuracy) or a TOML file's path. The training pairs gain pairs
    in which a response beats its own exploited copy (never validation pairs). Empty (default): off."""
    invariance_weight: float = 0.0
    """Invariance penalty: weight * (r(x) - r(rewrite(x)))^2 on pairs of a response and a meaning-preserving
    rewrite of it (white space, markdown or plain, bullet style), so the reward ignores presentation; their
    share of the batch is the profile's [invariance] share (0.05 without --robust). 0 (default): off."""
    lora_r: int = 0
    """LoRA rank (0: full fine-tuning). The scalar head is always fully trained and saved."""
    lora_alpha: int = 16
    """LoRA alpha."""
    ensemble: int = 1
    """Number of ensemble members (different seeds)."""
    bootstrap: bool = False
    """Ensemble members train on bootstrap resamples of the training pairs."""
    resume: bool = False
    """Continue the run in `out` from its checkpoint/last.pt (after a crash or kill); an error when there is
    none."""
    validation_fraction: float = 0.1
    """When the data has no validation split: the fraction of prompts (by hash) held out for it."""
    reference_size: int = 512
    """Responses scored to estimate the reward mean/std stored for normalization."""
    progress: bool = True
    """Show a progress bar on stderr (only when it is a terminal)."""

    def __post_init__(self) -> None:
        if "\\" in self.step_separator:  # typed on a command line: --step-separator '\n' means a newline
            self.step_separator = codecs.decode(self.step_separator, "unicode_escape")
        if self.objective == "prm" and self.loss == "bt":
            self.loss = "step-bce"  # derived: the process objective has one loss (the default bt is not asked for)
        prm = self.objective == "prm"
        checks = [
            (self.objective in ("outcome", "prm"), "objective", "one of outcome, prm"),
            ((self.loss == "step-bce") == prm, "loss", "step-bce exactly with objective prm"),
            (not prm or bool(self.step_separator), "step_separator", "non-empty text"),
            (
                not prm
                or not (
                    self.length_control
                    or self.length_balance
                    or self.center_coef
                    or self.attributes.strip()
                    or self.robust
                    or self.invariance_weight
                ),
                "objective",
                "outcome with length_control, length_balance, center_coef, attributes, robust or invariance_weight "
                "(prm scores steps)",
            ),
            (not prm or self.ensemble == 1, "ensemble", "1 with objective prm"),
            (self.max_length >= 16, "max_length", "at least 16"),
            (self.batch_size >= 1, "batch_size", "at least 1"),
            (self.grad_accum >= 1, "grad_accum", "at least 1"),
            (self.epochs > 0 or self.max_steps > 0, "epochs", "> 0 (or max_steps > 0)"),
            (self.max_steps >= 0, "max_steps", ">= 0"),
            (self.lr > 0, "lr", "> 0"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio", "in [0, 1)"),
            (self.max_grad_norm >= 0, "max_grad_norm", ">= 0"),
            (self.loss in get_args(LossName), "loss", f"one of {', '.join(get_args(LossName))}"),
            (self.eval_every >= 1, "eval_every", "at least 1"),
            (self.checkpoint_every >= 1, "checkpoint_every", "at least 1"),
            (self.freeze_layers >= -1, "freeze_layers", ">= 0, or -1 for a third of the blocks"),
            (self.patience >= 0, "patience", ">= 0"),
            (self.select_by in ("calibrated_loss", "loss"), "select_by", "one of calibrated_loss, loss"),
            (self.bf16 in ("auto", "on", "off"), "bf16", "one of auto, on, off"),
            (self.lora_r >= 0, "lora_r", ">= 0"),
            (0.0 <= self.length_balance <= 0.5, "length_balance", "between 0 and 0.5"),
            (self.length_balance_by in ("repeat", "weight"), "length_balance_by", "one of repeat, weight"),
            (self.ensemble >= 1, "ensemble", "at least 1"),
            (0 < self.validation_fraction < 1, "validation_fraction", "in (0, 1)"),
            (self.center_coef >= 0, "center_coef", ">= 0"),
            (self.invariance_weight >= 0, "invariance_weight", ">= 0"),
            (
                self.loss not in ("plackett-luce", "regression") or not (self.robust or self.invariance_weight),
                "loss",
                "a pairwise loss (bt, margin, tie or soft) with `robust` or invariance_weight",
            ),
            (
                self.loss not in ("plackett-luce", "regression")
                or not (self.length_control or self.length_balance or self.center_coef),
                "loss",
                "a pairwise loss (bt, margin, tie or soft) with length_control, length_balance or center_coef",
            ),
        ]
        names, weights = self.attribute_names(), self.attribute_weight_values()
        checks += [
            (len(set(names)) == len(names), "attributes", "distinct names"),
            (not self.attribute_weights or len(weights) == len(names), "attribute_weights", "one weight per attribute"),
            (len(names) == 1 or self.loss in ("bt", "tie", "soft"), "loss", "bt, tie or soft with several attributes"),
        ]
        for ok, name, expectation in checks:
            if not ok:
                raise ConfigError(name, f"expected {expectation}, got {getattr(self, name)!r}")
        if self.robust:
            from rewardkit.robust.profile import ProfileError, load_profile

            try:
                load_profile(self.robust)
            except ProfileError as exc:
                raise ConfigError("robust", str(exc)) from None

    def attribute_names(self) -> list[str]:
        """The head names: --attributes, or ["reward"] for a single scalar head."""
        return [a.strip() for a in self.attributes.split(",") if a.strip()] or ["reward"]

    def attribute_weight_values(self) -> list[float]:
        """Aggregate weights: --attribute-weights, or equal weights summing to 1."""
        if not self.attribute_weights.strip():
            n = len(self.attribute_names())
            return [1.0 / n] * n
        try:
            return [float(w) for w in self.attribute_weights.split(",")]
        except ValueError as exc:
            raise ConfigError(
                "attribute_weights", f"expected comma-separated numbers, got {self.attribute_weights!r}"
            ) from exc


def resume_checkpoint(config: TrainConfig) -> Path:
    """The last.pt that `resume` continues from: the model's, or an ensemble's first member's (later members
    that had not started yet have none, and start fresh)."""
    member = Path(config.out) if config.ensemble == 1 else Path(config.out) / "member_0"
    return member / "checkpoint" / "last.pt"


def check_out(config: TrainConfig) -> bool:
    """Can this run write to `out`? A ConfigError otherwise, before any data or model is loaded (a mistyped
    folder used to surface minutes later, at the first checkpoint). Returns True when `out` holds a trained
    model that this run replaces.

    The rules follow what Hugging Face Trainer users expect of output_dir (written over, no flag needed since
    transformers deprecated overwrite_output_dir), with two refusals where writing over would lose work: a
    killed run's checkpoint (continue it with `resume`, or delete it) and a non-empty folder that is not a
    rewardkit run at all (given ".", the run would replace the README.md and config.json there)."""
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise ConfigError("out", "is a file, not a folder", config.out)
    reason = unwritable_reason(out)  # created later with parents (mkdir -p)
    if reason:
        raise ConfigError("out", f"cannot write there ({reason})", config.out)
    checkpoint = resume_checkpoint(config)
    if config.resume:
        if not checkpoint.is_file():
            raise ConfigError(
                "resume", f"no checkpoint in {checkpoint.parent} (last.pt); run without `resume` to start a new run"
            )
        return False
    if not out.exists():
        return False
    finished = (out / "rewardkit.json").is_file()
    # either layout: a single model's checkpoint/ or an ensemble's member_0/checkpoint/ (the run in the folder
    # may have been started with another `ensemble` than this one)
    checkpoints = [out / "checkpoint" / "last.pt", out / "member_0" / "checkpoint" / "last.pt"]
    killed = next((c for c in checkpoints if c.is_file()), None)
    if killed is not None and not finished:
        raise ConfigError(
            "out",
            f"holds a killed run ({killed.relative_to(out)}, no rewardkit.json): add `resume` to continue "
            "it, or delete the folder (or choose another `out`) to start over",
            config.out,
        )
    ours = finished or any(c.parent.is_dir() for c in checkpoints)  # killed before its first last.pt: checkpoint/ only
    if not ours and any(out.iterdir()):
        raise ConfigError(
            "out",
            "is not empty and holds no rewardkit model (no rewardkit.json); the run would write config.json, "
            "README.md and more into it: choose a new or empty folder",
            config.out,
        )
    return finished


def data_error(data: str, exc: Exception) -> ConfigError:
    """A data error as one line that names the data: an OSError as its reason (and file, when it is another
    one), anything else as its message; the ``data`` value goes in front unless the message names it."""
    if isinstance(exc, OSError) and exc.strerror:
        detail = (
            exc.strerror if exc.filename is None or str(exc.filename) == data else f"{exc.strerror}: {exc.filename}"
        )
    else:
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
    detail = " ".join(detail.split()) or type(exc).__name__
    return ConfigError("data", detail, None if data in detail else data)


# what a user's mistake surfaces as from the library (a bad option value, data, folder or backbone);
# anything else is a bug and keeps its traceback
USER_ERRORS = (ValueError, LookupError, FileNotFoundError)
