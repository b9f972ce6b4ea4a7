"""Progress of long work (training, scoring, evaluation, imports), on stderr.

On a terminal it is a progress bar. Without one (a log file, CI, a notebook, a pipe) a bar's redraws would
fill the log, and printing nothing left a 10-minute ``train`` silent; so the same handle prints one plain line
at most every ``RK_PROGRESS_INTERVAL`` seconds (default 10), when work advances::

    training: 1,234/5,000 pairs (24.7%), 10.2 pairs/s, elapsed 2m01s, ETA 6m09s, loss 0.612

and a last line when the work ends, if it printed any (work shorter than the interval stays silent). The
lines come when work advances and, between advances, from a heartbeat thread: an ``eval`` whose scoring stage
runs two minutes without advancing still says every interval that it is alive.

The API: ``with progress_bar(description, total, unit) as bar: bar.advance(n, **fields)``. Keyword fields
other than ``description`` (which renames the work) are shown after the counts, in both forms:
``bar.advance(16, loss=0.61)``. A library module, not a CLI one: the training loop reports the same way
under ``rewardkit train``, ``python -m rewardkit train`` (torchrun) or a notebook.
"""

from __future__ import annotations

import math
import os
import threading
import time
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

INTERVAL_ENV = "RK_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 10.0


def line_interval() -> float:
    """Seconds between plain progress lines: ``RK_PROGRESS_INTERVAL`` (0: every advance), else 10."""
    try:
        value = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL_S))
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if math.isfinite(value) and value >= 0 else DEFAULT_INTERVAL_S


def format_duration(seconds: float) -> str:
    """45s, 2m01s, 1h05m."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def format_fields(fields: dict[str, Any]) -> str:
    """``loss 0.612, step 1,200``: floats to 4 significant digits, integers with thousands separators."""

    def text(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)

    return ", ".join(f"{k} {text(v)}" for k, v in fields.items())


def progress_line(
    description: str,
    done: float,
    total: float | None,
    unit: str,
    rate: float | None,
    elapsed: float,
    fields: dict[str, Any],
) -> str:
    """One plain progress line (see the module docstring); ``rate`` in units per second, None when unknown."""
    parts = [f"{done:,.0f}/{total:,.0f} {unit} ({100 * done / total:.1f}%)" if total else f"{done:,.0f} {unit}"]
    if rate:
        parts.append(f"{rate:,.1f} {unit}/s")
    parts.append(f"elapsed {format_duration(elapsed)}")
    if total and rate and done < total:
        parts.append(f"ETA {format_duration((total - done) / rate)}")
    if fields:
        parts.append(format_fields(fields))
    return f"{description}: " + ", ".join(parts)


class ProgressHandle:
    """What ``progress_bar`` yields: ``advance(n, **fields)``. Drawn as a rich bar on a terminal; as a plain
    line every ``interval`` seconds otherwise (``lines``); silent when disabled."""

    def __init__(
        self,
        progress: Progress,
        task: Any,
        unit: str,
        *,
        description: str = "",
        total: float | None = None,
        lines: bool = False,
        interval: float = DEFAULT_INTERVAL_S,
        clock: Any = time.monotonic,
    ) -> None:
        self._progress, self._task, self._unit = progress, task, unit
        self._description, self._total, self._lines, self._interval, self._clock = (
            description,
            total,
            lines,
            interval,
            clock,
        )
        self.done = 0.0
        self.fields: dict[str, Any] = {}
        self._started = clock()
        # the rate counts from the first advance on: a resumed run's first advance is the work done before
        self._base: tuple[float, float] | None = None
        self._last_line: float = self._started
        self._last_done = 0.0
        self.printed = 0
        self._lock = threading.Lock()  # the heartbeat and advance() both print
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def start_heartbeat(self) -> None:
        """Print the line every ``interval`` seconds between advances too (a daemon thread until ``close``)."""
        if self._lines and self._interval > 0 and self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._beat, name="rewardkit-progress", daemon=True)
            self._heartbeat.start()

    def _beat(self) -> None:
        while not self._stop.wait(self._interval / 4):
            now = self._clock()
            if now - self._last_line >= self._interval:
                self._print(now)

    def advance(self, n: float = 1, **fields: Any) -> None:
        description = fields.pop("description", None)
        if description is not None:
            self._description = str(description)
        self.fields.update(fields)
        self.done += n
        speed = self._progress.tasks[0].speed if self._progress.tasks else None
        rate = f"{speed:,.1f} {self._unit}/s" if speed else ""
        extra = {"description": description} if description is not None else {}
        self._progress.update(self._task, advance=n, rate=rate, postfix=format_fields(self.fields), **extra)
        if not self._lines or (n == 0 and description is None):  # fields alone wait for the next advance
            return
        now = self._clock()
        if self._base is None:
            self._base = (now, self.done)
        if now - self._last_line >= self._interval:
            self._print(now)

    def rate(self, now: float) -> float | None:
        if self._base is None or now <= self._base[0] or self.done <= self._base[1]:
            return None
        return (self.done - self._base[1]) / (now - self._base[0])

    def _print(self, now: float) -> None:
        with self._lock:
            if self.printed and now - self._last_line < min(self._interval, 1.0) and self.done == self._last_done:
                return  # the other printer just printed this
            line = progress_line(
                self._description, self.done, self._total, self._unit, self.rate(now), now - self._started, self.fields
            )
            STDERR.print(line, highlight=False)
            self._last_line, self._last_done, self.printed = now, self.done, self.printed + 1

    def close(self) -> None:
        """The last line, when the plain lines printed any (work shorter than the interval stays silent) and
        the work moved since."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        if self._lines and self.printed and self.done != self._last_done:
            self._print(self._clock())


@contextmanager
def progress_bar(
    description: str, total: float | None = None, unit: str = "items", enabled: bool = True
) -> Iterator[ProgressHandle]:
    """Progress on stderr: a bar on a terminal, a plain line every ``RK_PROGRESS_INTERVAL`` seconds without
    one, nothing when ``enabled`` is False (a caller's --no-progress, a DDP rank other than 0). Yields the
    handle whose ``advance(n, **fields)`` reports work done."""
    terminal = enabled and STDERR.is_terminal
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[postfix]}"),
        console=STDERR,
        disable=not terminal,
        transient=False,
    )
    with progress:
        task = progress.add_task(description, total=total, rate="", postfix="")
        handle = ProgressHandle(
            progress,
            task,
            unit,
            description=description,
            total=total,
            lines=enabled and not terminal,
            interval=line_interval(),
        )
        handle.start_heartbeat()
        try:
            yield handle
        finally:
            handle.close()
