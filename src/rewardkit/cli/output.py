"""How every command talks to people and machines.

- Results go to stdout: a readable rich rendering (lines never broken by rich, so pipes get one record per
  line), or one JSON document with ``--json``.
- Progress bars go to stderr and switch off when stderr is not a terminal (CI logs, pipes).
- A user's mistake raises ``UserError``; ``main.run`` prints it as one line and exits 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# soft_wrap: a line is never broken at the console width. On a terminal the terminal wraps it; in a pipe
# (grep, awk, a log) a result stays one line instead of being cut at rich's default 80 columns.
# markup=False: text is printed as it is, so a path or message holding "[abc]" is not eaten as a style tag;
# the few lines that style themselves pass markup=True and ``escape`` what they interpolate.
stdout = Console(soft_wrap=True, markup=False)
stderr = Console(stderr=True, soft_wrap=True, markup=False)


__all__ = ["UserError", "emit_json", "escape", "progress_bar", "stderr", "stdout"]


class UserError(Exception):
    """A problem the user can fix (bad input, missing file, bad option). Printed without a traceback."""


def emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str, ensure_ascii=False) + "\n")


@contextmanager
def progress_bar(description: str, total: float | None = None, unit: str = "items") -> Iterator["ProgressHandle"]:
    """A progress bar on stderr, silent when stderr is not a terminal. Yields ``advance(n)``."""
    enabled = stderr.is_terminal
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        disable=not enabled,
        transient=False,
    )
    with progress:
        task = progress.add_task(description, total=total, rate="")
        yield ProgressHandle(progress, task, unit)


class ProgressHandle:
    def __init__(self, progress: Progress, task: Any, unit: str) -> None:
        self._progress, self._task, self._unit = progress, task, unit

    def advance(self, n: float = 1, **fields: Any) -> None:
        speed = self._progress.tasks[0].speed if self._progress.tasks else None
        rate = f"{speed:,.1f} {self._unit}/s" if speed else ""
        self._progress.update(self._task, advance=n, rate=rate, **fields)

    def update(self, **kwargs: Any) -> None:
        self._progress.update(self._task, **kwargs)
