"""DDP on CPU: the same entry point under torchrun with 2 gloo processes trains one model.

Checks the world size really is 2 on both ranks (a launcher that silently runs one process fails here),
that both ranks end with bit-identical weights, and that only rank 0 wrote the output folder.
"""

from __future__ import annotations

import json
import os
import shutil
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


@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(), reason="torchrun not installed")
def test_two_gloo_processes_end_with_identical_weights(tiny_backbone, tmp_path):  # noqa: F811
    data = write_jsonl(tmp_path / "pairs.jsonl", synthetic_rows(64))
    (tmp_path / "driver.py").write_text(DRIVER)
    (tmp_path / "report").mkdir()
    torchrun = str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "--master_port", str(29500 + os.getpid() % 1000),
         str(tmp_path / "driver.py"), str(data), str(tmp_path / "rm"), tiny_backbone, str(tmp_path / "report")],
        env=env, capture_output=True, text=True, timeout=300,
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
