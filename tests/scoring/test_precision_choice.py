"""The scoring precision: decided once per machine and model, remembered, overridable, and never a source of ties."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rewardkit.scoring import precision  # noqa: E402
from rewardkit.scoring.scorer import load_scorer  # noqa: E402


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache" / "precision.json"
    monkeypatch.setenv("RK_PRECISION_CACHE", str(path))
    return path


@pytest.fixture
def tiny(tiny_model: Path) -> Path:
    return tiny_model


def no_trial(*args: object) -> None:
    pytest.fail("a bf16 trial ran for a decision already made")


def test_auto_is_decided_once_and_read_back(cache: Path, tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first auto load measures and writes its answer; every later one reads it and runs no trial."""
    first = load_scorer(str(tiny), dtype="auto")
    decisions = json.loads(cache.read_text())
    [(key, entry)] = decisions.items()
    assert entry["precision"] == first.precision and entry["torch"] == torch.__version__
    monkeypatch.setattr(precision, "bf16_trial", no_trial)
    monkeypatch.setattr(precision, "bf16_matmul_is_faster", no_trial)
    for _ in range(3):
        assert load_scorer(str(tiny), dtype="auto").precision == first.precision


@pytest.mark.parametrize("remembered", ["fp32", "bf16"])
def test_a_remembered_decision_is_what_runs_and_an_explicit_dtype_overrides_it(
    remembered: str, cache: Path, tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = load_scorer(str(tiny), dtype="fp32")
    key = precision.decision_key(probe.members[0].device, [m.model for m in probe.members])
    precision.remember(key, {"precision": remembered}, cache)
    monkeypatch.setattr(precision, "bf16_trial", no_trial)
    auto = load_scorer(str(tiny), dtype="auto")
    assert auto.precision == remembered
    assert next(auto.members[0].model.bert.parameters()).dtype == (
        torch.bfloat16 if remembered == "bf16" else torch.float32
    )
    other = "bf16" if remembered == "fp32" else "fp32"
    assert load_scorer(str(tiny), dtype=other).precision == other  # --dtype wins over the cache


def test_the_key_tells_models_and_machines_apart(tiny: Path, tiny_model_b: Path) -> None:
    a = load_scorer(str(tiny), dtype="fp32")
    b = load_scorer(str(tiny_model_b), dtype="fp32")
    models = lambda s: [m.model for m in s.members]  # noqa: E731
    cpu = torch.device("cpu")
    assert precision.decision_key(cpu, models(a)) == precision.decision_key(cpu, models(a))
    assert precision.decision_key(cpu, models(a)) != precision.decision_key(cpu, models(b))
    assert precision.weights_digest(models(a)) != precision.weights_digest(models(b))
    assert set(precision.cpu_description()) == {"cpu", "flags"}


def test_without_a_faster_bf16_matmul_fp32_is_kept_and_remembered_without_a_trial(
    cache: Path, tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision, "bf16_matmul_is_faster", lambda: False)
    monkeypatch.setattr(precision, "bf16_trial", no_trial)
    assert load_scorer(str(tiny), dtype="auto").dtype == torch.float32
    assert [e["precision"] for e in json.loads(cache.read_text()).values()] == ["fp32"]


def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_run(
    tmp_path: Path, tiny: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("RK_PRECISION_CACHE", str(blocker / "precision.json"))  # its folder is a file
    monkeypatch.setattr(precision, "bf16_matmul_is_faster", lambda: False)
    assert load_scorer(str(tiny), dtype="auto").precision == "fp32"
    assert "could not remember" in caplog.text


def test_the_cache_keeps_the_newest_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.json"
    monkeypatch.setattr(precision, "MAX_ENTRIES", 3)
    for i in range(5):
        precision.remember(f"k{i}", {"precision": "fp32"}, path)
    assert list(json.loads(path.read_text())) == ["k2", "k3", "k4"]
    assert precision.remembered("k4", path) == "fp32" and precision.remembered("k0", path) is None
    path.write_text("not json")
    assert precision.remembered("k4", path) is None  # a broken cache is no cache


def test_bf16_keeps_the_head_in_fp32_so_rounding_makes_no_ties(tiny: Path) -> None:
    """With the head itself in bf16 the score had 8 bits of mantissa: distinct texts collapsed into equal
    scores. With the body in bf16 and the head fp32, distinct texts keep distinct scores."""
    bf16 = load_scorer(str(tiny), dtype="bf16")
    head = bf16.members[0].model.classifier
    assert head.weight.dtype == torch.float32 and next(bf16.members[0].model.bert.parameters()).dtype == torch.bfloat16
    responses = [f"answer number {i} with {'more ' * (i % 7)}words" for i in range(300)]
    scores = bf16.score(["q"] * len(responses), responses).raw
    fp32 = load_scorer(str(tiny), dtype="fp32").score(["q"] * len(responses), responses).raw
    distinct = len(set(fp32.tolist()))
    assert distinct >= 0.99 * len(responses)
    assert len(set(scores.tolist())) >= 0.99 * distinct
    # the same model wholly in bf16 (the old way) does collapse them: the test can fail
    whole = load_scorer(str(tiny), dtype="fp32")
    whole.members[0].model.to(torch.bfloat16)
    collapsed = whole.score(["q"] * len(responses), responses).raw
    assert len(set(collapsed.tolist())) < 0.5 * distinct
    assert np.allclose(scores, fp32, atol=0.05 * np.abs(fp32).max())  # bf16 moves the body, not the scale
