"""Progress bars for long work (training, scoring, evaluation, imports): on stderr, and silent when stderr is
not a terminal (CI logs, pipes), so a log holds results, not redraws.

A library module, not a CLI one: the training loop shows its bar whether it runs under ``rewardkit train``,
``python -m rewardkit.train`` (torchrun) or a notebook.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# soft_wrap, markup=False: lines are never broken at 80 columns in a pipe, and "[abc]" in a path is text
STDERR = Console(stderr=True, soft_wrap=True, markup=False)


@contextmanager
def progress_bar(
    description: str, total: float | None = None, unit: str = "items", enabled: bool = True
) -> Iterator["ProgressHandle"]:
    """A progress bar on stderr, silent when stderr is not a terminal or ``enabled`` is False (a caller's
    --no-progress, a DDP rank other than 0). Yields ``advance(n)``."""
    enabled = enabled and STDERR.is_terminal
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=STDERR,
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
