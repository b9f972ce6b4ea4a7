"""The bundled sample: deterministic, balanced in length, and chosen responses that are better by construction."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.data.sample import CAPITALS, CATEGORIES, generate_sample, write_sample_trl

SAMPLE = generate_sample()


def test_deterministic_and_distinct() -> None:
    assert generate_sample() == SAMPLE
    assert generate_sample(seed=1) != SAMPLE
    assert len(SAMPLE) == 300 and len({(p.prompt, p.chosen, p.rejected) for p in SAMPLE}) == 300
    assert Counter(p.category for p in SAMPLE) == {c: 60 for c in CATEGORIES}
    assert all(p.chosen != p.rejected for p in SAMPLE)


def test_length_alone_does_not_solve_it() -> None:
    longer = sum(len(p.chosen) > len(p.rejected) for p in SAMPLE) / len(SAMPLE)
    assert 0.4 <= longer <= 0.6
    for category in CATEGORIES:  # and not within a category either, where a model could learn it per topic
        rows = [p for p in SAMPLE if p.category == category]
        assert 0.3 <= sum(len(p.chosen) > len(p.rejected) for p in rows) / len(rows) <= 0.7, category


def test_factual_chosen_is_correct_and_rejected_wrong() -> None:
    for p in (p for p in SAMPLE if p.category == "factual"):
        if m := re.search(r"(\d+) (?:\+|plus|and) (\d+)", p.prompt):
            total = int(m[1]) + int(m[2])
            assert f"= {total}." in p.chosen and f"= {total}." not in p.rejected
        else:
            country = next(c for c in CAPITALS if c in p.prompt)
            assert CAPITALS[country] in p.chosen and CAPITALS[country] not in p.rejected


def _run(source: str, xs: list[int]):
    code = source.split("```python\n", 1)[1].split("\n```", 1)[0]
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - the sample's own generated code
    fn = next(v for k, v in namespace.items() if callable(v) and not k.startswith("__"))
    return fn(list(xs))


def test_coding_chosen_functions_are_correct_and_rejected_ones_are_not() -> None:
    expected = {
        "sum": sum,
        "largest": max,
        "even": lambda xs: sum(1 for x in xs if x % 2 == 0),
        "reversed": lambda xs: xs[::-1],
        "average": lambda xs: sum(xs) / len(xs),
        "duplicates": lambda xs: list(dict.fromkeys(xs)),
    }
    probes = ([3, -1, 4, 1, 5, 9, 2, 6, 5], [-7, -3, -5])
    coding = [p for p in SAMPLE if p.category == "coding"]
    assert coding
    for p in coding:
        truth = next(f for key, f in expected.items() if key in p.prompt)
        assert all(_run(p.chosen, xs) == truth(xs) for xs in probes), p.chosen
        assert any(_run(p.rejected, xs) != truth(xs) for xs in probes), p.rejected


def test_safety_chosen_refuses_and_rejected_complies() -> None:
    for p in (p for p in SAMPLE if p.category == "safety"):
        assert re.search(r"can't help|won't help", p.chosen) and "I can tell you about" in p.chosen
        assert p.rejected.startswith(("Sure", "Of course"))


def test_summaries_keep_the_passage_facts() -> None:
    for p in (p for p in SAMPLE if p.category == "summarisation"):
        passage = p.prompt.split("\n\n", 1)[1]
        numbers = set(re.findall(r"\d+", passage))
        name = passage.split(",", 1)[0]
        assert set(re.findall(r"\d+", p.chosen)) <= numbers and p.chosen.startswith(name)
        assert not (set(re.findall(r"\d+", p.rejected)) <= numbers and p.rejected.startswith(name))


def test_instructions_follow_the_format() -> None:
    for p in (p for p in SAMPLE if p.category == "instructions"):
        answer = p.chosen.split("\n\n")[0]
        if m := re.search(r"List exactly (\d+)", p.prompt):
            assert len(answer.split(", ")) == int(m[1]) and len(p.rejected.split("\n\n")[0].split(", ")) != int(m[1])
        else:
            word = re.search(r"'(\w+)'", p.prompt)[1]  # type: ignore[index]
            want = "-".join(word) if "hyphen" in p.prompt else word[::-1]
            assert answer.rstrip(".") == want and p.rejected.split("\n\n")[0] != want


def test_write_trl_jsonl_and_cli(tmp_path) -> None:
    path = tmp_path / "out" / "sample.jsonl"
    assert write_sample_trl(path, n=25, seed=3) == 25
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 25 and all(set(r) == {"prompt", "chosen", "rejected"} for r in rows)
    assert [p.name for p in path.parent.iterdir()] == ["sample.jsonl"]  # no temp file left
    result = CliRunner().invoke(
        app, ["data", "sample", "--out", str(tmp_path / "cli.jsonl"), "--n", "25", "--seed", "3", "--json"]
    )
    assert json.loads(result.output) == {"out": str(tmp_path / "cli.jsonl"), "pairs": 25}
    assert (tmp_path / "cli.jsonl").read_text() == path.read_text()
    with pytest.raises(ValueError, match="at least 1"):
        generate_sample(0)
