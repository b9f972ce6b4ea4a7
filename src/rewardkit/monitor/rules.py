"""Threshold rules over the windowed series, for cron and CI (``rewardkit monitor check --rules FILE``).

A rules file is TOML, one ``[[rule]]`` table per rule::

    [[rule]]
    name = "score drift"          # optional, echoed in alerts
    metric = "psi"                # see METRICS
    max = 0.25                    # min and/or max: the rule breaks when a value is below min or above max
    route = "/v1/score"           # shell-style pattern over routes (default "*"; overoptimization: "/get_reward")
    model_version = "*"           # shell-style pattern over model versions (default "*")
    window = "1h"                 # the window the metric is computed over (default: the command's --window)
    min_count = 500               # windows with fewer scores are skipped (default 500; served 0;
                                  # overoptimization 100, the alarm's per-window minimum)

Every window of every matching (model version, route) series in the checked period is tested; each broken
test is one alert. ``overoptimization`` needs no threshold: it breaks when the alarm fires (alarms.py) on the
last windows before the end of the period. A value that is undefined (no scores, drift below min_count) is
skipped, not an alert.
"""

from __future__ import annotations

import fnmatch
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rewardkit.monitor.alarms import ALARM_MIN_COUNT, alarms_by_model
from rewardkit.monitor.series import (
    DEFAULT_MIN_COUNT,
    RL_ROUTE,
    WindowStats,
    format_duration,
    parse_duration,
    roll_windows,
)

METRICS = (
    "served",
    "mean",
    "std",
    "p05",
    "p50",
    "p95",
    "psi",
    "ks",
    "uncertain_share",
    "uncertainty_mean",
    "length_mean",
    "overoptimization",
)
KEYS = ("name", "metric", "min", "max", "route", "model_version", "window", "min_count")
ALARM_WINDOWS = 8  # the windows the over-optimization alarm looks back over (alarms.overoptimization_alarm's last)


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file, the rule number and the key."""


@dataclass(frozen=True)
class Rule:
    number: int  # 1-based, as the file lists them
    metric: str
    min: float | None
    max: float | None
    route: str
    model_version: str
    window: timedelta | None  # None: the command's default window
    min_count: int
    name: str = ""

    def breaks(self, value: float) -> bool:
        return (self.min is not None and value < self.min) or (self.max is not None and value > self.max)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RulesError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise RulesError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def parse_rule(table: Any, number: int, where: str = "rules") -> Rule:
    """One ``[[rule]]`` table as a Rule; RulesError naming rule ``number`` and the key otherwise."""
    at = f"{where}: rule {number}"
    if not isinstance(table, dict):
        raise RulesError(f"{at}: expected a [[rule]] table")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise RulesError(f"{at}: unknown key {unknown[0]!r} (expected some of {', '.join(KEYS)})")
    if "metric" not in table:
        raise RulesError(f"{at}: missing key 'metric' (one of {', '.join(METRICS)})")
    metric = table["metric"]
    if metric not in METRICS:
        raise RulesError(f"{at}: metric: unknown metric {metric!r} (expected one of {', '.join(METRICS)})")
    low = _number(table["min"], f"{at}: min") if "min" in table else None
    high = _number(table["max"], f"{at}: max") if "max" in table else None
    if metric != "overoptimization" and low is None and high is None:
        raise RulesError(f"{at}: needs min or max (the threshold metric {metric!r} is held to)")
    if low is not None and high is not None and low > high:
        raise RulesError(f"{at}: min {low} is above max {high}")
    window = None
    if "window" in table:
        try:
            window = parse_duration(_text(table["window"], f"{at}: window"))
        except ValueError as exc:
            raise RulesError(f"{at}: window: {exc}") from None
    default_count = {"served": 0, "overoptimization": ALARM_MIN_COUNT}.get(metric, DEFAULT_MIN_COUNT)
    min_count = table.get("min_count", default_count)
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 0:
        raise RulesError(f"{at}: min_count: expected a whole number >= 0, got {min_count!r}")
    default_route = RL_ROUTE if metric == "overoptimization" else "*"
    return Rule(
        number=number,
        metric=metric,
        min=low,
        max=high,
        route=_text(table.get("route", default_route), f"{at}: route"),
        model_version=_text(table.get("model_version", "*"), f"{at}: model_version"),
        window=window,
        min_count=min_count,
        name=str(table["name"]) if "name" in table else "",
    )


def parse_rules(text: str, where: str = "rules") -> list[Rule]:
    """Every rule of a rules file's text (at least one)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{where}: not valid TOML ({exc})") from None
    unknown = sorted(set(document) - {"rule"})
    if unknown:
        raise RulesError(f"{where}: unknown top-level key {unknown[0]!r} (rules are [[rule]] tables)")
    tables = document.get("rule")
    if not isinstance(tables, list) or not tables:
        raise RulesError(f"{where}: no rules (expected one or more [[rule]] tables)")
    return [parse_rule(table, number, where) for number, table in enumerate(tables, 1)]


def load_rules(path: Path) -> list[Rule]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: cannot read the rules file ({exc.__class__.__name__}: {exc})") from None
    return parse_rules(text, str(path))


def lookback(rules: Sequence[Rule], since: timedelta, default_window: timedelta) -> timedelta:
    """How far back the rows must be read: the period, at least one window per rule, and the alarm's windows."""
    span = since
    for rule in rules:
        window = rule.window or default_window
        span = max(span, window * (ALARM_WINDOWS if rule.metric == "overoptimization" else 1))
    return span


def _matches(rule: Rule, model_version: str, route: str) -> bool:
    return fnmatch.fnmatchcase(model_version, rule.model_version) and fnmatch.fnmatchcase(route, rule.route)


def _alert(rule: Rule, value: float, **where: Any) -> dict[str, Any]:
    bounds = " and ".join(
        f"{word} {limit:g}" for word, limit in (("min", rule.min), ("max", rule.max)) if limit is not None
    )
    return {
        "rule": rule.number,
        "name": rule.name,
        "metric": rule.metric,
        "value": value,
        "min": rule.min,
        "max": rule.max,
        **where,
        "message": f"rule {rule.number} ({rule.name or rule.metric}): {rule.metric} = {value:.6g} breaks {bounds}"
        if bounds
        else f"rule {rule.number} ({rule.name or rule.metric}): {where.get('reason', 'alarm fired')}",
    }


def _window_alerts(rule: Rule, windows: Sequence[WindowStats]) -> tuple[list[dict[str, Any]], int, int]:
    alerts, checked, skipped = [], 0, 0
    for w in windows:
        if not _matches(rule, w.model_version, w.route):
            continue
        value = w.served if rule.metric == "served" else getattr(w, rule.metric)
        if w.served < rule.min_count or value is None:
            skipped += 1
            continue
        checked += 1
        if rule.breaks(float(value)):
            alerts.append(
                _alert(
                    rule,
                    float(value),
                    model_version=w.model_version,
                    route=w.route,
                    window=format_duration(w.end - w.start),
                    window_start=w.start.isoformat(),
                    window_end=w.end.isoformat(),
                    served=w.served,
                )
            )
    return alerts, checked, skipped


def evaluate_rules(
    rules: Sequence[Rule],
    rows: Sequence[Mapping[str, Any]],
    *,
    references: Mapping[str, Mapping[str, Any]],
    since: timedelta,
    until: datetime,
    default_window: timedelta,
) -> dict[str, Any]:
    """Test ``rules`` on the aggregate ``rows`` (read back at least ``lookback(...)`` before ``until``):
    ``{"ok", "alerts", "checked", "skipped"}``; checked and skipped count (rule, window) tests."""
    alerts: list[dict[str, Any]] = []
    checked = skipped = 0
    rolled: dict[tuple[timedelta, timedelta, int], list[WindowStats]] = {}
    for rule in rules:
        window = rule.window or default_window
        alarm = rule.metric == "overoptimization"
        span = max(since, window * (ALARM_WINDOWS if alarm else 1))
        key = (window, span, 1 if alarm else rule.min_count)  # the alarm applies its own per-window minimum
        if key not in rolled:
            rolled[key] = roll_windows(
                rows, references=references, since=until - span, until=until, window=window, min_count=key[2]
            )
        windows = rolled[key]
        if not alarm:
            found, n_checked, n_skipped = _window_alerts(rule, windows)
            alerts += found
            checked, skipped = checked + n_checked, skipped + n_skipped
            continue
        matching = [w for w in windows if _matches(rule, w.model_version, w.route)]
        for route in sorted({w.route for w in matching}):
            for verdict in alarms_by_model(matching, route=route, last=ALARM_WINDOWS, min_count=max(rule.min_count, 1)):
                if verdict.reward is None:  # too few windows for a verdict
                    skipped += 1
                    continue
                checked += 1
                value = 1.0 if verdict.fired else 0.0
                thresholds = rule.min is not None or rule.max is not None
                if rule.breaks(value) if thresholds else verdict.fired:
                    alerts.append(
                        _alert(
                            rule,
                            value,
                            model_version=verdict.model_version,
                            route=verdict.route,
                            window=format_duration(window),
                            reason=verdict.reason,
                            evidence=verdict.to_dict(),
                        )
                    )
    return {"ok": not alerts, "alerts": alerts, "checked": checked, "skipped": skipped}
