"""The training loop on a tiny random BERT: outputs, learning, resume after SIGKILL, LoRA, ensembles.

A 2-layer, 32-wide BERT with the MiniLM tokenizer trains in a second or two; one test checks it learns an
obvious feature, the others check behaviour (files, truncation counts, resume, the head, members).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rewardkit.data.training_data import load_pairs, split_by_prompt
from rewardkit.model.device import resolve_device
from rewardkit.records import PreferencePair
from rewardkit.train import TrainConfig, train
from rewardkit.train.batches import (
    combined_pair_weights,
    length_balance_weights,
    length_balanced_order,
    length_grouped_batches,
)
from rewardkit.train.checkpoint import checkpoint_due, weights_digest
from rewardkit.train.config import ConfigError

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> str:
    """A saved random 2-layer BERT (hidden 32) with the MiniLM tokenizer. Not the shared tiny_model: a backbone to
    train from (pad token set, no rewardkit.json), where tiny_model is a finished reward model with a card."""
    from transformers import BertConfig, BertForSequenceClassification

    from rewardkit.model.backbone import default_backbone_path, load_tokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = load_tokenizer(default_backbone_path())
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def synthetic_rows(n: int, seed: int = 0, long_prompts: int = 0) -> list[dict[str, str]]:
    """The chosen response always says 'excellent'; the rejected one 'terrible'. Lengths vary both ways."""
    rng = random.Random(seed)
    topics = ["cats", "tea", "rain", "trains", "music", "bread", "maps", "stars"]
    filler = ["really", "quite", "very", "so", "rather"]
    rows = []
    for i in range(n):
        prompt = f"question {i}: tell me about {rng.choice(topics)}"
        if i < long_prompts:
            prompt = " ".join(f"context{j}" for j in range(200)) + " " + prompt
        pad_c, pad_r = (" ".join(rng.choices(filler, k=rng.randint(0, 8))) for _ in range(2))
        rows.append({"prompt": prompt, "chosen": f"{pad_c} excellent answer", "rejected": f"{pad_r} terrible answer"})
    return rows


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def symmetric_temperature(diff: np.ndarray) -> float:
    """T fitted, as training does, on every validation pair in both orientations: (d, 1) and (-d, 0)."""
    from rewardkit.model.calibration import fit_temperature

    return fit_temperature(np.concatenate([diff, -diff]), np.concatenate([np.ones_like(diff), np.zeros_like(diff)]))


def tiny_config(tiny_backbone: str, data: Path, out: Path, **overrides) -> TrainConfig:
    base = dict(
        data=str(data),
        out=str(out),
        backbone=tiny_backbone,
        max_length=64,
        batch_size=8,
        lr=1e-3,
        eval_every=5,
        max_steps=10,
        bf16="off",
        progress=False,
        threads=1,
    )
    return TrainConfig(**{**base, **overrides})


# --- pure pieces --------------------------------------------------------------------------------------


def test_length_grouped_batches_cover_every_pair_once_and_group_by_length():
    rng = random.Random(1)
    lengths = [rng.randint(5, 500) for _ in range(1000)]
    batches = length_grouped_batches(lengths, 8, seed=3)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    assert all(len(b) == 8 for b in batches)
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
    random_spread = np.mean(
        [
            max(lengths[i] for i in b) - min(lengths[i] for i in b)
            for b in (list(range(s, s + 8)) for s in range(0, 1000, 8))
        ]
    )
    assert spread < random_spread / 5  # far less padding than random batches
    assert batches == length_grouped_batches(lengths, 8, seed=3)
    assert batches != length_grouped_batches(lengths, 8, seed=4)


def test_length_balanced_order_repeats_shorter_wins_pairs_up_to_the_share():
    # pairs 0-1 chosen shorter, 2-7 chosen longer, 8 equal lengths (counts for neither)
    shorter = [True, True] + [False] * 7
    longer = [False, False] + [True] * 6 + [False]
    assert length_balanced_order(shorter, longer, 0.0, seed=0) == list(range(9))
    # share 0.5 of the 8 unequal pairs: m / (m + 6) = 0.5 -> m = 6 shorter-wins rows, so 4 extra = 2 whole repeats
    assert sorted(length_balanced_order(shorter, longer, 0.5, seed=0)) == [0, 0, 0, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8]
    # share 0.4: m = round(0.4 * 6 / 0.6) = 4 -> 2 extra, one whole repeat, nothing drawn at random
    assert sorted(length_balanced_order(shorter, longer, 0.4, seed=0)) == [0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]
    # share 0.3: m = round(1.8 / 0.7) = 3 -> 1 extra, drawn (seeded) from {0, 1}
    drawn = length_balanced_order(shorter, longer, 0.3, seed=0)
    assert len(drawn) == 10 and drawn[-1] in (0, 1) and drawn == length_balanced_order(shorter, longer, 0.3, seed=0)
    # already balanced enough, or nothing to repeat: unchanged
    assert length_balanced_order(shorter, longer, 0.2, seed=0) == list(range(9))
    assert length_balanced_order([False] * 3, [True] * 3, 0.5, seed=0) == [0, 1, 2]


def test_length_balance_weights_give_each_side_its_share_of_the_same_total():
    shorter = [True, True] + [False] * 7
    longer = [False, False] + [True] * 6 + [False]
    # share 0.5 of the 8 unequal pairs' total weight 8:
    # shorter-wins 2 x 2.0 = 4, longer-wins 6 x 2/3 = 4; pair 8 keeps 1
    w = length_balance_weights(shorter, longer, 0.5)
    assert w[:2] == [2.0, 2.0] and w[2:8] == pytest.approx([2 / 3] * 6) and w[8] == 1.0
    # share 0.25: 0.25 * 8 / 2 = 1.0, 0.75 * 8 / 6 = 1.0, i.e. the natural share: nothing to change
    assert length_balance_weights(shorter, longer, 0.25) == pytest.approx([1.0] * 9)
    assert length_balance_weights(shorter, longer, 0.0) == [1.0] * 9
    assert length_balance_weights([False] * 3, [True] * 3, 0.5) == [1.0] * 3


def test_combined_pair_weights_multiply_what_weighs_each_pair_and_zero_the_invariance_pairs():
    # four pairs: a training pair, an augmented pair of weight 2, another training pair, an invariance pair
    augment, invariant = [1.0, 2.0, 1.0, 1.0], [False, False, False, True]
    # nothing but augmentation: its weights, the invariance pair 0 (it trains the penalty, not a preference)
    assert combined_pair_weights(None, augment, invariant, None) == ([1.0, 2.0, 1.0, 0.0], True)
    # length balance by weight x source weights: 0.5 * 1 * 2 = 1.0, 1.5 * 2 * 0.5 = 1.5, 1 * 1 * 1, 0
    length, source = [0.5, 1.5, 1.0, 1.0], [2.0, 0.5, 1.0, 1.0]
    assert combined_pair_weights(length, augment, invariant, source) == ([1.0, 1.5, 1.0, 0.0], True)
    # nothing weighs the pairs: all 1 and the loss runs unweighted; a length balance (even of 1s) still counts
    assert combined_pair_weights(None, [1.0, 1.0], [False, False], None) == ([1.0, 1.0], False)
    assert combined_pair_weights([1.0, 1.0], [1.0, 1.0], [False, False], None) == ([1.0, 1.0], True)
    with pytest.raises(ValueError):
        combined_pair_weights(None, [1.0], [False, True], None)


def test_length_grouped_batches_follow_a_given_order_with_repeats():
    batches = length_grouped_batches([10, 20, 30], 2, seed=0, order=[0, 1, 2, 0, 0])
    assert sorted(i for b in batches for i in b) == [0, 0, 0, 1, 2]


def test_split_by_prompt_keeps_each_prompt_on_one_side():
    pairs = [PreferencePair(id=str(i), prompt=f"p{i % 50}", chosen="a", rejected="b") for i in range(500)]
    train_pairs, val_pairs = split_by_prompt(pairs, 0.2)
    assert len(train_pairs) + len(val_pairs) == 500 and 0 < len(val_pairs) < 250
    assert not {p.prompt for p in train_pairs} & {p.prompt for p in val_pairs}
    # the snapshot compiler's rule: the normalised prompt decides, so spacing and case do not split a prompt
    from rewardkit.data.compile import split_of

    assert [p in val_pairs for p in pairs] == [split_of(p.prompt, 0, (0.8, 0.2, 0.0)) == "validation" for p in pairs]
    variants = [
        PreferencePair(id=str(i), prompt=f"Prompt  {i % 40}" if i % 2 else f"prompt {i % 40}", chosen="a", rejected="b")
        for i in range(400)
    ]
    train_v, val_v = split_by_prompt(variants, 0.3)
    assert {" ".join(p.prompt.lower().split()) for p in train_v}.isdisjoint(
        {" ".join(p.prompt.lower().split()) for p in val_v}
    )


def test_config_mistakes_name_the_field():
    with pytest.raises(ValueError, match="TrainConfig.batch_size: expected at least 1"):
        TrainConfig(data="x", out="y", batch_size=0)
    with pytest.raises(ValueError, match="TrainConfig.loss"):
        TrainConfig(data="x", out="y", loss="hinge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="TrainConfig.length_balance: expected between 0 and 0.5, got 0.8"):
        TrainConfig(data="x", out="y", length_balance=0.8)


# --- runs ---------------------------------------------------------------------------------------------


def test_a_run_writes_the_full_layout_and_counts_truncations(tiny_backbone, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from rewardkit.model import load_reward_model

    rows = synthetic_rows(120, long_prompts=10)
    for row in rows[20:23]:  # 3 chosen responses that alone exceed max_length 64: the response itself is cut
        row["chosen"] = " ".join(f"word{j}" for j in range(100)) + " excellent answer"
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    result = train(tiny_config(tiny_backbone, data, tmp_path / "rm"))
    out = tmp_path / "rm"
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "rewardkit.json",
        "README.md",
        "metrics.jsonl",
        "curves.png",
    ):
        assert (out / name).is_file(), name
    card = json.loads((out / "rewardkit.json").read_text())
    m = card["metrics"]
    assert m["train_pairs"] + m["validation_pairs"] == 120  # no pair dropped
    assert m["truncated_train"] + m["truncated_validation"] == 13  # exactly the long-prompt and long-response pairs
    assert m["prompt_cut_train"] + m["prompt_cut_validation"] == 10  # the long prompts: only the prompt cut
    assert m["response_cut_train"] + m["response_cut_validation"] == 3
    readme = (out / "README.md").read_text()
    assert (
        f"only the prompt cut, from the left (the end of the conversation is kept): {m['prompt_cut_train']} train"
        in readme
    )
    assert (
        "because it alone did not fit (the prompt keeps its last quarter of the token budget): "
        f"{m['response_cut_train']} train" in readme
    )
    assert "i.e. `tokenizer(prompt, response)`" not in readme and 'truncation="only_first"' in readme
    header = readme.split("---")[1]
    assert "pipeline_tag: text-classification" in header and "library_name: transformers" in header
    assert "base_model" not in header  # the backbone is a local folder: the Hub would reject a path
    assert card["snapshot_id"].startswith("file:") and card["config"]["max_length"] == 64
    assert card["temperature"] > 0 and card["reward_std"] > 0 and m["ece_after"] is not None
    assert m == result.metrics | {} and m["steps"] == 10 and m["device"] == str(resolve_device("auto"))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "val"] == [5, 10]
    assert "val_accuracy" in (out / "README.md").read_text()
    # plain transformers and rewardkit agree on the saved model
    rm = load_reward_model(out)
    hf = AutoModelForSequenceClassification.from_pretrained(out).eval()
    with torch.no_grad():
        plain = (
            hf(**rm.tokenizer("question 1: tell me about tea", "excellent answer", return_tensors="pt"))
            .logits[0, 0]
            .item()
        )
    assert rm.score(["question 1: tell me about tea"], ["excellent answer"])[0] == pytest.approx(plain, abs=1e-5)


@pytest.mark.parametrize(
    "overrides, best_is_last",
    [
        ({"max_steps": 10, "eval_every": 5}, True),  # the last validation's rewards are reused
        (
            {"max_steps": 30, "eval_every": 3, "lr": 0.1},
            False,
        ),  # too large a step: the best is an early one, scored again
    ],
)
def test_the_cards_validation_figures_are_the_saved_models(tiny_backbone, tmp_path, overrides, best_is_last):
    from rewardkit.model import load_reward_model
    from rewardkit.model.calibration import reference_pairs

    data = write_jsonl(tmp_path / "pairs.jsonl", synthetic_rows(120, seed=3))
    config = tiny_config(tiny_backbone, data, tmp_path / "rm", reference_size=8, **overrides)
    metrics = train(config).metrics
    assert (metrics["best_step"] == metrics["steps"]) == best_is_last
    _, val_pairs, _ = load_pairs(config.data, config.validation_fraction)
    rm = load_reward_model(tmp_path / "rm")
    prompts = [p.prompt for p in val_pairs]
    chosen, rejected = (
        rm.score(prompts, [p.chosen for p in val_pairs]),
        rm.score(prompts, [p.rejected for p in val_pairs]),
    )
    diff = chosen - rejected
    assert metrics["val_margin"] == pytest.approx(float(np.mean(diff)), abs=1e-4)
    assert metrics["val_accuracy"] == pytest.approx(float(np.mean(diff > 0)))
    # normalization: reference_size 8 = 4 pairs spread over validation, chosen AND rejected of each
    rows = reference_pairs(len(val_pairs), 8)
    assert len(rows) == 4 and len(val_pairs) > 4
    reference = np.concatenate([chosen[rows], rejected[rows]])
    assert rm.card.reward_mean == pytest.approx(float(reference.mean()), abs=1e-4)
    assert rm.card.reward_std == pytest.approx(float(reference.std()), rel=1e-3)
    assert rm.card.temperature == pytest.approx(symmetric_temperature(diff), rel=1e-3)


def test_training_on_a_snapshot_records_its_id(tiny_backbone, tmp_path):
    from rewardkit.data.snapshot import write_snapshot

    rows = synthetic_rows(60)
    pairs = [
        PreferencePair(id=str(i), prompt=r["prompt"], chosen=r["chosen"], rejected=r["rejected"], prompt_id=str(i))
        for i, r in enumerate(rows)
    ]
    built = write_snapshot(
        tmp_path / "snaps",
        options={},
        splits={"train": pairs[:48], "validation": pairs[48:], "test": []},
        counts={},
        conflicts=[],
    )
    result = train(tiny_config(tiny_backbone, built.path, tmp_path / "rm", max_steps=4, eval_every=4))
    card = json.loads((tmp_path / "rm" / "rewardkit.json").read_text())
    assert card["snapshot_id"] == built.id
    assert result.metrics["train_pairs"] == 48 and result.metrics["validation_pairs"] == 12


def test_the_model_card_header_names_a_hub_base_model_and_old_cards_lack_nothing_visible(tmp_path):
    from rewardkit.model.card import RewardCard, base_model, readme_text

    assert base_model("all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"  # the default's short name
    assert base_model("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"
    assert base_model(str(tmp_path)) is None and base_model("./runs/rm") is None and base_model("") is None
    header = readme_text(RewardCard(backbone="all-MiniLM-L6-v2", template="encoder")).split("---")[1]
    assert (
        "base_model: sentence-transformers/all-MiniLM-L6-v2" in header and "pipeline_tag: text-classification" in header
    )
    # a card without counts (saved by an older rewardkit) says so instead of printing "?"
    old = readme_text(RewardCard(template="encoder"))
    assert "?" not in old and "train pairs: not recorded" in old and "only the prompt cut" not in old
    ensemble = readme_text(
        RewardCard(members=["member_0", "member_1"], temperature=0.4, reward_std=0.8, member_scale="standardized")
    )
    assert (
        "pipeline_tag" not in ensemble.split("---")[1]
        and "T = 0.4000" in ensemble
        and "(s - 0.0000) / 0.8000" in ensemble
    )


def test_it_learns_an_obvious_feature(tiny_backbone, tmp_path, caplog):
    rows = synthetic_rows(400, seed=1)
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    with caplog.at_level(logging.WARNING, logger="rewardkit.train"):
        result = train(tiny_config(tiny_backbone, data, tmp_path / "rm", max_steps=0, epochs=2, eval_every=20, lr=2e-3))
    assert result.metrics["val_accuracy"] >= 0.95, result.metrics
    # this run separates every validation pair: the NLL falls all the way to T's lower bound, which the card's
    # metrics, the README and the log all flag
    assert result.metrics["val_accuracy"] == 1.0 and result.metrics["temperature_at_bound"] == "lower"
    assert json.loads((tmp_path / "rm" / "rewardkit.json").read_text())["temperature"] == 0.01
    assert "warning: T is the lower bound of the search" in (tmp_path / "rm" / "README.md").read_text()
    assert "the fitted temperature T = 0.01 is the lower bound of the search" in caplog.text
    history = [json.loads(line) for line in (tmp_path / "rm" / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in history if r["kind"] == "val"]
    assert val[-1]["loss"] < val[0]["loss"] < 0.7  # below log 2 = chance


def test_resume_after_sigkill_ends_with_the_same_weights_as_an_uninterrupted_run(tiny_backbone, tmp_path):
    """A real training subprocess is SIGKILLed after its first checkpoint; --resume finishes it."""
    data = write_jsonl(tmp_path / "pairs.jsonl", synthetic_rows(200))
    args = [
        "--data",
        str(data),
        "--backbone",
        tiny_backbone,
        "--max-length",
        "64",
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
        "--eval-every",
        "3",
        "--checkpoint-every",
        "3",
        "--max-steps",
        "24",
        "--bf16",
        "off",
        "--no-progress",
        "--threads",
        "1",
    ]
    cmd = [sys.executable, "-m", "rewardkit", "train", *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, "--out", str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (killed / "checkpoint" / "last.pt").exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        assert time.time() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "rewardkit.json").exists(), "the run finished before it was killed: the test proves nothing"
    step_at_kill = torch.load(killed / "checkpoint" / "last.pt", weights_only=False)["step"]
    assert 3 <= step_at_kill < 24

    resumed = subprocess.run(
        [*cmd, "--out", str(killed), "--resume"], env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # the same run, uninterrupted, in this process (same seed, threads and batch order)
    train(tiny_config(tiny_backbone, data, tmp_path / "full", eval_every=3, checkpoint_every=3, max_steps=24))

    a = json.loads((killed / "rewardkit.json").read_text())["metrics"]
    b = json.loads((tmp_path / "full" / "rewardkit.json").read_text())["metrics"]
    assert a["steps"] == b["steps"] == 24
    assert a["weights_sha256"] == b["weights_sha256"]
    train_steps = [
        json.loads(line)["step"]
        for line in (killed / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["kind"] == "train"
    ]
    assert train_steps == list(range(1, 25))  # every step once: no gap, no repeat


def test_resuming_a_run_that_stopped_early_trains_no_further(tiny_backbone, tmp_path):
    """Killed after early stopping had saved its last checkpoint (before the model was written): --resume
    finishes the same model; it does not train on past the stop."""
    data = write_jsonl(tmp_path / "pairs.jsonl", synthetic_rows(80))
    config = dict(lr=0.3, patience=1, eval_every=2, checkpoint_every=2, max_steps=40)  # lr 0.3: validation worsens
    stopped = train(tiny_config(tiny_backbone, data, tmp_path / "rm", **config)).metrics
    assert stopped["steps"] < 40, "the run did not stop early: the test proves nothing"
    (tmp_path / "rm" / "rewardkit.json").unlink()  # what a kill between the last checkpoint and the end leaves
    resumed = train(tiny_config(tiny_backbone, data, tmp_path / "rm", resume=True, **config)).metrics
    assert (resumed["steps"], resumed["best_step"]) == (stopped["steps"], stopped["best_step"])
    assert resumed["weights_sha256"] == stopped["weights_sha256"]


@pytest.mark.parametrize("select_by", ["calibrated_loss", "loss"])
def test_the_kept_checkpoint_is_the_best_validation_by_the_criterion_and_the_card_shows_the_curve(
    tiny_backbone, tmp_path, select_by
):
    data = write_jsonl(tmp_path / "pairs.jsonl", synthetic_rows(120, seed=3))
    # lr 0.1: too large a step, the validations go up and down, so which one is best depends on the criterion
    config = tiny_config(
        tiny_backbone, data, tmp_path / "rm", max_steps=30, eval_every=3, lr=0.1, patience=3, select_by=select_by
    )
    metrics = train(config).metrics
    curve = metrics["validation_curve"]
    assert [p["step"] for p in curve] == list(range(3, metrics["steps"] + 1, 3))
    best = min(curve, key=lambda p: p[select_by])  # the first of equal values, as the loop keeps it
    assert (metrics["best_step"], metrics["selected_by"]) == (best["step"], select_by)
    # early stopping: 3 validations without a better value end the run, unless the steps ran out first
    assert metrics["stopped_early"] == (metrics["steps"] < 30)
    if metrics["stopped_early"]:
        assert metrics["steps"] == best["step"] + 3 * 3
    readme = (tmp_path / "rm" / "README.md").read_text()
    assert "## Validation curve" in readme and f"lowest {select_by}" in readme
    kept_row = next(line for line in readme.splitlines() if line.endswith("**kept** |"))
    assert kept_row.startswith(f"| {best['step']} |")
    card = json.loads((tmp_path / "rm" / "rewardkit.json").read_text())
    assert card["metrics"]["validation_curve"] == curve


def test_calibrated_loss_selection_is_the_default_with_early_stopping_on():
    config = TrainConfig(data="d", out="o")
    assert (config.select_by, config.patience) == ("calibrated_loss", 2)
    with pytest.raises(ValueError, match="select_by: expected one of calibrated_loss, loss"):
        TrainConfig(data="d", out="o", select_by="accuracy")  # type: ignore[arg-type]


def test_source_weights_are_rescaled_to_mean_one_keeping_their_ratios():
    from dataclasses import replace

    from rewardkit.train.batches import source_loss_weights

    pair = PreferencePair(id="p", prompt="q", chosen="a", rejected="b")
    # weights 2, 1, 1, 1 (sum 5, n 4): x 4/5 -> 1.6, 0.8, 0.8, 0.8 (mean 1, ratio 2 kept)
    pairs = [replace(pair, weight=2.0)] + [pair] * 3
    assert source_loss_weights(pairs) == pytest.approx([1.6, 0.8, 0.8, 0.8])
    assert source_loss_weights([pair] * 3) is None
    assert source_loss_weights([replace(pair, weight=3.0)] * 2) is None  # all alike: nothing to weigh


def test_a_snapshots_source_weights_weigh_the_loss_and_listwise_losses_refuse_them(tiny_backbone, tmp_path):
    from dataclasses import replace

    from rewardkit.data.snapshot import write_snapshot

    rows = [PreferencePair.from_json({"id": f"p{i}", **r}) for i, r in enumerate(synthetic_rows(60))]
    train_rows = [replace(p, source="a" if i % 2 else "b") for i, p in enumerate(rows[:48])]
    val_rows = rows[48:]

    def snapshot(name: str, weight_b: float) -> str:
        weighted = [replace(p, weight=weight_b) if p.source == "b" else p for p in train_rows]
        splits = {"train": weighted, "validation": val_rows, "test": []}
        return str(
            write_snapshot(tmp_path / "snapshots" / name, options={}, splits=splits, counts={}, conflicts=[]).path
        )

    plain = train(tiny_config(tiny_backbone, snapshot("plain", 1.0), tmp_path / "plain")).metrics
    weighted = train(tiny_config(tiny_backbone, snapshot("weighted", 4.0), tmp_path / "weighted")).metrics
    assert weighted["weights_sha256"] != plain["weights_sha256"]  # the same batches, other loss weights
    with pytest.raises(ConfigError, match="plackett-luce takes no pair weights"):
        train(tiny_config(tiny_backbone, snapshot("weighted", 4.0), tmp_path / "pl", loss="plackett-luce"))


def test_labels_the_loss_leaves_out_are_named():
    from rewardkit.train.objective import unused_labels

    pairs = [
        PreferencePair(
            id=str(i), prompt="p", chosen=f"a{i}", rejected=f"b{i}", margin=1.0 if i < 2 else None, tie=i == 3
        )
        for i in range(4)
    ]
    bt = unused_labels(pairs, "bt")
    assert (
        len(bt) == 2
        and bt[0].startswith("2 of 4 training pairs carry a margin")
        and bt[1].startswith("1 of 4 training pairs are ties")
    )
    assert unused_labels(pairs, "margin") == [bt[1].replace("--loss bt", "--loss margin")]  # margins used, ties not
    assert unused_labels(pairs, "tie") == []
    assert unused_labels(pairs[2:3], "bt") == []


def test_each_rank_gets_its_own_equal_share_of_an_epochs_batches():
    """2 ranks, 13 batches: 12 dealt out, 6 per rank, none twice. (The loop counted ceil(100 pairs / 8 / 2) = 7
    steps per epoch for 6 batches, so each rank repeated its first batch every epoch.)"""
    from rewardkit.train.distributed import rank_share

    batches = [[i] for i in range(13)]
    assert rank_share(batches, 0, 2) == [[0], [2], [4], [6], [8], [10]]
    assert rank_share(batches, 1, 2) == [[1], [3], [5], [7], [9], [11]]
    assert rank_share(batches, 0, 1) == batches
    assert rank_share([[0]], 1, 2) == [[0]]  # fewer batches than ranks: every rank takes them (not none)


def test_lora_trains_and_saves_the_head(tiny_backbone, tmp_path):
    from safetensors.torch import load_file

    from rewardkit.model import load_reward_model

    data = write_jsonl(tmp_path / "pairs.jsonl", synthetic_rows(80))
    result = train(tiny_config(tiny_backbone, data, tmp_path / "rm", lora_r=4, lr=5e-3))
    assert result.metrics["head_changed"]
    init = load_file(Path(tiny_backbone) / "model.safetensors")
    saved = load_file(tmp_path / "rm" / "model.safetensors")
    assert set(saved) == set(init)  # merged: plain weight names, no peft wrappers
    assert not torch.equal(saved["classifier.weight"], init["classifier.weight"])
    assert not torch.equal(
        saved["bert.encoder.layer.0.attention.self.query.weight"],
        init["bert.encoder.layer.0.attention.self.query.weight"],
    )
    rm = load_reward_model(tmp_path / "rm")
    assert torch.equal(rm.model.classifier.weight.detach(), saved["classifier.weight"])


def test_ensemble_members_differ_and_score_with_uncertainty(tiny_backbone, tmp_path):
    from rewardkit.model.calibration import reference_pairs
    from rewardkit.model.loading import load_ensemble
    from rewardkit.scoring.scorer import load_scorer

    data = write_jsonl(tmp_path / "pairs.jsonl", synthetic_rows(80))
    config = tiny_config(
        tiny_backbone, data, tmp_path / "ens", ensemble=2, bootstrap=True, max_steps=4, eval_every=4, reference_size=6
    )
    result = train(config)
    card = json.loads((tmp_path / "ens" / "rewardkit.json").read_text())
    assert card["members"] == ["member_0", "member_1"] and card["member_scale"] == "standardized"
    assert result.metrics["val_accuracy"] is not None
    digests = {result.metrics["members"][m]["weights_sha256"] for m in card["members"]}
    assert len(digests) == 2
    ensemble = load_ensemble(tmp_path / "ens")
    assert len(ensemble.members) == 2
    mean, std = ensemble.score_with_uncertainty(
        ["question 1: tell me about tea"] * 2, ["excellent answer", "terrible answer"]
    )
    assert mean.shape == std.shape == (2,) and (std > 0).all()  # different members disagree a little

    # the card's temperature, normalization and accuracy are the ensemble score's own, on validation
    train_pairs, val_pairs, _ = load_pairs(config.data, config.validation_fraction)
    prompts = [p.prompt for p in val_pairs]
    sc, sr = (
        ensemble.score(prompts, [p.chosen for p in val_pairs]),
        ensemble.score(prompts, [p.rejected for p in val_pairs]),
    )
    rows = reference_pairs(len(val_pairs), 6)  # 3 pairs, both sides
    reference = np.concatenate([sc[rows], sr[rows]])
    assert card["reward_mean"] == pytest.approx(float(reference.mean()), abs=1e-5)
    assert card["reward_std"] == pytest.approx(float(reference.std()), rel=1e-4)
    d = sc - sr
    assert card["temperature"] == pytest.approx(symmetric_temperature(d), rel=1e-4)
    assert result.metrics["val_accuracy"] == pytest.approx(float(np.mean(d > 0)))
    assert result.metrics["train_pairs"] == len(train_pairs) and result.metrics["validation_pairs"] == len(val_pairs)
    assert (
        result.metrics["truncated_train"] == result.metrics["prompt_cut_train"] + result.metrics["response_cut_train"]
    )
    # the scorer serves the same numbers, normalized with the ensemble's card
    res = load_scorer(str(tmp_path / "ens"), dtype="fp32").score(prompts, [p.chosen for p in val_pairs])
    np.testing.assert_allclose(res.raw, sc, atol=1e-4)
    np.testing.assert_allclose(res.normalized, (sc - card["reward_mean"]) / card["reward_std"], atol=1e-4)

    readme = (tmp_path / "ens" / "README.md").read_text()
    assert (
        f"T = {card['temperature']:.4f}" in readme
        and f"(s - {card['reward_mean']:.4f}) / {card['reward_std']:.4f}" in readme
    )
    assert f"train pairs: {len(train_pairs)}, validation pairs: {len(val_pairs)}" in readme and "?" not in readme
    assert (
        "from_pretrained(folder)" not in readme and "load_ensemble(folder)" in readme
    )  # the top folder has no config.json
    assert not (tmp_path / "ens" / "config.json").exists()


def test_frozen_embeddings_and_lower_layers_stay_put_while_the_rest_trains(tiny_backbone, tmp_path):
    from safetensors.torch import load_file

    data = write_jsonl(tmp_path / "pairs.jsonl", synthetic_rows(80))
    train(tiny_config(tiny_backbone, data, tmp_path / "rm", freeze_layers=1, max_steps=4, eval_every=4))
    init = load_file(Path(tiny_backbone) / "model.safetensors")
    saved = load_file(tmp_path / "rm" / "model.safetensors")
    for name in (
        "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.LayerNorm.weight",
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.0.output.dense.weight",
    ):
        assert torch.equal(saved[name], init[name]), name
    for name in ("bert.encoder.layer.1.attention.self.query.weight", "classifier.weight"):
        assert not torch.equal(saved[name], init[name]), name


def test_no_freeze_embeddings_trains_them_under_frozen_blocks_through_the_cli(tiny_backbone, tmp_path):
    """--no-freeze-embeddings used to be a no-op: frozen blocks froze the embeddings regardless."""
    from safetensors.torch import load_file
    from typer.testing import CliRunner

    from rewardkit.cli.main import app

    data = write_jsonl(tmp_path / "pairs.jsonl", synthetic_rows(80))
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "rm"),
            "--backbone",
            tiny_backbone,
            "--max-length",
            "64",
            "--lr",
            "1e-3",
            "--max-steps",
            "4",
            "--eval-every",
            "4",
            "--bf16",
            "off",
            "--threads",
            "1",
            "--no-progress",
            "--freeze-layers",
            "1",
            "--no-freeze-embeddings",
        ],
    )
    assert result.exit_code == 0, result.output
    init = load_file(Path(tiny_backbone) / "model.safetensors")
    saved = load_file(tmp_path / "rm" / "model.safetensors")
    assert torch.equal(
        saved["bert.encoder.layer.0.attention.self.query.weight"],
        init["bert.encoder.layer.0.attention.self.query.weight"],
    )
    assert not torch.equal(
        saved["bert.embeddings.word_embeddings.weight"], init["bert.embeddings.word_embeddings.weight"]
    )


@pytest.mark.parametrize(
    "freeze_layers, freeze_embeddings, embeddings_frozen, block0_frozen",
    [
        (-1, None, True, True),  # the default on a 3-block model: one block, and the embeddings with it
        (-1, False, False, True),
        (0, None, False, False),  # train everything
        (0, True, True, False),  # the embeddings alone
    ],
)
def test_the_embeddings_follow_the_frozen_blocks_unless_set(
    tiny_backbone, freeze_layers, freeze_embeddings, embeddings_frozen, block0_frozen
):
    from transformers import BertConfig, BertForSequenceClassification

    from rewardkit.train.freeze import freeze_as_configured

    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=100,
            hidden_size=16,
            num_hidden_layers=3,
            num_attention_heads=2,
            intermediate_size=32,
            num_labels=1,
        )
    )
    config = TrainConfig(data="x", out="y", freeze_layers=freeze_layers, freeze_embeddings=freeze_embeddings)
    freeze_as_configured(model, config)
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    assert grads["bert.embeddings.word_embeddings.weight"] is not embeddings_frozen
    assert grads["bert.encoder.layer.0.attention.self.query.weight"] is not block0_frozen
    assert grads["bert.encoder.layer.1.attention.self.query.weight"] and grads["classifier.weight"]


def test_a_fresh_run_never_takes_the_replaced_runs_best_checkpoint(tiny_backbone, tmp_path, monkeypatch):
    """Training again into a finished model's folder: the old best.pt, loaded at the end whenever present, must
    not become the new model when no validation of the new run improved (here: best.pt writes suppressed)."""
    from transformers import AutoModelForSequenceClassification

    from rewardkit.train import loop as train_module

    out = tmp_path / "rm"
    (out / "checkpoint").mkdir(parents=True)
    (out / "rewardkit.json").write_text("{}")  # a finished model: replaced without a question
    old = AutoModelForSequenceClassification.from_pretrained(tiny_backbone, num_labels=1)
    torch.save(old.state_dict(), out / "checkpoint" / "best.pt")
    real_save = train_module.atomic_torch_save
    monkeypatch.setattr(
        train_module, "atomic_torch_save", lambda obj, path: None if path.name == "best.pt" else real_save(obj, path)
    )
    data = write_jsonl(tmp_path / "pairs.jsonl", synthetic_rows(80))
    result = train(tiny_config(tiny_backbone, data, out, max_steps=4, eval_every=4))
    assert result.metrics["weights_sha256"] != weights_digest(old)
    assert not (out / "checkpoint" / "best.pt").exists()


def test_the_resumable_checkpoint_is_due_every_n_steps_and_at_the_end():
    # validations at steps 2, 4, 6, 8, 10 with checkpoint_every=4, total 10: written at 4, 8 and 10
    saved, last = [], 0
    for step in (2, 4, 6, 8, 10):
        if checkpoint_due(step, last, every=4, total_steps=10):
            saved.append(step)
            last = step
    assert saved == [4, 8, 10]


def test_default_freezes_a_third_of_the_blocks_rounded_down() -> None:
    from types import SimpleNamespace

    from rewardkit.train.freeze import frozen_block_count

    def model(**cfg):
        return SimpleNamespace(config=SimpleNamespace(**cfg))

    assert frozen_block_count(model(num_hidden_layers=6), -1) == 2  # MiniLM-L6
    assert frozen_block_count(model(num_hidden_layers=2), -1) == 0  # tiny models train everything
    assert frozen_block_count(model(n_layer=12), -1) == 4  # GPT-2 names it n_layer
    assert (
        frozen_block_count(model(num_hidden_layers=6), 0) == 0
        and frozen_block_count(model(num_hidden_layers=6), 5) == 5
    )


def test_disable_dropout_makes_train_mode_forward_passes_deterministic(tiny_backbone):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rewardkit.train.freeze import disable_dropout

    model = AutoModelForSequenceClassification.from_pretrained(tiny_backbone, num_labels=1).train()
    batch = AutoTokenizer.from_pretrained(tiny_backbone)(["a question and an answer"] * 4, return_tensors="pt")
    torch.manual_seed(0)
    assert not torch.equal(model(**batch).logits, model(**batch).logits)  # dropout on: two masks differ
    assert disable_dropout(model) > 0
    assert torch.equal(model(**batch).logits, model(**batch).logits)
    assert TrainConfig().disable_dropout  # the default, as in TRL's RewardTrainer


def test_judged_rewards_pick_the_pairs_head_or_the_weighted_aggregate() -> None:
    from rewardkit.train.objective import judged_rewards

    logits = torch.tensor([[1.0, 3.0], [2.0, -2.0], [0.5, 1.5]])
    heads = torch.tensor([0, 1, -1])
    weights = torch.tensor([0.25, 0.75])
    # row 0 -> head 0 = 1.0; row 1 -> head 1 = -2.0; row 2 -> 0.25 * 0.5 + 0.75 * 1.5 = 1.25
    assert torch.allclose(judged_rewards(logits, heads, weights), torch.tensor([1.0, -2.0, 1.25]))


def test_attribute_index_and_unknown_attributes() -> None:
    from rewardkit.train.batches import attribute_index

    pairs = [
        PreferencePair(id=str(i), prompt="q", chosen="a", rejected="b", attribute=a)
        for i, a in enumerate(["harmlessness", None, "overall", "helpfulness"])
    ]
    assert attribute_index(pairs, ["helpfulness", "harmlessness"]) == [1, -1, -1, 0]
    assert attribute_index(pairs, ["reward"]) == [-1, -1, -1, -1]  # one head: every pair trains it
    with pytest.raises(ValueError, match="pair 9: attribute 'honesty' has no head"):
        attribute_index(
            [PreferencePair(id="9", prompt="q", chosen="a", rejected="b", attribute="honesty")],
            ["helpfulness", "harmlessness"],
        )
    with pytest.raises(ValueError, match="attribute_weights"):
        TrainConfig(attributes="a,b", attribute_weights="1")


def test_multi_attribute_heads_each_learn_their_own_preference(tiny_backbone, tmp_path):
    """Helpfulness pairs prefer 'excellent' over 'terrible'; harmlessness pairs prefer 'gentle' over 'violent'.
    Each head learns its own feature; the saved model has two outputs and the card the aggregate weights."""
    from transformers import AutoModelForSequenceClassification

    from rewardkit.model import load_reward_model

    rng = random.Random(3)
    rows = []
    for i in range(400):
        pad = " ".join(rng.choices(["really", "quite", "so"], k=rng.randint(0, 4)))
        if i % 2:
            rows.append(
                {
                    "prompt": f"question {i}",
                    "chosen": f"{pad} excellent answer",
                    "rejected": f"{pad} terrible answer",
                    "attribute": "helpfulness",
                }
            )
        else:
            rows.append(
                {
                    "prompt": f"question {i}",
                    "chosen": f"{pad} gentle answer",
                    "rejected": f"{pad} violent answer",
                    "attribute": "harmlessness",
                }
            )
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    out = tmp_path / "rm"
    result = train(
        tiny_config(
            tiny_backbone,
            data,
            out,
            max_steps=0,
            epochs=2,
            eval_every=25,
            lr=2e-3,
            attributes="helpfulness,harmlessness",
            attribute_weights="0.7,0.3",
        )
    )
    assert result.metrics["val_accuracy"] >= 0.9, result.metrics
    rm = load_reward_model(out)
    assert rm.card.attributes == ["helpfulness", "harmlessness"] and rm.card.attribute_weights == [0.7, 0.3]
    # temperature and normalization are fitted on what score() and prob_better() use: the weighted aggregate
    _, val_pairs, _ = load_pairs(str(data))
    prompts = [p.prompt for p in val_pairs]
    agg_c, agg_r = rm.score(prompts, [p.chosen for p in val_pairs]), rm.score(prompts, [p.rejected for p in val_pairs])
    both = np.concatenate([agg_c, agg_r])  # fewer than 256 validation pairs: the reference is all of them
    assert rm.card.reward_mean == pytest.approx(float(both.mean()), abs=1e-4) and rm.card.reward_std == pytest.approx(
        float(both.std()), rel=1e-3
    )
    d = agg_c - agg_r
    assert rm.card.temperature == pytest.approx(symmetric_temperature(d), rel=1e-3)
    per = rm.score_attributes(
        ["question x"] * 4, ["excellent answer", "terrible answer", "gentle answer", "violent answer"]
    )
    assert per[0, 0] > per[1, 0] and per[2, 1] > per[3, 1]
    assert np.allclose(
        rm.score(["question x"] * 4, ["excellent answer", "terrible answer", "gentle answer", "violent answer"]),
        per @ np.array([0.7, 0.3]),
        atol=1e-5,
    )
    assert AutoModelForSequenceClassification.from_pretrained(out).config.num_labels == 2
    from rewardkit.scoring.scorer import load_scorer  # the fast scorer serves the same weighted aggregate

    fast = (
        load_scorer(str(out), dtype="fp32")
        .score(["question x"] * 4, ["excellent answer", "terrible answer", "gentle answer", "violent answer"])
        .raw
    )
    assert np.allclose(fast, per @ np.array([0.7, 0.3]), atol=1e-4)


def test_length_balance_by_weight_keeps_one_pass_per_epoch_where_repeats_lengthen_it(tiny_backbone, tmp_path):
    # 80 pairs, the chosen response longer in most: balance to 0.5 by repeats adds copies, by weights adds none
    rows = synthetic_rows(80, seed=2)
    for i, row in enumerate(rows):  # 1 in 8: chosen shorter than any rejected reply; else far longer
        row["chosen"] = "excellent" if i % 8 == 0 else row["chosen"] + " indeed" * 12
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)

    def steps(out: str, **kw) -> int:
        train(tiny_config(tiny_backbone, data, tmp_path / out, max_steps=0, epochs=1, eval_every=100, **kw))
        history = [json.loads(line) for line in (tmp_path / out / "metrics.jsonl").read_text().splitlines()]
        return max(r["step"] for r in history if r["kind"] == "train")

    plain = steps("plain")
    assert steps("weight", length_balance=0.5, length_balance_by="weight") == plain
    assert steps("repeat", length_balance=0.5, length_balance_by="repeat") > plain


def judged_rows(n: int, seed: int, shorter_better_only: bool = False) -> list[dict[str, str]]:
    """A judge that likes length: each response is 'excellent' or 'terrible' (quality) with 0-12 filler words,
    and P(a preferred) = sigmoid(1.5 (q_a - q_b) + 4 (log(1 + k_a) - log(1 + k_b))): the longer one wins ~80%.
    ``shorter_better_only``: test pairs whose better response (by quality) is the shorter one."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    while len(rows) < n:
        qa, qb, ka, kb = rng.random() < 0.5, rng.random() < 0.5, rng.randint(0, 12), rng.randint(0, 12)
        if shorter_better_only:
            if qa == qb or ka == kb:
                continue
            if (ka > kb) == qa:
                ka, kb = kb, ka
            a_wins = qa
        else:
            z = 1.5 * (qa - qb) + 4.0 * (math.log1p(ka) - math.log1p(kb))
            a_wins = rng.random() < 1 / (1 + math.exp(-z))
        ra, rb = (
            " ".join(rng.choices(["very", "quite", "so", "really"], k=k))
            + (" excellent answer" if q else " terrible answer")
            for q, k in ((qa, ka), (qb, kb))
        )
        if ra != rb:
            rows.append(
                {"prompt": f"question {len(rows)}", "chosen": ra if a_wins else rb, "rejected": rb if a_wins else ra}
            )
    return rows


def test_length_control_learns_quality_where_plain_bt_learns_the_judges_taste_for_length(tiny_backbone, tmp_path):
    """On pairs whose better answer is the shorter one, the plain model mostly prefers the longer (it learned
    length); the length-controlled model, which fitted the length term first, prefers the better one."""
    from rewardkit.model import load_reward_model

    data = write_jsonl(tmp_path / "pairs.jsonl", judged_rows(600, seed=0))
    test = judged_rows(300, seed=1, shorter_better_only=True)
    accuracy, metrics = {}, {}
    for name, control in (("plain", False), ("controlled", True)):
        result = train(
            tiny_config(
                tiny_backbone,
                data,
                tmp_path / name,
                max_steps=0,
                epochs=3,
                eval_every=25,
                lr=2e-3,
                length_control=control,
            )
        )
        rm = load_reward_model(tmp_path / name)
        prompts = [r["prompt"] for r in test]
        diff = rm.score(prompts, [r["chosen"] for r in test]) - rm.score(prompts, [r["rejected"] for r in test])
        accuracy[name], metrics[name] = float((diff > 0).mean()), result.metrics
    assert metrics["plain"]["length_coef"] == 0.0 and metrics["controlled"]["length_coef"] > 1.0
    # (0.69 with the compiler's split of this file, 0.8+ with training's old prompt hash: which 10% of prompts
    # validate moves a tiny model's result; the gap to plain BT, 0.16, is the point)
    assert accuracy["plain"] < 0.5 < 0.65 < accuracy["controlled"], accuracy
    # the reward the card and curves report follows length less (Pearson with log length on validation)
    assert abs(metrics["controlled"]["val_length_corr"]) < metrics["plain"]["val_length_corr"]
    assert load_reward_model(tmp_path / "controlled").card.config["length_control"] is True
    assert "length-controlled training" in (tmp_path / "controlled" / "README.md").read_text()
    assert "length-controlled training" not in (tmp_path / "plain" / "README.md").read_text()


def test_training_returns_free_heap_every_few_steps(tiny_backbone, tmp_path, monkeypatch):
    from rewardkit.train import loop as train_module

    calls: list[int] = []
    monkeypatch.setattr(train_module, "release_free_heap", lambda: calls.append(1) or True)
    data = write_jsonl(tmp_path / "pairs.jsonl", synthetic_rows(80))
    train(tiny_config(tiny_backbone, data, tmp_path / "rm", max_steps=25))
    assert len(calls) == 25 // train_module.TRIM_HEAP_EVERY


def test_load_pairs_reads_any_pair_file_and_carves_validation_by_prompt(tmp_path):
    import csv

    rows = synthetic_rows(60, seed=4)
    path = tmp_path / "pairs.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["prompt", "chosen", "rejected"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows)
    train_pairs, val_pairs, snapshot_id = load_pairs(str(path))
    assert len(train_pairs) + len(val_pairs) == 60 and val_pairs and snapshot_id.startswith("file:")
    assert not {p.prompt_id for p in train_pairs} & {p.prompt_id for p in val_pairs}
