"""``--data``: a snapshot (split "test", ties dropped, train split as the drift reference) or a JSONL file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardkit.cli.eval_cmd import _reference_pairs
from rewardkit.data.snapshot import write_snapshot
from rewardkit.evaluate.inputs import EvalDataError, load_eval_pairs
from rewardkit.records import PreferencePair


def _pair(i: int, tie: bool = False) -> PreferencePair:
    return PreferencePair(
        id=f"p{i}", prompt=f"q{i}", chosen=f"good {i}", rejected=f"bad {i}", tie=tie, prompt_id=f"q{i}"
    )


def test_snapshot_split_and_reference(tmp_path: Path) -> None:
    splits = {"train": [_pair(0), _pair(1)], "validation": [], "test": [_pair(2), _pair(3, tie=True), _pair(4)]}
    built = write_snapshot(tmp_path / "snaps", options={"x": 1}, splits=splits, counts={}, conflicts=[])
    pairs = load_eval_pairs(str(built.path))
    assert [p.id for p in pairs] == ["p2", "p4"]  # the tie is dropped
    assert [p.id for p in load_eval_pairs(built.id[:8], snapshot_dir=tmp_path / "snaps")] == ["p2", "p4"]
    assert [p.id for p in _reference_pairs(str(built.path), "test", None)] == ["p0", "p1"]
    assert _reference_pairs(str(built.path), "test", "none") is None
    with pytest.raises(EvalDataError, match="split 'validation' has no non-tie pairs"):
        load_eval_pairs(str(built.path), split="validation")
    # a length-balanced training split is not the data's length mix: the reference is the validation split
    splits["validation"] = [_pair(5)]
    balanced = write_snapshot(
        tmp_path / "snaps", options={"x": 1, "length_balance": 0.3}, splits=splits, counts={}, conflicts=[]
    )
    assert [p.id for p in _reference_pairs(str(balanced.path), "test", None)] == ["p5"]


def test_jsonl_rows_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "rb.jsonl"
    path.write_text(
        json.dumps({"prompt": "hi", "chosen": "hello", "rejected": "go away", "subset": "refusals-dangerous"}) + "\n\n"
    )
    (pair,) = load_eval_pairs(path)
    assert pair.metadata == {"subset": "refusals-dangerous"} and pair.source == "refusals-dangerous"
    path.write_text('{"prompt": "hi", "chosen": "", "rejected": "x"}\n')
    with pytest.raises(EvalDataError, match="rb.jsonl, line 1: field 'chosen': is empty"):
        load_eval_pairs(path)
    path.write_text("{not json\n")
    with pytest.raises(EvalDataError, match="rb.jsonl, line 1: field '\\(line\\)': malformed JSON"):
        load_eval_pairs(path)
    csv = tmp_path / "x.csv"
    csv.write_text("prompt,chosen,rejected,subset\nhi,hello,go away,chat\n")
    (pair,) = load_eval_pairs(csv)
    assert (pair.prompt, pair.chosen, pair.source) == ("hi", "hello", "chat")
    txt = tmp_path / "x.txt"
    txt.write_text("a,b\n")
    with pytest.raises(EvalDataError, match="expected a file of prompt/chosen/rejected rows"):
        load_eval_pairs(txt)
    with pytest.raises(EvalDataError, match="missing.jsonl: no such file"):
        load_eval_pairs(tmp_path / "missing.jsonl")
