"""Meaning-preserving rewrites: the same words, another presentation."""

from __future__ import annotations

import re

import pytest

from rewardkit.robust.rewrites import REWRITES, bullet_style, markdown_plain, whitespace


def test_whitespace_spreads_or_collapses_lines() -> None:
    assert whitespace("a\nb", 0) == "a\n\nb"
    assert whitespace("a  b \n\n\n\nc", 1) == "a b\n\nc"
    assert whitespace("one line", 0) == "one line"  # nothing to spread and nothing to collapse


def test_markdown_plain_removes_markup_and_keeps_the_words() -> None:
    text = "## Steps\nUse **salt** and *fresh* eggs, then run `timer 9`."
    assert markdown_plain(text, 0) == "Steps\nUse salt and fresh eggs, then run timer 9."
    assert markdown_plain("2 * 3 * 4 = 24", 0) == "2 * 3 * 4 = 24"  # arithmetic is not emphasis
    assert markdown_plain("Title\nbody text", 0) == "**Title**\nbody text"  # plain -> markdown


def test_bullet_style_changes_the_markers_only() -> None:
    text = "Steps:\n- boil\n- cool\n"
    assert bullet_style(text, 1) == "Steps:\n* boil\n* cool\n"
    assert bullet_style(text, 3) == "Steps:\n1. boil\n2. cool\n"
    assert bullet_style(text, 0) == "Steps:\n* boil\n* cool\n"  # style 0 is '-' already: the next one
    assert bullet_style("1) boil\n2) cool", 0) == "- boil\n- cool"
    assert bullet_style("no list here", 0) == "no list here"


@pytest.mark.parametrize("name", list(REWRITES))
def test_rewrites_keep_every_word_in_order(name: str) -> None:
    text = "## Eggs\nI boil **two** eggs:\n- first one\n- second one\n\n\nDone."
    for i in range(4):
        out = REWRITES[name](text, i)
        assert out != text
        strip = lambda t: re.findall(r"[A-Za-z]+", t)  # noqa: E731
        assert strip(out) == strip(text)
