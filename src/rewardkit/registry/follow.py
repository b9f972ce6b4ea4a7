"""Serving by alias: ``registry:NAME@ALIAS`` resolved to a verified version folder, and an ``AliasFollower`` that
polls the alias (one indexed read) and calls ``on_move(path, version)`` when it moves, so a service hot-reloads
the new version (``ModelSlot.reload`` loads it beside the old one: no failed request). Every replica runs its
own follower against the shared database, so all of them follow a promotion or rollback within one poll
interval plus a load.

    follower = AliasFollower(factory, "rm", "champion", on_move=lambda path, v: slot.reload(path, f"alias v{v}"))
    follower.start(current=version_loaded_at_startup)   # in the app's lifespan; follower.stop() on shutdown
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from rewardkit.registry.versions import RegistryError, VersionInfo, resolve_version
from rewardkit.store import registry as q
from rewardkit.store import session_scope

log = logging.getLogger("rewardkit.registry")

PREFIX = "registry:"


@dataclass(frozen=True)
class AliasRef:
    name: str
    alias: str

    def __str__(self) -> str:
        return f"{PREFIX}{self.name}@{self.alias}"


def is_registry_ref(model: str | None) -> bool:
    return bool(model) and str(model).startswith(PREFIX)


def parse_registry_ref(model: str) -> AliasRef:
    """``registry:NAME@ALIAS`` (ALIAS defaults to champion) -> AliasRef; RegistryError naming the form."""
    body = model[len(PREFIX) :] if model.startswith(PREFIX) else model
    name, _, alias = body.partition("@")
    if not name:
        raise RegistryError(f"{model!r}: expected registry:NAME@ALIAS (e.g. registry:rm@champion)")
    return AliasRef(name, alias or "champion")


def resolve_ref(factory: sessionmaker[Session], ref: AliasRef) -> VersionInfo:
    return resolve_version(factory, name=ref.name, alias=ref.alias)


OnMove = Callable[[str, int], Awaitable[object]]


class AliasFollower:
    """Polls ``name@alias`` every ``interval_s`` and applies a move with ``on_move(path, version)``. A move whose
    files fail verification, or whose load fails, is logged and retried at the next poll; the old model keeps
    serving meanwhile."""

    def __init__(
        self, factory: sessionmaker[Session], name: str, alias: str, on_move: OnMove, interval_s: float = 1.0
    ) -> None:
        self.factory, self.name, self.alias, self.on_move, self.interval_s = factory, name, alias, on_move, interval_s
        self.version: int | None = None  # the version applied last
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def _read(self) -> int | None:
        with session_scope(self.factory) as s:
            return q.alias_version(s, name=self.name, alias=self.alias)

    async def poll_once(self) -> bool:
        """Check the alias; apply a move. True when a new version was applied."""
        number = await asyncio.to_thread(self._read)
        if number is None or number == self.version:
            return False
        try:
            info = await asyncio.to_thread(resolve_version, self.factory, name=self.name, version=number)
            await self.on_move(info.path, number)
        except Exception as exc:  # noqa: BLE001 - logged; the old version keeps serving, retried next poll
            message = f"{type(exc).__name__}: {exc}"
            if message != self.last_error:
                log.error("following %s@%s to v%s failed: %s", self.name, self.alias, number, message)
            self.last_error = message
            return False
        log.info("following %s@%s: v%s -> v%s", self.name, self.alias, self.version, number)
        self.version, self.last_error = number, None
        return True

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception as exc:  # noqa: BLE001 - the database may be briefly unreachable: keep following
                log.warning("alias poll of %s@%s failed: %s", self.name, self.alias, exc)
            await asyncio.sleep(self.interval_s)

    def start(self, current: int | None = None) -> None:
        self.version = current
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
