"""Model versions: register a folder as ``NAME`` version N (a content-checked copy under the registry folder),
look versions up, and resolve one to a path that is verified before it is loaded.

Registering the same files twice under one name returns the existing version (the loop relies on this: a tick
killed after registering and before recording it registers again and gets the same version)."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from rewardkit.registry.files import NotARewardModel, check_reward_model_folder, copy_tree, tree_sha256
from rewardkit.store import registry as q
from rewardkit.store import session_scope
from rewardkit.store.queries import aware
from rewardkit.store.tables import ModelVersionRow

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class RegistryError(ValueError):
    """A registry request that cannot be done as asked (the message names what and why; nothing changed)."""


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    path: str
    sha256: str
    snapshot_id: str | None
    snapshot_parent_id: str | None
    train_config: dict[str, Any]
    eval_summary: dict[str, Any]
    source: str
    created_at: str
    created_by: str

    @classmethod
    def of(cls, row: ModelVersionRow) -> VersionInfo:
        return cls(
            name=row.name,
            version=row.version,
            path=row.path,
            sha256=row.sha256,
            snapshot_id=row.snapshot_id,
            snapshot_parent_id=row.snapshot_parent_id,
            train_config=dict(row.train_config or {}),
            eval_summary=dict(row.eval_summary or {}),
            source=row.source,
            created_at=aware(row.created_at).isoformat(),
            created_by=row.created_by,
        )

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_name(name: str, what: str = "model name") -> str:
    if not NAME_RE.match(name):
        raise RegistryError(
            f"{what} {name!r}: expected 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def default_registry_dir() -> Path:
    from rewardkit.settings import get_settings

    return get_settings().home / "registry"


def _card(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads((path / "rewardkit.json").read_text(encoding="utf-8"))
        return raw if isinstance(raw, dict) else {}
    except (OSError, ValueError):
        return {}


def _train_config(path: Path) -> dict[str, Any]:
    """The training config the trainer recorded next to the model, when it did."""
    card = _card(path)
    config = card.get("train_config") or card.get("config") or {}
    return config if isinstance(config, dict) else {}


def register_version(
    factory: sessionmaker[Session],
    *,
    name: str,
    source: Path,
    created_by: str,
    registry_dir: Path | None = None,
    snapshot_id: str | None = None,
    train_config: dict[str, Any] | None = None,
    eval_summary: dict[str, Any] | None = None,
) -> tuple[VersionInfo, bool]:
    """Copy ``source`` into the registry as the next version of ``name``; returns (version, created). The same
    files registered again return the existing version with created=False."""
    check_name(name)
    source = Path(source)
    try:
        check_reward_model_folder(source)
    except NotARewardModel as exc:
        raise RegistryError(str(exc)) from None
    root = (registry_dir or default_registry_dir()) / name
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{uuid.uuid4().hex[:12]}"
    copy_tree(source, tmp)  # hash the copy, not the source: what is hashed is exactly what is kept
    try:
        sha = tree_sha256(tmp)
        card = _card(tmp)
        snapshot_id = snapshot_id or card.get("snapshot_id") or None
        for _ in range(5):  # a racing register of the same name takes the same number: take the next one
            try:
                with session_scope(factory) as s:
                    existing = q.find_model_version_by_sha(s, name=name, sha256=sha)
                    if existing is not None:
                        return VersionInfo.of(existing), False
                    parent = None
                    if snapshot_id:
                        from rewardkit.store.queries import get_snapshot

                        snap = get_snapshot(s, snapshot_id)
                        parent = snap.parent_id if snap is not None else None
                    number = q.next_version_number(s, name=name)
                    final = root / f"v{number}"
                    row = q.add_model_version(
                        s,
                        name=name,
                        version=number,
                        path=str(final.resolve()),
                        sha256=sha,
                        snapshot_id=snapshot_id,
                        snapshot_parent_id=parent,
                        train_config=train_config if train_config is not None else _train_config(tmp),
                        eval_summary=eval_summary or {},
                        source=str(source.resolve()),
                        created_at=datetime.now(UTC),
                        created_by=created_by,
                    )
                    if final.exists():  # left by a register that died before its commit: no row names it
                        shutil.rmtree(final)
                    tmp.rename(final)
                    info = VersionInfo.of(row)
                return info, True
            except IntegrityError:
                continue
        raise RegistryError(f"could not register {name}: five concurrent registrations took the version numbers")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def get_version(factory: sessionmaker[Session], *, name: str, version: int) -> VersionInfo:
    with session_scope(factory) as s:
        row = q.get_model_version(s, name=name, version=version)
        if row is None:
            known = [r.version for r in q.list_model_versions(s, name=name)]
            if not known:
                raise RegistryError(f"no registered model named {name!r}")
            raise RegistryError(f"{name} has no version {version} (versions: {', '.join(map(str, known))})")
        return VersionInfo.of(row)


def verify_files(info: VersionInfo) -> None:
    """Refuse a version whose folder changed since it was registered (a registered version is immutable)."""
    path = Path(info.path)
    if not path.is_dir():
        raise RegistryError(f"{info.name} v{info.version}: its folder {path} is gone")
    sha = tree_sha256(path)
    if sha != info.sha256:
        raise RegistryError(
            f"{info.name} v{info.version}: the files in {path} changed since registration "
            f"(sha256 {sha[:12]} != registered {info.sha256[:12]}); refusing to load them"
        )


def resolve_version(
    factory: sessionmaker[Session],
    *,
    name: str,
    version: int | None = None,
    alias: str | None = None,
    verify: bool = True,
) -> VersionInfo:
    """The version ``name@alias`` or ``name`` v``version`` names, its files verified unless ``verify`` is False."""
    if alias is not None:
        with session_scope(factory) as s:
            number = q.alias_version(s, name=name, alias=alias)
            if number is None:
                if not q.list_model_versions(s, name=name):
                    raise RegistryError(f"no registered model named {name!r}")
                aliases = [a.alias for a in q.list_aliases(s, name=name)]
                raise RegistryError(f"{name} has no alias {alias!r} (aliases: {', '.join(aliases) or 'none'})")
        version = number
    if version is None:
        raise RegistryError("give a version or an alias")
    info = get_version(factory, name=name, version=version)
    if verify:
        verify_files(info)
    return info
