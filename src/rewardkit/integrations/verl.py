"""verl custom reward functions: ``compute_score(data_source, solution_str, ground_truth, extra_info=None)``
for verl's default (naive) reward manager, one rollout per call, and ``compute_score_batch(data_sources,
solution_strs, ground_truths, extra_infos)`` for ``reward_model.reward_manager=batch``, a whole batch in one
scoring call (one forward pass per token-budget batch instead of one per rollout).

verl config::

    custom_reward_function:
      path: <site-packages>/rewardkit/integrations/verl.py
      name: compute_score          # or compute_score_batch with reward_model.reward_manager=batch

The model comes from the environment, read on the first call: ``RK_REWARD_URL`` (+ ``RK_REWARD_API_KEY``)
for a running ``rewardkit serve``, else ``RK_REWARD_MODEL`` (a local model folder or HF id). The prompt is
taken from ``extra_info["prompt"]`` (or ``"question"``) when the dataset puts it there, else it is empty.
``RK_REWARD_NORMALIZE=1`` returns normalized rewards. ``RK_REWARD_AGGREGATE`` (mean, uwo or wco) and
``RK_UWO_LAMBDA`` make an ensemble's reward conservative (the service's own settings of the same names; unset:
the mean locally, the service's default remotely).

verl passes more keyword arguments than these: its reward loop adds ``reward_router_address`` and
``reward_model_tokenizer``, and every call merges in ``custom_reward_function.reward_kwargs`` from the
config. Both functions take any extra keyword arguments and ignore them (the model is rewardkit's).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from rewardkit.integrations.backend import RewardBackend, make_backend

_backend: RewardBackend | None = None


def _get_backend() -> RewardBackend:
    global _backend
    if _backend is None:
        url, model = os.environ.get("RK_REWARD_URL"), os.environ.get("RK_REWARD_MODEL")
        if not url and not model:
            raise ValueError(
                "rewardkit verl reward: set RK_REWARD_URL (a rewardkit service) or RK_REWARD_MODEL (a model path)"
            )
        normalize = os.environ.get("RK_REWARD_NORMALIZE", "0") in ("1", "true", "yes")
        lam = os.environ.get("RK_UWO_LAMBDA")
        try:
            uwo_lambda = None if lam is None else float(lam)
        except ValueError:
            raise ValueError(f"rewardkit verl reward: RK_UWO_LAMBDA must be a number >= 0; got {lam!r}") from None
        _backend = make_backend(
            model=None if url else model,
            url=url or None,
            api_key=os.environ.get("RK_REWARD_API_KEY"),
            normalize=normalize,
            aggregate=os.environ.get("RK_REWARD_AGGREGATE") or None,
            uwo_lambda=uwo_lambda,
        )
    return _backend


def reset() -> None:
    """Forget the cached backend (the environment changed)."""
    global _backend
    _backend = None


def _prompt(extra_info: dict[str, Any] | None) -> Any:
    info = extra_info or {}
    prompt = info.get("prompt") or info.get("question") or ""
    if isinstance(prompt, list):  # chat-format prompts in verl datasets
        prompt = [{"role": m["role"], "content": m["content"]} for m in prompt]
    return prompt


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None, **verl_kwargs: Any
) -> float:
    """The reward of one rollout; ``ground_truth`` is unused (a reward model judges the response itself), as
    are ``verl_kwargs`` (see the module docstring)."""
    return float(_get_backend()([_prompt(extra_info)], [solution_str])[0])


def compute_score_batch(
    data_sources: Sequence[str] | None,
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any] | None,
    extra_infos: Sequence[dict[str, Any] | None] | None,
    **verl_kwargs: Any,
) -> list[float]:
    """The rewards of a batch of rollouts, in order, from one scoring call (verl's BatchRewardManager passes
    numpy object arrays; any sequence works). ``data_sources`` and ``ground_truths`` are unused (verl's
    offline scoring passes ``data_sources=None``)."""
    infos = [None] * len(solution_strs) if extra_infos is None else list(extra_infos)
    if len(infos) != len(solution_strs):
        raise ValueError(f"compute_score_batch: {len(solution_strs)} solution_strs but {len(infos)} extra_infos")
    scores = _get_backend()([_prompt(info) for info in infos], [str(s) for s in solution_strs])
    return [float(x) for x in scores]
