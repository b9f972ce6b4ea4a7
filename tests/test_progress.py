"""Progress without a terminal: one plain line at most every RK_PROGRESS_INTERVAL seconds (before: nothing at
all, so a 10-minute ``train`` or a 2-minute ``eval`` printed nothing to a log), with counts worked by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.progress import Progress

from rewardkit.progress import ProgressHandle, format_duration, line_interval, progress_bar, progress_line


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_plain_line_every_interval_with_rate_eta_and_fields(capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    progress = Progress(disable=True)
    task = progress.add_task("training", total=96, rate="", postfix="")
    bar = ProgressHandle(
        progress, task, "pairs", description="training", total=96, lines=True, interval=10, clock=clock
    )
    clock.now = 2.0
    bar.advance(16, loss=0.7)  # the rate counts from here: (2 s, 16 pairs)
    clock.now = 9.0
    bar.advance(8)  # 9 s since the start: under the interval, no line
    assert capsys.readouterr().err == ""
    clock.now = 12.0
    bar.advance(8, loss=0.5)
    # 32 of 96 pairs; rate (32 - 16) / (12 - 2) = 1.6 pairs/s; ETA (96 - 32) / 1.6 = 40 s
    assert capsys.readouterr().err == "training: 32/96 pairs (33.3%), 1.6 pairs/s, elapsed 12s, ETA 40s, loss 0.5\n"
    clock.now = 13.0
    bar.advance(16, description="training (epoch 2)")  # 1 s after the last line: none
    assert capsys.readouterr().err == ""
    clock.now = 30.0
    bar.advance(0, loss=0.25)  # fields alone print nothing; the next line shows them
    bar.close()  # the last line: 48 pairs, (48 - 16) / (30 - 2) = 1.143 pairs/s, ETA 48 / 1.143 = 42 s
    assert capsys.readouterr().err == (
        "training (epoch 2): 48/96 pairs (50.0%), 1.1 pairs/s, elapsed 30s, ETA 42s, loss 0.25\n"
    )


def test_work_shorter_than_the_interval_stays_silent(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("RK_PROGRESS_INTERVAL", "60")
    with progress_bar("scoring", total=10, unit="rows") as bar:  # pytest's stderr is not a terminal
        for _ in range(10):
            bar.advance(1, loss=1.0)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RK_PROGRESS_INTERVAL", "0")
    with progress_bar("scoring", total=2, unit="rows") as bar:
        bar.advance(1)
        bar.advance(1, step=1200)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("scoring: 1/2 rows (50.0%)") and lines[1].endswith("step 1,200")
    with progress_bar("scoring", total=2, unit="rows", enabled=False) as bar:  # --no-progress, DDP rank > 0
        bar.advance(2)
    assert capsys.readouterr().err == ""


def test_interval_setting_and_formats(monkeypatch) -> None:  # noqa: ANN001
    for raw, expected in (("2.5", 2.5), ("0", 0.0), ("soon", 10.0), ("-1", 10.0), ("nan", 10.0)):
        monkeypatch.setenv("RK_PROGRESS_INTERVAL", raw)
        assert line_interval() == expected
    assert [format_duration(s) for s in (45, 121, 3900)] == ["45s", "2m01s", "1h05m"]
    assert progress_line("import trl", 3000, None, "records", None, 5, {}) == "import trl: 3,000 records, elapsed 5s"


def test_import_without_a_terminal_reports_progress_lines_not_a_line_per_chunk(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(json.dumps({"prompt": f"q{i}", "chosen": "y", "rejected": "n"}) + "\n" for i in range(2500))
    )
    env = {**os.environ, "RK_HOME": str(tmp_path / "home"), "RK_PROGRESS_INTERVAL": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "rewardkit.cli.main", "import", "trl", str(rows)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert not any(line.startswith("committed") for line in lines)  # before: "committed 1000" per chunk
    assert lines[0].startswith("import trl: 1,000 records") and lines[0].endswith("committed 1,000")
    assert lines[-1].startswith("import trl: 2,500 records") and lines[-1].endswith("committed 2,500")


def test_a_long_step_without_advances_still_prints_a_line_every_interval(
    capsys: pytest.CaptureFixture[str],
    monkeypatch,  # noqa: ANN001
) -> None:
    # eval's scoring stage ran 2 minutes without advancing its bar: the heartbeat says it is alive
    import time

    monkeypatch.setenv("RK_PROGRESS_INTERVAL", "0.2")
    with progress_bar("evaluating", total=3, unit="stages") as bar:
        time.sleep(1.0)  # one long stage
        bar.advance(1, description="calibration")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 3, lines  # about 5 heartbeat lines in 1 s (fewer on a loaded machine), then the advance
    assert lines[0] == "evaluating: 0/3 stages (0.0%), elapsed 0s"
    assert lines[-1].startswith("calibration: 1/3 stages (33.3%)")
