"""The judge's answer -> a verdict: "A", "B" or "tie" and the judge's rationale, or None (unparseable).

The judge is asked for strict JSON, ``{"rationale": "...", "verdict": "A" | "B" | "tie"}``. Models wrap it in
code fences, add prose around it, write ``"winner"`` or lower case, or ignore the format, so the parser tries,
in order: the whole answer as JSON; the first JSON object inside it; then plain-text forms judges are known to
write (``[[A]]`` as MT-Bench asks, ``Verdict: B``, ``Output (a)``, ``Response A is better``). An answer that
names both or neither (a refusal, "I cannot compare these") is None: it is counted, never guessed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

VERDICTS = ("A", "B", "tie")
VERDICT_KEYS = ("verdict", "winner", "preference", "choice", "better", "answer")
RATIONALE_KEYS = ("rationale", "reasoning", "explanation", "reason", "critique")
_TIE_WORDS = {"tie", "equal", "draw", "same", "both", "neither", "c"}

# plain-text forms, each capturing A/B (or a tie word); tried in order, the first that matches exactly one
# distinct verdict wins
_TEXT_PATTERNS = [
    re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.IGNORECASE),
    re.compile(
        r"\b(?:final\s+)?(?:verdict|winner|answer|preference|choice)\s*(?:is)?\s*[:=]?\s*\**\s*[\"'(]?(A|B|tie)\b",
        re.IGNORECASE,
    ),
    re.compile(r"\boutput\s*\((a|b)\)", re.IGNORECASE),
    re.compile(r"\bresponse\s+(A|B)\s+is\s+(?:better|preferred|superior|more\s+helpful)", re.IGNORECASE),
]


@dataclass(frozen=True)
class Verdict:
    choice: str
    """"A", "B" or "tie", in the order the responses were SHOWN to the judge."""
    rationale: str


def _normalize(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    word = value.strip().strip("\"'()[]*. ").lower()
    if word in ("a", "response a", "response_a", "output (a)", "assistant a"):
        return "A"
    if word in ("b", "response b", "response_b", "output (b)", "assistant b"):
        return "B"
    return "tie" if word in _TIE_WORDS else None


def _json_objects(text: str) -> list[dict[str, Any]]:
    """The whole text as a JSON object, else each balanced {...} inside it that parses as one."""
    stripped = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", stripped, re.DOTALL)
    if fenced:
        stripped = fenced.group(1)
    try:
        whole = json.loads(stripped)
        return [whole] if isinstance(whole, dict) else []
    except ValueError:
        pass
    found, decoder = [], json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def parse_verdict(text: str) -> Verdict | None:
    """The verdict in a judge's answer, or None when it holds none (see the module docstring)."""
    if not text or not text.strip():
        return None
    for obj in _json_objects(text):
        lowered = {str(k).lower(): v for k, v in obj.items()}
        choice = next((_normalize(lowered[k]) for k in VERDICT_KEYS if k in lowered), None)
        if choice is not None:
            rationale = next((str(lowered[k]) for k in RATIONALE_KEYS if k in lowered), "")
            return Verdict(choice, rationale.strip())
    for pattern in _TEXT_PATTERNS:
        choices = {_normalize(m.group(1)) for m in pattern.finditer(text)} - {None}
        if len(choices) == 1:
            return Verdict(choices.pop(), text.strip())  # type: ignore[arg-type]
    return None
