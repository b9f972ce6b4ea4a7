"""The model registry: immutable model versions, aliases (champion, challenger, any name) with an append-only
history, promotion gates on a golden snapshot, alias following for the service, and an optional MLflow mirror.

The CLI is ``rewardkit registry ...`` (cli/registry_cmd.py); docs/registry.md is the guide."""

from rewardkit.registry.versions import RegistryError, VersionInfo, register_version, resolve_version

__all__ = ["RegistryError", "VersionInfo", "register_version", "resolve_version"]
