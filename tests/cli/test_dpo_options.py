"""``rewardkit score`` and ``rewardkit eval`` with a DPO policy and its reference (--dpo-policy, --dpo-ref, --beta,
--dpo-average), through the real CLI on tiny GPT-2 models built from a config and saved to folders: the rows hold
the implicit reward the library computes (itself checked against a hand computation in tests/rl/test_dpo.py) and
say which reward it is; the evaluation's scores are the same rewards; mistakes are one line and write nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rk_testing.bpe import CHAT_TEMPLATE, bpe_tokenizer, tiny_lm
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.cli.output import UserError
from rewardkit.rl.dpo import DPOReward

PROMPTS = ["Hello there, what is two plus two?", "tell me about cats", "why is tea good?"]
CHOSEN = ["The answer is four.", "cats and tea, an excellent question", "tea is good"]
REJECTED = ["excellent", "why?", "Hello there"]


def save_lm(folder: Path, tokenizer: Any, seed: int) -> Path:
    tiny_lm(tokenizer, seed).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A policy and a reference: two tiny GPT-2s (different seeds) over one offline BPE tokenizer."""
    base = tmp_path_factory.mktemp("dpo")
    tokenizer = bpe_tokenizer()
    return save_lm(base / "policy", tokenizer, 1), save_lm(base / "ref", tokenizer, 2)


@pytest.fixture(scope="module")
def chat_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("dpo-chat")
    tokenizer = bpe_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    return save_lm(base / "policy", tokenizer, 1), save_lm(base / "ref", tokenizer, 2)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def user_error(*args: str) -> str:
    res = invoke(*args)
    assert isinstance(res.exception, UserError), f"exit {res.exit_code}, {res.exception!r}\n{res.output}"
    assert "\n" not in str(res.exception)
    return str(res.exception)


def dpo_args(pair: tuple[Path, Path], beta: str = "0.5") -> list[str]:
    return ["--dpo-policy", str(pair[0]), "--dpo-ref", str(pair[1]), "--beta", beta]


def library(pair: tuple[Path, Path], prompts: list[Any], responses: list[str], **options: Any) -> Any:
    return DPOReward.load(str(pair[0]), str(pair[1]), device="cpu", **options).logps(prompts, responses)


def test_score_rows_hold_the_implicit_reward_and_say_which(pair: tuple[Path, Path], tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", [{"prompt": p, "response": r} for p, r in zip(PROMPTS, CHOSEN)])
    out = tmp_path / "out.jsonl"
    res = invoke("score", str(data), "--out", str(out), *dpo_args(pair), "--json")
    assert res.exit_code == 0, res.output
    rows = read_jsonl(out)
    expected = library(pair, PROMPTS, CHOSEN, beta=0.5)
    # the reward is beta * (policy - reference) log-probs: check the parts, not only the library's own total
    np.testing.assert_allclose(
        [r["score"] for r in rows], 0.5 * (expected.policy_logps - expected.ref_logps), atol=1e-5
    )
    assert np.abs([r["score"] for r in rows]).max() > 1e-3  # two different models: a visible reward
    for row in rows:
        assert row["reward_kind"] == "dpo" and row["beta"] == 0.5 and row["dpo_normalize"] == "sum"
        assert row["score_normalized"] == row["score"] and row["precision"] == "fp32" and row["truncated"] is False
    summary = json.loads(res.stdout)
    assert summary["rows"] == 3 and summary["reward_kind"] == "dpo" and summary["beta"] == 0.5
    assert summary["dpo_policy"] == str(pair[0]) and summary["dpo_ref"] == str(pair[1])
    assert summary["model_version"].startswith("policy@") and "~ref@" in summary["model_version"]

    # --dpo-average: the same log-ratio per response token
    avg = tmp_path / "avg.jsonl"
    assert invoke("score", str(data), "--out", str(avg), *dpo_args(pair), "--dpo-average").exit_code == 0
    per_token = 0.5 * (expected.policy_logps - expected.ref_logps) / expected.response_tokens
    np.testing.assert_allclose([r["score"] for r in read_jsonl(avg)], per_token, atol=1e-6)
    assert {r["dpo_normalize"] for r in read_jsonl(avg)} == {"mean"}

    # no reference: beta * log pi(y|x), and the rows say it is reference-free
    free = tmp_path / "free.jsonl"
    assert invoke("score", str(data), "--out", str(free), "--dpo-policy", str(pair[0])).exit_code == 0
    free_rows = read_jsonl(free)
    np.testing.assert_allclose([r["score"] for r in free_rows], 0.1 * expected.policy_logps, atol=1e-5)
    assert {r["reward_kind"] for r in free_rows} == {"dpo-reference-free"} and free_rows[0]["beta"] == 0.1


def test_score_pairs_and_chat_rows(chat_pair: tuple[Path, Path], tmp_path: Path) -> None:
    """Pair rows get p_a_better = sigmoid(score_a - score_b) (DPO's Bradley-Terry model); chat rows are rendered
    with the policy's template as the library renders them."""
    rows = [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in zip(PROMPTS, CHOSEN, REJECTED)]
    out = tmp_path / "pairs.jsonl"
    res = invoke("score", str(write_jsonl(tmp_path / "p.jsonl", rows)), "--out", str(out), *dpo_args(chat_pair))
    assert res.exit_code == 0, res.output
    assert "dpo beta 0.5" in res.output
    scored = read_jsonl(out)
    a = library(chat_pair, PROMPTS, CHOSEN, beta=0.5).rewards
    b = library(chat_pair, PROMPTS, REJECTED, beta=0.5).rewards
    for row, ra, rb in zip(scored, a, b):
        assert row["score_a"] == pytest.approx(ra, abs=1e-5) and row["score_b"] == pytest.approx(rb, abs=1e-5)
        assert row["p_a_better"] == pytest.approx(1 / (1 + math.exp(rb - ra)), abs=1e-6)

    chat = [
        {"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": c}]}
        for p, c in zip(PROMPTS, CHOSEN)
    ]
    out = tmp_path / "chat.jsonl"
    res = invoke("score", str(write_jsonl(tmp_path / "c.jsonl", chat)), "--out", str(out), *dpo_args(chat_pair))
    assert res.exit_code == 0, res.output
    expected = library(chat_pair, [[{"role": "user", "content": p}] for p in PROMPTS], CHOSEN, beta=0.5).rewards
    np.testing.assert_allclose([r["score"] for r in read_jsonl(out)], expected, atol=1e-5)


def test_eval_takes_a_dpo_pair(pair: tuple[Path, Path], tmp_path: Path) -> None:
    rows = [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in zip(PROMPTS * 2, CHOSEN * 2, REJECTED * 2)]
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    out = tmp_path / "report"
    res = invoke(
        "eval", "--data", str(data), "--out", str(out), *dpo_args(pair), "--probes", "none", "--no-plots", "--json"
    )
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert report["meta"]["reward_kind"] == "dpo" and report["meta"]["beta"] == 0.5
    assert report["meta"]["model"] == str(pair[0]) and report["meta"]["dpo_ref"] == str(pair[1])
    chosen = library(pair, PROMPTS, CHOSEN, beta=0.5).rewards
    rejected = library(pair, PROMPTS, REJECTED, beta=0.5).rewards
    scores = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    np.testing.assert_allclose([s["chosen"] for s in scores], np.tile(chosen, 2), atol=1e-5)
    np.testing.assert_allclose([s["rejected"] for s in scores], np.tile(rejected, 2), atol=1e-5)
    assert report["accuracy"]["overall"]["accuracy"] == pytest.approx(float(np.mean(chosen > rejected)))


def test_a_reference_with_another_tokenizer_is_one_line(pair: tuple[Path, Path], tmp_path: Path) -> None:
    other_tokenizer = bpe_tokenizer()
    other_tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    other = save_lm(tmp_path / "other", other_tokenizer, 3)
    data = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "p", "response": "r"}])
    out = tmp_path / "out.jsonl"
    message = user_error("score", str(data), "--out", str(out), "--dpo-policy", str(pair[0]), "--dpo-ref", str(other))
    assert message.startswith(f"--dpo-ref {other}: the policy and the reference model must share one tokenizer")
    assert "different vocabularies" in message and not out.exists()
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    message = user_error(
        "eval",
        "--data",
        str(pairs),
        "--out",
        str(tmp_path / "r"),
        "--dpo-policy",
        str(pair[0]),
        "--dpo-ref",
        str(other),
    )
    assert "must share one tokenizer" in message


def test_option_mistakes_are_one_line(pair: tuple[Path, Path], tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "p", "response": "r"}])
    policy = str(pair[0])
    cases = [
        (["--beta", "0.2"], "--beta only go with --dpo-policy"),
        (["--dpo-ref", policy, "--dpo-average"], "--dpo-ref, --dpo-average only go with --dpo-policy"),
        (["--model", policy, "--dpo-policy", policy], "give one of them"),
        (["--dpo-policy", policy, "--beta", "0"], "--beta: expected a positive number, got 0.0"),
        (["--dpo-policy", policy, "--dtype", "int8"], "--dtype int8: a DPO pair scores in auto, fp32, bf16"),
        (["--dpo-policy", policy, "--aggregate", "wco"], "--aggregate wco: combines an ensemble's members"),
        (["--dpo-policy", policy, "--engine", "ray"], "--engine ray: --dpo-policy runs on the local engine only"),
        (["--dpo-policy", str(tmp_path / "nothing")], "--dpo-policy: no model at"),
        (["--dpo-policy", policy, "--dpo-ref", str(tmp_path / "nothing")], "--dpo-ref: no model at"),
    ]
    for args, expected in cases:
        out = tmp_path / "out.jsonl"
        assert expected in user_error("score", str(data), "--out", str(out), *args), args
        assert not out.exists()
