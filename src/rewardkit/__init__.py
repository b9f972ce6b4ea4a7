"""rewardkit: reward models end to end.

Preference data in a real database, reward-model training, fast scoring and serving, evaluation.
"""

from rewardkit.data.types import (
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

__all__ = [
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
