"""Hugging Face Hub datasets wherever a command takes a data folder: import, ``train --data``, ``eval --data``.

    rewardkit import trl trl-lib/ultrafeedback_binarized             # its train split (--split to choose)
    rewardkit train --data Anthropic/hh-rlhf/harmless-base --out runs/rm1
    rewardkit train --data HuggingFaceH4/ultrafeedback_binarized --split train_prefs --out runs/rm2
    rewardkit eval --model runs/rm1 --data allenai/reward-bench --split filtered

A name that is not a file or folder here and reads as a Hub dataset id (``hub_dataset``: ``owner/name``, then
optionally ``/data_dir``, then optionally ``:config``) is loaded with ``datasets.load_dataset`` (its own cache,
its own check for a newer revision, its token and mirror settings) and saved with ``save_to_disk`` under
``RK_HOME/hub/``, in a folder named by the data's fingerprint: the same data is saved once, a new revision gets
a new folder. Every command then reads that folder as it reads any saved ``DatasetDict``: an import takes one
split (``train`` unless ``--split`` names another: a Hub dataset's test split must not land in the training
pool), training ``train`` unless ``--split`` names another, and ``validation`` where there is one, eval
``--split``. Why a saved copy rather than the
``datasets`` objects: the readers stream ``save_to_disk`` folders with pyarrow alone, and a training run's
data id is the digest of that folder, as for any other data folder.

``datasets`` is the optional ``rewardkit[hf]`` dependency; without it a Hub id is a one-line error saying so.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from rewardkit.atomic import temporary_folder
from rewardkit.data.importers.reader import DATA_SUFFIXES, dataset_splits
from rewardkit.records import content_hash

# the Hub's own rule for a repo name part (huggingface_hub.utils.validate_repo_id): letters, digits, - _ .
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_HUB_DATASET = re.compile(rf"(?P<repo>{_PART}/{_PART})(?P<dir>(?:/{_PART})*)(?::(?P<config>[A-Za-z0-9._-]+))?")


class HubDatasetError(ValueError):
    """A Hub dataset id that could not be loaded; the one-line message names the id and the reason."""


@dataclass(frozen=True)
class HubDataset:
    repo_id: str
    data_dir: str | None = None
    """A folder inside the repo (``Anthropic/hh-rlhf/harmless-base``): ``load_dataset(..., data_dir=)``."""
    config: str | None = None
    """A named configuration (``allenai/reward-bench:raw``): ``load_dataset(repo_id, config)``."""


def hub_dataset(name: str) -> HubDataset | None:
    """``name`` as a Hub dataset id, or None when it is a path: one that exists here, starts with ``.``, ``/``,
    ``~`` or a drive, ends with a data file suffix (a mistyped ``runs/train.jsonl`` is a missing file, not a
    download), or is not ``owner/name[/dir...][:config]`` in the Hub's characters."""
    if not name or Path(name).exists() or name.startswith((".", "/", "~", "\\")) or re.match(r"[A-Za-z]:", name):
        return None
    if name.lower().endswith(DATA_SUFFIXES):
        return None
    match = _HUB_DATASET.fullmatch(name)
    if match is None:
        return None
    return HubDataset(match["repo"], match["dir"].lstrip("/") or None, match["config"])


def resolve_data(name: str | Path, home: Path | None = None, split: str | None = None) -> Path:
    """The local path a command reads for ``name``: ``name`` itself unless it is a Hub dataset id
    (``hub_dataset``), else the saved copy of that dataset (fetched now if needed), or with ``split`` that
    split's folder. A missing local path comes back as it is, for the caller's own "no such file" message."""
    spec = hub_dataset(str(name))
    if spec is None:
        return Path(name)
    if home is None:
        from rewardkit.settings import get_settings

        home = get_settings().home
    folder = save_hub_dataset(spec, home / "hub", str(name))
    if split is None:
        return folder
    splits = dataset_splits(folder)
    if split not in splits:
        raise HubDatasetError(f"{name}: no split {split!r}; its splits: {', '.join(splits)}")
    return folder / split


def save_hub_dataset(spec: HubDataset, root: Path, name: str) -> Path:
    """``load_dataset`` the id and save it under ``root`` (a ``DatasetDict`` folder, named by the data's
    fingerprint); a folder saved before for the same data is reused. Written beside and renamed into place,
    so a killed fetch leaves no folder a later command would take for data."""
    try:
        import datasets
    except ImportError:
        raise HubDatasetError(
            f"{name}: not a file or folder here; reading it as a Hugging Face Hub dataset needs the "
            "'datasets' package: pip install 'rewardkit[hf]'"
        ) from None
    try:
        loaded = datasets.load_dataset(spec.repo_id, spec.config, data_dir=spec.data_dir)
    except Exception as exc:  # noqa: BLE001 - network, auth, missing repo/config: all the user's to fix, in one line
        # every line: "Config name is missing" alone would not list the configs the next lines name
        reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())[:600] or type(exc).__name__
        raise HubDatasetError(
            f"{name}: not a file or folder here, and the Hugging Face Hub could not provide it as "
            f"a dataset ({type(exc).__name__}: {reason})"
        ) from None
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    return save_dataset_dict(loaded, root / folder_name(spec))


def folder_name(spec: HubDataset) -> str:
    """``owner--name[--dir--sub][@config]``: one folder per id, readable in a listing."""
    parts = [spec.repo_id.replace("/", "--")] + ([spec.data_dir.replace("/", "--")] if spec.data_dir else [])
    return "--".join(parts) + (f"@{spec.config}" if spec.config else "")


def save_dataset_dict(data: object, parent: Path) -> Path:
    """``data`` (a ``datasets.DatasetDict``) saved in ``parent/<fingerprint>``, reused when already there."""
    # datasets' own content fingerprint of each split (it changes with the data and the revision)
    fingerprint = "-".join(data[split]._fingerprint for split in data)  # type: ignore[index, attr-defined]
    folder = parent / content_hash(fingerprint, 16)
    if (folder / "dataset_dict.json").is_file():
        return folder
    # a fresh name per save (processes on other hosts sharing RK_HOME may have the same pid), mode as mkdir's
    tmp = temporary_folder(parent, f".tmp-{folder.name}-")
    try:
        data.save_to_disk(str(tmp))  # type: ignore[attr-defined]
        try:
            os.replace(tmp, folder)
        except OSError:  # another process saved the same data first: theirs is as good
            if not (folder / "dataset_dict.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
