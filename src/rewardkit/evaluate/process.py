"""Evaluating a process reward model: small pure functions over step scores, labels and outcomes.

- ``step_accuracy``: the share of labelled steps on the right side of the threshold (good and neutral are
  positive).
- ``processbench_f1`` (ProcessBench, Zheng et al. 2024): a solution's predicted first error is its first step
  scored below the threshold, or "none". Accuracy on the erroneous solutions (the predicted index must equal the
  labelled first error) and on the correct ones (the prediction must be "none"); F1 is their harmonic mean.
- Best-of-N selection (``selection_accuracy``): per problem, pick the candidate with the highest score; the
  share of problems whose pick is correct. Ties count as the expected value over the tied candidates (a
  uniform draw among them), so a constant scorer scores exactly ``random_accuracy``. Beside it: ``random``
  (the expected accuracy of a uniform pick), ``oracle`` (any candidate correct) and ``majority_vote`` (the
  most frequent final answer; ties again as the expected value over the tied answers) and weighted voting
  (``weighted_vote_values``: each answer's votes weighted by the PRM's solution score, Math-Shepherd's
  "weighted self-consistency").

The threshold: 0.5 by default, or the card's ``step_threshold``, fitted at training time on the validation steps
by ``rewardkit.model.calibration.fit_step_threshold`` (the score that best separates good from bad steps, by
balanced accuracy). A small PRM's scores can sit all above 0.5, good steps higher than bad ones; then at 0.5 it
never names an error, and only a fitted threshold reads what it learned.

Intervals: ``bootstrap_interval`` over problems (``evaluate.accuracy``), each problem's value a number in
[0, 1].
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardkit.evaluate.accuracy import bootstrap_interval

POSITIVE = {"good": True, "neutral": True, "bad": False}
"""Which step labels count as correct steps (neutral is not an error: train/steps.py trains it as good)."""


def step_accuracy(
    step_scores: Sequence[Sequence[float | None]], labels: Sequence[Sequence[str | None]], threshold: float = 0.5
) -> dict[str, Any]:
    """{accuracy, steps}: labelled steps whose score is on their label's side of the threshold (p >= threshold
    predicts a good step); unlabelled steps and unscored ones (None: dropped by truncation) are left out."""
    hits = [
        (p >= threshold) == POSITIVE[y]
        for scores, ys in zip(step_scores, labels, strict=True)
        for p, y in zip(scores, ys, strict=True)
        if p is not None and y is not None
    ]
    return {"accuracy": float(np.mean(hits)) if hits else float("nan"), "steps": len(hits)}


def predicted_first_error(step_scores: Sequence[float | None], threshold: float = 0.5) -> int | None:
    """The index of the first step scored below ``threshold``, or None (no step predicted wrong)."""
    return next((i for i, p in enumerate(step_scores) if p is not None and p < threshold), None)


def known_first_error(labels: Sequence[str | None]) -> tuple[bool, int | None]:
    """(is the first error known, its index or None): known when a step is labelled bad, or when every step
    is labelled and none is bad; not known otherwise (an unlabelled step could hide the first error)."""
    first = next((i for i, y in enumerate(labels) if y == "bad"), None)
    if first is not None:
        return True, first
    return all(y is not None for y in labels), None


def processbench_f1(predicted: Sequence[int | None], truth: Sequence[int | None]) -> dict[str, Any]:
    """ProcessBench's metric: accuracy on erroneous solutions (truth an index: predicted must equal it), on
    correct ones (truth None: predicted must be None), and F1 = 2 ab / (a + b) of the two (0 when both are 0,
    NaN when either group is empty)."""
    err = [p == t for p, t in zip(predicted, truth, strict=True) if t is not None]
    ok = [p is None for p, t in zip(predicted, truth, strict=True) if t is None]
    a = float(np.mean(err)) if err else float("nan")
    b = float(np.mean(ok)) if ok else float("nan")
    f1 = 2 * a * b / (a + b) if a + b > 0 else (0.0 if err and ok else float("nan"))
    return {"f1": f1, "error_accuracy": a, "correct_accuracy": b, "erroneous": len(err), "correct": len(ok)}


def pick_value(scores: Sequence[float], correct: Sequence[bool]) -> float:
    """The expected correctness of picking the highest score (a uniform draw among tied maxima)."""
    scores = np.asarray(scores, dtype=float)
    best = scores == scores.max()
    return float(np.asarray(correct, dtype=float)[best].mean())


def selection_values(groups_scores: Sequence[Sequence[float]], groups_correct: Sequence[Sequence[bool]]) -> np.ndarray:
    """Per problem, the value of picking the highest-scored candidate (``pick_value``)."""
    return np.array([pick_value(s, c) for s, c in zip(groups_scores, groups_correct, strict=True)])


def selection_accuracy(groups_scores: Sequence[Sequence[float]], groups_correct: Sequence[Sequence[bool]]) -> float:
    """Best-of-N selection accuracy: the mean over problems of ``pick_value``."""
    return float(selection_values(groups_scores, groups_correct).mean())


def random_values(groups_correct: Sequence[Sequence[bool]]) -> np.ndarray:
    """Per problem, the expected correctness of a uniform pick: the share of correct candidates."""
    return np.array([float(np.mean(c)) for c in groups_correct])


def oracle_values(groups_correct: Sequence[Sequence[bool]]) -> np.ndarray:
    """Per problem, 1 when any candidate is correct (what a perfect selector reaches)."""
    return np.array([float(any(c)) for c in groups_correct])


def majority_values(
    groups_answers: Sequence[Sequence[str | None]], groups_correct: Sequence[Sequence[bool]]
) -> np.ndarray:
    """Per problem, the expected correctness of majority voting over final answers: the most frequent answer
    (None: no answer found, never voted for unless nothing else is), a uniform draw among tied answers, each
    answer's correctness the mean over the candidates that gave it."""
    return weighted_vote_values(groups_answers, groups_correct, None)


def weighted_vote_values(
    groups_answers: Sequence[Sequence[str | None]],
    groups_correct: Sequence[Sequence[bool]],
    groups_weights: Sequence[Sequence[float]] | None,
) -> np.ndarray:
    """Per problem, voting over final answers with each candidate's vote weighted (None: every vote 1, majority
    voting): the answer with the largest total weight wins, ties as in ``majority_values``. With a PRM's solution
    scores as weights this is the "weighted self-consistency" of Uesato et al. 2022 and Math-Shepherd (Wang et al.
    2024), which combines what the answers agree on with what the verifier sees. Weights must be >= 0; a
    candidate without a score (None or NaN: no step was read) votes 0."""
    out = []
    for g, (answers, correct) in enumerate(zip(groups_answers, groups_correct, strict=True)):
        raw = [1.0] * len(answers) if groups_weights is None else groups_weights[g]
        weights = [0.0 if w is None or w != w else float(w) for w in raw]
        if any(w < 0 for w in weights):
            raise ValueError(f"problem {g}: vote weights must be numbers >= 0, got {weights}")
        given = [i for i, a in enumerate(answers) if a is not None] or list(range(len(answers)))
        totals: dict[str | None, float] = {}
        for i in given:
            totals[answers[i]] = totals.get(answers[i], 0.0) + weights[i]
        top = max(totals.values())
        tied = [a for a, w in totals.items() if w >= top - 1e-12]
        out.append(float(np.mean([np.mean([c for a2, c in zip(answers, correct) if a2 == a]) for a in tied])))
    return np.array(out)


ANSWER_PATTERNS = (re.compile(r"####\s*(.+)$"), re.compile(r"^\s*A:\s*(.+)$"), re.compile(r"answer is\s*(.+)$"))


def final_answer(solution: str) -> str | None:
    """The final answer of a solution written as GSM8K's are ("#### 72", a last line "A: 72", or "the answer is
    72"), normalized (no "$", ",", trailing "." or ".0"), or None when no line states one."""
    for line in reversed(solution.strip().splitlines()):
        for pattern in ANSWER_PATTERNS:
            m = pattern.search(line.strip())
            if m:
                text = m.group(1).strip().replace("$", "").replace(",", "").rstrip(".").strip()
                return text[:-2] if text.endswith(".0") else text
    return None


def with_interval(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """{value, low, high}: the mean of per-problem values and its 95% bootstrap interval over problems."""
    low, high = bootstrap_interval(values, n_boot=n_boot, seed=seed)
    return {"value": float(np.mean(values)) if len(values) else float("nan"), "low": low, "high": high}


def selection_report(
    groups_correct: Sequence[Sequence[bool]],
    groups_answers: Sequence[Sequence[str | None]],
    scored: dict[str, Sequence[Sequence[float]]],
    n_boot: int = 1000,
    vote_weights: dict[str, Sequence[Sequence[float]]] | None = None,
) -> dict[str, Any]:
    """Best-of-N on problems with N candidates each: random, oracle, majority vote and each scorer's selection
    accuracy (``scored``: name -> per-problem candidate scores), and ``{name}_vote`` for each scorer in
    ``vote_weights`` (weighted voting, ``weighted_vote_values``), each with its 95% interval over problems."""
    rows = {
        "random": with_interval(random_values(groups_correct), n_boot),
        "oracle": with_interval(oracle_values(groups_correct), n_boot),
        "majority_vote": with_interval(majority_values(groups_answers, groups_correct), n_boot),
    }
    for name, scores in scored.items():
        rows[name] = with_interval(selection_values(scores, groups_correct), n_boot)
    for name, weights in (vote_weights or {}).items():
        rows[f"{name}_vote"] = with_interval(weighted_vote_values(groups_answers, groups_correct, weights), n_boot)
    sizes = [len(c) for c in groups_correct]
    return {"problems": len(groups_correct), "candidates": int(np.median(sizes)) if sizes else 0, "selection": rows}


def process_report(
    solutions: Sequence[Any],
    step_scores: Sequence[Sequence[float | None]],
    n_boot: int = 1000,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """What ``rewardkit eval`` reports for a process reward model on step-labelled solutions
    (``records.StepSolution``, with their ``step_scores``): step accuracy and ProcessBench F1 (on the solutions
    whose first error is known) at ``threshold``; and, where problems (``metadata.problem_id``, else the prompt)
    have two or more solutions with known outcomes, best-of-N selection for each aggregate against random,
    oracle and majority."""
    from rewardkit.model.step_aggregate import STEP_AGGREGATES, aggregate_steps

    report: dict[str, Any] = {
        "solutions": len(solutions),
        "step_threshold": threshold,
        "step_accuracy": step_accuracy(step_scores, [s.labels for s in solutions], threshold),
    }
    predicted, truth = [], []
    for s, scores in zip(solutions, step_scores, strict=True):
        known, first = known_first_error(s.labels)
        if known:
            predicted.append(predicted_first_error(scores, threshold))
            truth.append(first)
    report["processbench"] = processbench_f1(predicted, truth)
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(solutions):
        if s.outcome is not None:
            key = str(s.metadata.get("problem_id") or s.prompt)
            groups.setdefault(key, []).append(i)
    chosen = [rows for rows in groups.values() if len(rows) >= 2]
    if chosen:
        correct = [[bool(solutions[i].outcome) for i in rows] for rows in chosen]
        answers = [[final_answer("\n".join(solutions[i].steps)) for i in rows] for rows in chosen]
        scored = {
            f"prm_{how}": [[aggregate_steps(step_scores[i], how) for i in rows] for rows in chosen]
            for how in STEP_AGGREGATES
        }
        report["best_of_n"] = selection_report(correct, answers, scored, n_boot, vote_weights=scored)
    return report


def process_summary(report: dict[str, Any]) -> list[str]:
    """The report as lines for a terminal."""
    pb = report["processbench"]
    lines = [
        f"solutions: {report['solutions']}; a step scored below {report.get('step_threshold', 0.5):.4g} is an error",
        f"step accuracy: {report['step_accuracy']['accuracy']:.4f} ({report['step_accuracy']['steps']} labelled steps)",
        f"ProcessBench F1: {pb['f1']:.4f} (erroneous {pb['error_accuracy']:.4f} of {pb['erroneous']}, "
        f"correct {pb['correct_accuracy']:.4f} of {pb['correct']})",
    ]
    bon = report.get("best_of_n")
    if bon:
        lines.append(f"best-of-{bon['candidates']} selection accuracy on {bon['problems']} problems (95% interval):")
        for name, row in bon["selection"].items():
            lines.append(f"  {name:>14}: {row['value']:.4f} [{row['low']:.4f}, {row['high']:.4f}]")
    return lines
