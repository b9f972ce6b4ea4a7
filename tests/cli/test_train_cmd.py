"""``rewardkit train`` mistakes as a user meets them: one line naming the option, before any model or data is
loaded, and nothing written. Every test here stops before training, so the file runs in a few seconds."""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner, Result

from rewardkit.cli.main import app
from rewardkit.cli.output import UserError


@pytest.fixture(autouse=True)
def rk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh RK_HOME, so snapshot lookups for --data see an empty store."""
    from rewardkit.settings import get_settings

    monkeypatch.setenv("RK_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def pairs_file(folder: Path) -> Path:
    path = folder / "pairs.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": f"q{i}", "chosen": "good", "rejected": "bad"}) + "\n" for i in range(20))
    )
    return path


def train_cli(*args: str) -> Result:
    return CliRunner().invoke(app, ["train", *args])


def user_error(result: Result) -> str:
    """The one line ``main.run`` prints for the UserError the command raised."""
    assert isinstance(result.exception, UserError), result.output
    message = str(result.exception)
    assert "\n" not in message
    return message


# --- 1. --resume without a checkpoint ------------------------------------------------------------------


def test_resume_without_a_checkpoint_is_an_error_before_the_model_or_data_load(tmp_path: Path) -> None:
    # data and backbone that do not exist: had either been loaded, their error would come first
    result = train_cli(
        "--data",
        str(tmp_path / "absent.jsonl"),
        "--backbone",
        "no/such-model",
        "--out",
        str(tmp_path / "mistyped"),
        "--resume",
    )
    assert user_error(result) == (
        f"--resume: no checkpoint in {tmp_path / 'mistyped' / 'checkpoint'} (last.pt); "
        "run without --resume to start a new run"
    )
    assert not (tmp_path / "mistyped").exists()


def test_resume_of_a_folder_without_last_pt_names_the_checkpoint_it_looked_for(tmp_path: Path) -> None:
    out = tmp_path / "rm"
    (out / "checkpoint").mkdir(parents=True)
    (out / "checkpoint" / "best.pt").write_bytes(b"")  # killed before its first resumable checkpoint
    message = user_error(train_cli("--data", str(pairs_file(tmp_path)), "--out", str(out), "--resume"))
    assert message.startswith(f"--resume: no checkpoint in {out / 'checkpoint'} (last.pt)")
    ensemble = user_error(
        train_cli("--data", str(pairs_file(tmp_path)), "--out", str(out), "--resume", "--ensemble", "2")
    )
    assert str(out / "member_0" / "checkpoint") in ensemble


# --- 2. --out checked up front -------------------------------------------------------------------------


def test_out_must_be_a_folder_or_creatable(tmp_path: Path) -> None:
    data = str(pairs_file(tmp_path))
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    assert user_error(train_cli("--data", data, "--out", str(afile))) == f"--out {afile}: is a file, not a folder"
    assert user_error(train_cli("--data", data, "--out", str(afile / "rm"))) == (
        f"--out {afile / 'rm'}: cannot write there ({afile} is a file, not a folder)"
    )
    assert afile.read_text() == "not a folder"


def test_out_refuses_a_killed_run_without_resume_and_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    data = str(pairs_file(tmp_path))
    killed = tmp_path / "killed"
    (killed / "checkpoint").mkdir(parents=True)
    (killed / "checkpoint" / "last.pt").write_bytes(b"weights")
    message = user_error(train_cli("--data", data, "--out", str(killed)))
    assert message.startswith(f"--out {killed}: holds a killed run") and "add --resume to continue it" in message
    assert (killed / "checkpoint" / "last.pt").read_bytes() == b"weights"

    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("mine")
    message = user_error(train_cli("--data", data, "--out", str(project)))
    assert message.startswith(f"--out {project}: is not empty and holds no rewardkit model")
    assert (project / "README.md").read_text() == "mine"


def test_a_folder_with_a_trained_model_is_replaced_and_the_user_is_told(tmp_path: Path) -> None:
    out = tmp_path / "rm"
    (out / "checkpoint").mkdir(parents=True)
    (out / "rewardkit.json").write_text("{}")
    (out / "checkpoint" / "last.pt").write_bytes(b"")
    # the data error stops the run right after the folder check: enough to see the note and no refusal
    result = train_cli("--data", str(tmp_path / "absent.jsonl"), "--out", str(out))
    assert user_error(result).startswith("--data")
    assert f"rewardkit: note: --out {out} holds a trained model; this run replaces it" in result.stderr


# --- 5. config errors in option names ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--batch-size", "0"], "--batch-size: expected at least 1, got 0"),
        (
            ["--attributes", "a,b", "--attribute-weights", "1,2,3"],
            "--attribute-weights: expected one weight per attribute, got '1,2,3'",
        ),
        (["--attribute-weights", "x"], "--attribute-weights: expected comma-separated numbers, got 'x'"),
        (["--epochs", "0"], "--epochs: expected > 0 (or --max-steps > 0), got 0.0"),
        (["--length-balance-by", "length"], "--length-balance-by: expected one of repeat, weight, got 'length'"),
        (
            ["--robust", "defualt"],
            "--robust: robust profile 'defualt': no such file, nor a shipped profile (shipped: default, strict)",
        ),
        (["--invariance-weight", "-1"], "--invariance-weight: expected >= 0, got -1.0"),
        (
            ["--robust", "default", "--loss", "plackett-luce"],
            "--loss: expected a pairwise loss (bt, margin, tie or soft) with --robust or --invariance-weight, "
            "got 'plackett-luce'",
        ),
    ],
)
def test_config_mistakes_name_the_option(tmp_path: Path, args: list[str], expected: str) -> None:
    assert user_error(train_cli("--data", str(pairs_file(tmp_path)), "--out", str(tmp_path / "rm"), *args)) == expected
    assert not (tmp_path / "rm").exists()


# --- 6. whatever reading --data raises is one line naming --data ---------------------------------------


@pytest.mark.parametrize("name", ["e3.jsonl.gz", "e.csv", "nope.jsonl"])
def test_data_the_loader_cannot_use_is_one_line_naming_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A missing file, and files that are read (.jsonl.gz and .csv are pair files) but hold one prompt: no
    prompt is left for validation."""
    monkeypatch.chdir(tmp_path)
    if name.endswith(".gz"):
        with gzip.open(name, "wt") as f:
            f.write(json.dumps({"prompt": "q", "chosen": "good", "rejected": "bad"}) + "\n")
    elif name.endswith(".csv"):
        Path(name).write_text("prompt,chosen,rejected\nq,good,bad\n")
    message = user_error(train_cli("--data", name, "--out", "rm"))
    assert message.startswith("--data") and name in message
    # a file's one prompt lands on one side (the split's hash decides which): the empty side is named
    assert (
        ("no such file" in message)
        if name == "nope.jsonl"
        else re.search(r"no (training|validation) pairs: its 1 prompt\(s\) leave none", message) is not None
    )
    assert not Path("rm").exists()


@pytest.mark.parametrize(
    "raised, expected",
    [
        (FileNotFoundError(2, "No such file or directory", "pairs.parquet"), "No such file or directory"),
        (gzip.BadGzipFile("Not a gzipped file (b'{\"')"), "Not a gzipped file (b'{\"')"),
        (
            EOFError("Compressed file ended before the end-of-stream marker was reached"),
            "Compressed file ended before the end-of-stream marker was reached",
        ),
        (
            UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
            "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte",
        ),
        (KeyError("chosen"), "missing key 'chosen'"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else "",
)
def test_any_read_error_of_the_loader_reaches_the_user_as_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raised: Exception, expected: str
) -> None:
    """Whatever the loader (being extended to .jsonl.gz, .csv, .parquet) raises for a bad file."""
    import rewardkit.train.loop

    def failing_loader(*args: Any) -> Any:
        raise raised

    monkeypatch.setattr(rewardkit.train.loop, "load_pairs", failing_loader)
    assert (
        user_error(train_cli("--data", "pairs.parquet", "--out", str(tmp_path / "rm")))
        == f"--data pairs.parquet: {expected}"
    )


def test_a_backbone_that_cannot_be_loaded_is_one_line_naming_backbone(tmp_path: Path) -> None:
    # (was a traceback: transformers raises a several-line OSError for a name that is no model)
    result = train_cli(
        "--data", str(pairs_file(tmp_path)), "--out", str(tmp_path / "rm"), "--backbone", str(tmp_path / "no-model")
    )
    assert (
        user_error(result)
        == f"--backbone: no model at '{tmp_path / 'no-model'}': no such folder here (and not a Hugging Face Hub id)"
    )
    assert not (tmp_path / "rm").exists()
    (tmp_path / "empty-folder").mkdir()  # a folder that exists but is no model: transformers' reason would mislead
    result = train_cli(
        "--data", str(pairs_file(tmp_path)), "--out", str(tmp_path / "rm"), "--backbone", str(tmp_path / "empty-folder")
    )
    assert (
        user_error(result)
        == f"--backbone: '{tmp_path / 'empty-folder'}' is a folder but has no config.json: not a saved model"
    )


# --- 3 and 4. the help text --------------------------------------------------------------------------


def train_options() -> dict[str, Any]:
    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    return {p.opts[0]: p for p in command.params}


def test_help_speaks_in_options_and_is_complete() -> None:
    from dataclasses import fields

    from rewardkit.train.config import TrainConfig

    options = train_options()
    underscored = [f.name for f in fields(TrainConfig) if "_" in f.name]
    for flag, param in options.items():
        for name in underscored:
            # a field name in prose is the option; inside a path (model/length_control.py) it stays
            assert not re.search(rf"(?<![\w/]){name}(?![\w/]|\.py)", param.help or ""), (flag, name, param.help)
    assert "at most every --checkpoint-every steps" in options["--eval-every"].help
    assert "see --length-balance-by" in options["--length-balance"].help
    assert "(model/length_control.py)" in options["--length-control"].help
    assert "`attribute`" in options["--attributes"].help  # a data field, not an option: plain backticks, no RST
    out_help = options["--out"].help
    assert "metrics.jsonl, curves.png and checkpoint/" in out_help and out_help.endswith("files that are not its own.")


def test_freeze_embeddings_shows_no_default_it_does_not_have() -> None:
    param = train_options()["--freeze-embeddings"]
    assert param.default is None and not param.show_default
    assert "Unset (default): frozen exactly when --freeze-layers freezes at least one block" in param.help
    result = CliRunner().invoke(app, ["train", "--help"])
    assert "no-freeze-embeddings]" not in result.output


def test_the_library_error_still_names_the_field() -> None:
    from rewardkit.train.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match=r"^TrainConfig.batch_size: expected at least 1, got 0$") as caught:
        TrainConfig(data="x", out="y", batch_size=0)
    assert isinstance(caught.value, ValueError) and caught.value.field == "batch_size"


# --- the launcher entry point (python -m rewardkit train) answers the same way ------------------------


def test_the_module_entry_point_names_options_and_parses_the_unset_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m rewardkit train`` is the ``rewardkit train`` command (rewardkit/__main__.py): the same options
    and the same one-line errors."""
    import rewardkit.train.loop
    from rewardkit.cli.main import run

    def main(argv: list[str]) -> None:
        monkeypatch.setattr(sys, "argv", ["rewardkit", "train", *argv])
        run()

    with pytest.raises(SystemExit) as exited:
        main(["--data", "x.jsonl", "--out", str(tmp_path / "absent"), "--resume"])
    assert exited.value.code == 2
    assert "rewardkit: error: --resume: no checkpoint in" in " ".join(capsys.readouterr().err.split())

    seen = []
    monkeypatch.setattr(
        rewardkit.train.loop,
        "train",
        lambda config: seen.append(config.freeze_embeddings) or rewardkit.train.loop.TrainResult(tmp_path, {}),
    )
    for flags in ([], ["--freeze-embeddings"], ["--no-freeze-embeddings"]):
        with pytest.raises(SystemExit) as exited:
            main(["--data", "x.jsonl", "--out", str(tmp_path / "rm"), *flags])
        assert exited.value.code == 0
    assert seen == [None, True, False]


def test_python_m_rewardkit_train_help_lists_the_same_options(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    help_text = subprocess.run(
        [sys.executable, "-m", "rewardkit", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},  # rich cuts long option names to fit a narrow terminal
    ).stdout
    assert set(train_options()) <= set(re.findall(r"--[a-z][a-z0-9-]*", help_text))


def test_a_killed_ensemble_is_recognised_by_a_single_model_run(tmp_path: Path) -> None:
    out = tmp_path / "ens"
    (out / "member_0" / "checkpoint").mkdir(parents=True)
    (out / "member_0" / "checkpoint" / "last.pt").write_bytes(b"x")
    message = user_error(train_cli("--data", str(pairs_file(tmp_path)), "--out", str(out)))
    assert "holds a killed run (member_0/checkpoint/last.pt, no rewardkit.json): add --resume" in message
