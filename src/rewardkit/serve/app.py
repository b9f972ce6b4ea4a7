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


async def _load_initial(slot: ModelSlot) -> None:
    try:
        await slot.load(who="startup")
    except Exception as exc:  # stays not-ready; /ready says why (and the slot has logged it)
        slot.load_error = f"{type(exc).__name__}: {exc}"


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
    loader = asyncio.create_task(_load_initial(app.state.slot))
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_sighup(app.state.slot)))
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests), or no SIGHUP
        pass
    yield
    loader.cancel()
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
    app.state.store_link = StoreLink(settings)
    app.state.served = ServedScores(app.state.store_link)
    metrics.registry.register(app.state.served)
    add_error_handlers(app)
    for area in (scoring, openrlhf, feedback, admin, ops):
        app.include_router(area.router)
    app.add_middleware(Gate, settings=settings, metrics=metrics, drain=drain)
    return app
