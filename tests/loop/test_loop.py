"""The loop on a real SQLite store with real (tiny) training: an idle tick is fast, enough new comparisons
train, gate and promote a challenger exactly once, a failing train leaves the champion serving, and a tick
killed with SIGKILL mid-training is resumed by the next tick once the dead tick's lease expires."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loop_helpers import comparisons, write_config

from rewardkit.data.compile import CompileConfig
from rewardkit.data.snapshot import build_snapshot
from rewardkit.loop.config import LoopConfigError, load_loop_config
from rewardkit.loop.lease import LeaseBusy
from rewardkit.loop.machine import tick
from rewardkit.registry.aliases import set_alias
from rewardkit.registry.versions import register_version
from rewardkit.settings import get_settings
from rewardkit.store import open_store, session_scope
from rewardkit.store import registry as q
from rewardkit.store.queries import add_comparisons

pytestmark = pytest.mark.slow

POLICY = """
[accuracy]
margin = 0.05
min_pairs = 10
[calibration]
max_ece = 1.0
max_ece_increase = 1.0
[probes]
max_rise_rate = 1.0
max_rise_rate_increase = 1.0
[length_bias]
max_increase = 1.0
"""


def loop_toml(tmp_path: Path, backbone: str, **extra: str) -> Path:
    write_config(tmp_path / "policy.toml", POLICY)
    lines = {
        "name": '"rm"',
        "min_new_comparisons": "30",
        "warm_start": '"backbone"',
        "backbone": f'"{backbone}"',
        "policy": '"policy.toml"',
        "lease_ttl_s": "3",
        "max_attempts": "2",
        "work_dir": f'"{tmp_path / "work"}"',
        "device": '"cpu"',
        **extra,
    }
    body = "".join(f"{k} = {v}\n" for k, v in lines.items())
    body += '[compile]\nsources = ["app"]\nfractions = [0.8, 0.2, 0.0]\n'
    body += "[train]\nmax_steps = 30\nlr = 2e-3\nmax_length = 64\nbatch_size = 8\neval_every = 15\nthreads = 1\n"
    body += 'bf16 = "off"\nreference_size = 8\n'
    body += '[eval]\nmax_probe_rows = 10\nn_boot = 20\nprobes = "none"\n'
    return write_config(tmp_path / "loop.toml", body)


@pytest.fixture
def seeded(tmp_path: Path, tiny_rm: Path, monkeypatch: pytest.MonkeyPatch):
    """A store under a fresh RK_HOME: champion v1 (an untrained tiny model), a golden snapshot of 40 human
    comparisons (source 'golden'), and 10 application comparisons (not yet enough to retrain)."""
    monkeypatch.setenv("RK_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    factory = open_store(get_settings().resolved_database_url)
    with session_scope(factory) as s:
        add_comparisons(s, comparisons(40, source="golden", start=1000))
        add_comparisons(s, comparisons(10, source="app", start=0))
        golden = build_snapshot(s, CompileConfig(sources=("golden",)), get_settings().snapshot_dir)
        q.mark_golden(s, snapshot_id=golden.id, by="test")
    register_version(factory, name="rm", source=tiny_rm, created_by="test")
    set_alias(factory, name="rm", alias="champion", version=1, who="test")
    yield factory
    factory.kw["bind"].dispose()
    get_settings.cache_clear()


def champion(factory) -> int | None:
    with session_scope(factory) as s:
        return q.alias_version(s, name="rm", alias="champion")


def test_idle_tick_then_retrain_gate_promote_once(seeded, tmp_path: Path, tiny_backbone: str) -> None:
    config = load_loop_config(loop_toml(tmp_path, tiny_backbone))
    idle = tick(seeded, config)
    assert idle.action == "idle" and "10 new comparisons < 30" in idle.detail
    assert idle.seconds < 1.0, f"an idle tick took {idle.seconds:.2f} s"

    with session_scope(seeded) as s:
        add_comparisons(s, comparisons(60, source="app", start=10))
    result = tick(seeded, config)
    assert result.state == "promoted", result
    assert result.steps == [
        "pending -> compiled", "compiled -> trained", "trained -> registered", "registered -> promoted"
    ]  # fmt: skip
    assert champion(seeded) == 2
    with session_scope(seeded) as s:
        run = q.get_loop_run(s, run_id=result.run_id)
        v2 = q.get_model_version(s, name="rm", version=2)
        moves = q.alias_history(s, name="rm", alias="champion")
    assert run.verdict["passed"] and v2.snapshot_id == run.snapshot_id and v2.eval_summary["accuracy"] > 0.9
    assert [m.kind for m in moves] == ["promote", "set"] and moves[0].reports["candidate"]["n_pairs"] == 40

    again = tick(seeded, config)  # nothing new since the new champion's snapshot: idle, nothing promoted twice
    assert again.action == "idle" and champion(seeded) == 2


def test_a_failing_train_leaves_the_champion_serving(seeded, tmp_path: Path) -> None:
    config = load_loop_config(loop_toml(tmp_path, str(tmp_path / "no-such-backbone")))
    with session_scope(seeded) as s:
        add_comparisons(s, comparisons(40, source="app", start=10))
    first = tick(seeded, config)
    assert first.state == "compiled" and "no-such-backbone" in first.detail  # retried at the next tick
    second = tick(seeded, config)
    assert second.state == "failed" and champion(seeded) == 1
    with session_scope(seeded) as s:
        assert [r.state for r in q.list_loop_runs(s, name="rm")] == ["failed"]
        assert len(q.list_model_versions(s, name="rm")) == 1


def test_bad_loop_config_is_one_line(tmp_path: Path, tiny_backbone: str) -> None:
    path = loop_toml(tmp_path, tiny_backbone, speed='"fast"')
    with pytest.raises(LoopConfigError, match=r"loop.toml: unknown key 'speed'"):
        load_loop_config(path)


def test_sigkill_mid_training_resumes_after_the_lease_expires(seeded, tmp_path: Path, tiny_backbone: str) -> None:
    path = loop_toml(tmp_path, tiny_backbone)
    config = load_loop_config(path)
    with session_scope(seeded) as s:
        add_comparisons(s, comparisons(60, source="app", start=10))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src"), "RK_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rewardkit.cli.main", "loop", "tick", "--config", str(path)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    state = None
    while time.monotonic() < deadline and proc.poll() is None:
        with session_scope(seeded) as s:
            runs = q.list_loop_runs(s, name="rm")
            state = runs[0].state if runs else None
        if state == "compiled":  # training is under way
            break
        time.sleep(0.05)
    assert state == "compiled", f"the tick never reached training (state {state}): {proc.communicate()[0][-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with pytest.raises(LeaseBusy, match=r"lease 'loop:rm' is held by .*:\d+ until .* another tick is running"):
        tick(seeded, config)  # the dead tick's lease has not expired yet
    time.sleep(config.lease_ttl_s + 0.5)
    result = tick(seeded, config)
    assert result.state == "promoted" and result.steps[0] == "compiled -> trained", result
    with session_scope(seeded) as s:
        assert [r.state for r in q.list_loop_runs(s, name="rm")] == ["promoted"]  # resumed, not restarted
        assert len(q.list_model_versions(s, name="rm")) == 2
        assert [m.kind for m in q.alias_history(s, name="rm", alias="champion")] == ["promote", "set"]
