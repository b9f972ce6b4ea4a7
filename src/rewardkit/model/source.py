"""Where a model name points, checked before transformers loads it.

``rewardkit score / eval / serve --model NAME`` takes a saved model folder, an ensemble folder, or a Hugging
Face Hub id. For a mistyped name transformers answers with the wrong problem: a folder without config.json
reports a missing sentencepiece, ``runs/nope`` (a valid hub id) a network failure, ``./runs/nope`` the hub's
repo-id syntax. ``check_model_source`` says instead what is wrong with the name the user typed. A hub id is
checked by fetching (or finding in the local cache) its config.json only, so real hub ids keep working
wherever a hub is reachable.
"""

from __future__ import annotations

from pathlib import Path

from rewardkit.model.backbone import resolve_backbone
from rewardkit.model.card import read_card
from rewardkit.model.hub_id import looks_like_hub_id


class ModelNotFoundError(FileNotFoundError):
    """The name given for a model is neither a saved model folder here nor a model the Hugging Face Hub
    provides. A FileNotFoundError, so callers that turn a load's OSError into a message get this one too."""


def check_model_source(name: str) -> None:
    """A ModelNotFoundError saying why there is no model at ``name``; nothing when there may be one.

    Checked before transformers loads: for these mistakes it reports a missing sentencepiece, a network
    failure or the hub's repo-id syntax instead of the path the user typed."""
    target = name if Path(name).exists() else resolve_backbone(name)  # "default": the bundled backbone
    if Path(target).exists():
        check_model_folder(Path(target), name if target == name else target)
    elif looks_like_hub_id(target):
        check_hub_model(target)
    else:
        raise ModelNotFoundError(f"no model at {name!r}: no such folder here (and not a Hugging Face Hub id)")


def check_model_folder(folder: Path, name: str) -> None:
    """A saved model folder holds config.json, or a rewardkit.json listing ensemble members that do."""
    if not folder.exists():
        raise ModelNotFoundError(f"no model at {name!r}: no such folder")
    if not folder.is_dir():
        raise ModelNotFoundError(f"{name!r} is a file, not a model folder (a folder with config.json and the weights)")
    try:
        card = read_card(folder)
    except ValueError as exc:  # invalid JSON, or a card that fails its own checks (reward_std <= 0, ...)
        raise ModelNotFoundError(
            f"{name!r}: its rewardkit.json cannot be used ({' '.join(str(exc).split())})"
        ) from None
    if card.is_ensemble:
        for member in card.members:
            check_model_folder(folder / member, f"{name}/{member}")
        return
    if not (folder / "config.json").is_file():
        hint = model_folders_inside(folder)
        raise ModelNotFoundError(
            f"{name!r} is a folder but has no config.json: not a saved model"
            + (f" (models inside it: {', '.join(repr(str(Path(name) / h)) for h in hint)})" if hint else "")
        )


def model_folders_inside(folder: Path, limit: int = 3) -> list[str]:
    """Names of subfolders that are saved models: a training run's folder holds its model one level down."""
    try:
        subs = sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []
    return [p.name for p in subs if (p / "config.json").is_file() or (p / "rewardkit.json").is_file()][:limit]


def check_hub_model(repo_id: str) -> None:
    """Fetch (or find in the local cache) the id's config.json: the first file a load needs. Its failure is the
    user's (a typo, no network, a private repo), so it becomes one line naming the id, not the hub's text."""
    from transformers.utils import cached_file

    try:
        cached_file(repo_id, "config.json")
    except (OSError, ValueError) as exc:
        reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise ModelNotFoundError(
            f"no model at {repo_id!r}: not a folder here, and not a model id the Hugging Face Hub could provide "
            f"({reason})"
        ) from None
