"""Typed access to a raw record's fields: every helper raises ``RecordError`` naming the field and what was
expected, which is what makes an importer's error message useful."""

from __future__ import annotations

import math
from typing import Any

from rewardkit.records import Message, Prompt, RecordError, validate_message, validate_prompt

_MISSING = object()


def required(record: dict[str, Any], name: str) -> Any:
    value = record.get(name, _MISSING)
    if value is _MISSING or value is None:
        raise RecordError(name, "is missing")
    return value


def text(record: dict[str, Any], name: str, *, allow_empty: bool = False) -> str:
    value = required(record, name)
    if not isinstance(value, str):
        raise RecordError(name, f"expected text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise RecordError(name, "is empty")
    return value


def optional_text(record: dict[str, Any], name: str, default: str = "") -> str:
    value = record.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise RecordError(name, f"expected text, got {type(value).__name__}")
    return value


def number(value: Any, name: str) -> float:
    """A finite number; numeric strings are accepted (CSV cells are text)."""
    if isinstance(value, bool):
        raise RecordError(name, f"expected a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise RecordError(name, f"expected a number, got {value!r}") from None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordError(name, f"expected a finite number, got {value!r}")
    return float(value)


def optional_number(record: dict[str, Any], name: str) -> float | None:
    value = record.get(name)
    return None if value is None else number(value, name)


def prompt(value: Any, name: str) -> Prompt:
    return validate_prompt(value, name)


def messages(value: Any, name: str) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise RecordError(name, f"expected a non-empty list of chat messages, got {type(value).__name__}")
    for i, m in enumerate(value):
        validate_message(m, f"{name}[{i}]")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def distinct(chosen: str, rejected: str, names: tuple[str, str] = ("chosen", "rejected")) -> None:
    """The two responses of a pair must differ, or the pair says nothing."""
    if chosen.strip() == rejected.strip():
        raise RecordError(names[1], f"is identical to {names[0]}")
