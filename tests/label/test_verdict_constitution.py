"""The verdict parser on the answers judges really write, and constitution files good and bad."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardkit.label.constitution import ConstitutionError, load_constitution
from rewardkit.label.verdict import parse_verdict


@pytest.mark.parametrize(
    ("answer", "choice"),
    [
        ('{"rationale": "A is right.", "verdict": "A"}', "A"),
        ('{"reasoning": "same", "winner": "tie"}', "tie"),
        ('```json\n{"rationale": "B cites sources", "verdict": "b"}\n```', "B"),
        ('Sure! Here is my answer: {"rationale": "x", "verdict": "Response B"} Thanks.', "B"),
        ("Both are close, but my final verdict is [[A]].", "A"),
        ("[[C]]", "tie"),
        ("Verdict: B", "B"),
        ("Output (a)", "A"),
        ("After reflection, Response B is better because it is concise.", "B"),
    ],
)
def test_parses_what_judges_write(answer: str, choice: str) -> None:
    verdict = parse_verdict(answer)
    assert verdict is not None and verdict.choice == choice


def test_json_rationale_is_kept() -> None:
    assert (
        parse_verdict('{"rationale": "A answers the question.", "verdict": "A"}').rationale == "A answers the question."
    )


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "I'm sorry, but I can't help with comparing these responses.",
        '{"rationale": "both are fine", "verdict": ',
        '{"rationale": "hmm", "verdict": "maybe"}',
        "[[A]] or maybe [[B]]",  # names both: not a verdict
    ],
)
def test_no_verdict_is_none_never_a_guess(answer: str) -> None:
    assert parse_verdict(answer) is None


def test_toml_constitution(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'name = "hh"\npreamble = "Be fair."\n[[principles]]\nname = "harmlessness"\ntext = "Prefer the safer one."\n'
        '[[principles]]\nname = "helpfulness"\ntext = "Prefer the more useful one."\nrevision = "Make it useful."\n'
    )
    c = load_constitution(path)
    assert c.name == "hh" and [p.name for p in c.principles] == ["harmlessness", "helpfulness"]
    assert c.principles[1].revision == "Make it useful." and "Identify" in c.principles[0].critique
    assert "- harmlessness: Prefer the safer one." in c.rubric_text() and c.rubric_text().startswith("Be fair.")
    other = tmp_path / "d.toml"
    other.write_text(path.read_text().replace("safer", "kinder"))
    assert load_constitution(other).key != c.key  # another text, other labels


def test_markdown_constitution_and_plain_rubric(tmp_path: Path) -> None:
    md = tmp_path / "c.md"
    md.write_text(
        "# My constitution\nJudge carefully.\n\n## honesty\nPrefer the response that does not make things up.\n"
        "Critique: Find invented facts.\n\n## brevity\nPrefer shorter answers.\n"
    )
    c = load_constitution(md)
    assert c.name == "My constitution" and c.preamble == "Judge carefully."
    assert [(p.name, p.text) for p in c.principles] == [
        ("honesty", "Prefer the response that does not make things up."),
        ("brevity", "Prefer shorter answers."),
    ]
    assert c.principles[0].critique == "Find invented facts."
    rubric = tmp_path / "rubric.txt"
    rubric.write_text("Prefer correct, concise answers.\n")
    assert [(p.name, p.text) for p in load_constitution(rubric).principles] == [
        ("rubric", "Prefer correct, concise answers.")
    ]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("empty.toml", "  \n", "is empty"),
        ("empty.md", "", "is empty"),
        ("bad.toml", "[[principles]\nname = 1", "not valid TOML"),
        ("none.toml", 'name = "x"\n', "expected a [[principles]] list"),
        ("notext.toml", '[[principles]]\nname = "a"\ntext = "  "\n', "principles[0].text: is empty"),
        ("typo.toml", '[[principles]]\ntxt = "a"\n', "unknown key 'txt'"),
        ("number.toml", "[[principles]]\ntext = 3\n", "principles[0].text: expected text, got int"),
        ("twice.md", "## a\nx\n## a\ny\n", "principle 'a' is listed twice"),
        ("emptysection.md", "## a\n\n## b\ny\n", "section 'a'.text: is empty"),
    ],
)
def test_bad_constitution_is_one_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConstitutionError) as info:
        load_constitution(path)
    assert message in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_constitution_file(tmp_path: Path) -> None:
    with pytest.raises(ConstitutionError, match="cannot be read"):
        load_constitution(tmp_path / "nope.toml")
