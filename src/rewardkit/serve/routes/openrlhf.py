"""``POST /get_reward``: OpenRLHF's remote reward model (the query parsing is ``serve/openrlhf.py``)."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at import.

import asyncio
import re
import time
from typing import Any

from fastapi import APIRouter, Response

from rewardkit.rl.kl import shaped_rewards_ragged
from rewardkit.serve.deps import BatcherDep, CallerDep, ModelDep, SettingsDep
from rewardkit.serve.errors import ERRORS, ServiceError
from rewardkit.serve.openrlhf import split_queries, template_accepts
from rewardkit.serve.routes.scoring import (
    ServedDep,
    aggregated,
    check_chars,
    check_count,
    floats,
    log_served,
    score_rows,
)
from rewardkit.serve.schemas import RewardRequest, RewardResponse

router = APIRouter(responses=ERRORS)


@router.post("/get_reward", response_model=RewardResponse)
async def get_reward(
    body: RewardRequest,
    _: CallerDep,
    scorer: ModelDep,
    settings: SettingsDep,
    batcher: BatcherDep,
    served: ServedDep,
    response: Response,
) -> RewardResponse:
    """OpenRLHF remote reward model: ``query`` = prompt + response (special tokens stripped at both ends);
    ``prompts`` (optional, as many as ``query``) split them; a prompt in a common chat template is scored as its
    messages (see ``serve/openrlhf.py``)."""
    started = time.perf_counter()
    if body.prompts is not None and len(body.prompts) != len(body.query):
        raise ServiceError(422, "validation", f"prompts has {len(body.prompts)} items but query has {len(body.query)}")
    check_shaping(body)
    if not body.query:  # an empty slice of a batch split over several servers: OpenRLHF's serve_rm answer
        return RewardResponse(
            rewards=[],
            scores=[],
            extra_logs={},
            token_rewards=None if body.logprobs is None else [],
            model_version=scorer.version,
        )
    check_count(len(body.query), settings.get_reward_max_inputs)
    # the KL part first, with zero sequence rewards: a mistake in the log-probs is a 422 before any scoring (and
    # before the score log records a batch the client never got)
    token_rewards = kl_parts(body)
    # linear in the body, but a rollout batch can be 100 MB: off the event loop, so /health and other clients are
    # answered meanwhile
    fmt = settings.get_reward_prompt_format
    # parsed messages the model's chat template refuses (Qwen's system turn for a Gemma-style template) are folded
    # or scored as text row by row: one refusal must not fail a rollout batch (OpenRLHF retries, then stops
    # training). Rendering each distinct prompt to check is CPU work: off the loop with the split
    accepts = template_accepts(scorer.tokenizer) if fmt != "text" else None
    split = await asyncio.to_thread(split_queries, body.query, body.prompts, settings.strip_tokens, fmt, accepts)
    # the limit applies to what is scored: a rollout's pad tokens (thousands in a padded batch) do not count
    check_chars(
        (
            (text, lambda i=i, f=field: f"query[{i}]: its {f}")
            for i, pair in enumerate(split)
            for field, text in zip(("prompt", "response (pad/EOS tokens stripped)"), pair)
        ),
        settings.max_chars_per_input,
    )
    prompts, responses = [p for p, _ in split], [r for _, r in split]
    res = await score_rows(batcher, settings, scorer, prompts, responses, lambda i: f"query[{i}]")
    ids = log_served(served, response, "/get_reward", scorer, prompts, responses, res, started)
    res = aggregated(scorer, settings, res, body.aggregate, body.uwo_lambda)
    rewards = floats(res.raw)
    if token_rewards is not None:  # the sequence reward goes to each response's last token (rl.kl's convention)
        for tokens, reward in zip(token_rewards, rewards):
            tokens[-1] += reward
    logs: dict[str, Any] = {"truncated": [float(t) for t in res.truncated]}
    if res.std is not None:
        logs["uncertainty"] = floats(res.std)
    return RewardResponse(
        rewards=rewards,
        scores=rewards,
        extra_logs=logs,
        aggregate=res.aggregate,
        token_rewards=token_rewards,
        model_version=res.model_version,
        score_ids=ids,
    )


def kl_parts(body: RewardRequest) -> list[list[float]] | None:
    """-kl_beta * KL_t per response token of each query (None without logprobs); 422 naming the query."""
    if body.logprobs is None:
        return None
    try:  # pure numpy, linear in the tokens sent
        return shaped_rewards_ragged(
            [0.0] * len(body.query), body.logprobs, body.ref_logprobs or [], body.kl_beta or 0.0, body.kl_estimator
        )
    except ValueError as exc:  # "response i: ..." names the query
        raise ServiceError(422, "validation", re.sub(r"^response (\d+):", r"query[\1]:", str(exc))) from None


def check_shaping(body: RewardRequest) -> None:
    """422 unless the KL-shaping fields come together: logprobs, ref_logprobs and kl_beta, one list per query."""
    given = [name for name in ("logprobs", "ref_logprobs", "kl_beta") if getattr(body, name) is not None]
    if given and len(given) < 3:
        missing = sorted({"logprobs", "ref_logprobs", "kl_beta"} - set(given))
        raise ServiceError(422, "validation", f"{', '.join(given)} given without {', '.join(missing)}: send all three")
    for name in ("logprobs", "ref_logprobs"):
        lists = getattr(body, name)
        if lists is not None and len(lists) != len(body.query):
            raise ServiceError(422, "validation", f"{name} has {len(lists)} lists but query has {len(body.query)}")
