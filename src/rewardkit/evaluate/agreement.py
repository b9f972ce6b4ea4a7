"""Agreement between raters: Cohen's kappa for labels, Spearman and Kendall for rankings and ratings.

The model "labels" a pair by which of its two positions it scores higher; kappa then compares those labels
with an annotator's, correcting for the agreement two raters would reach by chance with the same label
frequencies: ``kappa = (p_o - p_e) / (1 - p_e)``.

Model against annotators, every pair is labelled in **both** orientations (chosen in position a, then in b;
``both_orientation_labels``). Which position a pair's chosen response happens to sit in is layout, not
judgement: a snapshot of HH-RLHF keeps every chosen response in position a, the annotator's labels are then
all 'a', p_e equals p_o and kappa is 0 whatever the model does (181 of 181 such pairs gave 0.0). Over both
orientations each rater uses 'a' and 'b' equally, p_e = 1/2 without model ties, and kappa = 2 x accuracy - 1
(ties count as disagreement in both orientations): a number the layout cannot move.
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


def positional_labels(
    chosen_scores: np.ndarray, rejected_scores: np.ndarray, chosen_is_a: np.ndarray
) -> tuple[list[str], list[str]]:
    """The annotator's and the model's pairwise labels ('a', 'b', model ties 'tie') once each pair's
    responses sit in positions a/b. (n,) arrays in, two (n,) label lists out."""
    chosen_scores, rejected_scores = np.asarray(chosen_scores, float), np.asarray(rejected_scores, float)
    chosen_is_a = np.asarray(chosen_is_a, dtype=bool)
    human = np.where(chosen_is_a, "a", "b").tolist()
    score_a = np.where(chosen_is_a, chosen_scores, rejected_scores)
    score_b = np.where(chosen_is_a, rejected_scores, chosen_scores)
    model = np.where(score_a > score_b, "a", np.where(score_b > score_a, "b", "tie")).tolist()
    return human, model


def both_orientation_labels(chosen_scores: np.ndarray, rejected_scores: np.ndarray) -> tuple[list[str], list[str]]:
    """The annotator's and the model's labels with every pair in both orientations: (n,) scores in, two (2n,)
    label lists out, the n pairs with chosen in position a ('a' for the annotator), then the n with chosen in
    b. The model says 'a' or 'b' for the higher-scored position, 'tie' for equal scores."""
    n = len(chosen_scores)
    return positional_labels(
        np.concatenate([chosen_scores, chosen_scores]),
        np.concatenate([rejected_scores, rejected_scores]),
        np.arange(2 * n) < n,
    )


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


def within_group_rank_correlation(x: Sequence[Sequence[float]], y: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Spearman and Kendall computed inside each group (``x[g]``, ``y[g]``: the scores and qualities of
    one prompt's responses), then averaged with equal weight per group. Pooling the groups instead would
    mostly measure whether the model scores easy prompts' answers higher than hard prompts' (a perfect
    per-prompt ranker can pool to near 0). Groups where either side is constant have no ranking and are
    left out; ``n_groups`` counts those used, ``positive_share`` the share with a positive Spearman. No
    p-value: an average of per-group correlations has none of its own."""
    rhos, taus = [], []
    for xs, ys in zip(x, y, strict=True):
        xs, ys = np.asarray(xs, float), np.asarray(ys, float)
        if xs.shape != ys.shape:
            raise ValueError(f"score lists differ in length: {xs.size} vs {ys.size}")
        if xs.size < 2 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
            continue
        # per group by hand rather than scipy's (a hundred small groups; scipy's per-call cost dominated):
        # Spearman = Pearson of the average ranks; Kendall tau-b = sum sx*sy / sqrt(sum sx^2 * sum sy^2) over
        # the pairs' signs sx = sign(x_i - x_j), sy likewise
        rhos.append(float(np.corrcoef(stats.rankdata(xs), stats.rankdata(ys))[0, 1]))
        sx, sy = np.sign(xs[:, None] - xs[None, :]), np.sign(ys[:, None] - ys[None, :])
        taus.append(float(np.sum(sx * sy) / np.sqrt(np.sum(sx * sx) * np.sum(sy * sy))))
    nan = float("nan")
    return {
        "spearman": float(np.mean(rhos)) if rhos else nan,
        "kendall": float(np.mean(taus)) if taus else nan,
        "positive_share": float(np.mean(np.asarray(rhos) > 0)) if rhos else nan,
        "n_groups": len(rhos),
        "method": "within each prompt, averaged over prompts",
    }


def repeated_label_agreement(
    keys: Sequence[Any], first_wins: Sequence[bool], annotators: Sequence[str | None]
) -> dict[str, Any]:
    """Agreement between annotators where two different annotators labelled the same pair.

    ``keys[i]`` identifies pair i regardless of order (e.g. prompt + the two responses sorted);
    ``first_wins[i]`` says whether the response that sorts first was the one chosen; ``annotators[i]`` who
    labelled row i (None or "" when the data does not say). For every key, its first label is compared with
    the first later label by a *different* named annotator: percent agreement and Cohen's kappa over those
    pairs (``n``). A key met again with no second annotator named is a duplicate row, not a second opinion
    (AlpacaEval's test file repeats 11 rows verbatim, which agree with themselves perfectly): those are
    counted in ``duplicate_pairs`` and in nothing else."""
    if not len(keys) == len(first_wins) == len(annotators):
        raise ValueError(f"{len(keys)} keys, {len(first_wins)} labels and {len(annotators)} annotators")
    first: dict[Any, tuple[str, bool]] = {}
    seen: dict[Any, int] = {}
    rater_1: list[bool] = []
    rater_2: list[bool] = []
    done: set[Any] = set()
    for key, wins, who in zip(keys, first_wins, annotators):
        seen[key] = seen.get(key, 0) + 1
        if key in done or not who:
            continue
        if key not in first:
            first[key] = (who, bool(wins))
        elif first[key][0] != who:
            rater_1.append(first[key][1])
            rater_2.append(bool(wins))
            done.add(key)
    duplicates = sum(1 for key, count in seen.items() if count > 1 and key not in done)
    if not rater_1:
        return {"n": 0, "agreement": float("nan"), "kappa": float("nan"), "duplicate_pairs": duplicates}
    return {
        "n": len(rater_1),
        "agreement": float(np.mean(np.asarray(rater_1) == np.asarray(rater_2))),
        "kappa": cohen_kappa(rater_1, rater_2),
        "duplicate_pairs": duplicates,
    }
