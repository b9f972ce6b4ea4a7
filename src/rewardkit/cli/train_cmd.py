"""``rewardkit train --data SNAPSHOT --out DIR``: train a reward model (see docs/training.md).

The options are generated from ``rewardkit.train.config.TrainConfig`` (``cli/config_options.py``): one option per
field, its docstring as the help text, so the CLI and the library call cannot drift apart. ``python -m
rewardkit.train`` (what torchrun / accelerate launch run) is this same command (``train/__main__.py``).
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from typing import Annotated, Any

import typer

from rewardkit.cli.config_options import config_parameters, user_message
from rewardkit.cli.output import UserError, emit_json, escape, stderr, stdout
from rewardkit.train.config import USER_ERRORS, TrainConfig, check_out


def _parameters() -> list[inspect.Parameter]:
    json_opt = typer.Option("--json", help="Print the result (output folder and metrics) as JSON.")
    json_param = inspect.Parameter(
        "json_", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[bool, json_opt]
    )
    return [*config_parameters(TrainConfig), json_param]


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the sys.stderr of the moment (a test runner swaps it), not the one at creation."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def show_training_log() -> None:
    """The training library's log lines (the bf16 choice and its reason, warnings about the data) on stderr, as
    plain lines; once per process, and only where nobody configured the logger already."""
    logger = logging.getLogger("rewardkit.train")
    if not logger.handlers:
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter("rewardkit: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def run_train(json_: bool = False, **options: Any) -> None:
    if not options.get("data"):
        raise UserError("--data: a dataset snapshot (folder, id or id prefix) or a JSONL file is required")
    if not options.get("out"):
        raise UserError("--out: an output folder is required")
    try:
        config = TrainConfig(**options)
        # before importing torch (seconds): a wrong --out or --resume is reported at once
        replaces = check_out(config)
    except USER_ERRORS as exc:
        raise UserError(user_message(exc, TrainConfig)) from exc
    if replaces:
        stderr.print(
            f"rewardkit: note: --out {config.out} holds a trained model; this run replaces it", highlight=False
        )
    from rewardkit.train import train

    show_training_log()
    try:
        result = train(config)
    except USER_ERRORS as exc:
        raise UserError(user_message(exc, TrainConfig)) from exc
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun every rank gets the result; one of them reports it
    if json_:
        emit_json({"out": str(result.out), "metrics": result.metrics})
        return
    m = result.metrics
    stdout.print(f"[bold]model written to {escape(str(result.out))}[/bold]", markup=True, highlight=False)
    for key in (
        "train_pairs",
        "validation_pairs",
        "truncated_train",
        "truncated_validation",
        "best_step",
        "steps",
        "total_steps",
        "stopped_early",
        "selected_by",
        "val_calibrated_loss",
        "val_accuracy",
        "ece_before",
        "ece_after",
        "ece_after_cross_fit",
        "train_pairs_per_s",
        "member_val_accuracy_mean",
    ):
        if m.get(key) is not None:
            value = m[key]
            stdout.print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}", highlight=False)


def train_command(**kwargs: Any) -> None:
    try:
        run_train(**kwargs)
    finally:
        # under torchrun / accelerate launch: close the process group the run opened (the launcher warns about,
        # and some backends hang on, a group left open)
        if "torch.distributed" in sys.modules:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()


train_command.__signature__ = inspect.Signature(_parameters())  # type: ignore[attr-defined]
train_command.__doc__ = (
    "Train a reward model on a dataset snapshot (or a JSONL of prompt/chosen/rejected rows) and write a "
    "Hugging Face folder with rewardkit.json (calibration, normalization), README.md, metrics.jsonl and "
    "curves.png. Pairs longer than --max-length are truncated (prompt cut from the left), never dropped. "
    "Same run under torchrun / accelerate launch: torchrun ... -m rewardkit train ..."
)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
