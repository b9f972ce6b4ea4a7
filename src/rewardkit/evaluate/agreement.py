"""Agreement between raters: Cohen's kappa for labels, Spearman and Kendall for rankings and ratings.

The model "labels" a pair by which of its two positions it scores higher; kappa then compares those labels
with an annotator's, correcting for the agreement two raters would reach by chance with the same label
frequencies: ``kappa = (p_o - p_e) / (1 - p_e)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Cohen's kappa of two equal-length label sequences. 1 = perfect agreement, 0 = chance level.
    When both raters use one and the same label throughout (p_e = 1) the result is 1.0 if they agree
    everywhere, else nan."""
    a_arr, b_arr = np.asarray(list(a), dtype=object), np.asarray(list(b), dtype=object)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"label sequences differ in length: {a_arr.size} vs {b_arr.size}")
    if a_arr.size == 0:
        return float("nan")
    labels = sorted(set(a_arr.tolist()) | set(b_arr.tolist()), key=str)
    p_o = float(np.mean(a_arr == b_arr))
    p_e = sum(float(np.mean(a_arr == lab)) * float(np.mean(b_arr == lab)) for lab in labels)
    if p_e >= 1.0:
        return 1.0 if p_o == 1.0 else float("nan")
    return (p_o - p_e) / (1.0 - p_e)


def positional_labels(chosen_scores: np.ndarray, rejected_scores: np.ndarray, chosen_is_a: np.ndarray) -> tuple[list[str], list[str]]:
    """The annotator's and the model's pairwise labels ('a', 'b', model ties 'tie') once each pair's
    responses sit in positions a/b. (n,) arrays in, two (n,) label lists out."""
    chosen_scores, rejected_scores = np.asarray(chosen_scores, float), np.asarray(rejected_scores, float)
    chosen_is_a = np.asarray(chosen_is_a, dtype=bool)
    human = np.where(chosen_is_a, "a", "b").tolist()
    score_a = np.where(chosen_is_a, chosen_scores, rejected_scores)
    score_b = np.where(chosen_is_a, rejected_scores, chosen_scores)
    model = np.where(score_a > score_b, "a", np.where(score_b > score_a, "b", "tie")).tolist()
    return human, model


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Spearman rho and Kendall tau-b (with p-values) between two equal-length score lists."""
    x_arr, y_arr = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x_arr.shape != y_arr.shape:
        raise ValueError(f"score lists differ in length: {x_arr.size} vs {y_arr.size}")
    if x_arr.size < 2 or np.ptp(x_arr) == 0 or np.ptp(y_arr) == 0:
        nan = float("nan")
        return {"spearman": nan, "spearman_p": nan, "kendall": nan, "kendall_p": nan, "n": int(x_arr.size)}
    rho = stats.spearmanr(x_arr, y_arr)
    tau = stats.kendalltau(x_arr, y_arr)
    return {
        "spearman": float(rho.statistic),
        "spearman_p": float(rho.pvalue),
        "kendall": float(tau.statistic),
        "kendall_p": float(tau.pvalue),
        "n": int(x_arr.size),
    }


def repeated_label_agreement(keys: Sequence[Any], first_wins: Sequence[bool]) -> dict[str, Any]:
    """Agreement between annotators where the same pair was labelled more than once.

    ``keys[i]`` identifies pair i regardless of order (e.g. prompt + the two responses sorted);
    ``first_wins[i]`` says whether the response that sorts first was the one chosen. For every key seen at
    least twice, its first two labels are compared: percent agreement and Cohen's kappa (the two labels
    play the two raters). ``n`` is the number of repeated pairs; nan when there are none."""
    if len(keys) != len(first_wins):
        raise ValueError(f"{len(keys)} keys but {len(first_wins)} labels")
    first: dict[Any, bool] = {}
    rater_1: list[bool] = []
    rater_2: list[bool] = []
    done: set[Any] = set()
    for key, wins in zip(keys, first_wins):
        if key in done:
            continue
        if key in first:
            rater_1.append(first[key])
            rater_2.append(bool(wins))
            done.add(key)
        else:
            first[key] = bool(wins)
    if not rater_1:
        return {"n": 0, "agreement": float("nan"), "kappa": float("nan")}
    return {"n": len(rater_1), "agreement": float(np.mean(np.asarray(rater_1) == np.asarray(rater_2))), "kappa": cohen_kappa(rater_1, rater_2)}
