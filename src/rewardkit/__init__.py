"""rewardkit: reward models end to end.

Preference data in a real database, reward-model training, fast scoring and serving, evaluation.
"""

from rewardkit.records import (
    Annotator,
    Comparison,
    FeedbackEvent,
    PairwiseJudgement,
    PreferencePair,
    RankingJudgement,
    RatingsJudgement,
    Response,
)

__version__ = "0.1.0"

# Heavy parts (torch, httpx) load on first use, so `import rewardkit` and the CLI start fast.
_LAZY = {
    "Client": "rewardkit.client",
    "AsyncClient": "rewardkit.client",
    "load_reward_model": "rewardkit.model",
    "train": "rewardkit.train",
    "TrainConfig": "rewardkit.train",
    "log_feedback": "rewardkit.feedback.write",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rewardkit' has no attribute {name!r}")


__all__ = [
    "AsyncClient",
    "Client",
    "TrainConfig",
    "load_reward_model",
    "log_feedback",
    "train",
    "Annotator",
    "Comparison",
    "FeedbackEvent",
    "PairwiseJudgement",
    "PreferencePair",
    "RankingJudgement",
    "RatingsJudgement",
    "Response",
    "__version__",
]
