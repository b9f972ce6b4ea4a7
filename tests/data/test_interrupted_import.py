"""An import killed with SIGKILL mid-way: ``db check`` and ``dataset build`` report the part it stored, and
running the same import again completes it and closes its audit row."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rewardkit.store import open_store
from rewardkit.store.queries import list_imports, table_counts


def _rewardkit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rewardkit.cli.main", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_a_killed_import_is_reported_and_a_rerun_completes_it(store_url: str, tmp_path: Path) -> None:
    n = 20_000
    big = tmp_path / "big.jsonl"
    big.write_text(
        "".join(
            json.dumps({"prompt": f"Q {i}?", "chosen": f"Good {i}.", "rejected": f"Bad {i}."}) + "\n" for i in range(n)
        )
    )
    progress = tmp_path / "progress.txt"
    env = {**os.environ, "RK_HOME": str(tmp_path / "home"), "RK_DATABASE_URL": store_url}
    command = ["import", "trl", str(big), "--batch-size", "500", "--progress-file", str(progress)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rewardkit.cli.main", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if progress.exists() and len(progress.read_text().splitlines()) >= 4:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the import finished before it could be killed; make the file bigger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    factory = open_store(store_url)
    with factory() as s:
        stored = table_counts(s)["comparisons"]
    assert 2000 <= stored < n

    # before: "integrity: ok", exit 0, and the row stayed "running" forever
    check = _rewardkit(env, "db", "check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert (
        f"import #1 (trl {big.resolve()}) was interrupted (its process is gone), {stored:,} comparisons stored"
        in check.stdout
    )
    report = json.loads(_rewardkit(env, "db", "check", "--json").stdout)
    assert [(u["id"], u["state"], u["comparisons"]) for u in report["unfinished_imports"]] == [
        (1, "interrupted", stored)
    ]

    # before: a snapshot of the part, without a word
    build = _rewardkit(env, "dataset", "build", "--json")
    assert build.returncode == 0, build.stderr
    assert "warning: import #1" in build.stderr and "this snapshot holds only that part" in build.stderr
    assert json.loads(build.stdout)["manifest"]["counts"]["pairs"] == stored

    rerun = _rewardkit(env, "import", "trl", str(big))
    assert rerun.returncode == 0, rerun.stderr
    assert f"imported {n - stored:,} comparisons" in rerun.stdout and "completed import #1" in rerun.stdout
    assert _rewardkit(env, "db", "check").returncode == 0
    with factory() as s:
        assert table_counts(s)["comparisons"] == n
        assert [(row.id, row.status) for row in list_imports(s)] == [(1, "superseded"), (2, "done")]
    factory.kw["bind"].dispose()
    assert "warning" not in _rewardkit(env, "dataset", "build").stderr


def test_a_running_import_is_reported_but_is_not_a_failure(store_url: str, tmp_path: Path) -> None:
    from rewardkit.data.importers.audit import process_identity, unfinished_imports
    from rewardkit.store import session_scope
    from rewardkit.store.queries import start_import

    factory = open_store(store_url)
    with session_scope(factory) as s:
        start_import(s, format="trl", paths=["/x.jsonl"], process=process_identity())  # this live process
        start_import(s, format="trl", paths=["/y.jsonl"], process={**process_identity(), "host": "elsewhere"})
        gone = {**process_identity(), "started": -1}  # this pid, but started at another time: a recycled pid
        start_import(s, format="trl", paths=["/z.jsonl"], process=gone)
        rebooted = {**process_identity(), "boot": "another-boot"}  # this pid after a restart of the machine
        start_import(s, format="trl", paths=["/r.jsonl"], process=rebooted)
        container = {**process_identity(), "pidns": -1}  # same host name, another pid namespace: cannot tell
        start_import(s, format="trl", paths=["/c.jsonl"], process=container)
    with factory() as s:
        states = [(u.id, u.state) for u in unfinished_imports(s)]
    assert states == [(1, "running"), (2, "unknown"), (3, "interrupted"), (4, "interrupted"), (5, "unknown")]
    factory.kw["bind"].dispose()
    env = {**os.environ, "RK_HOME": str(tmp_path / "home"), "RK_DATABASE_URL": store_url}
    check = _rewardkit(env, "db", "check")
    assert check.returncode == 1 and "running: import #1" in check.stdout and "incomplete: import #3" in check.stdout
