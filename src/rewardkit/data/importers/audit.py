"""Imports cut short: telling a killed import from a running one, and closing it when a re-run completes it.

An import commits in chunks (``run.py``), so a process killed mid-way (SIGKILL, the OOM killer, a lost
machine) leaves the chunks it committed in the store and its audit row at ``running`` forever. Each row
records its process (``process_identity``: host, pid and the pid's start time, so a recycled pid is not
taken for the import); a ``running`` row whose process is gone on this host is **interrupted**. ``db check``
and ``dataset build`` report interrupted imports (and ``failed`` ones that stored part of their input), and
a later import of the same format and files, once done, marks them ``superseded``: imports are idempotent,
so the re-run stores exactly what the interrupted one did not.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from rewardkit.store.queries import comparisons_of_import, list_imports, set_import_status
from rewardkit.store.steps import step_solutions_of_import


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (Linux /proc), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # field 22, counted after the command name, which is in parentheses and may itself hold spaces
    return int(stat.rsplit(")", 1)[1].split()[19])


def _machine() -> dict[str, Any]:
    """What must match for a pid to name the same process: the host name, the pid namespace (containers on
    one host may share a host name) and the boot (a reboot reuses pids)."""
    try:
        namespace: int | None = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = None
    try:
        boot: str | None = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = None
    return {"host": socket.gethostname(), "pidns": namespace, "boot": boot}


def process_identity() -> dict[str, Any]:
    """This process, as an import row records it."""
    pid = os.getpid()
    return {**_machine(), "pid": pid, "started": _start_ticks(pid)}


def process_state(process: dict[str, Any] | None) -> str:
    """alive | gone | unknown (another host or pid namespace, or a row written before rows recorded their
    process)."""
    here = _machine()
    if not process or not isinstance(process.get("pid"), int):
        return "unknown"
    if process.get("host") != here["host"] or process.get("pidns") != here["pidns"]:
        return "unknown"
    if process.get("boot") is not None and process["boot"] != here["boot"]:
        return "gone"  # the machine restarted since
    pid = process["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:  # alive, owned by another user
        pass
    started = process.get("started")
    if started is not None and _start_ticks(pid) not in (None, started):
        return "gone"  # the pid was recycled by a later process
    return "alive"


@dataclass(frozen=True)
class UnfinishedImport:
    """An import whose rows in the store may be a part of its input."""

    id: int
    format: str
    paths: list[str]
    started_at: datetime
    state: str  # interrupted (its process is gone) | running (alive) | unknown (another host) | failed
    comparisons: int  # comparisons it stored
    step_solutions: int = 0  # step-labelled solutions it stored (trl-stepwise, prm800k, math-shepherd)

    def describe(self) -> str:
        files = ", ".join(self.paths)
        stored = (
            f"{self.step_solutions:,} step solutions stored"
            if self.step_solutions
            else f"{self.comparisons:,} comparisons stored"
        )
        what = {
            "interrupted": "was interrupted (its process is gone)",
            "running": "is still running",
            "unknown": "is marked running by a process this host cannot check (another host, or an older rewardkit)",
            "failed": "failed part-way",
        }[self.state]
        hint = "" if self.state == "running" else "; run the same import again to complete it"
        return f"import #{self.id} ({self.format} {files}) {what}, {stored}{hint}"

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "started_at": self.started_at.isoformat()}


def unfinished_imports(session: Session) -> list[UnfinishedImport]:
    """Every import that is running, was interrupted, or failed after storing something, oldest first."""
    out = []
    for row in list_imports(session, statuses=("running", "failed")):
        stored = comparisons_of_import(session, row.id)
        steps = step_solutions_of_import(session, row.id)
        if row.status == "failed":
            if stored + steps == 0:
                continue  # a failed import that stored nothing (the usual case: --on-error fail) is harmless
            state = "failed"
        else:
            state = {"gone": "interrupted", "alive": "running", "unknown": "unknown"}[process_state(row.process)]
        out.append(UnfinishedImport(row.id, row.format, list(row.paths), row.started_at, state, stored, steps))
    return out


def supersede(session: Session, import_id: int, *, format: str, paths: list[str]) -> list[int]:
    """Mark the interrupted and failed runs of import ``import_id`` (same format, same files) superseded once
    it is done: it stored everything they had meant to. Returns their ids."""
    ids = [
        u.id
        for u in unfinished_imports(session)
        if u.id < import_id and u.state in ("interrupted", "failed") and u.format == format and u.paths == paths
    ]
    if ids:
        set_import_status(session, ids, "superseded")
    return ids
