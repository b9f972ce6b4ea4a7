"""Model reload without downtime: concurrent clients keep scoring while the model is swapped; no request
fails, each response names the version that produced it (and its score is that model's), versions switch
once and cleanly. Also SIGHUP on a real ``rewardkit serve`` process."""

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
from rk_helpers import free_port

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
def test_sighup_reloads_a_real_serve_process(tiny_model: Path, tmp_path: Path) -> None:
    """``rewardkit serve`` in its own process: SIGHUP reloads the model folder, now holding other weights."""
    import shutil

    folder = tmp_path / "served"
    shutil.copytree(tiny_model, folder)
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RK_API_KEYS": "[]"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rewardkit.cli.main",
            "serve",
            "--model",
            str(folder),
            "--port",
            str(port),
            "--dtype",
            "fp32",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        first = _wait_ready(url, proc)
        before = httpx.post(url + "/v1/score", json=ROW).json()
        sys.path.insert(0, str(Path(__file__).parent))
        from rk_helpers import build_tiny_model

        build_tiny_model(folder, seed=7)  # new weights in the same folder -> a new content version
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while (after := httpx.post(url + "/v1/score", json=ROW).json())["model_version"] == first:
            assert time.monotonic() < deadline and proc.poll() is None, "SIGHUP did not reload"
            time.sleep(0.1)
        assert before["model_version"] == first and after["scores"] != before["scores"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait_ready(url: str, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "server exited"
        try:
            if httpx.get(url + "/ready").status_code == 200:
                return httpx.get(url + "/info").json()["model_version"]
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("server not ready in 90 s")
