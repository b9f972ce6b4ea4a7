"""A conversation the model's chat template refuses (Mistral's and Gemma's templates reject a system turn and
roles that do not alternate) is the client's input error: 422 ``invalid_input`` naming the input, on every
route, and only for the request that sent it, even when the batcher merged it with others."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rk_testing.server import metric_values, running_server

from rewardkit.serve import ServeSettings

GOOD = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
SYSTEM = [
    {"role": "system", "content": "be nice"},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "yo"},
]
TWO_USERS = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]


@pytest.fixture(scope="module")
def chat_url(tiny_chat_model: Path) -> Iterator[str]:
    model = tiny_chat_model
    # a long batching window, so concurrent requests are merged into one scoring call
    settings = ServeSettings(model_path=str(model), dtype="fp32", api_keys=[], max_wait_ms=300)
    with running_server(settings) as url:
        yield url


def refused(r: httpx.Response, where: str) -> None:
    assert r.status_code == 422, r.text
    assert r.json()["error_type"] == "invalid_input"
    assert r.json()["error"].startswith(
        f"{where}: the model's chat template refuses this conversation: Conversation roles must alternate"
    )


def test_every_route_answers_422_naming_the_refused_input(chat_url: str) -> None:
    ok = httpx.post(chat_url + "/v1/score", json={"inputs": [{"messages": GOOD}]})
    assert ok.status_code == 200, ok.text
    refused(
        httpx.post(chat_url + "/v1/score", json={"inputs": [{"messages": GOOD}, {"messages": SYSTEM}]}), "inputs[1]"
    )
    refused(httpx.post(chat_url + "/v1/score", json={"inputs": [{"prompt": TWO_USERS, "response": "x"}]}), "inputs[0]")
    refused(
        httpx.post(chat_url + "/v1/compare", json={"prompt": TWO_USERS, "response_a": "x", "response_b": "y"}), "prompt"
    )
    refused(httpx.post(chat_url + "/v1/rank", json={"prompt": SYSTEM[:2], "responses": ["x", "y"]}), "prompt")
    metrics = metric_values(httpx.get(chat_url + "/metrics").text)
    failures = {
        dict(labels)["error_type"] for (name, labels), v in metrics.items() if name == "rk_request_failures_total" and v
    }
    assert failures == {"invalid_input"}  # never "internal"


def test_a_refused_request_fails_alone_when_merged_with_others(chat_url: str) -> None:
    bodies = [
        {"inputs": [{"messages": GOOD}, {"prompt": "q", "response": "a"}]},
        {"inputs": [{"prompt": "fine", "response": "ok"}, {"messages": SYSTEM}]},  # its own input 1 is refused
        {"inputs": [{"prompt": "q2", "response": "a2"}]},
    ]

    async def together() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=chat_url, timeout=60) as c:
            return await asyncio.gather(*[c.post("/v1/score", json=b) for b in bodies])

    before = metric_values(httpx.get(chat_url + "/metrics").text)
    first, bad, third = asyncio.run(together())
    after = metric_values(httpx.get(chat_url + "/metrics").text)
    # merged, the call holding all three requests' rows fails on the refused one (row 3 of it) and records
    # nothing; the two others are then scored together: one recorded call (not merged: two)
    calls = after[("rk_batch_size_count", ())] - before.get(("rk_batch_size_count", ()), 0)
    assert calls == 1, "the requests were not merged; the test proves nothing"
    refused(bad, "inputs[1]")
    alone = [httpx.post(chat_url + "/v1/score", json=b).json()["scores"] for b in (bodies[0], bodies[2])]
    assert first.status_code == 200 and third.status_code == 200
    assert first.json()["scores"] == pytest.approx(alone[0], abs=1e-4)
    assert third.json()["scores"] == pytest.approx(alone[1], abs=1e-4)


def test_the_batcher_hands_the_refusal_to_the_request_that_sent_it(tiny_chat_model: Path) -> None:
    from rewardkit.model.formatting import ChatTemplateError
    from rewardkit.scoring.scorer import load_scorer
    from rewardkit.serve.batcher import MicroBatcher

    scorer = load_scorer(str(tiny_chat_model), dtype="fp32")

    async def main() -> list[object]:
        batcher = MicroBatcher(queue_size=16, max_wait_ms=200, max_rows=64, token_budget=100_000)
        batcher.start()
        try:
            jobs = [
                batcher.submit(scorer, ["p", "q"], ["a", "b"]),
                batcher.submit(scorer, ["p", TWO_USERS, "r"], ["a", "x", "c"]),
                batcher.submit(scorer, [SYSTEM[:2]], ["x"]),
                batcher.submit(scorer, ["s"], ["d"]),
            ]
            return await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            await batcher.stop()

    first, second, third, fourth = asyncio.run(main())
    assert isinstance(second, ChatTemplateError) and second.row == 1  # its own row 1 (row 3 of the merged call)
    assert isinstance(third, ChatTemplateError) and third.row == 0
    assert list(first.raw) == pytest.approx(list(scorer.score(["p", "q"], ["a", "b"]).raw), abs=1e-5)  # type: ignore[union-attr]
    assert list(fourth.raw) == pytest.approx(list(scorer.score(["s"], ["d"]).raw), abs=1e-5)  # type: ignore[union-attr]
