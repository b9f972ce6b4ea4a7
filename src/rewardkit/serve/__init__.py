"""The reward-serving HTTP service: ``create_app(settings)``; run it with ``rewardkit serve``."""

from rewardkit.serve.app import create_app
from rewardkit.serve.config import ServeSettings

__all__ = ["ServeSettings", "create_app"]
