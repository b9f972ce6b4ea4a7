"""``/v1/score``, ``/v1/compare``, ``/v1/rank``; and the checks and the batcher call every scoring route shares."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at import.

import time
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request, Response

from rewardkit.model.calibration import p_better
from rewardkit.model.formatting import ChatTemplateError
from rewardkit.model.step_aggregate import aggregate_steps
from rewardkit.scoring.scorer import BatchScorer, ScoreResult
from rewardkit.serve.batcher import MicroBatcher, Overloaded, ShuttingDown
from rewardkit.serve.config import ServeSettings
from rewardkit.serve.deps import BatcherDep, CallerDep, ModelDep, SettingsDep
from rewardkit.serve.errors import ERRORS, ServiceError
from rewardkit.serve.schemas import (
    CompareRequest,
    CompareResponse,
    RankedResponse,
    RankRequest,
    RankResponse,
    ScoreRequest,
    ScoreResponse,
)
from rewardkit.serve.score_logging import ServedScores, score_id_headers

router = APIRouter(responses=ERRORS)


async def get_served(request: Request) -> ServedScores:
    return request.app.state.served


ServedDep = Annotated[ServedScores, Depends(get_served)]


def log_served(
    served: ServedScores,
    response: Response,
    route: str,
    scorer: BatchScorer,
    prompts: list[Any],
    responses: list[str],
    result: ScoreResult,
    started: float,
) -> list[str] | None:
    """Log what was served (never raises: the score log drops and counts instead); ids into the headers."""
    ids = served.record(route, scorer, prompts, responses, result, started)
    response.headers.update(score_id_headers(ids))
    return ids


def check_count(n_inputs: int, max_inputs: int) -> None:
    if n_inputs > max_inputs:
        raise ServiceError(413, "payload_too_large", f"{n_inputs} inputs; the limit is {max_inputs} per request")


def check_chars(texts: Iterable[tuple[Any, Callable[[], str]]], limit: int) -> None:
    """413 for the first text over ``limit`` characters; ``texts`` pairs each prompt or response with a function
    naming its place in the request (called only for the one refused)."""
    for text, where in texts:
        size = len(text) if isinstance(text, str) else sum(len(m["content"]) for m in text)
        if size > limit:
            raise ServiceError(
                413,
                "payload_too_large",
                f"{where()} has {size} characters; the limit is {limit} per prompt or response",
            )


async def score_rows(
    batcher: MicroBatcher,
    settings: ServeSettings,
    scorer: BatchScorer,
    prompts: list[Any],
    responses: list[str],
    row_name: Callable[[int], str],
) -> ScoreResult:
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
    except ShuttingDown:  # the client retries after Retry-After: on another replica, or this one restarted
        raise ServiceError(
            503,
            "not_ready",
            "the server is shutting down, retry on another replica",
            {"Retry-After": str(settings.retry_after_s)},
        ) from None


def aggregated(
    scorer: BatchScorer, settings: ServeSettings, res: ScoreResult, aggregate: Any, uwo_lambda: float | None
) -> ScoreResult:
    """``res`` (the members' mean, as the batcher scores) as the request's aggregate, else the deployment's
    (``rewardkit.scoring.aggregate``; a single model's score is all of them). The schema validated both options."""
    lam = settings.uwo_lambda if uwo_lambda is None else uwo_lambda
    return scorer.aggregated(res, aggregate or settings.reward_aggregate, lam)


def floats(a: np.ndarray) -> list[float]:
    return [float(x) for x in a]


def step_texts(scorer: BatchScorer, responses: list[Any], name: Callable[[int], str]) -> list[str]:
    """Responses as the batcher takes them (text): a list of steps joined at the model's step separator. 422
    for steps given to an outcome model, a blank step, or a step holding the separator (it would read as two)."""
    if not any(isinstance(r, list) for r in responses):
        return responses
    if not scorer.is_prm:
        raise ServiceError(
            422, "invalid_input", "inputs with 'steps' need a process reward model; this one scores whole responses"
        )
    sep = scorer.card.step_separator or "\n"
    for i, r in enumerate(responses):
        for k, step in enumerate(r if isinstance(r, list) else []):
            if not step.strip() or sep in step:
                problem = "is blank" if not step.strip() else f"holds the step separator {sep!r}"
                raise ServiceError(422, "invalid_input", f"{name(i)}.steps[{k}] {problem}")
    return [sep.join(r) if isinstance(r, list) else r for r in responses]


def step_aggregated(scorer: BatchScorer, res: ScoreResult, how: str | None) -> tuple[np.ndarray, Any]:
    """A process reward model's (scores, step_scores) under the request's step aggregate (else the scorer's)."""
    if res.step_scores is None:
        return res.raw, None
    raw = np.array([aggregate_steps(s, how or scorer.step_aggregate) for s in res.step_scores], dtype=np.float64)
    return raw, res.step_scores


def _prompt(prompt: Any) -> Any:
    return prompt if isinstance(prompt, str) else [m.model_dump() for m in prompt]


@router.post("/v1/score", response_model=ScoreResponse, response_model_exclude_unset=True)
async def score(
    body: ScoreRequest,
    _: CallerDep,
    scorer: ModelDep,
    settings: SettingsDep,
    batcher: BatcherDep,
    served: ServedDep,
    response: Response,
) -> ScoreResponse:
    """Score (prompt, response) or chat inputs; ``normalize`` applies the model card's statistics."""
    started = time.perf_counter()
    pairs = [x.as_pair() for x in body.inputs]
    check_count(len(pairs), settings.max_inputs_per_request)
    # a solution given as steps becomes text joined at the model's separator (422 where it cannot)
    joined = step_texts(scorer, [r for _, r in pairs], lambda i: f"inputs[{i}]")
    pairs = [(p, r) for (p, _), r in zip(pairs, joined)]
    check_chars(
        (
            (text, lambda i=i, f=field: f"inputs[{i}].{f}")
            for i, (x, pair) in enumerate(zip(body.inputs, pairs))
            for field, text in zip(x.TEXT_FIELDS, pair)
        ),
        settings.max_chars_per_input,
    )
    prompts, responses = [p for p, _ in pairs], [r for _, r in pairs]
    res = await score_rows(batcher, settings, scorer, prompts, responses, lambda i: f"inputs[{i}]")
    ids = log_served(served, response, "/v1/score", scorer, prompts, responses, res, started)
    res = aggregated(scorer, settings, res, body.aggregate, body.uwo_lambda)
    values, spread = (res.normalized, res.normalized_std) if body.normalize else (res.raw, res.std)
    steps = {}  # a PRM: the step aggregate asked for, and the key step_scores (its card's normalization is 0, 1)
    if res.step_scores is not None:
        values, steps["step_scores"] = step_aggregated(scorer, res, body.step_aggregate)
    return ScoreResponse(
        scores=floats(values),
        uncertainty=None if spread is None else floats(spread),
        truncated=res.truncated,
        model_version=res.model_version,
        score_ids=ids,
        **steps,
    )


@router.post("/v1/compare", response_model=CompareResponse)
async def compare(
    body: CompareRequest,
    _: CallerDep,
    scorer: ModelDep,
    settings: SettingsDep,
    batcher: BatcherDep,
    served: ServedDep,
    response: Response,
) -> CompareResponse:
    """Calibrated P(response_a better than response_b)."""
    started = time.perf_counter()
    prompt = _prompt(body.prompt)
    check_chars(
        [(prompt, lambda: "prompt"), (body.response_a, lambda: "response_a"), (body.response_b, lambda: "response_b")],
        settings.max_chars_per_input,
    )
    responses = [body.response_a, body.response_b]
    res = await score_rows(batcher, settings, scorer, [prompt, prompt], responses, lambda i: "prompt")
    ids = log_served(served, response, "/v1/compare", scorer, [prompt, prompt], responses, res, started)
    p = float(p_better(res.raw[0], res.raw[1], scorer.card.temperature))
    served.offer_compare(prompt, body.response_a, body.response_b, p)  # to human review when disputed
    return CompareResponse(p_a_better=p, scores=floats(res.raw), model_version=res.model_version, score_ids=ids)


@router.post("/v1/rank", response_model=RankResponse, response_model_exclude_unset=True)
async def rank(
    body: RankRequest,
    _: CallerDep,
    scorer: ModelDep,
    settings: SettingsDep,
    batcher: BatcherDep,
    served: ServedDep,
    response: Response,
) -> RankResponse:
    """Responses to one prompt ordered best first (best-of-N)."""
    started = time.perf_counter()
    prompt = _prompt(body.prompt)
    check_count(len(body.responses), settings.max_inputs_per_request)
    check_chars(
        [(prompt, lambda: "prompt")] + [(r, lambda i=i: f"responses[{i}]") for i, r in enumerate(body.responses)],
        settings.max_chars_per_input,
    )
    prompts = [prompt] * len(body.responses)
    res = await score_rows(batcher, settings, scorer, prompts, body.responses, lambda i: "prompt")
    ids = log_served(served, response, "/v1/rank", scorer, prompts, body.responses, res, started)
    values = res.normalized if body.normalize else res.raw
    steps = {}
    if res.step_scores is not None:  # a PRM ranks by the step aggregate: best-of-N over reasoning
        values, steps["step_scores"] = step_aggregated(scorer, res, body.step_aggregate)
    order = np.argsort(-values, kind="stable")
    ranking = [RankedResponse(index=int(i), response=body.responses[i], score=float(values[i])) for i in order]
    return RankResponse(ranking=ranking, scores=floats(values), model_version=res.model_version, score_ids=ids, **steps)
