"""DDP on CPU: the same entry point under torchrun and under accelerate launch, 2 gloo processes each,
trains one model.

Checks the world size really is 2 on both ranks (a launcher that silently runs one process fails here:
``accelerate launch --num_processes 2`` without ``--multi_gpu`` is one), that both ranks end with
bit-identical weights, and that only rank 0 wrote the output folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_train import synthetic_rows, tiny_backbone, write_jsonl  # noqa: F401  (fixture)

DRIVER = """
import json, os, sys
import torch.distributed as dist
from rewardkit.train import TrainConfig, train
data, out, backbone, report = sys.argv[1:5]
result = train(TrainConfig(data=data, out=out, backbone=backbone, max_length=48, batch_size=4, lr=1e-3,
                           max_steps=4, eval_every=2, bf16="off", progress=False, threads=1))
with open(f"{report}/rank{dist.get_rank()}.json", "w") as f:
    json.dump({"rank": dist.get_rank(), "world": dist.get_world_size(), "backend": dist.get_backend(),
               "digest": result.metrics["weights_sha256"], "metrics_world": result.metrics["world_size"]}, f)
"""


def launcher_command(launcher: str, port: int) -> list[str]:
    """The documented launch lines (docs/training.md), with a port of this test's own."""
    exe = str(Path(sys.executable).parent / launcher)
    if launcher == "torchrun":
        return [exe, "--nproc_per_node", "2", "--master_port", str(port)]
    # --multi_gpu is what makes accelerate start 2 processes, on a CPU-only machine too
    return [exe, "launch", "--multi_gpu", "--num_processes", "2", "--main_process_port", str(port)]


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_gloo_processes_end_with_identical_weights(launcher, tiny_backbone, tmp_path):  # noqa: F811
    if not (Path(sys.executable).parent / launcher).exists():
        pytest.skip(f"{launcher} not installed")
    data = write_jsonl(tmp_path / "pairs.jsonl", synthetic_rows(64))
    (tmp_path / "driver.py").write_text(DRIVER)
    (tmp_path / "report").mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    port = 29500 + os.getpid() % 1000 + (0 if launcher == "torchrun" else 1000)
    proc = subprocess.run(
        launcher_command(launcher, port)
        + [str(tmp_path / "driver.py"), str(data), str(tmp_path / "rm"), tiny_backbone, str(tmp_path / "report")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = [json.loads((tmp_path / "report" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in reports] == [2, 2] and [r["metrics_world"] for r in reports] == [2, 2]
    assert reports[0]["backend"] == "gloo"
    assert reports[0]["digest"] == reports[1]["digest"]
    card = json.loads((tmp_path / "rm" / "rewardkit.json").read_text())
    assert card["metrics"]["weights_sha256"] == reports[0]["digest"]
    # 4 steps x 4 pairs x 2 ranks: every step consumed 8 distinct pairs
    assert card["metrics"]["steps"] == 4


def test_torchrun_runs_the_cli_module(tiny_backbone, tmp_path):  # noqa: F811
    """The documented line: ``torchrun --nproc_per_node 2 -m rewardkit train --data ... --out ...`` runs the
    ``rewardkit train`` command (train/__main__.py) on 2 ranks; rank 0 alone prints the result."""
    exe = Path(sys.executable).parent / "torchrun"
    if not exe.exists():
        pytest.skip("torchrun not installed")
    data = write_jsonl(tmp_path / "pairs.jsonl", synthetic_rows(64))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    port = 29500 + os.getpid() % 1000 + 2000
    proc = subprocess.run(
        [str(exe), "--nproc_per_node", "2", "--master_port", str(port), "-m", "rewardkit", "train"]
        + ["--data", str(data), "--out", str(tmp_path / "rm"), "--backbone", tiny_backbone, "--max-length", "48"]
        + ["--batch-size", "4", "--max-steps", "2", "--eval-every", "2", "--bf16", "off", "--threads", "1"]
        + ["--no-progress", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count('"weights_sha256"') == 1  # one rank reports
    result = json.loads(proc.stdout)
    assert result["metrics"]["world_size"] == 2 and result["metrics"]["steps"] == 2
    assert (tmp_path / "rm" / "rewardkit.json").is_file()
