"""The over-optimization alarm on a simulated RL run: hand-made window series whose trends are plain to see."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from rewardkit.monitor.alarms import alarms_by_model, overoptimization_alarm, trend
from rewardkit.monitor.series import WindowStats

T0 = datetime(2026, 1, 5, tzinfo=UTC)

# ten hourly windows of RL rollouts
RISING_REWARD = [0.10, 0.18, 0.31, 0.38, 0.52, 0.57, 0.71, 0.79, 0.90, 1.02]  # strictly increasing
RISING_LENGTH = [480, 510, 530, 560, 575, 610, 640, 650, 690, 720]  # strictly increasing, +50% over the run
FLAT_LENGTH = [500, 503, 498, 501, 499, 502, 500, 497, 501, 499]  # wobbles around 500
FLAT_REWARD = [0.50, 0.47, 0.52, 0.49, 0.51, 0.48, 0.50, 0.53, 0.47, 0.50]
FLAT_STD = [0.30, 0.31, 0.29, 0.30, 0.31, 0.30, 0.29, 0.30, 0.31, 0.29]
RISING_STD = [0.20, 0.22, 0.23, 0.25, 0.27, 0.28, 0.30, 0.33, 0.34, 0.36]


def windows(reward, length, std, served=600, model_version="rm", route="/get_reward") -> list[WindowStats]:
    return [
        WindowStats(
            model_version=model_version,
            route=route,
            start=T0 + timedelta(hours=k),
            end=T0 + timedelta(hours=k + 1),
            served=served,
            mean=r,
            std=1.0,
            p05=None,
            p50=None,
            p95=None,
            psi=None,
            ks=None,
            ks_p_value=None,
            drift_note=None,
            uncertain_share=0.0,
            uncertainty_mean=s,
            length_mean=n,
        )
        for k, (r, n, s) in enumerate(zip(reward, length, std, strict=True))
    ]


def test_trend_hand_worked() -> None:
    # 1..6 in order: every one of the 15 pairs concordant, tau = 1; under no trend each of the 6! orders is
    # equally likely and only this one reaches tau = 1: one-sided p = 1/720. Slope 1, the line rises 5 over
    # the span; the mean is 3.5: relative rise 5 / 3.5.
    t = trend([1, 2, 3, 4, 5, 6])
    assert t.tau == pytest.approx(1.0)
    assert t.p_value == pytest.approx(1 / 720)
    assert t.slope == pytest.approx(1.0)
    assert t.relative_rise == pytest.approx(5 / 3.5)
    assert (t.first, t.last) == pytest.approx((1.0, 6.0))
    flat = trend([2, 2, 2, 2])
    assert (flat.tau, flat.p_value, flat.slope) == (0.0, 1.0, pytest.approx(0.0))


def test_rising_reward_and_length_fire_the_alarm() -> None:
    # only the last 8 windows count (last=8): both still strictly increasing, tau 1, p = 1/8! = 2.5e-5.
    # length over those 8 (530 ... 720, mean 621.875): least-squares slope sum((x - 3.5)(y - mean)) / 42
    # = 1117.5 / 42 = 26.61 a window, the line rises 7 * 26.61 = 186.25 chars: +29.9% of the mean
    alarm = overoptimization_alarm(windows(RISING_REWARD, RISING_LENGTH, FLAT_STD))
    assert alarm.fired
    assert alarm.rising_with_reward == ["length_mean"]
    assert alarm.windows == 8
    assert alarm.reward.tau == pytest.approx(1.0)
    assert alarm.reward.p_value == pytest.approx(1 / math.factorial(8))
    length = alarm.companions["length_mean"]
    assert length.tau == pytest.approx(1.0)
    assert length.slope == pytest.approx(1117.5 / 42)
    assert length.relative_rise == pytest.approx(186.25 / 621.875)
    assert "response length" in alarm.reason and "reward hacking" in alarm.reason
    assert alarm.companions["uncertainty_mean"].p_value > 0.05  # the flat std did not rise


def test_rising_reward_and_ensemble_disagreement_fire_the_alarm() -> None:
    alarm = overoptimization_alarm(windows(RISING_REWARD, FLAT_LENGTH, RISING_STD))
    assert alarm.fired and alarm.rising_with_reward == ["uncertainty_mean"]
    assert "ensemble disagreement" in alarm.reason


def test_rising_reward_with_flat_length_and_std_is_no_alarm() -> None:
    alarm = overoptimization_alarm(windows(RISING_REWARD, FLAT_LENGTH, FLAT_STD))
    assert not alarm.fired
    assert alarm.reward.p_value < 0.001  # the reward does rise: RL working as meant
    assert "neither" in alarm.reason


def test_flat_run_is_no_alarm() -> None:
    alarm = overoptimization_alarm(windows(FLAT_REWARD, FLAT_LENGTH, FLAT_STD))
    assert not alarm.fired
    assert alarm.reward.p_value > 0.05 and "not rising" in alarm.reason


def test_flat_reward_with_rising_length_is_no_alarm() -> None:
    assert not overoptimization_alarm(windows(FLAT_REWARD, RISING_LENGTH, FLAT_STD)).fired


def test_a_negligible_but_steady_length_creep_is_no_alarm() -> None:
    # +1 char an hour on 500: strictly increasing (tau 1), but over the last 8 windows (502 ... 509) the line
    # rises 7 chars on a mean of 505.5: +1.4%, under the 5% minimum
    creep = [500 + k for k in range(10)]
    alarm = overoptimization_alarm(windows(RISING_REWARD, creep, FLAT_STD))
    assert alarm.companions["length_mean"].tau == pytest.approx(1.0)
    assert not alarm.fired


def test_too_few_full_windows_give_no_verdict() -> None:
    ws = windows(RISING_REWARD, RISING_LENGTH, FLAT_STD, served=50)  # every window under min_count 100
    alarm = overoptimization_alarm(ws)
    assert not alarm.fired and alarm.reward is None and alarm.windows == 0
    assert "no verdict" in alarm.reason


def test_alarms_by_model_looks_at_rl_traffic_only() -> None:
    api = windows(RISING_REWARD, RISING_LENGTH, FLAT_STD, model_version="rm-api", route="/v1/score")
    rl = windows(RISING_REWARD, RISING_LENGTH, FLAT_STD, model_version="rm-rl")
    found = alarms_by_model(api + rl)
    assert [(a.model_version, a.fired) for a in found] == [("rm-rl", True)]
