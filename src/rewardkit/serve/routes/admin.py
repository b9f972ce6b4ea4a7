"""``POST /admin/reload``: load a model beside the one serving and switch atomically (SIGHUP does the same)."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at import.

from fastapi import APIRouter

from rewardkit.serve.deps import CallerDep, SlotDep
from rewardkit.serve.errors import ERRORS, ServiceError
from rewardkit.serve.schemas import ReloadRequest, ReloadResponse

router = APIRouter(responses=ERRORS)


@router.post("/admin/reload", response_model=ReloadResponse)
async def admin_reload(caller: CallerDep, slot: SlotDep, body: ReloadRequest | None = None) -> ReloadResponse:
    """Load a model (default: the configured path again) beside the current one and switch atomically. The
    path must name a model the server can load (a folder with config.json, or a hub id the hub provides);
    else 422 ``reload_failed`` and the old model keeps serving. Every reload is logged (who, from, to, time,
    outcome)."""
    path = body.model_path if body else None
    try:
        version, previous = await slot.reload(path, who=f"POST /admin/reload ({caller})")
    except Exception as exc:  # noqa: BLE001 - whatever a bad path or folder raises, the old model keeps serving
        raise ServiceError(
            422, "reload_failed", f"cannot load {path or slot.path}: {type(exc).__name__}: {exc}"
        ) from None
    return ReloadResponse(model_version=version, previous_version=previous)
