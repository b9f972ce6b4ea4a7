"""The GSM8K step data: the arithmetic evaluator and the step check on hand-worked cases, a corruption worked out
by hand, the generator's labels verified by recomputation on the real training set, determinism, the model
solutions' outcome labels, and the TRL stepwise rows' neutral/unlabelled rules."""

from __future__ import annotations

import gzip
import json
from fractions import Fraction
from pathlib import Path

import pytest

from rewardkit.data.process.arithmetic import ArithmeticSyntaxError, agrees, evaluate, format_number
from rewardkit.data.process.corrupt import corrupt_at
from rewardkit.data.process.gsm8k_generate import GenerateCounts, generate_steps
from rewardkit.data.process.gsm8k_models import MODELS, read_model_solutions
from rewardkit.data.process.gsm8k_steps import (
    check_solution,
    check_step,
    problem_id,
    question_numbers,
    split_solution,
)
from rewardkit.data.process.stepwise_jsonl import stepwise_row, write_stepwise_jsonl
from rewardkit.records import Annotator, StepSolution

NATALIA_Q = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?"
)
NATALIA_A = (
    "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
    "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"
)


# --- arithmetic ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "value"),
    [("48/2", 24), ("2*(3+4)-1", 13), ("-3+5", 2), (".5*4", 2), ("0.1+0.2", Fraction(3, 10)), ("10/4", Fraction(5, 2))],
)
def test_evaluate_is_exact_arithmetic(expr: str, value: Fraction) -> None:
    assert evaluate(expr) == value


@pytest.mark.parametrize("expr", ["2**3", "__import__('os')", "1/0", "(1+2", "3 4", "", "2*"])
def test_evaluate_refuses_anything_but_arithmetic(expr: str) -> None:
    with pytest.raises(ArithmeticSyntaxError):
        evaluate(expr)


def test_a_result_agrees_to_the_precision_it_is_written_with() -> None:
    third = Fraction(10, 3)
    assert agrees(third, "3.33") and agrees(third, "3") and agrees(third, "3.333")
    assert not agrees(third, "3.4") and not agrees(third, "4") and not agrees(Fraction(24), "26")
    assert [format_number(v) for v in (Fraction(24), Fraction(1, 5), Fraction(1, 3), Fraction(-7, 4))] == [
        "24",
        "0.2",
        "0.33",
        "-1.75",
    ]


# --- the step check -----------------------------------------------------------------------------------


def test_question_numbers_read_numerals_percentages_fractions_and_words() -> None:
    known = question_numbers("She eats three of the 1,200 eggs, 20% of the rest and 3/4 of a dozen; half as many.")
    assert {Fraction(3), Fraction(1200), Fraction(20), Fraction(1, 5), Fraction(3, 4), Fraction(12)} <= known
    assert {Fraction(1, 2), Fraction(2)} <= known  # "half": halving, or dividing by 2
    assert Fraction(5) not in known


def test_check_step_finds_wrong_arithmetic_and_untraced_operands() -> None:
    known = {Fraction(48), Fraction(2)}
    assert check_step("48/2 = <<48/2=24>>24", known).ok
    assert check_step("48/2 = <<48/2=25>>25", known).wrong == (0,)
    assert check_step("48*5 = <<48*5=240>>240", known).untraced == (Fraction(5),)
    # an earlier annotation's result in the same step is known to the next one; 60 is a unit constant
    assert check_step("<<48/2=24>>24 then <<24*60=1440>>1440", known).ok
    assert check_step("<<48/2=24>>24 then <<24**2=576>>", known).unparsable == (1,)


def test_check_solution_accepts_natalia() -> None:
    steps, final = split_solution(NATALIA_A)
    assert (steps, final) == (NATALIA_A.split("\n")[:2], "72")
    checks = check_solution(NATALIA_Q, steps, final)
    assert [c.ok for c in checks[:-1]] == [True, True] and checks[-1] is True
    assert check_solution(NATALIA_Q, steps, "73")[-1] is False  # the answer must be written in a step


def test_corruption_worked_by_hand() -> None:
    steps, final = split_solution(NATALIA_A)
    found = corrupt_at(NATALIA_Q, steps, final, 0, 2)
    assert found is not None
    assert found.steps == [
        "Natalia sold 48/2 = <<48/2=26>>26 clips in May.",
        "Natalia sold 48+26 = <<48+26=74>>74 clips altogether in April and May.",
    ]
    assert (found.final, found.first_error, found.original, found.wrong) == ("74", 0, "24", "26")
    # a new value the solution already holds (24 + 24 = 48, in the question) is refused: it could be right
    assert corrupt_at(NATALIA_Q, steps, final, 0, 24) is None


# --- the generator on the real training set -------------------------------------------------------------


def _generate(path: Path, seed: int, limit: int) -> tuple[list[StepSolution], GenerateCounts]:
    counts = GenerateCounts()
    return list(generate_steps(path, seed=seed, corrupt_fraction=0.5, limit=limit, counts=counts)), counts


def test_generator_labels_verified_by_recomputation(shared_data: Path) -> None:
    path = shared_data / "gsm8k" / "train.jsonl.gz"
    solutions, counts = _generate(path, seed=0, limit=600)
    originals = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for _, line in zip(range(600), f, strict=False):
            record = json.loads(line)
            originals[record["question"]] = split_solution(record["answer"])
    assert counts.problems == 600 and len(solutions) == counts.clean + counts.corrupted
    assert counts.corrupted > 200 and counts.clean > 200  # about half of each, as asked
    assert sum(counts.left_out.values()) < 100
    for s in solutions:
        steps, final = list(s.steps[:-1]), s.steps[-1].removeprefix("A: ")
        original_steps, original_final = originals[s.prompt]
        checks = check_solution(s.prompt, steps, final)
        k = s.first_error
        if k is None:  # clean: every step checks, and it is the human solution with its answer
            assert s.outcome is True and set(s.labels) == {"good"}
            assert all(c.ok for c in checks[:-1]) and checks[-1] is True
            assert (steps, final) == (original_steps, original_final)
            continue
        assert s.outcome is False and s.labels == ("good",) * k + ("bad",) * (len(s.steps) - k)
        assert steps[:k] == original_steps[:k] and all(c.ok for c in checks[:k])  # the good prefix is the original
        assert checks[k].wrong  # the first bad step's arithmetic does not check
        assert all(not c.wrong for c in checks[k + 1 : -1])  # later steps carry the wrong value consistently
        assert final != original_final  # and it reaches the answer
        assert f"={s.metadata['wrong_result']}>>" in steps[k]


def test_generator_is_deterministic_by_seed(shared_data: Path) -> None:
    path = shared_data / "gsm8k" / "train.jsonl.gz"
    first, _ = _generate(path, seed=3, limit=150)
    again, _ = _generate(path, seed=3, limit=150)
    other, _ = _generate(path, seed=4, limit=150)
    assert first == again
    assert [s.labels for s in first] != [s.labels for s in other]
    # a problem's fate does not depend on --limit
    longer, _ = _generate(path, seed=3, limit=300)
    assert longer[: len(first)] == first


# --- the model solutions ------------------------------------------------------------------------------


def test_model_solutions_carry_outcome_labels_and_problem_ids(shared_data: Path) -> None:
    solutions = list(read_model_solutions(shared_data / "gsm8k" / "model_solutions.jsonl.gz"))
    assert len(solutions) == 655 * 4
    assert {s.model_name for s in solutions} == set(MODELS)
    for s in solutions:
        assert set(s.labels) == ({"good"} if s.outcome else {"bad"})
        assert s.metadata["supervision"] == "outcome"
    assert sum(s.outcome for s in solutions) == 995  # the file's is_correct, counted independently
    ids = {s.metadata["problem_id"] for s in solutions}
    assert len(ids) == 655
    with gzip.open(shared_data / "gsm8k" / "train.jsonl.gz", "rt", encoding="utf-8") as f:
        train_ids = {problem_id(json.loads(line)["question"]) for line in f}
    assert len(train_ids) == 7473 and ids.isdisjoint(train_ids)  # the test problems are not in train
    janet = next(s for s in solutions if s.prompt.startswith("Janet’s ducks") and s.model_name == "6b_finetuning")
    assert (janet.metadata["final_answer"], janet.metadata["ground_truth_answer"], janet.outcome) == ("26", "18", False)


# --- TRL stepwise rows --------------------------------------------------------------------------------


def test_stepwise_rows_map_neutral_and_stop_at_the_first_unlabelled_step(tmp_path: Path) -> None:
    def sol(labels: tuple, **kw) -> StepSolution:  # noqa: ANN001
        steps = tuple(f"step {i}" for i in range(len(labels)))
        return StepSolution("q", steps, labels, Annotator("a", "human"), "unit", **kw)

    row = stepwise_row(sol(("good", "neutral", "bad", None, "good"), metadata={"problem_id": "p"}))
    assert row == {
        "prompt": "q",
        "completions": ["step 0", "step 1", "step 2"],
        "labels": [True, True, False],
        "outcome": None,
        "first_error": 2,
        "problem_id": "p",
    }
    assert stepwise_row(sol(("neutral",)), neutral_as=False)["labels"] == [False]
    assert stepwise_row(sol((None, "good"))) is None
    counts = write_stepwise_jsonl(tmp_path / "out.jsonl", [sol(("good",), model_name="m"), sol((None,))])
    assert (counts.rows, counts.skipped) == (1, 1)
    assert '"model_name": "m"' in (tmp_path / "out.jsonl").read_text()
