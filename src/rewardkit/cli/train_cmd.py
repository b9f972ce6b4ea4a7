"""``rewardkit train --data SNAPSHOT --out DIR``: train a reward model (see docs/training.md).

The options are generated from ``rewardkit.train.TrainConfig``: one option per field, its docstring as the
help text, so the CLI and the library call cannot drift apart.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import MISSING, fields
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

import typer

from rewardkit.cli.output import UserError, emit_json, escape, stderr, stdout
from rewardkit.train_config import USER_ERRORS, as_options, option_name, user_message


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (PEP 257 attribute docstrings)."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _parameters() -> list[inspect.Parameter]:
    from rewardkit.train_config import TrainConfig

    hints, docs = get_type_hints(TrainConfig), field_docs(TrainConfig)
    params = []
    for f in fields(TrainConfig):
        kind = hints[f.name]
        default = f.default if f.default is not MISSING else None
        doc = as_options(docs.get(f.name, ""))
        # `bool | None = None`: None is a value the run derives (the docstring says how); a flag given sets it
        optional = get_origin(kind) in (Union, UnionType) and type(None) in get_args(kind)
        if optional:
            kind = next(a for a in get_args(kind) if a is not type(None))
        if get_origin(kind) is not None and str(get_origin(kind)).endswith("Literal"):
            choices = get_args(kind)
            kind, doc = str, f"{doc} One of: {', '.join(map(str, choices))}."
        flag = option_name(f.name)
        decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
        option = typer.Option(*decls, help=doc, show_default=default not in ("", None))
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[kind | None if optional else kind, option],
            )
        )
    json_opt = typer.Option("--json", help="Print the result (output folder and metrics) as JSON.")
    params.append(
        inspect.Parameter("json_", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[bool, json_opt])
    )
    return params


def run_train(json_: bool = False, **options: Any) -> None:
    from rewardkit.train_config import TrainConfig, check_out

    if not options.get("data"):
        raise UserError("--data: a dataset snapshot (folder, id or id prefix) or a JSONL file is required")
    if not options.get("out"):
        raise UserError("--out: an output folder is required")
    try:
        config = TrainConfig(**options)
        # before importing torch (seconds): a wrong --out or --resume is reported at once
        replaces = check_out(config)
    except USER_ERRORS as exc:
        raise UserError(user_message(exc)) from exc
    if replaces:
        stderr.print(
            f"rewardkit: note: --out {config.out} holds a trained model; this run replaces it", highlight=False
        )
    from rewardkit.train import train

    try:
        result = train(config)
    except USER_ERRORS as exc:
        raise UserError(user_message(exc)) from exc
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


def register(app: typer.Typer) -> None:
    def train_command(**kwargs: Any) -> None:
        run_train(**kwargs)

    train_command.__signature__ = inspect.Signature(_parameters())  # type: ignore[attr-defined]
    train_command.__doc__ = (
        "Train a reward model on a dataset snapshot (or a JSONL of prompt/chosen/rejected rows) and write a "
        "Hugging Face folder with rewardkit.json (calibration, normalization), README.md, metrics.jsonl and "
        "curves.png. Pairs longer than --max-length are truncated (prompt cut from the left), never dropped. "
        "Same run under torchrun / accelerate launch: python -m rewardkit.train ..."
    )
    app.command("train")(train_command)
