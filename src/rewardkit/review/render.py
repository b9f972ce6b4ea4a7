"""Model output on the labeling page: untrusted text rendered as markdown, safely.

markdown-it-py in CommonMark mode with raw HTML off: any ``<script>``, ``<img onerror=...>`` or other tag in a
response is escaped and shown as text; link targets go through markdown-it's own URL check (``javascript:``,
``vbscript:``, ``file:`` and most ``data:`` are refused). Images are not rendered (the page must not fetch
URLs a model wrote: tracking pixels), their alt text is. Code blocks and fences come out as escaped
``<pre><code>``. The result is therefore safe to insert unescaped (``Markup``).
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt
from markupsafe import Markup

from rewardkit.records import Prompt


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable("image")
    md.disable("html_inline")
    md.disable("html_block")
    return md


def render_markdown(text: str) -> Markup:
    return Markup(_parser().render(text))  # noqa: S704 - raw HTML is off: every tag in the input is escaped


def render_prompt(prompt: Prompt) -> list[tuple[str, Markup]]:
    """(role, html) turns of a prompt; a text prompt is one user turn."""
    if isinstance(prompt, str):
        return [("user", render_markdown(prompt))]
    return [(str(m.get("role", "")), render_markdown(str(m.get("content", "")))) for m in prompt]
