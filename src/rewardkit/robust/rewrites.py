"""Meaning-preserving rewrites: the same answer in another presentation (white space, markdown or plain text,
bullet style). The optional invariance penalty (``TrainConfig.invariance_weight``) pulls a response's score and
its rewrite's together, so the reward ignores presentation.

A rewrite is a pure function ``(response, i) -> str``; ``i`` picks a variant deterministically. A rewrite that
finds nothing to change returns the response unchanged, and augmentation skips it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

RewriteFn = Callable[[str, int], str]

_BULLET_RE = re.compile(r"^(\s*)(?:[-*+•]|\d+[.)])\s+", re.MULTILINE)
_BULLET_STYLES = ("- ", "* ", "• ")


def whitespace(response: str, i: int) -> str:
    """Even i: blank lines between the lines (paragraphs spread out); odd i: runs of blank lines and of
    spaces collapsed, trailing spaces dropped."""
    if i % 2 == 0 and "\n" in response.strip():
        return re.sub(r"\n+", "\n\n", response)
    collapsed = re.sub(r"[ \t]+", " ", response)
    collapsed = re.sub(r" *\n", "\n", collapsed)
    collapsed = re.sub(r"\n{3,}", "\n\n", collapsed)
    return collapsed if collapsed != response else re.sub(r"\n+", "\n\n", response)


def markdown_plain(response: str, i: int) -> str:
    """Markdown emphasis, headings and code ticks removed (the words kept); a response without markdown gets
    its first line as a bold heading-like line instead (plain -> markdown)."""
    plain = re.sub(r"(\*\*|__)(.+?)\1", r"\2", response)
    plain = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", plain)
    plain = re.sub(r"^#{1,6}\s+", "", plain, flags=re.MULTILINE)
    plain = re.sub(r"`([^`\n]+)`", r"\1", plain)
    if plain != response:
        return plain
    first, sep, rest = response.partition("\n")
    return f"**{first.strip()}**{sep}{rest}" if sep and first.strip() and len(first) < 80 else response


def bullet_style(response: str, i: int) -> str:
    """Every list item's marker ('-', '*', '+', '•', '1.', '1)') replaced by another style: the i-th of
    '-', '*', '•' and numbered (renumbered from 1), or the next one where that changes nothing. No list:
    unchanged."""
    if not _BULLET_RE.search(response):
        return response
    for k in range(len(_BULLET_STYLES) + 1):
        out = _restyle(response, (i + k) % (len(_BULLET_STYLES) + 1))
        if out != response:
            return out
    return response


def _restyle(response: str, style: int) -> str:
    if style == len(_BULLET_STYLES):  # numbered
        count = iter(range(1, 1_000_000))
        return _BULLET_RE.sub(lambda m: f"{m.group(1)}{next(count)}. ", response)
    return _BULLET_RE.sub(lambda m: m.group(1) + _BULLET_STYLES[style], response)


REWRITES: dict[str, RewriteFn] = {
    "whitespace": whitespace,
    "markdown_plain": markdown_plain,
    "bullet_style": bullet_style,
}
