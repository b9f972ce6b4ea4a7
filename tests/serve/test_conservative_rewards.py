"""Conservative ensemble rewards (mean / UWO / WCO) and KL-shaped token rewards through the real service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rk_testing.server import running_server
from rk_testing.tiny_models import build_tiny_ensemble

from rewardkit.serve.config import ServeSettings

INPUTS = [{"prompt": "q1", "response": "a"}, {"prompt": "q2 " * 5, "response": "b " * 7}, {"response": "c"}]


@pytest.fixture(scope="module")
def ensemble_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """3 tiny members; the deployment's default aggregate is UWO with lambda 0.3."""
    path = build_tiny_ensemble(Path(tmp_path_factory.mktemp("ens")) / "ensemble", members=3)
    settings = ServeSettings(model_path=str(path), dtype="fp32", api_keys=[], reward_aggregate="uwo", uwo_lambda=0.3)
    with running_server(settings) as url:
        yield url


def score(url: str, **options: object) -> dict:
    r = httpx.post(url + "/v1/score", json={"inputs": INPUTS, **options})
    assert r.status_code == 200, r.text
    return r.json()


def test_uwo_and_wco_against_the_mean(ensemble_url: str) -> None:
    for normalize in (False, True):
        mean = score(ensemble_url, aggregate="mean", normalize=normalize)
        std = mean["uncertainty"]
        assert all(s > 0 for s in std)  # the members disagree: otherwise the test shows nothing
        uwo = score(ensemble_url, aggregate="uwo", uwo_lambda=0.8, normalize=normalize)
        assert uwo["uncertainty"] == std  # the std is kept
        assert uwo["scores"] == pytest.approx([m - 0.8 * s for m, s in zip(mean["scores"], std)], abs=1e-5)
        wco = score(ensemble_url, aggregate="wco", normalize=normalize)
        # the lowest member is below the mean (strictly, as the members differ) and never above UWO with lambda
        # big enough: min >= mean - sqrt(M - 1) * std for M members (ddof 0), here sqrt(2)
        assert all(w < m for w, m in zip(wco["scores"], mean["scores"]))
        assert all(w >= m - 2**0.5 * s - 1e-5 for w, m, s in zip(wco["scores"], mean["scores"], std))


def test_the_deployment_default_applies_when_the_request_is_silent(ensemble_url: str) -> None:
    mean, default = score(ensemble_url, aggregate="mean"), score(ensemble_url)
    expected = [m - 0.3 * s for m, s in zip(mean["scores"], mean["uncertainty"])]
    assert default["scores"] == pytest.approx(expected, abs=1e-5)


def test_get_reward_takes_the_same_options(ensemble_url: str) -> None:
    queries = ["Q: hi\nA: hello", "Q: bye\nA: see you"]
    r = httpx.post(ensemble_url + "/get_reward", json={"query": queries, "aggregate": "mean"})
    assert r.status_code == 200, r.text
    mean, std = r.json()["rewards"], r.json()["extra_logs"]["uncertainty"]
    for body, lam in (({"aggregate": "uwo", "uwo_lambda": 1.0}, 1.0), ({}, 0.3)):
        got = httpx.post(ensemble_url + "/get_reward", json={"query": queries, **body}).json()
        assert got["aggregate"] == "uwo"
        assert got["rewards"] == pytest.approx([m - lam * s for m, s in zip(mean, std)], abs=1e-5)
    wco = httpx.post(ensemble_url + "/get_reward", json={"query": queries, "aggregate": "wco"}).json()
    assert all(w < m for w, m in zip(wco["rewards"], mean)) and wco["scores"] == wco["rewards"]


@pytest.mark.parametrize(
    ("options", "field"),
    [({"aggregate": "median"}, "aggregate"), ({"uwo_lambda": -0.1}, "uwo_lambda"), ({"uwo_lambda": "1"}, "uwo_lambda")],
)
def test_bad_options_are_a_422_naming_the_field(ensemble_url: str, options: dict, field: str) -> None:
    for route, body in (("/v1/score", {"inputs": INPUTS}), ("/get_reward", {"query": ["x"]})):
        r = httpx.post(ensemble_url + route, json={**body, **options})
        assert r.status_code == 422 and field in r.json()["error"], r.text


def assert_tokens(got: list[list[float]], expected: list[list[float]]) -> None:
    assert [len(g) for g in got] == [len(e) for e in expected]
    for g, e in zip(got, expected):
        assert g == pytest.approx(e, abs=1e-9)


def test_token_rewards_hand_checked(serve) -> None:  # type: ignore[no-untyped-def]
    queries = ["Q: hi\nA: hello", "Q: bye\nA: see you"]
    # query 0, k1: log_ratio = [-1 - -1.5, -2 - -2] = [0.5, 0] -> [-0.1 * 0.5, -0.1 * 0 + r0] = [-0.05, r0]
    # query 1: log_ratio [0] -> KL 0 -> [r1]
    body = {"query": queries, "logprobs": [[-1.0, -2.0], [-0.7]], "ref_logprobs": [[-1.5, -2.0], [-0.7]]}
    with serve() as url:
        r = httpx.post(url + "/get_reward", json={**body, "kl_beta": 0.1})
        assert r.status_code == 200, r.text
        r0, r1 = r.json()["rewards"]
        assert_tokens(r.json()["token_rewards"], [[-0.05, r0], [r1]])
        # k2: log_ratio^2 / 2 = 0.125 at the first token -> -0.0125
        k2 = httpx.post(url + "/get_reward", json={**body, "kl_beta": 0.1, "kl_estimator": "k2"}).json()
        assert_tokens(k2["token_rewards"], [[-0.0125, r0], [r1]])
        plain = httpx.post(url + "/get_reward", json={"query": queries}).json()
        assert plain["token_rewards"] is None and plain["rewards"] == pytest.approx([r0, r1], abs=1e-6)
        # mistakes: a 422 naming the query or the missing field, never a 500
        bad = {**body, "kl_beta": 0.1, "ref_logprobs": [[-1.5, -2.0], [-0.7, -0.1]]}
        r = httpx.post(url + "/get_reward", json=bad)
        assert r.status_code == 422 and r.json()["error"].startswith("query[1]: logprobs (1,) and ref_logprobs (2,)")
        r = httpx.post(url + "/get_reward", json=body)
        assert (
            r.status_code == 422 and r.json()["error"] == "logprobs, ref_logprobs given without kl_beta: send all three"
        )
        r = httpx.post(url + "/get_reward", json={**body, "kl_beta": 0.1, "logprobs": [[-1.0]]})
        assert r.status_code == 422 and r.json()["error"] == "logprobs has 1 lists but query has 2"
        r = httpx.post(url + "/get_reward", json={**body, "kl_beta": 0.1, "kl_estimator": "k4"})
        assert r.status_code == 422 and "kl_estimator" in r.json()["error"]
