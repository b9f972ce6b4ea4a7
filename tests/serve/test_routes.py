"""One test per route, through the real app on a real uvicorn server (httpx over loopback TCP)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import httpx
import numpy as np
from rk_testing.server import metric_values, running_server
from rk_testing.tiny_models import build_tiny_ensemble


def score(url: str, inputs: list[dict], **extra: object) -> dict:
    r = httpx.post(url + "/v1/score", json={"inputs": inputs, **extra}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_score_raw_normalized_and_truncation(server_url: str) -> None:
    inputs = [
        {"prompt": "What is 2+2?", "response": "4"},
        {"prompt": "What is 2+2?", "response": "It is four, because two plus two makes four."},
        {"prompt": "word " * 400, "response": "short answer"},  # over max_length 128: prompt cut, flagged
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]},
    ]
    raw = score(server_url, inputs)
    assert len(raw["scores"]) == 4 and raw["uncertainty"] is None
    assert raw["truncated"] == [False, False, True, False]
    assert raw["model_version"].startswith("tiny_a")
    assert len(set(np.round(raw["scores"], 6))) == 4  # the tiny model tells these inputs apart
    norm = score(server_url, inputs, normalize=True)
    # the tiny model's card: reward_mean 0.5, reward_std 2.0
    np.testing.assert_allclose(norm["scores"], (np.array(raw["scores"]) - 0.5) / 2.0, atol=1e-5)
    # the chat form is the same example as the flattened plain prompt for an encoder without a chat template
    plain = score(server_url, [{"prompt": [{"role": "user", "content": "hi"}], "response": "hello there"}])
    assert math.isclose(plain["scores"][0], raw["scores"][3], abs_tol=1e-5)


def test_compare_is_calibrated_sigmoid(server_url: str) -> None:
    body = {"prompt": "Name a colour.", "response_a": "Blue.", "response_b": "I refuse to answer that question."}
    r = httpx.post(server_url + "/v1/compare", json=body).json()
    a, b = r["scores"]
    s = score(
        server_url,
        [
            {"prompt": body["prompt"], "response": body["response_a"]},
            {"prompt": body["prompt"], "response": body["response_b"]},
        ],
    )["scores"]
    np.testing.assert_allclose([a, b], s, atol=1e-5)
    assert math.isclose(r["p_a_better"], 1 / (1 + math.exp(-(a - b) / 2.0)), rel_tol=1e-6)  # card temperature 2
    swapped = httpx.post(
        server_url + "/v1/compare", json={**body, "response_a": body["response_b"], "response_b": body["response_a"]}
    ).json()
    assert math.isclose(swapped["p_a_better"], 1 - r["p_a_better"], abs_tol=1e-6)


def test_rank_orders_best_first(server_url: str) -> None:
    responses = ["a", "a longer reply", "Sure! Here is a detailed and careful answer.", "no", "maybe so"]
    r = httpx.post(server_url + "/v1/rank", json={"prompt": "Help me", "responses": responses}).json()
    ranked = [x["score"] for x in r["ranking"]]
    assert ranked == sorted(ranked, reverse=True)
    assert sorted(x["index"] for x in r["ranking"]) == list(range(5))
    assert all(responses[x["index"]] == x["response"] for x in r["ranking"])
    direct = score(server_url, [{"prompt": "Help me", "response": x} for x in responses])["scores"]
    np.testing.assert_allclose(r["scores"], direct, atol=1e-5)


def test_get_reward_openrlhf_shape(server_url: str) -> None:
    prompts = ["\n\nHuman: hi\n\nAssistant: ", "\n\nHuman: bye\n\nAssistant: "]
    responses = ["hello!", "see you"]
    body = {"query": [p + r for p, r in zip(prompts, responses)], "prompts": prompts, "labels": ["", ""]}
    r = httpx.post(server_url + "/get_reward", json=body)
    assert r.status_code == 200
    out = r.json()
    assert set(out) >= {"rewards", "scores", "extra_logs"} and len(out["rewards"]) == 2
    direct = score(server_url, [{"prompt": p, "response": x} for p, x in zip(prompts, responses)])["scores"]
    np.testing.assert_allclose(out["rewards"], direct, atol=1e-5)
    # OpenRLHF may send only the query: then it is scored as one response with an empty prompt
    only = httpx.post(server_url + "/get_reward", json={"query": body["query"]}).json()
    assert len(only["rewards"]) == 2
    bad = httpx.post(server_url + "/get_reward", json={"query": ["a", "b"], "prompts": ["a"]})
    assert bad.status_code == 422 and bad.json()["error_type"] == "validation"


def test_get_reward_takes_queries_the_way_openrlhf_decodes_them(server_url: str) -> None:
    # OpenRLHF decodes rollouts with special tokens kept: left padding, BOS, prompt, response, EOS; labels may
    # be any JSON; a rollout batch comes in one request, past /v1/score's 256-input limit
    prompts = [
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>user\nbye<|im_end|>\n<|im_start|>assistant\n",
    ]
    responses = ["hello!", "see you"]
    query = [
        pad + "<s>" + p + r + "<|im_end|>" + "<|endoftext|>" * k
        for pad, p, r, k in zip(["<|endoftext|><|endoftext|>", ""], prompts, responses, [0, 3])
    ]
    n = 150  # 300 queries
    body = {"query": query * n, "prompts": prompts * n, "labels": [[1, 2], {"answer": "x"}] * n}
    r = httpx.post(server_url + "/get_reward", json=body)
    assert r.status_code == 200, r.text
    messages = [
        [{"role": "user", "content": "hi"}],
        [{"role": "user", "content": "bye"}],
    ]  # the ChatML prompts read back
    direct = score(server_url, [{"prompt": m, "response": x} for m, x in zip(messages, responses)])["scores"]
    np.testing.assert_allclose(r.json()["rewards"], direct * n, atol=1e-5)


def test_health_ready_info_metrics(server_url: str) -> None:
    assert httpx.get(server_url + "/health").json() == {"status": "ok"}
    assert httpx.get(server_url + "/ready").json() == {"status": "ready"}
    info = httpx.get(server_url + "/info").json()
    assert info["max_length"] == 128 and info["temperature"] == 2.0 and info["ensemble_size"] == 1
    assert info["dtype"] == "float32" and info["limits"]["max_inputs_per_request"] == 256
    before = metric_values(httpx.get(server_url + "/metrics").text)
    rows = [{"prompt": "p", "response": "r"}, {"prompt": "What is 2+2?", "response": "four, of course"}]
    for _ in range(3):
        score(server_url, rows)
    httpx.post(server_url + "/v1/score", json={"inputs": "nope"})
    after = metric_values(httpx.get(server_url + "/metrics").text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    # the histograms record what happened: 3 scored requests of 2 rows (each its own call: sent one by one)
    assert grew("rk_request_latency_seconds_count", route="/v1/score") == 4  # the 422 too
    assert grew("rk_request_latency_seconds_sum", route="/v1/score") > 0
    assert grew("rk_queue_time_seconds_count") == 3 and grew("rk_queue_time_seconds_sum") > 0
    assert grew("rk_batch_size_count") == 3 and grew("rk_batch_size_sum") == 6
    assert grew("rk_batch_size_bucket", le="2.0") == 3 and grew("rk_batch_size_bucket", le="1.0") == 0
    assert grew("rk_batch_tokens_count") == 3 and grew("rk_batch_tokens_sum") >= 6 * 3  # [CLS] p [SEP] r [SEP]
    assert grew("rk_requests_total", route="/v1/score", status="200") == 3
    assert grew("rk_request_failures_total", route="/v1/score", error_type="validation") == 1
    assert after[("rk_queue_size", ())] == 0
    assert any(name == "rk_model_info" and v == 1 for (name, _), v in after.items())


def test_ready_is_503_until_loaded_and_probes_are_not_failures(tmp_path: Path) -> None:
    from rewardkit.serve import ServeSettings

    # still loading (an ensemble of tiny models takes a while): 503 with Retry-After
    # its own ensemble, not a shared one: the test needs a slow load, and a folder another test loaded loads faster
    slow = ServeSettings(
        model_path=str(build_tiny_ensemble(tmp_path / "ensemble", members=6)), dtype="fp32", api_keys=[]
    )
    with running_server(slow, wait_ready=False) as url:
        first = httpx.get(url + "/ready")
        assert first.status_code == 503 and first.json() == {"error": "model not loaded yet", "error_type": "not_ready"}
        assert first.headers["retry-after"] == "1"
        polls = 1
        while httpx.get(url + "/ready").status_code != 200:
            polls += 1
            time.sleep(0.05)
        metrics = metric_values(httpx.get(url + "/metrics").text)
        # a probe answering 503 while the model loads is an answer, not a failure: failure-rate alerts would
        # fire on every start; the probes still show in rk_requests_total
        assert not any(name == "rk_request_failures_total" and v for (name, _), v in metrics.items()), metrics
        assert metrics[("rk_requests_total", (("route", "/ready"), ("status", "503")))] == polls

    # failed to load: 503 saying why, without Retry-After (waiting will not help)
    missing = ServeSettings(model_path=str(tmp_path / "no-such-model"), dtype="fp32", api_keys=[])
    with running_server(missing, wait_ready=False) as url:
        deadline = time.monotonic() + 30
        while "failed to load" not in (r := httpx.get(url + "/ready")).json()["error"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert r.status_code == 503 and r.json()["error_type"] == "not_ready" and "retry-after" not in r.headers
        s = httpx.post(url + "/v1/score", json={"inputs": [{"prompt": "p", "response": "r"}]})
        assert s.status_code == 503 and s.json()["error_type"] == "not_ready" and "no-such-model" in s.json()["error"]
        assert httpx.get(url + "/health").status_code == 200
        failures = metric_values(httpx.get(url + "/metrics").text)
        assert failures[("rk_request_failures_total", (("error_type", "not_ready"), ("route", "/v1/score")))] == 1
        assert ("rk_request_failures_total", (("error_type", "not_ready"), ("route", "/ready"))) not in failures


def test_an_ensembles_uncertainty_is_in_the_units_of_the_scores_it_comes_with(serve, tmp_path) -> None:
    """normalize=true divides the scores by the ensemble's reward_std (4 here): the std over members too."""
    import json

    # its own two-member ensemble: the test rewrites the card
    folder = build_tiny_ensemble(tmp_path / "ens", members=2)
    card = json.loads((folder / "rewardkit.json").read_text())
    card.update(member_scale="standardized", reward_mean=0.25, reward_std=4.0)  # a fitted ensemble card
    (folder / "rewardkit.json").write_text(json.dumps(card))
    inputs = [{"prompt": "What is 2+2?", "response": "4"}, {"prompt": "Name a colour.", "response": "Blue, I think."}]
    with serve(model_path=str(folder)) as url:
        raw, norm = score(url, inputs), score(url, inputs, normalize=True)
    assert min(raw["uncertainty"]) > 0  # two different members disagree
    np.testing.assert_allclose(norm["scores"], (np.array(raw["scores"]) - 0.25) / 4.0, atol=1e-5)
    np.testing.assert_allclose(norm["uncertainty"], np.array(raw["uncertainty"]) / 4.0, atol=1e-6)
