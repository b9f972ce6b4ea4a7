"""When a retrain is due: comparisons added since the champion's snapshot at or over a count, a monitoring
alert, or the champion's age over a limit. ``due_reasons`` is the pure rule; ``observe`` reads what it needs
from the store in two or three indexed queries (a tick with nothing to do must stay well under a second);
``raise_alert`` is what monitoring calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from rewardkit.loop.states import FINAL
from rewardkit.store import registry as q
from rewardkit.store.queries import aware


@dataclass(frozen=True)
class Observation:
    new_comparisons: int  # selected comparisons now minus those the champion's snapshot selected
    champion_age_s: float | None  # None: no champion
    has_champion: bool


def due_reasons(obs: Observation, *, min_new_comparisons: int, max_age_s: float | None) -> list[str]:
    """Why a retrain is due (empty: not due)."""
    reasons = []
    if obs.new_comparisons >= min_new_comparisons:
        reasons.append(f"{obs.new_comparisons} new comparisons >= {min_new_comparisons}")
    if max_age_s is not None and obs.champion_age_s is not None and obs.champion_age_s >= max_age_s:
        reasons.append(f"champion is {obs.champion_age_s / 3600:.1f} h old >= {max_age_s / 3600:.1f} h")
    return reasons


def observe(session: Session, *, name: str, compile_filter: Any, now: datetime | None = None) -> Observation:
    """``compile_filter``: a store ComparisonFilter with the loop's compile filters."""
    from rewardkit.store.queries import count_comparisons, get_snapshot

    now = now or datetime.now(UTC)
    selected = count_comparisons(session, compile_filter)
    champion = q.alias_version(session, name=name, alias="champion")
    if champion is None:
        return Observation(selected, None, False)
    row = q.get_model_version(session, name=name, version=champion)
    age = (now - aware(row.created_at)).total_seconds() if row else None
    before = 0
    if row is not None and row.snapshot_id:
        snap = get_snapshot(session, row.snapshot_id)
        if snap is not None:
            before = int((snap.manifest.get("counts") or {}).get("comparisons_selected", 0))
    return Observation(max(0, selected - before), age, True)


def raise_alert(session: Session, *, name: str, reason: str, source: str = "monitor") -> int:
    """Request a retrain of ``name`` (a monitoring alert): a ``requested`` run the next tick takes up. An open
    run already pending absorbs the alert (no second run); returns the run's id."""

    run = q.open_loop_run(session, name=name, final_states=FINAL)
    if run is not None:
        return run.id
    return q.add_loop_run(session, name=name, state="requested", trigger={"alert": reason, "source": source}).id
