"""``score_files``: a file is checked in one pass holding no rows, then scored a chunk at a time, and the output is
what scoring all rows at once gives, in input order, appearing whole or not at all. Tiny chunks (2-3 rows) make
every boundary case appear in a 7-row file; the models are real (tiny random BERTs), not mocks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rk_testing.tiny_models import REFUSING_TEMPLATE, build_tiny_chat_model, build_tiny_model

from rewardkit.scoring.files import (  # noqa: E402
    RecentScores,
    check_chat_template,
    check_input,
    read_chunks,
    score_file,
    score_rows,
)
from rewardkit.scoring.rows import InputError, read_rows  # noqa: E402
from rewardkit.scoring.scorer import BatchScorer, load_scorer  # noqa: E402
from rewardkit.scoring.writers import write_rows  # noqa: E402


@pytest.fixture(scope="module")
def scorer(tiny_model: Path) -> BatchScorer:
    return load_scorer(str(tiny_model), dtype="fp32")


@pytest.fixture(scope="module")
def chat_scorer(tmp_path_factory: pytest.TempPathFactory) -> BatchScorer:
    return load_scorer(
        str(build_tiny_chat_model(tmp_path_factory.mktemp("chat") / "model", template=REFUSING_TEMPLATE)), dtype="fp32"
    )


def rows_of_many_lengths(n: int = 7) -> list[dict[str, Any]]:
    """Rows whose lengths differ, so length sorting moves them and only restoring the order puts them back."""
    return [{"id": i, "prompt": f"question {i}", "response": "word " * (1 + (i * 5) % 11)} for i in range(n)]


def write_jsonl(path: Path, rows: list[dict[str, Any]], blank_after: int | None = None) -> Path:
    lines = [json.dumps(r) for r in rows]
    if blank_after is not None:
        lines.insert(blank_after, "")  # a blank line: line numbers then differ from row numbers
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".csv", ".parquet"])
def test_a_file_scored_in_chunks_equals_all_rows_scored_at_once_in_input_order(
    scorer: BatchScorer, tmp_path: Path, suffix: str
) -> None:
    rows = rows_of_many_lengths()
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / f"out{suffix}"
    result = score_file(scorer, src, out, chunk_rows=3)
    whole = score_rows(scorer, rows)
    back = read_rows(out)
    assert result.rows == 7 and len(back) == 7
    assert [str(r["id"]) for r in back] == [str(i) for i in range(7)]  # CSV gives text back
    for got, want in zip(back, whole):
        assert float(got["score"]) == pytest.approx(want["score"], abs=1e-4)
        assert float(got["score_normalized"]) == pytest.approx(want["score_normalized"], abs=1e-4)
        assert got["response"] == want["response"]
    assert len({round(r["score"], 6) for r in whole}) > 1  # the rows really differ, so order is tested
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_pairs_in_chunks_keep_their_two_scores_and_progress_counts_each_row_once(
    scorer: BatchScorer, tmp_path: Path
) -> None:
    pairs = [{"prompt": f"q{i}", "chosen": "good " * (1 + i), "rejected": "bad " * (8 - i)} for i in range(5)]
    src = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    done: list[float] = []
    score_file(scorer, src, tmp_path / "out.jsonl", on_rows=done.append, chunk_rows=2)
    whole = score_rows(scorer, pairs)
    back = read_rows(tmp_path / "out.jsonl")
    for got, want in zip(back, whole, strict=True):
        for key in ("score_a", "score_b", "p_a_better"):
            assert got[key] == pytest.approx(want[key], abs=1e-4)
    assert sum(done) == pytest.approx(5)  # the bar's total is check_input's row count


def test_chunks_are_bounded_by_rows_and_by_characters_and_keep_every_row(tmp_path: Path) -> None:
    rows = [{"prompt": "ab", "response": "c" * n} for n in (1, 1, 1, 1, 1, 1, 1)]
    src = write_jsonl(tmp_path / "in.jsonl", rows, blank_after=2)
    by_rows = list(read_chunks(src, "single", max_rows=3))
    assert [len(c.rows) for c in by_rows] == [3, 3, 1]
    assert by_rows[1].places[0] == f"{src}, line 5"  # the blank line 3 counted, as the reader counts it
    assert [r for c in by_rows for r in c.rows] == rows
    # 3 characters a row (prompt "ab" + response "c"): 7 characters hold two rows
    assert [len(c.rows) for c in read_chunks(src, "single", max_chars=7)] == [2, 2, 2, 1]
    big = write_jsonl(tmp_path / "big.jsonl", [{"prompt": "", "response": "x" * 50}, {"prompt": "", "response": "y"}])
    chunks = list(read_chunks(big, "single", max_chars=10))  # a row over the limit still gets a chunk of its own
    assert [c.parsed.responses for c in chunks] == [["x" * 50], ["y"]]
    messages = write_jsonl(
        tmp_path / "chat.jsonl",
        [{"messages": [{"role": "user", "content": "abc"}, {"role": "assistant", "content": "de"}]}] * 3,
    )
    assert [len(c.rows) for c in read_chunks(messages, "messages", max_chars=10)] == [2, 1]  # 5 characters a row


def test_check_input_counts_and_names_fields_and_finds_a_bad_row_anywhere(tmp_path: Path) -> None:
    rows = [{"prompt": "p", "response": "r"}, {"prompt": "p", "response": "r", "id": 7}]
    summary = check_input(write_jsonl(tmp_path / "in.jsonl", rows * 3))
    assert (summary.kind, summary.rows, summary.fields, summary.schema) == (
        "single",
        6,
        ["prompt", "response", "id"],
        None,
    )
    bad = write_jsonl(tmp_path / "bad.jsonl", rows * 3 + [{"prompt": "p", "response": 3}])
    with pytest.raises(InputError, match=rf"^{bad}, line 7: field 'response': expected text, got a number 3$"):
        check_input(bad)


def test_columns_that_appear_or_get_a_type_after_the_first_chunk_are_written(
    scorer: BatchScorer, tmp_path: Path
) -> None:
    """A CSV header and a Parquet schema come before the first row: they are the whole input's, not the first
    chunk's (pyarrow's from_pylist keeps only the first row's keys: a later field was silently dropped)."""
    rows: list[dict[str, Any]] = [{"prompt": "p", "response": f"r{i}", "tag": None} for i in range(4)]
    rows.append({"prompt": "p", "response": "late", "tag": "seen late", "note": {"kept": True}})
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    for suffix in (".parquet", ".csv"):
        out = tmp_path / f"out{suffix}"
        score_file(scorer, src, out, chunk_rows=2)
        last = read_rows(out)[-1]
        assert last["tag"] == "seen late"
        assert last["note"] in ({"kept": True}, '{"kept": true}')  # CSV holds an object as JSON text
    write_rows(rows, tmp_path / "all.parquet")  # the in-memory writer too
    assert read_rows(tmp_path / "all.parquet")[-1]["note"] == {"kept": True}


def test_a_column_of_numbers_and_text_is_refused_for_parquet_before_scoring(tmp_path: Path) -> None:
    src = write_jsonl(
        tmp_path / "in.jsonl", [{"prompt": "p", "response": "r", "id": 1}, {"prompt": "p", "response": "r", "id": "b"}]
    )
    assert check_input(src).rows == 2  # fine for JSONL and CSV
    with pytest.raises(
        InputError,
        match=rf"^{src}, line 1 to {src}, line 2: cannot be written as Parquet, .*write .jsonl or .csv instead$",
    ):
        check_input(src, schema=True)


def test_a_conversation_the_chat_template_refuses_names_its_file_line_and_leaves_no_output(
    chat_scorer: BatchScorer, tmp_path: Path
) -> None:
    """The refused row is the second of the second chunk, whose first row repeats an earlier one, and sits on
    line 6 (after a blank line): the message names the file's line, not an index of the chunk or of what the
    model saw; an earlier output stays. Found by ``check_chat_template`` before scoring, and the same when
    scoring meets it (a caller's summary that says the conversations were checked: the repeat is not scored
    again, so the model sees the refused row as its first)."""
    user = [{"role": "user", "content": "hi"}]
    rows = [{"prompt": user, "response": f"r{i}"} for i in range(6)]
    rows[3] = rows[0]
    rows[4]["prompt"] = [{"role": "system", "content": "be brief"}, *user]
    src = write_jsonl(tmp_path / "in.jsonl", rows, blank_after=2)
    out = tmp_path / "out.jsonl"
    out.write_text("an earlier run\n")
    expected = (
        f"{src}, line 6: field 'prompt': the model's chat template refuses this conversation: "
        "System messages are not supported"
    )
    for checked in (None, replace(check_input(src), conversations=0)):
        with pytest.raises(InputError) as caught:
            score_file(chat_scorer, src, out, checked=checked, chunk_rows=3)
        assert str(caught.value) == expected
        assert out.read_text() == "an earlier run\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]
    # a pair's two texts map back to one row; the in-memory scorer names "row i"
    pairs = [
        {"prompt": user, "chosen": "a", "rejected": "b"},
        {"prompt": rows[4]["prompt"], "chosen": "a", "rejected": "b"},
    ]
    with pytest.raises(
        InputError,
        match=r"^row 2: field 'prompt': the model's chat template refuses this conversation: System messages",
    ):
        score_rows(chat_scorer, pairs)


def test_a_refusal_in_the_last_chunk_is_found_before_any_row_is_scored(
    chat_scorer: BatchScorer, tmp_path: Path
) -> None:
    """Seven rows in chunks of two, the refused one last: no row reaches the model (the progress callback,
    called as rows are scored, is never called), where before three chunks were scored and thrown away."""
    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
        for i in range(7)
    ]
    rows[6]["messages"].insert(0, {"role": "system", "content": "be brief"})
    src = write_jsonl(tmp_path / "chat.jsonl", rows)
    scored: list[float] = []
    with pytest.raises(InputError) as caught:
        score_file(chat_scorer, src, tmp_path / "out.jsonl", on_rows=scored.append, chunk_rows=2)
    assert (
        str(caught.value) == f"{src}, line 7: field 'messages': the model's chat template refuses this conversation: "
        "System messages are not supported"
    )
    assert scored == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.jsonl"]


def test_check_chat_template_renders_each_distinct_conversation_once(
    chat_scorer: BatchScorer, scorer: BatchScorer, tmp_path: Path
) -> None:
    """Pairs: two conversations a row (the prompt with each response); repeated rows count once. A tokenizer
    without a chat template refuses nothing: the file is not even read."""
    pairs = [{"prompt": "q", "chosen": "a", "rejected": "b"}, {"prompt": "q", "chosen": "a", "rejected": "c"}] * 3
    src = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    checked: list[float] = []
    assert check_chat_template(chat_scorer.tokenizer, src, "pair", on_rows=checked.append) == 3  # q+a, q+b, q+c
    assert checked == [6]
    assert check_chat_template(scorer.tokenizer, tmp_path / "not-read.jsonl", "pair") == 0
    bad = write_jsonl(
        tmp_path / "bad.jsonl",
        [*pairs, {"prompt": [{"role": "system", "content": "s"}], "chosen": "a", "rejected": "b"}],
    )
    with pytest.raises(
        InputError,
        match=rf"^{bad}, line 7: field 'prompt': the model's chat template refuses this conversation: System "
        r"messages are not supported$",
    ):
        check_chat_template(chat_scorer.tokenizer, bad, "pair")


def test_an_interrupted_run_leaves_no_output_and_no_temporary(scorer: BatchScorer, tmp_path: Path) -> None:
    """Ctrl-C while the second chunk is scored: the first chunk is already in the temporary file, which goes."""
    src = write_jsonl(tmp_path / "in.jsonl", rows_of_many_lengths())
    seen: list[float] = []

    def interrupt_in_second_chunk(n: float) -> None:
        seen.append(n)
        if sum(seen) > 3:
            raise KeyboardInterrupt

    for suffix in (".jsonl", ".parquet"):
        with pytest.raises(KeyboardInterrupt):
            score_file(scorer, src, tmp_path / f"out{suffix}", on_rows=interrupt_in_second_chunk, chunk_rows=3)
        seen.clear()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_recent_scores_score_a_text_seen_lately_once_with_the_scorers_result(scorer: BatchScorer) -> None:
    texts = {name: ("q", f"response {name} " * (1 + i)) for i, name in enumerate("ABCD")}
    direct = scorer.score([p for p, _ in texts.values()], [r for _, r in texts.values()])
    want = dict(zip("ABCD", zip(direct.raw, direct.normalized, direct.truncated)))
    recent = RecentScores(size=3)

    def call(names: str) -> list[float]:
        done: list[float] = []
        res = recent.score(scorer, [texts[n][0] for n in names], [texts[n][1] for n in names], on_batch=done.append)
        for n, raw, norm, cut in zip(names, res.raw, res.normalized, res.truncated, strict=True):
            assert (raw, norm, cut) == pytest.approx(want[n], abs=1e-4)
        assert res.std is None and sum(done) == len(names)
        return done

    assert call("ABC") == [3]
    assert call("CDA") == [1, 2]  # D through the model, C and A remembered
    assert len(recent.results) == 3  # B, used least lately, was forgotten ...
    assert call("B") == [1]  # ... so it goes through the model again


def test_an_ensembles_std_survives_chunks_and_remembered_repeats(tmp_path: Path) -> None:
    ens = tmp_path / "ens"
    for i in range(2):
        build_tiny_model(ens / f"member_{i}", seed=10 + i)
    card = json.loads((ens / "member_0" / "rewardkit.json").read_text())
    (ens / "rewardkit.json").write_text(json.dumps({**card, "members": ["member_0", "member_1"]}))
    ensemble = load_scorer(str(ens), dtype="fp32")
    rows = rows_of_many_lengths(4)
    src = write_jsonl(tmp_path / "in.jsonl", rows + rows[:2])  # rows 4 and 5 repeat rows 0 and 1, a chunk later
    score_file(ensemble, src, tmp_path / "out.jsonl", chunk_rows=3)
    direct = ensemble.score([r["prompt"] for r in rows], [r["response"] for r in rows])
    assert direct.std is not None and min(direct.std) > 0
    back = read_rows(tmp_path / "out.jsonl")
    assert [r["score_std"] for r in back] == pytest.approx([*direct.std, *direct.std[:2]], abs=1e-4)
    assert [r["score"] for r in back] == pytest.approx([*direct.raw, *direct.raw[:2]], abs=1e-4)
