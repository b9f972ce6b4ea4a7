"""Deployment settings, read from the environment (prefix ``RK_``) or a ``.env`` file.

These are the things that change between a laptop and production (where the data lives, which database,
which host and keys); experiment knobs belong in the typed config of each entry point instead.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SCORE_DTYPES = ("auto", "fp32", "bf16", "int8")
"""What the scorer's ``dtype`` accepts (``rewardkit.scoring.scorer.choose_dtype``); here, torch-free, so the CLI and the
service settings reject a typo before a model is loaded."""

DTYPE_HELP = (
    "auto (bf16 only where measured faster), fp32, bf16 or int8 "
    "(opt-in: faster on a CPU; scores move a little, with the batch and with length)"
)
DEVICE_HELP = "auto (this process's GPU when torch sees one, else the CPU), cpu, cuda, cuda:N or mps"
DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
"""What a ``device`` option accepts (``rewardkit.model.device.resolve_device``); torch-free like SCORE_DTYPES,
so the service settings reject a typo at start."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RK_", env_file=".env", extra="ignore")

    home: Path = Field(
        default=Path("rewardkit-data"), description="Where the default database, snapshots and models live."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db. Default: a SQLite file under home.",
    )
    # Serving
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    model_path: str | None = Field(default=None, description="Model directory or Hugging Face id to serve.")
    api_keys: list[str] = Field(default_factory=list, description="Bearer keys; empty = no auth.")
    admin_keys: list[str] = Field(
        default_factory=list, description="Bearer keys for /admin/reload; empty = the api_keys."
    )

    @property
    def snapshot_dir(self) -> Path:
        return self.home / "snapshots"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'rewardkit.db').as_posix()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
