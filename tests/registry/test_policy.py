"""The promotion policy: TOML parsing (unknown keys refused) and each gate on numbers worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardkit.evaluate.compare import paired_accuracy
from rewardkit.registry.policy import Policy, PolicyError, accuracy_check, decide, load_policy


def paired(a_right: list[bool], b_right: list[bool]) -> dict:
    """compare.paired_accuracy on rows whose chosen/rejected give the asked rightness, one prompt per pair."""
    row = lambda i, ok: {"key": str(i), "prompt": str(i), "chosen": 1.0 if ok else 0.0, "rejected": 0.5}  # noqa: E731
    return paired_accuracy([row(i, x) for i, x in enumerate(a_right)], [row(i, x) for i, x in enumerate(b_right)])


def test_policy_file_is_read_and_unknown_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[accuracy]\nmargin = 0.05\ntest = "bootstrap"\n[length_bias]\nmax_increase = 0.1\n')
    policy = load_policy(path)
    assert (policy.margin, policy.test, policy.max_length_corr_increase, policy.max_ece) == (
        0.05,
        "bootstrap",
        0.1,
        0.15,
    )
    path.write_text("[accuracy]\nmargn = 0.05\n")
    with pytest.raises(PolicyError, match=r"policy.toml: unknown key accuracy.margn \(known in \[accuracy\]: margin"):
        load_policy(path)
    path.write_text("[speed]\nmax = 1\n")
    with pytest.raises(PolicyError, match=r"unknown section \[speed\]"):
        load_policy(path)
    path.write_text('[accuracy]\ntest = "t-test"\n')
    with pytest.raises(PolicyError, match='accuracy.test: expected "mcnemar" or "bootstrap"'):
        load_policy(path)
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "nope.toml")


def test_mcnemar_non_inferiority_by_hand() -> None:
    policy = Policy(margin=0.05, min_pairs=10, alpha=0.05)
    # 40 pairs; champion right on 30. Candidate loses 2 of them and wins 1 other: diff = -1/40 = -0.025 >= -0.05;
    # McNemar on 2 vs 1 discordant: p = 1.0 -> passes
    a = [True] * 30 + [False] * 10
    b = [False, False] + [True] * 28 + [True] + [False] * 9
    check = accuracy_check(paired(a, b), policy)
    assert check["passed"] and "diff -0.025" in check["detail"]
    # candidate loses 8, wins 0: diff = -0.2 < -0.05 and McNemar p = 2 * 0.5**8 = 0.0078 -> fails
    b = [False] * 8 + [True] * 22 + [False] * 10
    check = accuracy_check(paired(a, b), policy)
    assert not check["passed"] and "p=0.00781" in check["detail"] and "significantly worse" in check["detail"]
    # too few pairs: refused whatever the numbers
    assert not accuracy_check(paired(a[:5], a[:5]), policy)["passed"]
    # no champion: nothing to be inferior to
    assert accuracy_check(None, policy)["passed"]


def report(ece: float, rise: float, rho: float) -> dict:
    return {
        "calibration": {"raw": {"ece": 0.9}, "stored_temperature": {"ece": ece}},  # the served one counts
        "probes": {"append_filler": {"rise_rate": rise}},
        "length_bias": {"score_length_correlation": {"spearman": rho}},
    }


def test_calibration_probe_and_length_gates_by_hand() -> None:
    policy = Policy(max_ece=0.10, max_ece_increase=0.03, max_rise_rate=0.5, max_rise_rate_increase=0.1,
                    max_length_corr_increase=0.05)  # fmt: skip
    champ = report(0.05, 0.30, 0.20)
    assert decide(policy, report(0.07, 0.35, 0.24), champ, None).passed  # every rise inside its limit
    verdict = decide(policy, report(0.09, 0.45, 0.30), champ, None)
    # ECE 0.09 <= 0.10 but +0.04 > 0.03; rise 0.45 <= 0.5 but +0.15 > 0.1; rho +0.10 > 0.05
    assert [c["gate"] for c in verdict.checks if not c["passed"]] == ["calibration", "probes", "length_bias"]
    assert any("ECE rose +0.040" in f for f in verdict.failures)
    assert not decide(policy, report(0.12, 0.1, 0.0), None, None).passed  # absolute ECE limit, no champion
