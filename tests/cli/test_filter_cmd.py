"""``rewardkit filter`` as a user meets it (local engine, a tiny real model): the rows kept are those the
scorer ranks highest, by hand from ``rewardkit score``'s own scores; pairs, the manifest and the histograms;
every mistake is one line and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli.main import app  # noqa: E402
from rewardkit.cli.output import UserError  # noqa: E402
from rewardkit.scoring.files import score_rows  # noqa: E402
from rewardkit.scoring.rows import read_rows  # noqa: E402
from rewardkit.scoring.scorer import load_scorer  # noqa: E402


@pytest.fixture
def tiny(tiny_model: Path) -> Path:
    return tiny_model


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    """Three prompts with four responses each, a prompt's rows NOT contiguous (interleaved)."""
    rows = [
        {"prompt": f"question {q}", "response": f"answer {k} " + "because " * (k * q % 5), "id": f"{q}-{k}"}
        for k in range(4)
        for q in range(3)
    ]
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(*args: str) -> tuple[int, str, BaseException | None]:
    res = CliRunner().invoke(app, ["filter", *args])
    return res.exit_code, res.output, res.exception


def scored(tiny: Path, path: Path) -> list[dict]:
    return score_rows(load_scorer(str(tiny), dtype="fp32"), read_rows(path))


def test_top_share_keeps_the_highest_scores_in_input_order(tiny: Path, samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "kept.jsonl"
    code, output, exc = run(str(samples), "-m", str(tiny), "--keep", "top:25%", "-o", str(out), "--dtype", "fp32")
    assert code == 0, (output, exc)
    rows = scored(tiny, samples)
    best = sorted(range(12), key=lambda i: (-rows[i]["score"], i))[:3]  # 25% of 12
    assert [r["id"] for r in read_rows(out)] == [rows[i]["id"] for i in sorted(best)]
    manifest = json.loads(out.with_name("kept.jsonl.manifest.json").read_text())
    assert (manifest["rows"], manifest["kept"], manifest["dropped"]) == (12, 3, 9)
    assert manifest["options"] == {"keep": "top:25%", "min_margin": None, "normalized": False}
    assert manifest["model_version"].startswith(f"{tiny.name}@") and manifest["precision"] == "fp32"
    assert len(manifest["input_sha256"]) == 64 and manifest["engine"] == "local"
    assert out.with_name("kept.jsonl.hist.png").read_bytes()[:4] == b"\x89PNG"


def test_best_per_prompt_over_interleaved_rows(tiny: Path, samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "best.parquet"
    code, output, exc = run(
        str(samples), "-m", str(tiny), "--keep", "best-per-prompt", "-o", str(out), "--dtype", "fp32"
    )
    assert code == 0, (output, exc)
    rows = scored(tiny, samples)
    expected = []
    for q in range(3):
        mine = [i for i, r in enumerate(rows) if r["prompt"] == f"question {q}"]
        expected.append(max(mine, key=lambda i: (rows[i]["score"], -i)))
    kept = read_rows(out)
    assert [r["id"] for r in kept] == [rows[i]["id"] for i in sorted(expected)]
    assert {"score", "score_normalized", "precision"} <= set(kept[0])


def test_min_margin_makes_one_pair_per_prompt(tiny: Path, samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs.jsonl"
    code, output, exc = run(str(samples), "-m", str(tiny), "--min-margin", "0", "-o", str(out), "--dtype", "fp32")
    assert code == 0, (output, exc)
    rows = scored(tiny, samples)
    pairs = read_rows(out)
    assert [p["prompt"] for p in pairs] == ["question 0", "question 1", "question 2"]
    for pair in pairs:
        mine = [r for r in rows if r["prompt"] == pair["prompt"]]
        assert pair["score_chosen"] == pytest.approx(max(r["score"] for r in mine), abs=1e-6)
        assert pair["score_rejected"] == pytest.approx(min(r["score"] for r in mine), abs=1e-6)
        assert pair["margin"] == pytest.approx(pair["score_chosen"] - pair["score_rejected"])
    code, _, _ = run(str(samples), "-m", str(tiny), "--min-margin", "1000", "-o", str(out), "--dtype", "fp32")
    assert code == 0 and read_rows(out) == []  # no prompt's responses differ that much


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--keep", "top:0%"], "a percentage must be above 0"),
        ([], "give --keep RULE or --min-margin M"),
        (["--keep", "top:5", "--min-margin", "1"], "give --keep RULE or --min-margin M"),
        (["--keep", "top:5", "--engine", "spark"], "--engine must be one of local, ray"),
    ],
)
def test_option_mistakes_are_one_line(samples: Path, tmp_path: Path, args: list[str], says: str) -> None:
    code, output, exc = run(str(samples), "-m", str(tmp_path / "no-model"), "-o", str(tmp_path / "o.jsonl"), *args)
    assert isinstance(exc, UserError) and says in str(exc) and "\n" not in str(exc)
    assert not (tmp_path / "o.jsonl").exists()


def test_a_bad_row_is_found_before_the_model_loads(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "response": "r"}\n{"prompt": "p"}\n')
    code, output, exc = run(
        str(bad), "-m", str(tmp_path / "no-model"), "--keep", "top:1", "-o", str(tmp_path / "o.jsonl")
    )
    assert isinstance(exc, UserError) and str(exc).startswith(f"{bad}, line 2: expected fields prompt+response")


def test_pair_rows_have_nothing_to_filter(tiny: Path, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    code, output, exc = run(str(pairs), "-m", str(tiny), "--keep", "top:1", "-o", str(tmp_path / "o.jsonl"))
    assert isinstance(exc, UserError) and "keeps single responses" in str(exc)
    assert not (tmp_path / "o.jsonl").exists()
