"""The chat client against a real HTTP judge server: retries on 429 (Retry-After), 500 and timeouts; one-line
errors for an endpoint that is down, refuses, or does not speak the protocol."""

from __future__ import annotations

import asyncio

import pytest

from rewardkit.label.client import ChatClient, JudgeError
from tests.label.judge_server import JudgeState, free_port, judge_server

QUESTION = "[Response A]\none two\n[End of Response A]\n\n[Response B]\none\n[End of Response B]"


def chat(url: str, content: str, **options) -> tuple[object, ChatClient]:
    async def go():
        client = ChatClient(url, "judge-1", backoff_s=0.01, **options)
        try:
            return await client.chat([{"role": "user", "content": content}]), client
        finally:
            await client.close()

    return asyncio.run(go())


def test_answer_and_usage(judge) -> None:
    url, state = judge
    answer, _ = chat(url, QUESTION)
    assert '"verdict": "A"' in answer.content and answer.prompt_tokens > 0 and answer.completion_tokens > 0
    assert state.models[-1] == "judge-1"
    answer, _ = chat(url + "/chat/completions", QUESTION)  # the full URL works too
    assert '"verdict": "A"' in answer.content


@pytest.mark.parametrize("marker", ["[ratelimit]", "[error500]", "[slow]"])
def test_transient_failures_are_retried(marker: str) -> None:
    with judge_server(JudgeState(slow_s=2.0)) as (url, state):
        answer, client = chat(url, QUESTION + marker, timeout_s=0.5)
        assert '"verdict": "A"' in answer.content
        assert client.retries == 1 and state.requests == 2


def test_retries_run_out_into_one_line() -> None:
    with judge_server(JudgeState(slow_s=1.0)) as (url, state):
        with pytest.raises(JudgeError, match="timed out after 2 attempts") as info:
            chat(url, QUESTION + "[stuck]", timeout_s=0.2, max_retries=1)
        assert state.requests == 2 and "\n" not in str(info.value)


def test_endpoint_down_is_one_line() -> None:
    with pytest.raises(JudgeError) as info:
        chat(f"http://127.0.0.1:{free_port()}/v1", QUESTION, max_retries=1)
    assert "unreachable" in str(info.value) and "\n" not in str(info.value)


def test_garbage_and_refusals_stop_at_once(judge) -> None:
    url, state = judge
    before = state.requests
    with pytest.raises(JudgeError, match="did not answer as an OpenAI chat completion"):
        chat(url, QUESTION + "[garbage]")
    assert state.requests == before + 1  # not retried: retrying does not fix a wrong endpoint
    with pytest.raises(JudgeError, match="refused the request: HTTP 404"):
        chat(url.removesuffix("/v1") + "/nope", QUESTION)


def test_null_content_is_an_empty_answer(judge) -> None:
    answer, _ = chat(judge[0], QUESTION + "[null]")
    assert answer.content == ""


def test_concurrency_is_a_limit() -> None:
    async def go(state: JudgeState, url: str) -> None:
        client = ChatClient(url, "j", concurrency=3)
        try:
            await asyncio.gather(*(client.chat([{"role": "user", "content": f"{QUESTION} {i}"}]) for i in range(12)))
        finally:
            await client.close()

    with judge_server(JudgeState(latency_s=0.05)) as (url, state):
        asyncio.run(go(state, url))
        assert state.max_in_flight == 3 and state.requests == 12
