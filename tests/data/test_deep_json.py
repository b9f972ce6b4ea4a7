"""A JSON line nested 5,000 levels deep: ``import``, ``train`` and ``score`` all read it through the shared
reader and answer with one line naming the file and line (before: an uncaught RecursionError traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewardkit.data.importers.reader import iter_records

DEEP = "[" * 5000 + "]" * 5000


def _write(path: Path, first: dict, second: str) -> Path:
    path.write_text(json.dumps(first) + "\n" + second + "\n")
    return path


@pytest.mark.parametrize(
    ("args", "first", "second"),
    [
        (
            ["import", "trl", "{data}"],
            {"prompt": "p", "chosen": "a", "rejected": "b"},
            f'{{"prompt": "p", "chosen": {DEEP}}}',
        ),
        (
            ["train", "--data", "{data}", "--out", "{tmp}/model"],
            {"prompt": "p", "chosen": "a", "rejected": "b"},
            f'{{"chosen": {DEEP}}}',
        ),
        (["score", "{data}", "--model", "{tmp}/no-model"], {"prompt": "p", "response": "a"}, f'{{"response": {DEEP}}}'),
    ],
    ids=["import", "train", "score"],
)
def test_a_deeply_nested_line_is_a_one_line_error(tmp_path: Path, args: list[str], first: dict, second: str) -> None:
    data = _write(tmp_path / "deep.jsonl", first, second)
    command = [a.format(tmp=tmp_path, data=data) for a in args]
    env = {**os.environ, "RK_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "rewardkit.cli.main", *command], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"{data}, line 2" in proc.stderr and "nested too deeply" in proc.stderr


def test_the_reader_reports_the_line_and_reads_on(tmp_path: Path) -> None:
    path = _write(tmp_path / "deep.jsonl", {"a": 1}, DEEP)
    path.write_text(path.read_text() + json.dumps({"b": 2}) + "\n")
    items = [(str(loc), getattr(rec, "message", rec)) for loc, rec in iter_records(path)]
    assert items[0][1] == {"a": 1} and items[2][1] == {"b": 2}
    assert items[1][0].endswith("line 2") and "nested too deeply" in items[1][1]
    cell = tmp_path / "deep.csv"
    cell.write_text('prompt,chosen\n"[{' + "[" * 3000 + '",x\n')
    [(_, record)] = iter_records(cell)  # a cell that only looks like a list of messages stays text
    assert record["chosen"] == "x" and record["prompt"].startswith("[{[[")
