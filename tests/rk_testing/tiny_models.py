"""The one tiny reward model the tests share: a randomly initialised BERT (MiniLM's tokenizer, 2 layers of
width 32), saved in the ``save_pretrained`` layout with a ``rewardkit.json``: fast enough to serve in every test.
Its chat-template and ensemble variants are built from it. tests/conftest.py serves them as session fixtures."""

from __future__ import annotations

import json
from pathlib import Path


def tiny_bert_config(vocab_size: int, **extra: object) -> object:
    """The tiny models' shape: a BERT of 2 layers of width 32 (2 heads, feed-forward 64)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        **extra,
    )


def build_tiny_model(path: Path, seed: int = 0, temperature: float = 2.0, mean: float = 0.5, std: float = 2.0) -> Path:
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    from rewardkit.model.backbone import default_backbone_path

    tokenizer = AutoTokenizer.from_pretrained(default_backbone_path())
    torch.manual_seed(seed)
    config = tiny_bert_config(tokenizer.vocab_size, num_labels=1, problem_type="regression")
    model = BertForSequenceClassification(config)
    with torch.no_grad():  # a visibly non-constant head so rankings differ between inputs
        model.classifier.weight.normal_(0, 30.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    card = {"temperature": temperature, "reward_mean": mean, "reward_std": std, "max_length": 128}
    (path / "rewardkit.json").write_text(json.dumps(card))
    return path


# Mistral's chat-template rule, as its tokenizer states it: user and assistant strictly alternate, no system
# turn. Mistral and Gemma templates refuse other conversations with raise_exception.
ALTERNATING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% else %}{{ message['content'] + '</s>' }}{% endif %}{% endfor %}"
)

# a template that refuses system messages, as Mistral's and Gemma's do
REFUSING_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System messages are not supported') }}"
    "{% endif %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}{% if add_generation_prompt %}assistant: "
    "{% endif %}"
)


def build_tiny_chat_model(path: Path, seed: int = 0, template: str = ALTERNATING_TEMPLATE) -> Path:
    """The tiny model with a chat template: by default one that refuses system turns and non-alternating roles."""
    from transformers import AutoTokenizer

    build_tiny_model(path, seed=seed)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.chat_template = template
    tokenizer.save_pretrained(path)
    return path


def build_tiny_ensemble(path: Path, members: int) -> Path:
    """An ensemble folder of ``members`` tiny models (loading it takes about members x a tiny model's load)."""
    for i in range(members):
        build_tiny_model(path / f"member_{i}", seed=10 + i)
    card = json.loads((path / "member_0" / "rewardkit.json").read_text())
    (path / "rewardkit.json").write_text(json.dumps({**card, "members": [f"member_{i}" for i in range(members)]}))
    return path


def build_tiny_backbone(path: Path, seed: int = 0) -> Path:
    """A random 2-layer BERT (hidden 32) with MiniLM's tokenizer and no rewardkit.json: a backbone to train
    from (the process-reward tests train token classifiers on it)."""
    import torch
    from transformers import AutoTokenizer, BertModel

    from rewardkit.model.backbone import default_backbone_path

    tokenizer = AutoTokenizer.from_pretrained(default_backbone_path())
    torch.manual_seed(seed)
    BertModel(tiny_bert_config(len(tokenizer))).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_step_file(path: Path, n: int = 40) -> Path:
    """A TRL stepwise JSONL file that a PRM can learn: a step whose stated sum is right is good, a wrong one
    bad (sums of small numbers, the first error anywhere or nowhere). Deterministic."""
    import random

    rng = random.Random(0)
    rows = []
    for i in range(n):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        steps, labels = [], []
        total = a
        wrong_at = rng.choice([None, 0, 1, 2])
        for k in range(3):
            new = total + b
            stated = new + (5 if k == wrong_at else 0)
            steps.append(f"{total} plus {b} is {stated}")
            labels.append(k != wrong_at if wrong_at is None or k <= wrong_at else None)
            total = stated
        rows.append({"prompt": f"Problem {i}: start at {a}, add {b} three times.", "completions": steps,
                     "labels": labels, "outcome": wrong_at is None, "problem_id": f"p{i % 10}"})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def train_tiny_prm(folder: Path, steps: int = 30) -> Path:
    """A process reward model trained briefly (``steps`` optimizer steps) on ``write_step_file``'s sums, from
    ``build_tiny_backbone``: the real training path end to end, in a few seconds. Returns its folder."""
    from rewardkit.train import TrainConfig, train

    folder.mkdir(parents=True, exist_ok=True)
    backbone = build_tiny_backbone(folder / "backbone")
    data = write_step_file(folder / "steps.jsonl")
    out = folder / "prm"
    config = TrainConfig(
        objective="prm", data=str(data), out=str(out), backbone=str(backbone), max_steps=steps, eval_every=10,
        lr=2e-3, batch_size=4, max_length=64, bf16="off", threads=1, progress=False, validation_fraction=0.3,
    )  # fmt: skip
    train(config)
    return out
