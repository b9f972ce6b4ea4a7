"""The reward forward pass, one for training and scoring: ``reward_logits(model, batch) -> [B, A]``.

    logits = reward_logits(model, collate(encoded, rows, pad_id))   # what model(**batch).logits gives

Why not just ``model(**batch).logits``: a sequence-classification head reads ONE position of each row (BERT and
RoBERTa read the first token), yet the model's own forward runs the last transformer layer on every position.
For the BERT family this module runs the encoder from the model's own submodules and, in the last layer,
computes only the position the head reads: keys and values for every token (that position attends to all of
them), but its query, attention output and feed-forward for that one position alone. Same weights, same
numbers up to float rounding (tests compare with transformers' forward), and about 1/num_layers less work:
14% of MiniLM-L6's FLOPs at 290 tokens, forward and backward.

Only the modules' documented pieces are used (``attention.self.query/key/value``, ``attention.output``,
``intermediate``, ``output``, ``embeddings``, ``pooler``, ``classifier``), called as modules, so LoRA layers,
int8-quantized Linears, dropout in training and forward hooks on the head all behave as in the model's own
forward. Any other architecture, or a BERT configured in a way this path does not reproduce (decoder,
cross-attention, relative positions), runs ``model(**batch).logits``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

# sequence-classification classes whose encoder layers are BERT layers, and how their head reads the last
# hidden state: "pooler" = model.classifier(model.dropout(pooler(h))) (BERT); "first" = model.classifier(h)
# with the head taking position 0 itself (RoBERTa's classification head)
HEAD_READS = {
    "BertForSequenceClassification": "pooler",
    "RobertaForSequenceClassification": "first",
    "XLMRobertaForSequenceClassification": "first",
}


def reward_logits(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-attribute rewards [B, A] (float32) of a collated batch: the model's ``logits``."""
    inner = last_layer_path(model)
    if inner is None:
        return model(**batch).logits.float()
    ids = batch["input_ids"]
    mask = batch.get("attention_mask", torch.ones_like(ids))
    return first_position_logits(inner, ids, mask, batch.get("token_type_ids")).float()


class RewardForward(torch.nn.Module):
    """``reward_logits`` as a module: ``RewardForward(model)(**batch) -> [B, A]``. Training wraps this in
    DistributedDataParallel, which syncs the gradients of what its own forward ran."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        return reward_logits(self.model, batch)


def last_layer_path(model: Any) -> Any | None:
    """The HF model to run through ``first_position_logits`` (a peft model's base model), or None when this
    model must run its own forward."""
    if hasattr(model, "get_base_model"):  # peft: LoRA layers sit inside the base model's modules
        model = model.get_base_model()
    if type(model).__name__ not in HEAD_READS:
        return None
    config = model.config
    if config.is_decoder or getattr(config, "add_cross_attention", False):
        return None
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return None  # relative-key attention adds a term this path does not compute
    base = model.base_model
    if HEAD_READS[type(model).__name__] == "pooler" and base.pooler is None:
        return None
    return model


def first_position_logits(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
) -> torch.Tensor:
    """A BERT-family sequence classifier's logits [B, A], the last layer computed for position 0 only."""
    base = model.base_model
    hidden = base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)  # [B, L, H]
    # [B, 1, 1, L] True where a key may be attended; None when nothing is padded (SDPA's fastest path)
    keep = None if bool(attention_mask.all()) else attention_mask.bool()[:, None, None, :]
    *lower, last = base.encoder.layer
    for layer in lower:
        hidden = bert_layer(layer, hidden, hidden, keep)
    first = bert_layer(last, hidden[:, :1], hidden, keep)  # [B, 1, H]: the only position the head reads
    if HEAD_READS[type(model).__name__] == "pooler":
        return model.classifier(model.dropout(base.pooler(first)))
    return model.classifier(first)


def bert_layer(layer: Any, queries: torch.Tensor, hidden: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """One BERT layer for the positions in ``queries`` [B, Q, H] attending over ``hidden`` [B, L, H] -> [B, Q, H].
    With queries = hidden it is the layer's usual output."""
    attention = layer.attention.self
    b, q_len, _ = queries.shape
    heads, size = attention.num_attention_heads, attention.attention_head_size

    def split(x: torch.Tensor) -> torch.Tensor:  # [B, T, heads * size] -> [B, heads, T, size]
        return x.view(b, x.shape[1], heads, size).transpose(1, 2)

    context = F.scaled_dot_product_attention(
        split(attention.query(queries)),
        split(attention.key(hidden)),
        split(attention.value(hidden)),
        attn_mask=keep,
        dropout_p=attention.dropout.p if attention.training else 0.0,
    )
    context = context.transpose(1, 2).reshape(b, q_len, heads * size)
    attended = layer.attention.output(context, queries)  # dense, dropout, LayerNorm(x + residual)
    return layer.output(layer.intermediate(attended), attended)  # feed-forward, dropout, LayerNorm(x + residual)
