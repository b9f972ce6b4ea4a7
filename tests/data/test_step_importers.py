"""The step-solution importers (trl-stepwise, prm800k, math-shepherd): each fixture maps to the solutions worked out
by hand; bad input is one line naming file, line and field; --on-error fail stores nothing; a re-import stores
nothing new. Store-touching tests run on SQLite and PostgreSQL (the ``store`` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardkit.data.importers import math_shepherd, prm800k, trl_stepwise
from rewardkit.data.importers.errors import ImportFailed
from rewardkit.data.importers.options import ImportOptions
from rewardkit.data.importers.reader import iter_records
from rewardkit.data.importers.run import ImportConfig, run_import
from rewardkit.records import RecordError
from rewardkit.store.steps import count_step_solutions, iter_step_solutions

FIXTURES = Path(__file__).parent / "fixtures"


def _records(name: str) -> list[dict]:
    return [r for _, r in iter_records(FIXTURES / name)]


# --- parsers (pure) ---------------------------------------------------------------------------------


def test_trl_stepwise_text_chat_and_rewardkit_extras() -> None:
    a, b, c = (trl_stepwise.parse(r, ImportOptions("trl-stepwise")) for r in _records("trl_stepwise_good.jsonl"))
    assert a.prompt == "Which is larger, 9.8 or 9.11?"
    assert a.steps == ("Compare the tenths: 8 > 1.", "So 9.11 is larger.")
    assert a.labels == ("good", "bad") and a.first_error == 1
    assert (a.annotator.id, a.annotator.kind, a.source) == ("trl-stepwise", "human", "trl-stepwise")
    assert b.prompt == [{"role": "user", "content": "What is 2 + 3 * 4?"}] and b.labels == ("good", "good")
    assert b.first_error is None
    # the keys gsm8k-steps writes come back: outcome and model name as fields, the rest as metadata
    assert c.labels == ("bad", None, None) and c.outcome is False and c.model_name == "6b_finetuning"
    assert c.metadata == {"problem_id": "p-7", "first_error": 0}


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        ({"prompt": "p", "completions": ["a", "b"], "labels": [True]}, "labels", "one label per completion (2), got 1"),
        ({"prompt": "p", "completions": ["a"], "labels": ["yes"]}, "labels[0]", "expected true, false or null"),
        ({"prompt": "p", "completions": [], "labels": []}, "completions", "non-empty list"),
        ({"prompt": "p", "completions": ["a", " "], "labels": [True, True]}, "completions[1]", "is empty"),
        ({"completions": ["a"], "labels": [True]}, "prompt", "is missing"),
        ({"prompt": "p", "completions": ["a"], "labels": [True], "outcome": "yes"}, "outcome", "true, false or null"),
    ],
)
def test_trl_stepwise_errors_name_the_field(record: dict, field: str, reason: str) -> None:
    with pytest.raises(RecordError) as err:
        trl_stepwise.parse(record, ImportOptions("t"))
    assert err.value.field == field and reason in err.value.message


def test_prm800k_takes_the_chosen_path_and_keeps_the_first_error() -> None:
    found_error, solved = (prm800k.parse(r, ImportOptions("prm800k")) for r in _records("prm800k_small.jsonl"))
    # phase 2: two chosen steps (rated 0 and 1), then no choice: the first -1 candidate ends the path
    assert found_error.steps == (
        "I want the largest integer dividing both.",
        "Factor both.",
        "$200,\\!000 = 2^9\\cdot 5^4$.",
    )
    assert found_error.labels == ("neutral", "good", "bad") and found_error.first_error == 2
    assert found_error.outcome is None
    assert (found_error.annotator.id, found_error.annotator.kind) == ("340d89bc-f5b7-45e9-b272-909ba68ee363", "human")
    assert found_error.metadata["finish_reason"] == "found_error"
    assert found_error.metadata["ground_truth_answer"] == "40,\\!000"
    # phase 1: the labeler's own step replaces a rejected one (good); the solution reached the answer
    assert solved.steps == (
        "The denominator factors as $(x+3)(x-2)$.",
        "Neither root cancels, so there are 2 vertical asymptotes.",
        "# Answer\n\n2",
    )
    assert solved.labels == ("good", "good", "good") and solved.outcome is True


def test_prm800k_errors_name_the_field() -> None:
    _, bad_rating, bad_index = _records("bad_prm800k.jsonl")
    with pytest.raises(RecordError, match="expected -1, 0, 1 or null, got 2") as err:
        prm800k.parse(bad_rating, ImportOptions("p"))
    assert err.value.field == "label.steps[0].completions[0].rating"
    with pytest.raises(RecordError, match="expected an index below 1, got 3") as err:
        prm800k.parse(bad_index, ImportOptions("p"))
    assert err.value.field == "label.steps[2].chosen_completion"
    with pytest.raises(RecordError, match="no step on the chosen path"):
        prm800k.parse({"question": {"problem": "p"}, "label": {"steps": []}}, ImportOptions("p"))


def test_math_shepherd_splits_question_and_tagged_steps() -> None:
    good, bad = (math_shepherd.parse(r, ImportOptions("math-shepherd")) for r in _records("math_shepherd_small.jsonl"))
    assert good.prompt.startswith("Janet’s ducks lay 16 eggs") and good.prompt.endswith("How much does she make?")
    assert good.steps == (
        "Step 1: She has 16 - 3 - 4 = <<16-3-4=9>>9 eggs left.",
        "Step 2: She makes 9 * 2 = $<<9*2=18>>18.",
        "Step 3: The answer is: 18",
    )
    assert good.labels == ("good", "good", "good") and good.metadata == {"task": "GSM8K"}
    assert (good.annotator.id, good.annotator.kind) == ("math-shepherd-rollouts", "rule")
    assert bad.labels == ("bad", "bad", "bad") and bad.first_error == 0


def test_math_shepherd_label_that_is_not_the_input_is_named() -> None:
    _, changed_text, bad_mark = _records("bad_math_shepherd.jsonl")
    with pytest.raises(RecordError, match="differs from input before the tag of step 2") as err:
        math_shepherd.parse(changed_text, ImportOptions("m"))
    assert err.value.field == "label"
    with pytest.raises(RecordError, match=r"expected \+ or - at the tag of step 2, got '\?'"):
        math_shepherd.parse(bad_mark, ImportOptions("m"))
    with pytest.raises(RecordError, match="no step tag"):
        math_shepherd.parse({"input": "q Step 1: a", "label": "q Step 1: a"}, ImportOptions("m"))
    with pytest.raises(RecordError, match="'Step 1:'"):
        math_shepherd.parse({"input": "q a ки", "label": "q a +"}, ImportOptions("m"))


# --- through the import driver and the store --------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "fixture", "n"),
    [
        ("trl-stepwise", "trl_stepwise_good.jsonl", 3),
        ("prm800k", "prm800k_small.jsonl", 2),
        ("math-shepherd", "math_shepherd_small.jsonl", 2),
    ],
)
def test_import_stores_once_and_reads_back(store, fmt: str, fixture: str, n: int) -> None:  # noqa: ANN001
    first = run_import(store, ImportConfig(fmt, (FIXTURES / fixture,)))
    assert (first.counts.read, first.counts.imported, first.counts.duplicates) == (n, n, 0)
    again = run_import(store, ImportConfig(fmt, (FIXTURES / fixture,)))
    assert (again.counts.imported, again.counts.duplicates) == (0, n)
    with store() as s:
        stored = [x.solution for x in iter_step_solutions(s)]
    parser = {"trl-stepwise": trl_stepwise, "prm800k": prm800k, "math-shepherd": math_shepherd}[fmt]
    expected = [parser.parse(r, ImportOptions(fmt)) for r in _records(fixture)]
    key = lambda sol: sol.dedupe_key  # noqa: E731
    assert [(x.prompt, x.steps, x.labels, x.outcome) for x in sorted(stored, key=key)] == [
        (x.prompt, x.steps, x.labels, x.outcome) for x in sorted(expected, key=key)
    ]


def test_fail_mode_names_file_line_and_field_and_stores_nothing(store) -> None:  # noqa: ANN001
    path = FIXTURES / "bad_trl_stepwise.jsonl"
    with pytest.raises(ImportFailed) as err:
        run_import(store, ImportConfig("trl-stepwise", (path,)))
    assert str(err.value).startswith(f"{path}, line 2: field 'labels': expected one label per completion (2), got 1")
    assert "\n" not in str(err.value)
    with store() as s:
        assert count_step_solutions(s) == 0


def test_skip_mode_stores_the_rest_and_writes_rejects(store, tmp_path: Path) -> None:  # noqa: ANN001
    rejects = tmp_path / "rejects.jsonl"
    result = run_import(store, ImportConfig("math-shepherd", (FIXTURES / "bad_math_shepherd.jsonl",), "skip", rejects))
    assert (result.counts.imported, result.counts.rejected) == (1, 2)
    assert [line.count('"field": "label"') for line in rejects.read_text().splitlines()] == [1, 1]


def test_a_step_import_that_failed_part_way_is_reported_with_its_step_solutions(store) -> None:  # noqa: ANN001
    from rewardkit.data.importers.audit import unfinished_imports
    from rewardkit.store import session_scope
    from rewardkit.store.queries import finish_import, start_import
    from rewardkit.store.steps import add_step_solutions

    parsed = [trl_stepwise.parse(r, ImportOptions("trl-stepwise")) for r in _records("trl_stepwise_good.jsonl")]
    with session_scope(store) as s:
        import_id = start_import(s, format="trl-stepwise", paths=["/data/steps.jsonl"])
        add_step_solutions(s, parsed[:2], import_id=import_id)  # the chunk it committed before failing
        finish_import(s, import_id, status="failed", counts={})
    with session_scope(store) as s:
        [unfinished] = unfinished_imports(s)
    assert (unfinished.id, unfinished.state, unfinished.comparisons, unfinished.step_solutions) == (
        import_id,
        "failed",
        0,
        2,
    )
    assert "failed part-way, 2 step solutions stored; run the same import again" in unfinished.describe()
