"""rewardkit's Client and AsyncClient against a real server on loopback."""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "serve"))
from rk_helpers import build_tiny_model, running_server  # noqa: E402

from rewardkit.client import AsyncClient, Client, ServiceError  # noqa: E402
from rewardkit.serve import ServeSettings  # noqa: E402


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = build_tiny_model(tmp_path_factory.mktemp("tiny"))
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
