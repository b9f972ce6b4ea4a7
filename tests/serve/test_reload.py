"""Model reload without downtime: concurrent clients keep scoring while the model is swapped; no request
fails, each response names the version that produced it (and its score is that model's), versions switch
once and cleanly. Also SIGHUP on a real ``rewardkit serve`` process, and the log line of every reload."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from rk_testing.server import free_port
from rk_testing.tiny_models import build_tiny_ensemble, build_tiny_model

ROW = {"inputs": [{"prompt": "What is the capital of France?", "response": "Paris, of course."}]}


def test_admin_reload_under_concurrent_requests(serve, tiny_model_b: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with serve() as url:
        seen: list[list[tuple[float, str, float]]] = [[] for _ in range(8)]
        reloaded_at: list[float] = []

        async def client(i: int, c: httpx.AsyncClient, stop: asyncio.Event) -> None:
            while not stop.is_set():
                sent = time.monotonic()
                r = await c.post("/v1/score", json=ROW)
                assert r.status_code == 200, r.text
                seen[i].append((sent, r.json()["model_version"], r.json()["scores"][0]))

        async def main() -> dict:
            stop = asyncio.Event()
            async with httpx.AsyncClient(base_url=url, timeout=60) as c:
                tasks = [asyncio.create_task(client(i, c, stop)) for i in range(8)]
                await asyncio.sleep(0.5)
                r = await c.post("/admin/reload", json={"model_path": str(tiny_model_b)})
                reloaded_at.append(time.monotonic())
                await asyncio.sleep(0.5)
                stop.set()
                await asyncio.gather(*tasks)  # any failed request raises here
                return r.json()

        out = asyncio.run(main())
        assert out["previous_version"].startswith("tiny_a") and out["model_version"].startswith("tiny_b")
        versions = {v for rows in seen for _, v, _ in rows}
        assert versions == {out["previous_version"], out["model_version"]}
        # each version's answers come from that model only: equal within the batch-invariance bound (1e-3;
        # the same row lands in different micro-batches), and the two models' scores are far apart
        by_version = {version: [s for rows in seen for _, v, s in rows if v == version] for version in versions}
        for version, scores in by_version.items():
            assert max(scores) - min(scores) < 1e-3, (version, min(scores), max(scores))
        old, new = (by_version[out[k]][0] for k in ("previous_version", "model_version"))
        assert abs(old - new) > 1e-2
        for rows in seen:  # per client: old model, then new model, never back
            names = [v for _, v, _ in rows]
            switch = names.index(out["model_version"]) if out["model_version"] in names else len(names)
            assert all(v == out["previous_version"] for v in names[:switch])
            assert all(v == out["model_version"] for v in names[switch:])
            assert all(v == out["model_version"] for sent, v, _ in rows if sent > reloaded_at[0])
        broken = tmp_path / "broken"
        shutil.copytree(tiny_model_b, broken)
        (broken / "model.safetensors").write_bytes(b"not a safetensors file")  # raises neither OSError nor ValueError
        for path in ("/no/such/model", str(broken)):
            bad = httpx.post(url + "/admin/reload", json={"model_path": path})
            assert bad.status_code == 422 and bad.json()["error_type"] == "reload_failed", bad.text
        metrics = httpx.get(url + "/metrics").text  # failures are counted under their own error type
        assert 'rk_request_failures_total{error_type="reload_failed",route="/admin/reload"} 2.0' in metrics
        assert httpx.post(url + "/v1/score", json=ROW).json()["model_version"] == out["model_version"]


@pytest.mark.slow
def test_a_real_serve_process_reloads_on_sighup_and_logs_every_reload(
    tiny_model: Path, tiny_model_b: Path, tmp_path: Path
) -> None:
    """``rewardkit serve`` in its own process: SIGHUP reloads the model folder, now holding other weights; every
    load (at start, by /admin/reload, failed, by SIGHUP) is one log line naming who, from, to, time and outcome
    (the issue: ~50 reloads and a SIGHUP left zero log lines)."""
    folder = tmp_path / "served"
    shutil.copytree(tiny_model, folder)
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RK_API_KEYS": '["k1", "k2"]'}
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "rewardkit.cli.main", "serve", "--model", str(folder), "--port", str(port)]
    with log.open("w") as err:
        proc = subprocess.Popen(cmd + ["--dtype", "fp32"], env=env, stdout=err, stderr=err)
    url = f"http://127.0.0.1:{port}"
    key = {"Authorization": "Bearer k2"}
    try:
        first = _wait_ready(url, proc, log, key)
        other = httpx.post(url + "/admin/reload", json={"model_path": str(tiny_model_b)}, headers=key).json()
        assert httpx.post(url + "/admin/reload", json={"model_path": "/no/such"}, headers=key).status_code == 422
        back = httpx.post(url + "/admin/reload", json={"model_path": str(folder)}, headers=key).json()
        assert back["model_version"] == first
        before = httpx.post(url + "/v1/score", json=ROW, headers=key).json()
        build_tiny_model(folder, seed=7)  # new weights in the same folder -> a new content version
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while (after := httpx.post(url + "/v1/score", json=ROW, headers=key).json())["model_version"] == first:
            assert time.monotonic() < deadline and proc.poll() is None, "SIGHUP did not reload"
            time.sleep(0.1)
        assert before["model_version"] == first and after["scores"] != before["scores"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lines = [line for line in log.read_text().splitlines() if "model load by" in line]
    assert len(lines) == 5, log.read_text()
    start, to_b, failed, to_a, hup = lines
    assert start.startswith("INFO") and f"by startup: None -> {first} ({folder}) ok in " in start
    who = "POST /admin/reload (api key 2 from 127.0.0.1)"  # which key by its position, never the key itself
    assert to_b.startswith("INFO") and f"by {who}: {first} -> {other['model_version']} ({tiny_model_b}) ok" in to_b
    assert "k2" not in log.read_text()
    assert failed.startswith("ERROR") and f"by {who}: {other['model_version']} -> /no/such failed after " in failed
    assert f"; serving {other['model_version']}" in failed
    assert f"by {who}: {other['model_version']} -> {first} ({folder}) ok in " in to_a
    assert hup.startswith("INFO") and f"by SIGHUP: {first} -> {after['model_version']} ({folder}) ok in " in hup
    for line in (start, to_b, to_a, hup):
        assert line.endswith(" s") and float(line.split(" ok in ")[1][:-2]) >= 0


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, headers: dict[str, str]) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(url + "/ready").status_code == 200:
                return httpx.get(url + "/info", headers=headers).json()["model_version"]
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("server not ready in 90 s")


def test_a_reload_still_loading_at_shutdown_is_answered_503_json(serve, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Shutting down, what has not answered by the drain deadline (here a reload of a model that takes seconds to
    load) is cut short with a JSON 503, not left for uvicorn to cancel into a plain-text 500."""
    import threading

    from rewardkit.serve.deps import ModelSlot

    slow = build_tiny_ensemble(tmp_path / "ensemble", members=2)
    load = ModelSlot._load

    def slow_load(self: ModelSlot, path: str):  # type: ignore[no-untyped-def]
        if path == str(slow):  # a big model: seconds to load, whatever this machine's speed (was: timing-dependent)
            time.sleep(3)
        return load(self, path)

    monkeypatch.setattr(ModelSlot, "_load", slow_load)
    answer: list[httpx.Response | Exception] = []
    answered: list[float] = []

    def reload(url: str) -> None:
        try:
            answer.append(httpx.post(url + "/admin/reload", json={"model_path": str(slow)}, timeout=60))
            answered.append(time.monotonic())
        except httpx.HTTPError as exc:
            answer.append(exc)

    with serve(shutdown_grace_s=0.3) as url:
        post = threading.Thread(target=reload, args=(url,))
        post.start()
        time.sleep(0.3)  # the reload has started loading
        start = time.monotonic()
    post.join(timeout=30)  # leaving the block shut the server down (and waited for the load's thread to end)
    (r,) = answer
    assert isinstance(r, httpx.Response), r
    assert r.status_code == 503 and r.headers["content-type"] == "application/json", r.text
    assert r.json()["error_type"] == "not_ready" and r.headers["retry-after"] == "1"
    assert answered[0] - start < 3  # the grace period (0.3 s) + the gate's 0.5 s, on a busy machine
