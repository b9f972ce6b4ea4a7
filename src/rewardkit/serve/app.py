"""The reward service: ``create_app(settings)`` -> a FastAPI app. Run it with ``rewardkit serve --model M``.

Wiring only: the routes are module-level routers (``routes/``), what they need comes from typed dependencies on
``app.state`` (``deps.py``), errors are ``{"error", "error_type"}`` (``errors.py``), and the gate (``limits.py``)
checks keys, sizes and time before a body is read. The model loads in ``lifespan`` in the background (``/ready``
is 503 until then); scoring goes through the micro-batcher (``batcher.py``); ``POST /admin/reload`` or SIGHUP
loads a new model beside the old one and switches atomically (a request finishes on the model it started with,
and every response names its ``model_version``); SIGTERM drains (``drain.py``, ``server.py``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from rewardkit.registry.follow import is_registry_ref
from rewardkit.serve.batcher import MicroBatcher
from rewardkit.serve.config import ServeSettings
from rewardkit.serve.deps import ModelSlot
from rewardkit.serve.drain import Drain
from rewardkit.serve.errors import add_error_handlers
from rewardkit.serve.limits import Gate
from rewardkit.serve.metrics import Metrics
from rewardkit.serve.routes import admin, feedback, openrlhf, ops, scoring
from rewardkit.serve.score_logging import ServedScores
from rewardkit.serve.store_link import StoreLink

log = logging.getLogger("rewardkit.serve")


def is_loopback(host: str) -> bool:
    """``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


async def _load_initial(app: FastAPI, opener: asyncio.Task[bool]) -> None:
    slot: ModelSlot = app.state.slot
    try:
        if is_registry_ref(slot.path):
            await asyncio.shield(opener)  # one migration at a time: Alembic's context is process-global
            await _follow_alias(app)
        else:
            await slot.load(who="startup")
    except Exception as exc:  # stays not-ready; /ready says why (and the slot has logged it)
        slot.load_error = f"{type(exc).__name__}: {exc}"


async def _follow_alias(app: FastAPI) -> None:
    """``--model registry:NAME@ALIAS``: load the version the alias names, then follow the alias through the
    shared database: a promotion or rollback reloads the slot (the old model serves until the new one is
    loaded: no failed request). A registry that cannot be read yet leaves the service not ready, and the
    follower loads the version as soon as the alias resolves."""
    from rewardkit.registry.follow import AliasFollower, parse_registry_ref
    from rewardkit.store import open_store

    settings: ServeSettings = app.state.settings
    slot: ModelSlot = app.state.slot
    ref = parse_registry_ref(str(settings.model_path))
    factory = app.state.store_link.factory or await asyncio.to_thread(open_store, settings.resolved_database_url)

    async def on_move(path: str, version: int) -> None:
        await slot.reload(path, who=f"{ref} -> v{version}")
        app.state.registry_version = version

    follower = AliasFollower(factory, ref.name, ref.alias, on_move, interval_s=settings.alias_poll_s)
    app.state.follower, app.state.registry_ref = follower, str(ref)
    try:
        applied = await follower.poll_once()  # the first load, with the same verification as every move
    finally:
        follower.start(current=follower.version)
    if not applied:
        raise RuntimeError(follower.last_error or f"{ref}: the alias does not exist yet")


async def _sighup(slot: ModelSlot) -> None:
    try:
        await slot.reload(who="SIGHUP")
    except Exception:  # noqa: BLE001 - logged by the slot; the old model keeps serving
        pass


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ServeSettings = app.state.settings
    if not is_loopback(settings.host) and not settings.api_keys:
        log.warning(
            "serving on %s (not loopback) without keys: anyone who can reach it can score and reload models; "
            "set RK_API_KEYS (and RK_ADMIN_KEYS)",
            settings.host,
        )
    app.state.batcher.start()
    # the store is opened off the event loop (migrations may wait on another process's lock); scoring does not
    # wait for it: scores served before it opens are counted in Prometheus but not logged
    opener = asyncio.create_task(asyncio.to_thread(app.state.store_link.open))
    loader = asyncio.create_task(_load_initial(app, opener))
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_sighup(app.state.slot)))
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests), or no SIGHUP
        pass
    yield
    loader.cancel()
    if app.state.follower is not None:
        await app.state.follower.stop()
    await app.state.batcher.stop()
    await opener
    await asyncio.to_thread(app.state.store_link.close)  # the writer's queue and the last score-log flush


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    metrics = Metrics()
    batcher = MicroBatcher(
        settings.queue_size, settings.max_wait_ms, settings.max_batch_rows, settings.token_budget, metrics
    )
    drain = Drain()
    drain.listen(batcher.close_at)
    app = FastAPI(title="rewardkit reward service", version="1", lifespan=lifespan)
    app.state.settings, app.state.metrics, app.state.batcher, app.state.drain = settings, metrics, batcher, drain
    app.state.slot = ModelSlot(settings, metrics)
    # serving by alias (registry:NAME@ALIAS): set by _follow_alias, named by /info
    app.state.follower, app.state.registry_ref, app.state.registry_version = None, None, None
    app.state.store_link = StoreLink(settings)
    app.state.served = ServedScores(app.state.store_link)
    metrics.registry.register(app.state.served)
    add_error_handlers(app)
    # feedback first: FastAPI tries the routers in order, and a single-event feedback request is cheap enough that
    # passing over two routers cost it 5% of its CPU; a scoring request spends milliseconds in the model
    for area in (feedback, scoring, openrlhf, admin, ops):
        app.include_router(area.router)
    app.add_middleware(Gate, settings=settings, metrics=metrics, drain=drain)
    return app
