"""Atomic writes: whole or nothing, and readable like a file open() would have made."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rewardkit.atomic import atomic_file, atomic_write_text, current_umask, temporary_folder


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_and_folders_get_the_umask_mode_not_tempfiles_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert current_umask() == 0o022
        atomic_write_text(tmp_path / "a.txt", "hello")
        assert (tmp_path / "a.txt").read_text() == "hello" and _mode(tmp_path / "a.txt") == 0o644
        assert _mode(temporary_folder(tmp_path / "sub", ".tmp-")) == 0o755
        os.umask(0o027)
        atomic_write_text(tmp_path / "b.txt", "x")
        assert _mode(tmp_path / "b.txt") == 0o640
    finally:
        os.umask(old)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed midway")
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
