"""Mirror the registry into an MLflow Model Registry (the optional ``mlflow`` extra: ``pip install
'rewardkit[mlflow]'``), so teams on MLflow see the same state: each registered version is logged as a run (its
files as artifacts, its eval summary as metrics, its provenance as params) and registered as a version of the
same name, tagged ``rewardkit.version``; every alias move is mirrored (``models:/NAME@champion``).

rewardkit's store stays the source of truth: the mirror is written after the store commits, and a mirror that
fails is reported, never undoes a move. Mirroring the same version or move twice changes nothing.

A ``file:`` URI uses MLflow's file store, which MLflow 3 keeps in maintenance mode behind
``MLFLOW_ALLOW_FILE_STORE=true``: naming a file URI is taken as that opt-in."""

from __future__ import annotations

import os
from typing import Any

from rewardkit.registry.versions import RegistryError, VersionInfo

TAG = "rewardkit.version"


def _client(uri: str) -> Any:
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise RegistryError("--mlflow-uri needs MLflow: pip install 'rewardkit[mlflow]' (or mlflow-skinny)") from None
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _find(client: Any, name: str, version: int) -> Any:
    for mv in client.search_model_versions(f"name='{name}'"):
        if mv.tags.get(TAG) == str(version):
            return mv
    return None


def _metrics(summary: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key in ("accuracy", "ece", "length_spearman", "n_pairs"):
        if isinstance(summary.get(key), int | float):
            out[f"golden_{key}"] = float(summary[key])
    for probe, rate in (summary.get("probe_rise_rates") or {}).items():
        if isinstance(rate, int | float):
            out[f"golden_rise_{probe}"] = float(rate)
    return out


def mirror_version(uri: str, info: VersionInfo) -> str:
    """Log and register ``info`` in MLflow (once); returns the MLflow model version."""
    client = _client(uri)
    try:
        client.get_registered_model(info.name)
    except Exception:  # noqa: BLE001 - MLflow raises its own RESOURCE_DOES_NOT_EXIST
        client.create_registered_model(info.name, tags={"rewardkit": "true"})
    found = _find(client, info.name, info.version)
    if found is not None:
        return str(found.version)
    exp = client.get_experiment_by_name(f"rewardkit-{info.name}")
    exp_id = exp.experiment_id if exp else client.create_experiment(f"rewardkit-{info.name}")
    run = client.create_run(exp_id, run_name=f"{info.name}-v{info.version}", tags={TAG: str(info.version)})
    rid = run.info.run_id
    params = {
        "sha256": info.sha256,
        "snapshot_id": info.snapshot_id or "",
        "snapshot_parent_id": info.snapshot_parent_id or "",
        "created_by": info.created_by,
        **{f"train.{k}": str(v)[:500] for k, v in info.train_config.items()},
    }
    for key, value in params.items():
        client.log_param(rid, key, value)
    for key, value in _metrics(info.eval_summary).items():
        client.log_metric(rid, key, value)
    client.log_artifacts(rid, info.path, artifact_path="model")
    client.set_terminated(rid)
    mv = client.create_model_version(info.name, source=f"runs:/{rid}/model", run_id=rid, tags={TAG: str(info.version)})
    return str(mv.version)


def mirror_alias(uri: str, info: VersionInfo, alias: str) -> str:
    """Point MLflow's ``NAME@alias`` at the MLflow version mirroring ``info`` (registering it first if needed)."""
    client = _client(uri)
    mlflow_version = mirror_version(uri, info)
    client.set_registered_model_alias(info.name, alias, mlflow_version)
    return mlflow_version


def mlflow_alias_version(uri: str, name: str, alias: str) -> int | None:
    """The rewardkit version MLflow's ``NAME@alias`` names (None: no such alias) - what the tests read back."""
    client = _client(uri)
    try:
        mv = client.get_model_version_by_alias(name, alias)
    except Exception:  # noqa: BLE001
        return None
    tag = mv.tags.get(TAG)
    return int(tag) if tag is not None else None
