"""The CLI starts without torch: ``rewardkit train --help`` is generated from the torch-free TrainConfig."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_cli_does_not_import_torch_or_transformers() -> None:
    code = "import sys, rewardkit.cli.main; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_train_reexports_the_torch_free_config() -> None:
    from rewardkit.train import TrainConfig
    from rewardkit.train.config import TrainConfig as Plain

    assert TrainConfig is Plain


def test_the_config_module_does_not_import_torch() -> None:
    code = "import sys, rewardkit.train.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
