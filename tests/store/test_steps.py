"""Step-labelled solutions in the store, on SQLite and (in CI) PostgreSQL: idempotent batches, a full round trip,
filters, and a failed transaction that stores nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rewardkit.records import Annotator, StepSolution
from rewardkit.store import session_scope
from rewardkit.store import steps as st
from rewardkit.store.queries import AddResult, prompt_id, start_import, table_counts

RULE = Annotator("gsm8k-check", "rule")
HUMAN = Annotator("labeler-1", "human")


def solution(prompt: str = "2+3*4?", labels=("good", "bad"), **kw) -> StepSolution:  # noqa: ANN001
    steps = kw.pop("steps", ("3*4 = <<3*4=12>>12", "2+12 = <<2+12=15>>15"))
    return StepSolution(
        **{"prompt": prompt, "steps": steps, "labels": labels, "annotator": RULE, "source": "unit", **kw}
    )


def test_a_batch_is_idempotent_by_content(store) -> None:  # noqa: ANN001
    batch = [solution(), solution("other?"), solution()]  # the third repeats the first
    with session_scope(store) as s:
        assert st.add_step_solutions(s, batch) == AddResult(inserted=2, duplicates=1)
    with session_scope(store) as s:
        assert st.add_step_solutions(s, batch) == AddResult(inserted=0, duplicates=3)
        assert table_counts(s)["step_solutions"] == 2
        assert table_counts(s)["annotators"] == 1


def test_other_labels_of_the_same_steps_are_another_solution_but_a_resent_event_id_is_not(store) -> None:  # noqa: ANN001
    with session_scope(store) as s:
        assert st.add_step_solutions(s, [solution(), solution(labels=("good", "good"))]).inserted == 2
        assert st.add_step_solutions(s, [solution(client_event_id="e1")]).inserted == 1
        assert st.add_step_solutions(s, [solution(labels=(None, None), client_event_id="e1")]).inserted == 0
        assert st.count_step_solutions(s) == 3


def test_round_trip_keeps_every_field(store) -> None:  # noqa: ANN001
    created = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    chat = [{"role": "user", "content": "What is 2+3*4?"}]
    original = solution(
        chat,
        labels=("neutral", None),
        annotator=HUMAN,
        outcome=False,
        model_name="175b_verification",
        created_at=created,
        metadata={"problem_id": "p1", "final_answer": "20"},
    )
    with session_scope(store) as s:
        import_id = start_import(s, format="trl-stepwise", paths=["x.jsonl"])
        st.add_step_solutions(s, [original], import_id=import_id)
    with session_scope(store) as s:
        [stored] = list(st.iter_step_solutions(s))
        assert st.step_solutions_of_import(s, import_id) == 1
    assert stored.solution == original
    assert stored.solution.created_at == created
    assert stored.id == original.dedupe_key
    assert stored.prompt_id == prompt_id(chat)


def test_first_error_and_counts_are_copied_out_for_statistics(store) -> None:  # noqa: ANN001
    from sqlalchemy import select

    from rewardkit.store.tables import StepSolutionRow

    with session_scope(store) as s:
        st.add_step_solutions(s, [solution(labels=("good", "bad")), solution("q", labels=("good", None))])
        rows = {r.prompt: (r.n_steps, r.first_error) for r in s.scalars(select(StepSolutionRow))}
    assert rows == {"2+3*4?": (2, 1), "q": (2, None)}


def test_filters_and_streaming(store) -> None:  # noqa: ANN001
    old = datetime(2024, 1, 1, tzinfo=UTC)
    with session_scope(store) as s:
        st.add_step_solutions(
            s,
            [
                solution("a", source="prm800k", annotator=HUMAN),
                solution("b", source="gsm8k"),
                solution("c", source="gsm8k", created_at=old),
            ],
        )
        n = lambda **kw: st.count_step_solutions(s, st.StepFilter(**kw))  # noqa: E731
        assert n() == 3
        assert n(sources=("gsm8k",)) == 2
        assert n(annotator_kinds=("human",)) == 1
        assert n(since=old + timedelta(days=1)) == 2
        assert n(until=old + timedelta(days=1)) == 1
        prompts = [
            x.solution.prompt for x in st.iter_step_solutions(s, st.StepFilter(sources=("gsm8k",)), batch_size=1)
        ]
    assert sorted(prompts) == ["b", "c"]


def test_failed_transaction_stores_nothing(store) -> None:  # noqa: ANN001
    with pytest.raises(RuntimeError):
        with session_scope(store) as s:
            st.add_step_solutions(s, [solution()])
            raise RuntimeError("the importer found a bad record")
    with session_scope(store) as s:
        assert st.count_step_solutions(s) == 0
