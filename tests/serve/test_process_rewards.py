"""A process reward model behind the real app (uvicorn on loopback, httpx): /v1/score returns step_scores and
their aggregate, /v1/rank ranks by the aggregate, and an outcome model answers a steps input with a 422."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from rk_testing.server import running_server

from rewardkit.model.step_aggregate import aggregate_steps
from rewardkit.scoring.scorer import load_scorer
from rewardkit.serve import ServeSettings

PROMPT = "Problem 3: start at 2, add 5 three times."
GOOD = ["2 plus 5 is 7", "7 plus 5 is 12", "12 plus 5 is 17"]
BAD = ["2 plus 5 is 7", "7 plus 5 is 17", "17 plus 5 is 22"]


@pytest.fixture(scope="module")
def prm_url(tiny_prm: Path):
    with running_server(ServeSettings(model_path=str(tiny_prm), dtype="fp32", api_keys=[])) as url:
        yield url


def test_score_returns_step_scores_and_their_aggregate(prm_url: str, tiny_prm: Path) -> None:
    inputs = [
        {"prompt": PROMPT, "steps": GOOD},
        {"prompt": PROMPT, "response": "\n".join(BAD)},  # split at the card's separator: the same as steps
        {"prompt": PROMPT, "steps": BAD},
    ]
    r = httpx.post(prm_url + "/v1/score", json={"inputs": inputs}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    steps = body["step_scores"]
    assert [len(s) for s in steps] == [3, 3, 3]
    assert all(0 < p < 1 for row in steps for p in row)
    np.testing.assert_allclose(steps[1], steps[2], atol=1e-5)
    # the card's aggregate is min: the score is the weakest step
    np.testing.assert_allclose(body["scores"], [min(s) for s in steps], atol=1e-6)
    # the same numbers as the library scorer (the service adds nothing of its own)
    lib = load_scorer(str(tiny_prm), dtype="fp32").score_steps([PROMPT, PROMPT], [GOOD, BAD])
    np.testing.assert_allclose(steps[0], lib.step_scores[0], atol=1e-4)
    np.testing.assert_allclose(steps[2], lib.step_scores[1], atol=1e-4)
    # another aggregate on request, from the same step scores
    mean = httpx.post(prm_url + "/v1/score", json={"inputs": inputs, "step_aggregate": "mean"}, timeout=30).json()
    np.testing.assert_allclose(mean["scores"], [aggregate_steps(s, "mean") for s in steps], atol=1e-6)


def test_rank_orders_solutions_by_the_aggregate(prm_url: str) -> None:
    responses = ["\n".join(BAD), "\n".join(GOOD), "2 plus 5 is 9"]
    for how in ("min", "product", "last"):
        r = httpx.post(
            prm_url + "/v1/rank", json={"prompt": PROMPT, "responses": responses, "step_aggregate": how}, timeout=30
        )
        assert r.status_code == 200, r.text
        body = r.json()
        expected = [aggregate_steps(s, how) for s in body["step_scores"]]
        np.testing.assert_allclose(body["scores"], expected, atol=1e-6)
        assert [x["index"] for x in body["ranking"]] == list(np.argsort(-np.array(expected), kind="stable"))


def test_bad_steps_inputs_are_422_not_5xx(prm_url: str, server_url: str) -> None:
    cases = [
        (prm_url, {"inputs": [{"prompt": PROMPT, "steps": ["a", "  "]}]}, "steps[1] is blank"),
        (prm_url, {"inputs": [{"prompt": PROMPT, "steps": ["a\nb"]}]}, "holds the step separator"),
        (prm_url, {"inputs": [{"prompt": PROMPT, "steps": []}]}, "steps"),
        (prm_url, {"inputs": [{"prompt": PROMPT, "steps": ["a"]}], "step_aggregate": "max"}, "step_aggregate"),
        (server_url, {"inputs": [{"prompt": PROMPT, "steps": ["a"]}]}, "need a process reward model"),
    ]
    for url, body, says in cases:
        r = httpx.post(url + "/v1/score", json=body, timeout=30)
        assert r.status_code == 422, r.text
        assert says in r.json()["error"]


def test_an_outcome_model_sends_no_step_scores_key(server_url: str) -> None:
    # rewardkit.client builds Scores(**body): a new key in an outcome model's answer would break deployed clients
    r = httpx.post(server_url + "/v1/score", json={"inputs": [{"prompt": "p", "response": "r"}]}, timeout=30)
    assert r.status_code == 200 and "step_scores" not in r.json() and "uncertainty" in r.json()
    r = httpx.post(server_url + "/v1/rank", json={"prompt": "p", "responses": ["a", "b"]}, timeout=30)
    assert r.status_code == 200 and "step_scores" not in r.json()
