"""Is a name in the Hugging Face Hub's repo-id syntax? Asked of a model name before it is looked up
(``source``) and of a backbone before a model card names it as its ``base_model`` (``card``)."""

from __future__ import annotations

from huggingface_hub.utils import HFValidationError, validate_repo_id


def looks_like_hub_id(name: str) -> bool:
    """``name`` or ``namespace/name`` in the hub's syntax (a path like ./runs/x or /abs/x is not one)."""
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True
