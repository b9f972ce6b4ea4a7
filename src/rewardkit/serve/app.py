"""The reward service: ``create_app(settings)`` -> a FastAPI app. Run it with ``rewardkit serve --model M``.

The model loads in the background at startup (``/ready`` is 503 until then), scoring goes through the
micro-batcher (``batcher.py``), and ``POST /admin/reload`` or SIGHUP loads a new model beside the old one
and switches atomically: a request captures the model when it starts and finishes on it, and every
response names the ``model_version`` that produced it. Errors are ``{"error", "error_type"}``.
"""

# No `from __future__ import annotations`: FastAPI must see the route signatures, which use local aliases.

import asyncio
import hmac
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from rewardkit.model.calibration import p_better
from rewardkit.model.formatting import ChatTemplateError
from rewardkit.scoring.scorer import BatchScorer, load_scorer
from rewardkit.serve.batcher import MicroBatcher, Overloaded, ShuttingDown
from rewardkit.serve.config import ServeSettings
from rewardkit.serve.limits import BodyLimitAndMetrics
from rewardkit.serve.metrics import Metrics
from rewardkit.serve.openrlhf import split_queries, template_accepts
from rewardkit.serve.schemas import (
    CompareRequest,
    CompareResponse,
    ErrorBody,
    HealthResponse,
    InfoResponse,
    RankedResponse,
    RankRequest,
    RankResponse,
    ReloadRequest,
    ReloadResponse,
    RewardRequest,
    RewardResponse,
    ScoreRequest,
    ScoreResponse,
    validation_message,
)

log = logging.getLogger("rewardkit.serve")


class ServiceError(Exception):
    """An error answered as ``{"error", "error_type"}`` with ``status``."""

    def __init__(self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.error_type, self.headers = status, error_type, headers


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in [
        (401, "missing or wrong bearer key"),
        (413, "too many inputs, input too long or body too large"),
        (422, "invalid input, or a conversation the model's chat template refuses"),
        (429, "queue full; retry after Retry-After seconds"),
        (503, "model not loaded yet (retry after Retry-After seconds), or it failed to load (no Retry-After)"),
    ]
}


class ModelSlot:
    """The model being served; swapped atomically (one attribute assignment) by ``reload``."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
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

    async def reload(self, path: str | None = None) -> tuple[str, str | None]:
        """Load ``path`` (default: the current one) beside the old model, then switch. Returns versions."""
        async with self._lock:
            target = path or self.path or "default"
            scorer = await asyncio.to_thread(self._load, target)  # the old model keeps serving meanwhile
            previous = self.scorer.version if self.scorer else None
            self.scorer, self.path, self.load_error = scorer, target, None
            return scorer.version, previous


def check_key(settings: ServeSettings, header: str | None, keys: list[str] | None = None) -> bool:
    """Constant-time comparison against every configured key (``keys``, default the api_keys; no early exit
    on the first match). No keys configured: open."""
    keys = settings.api_keys if keys is None else keys
    if not keys:
        return True
    if not header or header[:7].lower() != "bearer ":  # the scheme is case-insensitive (RFC 9110)
        return False
    given = header[7:].strip().encode()
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(given, key.encode())
    return ok


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    metrics = Metrics()
    slot = ModelSlot(settings)
    batcher = MicroBatcher(
        settings.queue_size, settings.max_wait_ms, settings.max_batch_rows, settings.token_budget, metrics
    )

    async def load_initial() -> None:
        try:
            version, _ = await slot.reload()
            metrics.model_info.labels(version).set(1)
            log.info("model %s loaded", version)
        except Exception as exc:  # stays not-ready; /ready says why
            slot.load_error = f"{type(exc).__name__}: {exc}"
            log.error("model load failed: %s", slot.load_error)

    async def reload(path: str | None = None) -> tuple[str, str | None]:
        try:
            version, previous = await slot.reload(path)
        except Exception:
            metrics.reloads.labels("failed").inc()
            raise
        metrics.reloads.labels("ok").inc()
        if previous:
            metrics.model_info.labels(previous).set(0)
        metrics.model_info.labels(version).set(1)
        return version, previous

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        loader = asyncio.create_task(load_initial())
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_sighup()))
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests), or no SIGHUP
            pass
        yield
        loader.cancel()
        await batcher.stop()

    async def _sighup() -> None:
        try:
            version, previous = await reload()
            log.info("SIGHUP: switched %s -> %s", previous, version)
        except Exception as exc:
            log.error("SIGHUP reload failed, still serving the old model: %s", exc)

    app = FastAPI(title="rewardkit reward service", version="1", lifespan=lifespan)
    app.state.settings, app.state.slot, app.state.metrics, app.state.batcher = settings, slot, metrics, batcher

    def error(
        request: Request, status: int, error_type: str, message: str, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        request.scope["rk_error_type"] = error_type  # the metrics middleware counts the failure under it
        return JSONResponse({"error": message, "error_type": error_type}, status_code=status, headers=headers)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error(request, exc.status, exc.error_type, str(exc), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(request, 422, "validation", validation_message(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body that is not JSON at all: invalid input, like any other
            return error(request, 422, "validation", f"body: {exc.detail}")
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http")
        return error(request, exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return error(request, 500, "internal", f"{type(exc).__name__}: {exc}")

    def current() -> BatchScorer:
        scorer = slot.scorer  # captured once: this request finishes on this model even if a reload happens
        if scorer is None:
            if slot.load_error:  # no Retry-After: waiting will not help until someone reloads a model
                raise ServiceError(
                    503,
                    "not_ready",
                    f"the model failed to load ({slot.load_error}); fix it and reload (SIGHUP or /admin/reload)",
                )
            raise ServiceError(503, "not_ready", "model not loaded yet", {"Retry-After": str(settings.retry_after_s)})
        return scorer

    def key_check(keys: list[str], what: str = "bearer key", url_key: bool = False) -> Any:
        async def dependency(request: Request) -> None:
            header = request.headers.get("authorization")
            if header is None and url_key and "api_key" in request.query_params:
                # OpenRLHF's client sends no Authorization header: its --remote_rm_url may carry the key
                header = f"Bearer {request.query_params['api_key']}"
            if not check_key(settings, header, keys):
                raise ServiceError(401, "unauthorized", f"missing or invalid {what}", {"WWW-Authenticate": "Bearer"})

        return dependency

    Auth = Annotated[None, Depends(key_check(settings.api_keys))]
    UrlAuth = Annotated[
        None, Depends(key_check(settings.api_keys, "bearer key (header, or ?api_key= on /get_reward)", url_key=True))
    ]
    # loading a model is not a scoring client's business: admin_keys when set, else the api_keys
    Admin = Annotated[None, Depends(key_check(settings.admin_keys or settings.api_keys, "admin bearer key"))]
    Model = Annotated[BatchScorer, Depends(current)]

    def check_count(n_inputs: int, max_inputs: int) -> None:
        if n_inputs > max_inputs:
            raise ServiceError(413, "payload_too_large", f"{n_inputs} inputs; the limit is {max_inputs} per request")

    def check_chars(texts: Iterable[tuple[Any, Callable[[], str]]]) -> None:
        """413 for the first text over max_chars_per_input; ``texts`` pairs each prompt or response with a
        function naming its place in the request (called only for the one refused)."""
        limit = settings.max_chars_per_input
        for text, where in texts:
            size = len(text) if isinstance(text, str) else sum(len(m["content"]) for m in text)
            if size > limit:
                raise ServiceError(
                    413,
                    "payload_too_large",
                    f"{where()} has {size} characters; the limit is {limit} per prompt or response",
                )

    async def run(scorer: BatchScorer, prompts: list[Any], responses: list[str], row_name: Callable[[int], str]) -> Any:
        """Score through the batcher; ``row_name(i)`` names row i's place in the request for a 422."""
        try:
            return await batcher.submit(scorer, prompts, responses)
        except ChatTemplateError as exc:  # the input's fault (Mistral/Gemma refuse a system turn, say): 422
            where = "" if exc.row is None else f"{row_name(exc.row)}: "
            raise ServiceError(
                422, "invalid_input", f"{where}the model's chat template refuses this conversation: {exc.reason}"
            ) from None
        except Overloaded:
            raise ServiceError(
                429, "overloaded", "queue full, retry later", {"Retry-After": str(settings.retry_after_s)}
            ) from None
        except ShuttingDown:
            raise ServiceError(503, "not_ready", "the server is shutting down, retry on another replica") from None

    def floats(a: np.ndarray) -> list[float]:
        return [float(x) for x in a]

    @app.post("/v1/score", response_model=ScoreResponse, responses=ERRORS)
    async def score(body: ScoreRequest, _: Auth, scorer: Model) -> ScoreResponse:
        """Score (prompt, response) or chat inputs; ``normalize`` applies the model card's statistics."""
        pairs = [x.as_pair() for x in body.inputs]
        check_count(len(pairs), settings.max_inputs_per_request)
        check_chars(
            (text, lambda i=i, f=field: f"inputs[{i}].{f}")
            for i, (x, pair) in enumerate(zip(body.inputs, pairs))
            for field, text in zip(x.TEXT_FIELDS, pair)
        )
        res = await run(scorer, [p for p, _ in pairs], [r for _, r in pairs], lambda i: f"inputs[{i}]")
        values, spread = (res.normalized, res.normalized_std) if body.normalize else (res.raw, res.std)
        return ScoreResponse(
            scores=floats(values),
            uncertainty=None if spread is None else floats(spread),
            truncated=res.truncated,
            model_version=res.model_version,
        )

    @app.post("/v1/compare", response_model=CompareResponse, responses=ERRORS)
    async def compare(body: CompareRequest, _: Auth, scorer: Model) -> CompareResponse:
        """Calibrated P(response_a better than response_b)."""
        prompt = body.prompt if isinstance(body.prompt, str) else [m.model_dump() for m in body.prompt]
        check_chars(
            [
                (prompt, lambda: "prompt"),
                (body.response_a, lambda: "response_a"),
                (body.response_b, lambda: "response_b"),
            ]
        )
        res = await run(scorer, [prompt, prompt], [body.response_a, body.response_b], lambda i: "prompt")
        p = float(p_better(res.raw[0], res.raw[1], scorer.card.temperature))
        return CompareResponse(p_a_better=p, scores=floats(res.raw), model_version=res.model_version)

    @app.post("/v1/rank", response_model=RankResponse, responses=ERRORS)
    async def rank(body: RankRequest, _: Auth, scorer: Model) -> RankResponse:
        """Responses to one prompt ordered best first (best-of-N)."""
        prompt = body.prompt if isinstance(body.prompt, str) else [m.model_dump() for m in body.prompt]
        check_count(len(body.responses), settings.max_inputs_per_request)
        check_chars(
            [(prompt, lambda: "prompt")] + [(r, lambda i=i: f"responses[{i}]") for i, r in enumerate(body.responses)]
        )
        res = await run(scorer, [prompt] * len(body.responses), body.responses, lambda i: "prompt")
        values = res.normalized if body.normalize else res.raw
        order = np.argsort(-values, kind="stable")
        ranking = [RankedResponse(index=int(i), response=body.responses[i], score=float(values[i])) for i in order]
        return RankResponse(ranking=ranking, scores=floats(values), model_version=res.model_version)

    @app.post("/get_reward", response_model=RewardResponse, responses=ERRORS)
    async def get_reward(body: RewardRequest, _: UrlAuth, scorer: Model) -> RewardResponse:
        """OpenRLHF remote reward model: ``query`` = prompt + response (special tokens stripped at both ends);
        ``prompts`` (optional) split them; a prompt in a common chat template is scored as its messages (see
        ``serve/openrlhf.py``)."""
        if body.prompts is not None and len(body.prompts) != len(body.query):
            raise ServiceError(
                422, "validation", f"prompts has {len(body.prompts)} items but query has {len(body.query)}"
            )
        if not body.query:  # an empty slice of a batch split over several servers: OpenRLHF's serve_rm answer
            return RewardResponse(rewards=[], scores=[], extra_logs={}, model_version=scorer.version)
        check_count(len(body.query), settings.get_reward_max_inputs)
        # linear in the body, but a rollout batch can be 100 MB: off the event loop, so /health and other
        # clients are answered meanwhile
        fmt = settings.get_reward_prompt_format
        # parsed messages the model's chat template refuses (Qwen's system turn for a Gemma-style template) are
        # folded or scored as text row by row: one refusal must not fail a rollout batch (OpenRLHF retries, then
        # stops training). Rendering each distinct prompt to check is CPU work: off the loop with the split
        accepts = template_accepts(scorer.tokenizer) if fmt != "text" else None
        split = await asyncio.to_thread(split_queries, body.query, body.prompts, settings.strip_tokens, fmt, accepts)
        # the limit applies to what is scored: a rollout's pad tokens (thousands in a padded batch) do not count
        check_chars(
            (text, lambda i=i, f=field: f"query[{i}]: its {f}")
            for i, pair in enumerate(split)
            for field, text in zip(("prompt", "response (pad/EOS tokens stripped)"), pair)
        )
        res = await run(scorer, [p for p, _ in split], [r for _, r in split], lambda i: f"query[{i}]")
        rewards = floats(res.raw)
        logs: dict[str, Any] = {"truncated": [float(t) for t in res.truncated]}
        if res.std is not None:
            logs["uncertainty"] = floats(res.std)
        return RewardResponse(rewards=rewards, scores=rewards, extra_logs=logs, model_version=res.model_version)

    @app.post("/admin/reload", response_model=ReloadResponse, responses=ERRORS)
    async def admin_reload(_: Admin, body: ReloadRequest | None = None) -> ReloadResponse:
        """Load a model (default: the configured path again) beside the current one and switch atomically."""
        try:
            version, previous = await reload(body.model_path if body else None)
        except Exception as exc:  # noqa: BLE001 - whatever a bad path or folder raises, the old model keeps serving
            raise ServiceError(
                422,
                "reload_failed",
                f"cannot load {body.model_path if body else slot.path}: {type(exc).__name__}: {exc}",
            ) from None
        return ReloadResponse(model_version=version, previous_version=previous)

    @app.get("/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        """The process is up (public)."""
        return HealthResponse(status="ok")

    @app.get("/ready", response_model=HealthResponse, responses={503: {"model": ErrorBody}})
    async def ready() -> HealthResponse:
        """200 once the model is loaded, 503 before (public)."""
        current()
        return HealthResponse(status="ready")

    @app.get("/info", response_model=InfoResponse, responses=ERRORS)
    async def info(_: Auth, scorer: Model) -> InfoResponse:
        """The model, its version, dtype and the service's limits."""
        return InfoResponse(
            model=str(slot.path),
            model_version=scorer.version,
            dtype=str(scorer.dtype).replace("torch.", ""),
            max_length=scorer.max_length,
            ensemble_size=len(scorer.members),
            temperature=scorer.card.temperature,
            limits={
                "max_inputs_per_request": settings.max_inputs_per_request,
                "max_chars_per_input": settings.max_chars_per_input,
                "max_body_bytes": settings.max_body_bytes,
                "queue_size": settings.queue_size,
                "max_wait_ms": settings.max_wait_ms,
                "token_budget": settings.token_budget,
                "get_reward_max_inputs": settings.get_reward_max_inputs,
                "get_reward_max_body_bytes": settings.get_reward_max_body_bytes,
            },
        )

    @app.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        """Prometheus text format (public)."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    app.add_middleware(
        BodyLimitAndMetrics,
        max_body_bytes=settings.max_body_bytes,
        metrics=metrics,
        route_limits={"/get_reward": settings.get_reward_max_body_bytes},
    )
    return app
