"""Output paths and options that cannot work are one-line errors before any work starts; help states the
defaults that apply; results stay one line in a pipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.cli.output import UserError
from rewardkit.cli.paths import check_out_dir, check_out_file


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    from rewardkit.settings import get_settings

    monkeypatch.setenv("RK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RK_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _error(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert isinstance(result.exception, UserError), (result.exception, result.output)
    return str(result.exception)


def test_check_out_file_and_dir(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    check_out_file(tmp_path / "new" / "deeper" / "x.jsonl", "--out")  # creatable
    check_out_dir(tmp_path / "new-folder", "--out")
    with pytest.raises(UserError, match=r"--out .*x.jsonl: cannot write there \(.*afile is a file, not a folder\)"):
        check_out_file(afile / "x.jsonl", "--out")
    with pytest.raises(UserError, match="is a folder; give a file name"):
        check_out_file(tmp_path, "--out")
    with pytest.raises(UserError, match="is a file, not a folder"):
        check_out_dir(afile, "--out")
    with pytest.raises(UserError, match="exists already"):
        check_out_dir(tmp_path, "--out", must_not_exist=True)


def test_output_paths_fail_before_the_work(home: Path) -> None:
    afile = home / "afile"
    afile.write_text("x")
    # eval: the report folder is checked before the model or the data are read (neither exists here)
    assert (
        _error("eval", "-m", "no-model", "-d", "no-data.jsonl", "-o", str(afile))
        == f"--out {afile}: is a file, not a folder"
    )
    assert "--max-pairs: expected at least 1, got 0" in _error(
        "eval", "-m", "m", "-d", "d.jsonl", "-o", str(home / "r"), "--max-pairs", "0"
    )
    assert "is a folder" in _error("data", "sample", "--out", str(home))
    assert "is a file, not a folder" in _error("data", "sample", "--out", str(afile / "x.jsonl"))
    assert "is a file, not a folder" in _error("dataset", "export", "any-snapshot", "--out", str(afile))


def test_an_unknown_parent_snapshot_is_an_error(home: Path) -> None:
    assert "no snapshot" in _error("dataset", "build", "--parent", "deadbeef")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "99999"], "--port (or RK_PORT): Input should be less than or equal to 65535"),
        (
            ["--log-level", "loud"],
            "--log-level: expected one of critical, error, warning, info, debug, trace, got 'loud'",
        ),
        (["--dtype", "fp16"], "--dtype (or RK_DTYPE) must be one of"),
        (["--queue-size", "0"], "--queue-size (or RK_QUEUE_SIZE): Input should be greater than or equal to 1"),
    ],
)
def test_serve_option_mistakes_name_the_option(args: list[str], message: str) -> None:
    assert message in _error("serve", *args)


def test_serve_help_states_the_settings_defaults() -> None:
    from rewardkit.serve import ServeSettings

    text = " ".join(CliRunner().invoke(app, ["serve", "--help"], terminal_width=400).output.split())
    fields = ServeSettings.model_fields
    assert f"RK_QUEUE_SIZE, else {fields['queue_size'].default}" in text
    assert f"RK_MAX_WAIT_MS, else {fields['max_wait_ms'].default}" in text
    assert f"RK_PORT, {fields['port'].default}" in text


def test_results_are_one_line_in_a_pipe(home: Path) -> None:
    """rich wraps at 80 columns when stdout is not a terminal; a result line must survive grep."""
    out = home / "sample.jsonl"
    code = "from rewardkit.cli.main import run; run()"
    subprocess.run(
        [sys.executable, "-c", code, "data", "sample", "--out", str(out), "--n", "20"], check=True, capture_output=True
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "import",
            "trl",
            str(out),
            "--source",
            "a-source-name-long-enough-to-pass-eighty-columns",
        ],
        capture_output=True,
        text=True,
        env={**__import__("os").environ},
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert any(len(line) > 80 for line in lines), lines


def test_serve_refuses_a_model_that_is_not_there_before_starting(tmp_path: Path) -> None:
    """The model loads in the background once the server is up; a name that cannot work must not leave a
    server answering 503 forever."""
    assert _error("serve", "--model", str(tmp_path / "nope")).startswith(f"--model: no model at '{tmp_path / 'nope'}'")
    (tmp_path / "not-a-model").mkdir()
    assert "has no config.json" in _error("serve", "--model", str(tmp_path / "not-a-model"))


def test_an_error_naming_a_path_with_brackets_prints_the_path_as_it_is(tmp_path: Path) -> None:
    """rich reads "[abc]" as a style tag: an error about data[abc].jsonl must not lose the "[abc]"."""
    missing = tmp_path / "data[abc].jsonl"
    proc = subprocess.run(
        [sys.executable, "-c", "from rewardkit.cli.main import run; run()", "score", str(missing)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and f"{missing}: no such file" in proc.stderr


def test_serve_refuses_a_model_whose_card_is_broken(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "rewardkit.json").write_text("{not json")
    assert "its rewardkit.json cannot be used" in _error("serve", "--model", str(folder))
