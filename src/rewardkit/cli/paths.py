"""Output paths, checked before a command does its work.

An output that cannot be written (a folder where a file is wanted, a file where a folder is wanted, a parent
that is a file or read-only) must fail in the first second with one line naming the option, not after
minutes of scoring or an hour of training, and not after part of an import was committed.
"""

from __future__ import annotations

import os
from pathlib import Path

from rewardkit.cli.output import UserError


def _blocker(folder: Path) -> str | None:
    """Why ``folder`` cannot be used or created, or None: its nearest existing ancestor must be a writable
    folder."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def check_out_file(path: Path, option: str) -> None:
    """``path`` can be written as a file (it may exist; it is replaced)."""
    if path.is_dir():
        raise UserError(f"{option} {path}: is a folder; give a file name")
    reason = _blocker(path.parent if str(path.parent) else Path("."))
    if reason:
        raise UserError(f"{option} {path}: cannot write there ({reason})")


def check_out_dir(path: Path, option: str, *, must_not_exist: bool = False) -> None:
    """``path`` is a folder, or can be made one (``must_not_exist``: and is not there yet)."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path}: is a file, not a folder")
    if must_not_exist and path.exists():
        raise UserError(f"{option} {path}: exists already; give a new folder")
    reason = _blocker(path)
    if reason:
        raise UserError(f"{option} {path}: cannot write there ({reason})")
