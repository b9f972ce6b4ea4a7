"""What the routes depend on, as typed FastAPI dependencies reading ``app.state``: the settings, the model slot,
the batcher, the metrics, the caller's key and the model being served.

``create_app`` puts one of each on ``app.state``; a route asks for them as ``settings: SettingsDep``,
``scorer: ModelDep``, ``caller: CallerDep``... so a test can swap any of them with ``app.dependency_overrides``.
The key check runs twice: in the ASGI gate (``limits.py``) before a byte of the body is read, and here, where
the route states that it needs a key (and where a test can override it).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from rewardkit.scoring.scorer import BatchScorer, load_scorer
from rewardkit.serve.batcher import MicroBatcher
from rewardkit.serve.config import ServeSettings
from rewardkit.serve.errors import ServiceError
from rewardkit.serve.metrics import Metrics

log = logging.getLogger("rewardkit.serve")


class ModelSlot:
    """The model being served; swapped atomically (one attribute assignment) by ``reload``, which logs every
    load: who asked, from which version to which, how long it took and whether it worked."""

    def __init__(self, settings: ServeSettings, metrics: Metrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.scorer: BatchScorer | None = None
        self.path: str | None = settings.model_path
        self.load_error: str | None = None
        self._lock = asyncio.Lock()

    def _load(self, path: str) -> BatchScorer:
        s = self.settings
        return load_scorer(
            path,
            max_length=s.max_length,
            token_budget=s.token_budget,
            dtype=s.dtype,
            threads=s.threads,
            device=s.device,
        )

    async def load(self, path: str | None = None, who: str = "startup") -> tuple[str, str | None]:
        """Load ``path`` (default: the current one) beside the old model, then switch. Returns (version, previous);
        raises what loading raised, the old model still serving. Logged either way."""
        async with self._lock:
            target = path or self.path or "default"
            previous = self.scorer.version if self.scorer else None
            start = time.perf_counter()
            try:
                scorer = await asyncio.to_thread(self._load, target)  # the old model keeps serving meanwhile
            except Exception as exc:
                log.error(
                    "model load by %s: %s -> %s failed after %.2f s (%s: %s); serving %s",
                    who, previous, target, time.perf_counter() - start, type(exc).__name__, exc, previous,
                )  # fmt: skip
                raise
            self.scorer, self.path, self.load_error = scorer, target, None
        version = scorer.version
        if previous:
            self.metrics.model_info.labels(previous).set(0)
        self.metrics.model_info.labels(version).set(1)
        log.info(
            "model load by %s: %s -> %s (%s) ok in %.2f s", who, previous, version, target, time.perf_counter() - start
        )
        return version, previous

    async def reload(self, path: str | None = None, who: str = "?") -> tuple[str, str | None]:
        """``load``, counted in ``rk_model_reloads_total{outcome}``."""
        try:
            out = await self.load(path, who)
        except Exception:
            self.metrics.reloads.labels("failed").inc()
            raise
        self.metrics.reloads.labels("ok").inc()
        return out


# Which key each protected route takes: (methods, key set, what the 401 asks for, whether ?api_key= counts).
# The gate reads this before the body; a test keeps it in sync with the routes that depend on CallerDep.
API, ADMIN, FEEDBACK = "api", "admin", "feedback"
PROTECTED: dict[str, tuple[frozenset[str], str, str, bool]] = {
    "/v1/score": (frozenset({"POST"}), API, "bearer key", False),
    "/v1/compare": (frozenset({"POST"}), API, "bearer key", False),
    "/v1/rank": (frozenset({"POST"}), API, "bearer key", False),
    # OpenRLHF's client sends no Authorization header: its --remote_rm_url may carry the key
    "/get_reward": (frozenset({"POST"}), API, "bearer key (header, or ?api_key= on /get_reward)", True),
    "/info": (frozenset({"GET"}), API, "bearer key", False),
    # loading a model is not a scoring client's business: admin_keys when set, else the api_keys
    "/admin/reload": (frozenset({"POST"}), ADMIN, "admin bearer key", False),
    # writing data is not a scoring client's business either: feedback_keys (see ServeSettings.feedback_keys)
    "/v1/feedback": (frozenset({"POST"}), FEEDBACK, "feedback bearer key (RK_FEEDBACK_KEYS)", False),
}


def route_keys(settings: ServeSettings, kind: str) -> list[str] | None:
    """The keys a kind of route takes; [] = open; None = refused to every key (feedback with only api_keys set)."""
    if kind == ADMIN:
        return settings.admin_keys or settings.api_keys
    if kind == FEEDBACK:
        if settings.feedback_keys:
            return settings.feedback_keys
        return None if settings.api_keys or settings.admin_keys else []
    return settings.api_keys


def key_index(keys: list[str], header: str | None) -> int | None:
    """Which of ``keys`` the ``Authorization`` header carries (its index), else None. Constant-time: every key
    is compared, no early exit on the first match."""
    if not header or header[:7].lower() != "bearer ":  # the scheme is case-insensitive (RFC 9110)
        return None
    given = header[7:].strip().encode()
    found = None
    for i, key in enumerate(keys):
        if hmac.compare_digest(given, key.encode()) and found is None:
            found = i
    return found


def check_key(settings: ServeSettings, header: str | None, keys: list[str] | None = None) -> bool:
    """True when ``header`` carries one of ``keys`` (default the api_keys); no keys configured: open."""
    keys = settings.api_keys if keys is None else keys
    return not keys or key_index(keys, header) is not None


@dataclass(frozen=True)
class Denied:
    """Why a request was refused a 401: the message names the key it needs."""

    message: str


def authorize(
    settings: ServeSettings, method: str, path: str, header: str | None, query_key: str | None
) -> str | Denied:
    """The caller's name for the logs (``api key 2``, ``no key (open)``, ``public``), or ``Denied``.
    ``query_key``: the ``api_key`` URL parameter, used only where the route takes it."""
    rule = PROTECTED.get(path)
    if rule is None or method not in rule[0]:
        return "public"  # a probe, or a method the route does not have (answered 405 by the router)
    _, kind, what, url_key = rule
    keys = route_keys(settings, kind)
    if keys is None:
        return Denied(f"{path} takes a {what}, and this service has none set")
    if not keys:
        return "no key (open)"
    if header is None and url_key and query_key is not None:
        header = f"Bearer {query_key}"
    found = key_index(keys, header)
    if found is None:
        return Denied(f"missing or invalid {what}")
    name = {ADMIN: "admin" if settings.admin_keys else "api", FEEDBACK: "feedback"}.get(kind, "api")
    return f"{name} key {found + 1}"


# The dependencies are ``async def`` although they never await: FastAPI runs a plain ``def`` dependency in its
# thread pool, a hand-off to a worker thread and back for each one of each request (a sixth of the CPU a
# single-event feedback request cost); these only read app.state and cannot block the event loop.


async def get_settings(request: Request) -> ServeSettings:
    return request.app.state.settings


async def get_slot(request: Request) -> ModelSlot:
    return request.app.state.slot


async def get_batcher(request: Request) -> MicroBatcher:
    return request.app.state.batcher


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


SettingsDep = Annotated[ServeSettings, Depends(get_settings)]
SlotDep = Annotated[ModelSlot, Depends(get_slot)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


async def require_key(request: Request) -> str:
    """401 unless the request carries the key its route takes; returns the caller's name. The keys are the app's
    settings, as in the gate (which checked them before the body was read): not the settings dependency, whose
    resolution would cost every protected request a second dependency."""
    caller = authorize(
        request.app.state.settings,
        request.method,
        request.scope["path"],
        request.headers.get("authorization"),
        request.query_params.get("api_key") if request.scope.get("query_string") else None,
    )
    if isinstance(caller, Denied):
        raise ServiceError(401, "unauthorized", caller.message, {"WWW-Authenticate": "Bearer"})
    client = request.client.host if request.client else "?"
    return f"{caller} from {client}"


CallerDep = Annotated[str, Depends(require_key)]


async def current_scorer(slot: SlotDep, settings: SettingsDep) -> BatchScorer:
    """The model serving now, captured once: the request finishes on it even if a reload happens. 503 before."""
    scorer = slot.scorer
    if scorer is None:
        if slot.load_error:  # no Retry-After: waiting will not help until someone reloads a model
            raise ServiceError(
                503,
                "not_ready",
                f"the model failed to load ({slot.load_error}); fix it and reload (SIGHUP or /admin/reload)",
            )
        raise ServiceError(503, "not_ready", "model not loaded yet", {"Retry-After": str(settings.retry_after_s)})
    return scorer


ModelDep = Annotated[BatchScorer, Depends(current_scorer)]
