"""The batch scorer: packing, order, batch-invariance, truncation flags, normalization, pairs, files, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rk_testing.tiny_models import build_tiny_model

from rewardkit.model.calibration import p_better  # noqa: E402
from rewardkit.scoring.files import score_rows  # noqa: E402
from rewardkit.scoring.rows import InputError, read_rows  # noqa: E402
from rewardkit.scoring.scorer import DEFAULT_TOKEN_BUDGET, BatchScorer, load_scorer, pack_batches  # noqa: E402
from rewardkit.scoring.writers import write_rows  # noqa: E402


@pytest.fixture(scope="module")
def scorer(tiny_model: Path) -> BatchScorer:
    return load_scorer(str(tiny_model), dtype="fp32")


def test_pack_batches_respects_token_budget_and_covers_every_row() -> None:
    lengths = [10, 50, 20, 50, 5, 30, 200]
    batches = pack_batches(lengths, token_budget=100)
    assert sorted(i for b in batches for i in b) == list(range(7))
    # hand-worked: longest first -> [200] alone (over budget, never dropped), [50, 50], [30, 20, 10], [5]
    assert batches == [[6], [1, 3], [5, 2, 0], [4]]
    for b in batches[1:]:
        assert len(b) * max(lengths[i] for i in b) <= 100


def test_p_better_is_sigmoid_of_scaled_difference() -> None:
    assert p_better(1.0, 1.0, 2.0) == 0.5
    assert math.isclose(float(p_better(3.0, 1.0, 2.0)), 1 / (1 + math.exp(-1)), rel_tol=1e-12)


def test_batch_invariance_within_1e3(scorer: BatchScorer) -> None:
    """The same row alone, inside batches of different composition and padding width, gives one score."""
    target = ("Explain photosynthesis briefly.", "Plants turn light, water and CO2 into sugar and oxygen.")
    alone = scorer.score([target[0]], [target[1]]).raw[0]
    rng = np.random.default_rng(0)
    for trial in range(3):
        others = [
            ("q " * int(rng.integers(1, 60)), "a " * int(rng.integers(1, 60))) for _ in range(int(rng.integers(3, 20)))
        ]
        rows = others[:]
        pos = int(rng.integers(0, len(rows) + 1))
        rows.insert(pos, target)
        scorer.token_budget = [256, 1024, 100_000][trial]  # different batch compositions
        res = scorer.score([p for p, _ in rows], [r for _, r in rows])
        assert abs(res.raw[pos] - alone) < 1e-3
    scorer.token_budget = DEFAULT_TOKEN_BUDGET


def test_embedding_norm_is_the_norm_of_what_the_head_reads(scorer: BatchScorer) -> None:
    """The drift feature: for BERT the head reads the pooled [CLS] vector; the hook's norm equals it computed by
    hand, and like the score it does not depend on the batch around the row."""
    import torch

    from rewardkit.model.formatting import collate

    prompts, responses = ["Explain photosynthesis.", "hi"], ["Plants make sugar from light.", "hello " * 30]
    res = scorer.score(prompts, responses)
    enc = scorer.encode(prompts, responses)
    model = scorer.members[0].model
    with torch.inference_mode():
        pooled = model.bert(**collate(enc, [0, 1], scorer.tokenizer.pad_token_id)).pooler_output
    assert res.embedding_norm is not None
    np.testing.assert_allclose(res.embedding_norm, pooled.norm(dim=-1).numpy(), rtol=1e-4)
    alone = scorer.score(prompts[:1], responses[:1]).embedding_norm
    assert abs(alone[0] - res.embedding_norm[0]) < 1e-3


def test_read_position_norms_reads_where_the_head_reads() -> None:
    import torch

    from rewardkit.scoring.head_norms import read_position_norms

    hidden = torch.zeros(2, 3, 2)
    hidden[0, 0] = torch.tensor([6.0, 8.0])  # position 0 of row 0: norm 10
    hidden[0, 1] = torch.tensor([3.0, 4.0])  # row 0: tokens 7, 2 then pad 0 -> last real token at 1, norm 5
    hidden[1, 2] = torch.tensor([0.0, 2.0])  # row 1: three real tokens -> position 2, norm 2
    ids = torch.tensor([[7, 2, 0], [5, 6, 9]])
    assert read_position_norms(hidden, ids, pad_id=0, reads_last=True).tolist() == [5.0, 2.0]
    # pad == eos (id 2): row 0 is [7, eos] padded with eos; transformers reads the rightmost token that is not
    # the pad id, position 0, so the norm must come from there too
    assert read_position_norms(hidden, torch.tensor([[7, 2, 2], [5, 6, 9]]), pad_id=2, reads_last=True).tolist() == [
        10.0,
        2.0,
    ]
    # an encoder head that reads position 0 itself (RoBERTa-style [B, T, H] input)
    assert read_position_norms(hidden, ids, pad_id=0, reads_last=False).tolist() == [10.0, 0.0]
    assert read_position_norms(torch.tensor([[3.0, 4.0]]), ids[:1], 0, reads_last=False).tolist() == [
        5.0
    ]  # pooled [B, H]


def test_no_embedding_norm_when_the_head_is_not_found(scorer: BatchScorer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Better no drift feature than zeros that would read as 'no shift' (BART's head is .classification_head,
    which rewardkit does not look for: simulated by a lookup that finds nothing)."""
    import rewardkit.scoring.head_norms as score_module

    def no_head(model: object) -> str:
        raise ValueError("no scalar head found")

    monkeypatch.setattr(score_module, "head_module_name", no_head)
    result = scorer.score(["q", "another q"], ["a", "b"])
    assert result.embedding_norm is None
    assert np.isfinite(result.raw).all()


def test_input_order_restored_and_truncation_flagged(scorer: BatchScorer) -> None:
    prompts = ["short", "long " * 300, "mid " * 20]
    responses = ["a", "b", "c " * 10]
    res = scorer.score(prompts, responses)
    assert res.truncated == [False, True, False]
    singles = [scorer.score([p], [r]).raw[0] for p, r in zip(prompts, responses)]
    np.testing.assert_allclose(res.raw, singles, atol=1e-4)
    np.testing.assert_allclose(res.normalized, (res.raw - 0.5) / 2.0, atol=1e-9)  # card mean 0.5, std 2
    assert res.std is None and res.model_version.startswith("tiny")


def test_a_repeated_model_input_runs_once(scorer: BatchScorer) -> None:
    """Repeats, and texts that differ only past the truncation point, share one forward pass and one score;
    the progress callback still counts every row."""
    long = "word " * 400  # far past the tiny model's max_length: what is appended to it is never seen
    prompts = ["Q1", "Q2", "Q1", "Q1", "Q1"]
    responses = ["short answer", "other", "short answer", long, long + " This is an excellent answer."]
    member = scorer.members[0]
    ran: list[int] = []
    original = member.forward

    def counting(batch: dict) -> Any:
        ran.append(batch["input_ids"].shape[0])
        return original(batch)

    member.forward = counting  # type: ignore[method-assign]
    done: list[int] = []
    try:
        res = scorer.score(prompts, responses, on_batch=done.append)
    finally:
        del member.forward
    assert sum(ran) == 3 and sum(done) == 5
    assert res.raw[0] == res.raw[2] and res.raw[3] == res.raw[4]
    assert res.truncated == [False, False, False, True, True]
    separately = [scorer.score([p], [r]).raw[0] for p, r in zip(prompts, responses)]
    np.testing.assert_allclose(res.raw, separately, atol=1e-5)
    assert res.embedding_norm is not None and res.embedding_norm[3] == res.embedding_norm[4]


def test_score_rows_pairs_messages_and_errors(scorer: BatchScorer) -> None:
    pairs = score_rows(scorer, [{"prompt": "p", "response_a": "good answer", "response_b": "bad"}])
    (row,) = pairs
    assert math.isclose(row["p_a_better"], 1 / (1 + math.exp(-(row["score_a"] - row["score_b"]) / 2.0)), rel_tol=1e-9)
    chosen = score_rows(scorer, [{"prompt": "p", "chosen": "good answer", "rejected": "bad"}])[0]
    assert math.isclose(chosen["score_a"], row["score_a"], abs_tol=1e-6)
    chat = score_rows(
        scorer, [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}]
    )
    plain = score_rows(scorer, [{"prompt": [{"role": "user", "content": "hi"}], "response": "yo"}])
    assert math.isclose(chat[0]["score"], plain[0]["score"], abs_tol=1e-6)
    with pytest.raises(InputError, match="row 1: expected fields"):
        score_rows(scorer, [{"text": "x"}])
    with pytest.raises(InputError, match="row 2: all rows must have the same shape"):
        score_rows(scorer, [{"prompt": "p", "response": "r"}, {"messages": [{"role": "assistant", "content": "x"}]}])
    with pytest.raises(InputError, match="last message must be the assistant"):
        score_rows(scorer, [{"messages": [{"role": "user", "content": "x"}]}])
    with pytest.raises(InputError, match="row 1: 'messages' is text but not JSON"):  # a CSV cell
        score_rows(scorer, [{"messages": "[{'role': 'user'}"}])
    # pairs also carry normalized scores; the pair columns are the ones a row has both of
    assert row["score_a_normalized"] == pytest.approx(
        (row["score_a"] - scorer.card.reward_mean) / scorer.card.reward_std
    )
    mixed = score_rows(scorer, [{"prompt": "p", "response_a": "stray", "chosen": "good answer", "rejected": "bad"}])[0]
    assert mixed["score_a"] == pytest.approx(chosen["score_a"], abs=1e-6)
    # a chat prompt written to CSV as JSON reads back as messages
    as_cell = score_rows(scorer, [{"prompt": json.dumps([{"role": "user", "content": "hi"}]), "response": "yo"}])
    assert as_cell[0]["score"] == pytest.approx(plain[0]["score"], abs=1e-6)


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_files_round_trip(scorer: BatchScorer, tmp_path: Path, suffix: str) -> None:
    rows = [{"prompt": f"question {i}", "response": "answer " * i} for i in range(1, 6)]
    src, out = tmp_path / f"in.{suffix}", tmp_path / f"out.{suffix}"
    write_rows(rows, src)
    scored = score_rows(scorer, read_rows(src))
    write_rows(scored, out)
    back = read_rows(out)
    assert [r["prompt"] for r in back] == [r["prompt"] for r in rows]
    direct = scorer.score([r["prompt"] for r in rows], [r["response"] for r in rows]).raw
    np.testing.assert_allclose([float(r["score"]) for r in back], direct, atol=1e-5)
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind


def test_score_cli(tmp_path: Path, scorer: BatchScorer) -> None:
    from typer.testing import CliRunner

    from rewardkit.cli.main import app

    model = tmp_path / "m"
    build_tiny_model(model)
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps({"prompt": "p", "response": f"r{i}"}) for i in range(4)) + "\n")
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(
        app, ["score", str(src), "--model", str(model), "--out", str(out), "--dtype", "fp32", "--json"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["rows"] == 4 and summary["dtype"] == "float32" and summary["truncated_rows"] == 0
    assert summary["precision"] == "fp32"
    written = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["response"] for r in written] == [f"r{i}" for i in range(4)]
    assert {r["precision"] for r in written} == {"fp32"}  # each row says what its score was computed in
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": 1}\n')
    res = CliRunner().invoke(app, ["score", str(bad), "--model", str(model), "--dtype", "fp32"])
    assert res.exit_code != 0 and "expected fields" in str(res.exception)
    # mistakes in the options are found before the model loads or anything is scored
    res = CliRunner().invoke(app, ["score", str(src), "--model", str(model), "--out", str(tmp_path / "o.txt")])
    assert res.exit_code != 0 and "unknown output format" in str(res.exception) and not (tmp_path / "o.txt").exists()
    res = CliRunner().invoke(app, ["score", str(src), "--model", str(model), "--device", "gpu"])
    assert res.exit_code != 0 and "--device" in str(res.exception)
    gz = tmp_path / "out.jsonl.gz"
    assert (
        CliRunner()
        .invoke(app, ["score", str(src), "--model", str(model), "--out", str(gz), "--dtype", "fp32"])
        .exit_code
        == 0
    )
    assert len(read_rows(gz)) == 4


def build_ensemble(folder: Path, top: dict[str, Any], stats: list[tuple[float, float]]) -> Path:
    """Three tiny members (seeds 10-12) with reference (mean, std) ``stats[i]``, under an ensemble card ``top``."""
    for i, (mean, std) in enumerate(stats):
        build_tiny_model(folder / f"member_{i}", seed=10 + i, mean=mean, std=std)
    (folder / "rewardkit.json").write_text(
        json.dumps({"max_length": 128, **top, "members": [f"member_{i}" for i in range(len(stats))]})
    )
    return folder


def test_ensemble_members_are_standardized_before_mean_and_std(tmp_path: Path) -> None:
    stats = [(0.5, 2.0), (-1.0, 4.0), (3.0, 0.5)]
    top = {"temperature": 0.7, "reward_mean": 0.2, "reward_std": 0.6, "member_scale": "standardized"}
    ens = load_scorer(str(build_ensemble(tmp_path / "ens", top, stats)), dtype="fp32")
    assert len(ens.members) == 3 and ens.member_stats == tuple(stats)
    prompts, responses = ["q1", "q2 " * 5], ["a", "b " * 7]
    res = ens.score(prompts, responses)
    raw = np.stack(
        [
            load_scorer(str(tmp_path / "ens" / f"member_{i}"), dtype="fp32").score(prompts, responses).raw
            for i in range(3)
        ]
    )
    z = (raw - np.array([[m] for m, _ in stats])) / np.array([[s] for _, s in stats])  # each on its own scale
    np.testing.assert_allclose(res.raw, z.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(res.std, z.std(axis=0), atol=1e-5)
    assert (res.std > 0).all()
    # normalized with the ENSEMBLE's card, and the std in the same units
    np.testing.assert_allclose(res.normalized, (z.mean(axis=0) - 0.2) / 0.6, atol=1e-5)
    np.testing.assert_allclose(res.normalized_std, z.std(axis=0) / 0.6, atol=1e-5)
    assert ens.card.temperature == 0.7  # the ensemble's T, not member 0's 2.0
    # the rows the service batches go through the same member scale
    np.testing.assert_allclose(ens.score_encoded(ens.encode(prompts, responses)), z, atol=1e-5)
    # conservative aggregates of the same standardized members: UWO = mean - lambda * std, WCO = the lowest member
    wco = ens.aggregated(res, "wco")
    np.testing.assert_allclose(wco.raw, z.min(axis=0), atol=1e-5)
    np.testing.assert_allclose(wco.normalized, (z.min(axis=0) - 0.2) / 0.6, atol=1e-5)
    uwo = ens.aggregated(res, "uwo", 0.25)
    np.testing.assert_allclose(uwo.raw, z.mean(axis=0) - 0.25 * z.std(axis=0), atol=1e-5)
    np.testing.assert_allclose(uwo.normalized, res.normalized - 0.25 * res.normalized_std, atol=1e-5)
    assert uwo.std is res.std and (wco.raw < res.raw).all()
    with pytest.raises(ValueError, match="re-aggregate a wco result"):
        ens.aggregated(wco, "uwo")
    # the same chosen at load: what LocalBackend (TRL, verl) and the CLI get
    ens_wco = load_scorer(str(tmp_path / "ens"), dtype="fp32", aggregate="wco")
    np.testing.assert_allclose(ens_wco.score(prompts, responses).raw, z.min(axis=0), atol=1e-5)


def test_members_identical_but_for_a_head_bias_have_zero_std(tmp_path: Path) -> None:
    import torch

    from rewardkit.model.card import RewardCard
    from rewardkit.model.loading import load_reward_model

    folder = tmp_path / "ens"
    rm = load_reward_model(build_tiny_model(folder / "member_0", mean=0.5, std=2.0))
    with torch.no_grad():
        rm.model.classifier.bias += 3.0
    rm.card = RewardCard(max_length=128, temperature=2.0, reward_mean=3.5, reward_std=2.0)  # its stats move with it
    rm.save(folder / "member_1")
    (folder / "rewardkit.json").write_text(
        json.dumps({"max_length": 128, "members": ["member_0", "member_1"], "member_scale": "standardized"})
    )
    res = load_scorer(str(folder), dtype="fp32").score(["q1", "q2"], ["a", "b " * 7])
    assert np.abs(res.std).max() < 1e-5 and np.abs(res.normalized_std).max() < 1e-5  # on raw rewards: 1.5 each


def test_an_ensemble_saved_before_its_own_calibration_scores_with_the_fallback(tmp_path: Path) -> None:
    # the old layout: the top card is member 0's plus members (T 2, mean 0.5, std 2, no member_scale)
    top = {"temperature": 2.0, "reward_mean": 0.5, "reward_std": 2.0}
    ens = load_scorer(str(build_ensemble(tmp_path / "old", top, [(0.5, 2.0), (0.5, 2.0)])), dtype="fp32")
    # T: the members' T / reward_std = 2 / 2 = 1; the ensemble score is not normalized further
    assert (ens.card.temperature, ens.card.reward_mean, ens.card.reward_std) == (1.0, 0.0, 1.0)
    res = ens.score(["q"], ["a"])
    assert res.normalized.tolist() == res.raw.tolist()


def test_a_single_model_has_no_member_spread(scorer: BatchScorer) -> None:
    res = scorer.score(["q"], ["a"])
    assert res.std is None and res.normalized_std is None and scorer.member_stats == ()
    # mean, UWO and WCO of one model are all its score
    for agg in ("uwo", "wco"):
        assert scorer.aggregated(res, agg, 1.0).raw.tolist() == res.raw.tolist()


def test_int8_is_opt_in_and_quantizes_a_copy(tmp_path: Path) -> None:
    """dtype="int8" swaps the body's Linears of a copy for Int8Linear (pooler and head stay fp32); the scores
    stay close to fp32, the fp32 scorer is untouched, and "auto" never picks int8."""
    import torch

    from rewardkit.model.int8 import Int8Linear

    folder = build_tiny_model(tmp_path / "tiny")
    fp32 = load_scorer(str(folder), dtype="fp32")
    q = load_scorer(str(folder), dtype="int8")
    assert q.dtype == torch.qint8
    model = q.members[0].model
    body_linears = [
        n
        for n, m in model.base_model.named_modules()
        if isinstance(m, (torch.nn.Linear, Int8Linear)) and not n.startswith("pooler")
    ]
    assert body_linears and all(isinstance(model.base_model.get_submodule(n), Int8Linear) for n in body_linears)
    assert type(model.classifier) is torch.nn.Linear and type(model.base_model.pooler.dense) is torch.nn.Linear
    prompts, responses = ["Say hi."] * 4, ["hi", "hello there", "no", "greetings to you"]
    a, b = fp32.score(prompts, responses).raw, q.score(prompts, responses).raw
    assert np.all(np.isfinite(b)) and np.max(np.abs(a - b) / np.abs(a)) < 0.1
    assert load_scorer(str(folder), dtype="auto").dtype in (torch.float32, torch.bfloat16)


def test_bf16_asked_for_is_what_runs(tmp_path: Path) -> None:
    """dtype="bf16" casts the weights (it used to only set the label) and scores stay close to fp32."""
    import torch

    folder = build_tiny_model(tmp_path / "tiny")
    fp32, bf16 = load_scorer(str(folder), dtype="fp32"), load_scorer(str(folder), dtype="bf16")
    assert bf16.dtype == torch.bfloat16 and next(bf16.members[0].model.parameters()).dtype == torch.bfloat16
    prompts, responses = ["Say hi."] * 3, ["hi", "hello there", "greetings to you"]
    a, b = fp32.score(prompts, responses).raw, bf16.score(prompts, responses).raw
    assert not np.array_equal(a, b) and np.allclose(a, b, atol=0.05 * np.abs(a).max())


def test_int8_merges_lora_adapters_first(tmp_path: Path) -> None:
    """An in-memory peft model: its adapters are merged before the Linears are swapped (swapping a LoRA layer's
    own Linears one by one broke its forward), and the scores follow the adapted model, not the bare base."""
    import torch
    from peft import LoraConfig, get_peft_model

    from rewardkit.scoring.precision import quantize_int8

    folder = build_tiny_model(tmp_path / "tiny")
    scorer = load_scorer(str(folder), dtype="fp32")
    prompts, responses = ["Say hi."] * 4, ["hi", "hello there", "no", "greetings to you"]
    base = scorer.score(prompts, responses).raw
    member = scorer.members[0]
    member.model = get_peft_model(member.model, LoraConfig(r=4, target_modules=["query", "value"], lora_alpha=8))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in member.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # peft starts B at 0 (adapter = identity): give it an effect
    adapted = scorer.score(prompts, responses).raw
    assert quantize_int8(scorer) == torch.qint8
    q = scorer.score(prompts, responses).raw
    assert np.abs(q - adapted).max() < 0.5 * np.abs(adapted - base).max()


def test_int8_weights_cannot_saturate_the_int16_pair_sums() -> None:
    """The worst case for fbgemm's AVX2 kernel: every input at the top of its uint8 range times every weight at
    WEIGHT_MAX, same sign. 2 * 255 * 63 fits in int16, so the result is exact to rounding (full-range 127
    weights gave ~49% error here on an AVX2 CPU without VNNI)."""
    import torch

    from rewardkit.model.int8 import Int8Linear

    lin = torch.nn.Linear(256, 4, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    x = torch.ones(3, 256)
    x[:, 0] = 0.0  # the range [0, 1]: every other input quantizes to 255
    want = lin(x).detach()
    assert torch.allclose(Int8Linear(lin)(x), want, rtol=1e-2)


def test_the_scorer_gives_freed_heap_back_every_few_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """25 one-row batches (rows cut to a 16-token budget) -> 2 trims; the count runs on across calls."""
    import rewardkit.scoring.scorer as score_module

    calls: list[int] = []
    monkeypatch.setattr(score_module, "release_free_heap", lambda: calls.append(1) or True)
    scorer = load_scorer(str(build_tiny_model(tmp_path / "tiny")), dtype="fp32", max_length=16, token_budget=16)
    scorer.score(["q"] * 25, [f"long answer {i} " * 20 for i in range(25)])  # distinct: repeats run once
    assert len(calls) == 25 // score_module.TRIM_HEAP_EVERY
    scorer.score(["q"] * 5, [f"other answer {i} " * 20 for i in range(5)])
    assert len(calls) == 30 // score_module.TRIM_HEAP_EVERY


def test_int8_linear_keeps_one_weight_scale_per_output_row() -> None:
    """Rows of very different size (x1000 and x0.001): with one scale per matrix the small row's weights
    all round to 0 (step 1000/127, while they are about 0.001); per-row scales keep both rows within a few percent."""
    import torch

    from rewardkit.model.int8 import Int8Linear

    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 2)
    with torch.no_grad():
        lin.weight[0] *= 1000
        lin.weight[1] *= 0.001
        lin.bias.zero_()
    x = torch.randn(16, 64)
    want, got = lin(x).detach(), Int8Linear(lin)(x)
    rel = ((got - want).abs() / want.abs().mean(dim=0)).amax(dim=0)
    assert rel[0] < 0.06 and rel[1] < 0.06, rel
    per_tensor = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear}, dtype=torch.qint8)
    assert per_tensor(x)[:, 1].abs().max() == 0  # what the one-scale recipe does to the small row


def test_decoder_scores_and_norms_are_read_at_the_last_real_token() -> None:
    """A GPT-2-style model (pad == eos, as ensure_pad_token sets it): rewardkit's scores equal plain
    transformers' on each row alone, and the embedding norm is that of the hidden state HF reads the reward at."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2ForSequenceClassification, PreTrainedTokenizerFast

    from rewardkit.model.backbone import align_pad_token
    from rewardkit.model.card import RewardCard
    from rewardkit.model.formatting import ensure_pad_token
    from rewardkit.model.reward_model import RewardModel

    words = ["<unk>", "<s>", "</s>"] + "hello world what is two plus four assistant : user the answer".split()
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    ensure_pad_token(tokenizer)
    torch.manual_seed(0)
    model = GPT2ForSequenceClassification(
        GPT2Config(vocab_size=len(words), n_embd=16, n_layer=2, n_head=2, n_positions=64, num_labels=1)
    ).eval()
    align_pad_token(model, tokenizer)
    scorer = BatchScorer([RewardModel(model, tokenizer, RewardCard(max_length=32))], max_length=32)
    prompts = ["what is two plus two", "hello", "the answer is"]
    responses = ["four", "hello world what is the answer", "four plus four"]
    res = scorer.score(prompts, responses)  # one padded batch of three different lengths
    enc = scorer.encode(prompts, responses)
    for i in range(3):
        ids = torch.tensor([enc.input_ids[i]])
        with torch.inference_mode():
            alone = model(input_ids=ids).logits[0, 0].item()
            hidden = model.transformer(input_ids=ids).last_hidden_state[0, -1]
        assert abs(res.raw[i] - alone) < 1e-4
        assert res.embedding_norm is not None and abs(res.embedding_norm[i] - hidden.norm().item()) < 1e-4

    # GPT-2's body is Conv1D, not nn.Linear: int8 has nothing to quantize, says so and stays fp32 (not a
    # "qint8" label on fp32 scores)
    from rewardkit.scoring.precision import quantize_int8

    assert quantize_int8(scorer) == torch.float32 and scorer.dtype == torch.float32
    np.testing.assert_allclose(scorer.score(prompts, responses).raw, res.raw, atol=1e-6)
