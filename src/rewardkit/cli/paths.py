"""Output paths, checked before a command does its work.

An output that cannot be written (a folder where a file is wanted, a file where a folder is wanted, a parent
that is a file or read-only) must fail in the first second with one line naming the option, not after
minutes of scoring or an hour of training, and not after part of an import was committed.
"""

from __future__ import annotations

from pathlib import Path

from rewardkit.atomic import unwritable_reason
from rewardkit.cli.output import UserError


def check_out_file(path: Path, option: str) -> None:
    """``path`` can be written as a file (it may exist; it is replaced)."""
    if path.is_dir():
        raise UserError(f"{option} {path}: is a folder; give a file name")
    reason = unwritable_reason(path.parent)
    if reason:
        raise UserError(f"{option} {path}: cannot write there ({reason})")


def check_out_dir(path: Path, option: str, *, must_not_exist: bool = False) -> None:
    """``path`` is a folder, or can be made one (``must_not_exist``: and is not there yet)."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path}: is a file, not a folder")
    if must_not_exist and path.exists():
        raise UserError(f"{option} {path}: exists already; give a new folder")
    reason = unwritable_reason(path)
    if reason:
        raise UserError(f"{option} {path}: cannot write there ({reason})")
