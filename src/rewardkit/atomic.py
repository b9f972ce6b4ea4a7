"""Files and folders that appear whole or not at all, with the permissions a plain ``open()`` would give.

Every writer builds its output under a temporary name beside the target and renames it into place
(``os.replace`` is atomic within a file system), so neither a reader nor a crash ever sees half a file.
``tempfile`` creates those temporaries owner-only (files 0600, folders 0700) for its own safety; renamed as
they are, a model, a scored file or a snapshot written by one account is unreadable by the group or the
service account that shares it. So each gets, before the rename, the mode ``open()`` or ``mkdir()`` would
have given it under the process's umask.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def current_umask() -> int:
    """The process's umask, read from /proc where there is one: setting it to read it back (the only
    portable way) would briefly give files other threads create a umask of 0."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def share_like_open(path: Path) -> None:
    """Give a temporary file or folder the mode a new one gets from ``open()`` / ``mkdir()``."""
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~current_umask())


def share_folder_like_open(folder: Path) -> None:
    """Give every file and folder under ``folder`` the mode ``open()`` / ``mkdir()`` would: libraries that
    write through their own temporaries leave them owner-only (safetensors >= 0.6 writes model.safetensors
    0600 while ``save_pretrained`` writes the rest of the folder 0644)."""
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            share_like_open(path)


@contextmanager
def atomic_file(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; when the block ends without an error it replaces
    ``path`` (with ordinary permissions), otherwise it is deleted and ``path`` is untouched. ``suffix``: for
    writers that pick the format from the name (matplotlib's ``.png``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        share_like_open(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def unwritable_reason(folder: Path) -> str | None:
    """Why files cannot be written in ``folder`` once it is made (``mkdir -p``), or None: its nearest
    existing ancestor must be a writable folder. Checked by commands before their work, not at its end."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def temporary_folder(parent: Path, prefix: str) -> Path:
    """A new empty folder in ``parent`` (made if needed) to fill and rename into place, with the mode
    ``mkdir()`` would give it; the caller removes it if it does not rename it."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    share_like_open(folder)
    return folder
