"""Drift on small samples: PSI crosses its thresholds by sampling alone (the demo called two splits of one
generated sample of 33 rows a "significant" shift, PSI 2.55); a verdict above stable now also needs the PSI
to exceed what random splits of the same rows reach."""

from __future__ import annotations

import numpy as np

from rewardkit.evaluate.drift import drift_report, psi, psi_noise, psi_verdict


def test_verdicts_with_a_noise_level_by_hand() -> None:
    assert psi_verdict(0.05, 1.0) == "stable"  # under the moderate threshold whatever the noise
    assert psi_verdict(0.3, 0.5) == "within noise"
    assert psi_verdict(0.3, 0.2) == "significant" and psi_verdict(0.2, 0.15) == "moderate"
    assert psi_verdict(0.3) == "significant"  # without a noise level: the thresholds alone, as before


def test_two_samples_of_one_distribution_are_not_a_significant_shift() -> None:
    rng = np.random.default_rng(1)
    reference, current = rng.normal(size=300), rng.normal(size=33)
    value = psi(reference, current)
    assert value > 0.25  # the thresholds alone call this significant
    report = drift_report({"score": reference}, {"score": current})["features"]["score"]
    assert report["psi"] == value and report["psi_noise"] > value
    assert report["psi_verdict"] == "within noise"


def test_a_real_shift_of_a_small_sample_is_still_significant() -> None:
    rng = np.random.default_rng(2)
    reference, current = rng.normal(size=300), rng.normal(loc=1.5, size=33)
    report = drift_report({"score": reference}, {"score": current})["features"]["score"]
    assert report["psi_verdict"] == "significant" and report["psi"] > report["psi_noise"]


def test_the_noise_level_shrinks_with_the_sample_and_is_reproducible() -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(size=500)
    small, large = psi_noise(reference, rng.normal(size=30)), psi_noise(reference, rng.normal(size=2000))
    assert large < 0.1 < small
    assert psi_noise(reference, reference[:40]) == psi_noise(reference, reference[:40])  # seeded
