"""``rewardkit train --objective prm``: a process reward model trained through the outcome trainer's loop, saved
so that plain transformers loads it and reads the same step scores, resumable, and bad data as one line."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from rk_testing.tiny_models import build_tiny_backbone, write_step_file
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.train import ConfigError, TrainConfig


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_the_trained_prm_round_trips_through_plain_transformers(tiny_prm: Path) -> None:
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from rewardkit.scoring.scorer import load_scorer

    card = json.loads((tiny_prm / "rewardkit.json").read_text())
    assert card["step_token"] == "<|step|>" and card["step_separator"] == "\n" and card["step_aggregate"] == "min"
    assert card["config"]["objective"] == "prm" and card["config"]["loss"] == "step-bce"
    m = card["metrics"]
    assert m["train_solutions"] > 0 and m["train_steps"] > m["train_solutions"] and m["head_changed"]
    assert 0.0 <= m["val_step_accuracy"] <= 1.0 and math.isfinite(m["val_loss"])
    assert 0.0 <= card["step_threshold"] <= 1.0 and card["step_threshold"] == m["step_threshold"]
    config = json.loads((tiny_prm / "config.json").read_text())
    assert config["architectures"] == ["BertForTokenClassification"] and config["id2label"] == {"0": "step_good"}

    # plain transformers alone: tokenizer(prompt, steps joined by the step token) and the logit there
    model = AutoModelForTokenClassification.from_pretrained(tiny_prm).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_prm)
    step = tokenizer.convert_tokens_to_ids("<|step|>")
    prompt, steps = "Problem 4: start at 6, add 2 three times.", ["6 plus 2 is 8", "8 plus 2 is 15", "15 plus 2 is 17"]
    batch = tokenizer(prompt, "".join(s + "<|step|>" for s in steps), return_tensors="pt")
    with torch.no_grad():
        plain = model(**batch).logits[0, :, 0].sigmoid()[batch["input_ids"][0] == step].tolist()
    ours = load_scorer(str(tiny_prm), dtype="fp32").score_steps([prompt], [steps])
    np.testing.assert_allclose(ours.step_scores[0], plain, atol=1e-5)
    assert ours.raw[0] == pytest.approx(min(plain), abs=1e-5)
    readme = (tiny_prm / "README.md").read_text()
    assert "AutoModelForTokenClassification" in readme and "<|step|>" in readme


def test_cli_trains_it_learns_and_resumes(tmp_path: Path) -> None:
    backbone = build_tiny_backbone(tmp_path / "bb")
    data = write_step_file(tmp_path / "steps.jsonl", n=24)
    out = tmp_path / "prm"
    common = ["train", "--objective", "prm", "--data", str(data), "--out", str(out), "--backbone", str(backbone),
              "--lr", "3e-3", "--batch-size", "4", "--max-length", "64", "--bf16", "off", "--threads", "1",
              "--no-progress", "--validation-fraction", "0.3", "--eval-every", "10", "--freeze-layers", "0",
              "--json"]  # fmt: skip
    code, stdout, stderr = run_cli(*common, "--max-steps", "20")
    assert code == 0, stderr
    metrics = json.loads(stdout)["metrics"]
    assert metrics["steps"] == 20 and metrics["bf16"] is False
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r["loss"] for r in history if r["kind"] == "train"]
    assert len(train) == 20 and all(math.isfinite(x) for x in train)
    assert np.mean(train[-5:]) < np.mean(train[:5])  # it learns: the per-step loss falls on the training steps
    # --resume continues the run from checkpoint/last.pt (weights, AdamW moments, position) to a later step
    code, stdout, stderr = run_cli(*common, "--max-steps", "30", "--resume")
    assert code == 0, stderr
    assert json.loads(stdout)["metrics"]["steps"] == 30
    resumed = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in resumed if r["kind"] == "train"] == list(range(1, 31))


def test_bad_step_data_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    backbone = build_tiny_backbone(tmp_path / "bb")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"prompt": "p", "completions": ["a", "b"], "labels": [True]}) + "\n"
        + json.dumps({"prompt": "q", "completions": ["a"], "labels": ["maybe"]}) + "\n"
    )  # fmt: skip
    out = tmp_path / "prm"
    done = subprocess.run(
        [sys.executable, "-m", "rewardkit", "train", "--objective", "prm", "--data", str(bad), "--out", str(out),
         "--backbone", str(backbone), "--no-progress"], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    code, stderr = done.returncode, done.stderr
    assert code == 2 and "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert f"{bad}:1" in stderr and "one label per step (2), got 1" in stderr
    assert not (out / "rewardkit.json").exists()


def test_config_rules_of_the_prm_objective() -> None:
    assert TrainConfig(objective="prm").loss == "step-bce"  # derived, not a second knob
    assert TrainConfig(objective="prm", step_separator="\\n").step_separator == "\n"  # as typed on a command line
    with pytest.raises(ConfigError, match="step-bce exactly with objective prm"):
        TrainConfig(objective="prm", loss="margin")
    with pytest.raises(ConfigError, match="step-bce exactly with objective prm"):
        TrainConfig(loss="step-bce")
    with pytest.raises(ConfigError, match="prm scores steps"):
        TrainConfig(objective="prm", length_control=True)
    with pytest.raises(ConfigError, match="ensemble"):
        TrainConfig(objective="prm", ensemble=2)


def test_trains_from_a_steps_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The data half's path: import trl-stepwise, dataset build-steps, then train --objective prm --data ID."""
    from rewardkit.settings import get_settings

    monkeypatch.setenv("RK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RK_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        data = write_step_file(tmp_path / "steps.jsonl", n=40)
        code, _, stderr = run_cli("import", "trl-stepwise", str(data), "--source", "sums")
        assert code == 0, stderr
        code, stdout, stderr = run_cli("dataset", "build-steps", "--fractions", "0.7,0.3,0", "--json")
        assert code == 0, stderr
        snapshot = json.loads(stdout)["id"]
        backbone = build_tiny_backbone(tmp_path / "bb")
        out = tmp_path / "prm"
        code, stdout, stderr = run_cli("train", "--objective", "prm", "--data", snapshot[:12], "--out", str(out),
                                       "--backbone", str(backbone), "--max-steps", "4", "--batch-size", "4",
                                       "--max-length", "64", "--bf16", "off", "--no-progress", "--json")  # fmt: skip
        assert code == 0, stderr
        metrics = json.loads(stdout)["metrics"]
        assert metrics["train_solutions"] + metrics["validation_solutions"] == 40
        assert json.loads((out / "rewardkit.json").read_text())["snapshot_id"] == snapshot
    finally:
        get_settings.cache_clear()
