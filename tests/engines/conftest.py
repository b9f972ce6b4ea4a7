"""Fixtures for the Ray engine tests: one real local Ray cluster (2 CPUs) for the session (the tiny real model
is tests/conftest.py's tiny_model), and best-of-4 rows from the shared GSM8K solutions, split into shards so that
a prompt's rows sit in different shards."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SOLVERS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install rewardkit[ray]")
    pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install rewardkit[ray]")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def gsm8k_rows(shared: Path, questions: int) -> list[dict[str, Any]]:
    """(prompt, response) rows: each of the first ``questions`` problems with its four model solutions."""
    rows = []
    with gzip.open(shared / "gsm8k" / "model_solutions.jsonl.gz", "rt", encoding="utf-8") as f:
        for line, _ in zip(f, range(questions)):
            record = json.loads(line)
            rows += [{"prompt": record["question"], "response": record[s]["solution"], "solver": s} for s in SOLVERS]
    return rows


def write_shards(rows: list[dict[str, Any]], folder: Path, shards: int, suffix: str = ".jsonl") -> list[Path]:
    """Rows dealt round-robin into ``shards`` files (so a prompt's four rows land in different shards)."""
    from rewardkit.scoring.writers import write_rows

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"part-{i:03d}{suffix}" for i in range(shards)]
    for i, path in enumerate(paths):
        write_rows(rows[i::shards], path)
    return paths


SHARED_DATA = Path(os.environ.get("RK_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))


@pytest.fixture(scope="module")
def gsm8k(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path]:
    """60 rows (15 prompts x 4 solutions) in three Parquet shards, and their folder."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    rows = gsm8k_rows(SHARED_DATA, 15)
    folder = tmp_path_factory.mktemp("gsm8k") / "in"
    write_shards(rows, folder, 3, ".parquet")
    return rows, folder
