"""Robust training end to end on the tiny backbone: a planted exploit stops paying, and the augmented pairs never
reach validation."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from test_train import tiny_backbone, tiny_config, write_jsonl  # noqa: F401  (tiny_backbone: a fixture)

from rewardkit.data.training_data import load_pairs
from rewardkit.records import prompt_text
from rewardkit.robust.augment import is_augmented
from rewardkit.train import train
from rewardkit.train.loop import robust_pairs

MAGIC = "xyzzy plugh"


def exploited_rows(n: int, seed: int, exploit_share: float = 0.2) -> list[dict[str, str]]:
    """A synthetic judge with a planted exploit: it prefers the 'excellent' answer to the 'terrible' one, except
    that in ``exploit_share`` of the pairs one side carries the magic suffix, and then that side wins whatever it
    says (the judge wrongly rewards the suffix)."""
    rng = random.Random(seed)
    topics = ["cats", "tea", "rain", "trains", "music", "bread", "maps", "stars"]
    rows = []
    for i in range(n):
        pad = lambda: " ".join(rng.choices(["really", "quite", "very", "so"], k=rng.randint(0, 5)))  # noqa: E731
        good, bad = f"{pad()} excellent answer", f"{pad()} terrible answer"
        if rng.random() < exploit_share:
            good, bad = (f"{good} {MAGIC}", bad) if rng.random() < 0.5 else (f"{bad} {MAGIC}", good)
        rows.append({"prompt": f"question {i}: tell me about {rng.choice(topics)}", "chosen": good, "rejected": bad})
    return rows


def suffix_rise_rate(model: Path, responses: list[str]) -> float:
    from rewardkit.model import load_reward_model

    rm = load_reward_model(model)
    prompts = [f"question {i}: tell me about tea" for i in range(len(responses))]
    plain = rm.score(prompts, responses)
    suffixed = rm.score(prompts, [f"{r} {MAGIC}" for r in responses])
    return float(np.mean(suffixed > plain))


def test_a_planted_suffix_exploit_stops_paying_after_robust_training(tiny_backbone, tmp_path):  # noqa: F811
    data = write_jsonl(tmp_path / "pairs.jsonl", exploited_rows(500, seed=0))
    profile = tmp_path / "suffix.toml"
    profile.write_text(f'[kinds.appended_text]\nweight = 4.0\nshare = 0.3\ntexts = ["{MAGIC}"]\n')
    test = [r for row in exploited_rows(200, seed=1, exploit_share=0) for r in (row["chosen"], row["rejected"])]
    rise, metrics = {}, {}
    for name, robust in (("plain", ""), ("robust", str(profile))):
        result = train(
            tiny_config(
                tiny_backbone, data, tmp_path / name, max_steps=0, epochs=3, eval_every=25, lr=2e-3, robust=robust
            )
        )
        rise[name], metrics[name] = suffix_rise_rate(tmp_path / name, test), result.metrics
    # the plain model learned the judge's mistake: the suffix raises nearly every score; robust training, which
    # saw responses beat their own suffixed copies, does not pay for it
    assert rise["plain"] > 0.8 and rise["robust"] < 0.2, rise
    assert metrics["robust"]["augmented_pairs"] == {"appended_text": round(0.3 * metrics["plain"]["train_pairs"] / 0.7)}
    # and still learned what the judge is right about (validation holds the judge's own pairs, exploits included)
    assert metrics["robust"]["val_accuracy"] >= metrics["plain"]["val_accuracy"] - 0.25


def test_augmented_pairs_come_from_training_pairs_and_never_reach_validation(tiny_backbone, tmp_path):  # noqa: F811
    # (two paragraphs in each chosen response, so the white-space rewrite of the invariance pairs has work to do)
    rows = [{**r, "chosen": r["chosen"] + "\n\nThanks."} for r in exploited_rows(200, seed=2)]
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    config = tiny_config(tiny_backbone, data, tmp_path / "rm", robust="default", invariance_weight=0.5, max_steps=4)
    train_pairs, val_pairs, _ = load_pairs(str(data), config.validation_fraction)
    extra = robust_pairs(config, train_pairs)
    assert extra and all(is_augmented(p) for p in extra)
    train_prompts = {prompt_text(p.prompt) for p in train_pairs}
    val_prompts = {prompt_text(p.prompt) for p in val_pairs}
    assert {prompt_text(p.prompt) for p in extra} <= train_prompts and not train_prompts & val_prompts
    assert {p.metadata["augmented_from"] for p in extra} <= {p.id for p in train_pairs}

    result = train(config)
    plain = train(tiny_config(tiny_backbone, data, tmp_path / "plain", max_steps=4))
    m = result.metrics
    assert m["validation_pairs"] == plain.metrics["validation_pairs"] == len(val_pairs)
    assert m["train_pairs"] == len(train_pairs) + len(extra) == len(train_pairs) + sum(m["augmented_pairs"].values())
    assert any(k.startswith("invariance:") for k in m["augmented_pairs"])
    card = json.loads((tmp_path / "rm" / "rewardkit.json").read_text())
    assert card["config"]["robust"] == "default" and card["config"]["invariance_weight"] == 0.5
