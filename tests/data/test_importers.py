"""Importers: each format maps to the comparisons worked out by hand; bad input is named by file, line and
field; --on-error fail leaves the store unchanged; skip imports the rest and writes the rejects.

Store-touching tests use the ``store`` fixture, so they run on SQLite and on PostgreSQL (RK_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardkit.data.importers import alpacaeval, hh_rlhf, trl, ultrafeedback
from rewardkit.data.importers.errors import ImportFailed
from rewardkit.data.importers.options import ImportOptions
from rewardkit.data.importers.reader import iter_records
from rewardkit.data.importers.run import ImportConfig, run_import
from rewardkit.records import PairwiseJudgement, RatingsJudgement, RecordError
from rewardkit.store.queries import iter_comparisons, list_imports, table_counts

FIXTURES = Path(__file__).parent / "fixtures"
OPTS = ImportOptions("test")


def _records(name: str) -> list[dict]:
    return [r for _, r in iter_records(FIXTURES / name)]


def _import(store, fmt: str, *names: str, **kw):  # noqa: ANN001, ANN202
    return run_import(store, ImportConfig(fmt, tuple(FIXTURES / n for n in names), **kw))


# --- parsers (pure) ---------------------------------------------------------------------------------


def test_trl_four_shapes_from_jsonl() -> None:
    got = [trl.parse(r, OPTS) for r in _records("trl_good.jsonl")]
    assert len(got) == 4  # the trailing blank line is not a record
    assert (got[0].prompt, got[0].responses[0].text, got[0].responses[1].text) == ("The sky is", " blue.", " green.")
    assert got[0].judgement == PairwiseJudgement("a", margin=1.5)
    # implicit text prompt: common prefix cut back to the word boundary
    assert (got[1].prompt, got[1].responses[0].text, got[1].responses[1].text) == (
        "What colour is grass? Grass is",
        "green.",
        "purple.",
    )
    assert got[2].prompt == [{"role": "user", "content": "What is 2+2?"}]
    assert [r.text for r in got[2].responses] == ["4", "5"]
    assert got[3].prompt == [{"role": "user", "content": "Name a fruit."}]
    assert [r.text for r in got[3].responses] == ["An apple.", "A brick."]
    assert all(c.annotator.kind == "human" and c.source == "test" for c in got)


def test_trl_text_prompt_beside_whole_conversations_as_ultrafeedback_binarized_holds_them() -> None:
    # HuggingFaceH4/ultrafeedback_binarized: a text prompt, and chosen/rejected that repeat the user turn.
    # Before: "field 'chosen': expected one assistant message, got 2"; TRL takes the shared messages as prompt.
    user = {"role": "user", "content": "How do I bake bread?"}
    row = {
        "prompt": "How do I bake bread?",
        "prompt_id": "9f1c",
        "chosen": [user, {"role": "assistant", "content": "Mix flour, water, salt and yeast; knead; bake."}],
        "rejected": [user, {"role": "assistant", "content": "Buy it."}],
        "messages": [user, {"role": "assistant", "content": "Mix flour, water, salt and yeast; knead; bake."}],
        "score_chosen": 8.0,
        "score_rejected": 3.0,
    }
    got = trl.parse(row, OPTS)
    assert got.prompt == [user]
    assert [r.text for r in got.responses] == ["Mix flour, water, salt and yeast; knead; bake.", "Buy it."]
    assert got.judgement == PairwiseJudgement("a")
    # a text prompt with one-message conversational completions stays as it was: the prompt is the text
    one = {**row, "chosen": row["chosen"][1:], "rejected": row["rejected"][1:]}
    assert trl.parse(one, OPTS).prompt == "How do I bake bread?"
    # conversations that do not share the user turn have no prompt to take
    other = {**row, "rejected": [{"role": "user", "content": "Something else"}, row["rejected"][1]]}
    with pytest.raises(RecordError, match="share no opening message"):
        trl.parse(other, OPTS)


def test_trl_csv_matches_jsonl() -> None:
    from_csv = [trl.parse(r, OPTS) for r in _records("trl_good.csv")]
    from_jsonl = [trl.parse(r, OPTS) for r in _records("trl_good.jsonl")][:3]
    assert [c.dedupe_key for c in from_csv] == [c.dedupe_key for c in from_jsonl]
    assert from_csv[0].judgement.margin == 1.5


def test_hh_rlhf_splits_the_shared_prefix_into_chat_messages() -> None:
    first, second = (hh_rlhf.parse(r, OPTS) for r in _records("hh_good.jsonl"))
    assert first.prompt == [{"role": "user", "content": "How do I bake bread?"}]
    assert [r.text for r in first.responses] == [
        "Mix flour, water, yeast and salt, knead, let it rise, bake.",
        "Buy some.",
    ]
    assert [m["role"] for m in second.prompt] == ["user", "assistant", "user"]
    assert second.prompt[2]["content"] == "Tell me a joke."
    assert second.responses[1].text == "No."
    assert first.judgement.choice == "a" and first.annotator.kind == "human"


def test_hh_rlhf_repeated_speaker_is_one_turn() -> None:
    messages = hh_rlhf.parse_transcript("\n\nHuman: hi\n\nAssistant: one\n\nAssistant: two", "chosen")
    assert messages == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "one\n\ntwo"}]
    with pytest.raises(RecordError) as err:
        hh_rlhf.parse_transcript("no turns here", "chosen")
    assert err.value.field == "chosen"


@pytest.mark.parametrize(
    ("preference", "choice", "strength"),
    [(1.0, "a", 1.0), (1.25, "a", 0.5), (1.5, "tie", 0.0), (1.75, "b", 0.5), (2.0, "b", 1.0)],
)
def test_alpacaeval_preference_to_choice_and_strength(preference: float, choice: str, strength: float) -> None:
    assert alpacaeval.choice_and_strength(preference) == (choice, pytest.approx(strength))


def test_alpacaeval_rows() -> None:
    rows = _records("alpacaeval_small.jsonl")
    first = alpacaeval.parse(rows[0], OPTS)
    assert [r.model_name for r in first.responses] == ["ref", "model-x"]
    # strength |1.75 - 1.5| * 2 and the soft label P(output_1 better) = 2 - 1.75, both exact in binary
    assert first.judgement == PairwiseJudgement("b", strength=0.5, probability=0.25)
    assert first.annotator.id == "judge" and first.annotator.kind == "ai"
    assert first.metadata == {"dataset": "helpful_base"}
    assert alpacaeval.parse(rows[1], OPTS).judgement.choice == "tie"
    with pytest.raises(RecordError) as err:
        alpacaeval.parse(rows[3], OPTS)
    assert err.value.field == "preference" and "null" in err.value.message
    with pytest.raises(RecordError, match="in \\[1, 2\\]"):
        alpacaeval.parse({**rows[0], "preference": 2.5}, OPTS)


def test_ultrafeedback_full_record_is_one_ratings_comparison() -> None:
    (record,) = _records("ultrafeedback_full.jsonl")
    c = ultrafeedback.parse(record, OPTS)
    assert isinstance(c.judgement, RatingsJudgement)
    assert [r.model_name for r in c.responses] == ["m1", "m2", "m3"]
    r = c.judgement.ratings
    assert r["helpfulness"] == (4.0, 1.0, 5.0)
    assert r["honesty"] == (5.0, None, 5.0)  # "N/A"
    assert r["overall"] == (7.5, 2.0, 9.0)
    assert r["fine_grained"] == (4.5, None, 5.0)  # NaN
    assert c.responses[0].metadata == {"principle": "helpfulness", "critique": "good"}
    assert c.metadata == {"subset": "evol_instruct"} and c.annotator.kind == "ai"
    bad = json.loads(json.dumps(record))
    bad["completions"][1]["annotations"]["helpfulness"] = [{"Rating": "lots"}]
    with pytest.raises(RecordError) as err:
        ultrafeedback.parse(bad, OPTS)
    assert err.value.field == "completions[1].annotations.helpfulness.Rating"


def test_ultrafeedback_binarized() -> None:
    (record,) = _records("ultrafeedback_binarized.jsonl")
    c = ultrafeedback.parse(record, OPTS)
    assert c.prompt == [{"role": "user", "content": "What is 3*3?"}]
    assert [r.text for r in c.responses] == ["9", "6"]
    assert c.judgement == PairwiseJudgement("a", margin=5.5)


# --- bad input: one test per case, named by file, line and field --------------------------------------

BAD_CASES = [
    ("bad_malformed_json.jsonl", "line 2", "(line)", "malformed JSON"),
    ("bad_missing_field.jsonl", "line 2", "rejected", "is missing"),
    ("bad_missing_field.csv", "line 3", "rejected", "is missing"),
    ("bad_mistyped_field.jsonl", "line 2", "margin", "expected a number"),
    ("bad_empty_response.jsonl", "line 2", "chosen", "is empty"),
    ("bad_identical.jsonl", "line 2", "rejected", "identical to chosen"),
    ("bad_invalid_utf8.jsonl", "line 2", "(line)", "invalid UTF-8"),
    ("bad_invalid_utf8.csv", "line 3", "chosen", "invalid UTF-8"),
]


@pytest.mark.parametrize(("name", "where", "field", "reason"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_fails_naming_file_line_and_field_and_stores_nothing(
    store, name: str, where: str, field: str, reason: str
) -> None:  # noqa: ANN001
    with store() as s:
        before = table_counts(s)
    with pytest.raises(ImportFailed) as err:
        _import(store, "trl", "trl_good.jsonl", name)
    message = str(err.value)
    assert f"{FIXTURES / name}, {where}: field '{field}'" in message and reason in message, message
    with store() as s:
        assert table_counts(s) == before  # not even the good file before it, nor an audit row


@pytest.mark.parametrize(("name", "where", "field", "reason"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_skip_imports_the_rest_and_writes_rejects(
    store, tmp_path: Path, name: str, where: str, field: str, reason: str
) -> None:  # noqa: ANN001
    rejects = tmp_path / "out" / "rejects.jsonl"
    result = _import(store, "trl", name, on_error="skip", rejects_path=rejects)
    assert (result.counts.read, result.counts.imported, result.counts.rejected) == (2, 1, 1)
    (line,) = rejects.read_text(encoding="utf-8").splitlines()
    row = json.loads(line)
    assert row["file"] == str(FIXTURES / name) and row[where.split()[0]] == int(where.split()[1])
    assert row["field"] == field and reason in row["reason"]
    assert [p.name for p in rejects.parent.iterdir()] == ["rejects.jsonl"]  # no temp file left behind
    with store() as s:
        assert table_counts(s)["comparisons"] == 1


def test_missing_file_and_unknown_format_are_import_errors(store) -> None:  # noqa: ANN001
    with pytest.raises(ImportFailed, match="does_not_exist.jsonl: no such file"):
        _import(store, "trl", "does_not_exist.jsonl")
    with pytest.raises(ImportFailed, match="not a Hugging Face datasets folder"):
        list(iter_records(FIXTURES))
    with pytest.raises(ImportFailed, match="unknown format 'nope'"):
        _import(store, "nope", "trl_good.jsonl")
    with pytest.raises(ImportFailed, match="unknown file type"):
        _import(store, "trl", "../test_importers.py")


# --- storing ------------------------------------------------------------------------------------------


def test_import_counts_audit_row_and_idempotence(store) -> None:  # noqa: ANN001
    commits: list[int] = []
    first = run_import(
        store,
        ImportConfig("trl", (FIXTURES / "trl_good.jsonl", FIXTURES / "trl_good.csv"), batch_size=3),
        on_commit=commits.append,
    )
    # the CSV repeats three of the JSONL's four records: duplicates, not new rows
    assert (first.counts.read, first.counts.imported, first.counts.duplicates, first.counts.rejected) == (7, 4, 3, 0)
    assert commits == [3, 6, 7]
    again = _import(store, "trl", "trl_good.jsonl")
    assert (again.counts.imported, again.counts.duplicates) == (0, 4)
    with store() as s:
        assert table_counts(s)["comparisons"] == 4
        audit = list_imports(s)
        assert [a.status for a in audit] == ["done", "done"]
        assert audit[0].counts["imported"] == 4 and audit[0].format == "trl"
        stored = {c.comparison.responses[0].text: c.comparison for c in iter_comparisons(s)}
    assert stored[" blue."].judgement.margin == 1.5


def test_every_format_round_trips_through_the_store(store) -> None:  # noqa: ANN001
    assert _import(store, "hh-rlhf", "hh_good.jsonl").counts.imported == 2
    r = _import(store, "alpacaeval", "alpacaeval_small.jsonl", on_error="skip")
    assert (r.counts.imported, r.counts.rejected, r.counts.ties) == (3, 1, 1)
    assert (
        _import(store, "ultrafeedback", "ultrafeedback_full.jsonl", "ultrafeedback_binarized.jsonl").counts.imported
        == 2
    )
    with store() as s:
        by_source: dict[str, int] = {}
        for c in iter_comparisons(s):
            by_source[c.comparison.source] = by_source.get(c.comparison.source, 0) + 1
            if c.comparison.source == "ultrafeedback" and isinstance(c.comparison.judgement, RatingsJudgement):
                assert c.comparison.judgement.ratings["honesty"] == (5.0, None, 5.0)
    assert by_source == {"hh-rlhf": 2, "alpacaeval": 3, "ultrafeedback": 2}


def test_parquet_and_hf_folder_import_like_jsonl(store, tmp_path: Path) -> None:  # noqa: ANN001
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}", "margin": float(i)} for i in range(1200)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "pairs.parquet", row_group_size=500)
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "hf"))
    from_parquet = run_import(store, ImportConfig("trl", (tmp_path / "pairs.parquet",)))
    from_hf = run_import(store, ImportConfig("trl", (tmp_path / "hf",)))
    assert (from_parquet.counts.imported, from_parquet.counts.read) == (1200, 1200)
    assert (from_hf.counts.imported, from_hf.counts.duplicates) == (0, 1200)  # the same records
    splits = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(rows[:5]),
            "test": datasets.Dataset.from_list(rows[-1:] + [{**rows[0], "prompt": "new"}]),
        }
    )
    splits.save_to_disk(str(tmp_path / "hf_dict"))
    from_dict = run_import(store, ImportConfig("trl", (tmp_path / "hf_dict",)))
    assert (from_dict.counts.read, from_dict.counts.imported) == (7, 1)  # every split; only "new" is new
    bad = [*rows[:3], {"prompt": "x", "chosen": "same", "rejected": "same", "margin": 0.0}]
    pq.write_table(pa.Table.from_pylist(bad), tmp_path / "bad.parquet")
    with pytest.raises(ImportFailed, match=r"bad.parquet, row 3: field 'rejected'"):
        run_import(store, ImportConfig("trl", (tmp_path / "bad.parquet",)))
