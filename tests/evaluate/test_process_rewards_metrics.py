"""Process-reward evaluation maths against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.evaluate.process import (
    final_answer,
    known_first_error,
    majority_values,
    oracle_values,
    predicted_first_error,
    processbench_f1,
    random_values,
    selection_accuracy,
    step_accuracy,
    weighted_vote_values,
    with_interval,
)
from rewardkit.model.calibration import fit_step_threshold


def test_step_accuracy_counts_labelled_scored_steps_with_neutral_as_good() -> None:
    scores = [[0.9, 0.4, None], [0.2, 0.6]]
    labels = [["good", "good", "bad"], ["bad", "neutral"]]
    # 0.9 good: right; 0.4 good: wrong; None: left out; 0.2 bad: right; 0.6 neutral (= good): right -> 3 / 4
    assert step_accuracy(scores, labels) == {"accuracy": 0.75, "steps": 4}
    assert step_accuracy([[0.7, 0.1]], [[None, "bad"]]) == {"accuracy": 1.0, "steps": 1}


def test_step_threshold_fitted_by_balanced_accuracy_by_hand() -> None:
    # good 0.9, 0.8, 0.7; bad 0.75, 0.6. Cuts halfway between neighbours: 0.65 keeps 3/3 good and catches 1/2 bad
    # (0.75); 0.725: 2/3 and 1/2 (0.583); 0.775: 2/3 and 2/2 (0.833, the best); 0.85: 1/3 and 2/2 (0.667)
    threshold, balanced = fit_step_threshold([0.9, 0.75, 0.8, 0.6, 0.7], [True, False, True, False, True])
    assert math.isclose(threshold, 0.775) and math.isclose(balanced, 5 / 6)
    # every score above 0.5, good ones higher: at 0.5 no step is an error; the fitted threshold sees the gap
    assert fit_step_threshold([0.72, 0.70, 0.61, 0.63], [True, True, False, False]) == (0.665, 1.0)
    # separable either side of 0.5 by any cut between 0.2 and 0.8: the one nearest 0.5
    assert fit_step_threshold([0.8, 0.2], [True, False]) == (0.5, 1.0)
    threshold, balanced = fit_step_threshold([0.8, 0.9], [True, True])  # no bad step: nothing to fit
    assert threshold == 0.5 and math.isnan(balanced)
    scores, labels = [[0.72, 0.61], [0.70, 0.63]], [["good", "bad"], ["good", "bad"]]
    assert step_accuracy(scores, labels)["accuracy"] == 0.5 and step_accuracy(scores, labels, 0.665)["accuracy"] == 1


def test_first_error_prediction_and_what_is_known() -> None:
    assert predicted_first_error([0.9, 0.6, 0.3, 0.1]) == 2
    assert predicted_first_error([0.9, 0.5]) is None  # 0.5 is not below the threshold
    assert predicted_first_error([None, 0.2]) == 1
    assert predicted_first_error([0.72, 0.61, 0.7], threshold=0.665) == 1
    assert known_first_error(["good", "bad", None]) == (True, 1)
    assert known_first_error(["good", "neutral"]) == (True, None)
    assert known_first_error(["good", None]) == (False, None)  # the unlabelled step may be the first error


def test_processbench_f1_by_hand() -> None:
    predicted = [1, None, 2, None, 0]
    truth = [1, None, 1, 0, None]
    # erroneous (truth 1, 1, 0): predicted 1 right, 2 wrong, none wrong -> a = 1/3
    # correct (truth none twice): none right, 0 wrong -> b = 1/2;  F1 = 2ab / (a + b) = (1/3) / (5/6) = 0.4
    out = processbench_f1(predicted, truth)
    assert math.isclose(out["error_accuracy"], 1 / 3) and out["correct_accuracy"] == 0.5
    assert math.isclose(out["f1"], 0.4) and (out["erroneous"], out["correct"]) == (3, 2)
    assert processbench_f1([0], [1])["f1"] != processbench_f1([0], [1])["f1"]  # no correct solutions: NaN
    assert processbench_f1([0, 1], [1, None])["f1"] == 0.0


def test_best_of_n_selection_random_oracle_majority_by_hand() -> None:
    scores = [[0.1, 0.9, 0.5], [0.7, 0.7, 0.2]]
    correct = [[False, True, False], [True, False, True]]
    # problem 1 picks candidate 1 (correct): 1; problem 2 ties 0 and 1: (1 + 0) / 2; mean 0.75
    assert selection_accuracy(scores, correct) == 0.75
    np.testing.assert_allclose(random_values(correct), [1 / 3, 2 / 3])
    np.testing.assert_allclose(oracle_values(correct), [1.0, 1.0])
    answers = [["3", "4", "3"], ["7", "8", "7"]]
    np.testing.assert_allclose(majority_values(answers, correct), [0.0, 1.0])
    # a tie between two answers: a uniform draw between them; no answer found (None) is never voted for
    np.testing.assert_allclose(majority_values([["1", "2", None, None]], [[True, False, False, False]]), [0.5])
    # a constant scorer selects exactly as a uniform draw does
    assert selection_accuracy([[0.5] * 3, [0.5] * 3], correct) == 0.5


def test_weighted_vote_by_hand() -> None:
    answers = [["3", "4", "3", "5"], ["7", "8", "8"]]
    correct = [[False, True, False, False], [True, False, False]]
    # unweighted it is majority voting: "3" (2 votes, wrong); "8" (2 votes, wrong)
    np.testing.assert_allclose(weighted_vote_values(answers, correct, None), [0.0, 0.0])
    np.testing.assert_allclose(majority_values(answers, correct), [0.0, 0.0])
    # weighted: "3" 0.2 + 0.1 = 0.3 < "4" 0.9 -> right; "7" 0.9 vs "8" 0.3 + 0.5 = 0.8 -> right
    weights = [[0.2, 0.9, 0.1, 0.4], [0.9, 0.3, 0.5]]
    np.testing.assert_allclose(weighted_vote_values(answers, correct, weights), [1.0, 1.0])
    # a tie between "7" (0.8) and "8" (0.8): the expected value of a uniform draw, (1 + 0) / 2
    np.testing.assert_allclose(weighted_vote_values([answers[1]], [correct[1]], [[0.8, 0.3, 0.5]]), [0.5])
    # an unscored candidate (None) votes 0: "8" keeps only 0.5 < "7" 0.6
    np.testing.assert_allclose(weighted_vote_values([answers[1]], [correct[1]], [[0.6, None, 0.5]]), [1.0])
    with pytest.raises(ValueError, match="problem 0: vote weights must be numbers >= 0"):
        weighted_vote_values([["1", "2"]], [[True, False]], [[-1.0, 0.5]])


def test_final_answers_of_gsm8k_style_solutions() -> None:
    assert final_answer("She makes 9 * 2 = $18\nA: 18") == "18"
    assert final_answer("so 500 + 500 = 1,000\n#### 1,000") == "1000"
    assert final_answer("A: $5.0") == "5"
    assert final_answer("so the answer is 12.") == "12"
    assert final_answer("no answer here") is None


def test_interval_brackets_the_mean() -> None:
    values = np.array([1.0, 0.0, 1.0, 1.0, 0.5] * 20)
    out = with_interval(values, n_boot=500)
    assert out["low"] < out["value"] == 0.7 < out["high"]
