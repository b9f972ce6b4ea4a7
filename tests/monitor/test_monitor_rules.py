"""Rules files: what parses, and the one-line error for what does not."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rewardkit.monitor.rules import RulesError, lookback, parse_rules

GOOD = """
[[rule]]
name = "score drift"
metric = "psi"
max = 0.25
route = "/v1/score"
model_version = "*"
window = "1h"
min_count = 100

[[rule]]
metric = "served"
min = 1

[[rule]]
metric = "overoptimization"
window = "30m"
"""


def test_a_good_file_parses_with_defaults() -> None:
    psi, served, alarm = parse_rules(GOOD)
    assert (psi.number, psi.metric, psi.max, psi.min, psi.route, psi.window) == (
        1,
        "psi",
        0.25,
        None,
        "/v1/score",
        timedelta(hours=1),
    )
    assert psi.breaks(0.3) and not psi.breaks(0.25)
    assert (served.min_count, served.window, served.route) == (0, None, "*")  # served counts empty windows
    assert served.breaks(0) and not served.breaks(1)
    assert (alarm.route, alarm.min_count) == ("/get_reward", 100)
    assert psi.min_count == 100 and parse_rules('[[rule]]\nmetric = "ks"\nmax = 0.1')[0].min_count == 500
    # the alarm looks back 8 of its 30m windows: 4h, longer than the 1h period
    assert lookback([psi, served, alarm], timedelta(hours=1), timedelta(hours=1)) == timedelta(hours=4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[rule]]\nmetric = "psi"\nmaxx = 0.2', "rules: rule 1: unknown key 'maxx'"),
        (
            '[[rule]]\nmetric = "psi"\nmax = 0.2\n[[rule]]\nmetric = "median"\nmax = 1',
            "rule 2: metric: unknown metric 'median'",
        ),
        ("[[rule]]\nmax = 0.2", "rule 1: missing key 'metric'"),
        ('[[rule]]\nmetric = "psi"', "rule 1: needs min or max"),
        ('[[rule]]\nmetric = "psi"\nmax = "high"', "rule 1: max: expected a finite number, got 'high'"),
        ('[[rule]]\nmetric = "psi"\nmax = true', "rule 1: max: expected a finite number"),
        ('[[rule]]\nmetric = "psi"\nmax = nan', "rule 1: max: expected a finite number"),
        ('[[rule]]\nmetric = "mean"\nmin = 2\nmax = 1', "rule 1: min 2.0 is above max 1.0"),
        ('[[rule]]\nmetric = "psi"\nmax = 0.2\nwindow = "1 hour"', "rule 1: window: expected a duration like 30m"),
        ('[[rule]]\nmetric = "psi"\nmax = 0.2\nmin_count = -1', "rule 1: min_count: expected a whole number"),
        ('[[rule]]\nmetric = "psi"\nmax = 0.2\nroute = 3', "rule 1: route: expected a non-empty string"),
        ('[rules]\nmetric = "psi"', "unknown top-level key 'rules'"),
        ("", "no rules"),
        ("[[rule]\n", "not valid TOML"),
    ],
)
def test_a_bad_rule_is_one_line_naming_the_rule_and_key(text: str, message: str) -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
