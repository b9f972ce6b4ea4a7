"""A real OpenAI-compatible chat server (FastAPI on uvicorn, 127.0.0.1) that plays an LLM judge
deterministically, for the tests and ``benchmarks/label_bench.py``.

``POST /v1/chat/completions`` answers ``choices[0].message.content`` and ``usage``. As a judge it prefers the
response with more words (equal: tie) and answers strict JSON. Markers in the conversation change that, per
request content:

- ``[biased]``: always "A" (position bias: the two orders disagree)
- ``[fallback]``: the verdict as MT-Bench text, ``[[A]]``/``[[B]]``, no JSON
- ``[fenced]``: the JSON inside a ```json fence with prose around it
- ``[malformed]``: broken JSON with no verdict in it; ``[refuse]``: a refusal; ``[null]``: content null
- ``[ratelimit]`` / ``[error500]`` / ``[slow]``: the first request with this content gets 429 (Retry-After) /
  500 / an answer slower than the client's timeout, the next ones the normal answer
- ``[stuck]``: every answer slower than the client's timeout
- ``[garbage]``: a 200 whose body is HTML, not a chat completion

As a critic (system prompt mentions "critic") it critiques; asked to rewrite, it answers "REVISED: <original>".
``latency_s`` delays every answer; the server records in-flight requests over time for the benchmark.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse


@dataclass
class JudgeState:
    latency_s: float = 0.0
    slow_s: float = 3.0
    seen: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    busy_integral: float = 0.0
    """Sum over time of in-flight requests (request-seconds): divided by (concurrency x wall time) it is the
    share of the configured concurrency that was kept busy."""
    last_change: float = field(default_factory=time.perf_counter)
    models: list[str] = field(default_factory=list)

    def _tick(self, delta: int) -> None:
        now = time.perf_counter()
        self.busy_integral += self.in_flight * (now - self.last_change)
        self.last_change = now
        self.in_flight += delta
        self.max_in_flight = max(self.max_in_flight, self.in_flight)


def _words(text: str) -> int:
    return len(text.split())


def _block(text: str, name: str) -> str:
    match = re.search(rf"\[{name}\]\n(.*?)\n\[End of {name}\]", text, re.DOTALL)
    return match.group(1) if match else ""


def judge_content(messages: list[dict[str, Any]]) -> str:
    system = " ".join(m["content"] for m in messages if m["role"] == "system")
    user = messages[-1]["content"]
    everything = " ".join(str(m.get("content")) for m in messages)
    if "critic" in system:
        if "rewritten response only" in user:
            original = _block(messages[1]["content"], "Response")
            return f"REVISED: {original}"
        return "The response could be more specific about the principle."
    a, b = _block(user, "Response A"), _block(user, "Response B")
    verdict = "A" if _words(a) > _words(b) else "B" if _words(b) > _words(a) else "tie"
    if "[biased]" in everything:
        verdict = "A"
    rationale = f"A has {_words(a)} words, B has {_words(b)}."
    if "[fallback]" in everything:
        return f"Comparing both: {rationale} My final verdict is [[{'C' if verdict == 'tie' else verdict}]]."
    if "[malformed]" in everything:
        return '{"rationale": "both are fine", "verdict": '
    if "[refuse]" in everything:
        return "I'm sorry, but I can't help with comparing these responses."
    answer = json.dumps({"rationale": rationale, "verdict": verdict})
    if "[fenced]" in everything:
        return f"Here is my judgement:\n```json\n{answer}\n```\nHope this helps."
    return answer


def create_judge_app(state: JudgeState) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        state.requests += 1
        state.models.append(body.get("model"))
        messages = body["messages"]
        everything = " ".join(str(m.get("content")) for m in messages)
        key = json.dumps(messages, sort_keys=True)
        state.seen[key] = state.seen.get(key, 0) + 1
        first = state.seen[key] == 1
        state._tick(+1)
        try:
            if state.latency_s:
                await asyncio.sleep(state.latency_s)
            if first and "[ratelimit]" in everything:
                return JSONResponse({"error": "rate limited"}, status_code=429, headers={"Retry-After": "0.05"})
            if first and "[error500]" in everything:
                return JSONResponse({"error": "boom"}, status_code=500)
            if (first and "[slow]" in everything) or "[stuck]" in everything:
                await asyncio.sleep(state.slow_s)
            if "[garbage]" in everything:
                return PlainTextResponse("<html><body>502 Bad Gateway</body></html>", status_code=200)
            content = None if "[null]" in everything else judge_content(messages)
            usage = {"prompt_tokens": _words(everything), "completion_tokens": _words(content or "")}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            return {
                "id": f"chatcmpl-{state.requests}",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": usage,
            }
        finally:
            state._tick(-1)

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        state._tick(0)  # close the busy integral up to now
        return {"requests": state.requests, "max_in_flight": state.max_in_flight, "busy_integral": state.busy_integral}

    @app.post("/stats/reset")
    async def reset() -> dict[str, Any]:
        state.busy_integral, state.last_change, state.max_in_flight, state.requests = 0.0, time.perf_counter(), 0, 0
        return {}

    return app


def serve_forever(port: int, latency_s: float) -> None:
    """Serve the judge in this process until killed (the benchmark runs it as its own process, as a real
    judge endpoint is: the client and the server do not share one interpreter)."""
    import uvicorn

    app = create_judge_app(JudgeState(latency_s=latency_s))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextmanager
def judge_server(state: JudgeState | None = None) -> Iterator[tuple[str, JudgeState]]:
    """Serve the judge on 127.0.0.1:<free port>; yields (base URL ending in /v1, state)."""
    import socket

    import uvicorn

    state = state or JudgeState()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_judge_app(state), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "judge server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1", state
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def free_port() -> int:
    """A port with nothing listening (for the endpoint-down test)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
