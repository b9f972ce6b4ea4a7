"""``rewardkit registry`` end to end through the real command (a subprocess: one-line errors, exit codes, --json),
and the MLflow mirror against a real local MLflow file store (skipped without the mlflow extra)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src"


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def rk(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run the console script's entry (``main.run``: the one-line error handling included) in this process."""
    from rewardkit.cli.main import run
    from rewardkit.settings import get_settings

    monkeypatch.delenv("RK_DATABASE_URL", raising=False)

    def call(home: Path, *args: str) -> Ran:
        monkeypatch.setenv("RK_HOME", str(home))
        monkeypatch.setattr(sys, "argv", ["rewardkit", *args])
        get_settings.cache_clear()
        capsys.readouterr()
        code = 0
        try:
            run()
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    yield call
    get_settings.cache_clear()


def test_a_mistake_in_a_real_process_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC), "RK_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    env.pop("RK_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "rewardkit.cli.main", "registry", "promote", "nope", "--version", "3"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.strip() == "rewardkit: error: no registered model named 'nope'"


def test_register_alias_list_diff_rollback_and_one_line_errors(rk, tmp_path: Path, tiny_a: Path, tiny_b: Path) -> None:
    home = tmp_path / "home"
    out = rk(home, "registry", "register", "rm", str(tiny_a), "--by", "alice", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["version"] == 1
    assert json.loads(rk(home, "registry", "register", "rm", str(tiny_b), "--json").stdout)["version"] == 2
    assert rk(home, "registry", "alias", "rm", "champion", "1", "--json").returncode == 0
    assert rk(home, "registry", "alias", "rm", "challenger", "2", "--why", "try it").returncode == 0
    listed = json.loads(rk(home, "registry", "list", "rm", "--json").stdout)
    assert [(v["version"], v["aliases"]) for v in listed] == [(1, ["champion"]), (2, ["challenger"])]
    diff = json.loads(rk(home, "registry", "diff", "rm", "1", "2", "--json").stdout)
    assert "sha256" in diff["changes"]
    shown = json.loads(rk(home, "registry", "show", "rm", "--json").stdout)
    assert shown["version"] == 1 and [h["alias"] for h in shown["history"]] == ["challenger", "champion"]

    for args, message in [
        (("registry", "show", "nope"), "no registered model named 'nope'"),
        (("registry", "show", "rm", "--version", "9"), "rm has no version 9 (versions: 1, 2)"),
        (("registry", "register", "rm", str(tmp_path)), "no config.json"),
        (("registry", "alias", "rm", "champion", "2"), "the champion moves by `registry promote`"),
        (("registry", "rollback", "rm"), "rm@champion (v1) has no earlier version to roll back to"),
        (("registry", "promote", "rm", "--version", "2"), "no snapshot is marked golden"),
    ]:
        result = rk(home, *args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    policy = tmp_path / "policy.toml"
    policy.write_text("[accuracy]\nmargn = 0.1\n")
    result = rk(home, "registry", "promote", "rm", "--version", "2", "--policy", str(policy))
    assert result.returncode == 2 and "unknown key accuracy.margn" in result.stderr
    # nothing above changed the registry
    after = json.loads(rk(home, "registry", "list", "rm", "--json").stdout)
    assert [(v["version"], v["aliases"]) for v in after] == [(1, ["champion"]), (2, ["challenger"])]


def test_mlflow_mirror_on_a_real_file_store(rk, tmp_path: Path, tiny_a: Path, tiny_b: Path) -> None:
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install 'rewardkit[mlflow]')")
    from rewardkit.registry.mlflow_mirror import mlflow_alias_version

    home, uri = tmp_path / "home", f"file://{tmp_path / 'mlruns'}"
    for model in (tiny_a, tiny_b):
        result = rk(home, "registry", "register", "rm", str(model), "--mlflow-uri", uri, "--json")
        assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["mlflow"]["mlflow_version"] == "2"
    assert rk(home, "registry", "alias", "rm", "champion", "1", "--mlflow-uri", uri).returncode == 0
    assert mlflow_alias_version(uri, "rm", "champion") == 1
    assert rk(home, "registry", "alias", "rm", "challenger", "2", "--mlflow-uri", uri).returncode == 0
    assert mlflow_alias_version(uri, "rm", "challenger") == 2
    # registering the same files again is the same version, in rewardkit and in MLflow
    again = json.loads(rk(home, "registry", "register", "rm", str(tiny_a), "--mlflow-uri", uri, "--json").stdout)
    assert (again["version"], again["mlflow"]["mlflow_version"]) == (1, "1")

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions("name='rm'")
    assert sorted(v.tags["rewardkit.version"] for v in versions) == ["1", "2"]
    run = client.get_run(versions[0].run_id)
    assert len(run.data.params["sha256"]) == 64
