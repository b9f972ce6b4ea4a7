"""A TRL GRPO reward function backed by a rewardkit model or service.

    from rewardkit.integrations.trl import RewardkitReward
    trainer = GRPOTrainer(model=..., reward_funcs=[RewardkitReward(model="runs/rm1")], ...)
    # or RewardkitReward(url="http://127.0.0.1:8000", api_key="...")

TRL (1.16) calls ``reward_func(prompts=..., completions=..., completion_ids=..., **dataset_columns)`` and
expects one float per completion. Prompts and completions are strings (standard format) or message lists
(conversational: the prompt's messages, the completion a list with the assistant's message).

``aggregate="uwo"`` (with ``uwo_lambda``) or ``"wco"`` makes an ensemble's reward conservative (docs/policy-rewards.md).

No KL-shaped per-token rewards here: GRPO's reward functions get no log-probs (only prompts, completions, their
token ids and the dataset's columns) and must return one float per completion; GRPO applies its KL penalty in
its loss (``beta``). A PPO trainer that has log-probs posts them to ``/get_reward`` (``token_rewards``) or calls
``rewardkit.rl.kl.shaped_rewards_ragged`` itself.
"""

from __future__ import annotations

from typing import Any

from rewardkit.integrations.backend import make_backend
from rewardkit.records import Prompt


def _prompt(p: Any) -> Prompt:
    return p if isinstance(p, str) else [{"role": m["role"], "content": m["content"]} for m in p]


def _completion(c: Any) -> str:
    if isinstance(c, str):
        return c
    return "".join(m["content"] for m in c if m.get("role", "assistant") == "assistant")


class RewardkitReward:
    """A picklable callable; ``__name__`` is what TRL logs the reward under (``rewards/<name>``)."""

    def __init__(
        self,
        model: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        normalize: bool = False,
        name: str = "rewardkit",
        aggregate: str | None = None,
        uwo_lambda: float | None = None,
    ) -> None:
        self.backend = make_backend(
            model=model, url=url, api_key=api_key, normalize=normalize, aggregate=aggregate, uwo_lambda=uwo_lambda
        )
        self.__name__ = name

    def __call__(
        self, prompts: list[Any], completions: list[Any], completion_ids: Any = None, **columns: Any
    ) -> list[float]:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        return self.backend([_prompt(p) for p in prompts], [_completion(c) for c in completions])
