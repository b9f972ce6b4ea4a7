"""rewardkit's Client and AsyncClient against a real server on loopback."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from rk_testing.server import metric_values, running_server
from rk_testing.tiny_models import build_tiny_ensemble

from rewardkit.client import AsyncClient, Client, ServiceError  # noqa: E402
from rewardkit.serve import ServeSettings  # noqa: E402


@pytest.fixture(scope="module")
def url(tiny_model: Path) -> Iterator[str]:
    model = tiny_model
    settings = ServeSettings(model_path=str(model), dtype="fp32", api_keys=["key"], max_inputs_per_request=4)
    with running_server(settings) as base:
        yield base


def test_sync_client(url: str) -> None:
    with Client(url, api_key="key") as rk:
        assert rk.ready()
        s = rk.score([("What is 2+2?", "4"), ("What is 2+2?", "five")])
        assert len(s.scores) == 2 and s.truncated == [False, False] and s.model_version.startswith("tiny")
        n = rk.score([("What is 2+2?", "4")], normalize=True)
        assert math.isclose(n.scores[0], (s.scores[0] - 0.5) / 2.0, abs_tol=1e-5)
        c = rk.compare("What is 2+2?", "4", "five")
        assert math.isclose(c.p_a_better, 1 / (1 + math.exp(-(s.scores[0] - s.scores[1]) / 2.0)), abs_tol=1e-5)
        r = rk.rank("What is 2+2?", ["five", "4"])
        assert r.order == ([1, 0] if s.scores[0] > s.scores[1] else [0, 1])
        assert len(rk.get_reward(["What is 2+2? 4"], ["What is 2+2? "])) == 1
        assert rk.info()["limits"]["max_inputs_per_request"] == 4
        with pytest.raises(ServiceError) as err:
            rk.score([("p", "r")] * 5)
        assert err.value.status == 413 and err.value.error_type == "payload_too_large"
    with Client(url, api_key="wrong") as bad, pytest.raises(ServiceError) as err:
        bad.score([("p", "r")])
    assert err.value.status == 401


def test_async_client_concurrent(url: str) -> None:
    async def main() -> list[float]:
        async with AsyncClient(url, api_key="key") as rk:
            assert await rk.ready()
            results = await asyncio.gather(*[rk.score([("q", f"answer {i}")]) for i in range(16)])
            with pytest.raises(ServiceError) as err:
                await rk.reload("/no/such/model")
            assert err.value.status == 422 and err.value.error_type == "reload_failed"
            return [r.scores[0] for r in results]

    scores = asyncio.run(main())
    with Client(url, api_key="key") as rk:
        expected = rk.score([("q", f"answer {i}") for i in range(4)]).scores
    assert all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip(scores[:4], expected))


def test_an_error_body_that_is_not_ours_is_still_a_service_error() -> None:
    import httpx

    from rewardkit.client import _parse

    for body in (b"[1, 2]", b"<html>502 Bad Gateway</html>", b'"text"'):
        with pytest.raises(ServiceError) as err:
            _parse(httpx.Response(502, content=body))
        assert err.value.status == 502 and err.value.error_type == "http"


def test_the_client_waits_for_a_server_still_loading_its_model(tmp_path: Path) -> None:
    # a trainer and its reward server are often started together: the client keeps retrying a server that
    # says it is loading (503 + Retry-After) instead of failing after three quick retries
    import httpx

    # its own ensemble, not a shared one: the test needs a slow load, and a folder another test loaded loads faster
    model = build_tiny_ensemble(tmp_path / "ensemble", members=6)  # loads in a few seconds
    settings = ServeSettings(model_path=str(model), dtype="fp32", api_keys=[])
    with running_server(settings, wait_ready=False) as base:
        with Client(base) as rk:
            scores = rk.score([("What is 2+2?", "4")])
        assert len(scores.scores) == 1
        metrics = metric_values(httpx.get(base + "/metrics").text)
        # the client met the loading server, and was told when to come back
        assert metrics[("rk_requests_total", (("route", "/v1/score"), ("status", "503")))] >= 1

        async def async_client() -> list[float]:
            async with AsyncClient(base) as rk:
                return (await rk.score([("q", "a")])).scores

        assert len(asyncio.run(async_client())) == 1


def test_the_client_does_not_wait_for_a_model_that_failed_to_load(tmp_path: Path) -> None:
    import time

    import httpx

    settings = ServeSettings(model_path=str(tmp_path / "no-such-model"), dtype="fp32", api_keys=[])
    with running_server(settings, wait_ready=False) as base:
        deadline = time.monotonic() + 30
        while not httpx.get(base + "/ready").json()["error"].startswith("the model failed to load"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        start = time.monotonic()
        with Client(base) as rk, pytest.raises(ServiceError) as err:
            rk.score([("p", "r")])
        assert err.value.status == 503 and "failed to load" in err.value.message
        assert time.monotonic() - start < 5  # not the 120 s a loading server is given


def test_retry_policy() -> None:
    import httpx

    from rewardkit.client import _retry_delay

    loading = httpx.Response(
        503, headers={"Retry-After": "2"}, json={"error": "model not loaded yet", "error_type": "not_ready"}
    )
    failed = httpx.Response(503, json={"error": "the model failed to load", "error_type": "not_ready"})
    full = httpx.Response(429, headers={"Retry-After": "1"})
    # loading: retried after Retry-After for as long as ready_timeout allows, whatever the retry count
    assert _retry_delay(loading, attempt=3, waited=100.0, retries=3, ready_timeout=120.0) == 2.0
    assert _retry_delay(loading, attempt=0, waited=119.0, retries=3, ready_timeout=120.0) is None
    assert _retry_delay(loading, attempt=0, waited=0.0, retries=3, ready_timeout=0.0) is None
    # a server shutting down says when to come back too: the request is sent again (to another replica behind
    # a load balancer, or to this one restarted)
    draining = httpx.Response(
        503,
        headers={"Retry-After": "1"},
        json={"error": "the server is shutting down, retry on another replica", "error_type": "not_ready"},
    )
    assert _retry_delay(draining, attempt=0, waited=0.0, retries=3, ready_timeout=120.0) == 1.0
    # anything else retryable: `retries` times
    assert _retry_delay(full, attempt=2, waited=0.0, retries=3, ready_timeout=120.0) == 1.0
    assert _retry_delay(full, attempt=3, waited=0.0, retries=3, ready_timeout=120.0) is None
    assert _retry_delay(failed, attempt=0, waited=0.0, retries=3, ready_timeout=120.0) == pytest.approx(0.1)
    assert _retry_delay(httpx.Response(422), attempt=0, waited=0.0, retries=3, ready_timeout=120.0) is None
