"""Typer options generated from a dataclass config: one option per field, the field's docstring as its help.

Any entry point with a typed dataclass config (``TrainConfig`` today) gets its command line from here, so the
CLI and the library call cannot drift apart:

    params = config_parameters(TrainConfig)         # inspect.Parameters, each Annotated with a typer.Option
    command.__signature__ = inspect.Signature(params)

The rules, in one place:

- **help**: the string literal written under a field (a PEP 257 attribute docstring, the litgpt / cleanrl
  style). Python keeps no such docstring at runtime, so ``field_docs`` reads them from the class's source with
  ``ast``; this module is the only place that does.
- **names**: ``batch_size`` -> ``--batch-size``; a field name in backticks in a docstring or error message
  becomes its option (``as_options``), so help and errors speak in what a user types.
- **types**: ``bool`` -> ``--flag/--no-flag``; ``bool | None = None`` -> the same flags with no default shown
  (None: the run derives the value); ``Literal[...]`` -> text, its choices appended to the help.

Torch-free: ``rewardkit train --help`` imports only the config module.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from dataclasses import MISSING, fields
from functools import cache
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import typer


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (whitespace collapsed), by field name."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def option_name(field: str) -> str:
    """The CLI option of a config field: batch_size -> --batch-size."""
    return "--" + field.replace("_", "-")


def as_options(text: str, cls: type) -> str:
    """Field names of ``cls`` in a docstring or error -> the options a CLI user types.

    A field name in backticks (`resume`, ``checkpoint_every``) is always one; a bare name only when it has an
    underscore (length_balance_by), as plain words like "loss" or "data" are prose, and not inside a path or
    file name (model/length_control.py). Other backticked words keep single backticks."""
    names = {f.name for f in fields(cls)}

    def ticked(m: re.Match[str]) -> str:
        return option_name(m[1]) if m[1] in names else f"`{m[1]}`"

    text = re.sub(r"``?([A-Za-z_]\w*)``?", ticked, text)
    bare = sorted((n for n in names if "_" in n), key=len, reverse=True)
    if not bare:
        return text
    return re.sub(rf"(?<![\w./-])({'|'.join(bare)})(?![\w/-]|\.\w)", lambda m: option_name(m[1]), text)


def user_message(exc: BaseException, cls: type) -> str:
    """The one line a CLI user sees for a library error. An error that names a field (``field``, ``problem``
    and optional ``value`` attributes, as ``train.config.ConfigError`` has) names the option and speaks in
    options; anything else is the library's message on one line."""
    field, problem = getattr(exc, "field", None), getattr(exc, "problem", None)
    if isinstance(field, str) and isinstance(problem, str):
        value = getattr(exc, "value", None)
        option = option_name(field) if value is None else f"{option_name(field)} {value}"
        return f"{option}: {' '.join(as_options(problem, cls).split())}"
    return " ".join(str(exc).split()) or type(exc).__name__


def config_parameters(cls: type) -> list[inspect.Parameter]:
    """One keyword-only parameter per field of the dataclass ``cls``, annotated with its typer.Option."""
    hints, docs = get_type_hints(cls), field_docs(cls)
    params = []
    for f in fields(cls):
        kind = hints[f.name]
        default = f.default if f.default is not MISSING else None
        doc = as_options(docs.get(f.name, ""), cls)
        # `bool | None = None`: None is a value the run derives (the docstring says how); a flag given sets it
        optional = get_origin(kind) in (Union, UnionType) and type(None) in get_args(kind)
        if optional:
            kind = next(a for a in get_args(kind) if a is not type(None))
        if get_origin(kind) is Literal:
            choices = get_args(kind)
            kind, doc = str, f"{doc} One of: {', '.join(map(str, choices))}."
        flag = option_name(f.name)
        decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
        shown: bool | str = default not in ("", None)
        if isinstance(default, str) and default and not default.isprintable():
            shown = default.encode("unicode_escape").decode()  # "\n" as the two characters a user types
        option = typer.Option(*decls, help=doc, show_default=shown)
        annotation: Any = Annotated[kind | None if optional else kind, option]  # type: ignore[operator]
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation))
    return params
