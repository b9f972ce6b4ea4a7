"""Test helpers for the service: a REAL uvicorn server on a free loopback port (``running_server``), and
a tiny randomly initialised BERT reward model (MiniLM's tokenizer, 2 layers of width 32), saved in the
``save_pretrained`` layout with a ``rewardkit.json``: fast enough to serve in every test."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from rewardkit.serve import ServeSettings, create_app
from rewardkit.serve.server import build_server


def build_tiny_model(path: Path, seed: int = 0, temperature: float = 2.0, mean: float = 0.5, std: float = 2.0) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from rewardkit.model.backbone import default_backbone_path

    tokenizer = AutoTokenizer.from_pretrained(default_backbone_path())
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=1,
        problem_type="regression",
    )
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


def build_tiny_chat_model(path: Path, seed: int = 0) -> Path:
    """The tiny model with a chat template that refuses system turns and non-alternating roles."""
    from transformers import AutoTokenizer

    build_tiny_model(path, seed=seed)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.chat_template = ALTERNATING_TEMPLATE
    tokenizer.save_pretrained(path)
    return path


def build_tiny_ensemble(path: Path, members: int) -> Path:
    """An ensemble folder of ``members`` tiny models (loading it takes about members x a tiny model's load)."""
    for i in range(members):
        build_tiny_model(path / f"member_{i}", seed=10 + i)
    card = json.loads((path / "member_0" / "rewardkit.json").read_text())
    (path / "rewardkit.json").write_text(json.dumps({**card, "members": [f"member_{i}" for i in range(members)]}))
    return path


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text -> {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(settings: ServeSettings, wait_ready: bool = True) -> Iterator[str]:
    """Serve ``create_app(settings)`` with uvicorn on 127.0.0.1:<free port>; yields the base URL."""
    port = free_port()
    app = create_app(settings)
    # the server `rewardkit serve` runs (header timeout, drain), without configuring logging (pytest captures it)
    server = build_server(app, settings, log_level="warning", host="127.0.0.1", port=port, log_config=None)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        while wait_ready and httpx.get(url + "/ready").status_code != 200:
            assert time.monotonic() < deadline, "model did not load"
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
