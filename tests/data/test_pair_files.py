"""Pair files (train --data / eval --data): every format and TRL shape, and errors that name line and field."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rewardkit.data.pair_files import PairFileError, is_pair_file, read_pair_file, split_shared_prompt

ROWS = [
    {"prompt": "The sky is", "chosen": "blue.", "rejected": "green.", "margin": 2},  # standard, explicit
    {"chosen": "The sky is blue.", "rejected": "The sky is green."},  # standard, implicit
    {
        "prompt": [{"role": "user", "content": "Sky?"}],
        "chosen": [{"role": "assistant", "content": "Blue."}],
        "rejected": [{"role": "assistant", "content": "Green."}],
    },  # conversational, explicit
    {
        "chosen": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Blue."}],
        "rejected": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Green."}],
    },  # conversational, implicit
    {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Sure, here is how.",
        "rejected": "\n\nHuman: Hi\n\nAssistant: Sure, no.",
    },  # HH transcript
]
EXPECTED = [
    ("The sky is", "blue.", "green."),
    ("The sky is", "blue.", "green."),
    ([{"role": "user", "content": "Sky?"}], "Blue.", "Green."),
    ([{"role": "user", "content": "Sky?"}], "Blue.", "Green."),
    ("\n\nHuman: Hi\n\nAssistant:", "Sure, here is how.", "Sure, no."),  # not "Sure," moved into the prompt
]


def _write(path: Path, rows: list[dict]) -> Path:
    name = path.name
    if name.endswith(".jsonl.gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    elif name.endswith(".parquet"):
        pq.write_table(
            pa.Table.from_pylist(
                [{k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()} for r in rows]
            ),
            path,
        )
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["pairs.jsonl", "pairs.jsonl.gz"])
def test_every_trl_shape_is_read(tmp_path: Path, name: str) -> None:
    pairs = read_pair_file(_write(tmp_path / name, ROWS))
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == EXPECTED
    assert pairs[0].margin == 2.0 and pairs[1].margin is None
    assert {p.source for p in pairs} == {"pairs"}
    assert (
        pairs[0].id == pairs[1].id and pairs[2].id == pairs[3].id and len({p.id for p in pairs}) == 3
    )  # id: the content
    assert pairs[0].prompt_id == pairs[1].prompt_id  # same prompt text, same prompt id (the split by prompt uses it)


def test_category_and_annotator_are_kept_for_the_evaluation(tmp_path: Path) -> None:
    rows = [
        {"prompt": "hi", "chosen": "hello", "rejected": "go away", "category": "chat", "annotator": "ann-1"},
        {"prompt": "hi", "chosen": "hello", "rejected": "go away", "annotator": ""},
    ]
    a, b = read_pair_file(_write(tmp_path / "pairs.jsonl", rows))
    assert a.metadata == {"category": "chat", "annotator": "ann-1"}
    assert b.metadata == {}  # empty values are absent, not ""


def test_csv_and_parquet_rows(tmp_path: Path) -> None:
    csv = tmp_path / "rb.csv"
    csv.write_text(
        "prompt,chosen,rejected,subset,margin\nhi,hello,go away,refusals,\n"
        '"[{""role"": ""user"", ""content"": ""Sky?""}]",Blue.,Green.,chat,0.5\n'
    )
    a, b = read_pair_file(csv)
    assert (a.prompt, a.source, a.metadata, a.margin) == ("hi", "refusals", {"subset": "refusals"}, None)
    assert (b.prompt, b.margin) == ([{"role": "user", "content": "Sky?"}], 0.5)
    parquet = _write(tmp_path / "p.parquet", ROWS[:2])
    assert [(p.prompt, p.chosen) for p in read_pair_file(parquet)] == [("The sky is", "blue."), ("The sky is", "blue.")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"prompt": "a", "chosen": "b", "rejected": "c"}\n"just text"\n',
            r"x.jsonl, line 2: field '\(line\)': expected a JSON object, got str",
        ),
        (
            '{"prompt": "a", "chosen": "b", "rejected": "c", "margin": "big"}\n',
            r"x.jsonl, line 1: field 'margin': expected a number, got 'big'",
        ),
        ('{"prompt": "a", "chosen": "b"}\n', r"line 1: field 'rejected': is missing"),
        ('{"prompt": [{"role": "user"}], "chosen": "b", "rejected": "c"}\n', r"line 1: field 'prompt\[0\]"),
        (
            '{"prompt": "a", "chosen": "same", "rejected": "same"}\n',
            r"x.jsonl: no rows \(1 with chosen identical to rejected\)",
        ),
        ("\n\n", r"x.jsonl: no rows"),
    ],
)
def test_the_first_bad_record_is_an_error_naming_line_and_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(content)
    with pytest.raises(PairFileError, match=message):
        read_pair_file(path)


def test_unreadable_files_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl.gz").write_text("not gzip")
    with pytest.raises(PairFileError, match="bad.jsonl.gz: cannot read"):
        read_pair_file(tmp_path / "bad.jsonl.gz")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(PairFileError, match="bad.parquet: not a readable Parquet file"):
        read_pair_file(tmp_path / "bad.parquet")
    (tmp_path / "latin1.jsonl").write_bytes(b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n')
    with pytest.raises(PairFileError, match="latin1.jsonl, line 1: .*invalid UTF-8"):
        read_pair_file(tmp_path / "latin1.jsonl")
    with pytest.raises(PairFileError, match="nope.jsonl: no such file"):
        read_pair_file(tmp_path / "nope.jsonl")


def test_is_pair_file_tells_files_and_datasets_folders_from_snapshots(tmp_path: Path) -> None:
    assert is_pair_file(Path("x.jsonl.gz")) and is_pair_file(Path("X.CSV")) and not is_pair_file(Path("x.txt"))
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "state.json").write_text("{}")
    (tmp_path / "snap").mkdir()
    (tmp_path / "snap" / "manifest.json").write_text("{}")
    assert is_pair_file(tmp_path / "ds") and not is_pair_file(tmp_path / "snap")


def test_split_shared_prompt_cuts_hh_transcripts_at_the_last_shared_assistant_turn() -> None:
    chosen = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help me\n\nAssistant: Sure, here is how."
    rejected = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help me\n\nAssistant: No."
    prompt, c, r = split_shared_prompt(chosen, rejected)
    assert prompt == "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help me\n\nAssistant:"
    assert (c, r) == ("Sure, here is how.", "No.")


def test_identical_pairs_are_left_out_with_a_count(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = [{"prompt": "a", "chosen": "same", "rejected": "same"}, {"prompt": "b", "chosen": "good", "rejected": "bad"}]
    with caplog.at_level("WARNING"):
        (pair,) = read_pair_file(_write(tmp_path / "run.v2.jsonl", rows))
    assert pair.prompt == "b" and "1 row(s) whose chosen and rejected are identical left out" in caplog.text
    assert pair.source == "run.v2"  # the file name without its data suffix, not cut at the first dot


def test_a_datasetdict_folder_is_read_one_split_at_a_time(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    DatasetDict({"train": Dataset.from_list(ROWS[:2]), "test": Dataset.from_list([ROWS[0]])}).save_to_disk(
        str(tmp_path / "dd")
    )
    assert len(read_pair_file(tmp_path / "dd", "train")) == 2 and len(read_pair_file(tmp_path / "dd", "test")) == 1
    with pytest.raises(PairFileError, match="a DatasetDict with splits train, test; choose one"):
        read_pair_file(tmp_path / "dd")
