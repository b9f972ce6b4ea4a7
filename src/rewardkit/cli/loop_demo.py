"""``rewardkit loop demo``: the continuous-training story on the bundled sample, printed step by step (``make
loop-demo``). Real pieces throughout: a ``rewardkit serve --model registry:demo@champion`` process, an
application sending scores and feedback over HTTP, ``loop tick``, the gates, a forced bad promotion and the
rollback. The model is small (the bundled all-MiniLM-L6-v2 backbone, a few dozen steps) so it runs on a CPU."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from rewardkit.cli.output import stdout
from rewardkit.cli.registry_cmd import print_checks

APP_SOURCE, GOLDEN_SOURCE = "app", "golden"


def _say(text: str) -> None:
    stdout.print(f"\n== {text}", highlight=False)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_version(url: str, version: int, timeout: float = 120) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        info = httpx.get(url + "/info", timeout=30).json()
        if info.get("registry_version") == version:
            return time.monotonic() - start
        time.sleep(0.1)
    raise RuntimeError(f"the service did not switch to v{version} within {timeout} s")


def run_loop_demo(out: Path, *, pairs: int = 600, steps: int = 60) -> dict[str, Any]:
    from rewardkit.data.compile import CompileConfig
    from rewardkit.data.sample import generate_sample
    from rewardkit.data.snapshot import build_snapshot
    from rewardkit.loop.config import load_loop_config
    from rewardkit.loop.machine import tick
    from rewardkit.model.backbone import default_backbone_path
    from rewardkit.records import Annotator, Comparison, PairwiseJudgement, Response
    from rewardkit.registry.aliases import promote, rollback, set_alias
    from rewardkit.registry.policy import load_policy
    from rewardkit.registry.versions import register_version
    from rewardkit.settings import get_settings
    from rewardkit.store import open_store, session_scope
    from rewardkit.store import registry as q
    from rewardkit.store.queries import add_comparisons
    from rewardkit.train import TrainConfig, train

    out = out.resolve()
    home = out / "home"
    os.environ["RK_HOME"], os.environ["HF_HUB_OFFLINE"] = str(home), "1"
    os.environ.pop("RK_DATABASE_URL", None)
    get_settings.cache_clear()
    settings = get_settings()
    factory = open_store(settings.resolved_database_url)
    sample = generate_sample(pairs, seed=0)
    # golden prompts are held out: the sample repeats prompts, so split by prompt, not by pair
    prompts = sorted({p.prompt for p in sample})
    random.Random(0).shuffle(prompts)
    held_out = set(prompts[: len(prompts) // 4])
    golden = [p for p in sample if p.prompt in held_out]
    app = [p for p in sample if p.prompt not in held_out]

    _say(f"1. golden snapshot: {len(golden)} human labels on prompts the application never sends")
    human = Annotator("demo-raters", "human")
    with session_scope(factory) as s:
        add_comparisons(s, [
            Comparison(prompt=p.prompt, responses=(Response(p.chosen), Response(p.rejected)),
                       judgement=PairwiseJudgement("a"), annotator=human, source=GOLDEN_SOURCE)
            for p in golden
        ])  # fmt: skip
        built = build_snapshot(s, CompileConfig(sources=(GOLDEN_SOURCE,)), settings.snapshot_dir)
        q.mark_golden(s, snapshot_id=built.id, by="demo", note="bundled sample, held out")
    stdout.print(f"   rewardkit registry golden {built.id}", highlight=False)

    _say("2. the first champion: a reward model trained on the first 60 application labels")
    seed_data = out / "seed.jsonl"
    seed_data.write_text(
        "".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n" for p in app[:60])
    )
    common = {"max_length": 128, "batch_size": 8, "lr": 5e-5, "eval_every": steps, "bf16": "off", "progress": False}
    train(
        TrainConfig(
            data=str(seed_data), out=str(out / "v1"), backbone=default_backbone_path(), max_steps=steps // 3, **common
        )
    )
    v1, _ = register_version(factory, name="demo", source=out / "v1", created_by="demo")
    set_alias(factory, name="demo", alias="champion", version=1, who="demo", why="first champion")
    stdout.print("   rewardkit registry register demo v1 && rewardkit registry alias demo champion 1", highlight=False)

    _say("3. rewardkit serve --model registry:demo@champion")
    port = _port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "RK_ALIAS_POLL_S": "0.5", "RK_SCORE_LOG": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "rewardkit.cli.main", "serve", "--model", "registry:demo@champion", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not become ready")
            time.sleep(0.2)
        info = httpx.get(url + "/info").json()
        stdout.print(
            f"   /info: {info['registry']} v{info['registry_version']} ({info['model_version']})", highlight=False
        )

        _say(f"4. the application scores {len(app)} answer pairs and sends the users' choices to /v1/feedback")
        with httpx.Client(base_url=url, timeout=120) as http:
            for start in range(0, len(app), 50):
                batch = app[start : start + 50]
                http.post(
                    "/v1/score",
                    json={
                        "inputs": [{"prompt": p.prompt, "response": r} for p in batch for r in (p.chosen, p.rejected)]
                    },
                ).raise_for_status()
                items = [{"prompt": p.prompt, "responses": [p.chosen, p.rejected], "choice": "a", "source": APP_SOURCE,
                          "client_event_id": f"demo-{start + i}"} for i, p in enumerate(batch)]  # fmt: skip
                http.post("/v1/feedback", json={"items": items}).raise_for_status()
        stdout.print(f"   {len(app)} comparisons stored", highlight=False)

        _say("5. rewardkit loop tick (a retrain is due: compile, train a challenger, gate, promote)")
        policy = out / "policy.toml"
        # a 60-step model of a 600-pair sample rewards padding and self-praise like any small reward model (rise
        # rates 0.7-0.85 here), and two such models differ by up to ~0.2 on a probe of 50 rows: the demo's probe
        # limits are loose so that the story runs to the end; a production policy keeps the defaults (0.6 and
        # +0.1 over the champion, docs/registry.md)
        policy.write_text(
            "[accuracy]\nmargin = 0.02\nmin_pairs = 20\n[calibration]\nmax_ece = 0.3\nmax_ece_increase = 0.1\n"
            "[probes]\nmax_rise_rate = 0.95\nmax_rise_rate_increase = 0.3\n"
        )
        train_toml = "".join(
            f"{k} = {json.dumps(v)}\n" for k, v in {**common, "max_steps": steps}.items() if k != "progress"
        )
        (out / "loop.toml").write_text(
            f'name = "demo"\nmin_new_comparisons = 100\nwarm_start = "champion"\npolicy = "policy.toml"\n'
            f'lease_ttl_s = 60\n[compile]\nsources = ["{APP_SOURCE}"]\n[train]\n{train_toml}'
            "[eval]\nmax_probe_rows = 50\nn_boot = 200\n"
        )  # fmt: skip
        config = load_loop_config(out / "loop.toml")
        result = tick(factory, config)
        for step in result.steps:
            stdout.print(f"   run {result.run_id}: {step}", highlight=False)
        with session_scope(factory) as s:
            run = q.get_loop_run(s, run_id=result.run_id)
            verdict, error = run.verdict, run.error
        if verdict:
            print_checks(verdict["checks"], indent="   ")
        stdout.print(f"   -> {result.state} {error or ''} in {result.seconds:.0f} s", highlight=False)
        summary: dict[str, Any] = {"tick": result.state}
        if result.state == "promoted":
            switched = _wait_version(url, 2)
            stdout.print(
                f"   the service serves v2 {switched:.1f} s later: {httpx.get(url + '/info').json()['model_version']}",
                highlight=False,
            )
            summary["switch_s"] = switched

            _say("6. a challenger trained on flipped labels: the gates refuse it")
            flipped = out / "flipped.jsonl"
            flipped.write_text(
                "".join(
                    json.dumps({"prompt": p.prompt, "chosen": p.rejected, "rejected": p.chosen}) + "\n" for p in app
                )
            )
            train(
                TrainConfig(
                    data=str(flipped), out=str(out / "bad"), backbone=default_backbone_path(), max_steps=steps, **common
                )
            )
            bad, _ = register_version(factory, name="demo", source=out / "bad", created_by="demo (flipped labels)")
            pol = load_policy(policy)
            refused = promote(
                factory, name="demo", version=bad.version, who="demo", policy=pol, eval_config=config.eval_config()
            )
            print_checks(refused.verdict["checks"], indent="   ")
            stdout.print(f"   -> {'promoted?!' if refused.move else 'refused; the champion stays v2'}", highlight=False)
            summary["bad_refused"] = refused.move is None

            _say(f"7. rewardkit registry promote demo --version {bad.version} --force, then rollback")
            forced = promote(
                factory,
                name="demo",
                version=bad.version,
                who="demo",
                policy=pol,
                force=True,
                eval_config=config.eval_config(),
            )
            _wait_version(url, bad.version)
            stdout.print(f"   forced={forced.move.forced}: the service serves v{bad.version}", highlight=False)
            start = time.monotonic()
            rollback(factory, name="demo", who="on-call", why="bad deploy")
            back = _wait_version(url, 2)
            stdout.print(
                f"   rewardkit registry rollback demo: serving v2 again {time.monotonic() - start:.1f} s later",
                highlight=False,
            )
            summary["rollback_s"] = back
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        factory.kw["bind"].dispose()
    return summary
