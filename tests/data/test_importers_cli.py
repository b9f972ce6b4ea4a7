"""``rewardkit import`` as a user meets it: the real HH-RLHF and AlpacaEval files, re-imports that store
nothing, one-line errors, and an import killed with SIGKILL midway that keeps every reported commit."""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.cli.output import UserError
from rewardkit.data.importers import trl
from rewardkit.data.importers.options import ImportOptions
from rewardkit.store.queries import table_counts

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def cli(store, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """Invoke ``rewardkit`` in-process against the test's store; returns (invoke, store)."""
    from rewardkit.settings import get_settings

    monkeypatch.setenv("RK_DATABASE_URL", store_url)
    monkeypatch.setenv("RK_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()

    def invoke(*args: str):  # noqa: ANN202
        return CliRunner().invoke(app, ["import", *args])

    yield invoke
    get_settings.cache_clear()


def test_hh_rlhf_real_file_imports_once(cli, store, shared_data: Path) -> None:  # noqa: ANN001
    path = shared_data / "hh-rlhf-harmless" / "train.jsonl.gz"
    result = cli("hh-rlhf", str(path), "--json")
    # 3 of the 1,812 pairs have an empty chosen reply, which a Response cannot hold: fail mode stops there.
    assert isinstance(result.exception, UserError)
    assert f"{path}, line 318: field 'chosen[1].content': is empty" in str(result.exception)
    with store() as s:
        assert table_counts(s)["comparisons"] == 0
    first = json.loads(cli("hh-rlhf", str(path), "--on-error", "skip", "--json").stdout)
    assert first["counts"] == {"read": 1812, "imported": 1809, "duplicates": 0, "rejected": 3, "ties": 0}
    rejects = [json.loads(line) for line in Path(first["rejects_path"]).read_text().splitlines()]
    assert [r["line"] for r in rejects] == [318, 1328, 1357]
    again = json.loads(cli("hh-rlhf", str(path), "--on-error", "skip", "--json").stdout)
    assert (again["counts"]["imported"], again["counts"]["duplicates"]) == (0, 1809)
    with store() as s:
        counts = table_counts(s)
    assert counts["comparisons"] == 1809 and counts["imports"] == 2


def test_alpacaeval_real_file_takes_every_row(cli, store, shared_data: Path) -> None:  # noqa: ANN001
    from sqlalchemy import func, select

    from rewardkit.store.tables import ComparisonRow

    path = shared_data / "alpacaeval" / "annotations.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    def unusable(r: dict) -> bool:  # an empty output, or a model's output compared with itself: no preference
        return not r["output_1"].strip() or not r["output_2"].strip() or r["output_1"].strip() == r["output_2"].strip()

    valid = [r for r in rows if not unusable(r)]
    distinct_ties = {(r["instruction"], r["output_1"], r["generator_1"], r["output_2"], r["generator_2"]) for r in valid if r["preference"] == 1.5}
    out = json.loads(cli("alpacaeval", str(path), "--on-error", "skip", "--json").stdout)
    c = out["counts"]
    assert c["read"] == len(rows) == 19466
    assert c["imported"] + c["duplicates"] + c["rejected"] == 19466
    assert c["rejected"] == len(rows) - len(valid)
    reasons = {json.loads(line)["reason"] for line in Path(out["rejects_path"]).read_text().splitlines()}
    assert reasons <= {"is empty", "is identical to output_1"}, reasons
    assert c["ties"] == sum(r["preference"] == 1.5 for r in valid)
    with store() as s:
        assert s.scalar(select(func.count()).select_from(ComparisonRow)) == c["imported"]
        assert s.scalar(select(func.count()).where(ComparisonRow.choice == "tie")) == len(distinct_ties)
        assert s.scalar(select(func.count()).where(ComparisonRow.annotator_kind == "ai")) == c["imported"]


def _rk(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rewardkit.cli.main", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_user_mistakes_are_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "RK_HOME": str(tmp_path), "RK_DATABASE_URL": f"sqlite:///{tmp_path / 'rk.db'}"}
    proc = _rk("import", "trl", "nowhere.jsonl", env=env, cwd=tmp_path)  # one subprocess: the CLI starts slowly
    assert proc.returncode == 2, proc.stderr
    assert "rewardkit: error: nowhere.jsonl: no such file" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_data_and_unknown_format_are_user_errors(cli, store) -> None:  # noqa: ANN001
    bad = cli("trl", str(FIXTURES / "trl_good.jsonl"), str(FIXTURES / "bad_identical.jsonl"))
    assert isinstance(bad.exception, UserError)  # main.run prints it as one line, exit 2
    assert "bad_identical.jsonl, line 2: field 'rejected': is identical to chosen" in str(bad.exception)
    unknown = cli("nope", "x.jsonl")
    assert unknown.exit_code == 2 and "No such command 'nope'" in unknown.output
    wrong_mode = cli("trl", str(FIXTURES / "trl_good.jsonl"), "--on-error", "maybe")
    assert isinstance(wrong_mode.exception, UserError) and "--on-error must be fail or skip" in str(wrong_mode.exception)
    with store() as s:
        assert table_counts(s)["comparisons"] == 0


def test_sigkill_midway_keeps_every_reported_commit(tmp_path: Path) -> None:
    n = 40_000
    big = tmp_path / "big.jsonl"
    with big.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"prompt": f"Question {i}?", "chosen": f"A careful answer {i}.", "rejected": f"Nonsense {i}."}) + "\n")
    db, progress = tmp_path / "rk.db", tmp_path / "progress.txt"
    env = {**os.environ, "RK_HOME": str(tmp_path), "RK_DATABASE_URL": f"sqlite:///{db}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rewardkit.cli.main", "import", "trl", str(big), "--batch-size", "500", "--progress-file", str(progress)],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if progress.exists() and len(progress.read_text().splitlines()) >= 4:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the import finished before it could be killed; make the file bigger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reported = int(progress.read_text().splitlines()[-1].split()[1])
    assert 2000 <= reported < n
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored_ids = {row[0] for row in con.execute("select id from comparisons")}
    assert len(stored_ids) >= reported
    options = ImportOptions("trl")
    with big.open() as fh:
        first = [trl.parse(json.loads(next(fh)), options).dedupe_key for _ in range(reported)]
    assert set(first) <= stored_ids  # every record reported committed is there
