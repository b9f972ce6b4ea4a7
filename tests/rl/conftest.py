"""The offline BPE tokenizer (rk_testing.bpe), plain and with a chat template, for the RL tests."""

from __future__ import annotations

from typing import Any

import pytest
from rk_testing.bpe import CHAT_TEMPLATE, bpe_tokenizer


@pytest.fixture(scope="module")
def bpe() -> Any:
    return bpe_tokenizer()


@pytest.fixture(scope="module")
def chat_bpe() -> Any:
    tokenizer = bpe_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
