"""Moving aliases: set one by hand, promote a version to champion through the gates, roll back. Every move is
one transaction: the conditional UPDATE of the alias and its history row (with the verdict and both reports for
a promotion) commit together or not at all; a move that raced another fails with AliasConflict, nothing
changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from rewardkit.registry.policy import Policy
from rewardkit.registry.versions import RegistryError, VersionInfo, check_name, get_version, resolve_version
from rewardkit.store import registry as q
from rewardkit.store import session_scope
from rewardkit.store.queries import aware
from rewardkit.store.registry import AliasConflict

CHAMPION = "champion"


@dataclass
class Move:
    name: str
    alias: str
    from_version: int | None
    to_version: int
    kind: str
    forced: bool
    id: int

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _move(factory: sessionmaker[Session], **kw: Any) -> Move:
    try:
        with session_scope(factory) as s:
            row = q.move_alias(s, **kw)
            return Move(row.name, row.alias, row.from_version, row.to_version, row.kind, row.forced, row.id)
    except AliasConflict as exc:
        raise RegistryError(str(exc)) from None


def current(factory: sessionmaker[Session], name: str, alias: str) -> int | None:
    with session_scope(factory) as s:
        return q.alias_version(s, name=name, alias=alias)


def set_alias(factory: sessionmaker[Session], *, name: str, alias: str, version: int, who: str, why: str = "") -> Move:
    """Point ``name@alias`` at ``version`` with no gates (challenger, staging...). The champion is set this way
    only once, when it does not exist; then it moves only by promote or rollback, which record why."""
    check_name(alias, "alias")
    get_version(factory, name=name, version=version)
    before = current(factory, name, alias)
    if alias == CHAMPION and before is not None:  # the first champion is set by hand: there is nothing to gate on
        raise RegistryError(
            f"{name}@{CHAMPION} is v{before}: the champion moves by `registry promote` (gated) or `registry rollback`"
        )
    if before == version:
        raise RegistryError(f"{name}@{alias} already points to v{version}; nothing changed")
    return _move(
        factory, name=name, alias=alias, to_version=version, expected_from=before, kind="set", who=who, why=why
    )


@dataclass
class Promotion:
    move: Move | None  # None: refused by the gates
    verdict: dict[str, Any]
    reports: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "promoted": self.move is not None,
            "move": self.move.as_json() if self.move else None,
            "verdict": self.verdict,
        }


def promote(
    factory: sessionmaker[Session],
    *,
    name: str,
    version: int,
    who: str,
    policy: Policy,
    golden: str | None = None,
    force: bool = False,
    why: str = "",
    eval_config: Any = None,
    device: str = "auto",
    expected_champion: int | None | str = "read",
) -> Promotion:
    """Gate ``version`` against the current champion on the golden snapshot; move the champion alias to it when
    the policy holds (or ``force``: recorded as forced, with the verdict that was overridden).

    ``expected_champion``: the champion the caller gated against ("read": whatever it is now). The alias moves
    only if it still points there when the verdict is in: a promotion racing another fails with a conflict."""
    from rewardkit.registry.gates import gate, summary

    candidate = resolve_version(factory, name=name, version=version)
    before = current(factory, name, CHAMPION) if expected_champion == "read" else expected_champion
    if before == version:
        raise RegistryError(f"{name} v{version} is already the champion; nothing changed")
    champion: VersionInfo | None = resolve_version(factory, name=name, version=before) if before is not None else None
    result = gate(
        factory,
        candidate_path=candidate.path,
        champion_path=champion.path if champion else None,
        policy=policy,
        golden=golden,
        eval_config=eval_config,
        device=device,
    )
    verdict = {**result.verdict.as_json(), "policy": policy.as_json(), "golden_snapshot": result.golden}
    with session_scope(factory) as s:
        q.set_eval_summary(
            s, name=name, version=version, summary={"golden": result.golden, **summary(result.candidate.report)}
        )
    if not result.verdict.passed and not force:
        return Promotion(None, verdict, result.reports())
    text = why or ("forced past failing gates" if force and not result.verdict.passed else "gates passed")
    move = _move(
        factory,
        name=name,
        alias=CHAMPION,
        to_version=version,
        expected_from=before,
        kind="promote",
        who=who,
        why=text,
        forced=force and not result.verdict.passed,
        verdict=verdict,
        reports=result.reports(),
    )
    return Promotion(move, verdict, result.reports())


def rollback_target(factory: sessionmaker[Session], name: str, alias: str) -> tuple[int, int]:
    """(current, previous): the alias's version now and the one it pointed to before the move that put it
    there (rollbacks themselves are not undone by a rollback)."""
    with session_scope(factory) as s:
        now = q.alias_version(s, name=name, alias=alias)
        if now is None:
            if not q.list_model_versions(s, name=name):
                raise RegistryError(f"no registered model named {name!r}")
            raise RegistryError(f"{name} has no alias {alias!r}; nothing to roll back")
        for move in q.alias_history(s, name=name, alias=alias, limit=1000):
            if move.to_version == now and move.kind != "rollback":
                if move.from_version is None:
                    break
                return now, move.from_version
    raise RegistryError(f"{name}@{alias} (v{now}) has no earlier version to roll back to")


def rollback(
    factory: sessionmaker[Session], *, name: str, who: str, alias: str = CHAMPION, to: int | None = None, why: str = ""
) -> Move:
    """Move ``name@alias`` back to the version before the last move (or to ``to``); no gates: it goes back to
    a version that served already, and fast."""
    if to is None:
        now, to = rollback_target(factory, name, alias)
    else:
        now = current(factory, name, alias)
        if now is None:
            raise RegistryError(f"{name} has no alias {alias!r}; nothing to roll back")
        if now == to:
            raise RegistryError(f"{name}@{alias} already points to v{to}; nothing changed")
    resolve_version(factory, name=name, version=to)  # exists, files intact: it is about to be served
    return _move(
        factory,
        name=name,
        alias=alias,
        to_version=to,
        expected_from=now,
        kind="rollback",
        who=who,
        why=why or "rollback",
    )


def history(factory: sessionmaker[Session], *, name: str, alias: str | None = None) -> list[dict[str, Any]]:
    with session_scope(factory) as s:
        return [
            {
                "id": m.id,
                "alias": m.alias,
                "from_version": m.from_version,
                "to_version": m.to_version,
                "kind": m.kind,
                "forced": m.forced,
                "who": m.who,
                "why": m.why,
                "at": aware(m.at).isoformat(),
                "passed": (m.verdict or {}).get("passed"),
            }
            for m in q.alias_history(s, name=name, alias=alias)
        ]
