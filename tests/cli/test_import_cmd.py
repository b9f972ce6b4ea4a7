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

FIXTURES = Path(__file__).parents[1] / "data" / "fixtures"


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
    first = json.loads(cli("hh-rlhf", str(path), "--json").stdout)
    # Every pair is real and distinct: 3 of them prefer an empty final reply (a silent refusal), kept as such.
    assert first["counts"] == {"read": 1812, "imported": 1812, "duplicates": 0, "rejected": 0, "ties": 0}
    again = json.loads(cli("hh-rlhf", str(path), "--json").stdout)
    assert (again["counts"]["imported"], again["counts"]["duplicates"]) == (0, 1812)
    with store() as s:
        counts = table_counts(s)
    assert counts["comparisons"] == 1812 and counts["imports"] == 2


def test_alpacaeval_real_file_takes_every_row(cli, store, shared_data: Path) -> None:  # noqa: ANN001
    from sqlalchemy import func, select

    from rewardkit.store.tables import ComparisonRow

    path = shared_data / "alpacaeval" / "annotations.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    # Rows repeated verbatim in the file are one judgement stored once; everything else is stored.
    distinct = {json.dumps(r, sort_keys=True) for r in rows}
    distinct_ties = {
        (r["instruction"], r["output_1"], r["generator_1"], r["output_2"], r["generator_2"])
        for r in rows
        if r["preference"] == 1.5
    }
    out = json.loads(cli("alpacaeval", str(path), "--json").stdout)
    c = out["counts"]
    assert c["read"] == len(rows) == 19466
    assert c["rejected"] == 0
    assert c["imported"] == len(distinct) and c["duplicates"] == 19466 - len(distinct)
    assert c["ties"] == sum(r["preference"] == 1.5 for r in rows) == 740
    with store() as s:
        assert s.scalar(select(func.count()).select_from(ComparisonRow)) == c["imported"]
        assert s.scalar(select(func.count()).where(ComparisonRow.choice == "tie")) == len(distinct_ties)
        assert s.scalar(select(func.count()).where(ComparisonRow.annotator_kind == "ai")) == c["imported"]


def _rk(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rewardkit.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


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
    assert isinstance(wrong_mode.exception, UserError) and "--on-error must be fail or skip" in str(
        wrong_mode.exception
    )
    with store() as s:
        assert table_counts(s)["comparisons"] == 0


def test_sigkill_midway_keeps_every_reported_commit(tmp_path: Path) -> None:
    n = 40_000
    big = tmp_path / "big.jsonl"
    with big.open("w") as fh:
        for i in range(n):
            fh.write(
                json.dumps(
                    {"prompt": f"Question {i}?", "chosen": f"A careful answer {i}.", "rejected": f"Nonsense {i}."}
                )
                + "\n"
            )
    db, progress = tmp_path / "rk.db", tmp_path / "progress.txt"
    env = {**os.environ, "RK_HOME": str(tmp_path), "RK_DATABASE_URL": f"sqlite:///{db}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rewardkit.cli.main", "import", "trl", str(big)]
        + ["--batch-size", "500", "--progress-file", str(progress)],
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


def test_a_rejects_path_that_cannot_be_written_fails_before_anything_commits(cli, store, tmp_path: Path) -> None:  # noqa: ANN001
    rows = [
        {"prompt": "p1", "chosen": "a", "rejected": "b"},
        {"prompt": "p2", "chosen": "x"},
        {"prompt": "p3", "chosen": "c", "rejected": "d"},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    folder = tmp_path / "rejects-folder"
    folder.mkdir()
    result = cli("trl", str(path), "--on-error", "skip", "--rejects", str(folder), "--batch-size", "1")
    assert (
        isinstance(result.exception, UserError)
        and "--rejects" in str(result.exception)
        and "is a folder" in str(result.exception)
    )
    with store() as s:
        assert table_counts(s)["comparisons"] == 0 and table_counts(s)["imports"] == 0


def test_an_alpacaeval_import_of_another_format_says_the_field_is_missing(cli, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "trl.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    result = cli("alpacaeval", str(path))
    assert isinstance(result.exception, UserError) and "field 'preference': is missing" in str(result.exception)


def test_an_empty_file_is_an_error_and_records_no_import(cli, store, tmp_path: Path) -> None:  # noqa: ANN001
    (tmp_path / "empty.jsonl").write_text("\n")
    result = cli("trl", str(tmp_path / "empty.jsonl"))
    assert isinstance(result.exception, UserError) and "empty.jsonl: no records" in str(result.exception)
    with store() as s:
        assert table_counts(s)["imports"] == 0


def test_a_json_array_file_is_read_as_its_records(cli, tmp_path: Path) -> None:  # noqa: ANN001
    rows = [{"prompt": "p1", "chosen": "a", "rejected": "b"}, {"prompt": "p2", "chosen": "c", "rejected": "d"}]
    (tmp_path / "rows.json").write_text(json.dumps(rows, indent=2))
    assert json.loads(cli("trl", str(tmp_path / "rows.json"), "--json").stdout)["counts"]["imported"] == 2
    (tmp_path / "mixed.json").write_text(json.dumps([rows[0], "text"]))
    result = cli("trl", str(tmp_path / "mixed.json"))
    assert isinstance(
        result.exception, UserError
    ) and "mixed.json, item 2: field '(item)': expected a JSON object, got str" in str(result.exception)
