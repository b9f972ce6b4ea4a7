"""Atomic writes: whole or nothing, and readable like a file open() would have made."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rewardkit.atomic import atomic_file, atomic_write_text, current_umask, temporary_folder


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_and_folders_get_the_umask_mode_not_tempfiles_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert current_umask() == 0o022
        atomic_write_text(tmp_path / "a.txt", "hello")
        assert (tmp_path / "a.txt").read_text() == "hello" and _mode(tmp_path / "a.txt") == 0o644
        assert _mode(temporary_folder(tmp_path / "sub", ".tmp-")) == 0o755
        os.umask(0o027)
        atomic_write_text(tmp_path / "b.txt", "x")
        assert _mode(tmp_path / "b.txt") == 0o640
    finally:
        os.umask(old)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed midway")
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_a_saved_model_folder_is_readable_like_the_rest(tmp_path: Path) -> None:
    # save_pretrained writes model.safetensors through safetensors' own owner-only temporary (0600) and the
    # config 0644: a service account sharing the group could read the config but not the weights
    from transformers import BertConfig, BertForSequenceClassification

    from rewardkit.atomic import share_folder_like_open

    old = os.umask(0o022)
    try:
        config = BertConfig(
            vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8
        )
        model = BertForSequenceClassification(config)
        folder = tmp_path / "model"
        model.save_pretrained(folder)
        modes = {p.name: _mode(p) for p in folder.iterdir()}
        share_folder_like_open(folder)
        after = {p.name: _mode(p) for p in folder.iterdir()}
    finally:
        os.umask(old)
    assert modes["config.json"] == 0o644
    assert after == {name: 0o644 for name in modes} and "model.safetensors" in after


def test_reward_model_save_shares_the_weights_like_the_config(tmp_path: Path) -> None:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from rewardkit.model.backbone import default_backbone_path
    from rewardkit.model.card import RewardCard
    from rewardkit.model.reward_model import RewardModel

    old = os.umask(0o022)
    try:
        config = BertConfig(
            vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8, num_labels=1
        )
        tokenizer = AutoTokenizer.from_pretrained(default_backbone_path())
        RewardModel(BertForSequenceClassification(config), tokenizer, RewardCard()).save(tmp_path / "rm")
    finally:
        os.umask(old)
    modes = {p.name: _mode(p) for p in (tmp_path / "rm").iterdir()}
    assert modes["model.safetensors"] == 0o644 == modes["rewardkit.json"], modes
