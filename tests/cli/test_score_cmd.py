"""``rewardkit score`` as a user meets it: every mistake in the input, the options, the output path or the model
is one line naming what is wrong (file, line or row, field, what was expected), found before the model loads
where it can be, and nothing is written.

Most mistakes are shown with ``--model`` naming a folder that does not exist: the error is the input's (or the
option's) only if it was found before the model was looked for, so no test here loads a model unless it must."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest
from rk_testing.tiny_models import REFUSING_TEMPLATE, build_tiny_chat_model
from typer.testing import CliRunner

from rewardkit.cli.main import app  # noqa: E402
from rewardkit.cli.output import UserError  # noqa: E402


@pytest.fixture
def tiny(tiny_model: Path) -> Path:
    """A real (random, 2-layer) BERT reward model folder: BERT adds 3 special tokens to each row."""
    return tiny_model


def score(*args: str) -> tuple[int, str, BaseException | None]:
    res = CliRunner().invoke(app, ["score", *args])
    return res.exit_code, res.output, res.exception


def user_error(*args: str) -> str:
    """The one-line UserError ``rewardkit score ARGS`` stops with (main.run prints it and exits 2)."""
    code, output, exc = score(*args)
    assert isinstance(exc, UserError), f"exit {code}, {exc!r}\n{output}"
    message = str(exc)
    assert "\n" not in message
    return message


def no_model(tmp_path: Path) -> list[str]:
    return ["--model", str(tmp_path / "no-model-here")]


GOOD = '{"prompt": "p", "response": "r"}\n'

MALFORMED = {  # file name: (bytes, what the message must say after the file name)
    "text.jsonl": (
        b'"my response"\n',
        ", line 1: expected a JSON object, got str; a row is an object of fields such as prompt, response",
    ),
    "number.jsonl": (GOOD.encode() + b"3\n", ", line 2: expected a JSON object, got int"),
    "list.jsonl": (b'[{"prompt": "p", "response": "r"}]\n', ", line 1: expected a JSON object, got list"),
    "ints_as_prompt.jsonl": (
        b'{"prompt": [1, 2], "response": "b"}\n',
        ", line 1: field 'prompt[0]': expected a message object",
    ),
    "no_content.jsonl": (
        b'{"prompt": [{"role": "user"}], "response": "b"}\n',
        ", line 1: field 'prompt[0].content': expected text",
    ),
    "bad_role.jsonl": (
        b'{"messages": [{"role": "human", "content": "x"}, {"role": "assistant", "content": "y"}]}\n',
        ", line 1: field 'messages[0].role': expected one of system, user, assistant, tool, got 'human'",
    ),
    "number_response.jsonl": (
        GOOD.encode() + b'{"prompt": "p", "response": 3}\n',
        ", line 2: field 'response': expected text, got a number 3",
    ),
    "blank_line_kept_in_count.jsonl": (
        GOOD.encode() + b"\n" + b'{"prompt": "p", "response": 3}\n',
        ", line 3: field 'response'",
    ),
    "latin1.jsonl": (
        GOOD.encode() + '{"prompt": "caf\xe9", "response": "r"}\n'.encode("latin-1"),
        ", line 2: invalid UTF-8 at byte 15",
    ),
    "plain.jsonl.gz": (GOOD.encode(), ": cannot read: Not a gzipped file"),
    "text.parquet": (b"not parquet", ": not a readable Parquet file"),
    "latin1.csv": ("prompt,response\np,r\ncaf\xe9,r\n".encode("latin-1"), ", line 3: field 'prompt': invalid UTF-8"),
    "extra_cell.csv": (b"prompt,response\np,r,stray\n", ", line 2: 3 cells but the header has 2 columns"),
    "missing_cell.csv": (b"prompt,response\np\n", ", line 2: field 'response': expected text, got null"),
    # a chat prompt in a CSV cell is JSON: checked like any other list of messages, not taken as text
    "cell_no_content.csv": (
        b'prompt,response\n"[{""role"": ""user""}]",r\n',
        ", line 2: field 'prompt[0].content': expected text",
    ),
    "empty.jsonl": (b"", ": no rows to score"),
    "blank_lines.jsonl": (b"\n  \n", ": no rows to score"),
    "header_only.csv": (b"prompt,response\n", ": no rows to score"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_input_is_one_line_naming_file_and_place_before_the_model(tmp_path: Path, name: str) -> None:
    content, expected = MALFORMED[name]
    src = tmp_path / name
    src.write_bytes(content)
    assert user_error(str(src), *no_model(tmp_path)).startswith(f"{src}{expected}")
    assert not list(tmp_path.glob("*.scored.*"))


def test_a_gzip_jsonl_and_a_bom_are_read(tmp_path: Path) -> None:
    """The readers that now decode bytes themselves still read what they read before (and a spreadsheet's BOM)."""
    from rewardkit.scoring.rows import read_rows

    gz = tmp_path / "rows.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write(GOOD + "\n" + GOOD)
    bom_csv = tmp_path / "excel.csv"
    bom_csv.write_bytes(b"\xef\xbb\xbfprompt,response\ncaf\xc3\xa9,r\n")
    bom_jsonl = tmp_path / "bom.jsonl"
    bom_jsonl.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert read_rows(gz) == [{"prompt": "p", "response": "r"}] * 2
    assert read_rows(bom_csv) == [{"prompt": "café", "response": "r"}]
    assert read_rows(bom_jsonl) == [{"prompt": "p", "response": "r"}]


@pytest.mark.parametrize("value", ["3", "0", "-1"])
def test_a_max_length_no_model_can_use_is_refused_before_the_input_is_read(tmp_path: Path, value: str) -> None:
    message = user_error(str(tmp_path / "not-read.jsonl"), *no_model(tmp_path), "--max-length", value)
    assert (
        message
        == f"--max-length: max_length must be at least 8 tokens of text plus the model's special tokens, got {value}"
    )


def test_a_max_length_too_short_for_the_models_special_tokens_is_one_line(tmp_path: Path, tiny: Path) -> None:
    """9 passes the floor of 8, but BERT's [CLS] and two [SEP] leave 6 tokens: known once the model is loaded,
    and still before anything is scored or written."""
    src = tmp_path / "in.jsonl"
    src.write_text(GOOD)
    message = user_error(str(src), "--model", str(tiny), "--max-length", "9", "--dtype", "fp32")
    assert message == "--max-length: max_length 9 leaves 6 tokens for text; use at least 11"
    assert not (tmp_path / "in.scored.jsonl").exists()
    code, output, _ = score(str(src), "--model", str(tiny), "--max-length", "11", "--dtype", "fp32")
    assert code == 0, output


def test_an_output_path_that_cannot_be_written_is_refused_before_the_model(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(GOOD)
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "adir.jsonl").mkdir()
    (tmp_path / "alias.jsonl").symlink_to(src)
    cases = {
        "afile/x.jsonl": "--out {out}: cannot write there ({tmp}/afile is a file, not a folder)",
        "afile/deeper/x.jsonl": "--out {out}: cannot write there ({tmp}/afile is a file, not a folder)",
        "adir.jsonl": "{out}: is a folder; name a file to write, e.g. {tmp}/adir.jsonl/scored.jsonl",
        "in.jsonl": "{out}: is the input file; writing the scores there would replace it: choose another output file",
        "alias.jsonl": (
            "{out}: is the input file; writing the scores there would replace it: choose another output file"
        ),
    }
    for out, expected in cases.items():
        assert user_error(str(src), *no_model(tmp_path), "-o", str(tmp_path / out)) == expected.format(
            tmp=tmp_path, out=tmp_path / out
        )
    assert src.read_text() == GOOD and (tmp_path / "afile").read_text() == "mine"
    assert list((tmp_path / "adir.jsonl").iterdir()) == []


def test_the_default_output_replaces_only_the_input_suffix() -> None:
    from rewardkit.cli.score_cmd import default_out_path

    names = {
        "run.v2.jsonl": "run.v2.scored.jsonl",
        "x.scored.jsonl": "x.scored.scored.jsonl",  # was x.scored.jsonl: the input itself
        "data.jsonl.gz": "data.scored.jsonl",
        "Data.CSV": "Data.scored.jsonl",
        "t.parquet": "t.scored.jsonl",
        "a.b.json": "a.b.scored.jsonl",
    }
    for name, want in names.items():
        assert default_out_path(Path("d") / name) == Path("d") / want


def test_the_default_output_leaves_other_files_alone(tmp_path: Path, tiny: Path) -> None:
    src = tmp_path / "run.v2.jsonl"
    src.write_text(GOOD)
    unrelated = tmp_path / "run.scored.jsonl"
    unrelated.write_text("another run's scores\n")
    code, output, _ = score(str(src), "--model", str(tiny), "--dtype", "fp32")
    assert code == 0, output
    assert unrelated.read_text() == "another run's scores\n"
    (row,) = [json.loads(x) for x in (tmp_path / "run.v2.scored.jsonl").read_text().splitlines()]
    assert row["response"] == "r" and isinstance(row["score"], float)


def test_a_path_that_is_not_a_model_is_one_line(tmp_path: Path, tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative and absolute paths, a file, a run folder (its model one level down), an ensemble missing a
    member, a hub-style id the (offline, in tests) hub cannot provide, and a folder transformers cannot load."""
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "in.jsonl"
    src.write_text(GOOD)
    (tmp_path / "empty_dir").mkdir()
    run = tmp_path / "run"
    (run / "rewardkit").mkdir(parents=True)
    (run / "rewardkit" / "config.json").write_text("{}")
    ens = tmp_path / "ens"
    ens.mkdir()
    (ens / "rewardkit.json").write_text(json.dumps({"members": ["member_0"]}))
    hub_reason = "not a folder here, and not a model id the Hugging Face Hub could provide ("
    cases = {
        "runs/nope": f"--model: no model at 'runs/nope': {hub_reason}",
        "./runs/nope": "--model: no model at './runs/nope': no such folder here (and not a Hugging Face Hub id)",
        str(
            tmp_path / "nope"
        ): f"--model: no model at '{tmp_path / 'nope'}': no such folder here (and not a Hugging Face Hub id)",
        "empty_dir": "--model: 'empty_dir' is a folder but has no config.json: not a saved model",
        "run": (
            "--model: 'run' is a folder but has no config.json: not a saved model (models inside it: 'run/rewardkit')"
        ),
        "in.jsonl": "--model: 'in.jsonl' is a file, not a model folder",
        "ens": "--model: no model at 'ens/member_0': no such folder",
        # config.json is there, so transformers tries, and fails: its several-line reason on one line
        "run/rewardkit": "cannot load model 'run/rewardkit': ",
    }
    for model, expected in cases.items():
        assert user_error(str(src), "--model", model).startswith(expected), model
    assert not list(tmp_path.glob("*.scored.*"))


def test_eval_and_the_library_give_the_same_model_message(tmp_path: Path) -> None:
    """The check is in load_scorer, so ``rewardkit eval`` (and serve's /ready) say it too; the bundled default
    backbone's names still resolve to a model."""
    from rewardkit.model.source import ModelNotFoundError, check_model_source
    from rewardkit.scoring.scorer import MaxLengthError, load_scorer

    with pytest.raises(ModelNotFoundError, match="has no config.json: not a saved model"):
        load_scorer(str(tmp_path))
    with pytest.raises(MaxLengthError):  # 0 was falsy: silently the card's max_length
        load_scorer(str(tmp_path), max_length=0)
    check_model_source("default")
    check_model_source("all-MiniLM-L6-v2")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    res = CliRunner().invoke(
        app, ["eval", "--model", str(tmp_path), "--data", str(pairs), "--out", str(tmp_path / "report")]
    )
    assert isinstance(res.exception, UserError) and "has no config.json: not a saved model" in str(res.exception)


def test_help_names_the_default_model_and_the_input(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["score", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    usage = next(line for line in res.output.splitlines() if "Usage:" in line)
    assert "INPUT" in usage and "input" not in usage
    text = " ".join(res.output.replace("│", " ").split())  # the text, wherever rich's columns wrap it
    assert "Default: the bundled all-MiniLM-L6-v2 backbone" in text
    assert "[default: default]" not in text


def test_a_text_prompt_that_looks_like_json_is_scored_as_text(tmp_path: Path, tiny: Path) -> None:
    src = tmp_path / "code.jsonl"
    src.write_text(json.dumps({"prompt": '[{"name": "x"}] -- explain this JSON', "response": "It is a list."}) + "\n")
    code, output, exc = score(str(src), "--model", str(tiny), "-o", str(tmp_path / "out.jsonl"))
    assert code == 0, (exc, output)
    assert "score" in json.loads((tmp_path / "out.jsonl").read_text())


def test_a_conversation_the_chat_template_refuses_is_one_line_naming_the_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Known only once the model is loaded (its tokenizer's template raises on a system message), and found then,
    before scoring: one line with the input's file and line (an array's item), the field and the template's
    reason, exit code 2 as for other input errors, no output. The conversations it accepts score."""
    model = build_tiny_chat_model(tmp_path / "chat_model", template=REFUSING_TEMPLATE)
    user = {"role": "user", "content": "hi"}
    lines = [
        {"messages": [user, {"role": "assistant", "content": "yo"}]},
        {"messages": [{"role": "system", "content": "be brief"}, user, {"role": "assistant", "content": "yo"}]},
    ]
    src = tmp_path / "chat.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    message = user_error(str(src), "--model", str(model), "--dtype", "fp32")
    assert (
        message == f"{src}, line 2: field 'messages': the model's chat template refuses this conversation: "
        "System messages are not supported"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.jsonl", "chat_model"]
    from rewardkit.cli.main import run

    monkeypatch.setattr(sys, "argv", ["rewardkit", "score", str(src), "--model", str(model), "--dtype", "fp32"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        run()
    assert exited.value.code == 2
    assert capsys.readouterr().err == f"rewardkit: error: {message}\n"  # no traceback
    array = tmp_path / "chat.json"
    array.write_text(json.dumps(lines, indent=2))
    assert user_error(str(array), "--model", str(model), "--dtype", "fp32") == message.replace(
        f"{src}, line 2", f"{array}, item 2"
    )
    src.write_text(json.dumps(lines[0]) + "\n")
    code, output, exc = score(str(src), "--model", str(model), "--dtype", "fp32", "--json")
    assert code == 0, (exc, output)
    assert json.loads(output)["rows"] == 1
