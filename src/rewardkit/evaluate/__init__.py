"""Evaluation of reward models: accuracy, calibration, agreement, length bias, reward-hacking probes,
distribution shift, best-of-N, model ranking, RewardBench sections, plots and reports.

Every metric is a small pure function over numpy arrays; ``run.evaluate`` composes them around a plain
scoring callable (``ScoreFn``) so the whole evaluation is testable without a model. ``rewardkit eval``
(``cli/eval_cmd.py``) is the command-line shell. See ``docs/evaluation.md``.
"""

from rewardkit.evaluate.score_fns import ScoreFn

__all__ = ["ScoreFn"]
