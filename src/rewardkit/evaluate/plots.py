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
    """``curves[label]`` = bins with ``confidence`` (mean predicted) and ``accuracy`` (observed)."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect")
    for label, bins in curves.items():
        xs = [b["confidence"] for b in bins]
        ys = [b["accuracy"] for b in bins]
        ax.plot(xs, ys, marker="o", label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted P(chosen better)", ylabel="observed frequency", title="Reliability")
    ax.legend()
    return _save(fig, path)


def score_vs_length(scores: np.ndarray, lengths: np.ndarray, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(lengths, scores, s=6, alpha=0.4)
    ax.set(xscale="log" if np.min(lengths) > 0 else "linear", xlabel="response length (characters)", ylabel="reward score", title="Score vs length")
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
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    rates = np.asarray([probes[n]["rise_rate"] for n in names], float)
    # the 95% interval as error bars (reports written before intervals existed have none)
    low = np.asarray([probes[n].get("rise_rate_low", probes[n]["rise_rate"]) for n in names], float)
    high = np.asarray([probes[n].get("rise_rate_high", probes[n]["rise_rate"]) for n in names], float)
    axes[0].barh(names, rates, xerr=np.vstack([rates - low, high - rates]), color="tab:red", ecolor="black", capsize=3)
    axes[0].axvline(0.5, color="gray", linestyle="--")
    axes[0].set(xlim=(0, 1), xlabel="rise rate (share of responses scored higher)", title="Reward-hacking probes")
    axes[1].barh(names, [probes[n]["mean_change_std"] for n in names], color="tab:orange")
    axes[1].axvline(0.0, color="black", linewidth=1)
    axes[1].set(xlabel="mean score change (std units)")
    axes[1].set_yticks([])
    return _save(fig, path)
