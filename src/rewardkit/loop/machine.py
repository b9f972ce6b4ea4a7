"""One loop run as a state machine, and ``tick``: one idempotent step for cron.

    requested ─┐                          (an alert; or a trigger found by the tick itself)
    pending  ──┴► compiled ──► trained ──► registered ──► promoted
                     │                         └──────► rejected   (the gates said no: the verdict says why)
                     └──► skipped  (the snapshot equals the champion's: nothing new to learn)
    any step failing max_attempts times ──► failed   (the champion keeps serving; the error is recorded)

Each arrow is one committed UPDATE of the run's ``loop_runs`` row after the step's work is done, so a tick
killed at any point (``kill -9``) leaves the row in the last completed state, and the next tick (after the
dead tick's lease expires) redoes only the interrupted step. Steps are idempotent: a snapshot is content-
addressed, a half-written training folder is removed and trained again, registering the same files returns the
same version, and a promotion that already moved the champion is recognised rather than repeated.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from rewardkit.loop.config import LoopConfig, LoopConfigError
from rewardkit.loop.lease import Lease
from rewardkit.loop.states import FINAL
from rewardkit.loop.triggers import due_reasons, observe
from rewardkit.store import registry as q
from rewardkit.store import session_scope

log = logging.getLogger("rewardkit.loop")


@dataclass
class TickResult:
    action: str  # idle | advanced | busy
    run_id: int | None = None
    state: str | None = None
    reasons: list[str] = field(default_factory=list)
    detail: str = ""
    seconds: float = 0.0
    steps: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class StepFailed(RuntimeError):
    """A step failed for a reason retrying will not fix (a configuration problem): the run ends as failed."""


def _update(factory: sessionmaker[Session], run_id: int, **values: Any) -> None:
    with session_scope(factory) as s:
        q.update_loop_run(s, run_id=run_id, **values)


def _champion(factory: sessionmaker[Session], name: str) -> tuple[int | None, Any]:
    with session_scope(factory) as s:
        version = q.alias_version(s, name=name, alias="champion")
        row = q.get_model_version(s, name=name, version=version) if version is not None else None
        return version, row


# --- the steps: each returns the values to commit with the next state ---------------------------------------


def step_compile(factory: sessionmaker[Session], config: LoopConfig, run: Any) -> tuple[str, dict[str, Any]]:
    from rewardkit.data.snapshot import SnapshotError, build_snapshot
    from rewardkit.registry.gates import golden_pairs, golden_snapshot
    from rewardkit.settings import get_settings

    _, champion = _champion(factory, config.name)
    parent = champion.snapshot_id if champion is not None else None
    try:
        with session_scope(factory) as s:
            built = build_snapshot(s, config.compile_config(), get_settings().snapshot_dir, parent=parent)
    except SnapshotError as exc:
        raise StepFailed(f"compile: {exc}") from None
    if champion is not None and built.id == champion.snapshot_id:
        return "skipped", {"snapshot_id": built.id, "error": "the snapshot equals the champion's: nothing new"}
    # golden labels must be held out of training: refuse a training snapshot that shares a prompt with them
    from rewardkit.data.snapshot import load_split
    from rewardkit.registry.versions import RegistryError

    try:
        _, folder = golden_snapshot(factory, config.golden or None)
    except RegistryError as exc:
        raise StepFailed(f"compile: {exc}") from None
    golden_prompts = {p.prompt_id for p in golden_pairs(folder)}
    train_prompts = {p.prompt_id for split in ("train", "validation") for p in load_split(built.path, split)}
    shared = golden_prompts & train_prompts
    if shared:
        raise StepFailed(
            f"compile: the training snapshot {built.id[:12]} shares {len(shared)} prompts with the golden snapshot; "
            "hold golden data out with [compile] filters (sources / annotator_kinds)"
        )
    return "compiled", {"snapshot_id": built.id}


def step_train(factory: sessionmaker[Session], config: LoopConfig, run: Any) -> tuple[str, dict[str, Any]]:
    from rewardkit.settings import get_settings
    from rewardkit.train import TrainConfig, train

    _, champion = _champion(factory, config.name)
    out = config.resolved_work_dir() / f"run-{run.id}" / "model"
    if out.exists():  # left by a killed tick: train again from the start (cheaper to reason about than resume)
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    backbone = champion.path if (config.warm_start == "champion" and champion is not None) else config.backbone
    snapshot = get_settings().snapshot_dir / run.snapshot_id
    overrides = {"progress": False, **config.train}
    if backbone:
        overrides["backbone"] = backbone
    try:
        tc = TrainConfig(data=str(snapshot), out=str(out), **overrides)
    except (TypeError, ValueError) as exc:
        raise StepFailed(f"train: [train] {exc}") from None
    train(tc)
    return "trained", {"candidate_path": str(out)}


def step_register(factory: sessionmaker[Session], config: LoopConfig, run: Any) -> tuple[str, dict[str, Any]]:
    from rewardkit.registry.aliases import current, set_alias
    from rewardkit.registry.versions import register_version

    info, _ = register_version(
        factory,
        name=config.name,
        source=Path(run.candidate_path),
        created_by=f"loop run {run.id}",
        snapshot_id=run.snapshot_id,
        train_config={"warm_start": config.warm_start, **config.train},
    )
    if current(factory, config.name, "challenger") != info.version:
        set_alias(factory, name=config.name, alias="challenger", version=info.version, who=f"loop run {run.id}")
    _mirror(config, factory, info.version, "challenger")
    return "registered", {"candidate_version": info.version}


def _mirror(config: LoopConfig, factory: sessionmaker[Session], version: int, alias: str) -> None:
    """Mirror to MLflow when configured; a failed mirror is logged, never fails the run (the store is the truth)."""
    if not config.mlflow_uri:
        return
    from rewardkit.registry.mlflow_mirror import mirror_alias
    from rewardkit.registry.versions import get_version

    try:
        mirror_alias(config.mlflow_uri, get_version(factory, name=config.name, version=version), alias)
    except Exception as exc:  # noqa: BLE001
        log.warning("mirroring %s v%s@%s to MLflow failed: %s", config.name, version, alias, exc)


def step_gate(factory: sessionmaker[Session], config: LoopConfig, run: Any) -> tuple[str, dict[str, Any]]:
    from rewardkit.registry.aliases import promote
    from rewardkit.registry.policy import load_policy

    now, _ = _champion(factory, config.name)
    if now == run.candidate_version:  # a tick killed after the move, before recording it: not promoted twice
        return "promoted", {}
    if now != run.champion_version:
        raise StepFailed(
            f"gate: the champion moved (v{run.champion_version} -> v{now}) while this run trained; not promoted"
        )
    result = promote(
        factory,
        name=config.name,
        version=run.candidate_version,
        who=f"loop run {run.id}",
        policy=load_policy(Path(config.policy) if config.policy else None),
        golden=config.golden or None,
        why=f"loop run {run.id}: {', '.join(run.trigger.get('reasons', [])) or run.trigger.get('alert', '')}",
        eval_config=config.eval_config(),
        device=config.device,
        expected_champion=run.champion_version,
    )
    if result.move:
        _mirror(config, factory, run.candidate_version, "champion")
    return ("promoted" if result.move else "rejected"), {"verdict": result.verdict}


STEPS = {
    "requested": step_compile,
    "pending": step_compile,
    "compiled": step_train,
    "trained": step_register,
    "registered": step_gate,
}


# --- the tick -------------------------------------------------------------------------------------------------


def _start_run(factory: sessionmaker[Session], config: LoopConfig, result: TickResult) -> Any:
    """The open run, or a new one when a trigger is due; None when there is nothing to do."""
    with session_scope(factory) as s:
        run = q.open_loop_run(s, name=config.name, final_states=FINAL)
        if run is None:
            obs = observe(s, name=config.name, compile_filter=config.compile_filter())
            result.reasons = due_reasons(
                obs, min_new_comparisons=config.min_new_comparisons, max_age_s=config.max_age_s
            )
            if not result.reasons:
                result.detail = f"not due: {obs.new_comparisons} new comparisons < {config.min_new_comparisons}"
                return None
            run = q.add_loop_run(s, name=config.name, state="pending", trigger={"reasons": result.reasons})
        if run.champion_version is None and run.state in ("requested", "pending"):
            run.champion_version = q.alias_version(s, name=config.name, alias="champion")
        return run


def tick(factory: sessionmaker[Session], config: LoopConfig, *, holder: str | None = None) -> TickResult:
    """Take the lease, then start or resume the open run and drive it to a final state (or until a step fails:
    the next tick retries it). Raises LeaseBusy when another tick holds the lease."""
    start = time.perf_counter()
    result = TickResult(action="idle")
    with Lease(factory, f"loop:{config.name}", ttl_s=config.lease_ttl_s, holder=holder) as lease:
        run = _start_run(factory, config, result)
        if run is None:
            result.seconds = time.perf_counter() - start
            return result
        result.action, result.run_id = "advanced", run.id
        try:
            config.check_heavy()
        except LoopConfigError as exc:
            _update(factory, run.id, state="failed", error=str(exc), finished_at=datetime.now(UTC))
            run.state = "failed"
        while run.state not in FINAL:
            step = STEPS[run.state]
            lease.check()
            try:
                state, values = step(factory, config, run)
            except Exception as exc:  # noqa: BLE001 - recorded in the run; the champion is untouched
                final = isinstance(exc, StepFailed) or run.attempts + 1 >= config.max_attempts
                message = f"{run.state}: {type(exc).__name__}: {exc}" if not isinstance(exc, StepFailed) else str(exc)
                log.error("loop run %s: %s", run.id, message)
                lease.check()
                _update(
                    factory,
                    run.id,
                    attempts=run.attempts + 1,
                    error=message,
                    **({"state": "failed", "finished_at": datetime.now(UTC)} if final else {}),
                )
                result.state, result.detail = ("failed" if final else run.state), message
                break
            lease.check()
            done = {"finished_at": datetime.now(UTC)} if state in FINAL else {}
            _update(factory, run.id, state=state, attempts=0, **values, **done)
            result.steps.append(f"{run.state} -> {state}")
            with session_scope(factory) as s:
                run = q.get_loop_run(s, run_id=run.id)
        else:
            result.state = run.state
            result.detail = run.error or ""
    result.seconds = time.perf_counter() - start
    return result
