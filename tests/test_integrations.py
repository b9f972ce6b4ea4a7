"""The RL adapters, called exactly as their libraries call them.

TRL 1.16 ``GRPOTrainer._calculate_rewards``: ``reward_func(prompts=..., completions=..., completion_ids=...,
**reward_kwargs)`` where reward_kwargs are the dataset's extra columns plus ``trainer_state``; the name
comes from ``trl.trainer.utils.get_callable_name``. verl's reward manager:
``compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)``.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from rk_testing.bpe import CHAT_TEMPLATE, bpe_tokenizer
from rk_testing.server import running_server

from rewardkit.integrations import verl  # noqa: E402
from rewardkit.integrations.trl import RewardkitReward  # noqa: E402
from rewardkit.scoring.scorer import load_scorer  # noqa: E402
from rewardkit.serve import ServeSettings  # noqa: E402


@pytest.fixture(scope="module")
def model(tiny_model: Path) -> Path:
    return tiny_model


@pytest.fixture(scope="module")
def url(model: Path) -> Iterator[str]:
    with running_server(ServeSettings(model_path=str(model), dtype="fp32", api_keys=[])) as base:
        yield base


def test_trl_grpo_reward_func_local_and_remote(model: Path, url: str) -> None:
    from trl.trainer.utils import get_callable_name, is_async_callable

    prompts = ["What is 2+2?", "What is 2+2?", "Name a colour."]
    completions = ["4", "It is five.", "Blue."]
    completion_ids = [[1, 2], [3, 4, 5], [6]]
    expected = load_scorer(str(model), dtype="fp32").score(prompts, completions).raw
    for func in (RewardkitReward(model=str(model)), RewardkitReward(url=url)):
        assert get_callable_name(func) == "rewardkit" and not is_async_callable(func)
        out = func(
            prompts=prompts,
            completions=completions,
            completion_ids=completion_ids,
            answer=["4", "4", "blue"],
            trainer_state=None,
        )
        assert len(out) == 3 and all(isinstance(x, float) for x in out)
        assert all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip(out, expected))
        # picklable after use (a loaded model / an open HTTP client are left behind), and the copy works
        copy = pickle.loads(pickle.dumps(func))
        assert copy(prompts=prompts, completions=completions) == pytest.approx(out, abs=1e-6)
    # conversational format: prompt messages, completion = [assistant message]
    conv = RewardkitReward(model=str(model))(
        prompts=[[{"role": "user", "content": "Name a colour."}]],
        completions=[[{"role": "assistant", "content": "Blue."}]],
        completion_ids=[[6]],
    )
    flat = load_scorer(str(model), dtype="fp32").score([[{"role": "user", "content": "Name a colour."}]], ["Blue."]).raw
    assert math.isclose(conv[0], flat[0], abs_tol=1e-5)


def test_verl_compute_score(model: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = load_scorer(str(model), dtype="fp32").score(["What is 2+2?"], ["4"]).raw[0]
    for env in ({"RK_REWARD_MODEL": str(model)}, {"RK_REWARD_URL": url}):
        monkeypatch.delenv("RK_REWARD_MODEL", raising=False)
        monkeypatch.delenv("RK_REWARD_URL", raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        verl.reset()
        got = verl.compute_score(
            data_source="gsm8k", solution_str="4", ground_truth="4", extra_info={"prompt": "What is 2+2?", "index": 0}
        )
        assert isinstance(got, float) and math.isclose(got, expected, abs_tol=1e-4)
        # BatchRewardManager: keyword arguments holding numpy object arrays of one batch
        infos = np.array([{"prompt": "What is 2+2?"}, {"question": "What is 2+2?"}, None], dtype=object)
        batch = verl.compute_score_batch(
            data_sources=np.array(["gsm8k"] * 3, dtype=object),
            solution_strs=np.array(["4", "4", "4"], dtype=object),
            ground_truths=np.array(["4"] * 3, dtype=object),
            extra_infos=infos,
        )
        alone = verl.compute_score("gsm8k", "4", "4", None)
        assert all(isinstance(x, float) for x in batch)
        np.testing.assert_allclose(batch, [expected, expected, alone], atol=1e-4)
    monkeypatch.delenv("RK_REWARD_URL")
    verl.reset()
    with pytest.raises(ValueError, match="RK_REWARD_URL"):
        verl.compute_score("d", "s", None)
    verl.reset()


def _call_with_kwargs(raw_fn, extra_kwargs, *args, **kwargs):  # type: ignore[no-untyped-def]
    """verl's wrapper around a custom reward function (verl/trainer/ppo/reward.py): the config's
    ``custom_reward_function.reward_kwargs`` merged into every call, taking precedence."""
    merged_kwargs = {**kwargs, **extra_kwargs}
    return raw_fn(*args, **merged_kwargs)


def test_verl_calls_with_its_extra_keyword_arguments(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from functools import partial

    monkeypatch.delenv("RK_REWARD_URL", raising=False)
    monkeypatch.setenv("RK_REWARD_MODEL", str(model))
    verl.reset()
    expected = load_scorer(str(model), dtype="fp32").score(["What is 2+2?"] * 2, ["4", "5"]).raw
    # get_custom_reward_fn: partial(_call_with_kwargs, raw_fn, reward_kwargs) with the config's reward_kwargs
    reward_kwargs = {"overlong_penalty": None, "max_resp_len": 512}
    single = partial(_call_with_kwargs, verl.compute_score, reward_kwargs)
    # the reward loop's RewardLoopManagerBase.run_single adds the router address and the RM's tokenizer
    got = single(
        data_source="gsm8k",
        solution_str="4",
        ground_truth="4",
        extra_info={"prompt": "What is 2+2?"},
        reward_router_address=None,
        reward_model_tokenizer=None,
    )
    assert math.isclose(got, expected[0], abs_tol=1e-4)
    # BatchRewardManager.verify: keyword arguments, plus its self.reward_kwargs
    batch = partial(_call_with_kwargs, verl.compute_score_batch, reward_kwargs)
    infos = np.array([{"prompt": "What is 2+2?", "rollout_reward_scores": {}}] * 2, dtype=object)
    out = batch(
        data_sources=np.array(["gsm8k"] * 2, dtype=object),
        solution_strs=["4", "5"],
        ground_truths=["4", "4"],
        extra_infos=infos,
        reward_router_address="127.0.0.1:9000",
    )
    np.testing.assert_allclose(out, expected, atol=1e-4)
    # verl's offline scoring script passes data_sources=None
    assert verl.compute_score_batch(
        data_sources=None, solution_strs=["4"], ground_truths=None, extra_infos=[{"prompt": "What is 2+2?"}]
    ) == pytest.approx([expected[0]], abs=1e-4)
    verl.reset()


def test_request_plan_by_count_and_bytes() -> None:
    from rewardkit.integrations.backend import BODY_OVERHEAD, plan_requests

    limit = BODY_OVERHEAD + 36  # bodies with room for 36 bytes of items
    assert plan_requests([10, 10, 10, 10], max_items=3, max_bytes=limit) == [range(0, 3), range(3, 4)]  # by count
    assert plan_requests([20, 10, 6, 1], max_items=10, max_bytes=limit) == [range(0, 3), range(3, 4)]  # 20+10+6 = 36
    assert plan_requests([20, 10, 7], max_items=10, max_bytes=limit) == [range(0, 2), range(2, 3)]  # 37 > 36
    assert plan_requests([50, 5, 5], max_items=10, max_bytes=limit) == [range(0, 1), range(1, 3)]  # too big: alone
    assert plan_requests([], max_items=3, max_bytes=limit) == []


def test_remote_reward_func_splits_a_long_completion_batch_to_the_body_limit(model: Path) -> None:
    # a GRPO step of long reasoning traces: few enough completions for one request by count, too many bytes
    prompts = ["Solve: 2+2"] * 12
    completions = [f"Step {i}: let me think. " * 150 for i in range(12)]  # ~3,600 characters each, ~44 KB in all
    expected = load_scorer(str(model), dtype="fp32").score(prompts, completions).raw
    settings = ServeSettings(model_path=str(model), dtype="fp32", api_keys=[], max_body_bytes=16_384)
    with running_server(settings) as base:
        func = RewardkitReward(url=base)
        out = func(prompts=prompts, completions=completions, completion_ids=None, trainer_state=None)
        assert func.backend.max_body_bytes == 16_384  # read from /info
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_remote_reward_func_splits_a_batch_to_the_services_limit(model: Path) -> None:
    prompts, completions = ["What is 2+2?"] * 5, ["4", "5", "four", "It is 4.", "no idea"]
    expected = load_scorer(str(model), dtype="fp32").score(prompts, completions).raw
    with running_server(
        ServeSettings(model_path=str(model), dtype="fp32", api_keys=[], max_inputs_per_request=2)
    ) as base:
        out = RewardkitReward(url=base)(prompts=prompts, completions=completions)  # 3 requests of <= 2 (from /info)
    np.testing.assert_allclose(out, expected, atol=1e-4)


class _Recording(RewardkitReward):
    """The adapter as TRL gets it, keeping what each call received and returned."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.calls: list[tuple[list, list, list[float]]] = []

    def __call__(self, prompts, completions, completion_ids=None, **columns):  # type: ignore[no-untyped-def]
        out = super().__call__(prompts, completions, completion_ids, **columns)
        self.calls.append((list(prompts), list(completions), out))
        return out


@pytest.mark.slow
@pytest.mark.parametrize("conversational", [False, True])
def test_a_real_grpo_run_trains_on_the_served_rewards(
    model: Path, url: str, tmp_path: Path, conversational: bool
) -> None:
    """TRL's own GRPOTrainer (not a stand-in for its call): a tiny GPT-2 policy, two steps, rewards from the
    real service. Each reward it got is the model's score of what the policy generated, TRL logs those
    rewards under the adapter's name, and the policy's weights move."""
    pytest.importorskip("trl")
    import torch
    from datasets import Dataset
    from transformers import GPT2Config, GPT2LMHeadModel
    from trl import GRPOConfig, GRPOTrainer

    tokenizer = bpe_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    policy = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer),
            n_embd=32,
            n_layer=2,
            n_head=2,
            n_positions=128,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    before = [p.detach().clone() for p in policy.parameters()]
    questions = ["What is two plus two?", "Tell me about cats.", "Why tea?", "Hello there"]
    prompts = [[{"role": "user", "content": q}] for q in questions] if conversational else questions
    reward = _Recording(url=url)
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        max_steps=2,
        learning_rate=1e-3,
        use_cpu=True,
        bf16=False,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        seed=0,
        disable_tqdm=True,
    )
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=[reward],
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_dict({"prompt": prompts}),
    )
    trainer.train()

    assert len(reward.calls) == 2  # one generation batch a step
    scorer = load_scorer(str(model), dtype="fp32")
    logged = [h["rewards/rewardkit/mean"] for h in trainer.state.log_history if "rewards/rewardkit/mean" in h]
    assert len(logged) == 2
    for (got_prompts, completions, out), mean in zip(reward.calls, logged):
        assert len(out) == len(completions) == 4 and all(isinstance(x, float) for x in out)
        assert got_prompts == [got_prompts[0]] * 4 and got_prompts[0] in prompts  # one GRPO group of a dataset prompt
        assert (isinstance(completions[0], list) and completions[0][0]["role"] == "assistant") == conversational
        texts = [c[0]["content"] if conversational else c for c in completions]
        np.testing.assert_allclose(out, scorer.score(got_prompts, texts).raw, atol=1e-4)
        assert mean == pytest.approx(float(np.mean(out)), abs=1e-4)
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))


def test_conservative_ensemble_rewards_local_and_remote(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rk_testing.tiny_models import build_tiny_ensemble

    ens = build_tiny_ensemble(tmp_path_factory.mktemp("cons") / "ensemble", members=3)
    prompts, completions = ["What is 2+2?", "Say hi"], ["4", "hello there"]
    scorer = load_scorer(str(ens), dtype="fp32")
    mean = scorer.score(prompts, completions)
    wco, uwo = scorer.aggregated(mean, "wco").raw, scorer.aggregated(mean, "uwo", 0.7).raw
    assert (wco < mean.raw).all() and (uwo < mean.raw).all()  # the members disagree: the test can tell them apart
    # the service's default stays the mean: the client's options choose
    with running_server(ServeSettings(model_path=str(ens), dtype="fp32", api_keys=[])) as base:
        for where in ({"model": str(ens)}, {"url": base}):
            np.testing.assert_allclose(RewardkitReward(**where, aggregate="wco")(prompts, completions), wco, atol=1e-4)
            got = RewardkitReward(**where, aggregate="uwo", uwo_lambda=0.7)(prompts, completions)
            np.testing.assert_allclose(got, uwo, atol=1e-4)
            np.testing.assert_allclose(RewardkitReward(**where)(prompts, completions), mean.raw, atol=1e-4)
            monkeypatch.delenv("RK_REWARD_MODEL", raising=False)
            monkeypatch.delenv("RK_REWARD_URL", raising=False)
            monkeypatch.setenv(
                "RK_REWARD_URL" if "url" in where else "RK_REWARD_MODEL", base if "url" in where else str(ens)
            )
            monkeypatch.setenv("RK_REWARD_AGGREGATE", "uwo")
            monkeypatch.setenv("RK_UWO_LAMBDA", "0.7")
            verl.reset()
            infos = [{"prompt": p} for p in prompts]
            np.testing.assert_allclose(verl.compute_score_batch(None, completions, None, infos), uwo, atol=1e-4)
    monkeypatch.setenv("RK_UWO_LAMBDA", "a lot")
    verl.reset()
    with pytest.raises(ValueError, match="RK_UWO_LAMBDA must be a number"):
        verl.compute_score("d", "s", None)
    verl.reset()
    with pytest.raises(ValueError, match="aggregate must be one of mean, uwo, wco"):
        RewardkitReward(model=str(ens), aggregate="median")
