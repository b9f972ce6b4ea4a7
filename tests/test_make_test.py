"""``make test`` stops the PostgreSQL server it started, whether the suite passes or fails (before, it left
the server running). Runs the real Makefile and .ci scripts with a stand-in for the suite; needs root and
Debian's postgresql, as CI has."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    os.geteuid() != 0 or not glob.glob("/usr/lib/postgresql/*/bin/initdb") or not shutil.which("make"),
    reason="needs root, make and Debian's postgresql (CI runs as root with them)",
)
@pytest.mark.parametrize("suite_exit", [0, 3])
def test_make_test_stops_the_server_it_started(tmp_path: Path, suite_exit: int) -> None:
    fake = tmp_path / "venv" / "bin"
    fake.mkdir(parents=True)
    seen = tmp_path / "url.txt"
    # the stand-in suite records the URL it was given and checks the server answers
    (fake / "python").write_text(
        f'#!/bin/sh\necho "$RK_TEST_POSTGRES_URL" > {seen}\n'
        f"pg_isready -h 127.0.0.1 -p {os.getpid() % 1000 + 56000} >> {seen} 2>&1\nexit {suite_exit}\n"
    )
    (fake / "python").chmod(0o755)
    (fake / "rewardkit").touch()  # newer than pyproject.toml: setup has nothing to do
    port = str(os.getpid() % 1000 + 56000)
    pgdata = Path(f"/tmp/rk-make-test-{port}-{suite_exit}")  # the postgres user cannot reach pytest's 0700 tmp_path
    env = {**os.environ, "RK_PGDATA": str(pgdata), "RK_PGPORT": port, "PATH": f"{_pg_bin()}:{os.environ['PATH']}"}
    env.pop("RK_TEST_POSTGRES_URL", None)
    try:
        proc = subprocess.run(
            ["make", "-C", str(ROOT), "test", f"VENV={tmp_path / 'venv'}"], env=env, capture_output=True, text=True
        )
    finally:  # a server left running by a failing Makefile is stopped here, not left to the machine
        leftover = pgdata.exists()
        subprocess.run(["bash", str(ROOT / ".ci" / "stop-postgres.sh")], env=env, check=True)
    assert not leftover
    assert proc.returncode == (0 if suite_exit == 0 else 2), proc.stdout + proc.stderr  # make exits 2 on failure
    recorded = seen.read_text()
    assert f"@127.0.0.1:{port}/postgres" in recorded and "accepting connections" in recorded
    status = subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", port], env=env, capture_output=True, text=True)
    assert status.returncode != 0  # nothing listens there any more


def _pg_bin() -> str:
    return sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
