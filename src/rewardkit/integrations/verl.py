"""A verl custom reward function: ``compute_score(data_source, solution_str, ground_truth, extra_info=None)``.

verl config::

    custom_reward_function:
      path: <site-packages>/rewardkit/integrations/verl.py
      name: compute_score

The model comes from the environment, read on the first call: ``RK_REWARD_URL`` (+ ``RK_REWARD_API_KEY``)
for a running ``rewardkit serve``, else ``RK_REWARD_MODEL`` (a local model folder or HF id). The prompt is
taken from ``extra_info["prompt"]`` (or ``"question"``) when the dataset puts it there, else it is empty.
``RK_REWARD_NORMALIZE=1`` returns normalized rewards.
"""

from __future__ import annotations

import os
from typing import Any

from rewardkit.integrations.backend import RewardBackend, make_backend

_backend: RewardBackend | None = None


def _get_backend() -> RewardBackend:
    global _backend
    if _backend is None:
        url, model = os.environ.get("RK_REWARD_URL"), os.environ.get("RK_REWARD_MODEL")
        if not url and not model:
            raise ValueError("rewardkit verl reward: set RK_REWARD_URL (a rewardkit service) or RK_REWARD_MODEL (a model path)")
        normalize = os.environ.get("RK_REWARD_NORMALIZE", "0") in ("1", "true", "yes")
        _backend = make_backend(model=None if url else model, url=url or None,
                                api_key=os.environ.get("RK_REWARD_API_KEY"), normalize=normalize)
    return _backend


def reset() -> None:
    """Forget the cached backend (the environment changed)."""
    global _backend
    _backend = None


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None) -> float:
    """The reward of one rollout; ``ground_truth`` is unused (a reward model judges the response itself)."""
    info = extra_info or {}
    prompt = info.get("prompt") or info.get("question") or ""
    if isinstance(prompt, list):  # chat-format prompts in verl datasets
        prompt = [{"role": m["role"], "content": m["content"]} for m in prompt]
    return float(_get_backend()([prompt], [solution_str])[0])
