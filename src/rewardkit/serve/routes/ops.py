"""The operator's routes: ``/health`` and ``/ready`` (public probes), ``/info``, ``/metrics`` (public)."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at import.

from fastapi import APIRouter, Request
from fastapi.responses import Response

from rewardkit.serve.deps import CallerDep, MetricsDep, ModelDep, SettingsDep, SlotDep, current_scorer
from rewardkit.serve.errors import ERRORS, ServiceError
from rewardkit.serve.schemas import ErrorBody, HealthResponse, InfoResponse

router = APIRouter()


@router.get("/health", response_model=HealthResponse)
async def health() -> HealthResponse:
    """The process is up (public)."""
    return HealthResponse(status="ok")


@router.get("/ready", response_model=HealthResponse, responses={503: {"model": ErrorBody}})
async def ready(request: Request, slot: SlotDep, settings: SettingsDep) -> HealthResponse:
    """200 once the model is loaded and the store has been opened (or found unavailable: scoring does not need
    it), 503 before and while shutting down (public)."""
    await current_scorer(slot, settings)
    if not request.app.state.store_link.attempted:  # a score served before this would go unlogged
        raise ServiceError(503, "not_ready", "opening the store", {"Retry-After": str(settings.retry_after_s)})
    return HealthResponse(status="ready")


@router.get("/info", response_model=InfoResponse, responses=ERRORS)
async def info(request: Request, _: CallerDep, scorer: ModelDep, slot: SlotDep, settings: SettingsDep) -> InfoResponse:
    """The model, its version, dtype, precision and the service's limits."""
    return InfoResponse(
        model=str(slot.path),
        model_version=scorer.version,
        dtype=str(scorer.dtype).replace("torch.", ""),
        # set by the scorer once it has chosen (bf16 / fp32 / int8); None for a scorer that does not say
        precision=getattr(scorer, "precision", None),
        max_length=scorer.max_length,
        ensemble_size=len(scorer.members),
        temperature=scorer.card.temperature,
        limits=settings.limits(),
        registry=request.app.state.registry_ref,
        registry_version=request.app.state.registry_version,
    )


@router.get("/metrics", response_class=Response)
async def prometheus(metrics: MetricsDep) -> Response:
    """Prometheus text format (public)."""
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
