"""The over-optimization alarm: on RL traffic, the policy learning to please the reward model rather than to
get better shows as the mean reward rising while the ensemble's disagreement or the response length rises with
it (reward hacking: the policy drifts to where the reward model is unsure, or pads its answers).

    alarm = overoptimization_alarm(rl_windows)   # one model version's /get_reward windows, oldest first
    alarm.fired, alarm.reason, alarm.to_dict()

The logic, over the last ``last`` windows (default 8) that hold at least ``min_count`` scores each:

1. The mean reward rises: Kendall's tau of the window means against time, one-sided p < ``alpha`` (0.05).
   Kendall's tau asks only that later windows tend to score higher, so one outlying window cannot make or
   break a trend the way it can a least-squares slope; the slope is reported as the size of the rise.
2. A companion rises with it, by the same test: the mean ensemble std (``uncertainty_mean``, when the model
   is an ensemble) or the mean response length (``length_mean``); and by at least ``min_relative_rise`` (5%)
   of its mean over the span, read off the least-squares line, so a significant but negligible creep is no
   alarm.

A rising reward alone is what RL is for and is no alarm; a rising length alone with a flat reward is the
policy's business. With fewer than ``min_windows`` (default 6) usable windows there is no verdict: with n
windows the smallest one-sided p Kendall's tau can give is 1/n!, and 6 windows in a perfect order give 0.0014.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from rewardkit.monitor.series import WindowStats

COMPANIONS = ("uncertainty_mean", "length_mean")
ALARM_MIN_COUNT = 100  # means only (no histogram): the mean of 100 scores is within 0.2 std of the truth


@dataclass(frozen=True)
class Trend:
    """A series' trend over windows: Kendall's tau against time with its one-sided p (rising), the
    least-squares slope per window, and the rise over the span relative to the mean (None when the mean is 0)."""

    tau: float
    p_value: float
    slope: float
    relative_rise: float | None
    first: float
    last: float


def trend(values: Sequence[float]) -> Trend:
    """The trend of ``values`` in time order (at least 2, finite)."""
    y = np.asarray(values, float)
    x = np.arange(y.size, dtype=float)
    if y.size < 2:
        raise ValueError("trend: need at least 2 values")
    if np.ptp(y) == 0:  # a constant series: tau undefined, no trend
        tau, p = 0.0, 1.0
    else:
        result = stats.kendalltau(x, y, alternative="greater")
        tau, p = float(result.statistic), float(result.pvalue)
    slope, intercept = np.polyfit(x, y, 1)
    mean = float(y.mean())
    rise = float(slope) * (y.size - 1)  # the fitted line's change from the first window to the last
    return Trend(
        tau=tau,
        p_value=p,
        slope=float(slope),
        relative_rise=rise / abs(mean) if mean != 0 else None,
        first=float(intercept),
        last=float(intercept + rise),
    )


@dataclass(frozen=True)
class OveroptimizationAlarm:
    model_version: str
    route: str
    fired: bool
    reason: str
    windows: int  # usable windows the verdict rests on
    reward: Trend | None = None
    companions: dict[str, Trend] = field(default_factory=dict)
    rising_with_reward: list[str] = field(default_factory=list)  # companions that rose with the reward
    window_starts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def overoptimization_alarm(
    windows: Sequence[WindowStats],
    *,
    last: int = 8,
    min_windows: int = 6,
    min_count: int = ALARM_MIN_COUNT,
    alpha: float = 0.05,
    min_relative_rise: float = 0.05,
) -> OveroptimizationAlarm:
    """The verdict on one model version's RL windows (oldest first; one route)."""
    if not windows:
        raise ValueError("overoptimization_alarm: no windows")
    head = windows[0]
    usable = [w for w in windows if w.served >= min_count and w.mean is not None][-last:]
    base = {"model_version": head.model_version, "route": head.route, "windows": len(usable)}
    base["window_starts"] = [w.start.isoformat() for w in usable]
    if len(usable) < min_windows:
        return OveroptimizationAlarm(
            fired=False,
            reason=f"no verdict: {len(usable)} window(s) with at least {min_count} scores, {min_windows} needed",
            **base,
        )
    reward = trend([w.mean for w in usable])
    companions = {}
    for name in COMPANIONS:
        values = [getattr(w, name) for w in usable]
        if all(v is not None for v in values):
            companions[name] = trend(values)
    rising = [
        name
        for name, t in companions.items()
        if t.p_value < alpha and t.relative_rise is not None and t.relative_rise >= min_relative_rise
    ]
    reward_rises = reward.p_value < alpha and reward.slope > 0
    if reward_rises and rising:
        said = " and ".join(
            f"{'ensemble disagreement' if n == 'uncertainty_mean' else 'response length'} "
            f"(+{companions[n].relative_rise:.0%}, tau {companions[n].tau:.2f})"
            for n in rising
        )
        reason = (
            f"possible reward hacking: the mean reward rose from {reward.first:.4g} to {reward.last:.4g} over "
            f"{len(usable)} windows (Kendall tau {reward.tau:.2f}, p {reward.p_value:.2g}) while {said} rose with it"
        )
        return OveroptimizationAlarm(
            fired=True, reason=reason, reward=reward, companions=companions, rising_with_reward=rising, **base
        )
    if not reward_rises:
        reason = f"the mean reward is not rising (Kendall tau {reward.tau:.2f}, p {reward.p_value:.2g})"
    else:
        reason = "the mean reward rises, but neither ensemble disagreement nor response length rises with it"
    return OveroptimizationAlarm(fired=False, reason=reason, reward=reward, companions=companions, **base)


def alarms_by_model(
    windows: Sequence[WindowStats], *, route: str = "/get_reward", **options: Any
) -> list[OveroptimizationAlarm]:
    """The alarm for every model version with windows on ``route`` (default: RL rollouts)."""
    by_model: dict[str, list[WindowStats]] = {}
    for w in windows:
        if w.route == route:
            by_model.setdefault(w.model_version, []).append(w)
    return [overoptimization_alarm(sorted(ws, key=lambda w: w.start), **options) for _, ws in sorted(by_model.items())]
