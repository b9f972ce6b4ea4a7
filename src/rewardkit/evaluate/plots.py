"""The report's figures (matplotlib, Agg backend: no display needed). Each function writes one PNG and
returns its path; inputs are plain arrays or the report's own dicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def score_histograms(chosen: np.ndarray, rejected: np.ndarray, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.histogram_bin_edges(np.concatenate([chosen, rejected]), bins=40)
    ax.hist(chosen, bins=bins, alpha=0.6, label="chosen")
    ax.hist(rejected, bins=bins, alpha=0.6, label="rejected")
    ax.set(xlabel="reward score", ylabel="responses", title="Chosen vs rejected scores")
    ax.legend()
    return _save(fig, path)


def margin_histogram(chosen: np.ndarray, rejected: np.ndarray, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(np.asarray(chosen) - np.asarray(rejected), bins=40, color="tab:purple")
    ax.axvline(0.0, color="black", linewidth=1)
    ax.set(xlabel="score(chosen) - score(rejected)", ylabel="pairs", title="Margins (right of 0 = correct)")
    return _save(fig, path)


def reliability_diagram(curves: Mapping[str, Sequence[Mapping[str, float]]], path: Path) -> Path:
    """``curves[label]`` = bins with ``lo``/``hi`` edges, ``confidence`` (mean predicted), ``accuracy``
    (observed) and ``count``. Below the diagram, the count per bin: a bin of 3 pairs far from the diagonal
    says little, one of 3,000 a lot."""
    fig, (ax, counts) = plt.subplots(2, 1, figsize=(5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect")
    width = 1.0 / max(1, len(curves))
    for k, (label, bins) in enumerate(curves.items()):
        line = ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", label=label)[0]
        # side by side within each bin, one bar per curve
        lefts = [b["lo"] + k * width * (b["hi"] - b["lo"]) for b in bins]
        counts.bar(
            lefts,
            [b["count"] for b in bins],
            width=[width * (b["hi"] - b["lo"]) for b in bins],
            align="edge",
            color=line.get_color(),
            alpha=0.7,
        )
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="observed frequency", title="Reliability")
    ax.legend()
    counts.set(xlabel="predicted P(chosen better)", ylabel="count per bin")
    return _save(fig, path)


def score_vs_length(
    chosen: np.ndarray, rejected: np.ndarray, chosen_len: np.ndarray, rejected_len: np.ndarray, path: Path
) -> Path:
    """Every scored response at (length, score), chosen and rejected in their own colours."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(rejected_len, rejected, s=6, alpha=0.4, color="tab:orange", label="rejected")
    ax.scatter(chosen_len, chosen, s=6, alpha=0.4, color="tab:blue", label="chosen")
    positive = np.min(np.concatenate([chosen_len, rejected_len])) > 0
    ax.set(
        xscale="log" if positive else "linear",
        xlabel="response length (characters)",
        ylabel="reward score",
        title="Score vs length",
    )
    ax.legend(markerscale=3)
    return _save(fig, path)


def best_of_n_plot(curve: Sequence[Mapping[str, float]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    ns = [r["n"] for r in curve]
    for key, label in (("oracle_pick", "oracle"), ("reward_pick", "reward model"), ("random_pick", "random")):
        ax.plot(ns, [r[key] for r in curve], marker="o", label=label)
    ax.set(xscale="log", xlabel="N (responses per prompt)", ylabel="mean quality of the pick", title="Best-of-N")
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.legend()
    return _save(fig, path)


def probe_bars(probes: Mapping[str, Mapping[str, Any]], path: Path) -> Path:
    names = list(probes)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    rates = np.asarray([probes[n]["rise_rate"] for n in names], float)
    # the 95% interval as error bars (reports written before intervals existed have none)
    low = np.asarray([probes[n].get("rise_rate_low", probes[n]["rise_rate"]) for n in names], float)
    high = np.asarray([probes[n].get("rise_rate_high", probes[n]["rise_rate"]) for n in names], float)
    axes[0].barh(names, rates, xerr=np.vstack([rates - low, high - rates]), color="tab:red", ecolor="black", capsize=3)
    axes[0].axvline(0.5, color="gray", linestyle="--", label="0.5: as likely to rise as to fall")
    axes[0].set(xlim=(0, 1), xlabel="rise rate (share of responses scored higher)", title="Reward-hacking probes")
    axes[0].legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize="small", frameon=False
    )  # below: bars fill the axes
    axes[1].barh(names, [probes[n]["mean_change_std"] for n in names], color="tab:orange")
    axes[1].axvline(0.0, color="black", linewidth=1)
    axes[1].set(xlabel="mean score change (std units)")
    axes[1].set_yticks([])
    return _save(fig, path)
