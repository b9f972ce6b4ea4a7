"""Auth (Bearer keys, public probes), limits (413), validation (422) and overload (429 + Retry-After), all
through a real server; every error is {"error", "error_type"}."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np

from rewardkit.serve.config import ServeSettings
from rewardkit.serve.deps import check_key

ONE = {"inputs": [{"prompt": "p", "response": "r"}]}


def test_check_key_constant_time_compare_logic() -> None:
    s = ServeSettings(api_keys=["k1", "secret-2"])
    assert check_key(s, "Bearer secret-2") and check_key(s, "Bearer k1")
    assert not check_key(s, "Bearer k") and not check_key(s, "secret-2") and not check_key(s, None)
    assert check_key(ServeSettings(api_keys=[]), None)  # no keys configured: open
    assert check_key(s, "bearer k1") and check_key(s, "BEARER  k1")  # the scheme is case-insensitive


def test_bearer_auth_and_public_probes(serve) -> None:  # type: ignore[no-untyped-def]
    with serve(api_keys=["s3cret"]) as url:
        missing = httpx.post(url + "/v1/score", json=ONE)
        assert missing.status_code == 401 and missing.json()["error_type"] == "unauthorized"
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = httpx.post(url + "/v1/score", json=ONE, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = httpx.post(url + "/v1/score", json=ONE, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        for route in ("/v1/compare", "/v1/rank", "/get_reward", "/info", "/admin/reload"):
            method = httpx.get if route == "/info" else httpx.post
            assert method(url + route).status_code == 401, route
        for public in ("/health", "/ready", "/metrics"):
            assert httpx.get(url + public).status_code == 200, public
        # OpenRLHF sends no Authorization header: /get_reward (only) takes the key in its URL
        query = {"query": ["q a"]}
        assert httpx.post(url + "/get_reward?api_key=s3cret", json=query).status_code == 200
        assert httpx.post(url + "/get_reward?api_key=nope", json=query).status_code == 401
        assert httpx.post(url + "/v1/score?api_key=s3cret", json=ONE).status_code == 401


def test_limits_413_and_validation_422(serve) -> None:  # type: ignore[no-untyped-def]
    with serve(max_inputs_per_request=3, max_chars_per_input=100, max_body_bytes=2048) as url:
        many = httpx.post(url + "/v1/score", json={"inputs": [{"prompt": "p", "response": "r"}] * 4})
        assert many.status_code == 413 and many.json()["error_type"] == "payload_too_large"
        assert "3 per request" in many.json()["error"]
        # a text over the limit is named by its place in the request (not in the list of all its texts)
        long = httpx.post(
            url + "/v1/score",
            json={"inputs": [{"prompt": "p", "response": "ok"}] * 2 + [{"prompt": "p", "response": "x" * 101}]},
        )
        assert long.status_code == 413
        assert long.json()["error"] == "inputs[2].response has 101 characters; the limit is 100 per prompt or response"
        chat = [{"role": "user", "content": "y" * 101}, {"role": "assistant", "content": "ok"}]
        long_chat = httpx.post(
            url + "/v1/score", json={"inputs": [{"prompt": "p", "response": "r"}, {"messages": chat}]}
        )
        assert long_chat.status_code == 413 and long_chat.json()["error"].startswith(
            "inputs[1].messages[:-1] has 101 characters"
        )
        compare = httpx.post(url + "/v1/compare", json={"prompt": "p", "response_a": "ok", "response_b": "y" * 101})
        assert compare.status_code == 413 and compare.json()["error"].startswith("response_b has 101 characters")
        long_rank = httpx.post(url + "/v1/rank", json={"prompt": "p", "responses": ["a", "b", "z" * 101]})
        assert long_rank.status_code == 413 and long_rank.json()["error"].startswith("responses[2] has 101 characters")
        rank = httpx.post(url + "/v1/rank", json={"prompt": "p", "responses": ["a"] * 4})
        assert rank.status_code == 413
        body = httpx.post(
            url + "/v1/score", content=b"{" + b" " * 3000 + b"}", headers={"content-type": "application/json"}
        )
        assert body.status_code == 413 and body.json()["error_type"] == "payload_too_large"

        def chunks():  # no Content-Length: read up to the limit, then refused
            for _ in range(10):
                yield b" " * 500

        chunked = httpx.post(url + "/v1/score", content=chunks(), headers={"content-type": "application/json"})
        assert chunked.status_code == 413
        for bad in (
            {"inputs": []},
            {"inputs": [{"prompt": "p"}]},
            {"inputs": [{"response": 3}]},
            {"inputs": [{"messages": [{"role": "user", "content": "no reply"}]}]},
            {"nope": 1},
        ):
            r = httpx.post(url + "/v1/score", json=bad)
            assert r.status_code == 422, (bad, r.text)
            assert set(r.json()) == {"error", "error_type"} and r.json()["error_type"] == "validation"
        garbage = httpx.post(url + "/v1/score", content=b"not json", headers={"content-type": "application/json"})
        assert garbage.status_code == 422
        assert httpx.post(url + "/v1/score", json=ONE).status_code == 200  # still serving


def test_a_422_names_the_real_cause(server_url: str) -> None:
    # an input may be {"prompt", "response"} or {"messages"}: the message comes from the form the client sent,
    # not from the other form's "response: Field required"
    cases = [
        (
            {"inputs": [{"messages": [{"role": "user", "content": "no reply"}]}]},
            "inputs[0]: the last message must be the assistant's response",
        ),
        (
            {"inputs": [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": 5}]}]},
            "inputs[0].messages[1].content: Input should be a valid string",
        ),
        (
            {"inputs": [{"prompt": "p", "response": "r"}, {"prompt": "p", "respons": "r"}]},
            "inputs[1].response: Field required; inputs[1].respons: Extra inputs are not permitted",
        ),
        (
            {"inputs": [{"prompt": [{"role": "user", "content": 1}], "response": "r"}]},
            "inputs[0].prompt[0].content: Input should be a valid string",
        ),
        ({"inputs": [{"prompt": 7, "response": "r"}]}, "inputs[0].prompt: Input should be a valid string"),
        ({"inputs": ["text"]}, "inputs[0]: Input should be a valid dictionary or object to extract fields from"),
    ]
    for body, message in cases:
        r = httpx.post(server_url + "/v1/score", json=body)
        assert r.status_code == 422 and r.json() == {"error": message, "error_type": "validation"}, (body, r.text)
    compare = httpx.post(
        server_url + "/v1/compare",
        json={"prompt": [{"role": "bot", "content": "x"}], "response_a": "a", "response_b": "b"},
    )
    assert compare.status_code == 422 and compare.json()["error"].startswith(
        "prompt[0].role: Input should be 'system', 'user'"
    )


def test_full_queue_answers_429_then_recovers(serve) -> None:  # type: ignore[no-untyped-def]
    long_input = {"inputs": [{"prompt": "word " * 100, "response": "answer " * 20}] * 32}
    with serve(queue_size=2, max_wait_ms=0) as url:

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=100)) as c:
                return await asyncio.gather(*[c.post("/v1/score", json=long_input) for _ in range(40)])

        responses = asyncio.run(burst())
        codes = [r.status_code for r in responses]
        assert set(codes) <= {200, 429}, codes
        assert codes.count(429) > 0 and codes.count(200) > 0
        limited = next(r for r in responses if r.status_code == 429)
        assert limited.headers["retry-after"] == "1" and limited.json()["error_type"] == "overloaded"
        assert httpx.post(url + "/v1/score", json=ONE).status_code == 200
        assert 'rk_requests_total{route="/v1/score",status="429"}' in httpx.get(url + "/metrics").text


def test_a_lone_surrogate_is_invalid_input_not_a_server_error(server_url: str) -> None:
    # JSON may escape a lone surrogate; Python decodes it to a str the tokenizer cannot take
    for route, body in (
        ("/v1/score", b'{"inputs": [{"prompt": "p", "response": "bad \\ud800 text"}]}'),
        ("/v1/rank", b'{"prompt": "\\udfff", "responses": ["a"]}'),
        ("/get_reward", b'{"query": ["q \\ud800"], "labels": [[1, 2]]}'),
    ):
        r = httpx.post(server_url + route, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, (route, r.text)
        assert r.json()["error_type"] == "validation" and "surrogate" in r.json()["error"]


def test_a_request_that_breaks_the_model_fails_alone_not_the_requests_batched_with_it(tiny_model) -> None:  # type: ignore[no-untyped-def]
    from rewardkit.scoring.scorer import load_scorer
    from rewardkit.serve.batcher import MicroBatcher

    scorer = load_scorer(str(tiny_model), dtype="fp32")

    async def main() -> list[object]:
        batcher = MicroBatcher(queue_size=16, max_wait_ms=200, max_rows=64, token_budget=100_000)
        batcher.start()
        try:  # past the route's validation, straight into one micro-batch: the tokenizer raises on the surrogate
            jobs = [
                batcher.submit(scorer, ["p"], ["good one"]),
                batcher.submit(scorer, ["p"], ["bad \ud800"]),
                batcher.submit(scorer, ["p", "q"], ["good two", "good three"]),
            ]
            return await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            await batcher.stop()

    good, bad, good2 = asyncio.run(main())
    assert isinstance(bad, Exception)
    assert len(good.raw) == 1 and len(good2.raw) == 2  # type: ignore[union-attr]
    alone = scorer.score(["p", "p", "q"], ["good one", "good two", "good three"])
    assert np.allclose(np.concatenate([good.raw, good2.raw]), alone.raw, atol=1e-5)  # type: ignore[union-attr]


def test_requests_still_queued_at_shutdown_get_an_answer(tiny_model) -> None:  # type: ignore[no-untyped-def]
    from rewardkit.scoring.scorer import load_scorer
    from rewardkit.serve.batcher import MicroBatcher, ShuttingDown

    scorer = load_scorer(str(tiny_model), dtype="fp32")

    async def main() -> list[object]:
        batcher = MicroBatcher(queue_size=16, max_wait_ms=2, max_rows=64, token_budget=100_000)  # never started
        waiting = [asyncio.ensure_future(batcher.submit(scorer, ["p"], [f"r{i}"])) for i in range(3)]
        await asyncio.sleep(0)  # all three are queued
        await batcher.stop()
        return await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), timeout=5)

    assert all(isinstance(r, ShuttingDown) for r in asyncio.run(main()))


def test_reload_takes_the_admin_key_when_one_is_set(serve) -> None:  # type: ignore[no-untyped-def]
    with serve(api_keys=["user"], admin_keys=["root"]) as url:
        as_user = httpx.post(url + "/admin/reload", headers={"Authorization": "Bearer user"})
        assert as_user.status_code == 401 and "admin" in as_user.json()["error"]
        assert httpx.post(url + "/admin/reload", headers={"Authorization": "Bearer root"}).status_code == 200
        assert httpx.post(url + "/v1/score", json=ONE, headers={"Authorization": "Bearer root"}).status_code == 401
        assert httpx.post(url + "/v1/score", json=ONE, headers={"Authorization": "Bearer user"}).status_code == 200


def test_a_device_typo_fails_at_start_not_as_503s_later() -> None:
    import pydantic
    import pytest

    for typo in ("gpu", "cuda:x", "cuda1"):
        with pytest.raises(pydantic.ValidationError, match=r"--device \(or RK_DEVICE\) must be"):
            ServeSettings(device=typo)
    assert ServeSettings(device="cuda:1").device == "cuda:1"
