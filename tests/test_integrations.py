"""The RL adapters, called exactly as their libraries call them.

TRL 1.16 ``GRPOTrainer._calculate_rewards``: ``reward_func(prompts=..., completions=..., completion_ids=...,
**reward_kwargs)`` where reward_kwargs are the dataset's extra columns plus ``trainer_state``; the name
comes from ``trl.trainer.utils.get_callable_name``. verl's reward manager:
``compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)``.
"""

from __future__ import annotations

import math
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "serve"))
from rk_helpers import build_tiny_model, running_server  # noqa: E402

from rewardkit.integrations import verl  # noqa: E402
from rewardkit.integrations.trl import RewardkitReward  # noqa: E402
from rewardkit.score import load_scorer  # noqa: E402
from rewardkit.serve import ServeSettings  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


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
        out = func(prompts=prompts, completions=completions, completion_ids=completion_ids,
                   answer=["4", "4", "blue"], trainer_state=None)
        assert len(out) == 3 and all(isinstance(x, float) for x in out)
        assert all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip(out, expected))
        # picklable after use (a loaded model / an open HTTP client are left behind), and the copy works
        copy = pickle.loads(pickle.dumps(func))
        assert copy(prompts=prompts, completions=completions) == pytest.approx(out, abs=1e-6)
    # conversational format: prompt messages, completion = [assistant message]
    conv = RewardkitReward(model=str(model))(
        prompts=[[{"role": "user", "content": "Name a colour."}]],
        completions=[[{"role": "assistant", "content": "Blue."}]], completion_ids=[[6]],
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
        got = verl.compute_score(data_source="gsm8k", solution_str="4", ground_truth="4",
                                 extra_info={"prompt": "What is 2+2?", "index": 0})
        assert isinstance(got, float) and math.isclose(got, expected, abs_tol=1e-4)
        # BatchRewardManager: keyword arguments holding numpy object arrays of one batch
        infos = np.array([{"prompt": "What is 2+2?"}, {"question": "What is 2+2?"}, None], dtype=object)
        batch = verl.compute_score_batch(data_sources=np.array(["gsm8k"] * 3, dtype=object),
                                         solution_strs=np.array(["4", "4", "4"], dtype=object),
                                         ground_truths=np.array(["4"] * 3, dtype=object), extra_infos=infos)
        alone = verl.compute_score("gsm8k", "4", "4", None)
        assert all(isinstance(x, float) for x in batch)
        np.testing.assert_allclose(batch, [expected, expected, alone], atol=1e-4)
    monkeypatch.delenv("RK_REWARD_URL")
    verl.reset()
    with pytest.raises(ValueError, match="RK_REWARD_URL"):
        verl.compute_score("d", "s", None)
    verl.reset()


def test_remote_reward_func_splits_a_batch_to_the_services_limit(model: Path) -> None:
    prompts, completions = ["What is 2+2?"] * 5, ["4", "5", "four", "It is 4.", "no idea"]
    expected = load_scorer(str(model), dtype="fp32").score(prompts, completions).raw
    with running_server(ServeSettings(model_path=str(model), dtype="fp32", api_keys=[], max_inputs_per_request=2)) as base:
        out = RewardkitReward(url=base)(prompts=prompts, completions=completions)  # 3 requests of <= 2 (from /info)
    np.testing.assert_allclose(out, expected, atol=1e-4)
