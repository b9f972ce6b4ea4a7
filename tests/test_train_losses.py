"""Every ``--loss`` name trains from the CLI, on data that went import -> store -> snapshot -> training.

AlpacaEval-style annotations (soft labels: ``preference`` is a probability) feed the pairwise losses; UltraFeedback
records (several rated completions per prompt) feed the listwise and ratings losses, whose lists the loader
rebuilds from the snapshot's pairs (train/lists.py). A tiny random BERT, a few steps each.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from test_train import tiny_backbone  # noqa: F401  (fixture)
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.model.losses import LOSSES
from rewardkit.records import PreferencePair
from rewardkit.train.lists import encode_lists, response_lists

QUALITY = ["terrible", "poor", "decent", "excellent"]  # worst to best


def alpacaeval_rows(n: int, seed: int = 0) -> list[dict]:
    """output_2 is 'excellent' or 'terrible' against a 'decent' reference; the judge's preference is a
    probability leaning the right way, a few exact ties."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        better = rng.random() < 0.5
        preference = 1.5 if i % 10 == 0 else (rng.uniform(1.6, 2.0) if better else rng.uniform(1.0, 1.4))
        rows.append(
            {
                "instruction": f"question {i}: tell me about topic {i % 7}",
                "output_1": f"a decent answer number {i}",
                "generator_1": "reference",
                "output_2": f"an {'excellent' if better else 'terrible'} answer number {i}",
                "generator_2": f"model{i % 3}",
                "preference": round(preference, 3),
            }
        )
    return rows


def ultrafeedback_rows(n: int) -> list[dict]:
    """Four completions per instruction, rated by the quality word they carry (1, 4, 6, 9)."""
    scores = [1.0, 4.0, 6.0, 9.0]
    return [
        {
            "source": "synthetic",
            "instruction": f"question {i}: explain topic {i % 5}",
            "completions": [
                {"model": f"m{j}", "response": f"a {QUALITY[j]} reply {i}-{j}", "overall_score": scores[j]}
                for j in random.Random(i).sample(range(4), 4)
            ],
        }
        for i in range(n)
    ]


def cli(*args: str) -> dict:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return {"stderr": result.stderr, **json.loads(result.stdout)} if "--json" in args else {}


@pytest.fixture()
def snapshots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """{'alpacaeval': snapshot folder, 'ultrafeedback': snapshot folder}, each built from its own store."""
    from rewardkit.settings import get_settings

    built = {}
    for kind, rows in (("alpacaeval", alpacaeval_rows(120)), ("ultrafeedback", ultrafeedback_rows(60))):
        monkeypatch.setenv("RK_HOME", str(tmp_path / kind))
        monkeypatch.delenv("RK_DATABASE_URL", raising=False)
        get_settings.cache_clear()
        source = tmp_path / f"{kind}.jsonl"
        source.write_text("".join(json.dumps(r) + "\n" for r in rows))
        cli("import", kind, str(source))
        built[kind] = cli("dataset", "build", "--keep-ties", "--json")["path"]
    get_settings.cache_clear()
    return built


def test_the_snapshot_keeps_soft_labels_and_ratings(snapshots: dict[str, str]) -> None:
    from rewardkit.data.snapshot import load_split

    pairs = load_split(Path(snapshots["alpacaeval"]), "train")
    decided = [p for p in pairs if not p.tie]
    # P(chosen better) = 2 - preference when output_1 is chosen, preference - 1 otherwise: always >= 0.5
    assert decided and all(p.target is not None and 0.5 < p.target <= 1.0 for p in decided)
    assert all(p.target == 0.5 for p in pairs if p.tie)
    rated = load_split(Path(snapshots["ultrafeedback"]), "train")
    assert all(p.metadata["ratings"][0] > p.metadata["ratings"][1] for p in rated)
    lists = response_lists(rated)
    # every prompt's four completions come back best first, with their ratings
    assert lists and all(rl.ratings == [9.0, 6.0, 4.0, 1.0] for rl in lists)
    assert all(rl.responses[0].startswith("a excellent") for rl in lists)


@pytest.mark.parametrize("loss", sorted(k for k in LOSSES if LOSSES[k].data != "steps"))  # step-bce: test_train_prm.py
def test_every_loss_trains_from_the_cli(loss: str, snapshots, tiny_backbone, tmp_path: Path) -> None:  # noqa: F811
    data = snapshots["ultrafeedback" if LOSSES[loss].data != "pairs" else "alpacaeval"]
    out = tmp_path / f"rm-{loss}"
    result = cli(
        "train", "--data", data, "--out", str(out), "--backbone", tiny_backbone, "--loss", loss,
        "--max-length", "48", "--batch-size", "4", "--lr", "1e-3", "--max-steps", "6", "--eval-every", "3",
        "--bf16", "off", "--threads", "1", "--no-progress", "--json",
    )  # fmt: skip
    m = result["metrics"]
    assert m["steps"] == 6 and m["validation_pairs"] > 0
    assert m["bf16"] is False and "rewardkit: bf16 autocast off: --bf16 off" in result["stderr"]
    # validation and calibration run on pairs for every loss
    assert m["val_accuracy"] is not None and math.isfinite(m["val_loss"]) and m["head_changed"]
    assert ("train_lists" in m) == (LOSSES[loss].data != "pairs")
    card = json.loads((out / "rewardkit.json").read_text())
    assert card["config"]["loss"] == loss and card["temperature"] > 0
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["loss"]) for r in history)


def test_lists_are_rebuilt_from_the_pairs_of_a_ranking(tiny_backbone) -> None:  # noqa: F811
    """All pairs of one ranking c > a > b (and a tie-free second prompt with two responses): the Copeland
    order is the ranking; a prompt whose pairs hold one response is no list."""
    pairs = [
        PreferencePair(id="1", prompt="p", chosen="c", rejected="a", prompt_id="P"),
        PreferencePair(id="2", prompt="p", chosen="a", rejected="b", prompt_id="P"),
        PreferencePair(id="3", prompt="p", chosen="c", rejected="b", prompt_id="P"),
        PreferencePair(id="4", prompt="q", chosen="y", rejected="x", prompt_id="Q"),
    ]
    lists = response_lists(pairs)
    assert [rl.responses for rl in lists] == [["c", "a", "b"], ["y", "x"]]
    assert lists[0].ratings == [None, None, None]

    from rewardkit.model.backbone import load_tokenizer

    data = encode_lists(load_tokenizer(tiny_backbone), lists, 32)
    rows, index, mask = data.layout([1, 0])
    assert rows == [3, 4, 0, 1, 2]  # list 1's rows, then list 0's
    assert index.tolist() == [[0, 1, 0], [2, 3, 4]] and mask.tolist() == [[True, True, False], [True, True, True]]
    assert torch.isnan(data.ratings).all()
