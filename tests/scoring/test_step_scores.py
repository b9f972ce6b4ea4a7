"""A process reward model's scorer: one forward pass per solution reads every step, scores do not depend on the
batch (1e-3 in fp32), and ``rewardkit score`` writes step_scores and their aggregate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.scoring.scorer import load_scorer

PROMPTS = [f"Problem {i}: start at {i}, add 3 three times." for i in range(6)]
SOLUTIONS = [
    [f"{i} plus 3 is {i + 3}", f"{i + 3} plus 3 is {i + 6 + (i % 2)}", "so the answer is " + "x " * i] for i in range(6)
]


def test_one_forward_pass_per_solution_reads_every_step(tiny_prm: Path) -> None:
    scorer = load_scorer(str(tiny_prm), dtype="fp32")
    rows_seen = []  # the embeddings run once per forward pass (either path): the rows they embed

    def count(module, args, kwargs, out):
        rows_seen.append(out.shape[0])

    hook = scorer.members[0].model.base_model.embeddings.register_forward_hook(count, with_kwargs=True)
    try:
        res = scorer.score_steps(PROMPTS, SOLUTIONS)
    finally:
        hook.remove()
    assert sum(rows_seen) == len(SOLUTIONS)  # 6 rows through the model for 18 steps: not one pass per step
    assert [len(s) for s in res.step_scores] == [3] * 6
    np.testing.assert_allclose(res.raw, [min(s) for s in res.step_scores])


def test_step_scores_do_not_depend_on_the_batch(tiny_prm: Path) -> None:
    together = load_scorer(str(tiny_prm), dtype="fp32", token_budget=4096).score_steps(PROMPTS, SOLUTIONS)
    one_by_one = load_scorer(str(tiny_prm), dtype="fp32", token_budget=64)  # every solution its own batch
    for i in range(len(PROMPTS)):
        alone = one_by_one.score_steps([PROMPTS[i]], [SOLUTIONS[i]])
        np.testing.assert_allclose(alone.step_scores[0], together.step_scores[i], atol=1e-3)
    # a response split at the separator scores as its steps do; a repeated row runs once and scores the same
    split = load_scorer(str(tiny_prm), dtype="fp32").score(PROMPTS[:2] * 2, ["\n".join(s) for s in SOLUTIONS[:2]] * 2)
    np.testing.assert_allclose(split.step_scores[0], together.step_scores[0], atol=1e-5)
    assert split.step_scores[2] == split.step_scores[0]


def test_score_command_writes_step_scores(tiny_prm: Path, tiny_model: Path, tmp_path: Path) -> None:
    rows = tmp_path / "in.jsonl"
    rows.write_text("".join(json.dumps({"prompt": p, "steps": s}) + "\n" for p, s in zip(PROMPTS, SOLUTIONS)))
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        app, ["score", str(rows), "--model", str(tiny_prm), "--out", str(out), "--step-aggregate", "product"]
    )
    assert result.exit_code == 0, result.output
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(r["step_scores"]) for r in scored] == [3] * 6
    assert all(r["step_aggregate"] == "product" for r in scored)
    np.testing.assert_allclose([r["score"] for r in scored], [np.prod(r["step_scores"]) for r in scored], rtol=1e-6)
    # steps rows with an outcome model: one line saying what is needed, nothing written
    result = CliRunner().invoke(
        app, ["score", str(rows), "--model", str(tiny_model), "--out", str(tmp_path / "o2.jsonl")]
    )
    assert result.exit_code != 0 and "need a process reward model" in str(result.exception)
    assert not (tmp_path / "o2.jsonl").exists()


@pytest.mark.parametrize("bad", [{"prompt": "p", "steps": []}, {"prompt": "p", "steps": ["a", 3]}])
def test_bad_steps_rows_name_the_row(bad: dict, tiny_prm: Path, tmp_path: Path) -> None:
    rows = tmp_path / "in.jsonl"
    rows.write_text(json.dumps({"prompt": "q", "steps": ["ok"]}) + "\n" + json.dumps(bad) + "\n")
    result = CliRunner().invoke(app, ["score", str(rows), "--model", str(tiny_prm), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code != 0 and "line 2: field 'steps'" in str(result.exception)


def test_the_last_layer_at_step_tokens_only_equals_the_full_forward(tiny_prm: Path) -> None:
    import torch

    from rewardkit.model.formatting import collate
    from rewardkit.model.steps import fast_step_model, gather_positions, logits_at_steps, step_logits

    scorer = load_scorer(str(tiny_prm), dtype="fp32")
    model = scorer.members[0].model
    assert fast_step_model(model) is not None  # a BERT token classifier takes the shortcut
    enc = scorer.encode(PROMPTS, SOLUTIONS)
    batch = collate(enc, list(range(len(PROMPTS))), scorer.tokenizer.pad_token_id)  # padded rows of unequal length
    with torch.no_grad():
        full = gather_positions(step_logits(model(**batch).logits.float()), enc.step_positions)
        fast = logits_at_steps(model, batch, enc.step_positions)
    for a, b in zip(full, fast):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
