"""The monitoring report's figure: one PNG per model version, five panels over time sharing the time axis,
one line per route (served count; mean reward with its p05-p95 band; PSI and KS against the reference with
the 0.1 / 0.25 PSI conventions; share of uncertain scores; mean response length). Same style as
evaluate/plots.py (matplotlib, Agg backend, 100 dpi)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rewardkit.evaluate.drift import PSI_MODERATE, PSI_SIGNIFICANT
from rewardkit.evaluate.plots import plt
from rewardkit.monitor.series import WindowStats


def _literal(text: str) -> str:
    """``text`` as matplotlib shows it literally: a ``$`` pair would start mathtext, and a malformed one fails the
    whole figure (model versions come from the store)."""
    return text.replace("$", r"\$")


def _values(windows: Sequence[WindowStats], name: str) -> np.ndarray:
    return np.asarray([np.nan if getattr(w, name) is None else getattr(w, name) for w in windows], float)


def model_time_series(model_version: str, windows: Sequence[WindowStats], path: Path) -> Path:
    """``windows``: one model version's windows, any routes; writes ``path`` (a .png)."""
    routes = sorted({w.route for w in windows})
    fig, axes = plt.subplots(5, 1, figsize=(9, 12), sharex=True)
    served, reward, drift, uncertain, length = axes
    for k, route in enumerate(routes):
        ws = sorted((w for w in windows if w.route == route), key=lambda w: w.start)
        colour = f"C{k % 10}"
        t = [w.start + (w.end - w.start) / 2 for w in ws]  # plotted at the window's middle
        served.plot(t, [w.served for w in ws], marker=".", color=colour, label=_literal(route))
        reward.plot(t, _values(ws, "mean"), marker=".", color=colour, label=_literal(f"{route} mean"))
        reward.fill_between(t, _values(ws, "p05"), _values(ws, "p95"), color=colour, alpha=0.15, linewidth=0)
        drift.plot(t, _values(ws, "psi"), marker=".", color=colour, label=_literal(f"{route} PSI"))
        drift.plot(t, _values(ws, "ks"), marker="x", linestyle=":", color=colour, label=_literal(f"{route} KS"))
        uncertain.plot(t, _values(ws, "uncertain_share"), marker=".", color=colour, label=_literal(route))
        length.plot(t, _values(ws, "length_mean"), marker=".", color=colour, label=_literal(route))
    drift.axhline(PSI_MODERATE, color="gray", linestyle="--", linewidth=1, label=f"PSI {PSI_MODERATE}: moderate")
    drift.axhline(
        PSI_SIGNIFICANT, color="tab:red", linestyle="--", linewidth=1, label=f"PSI {PSI_SIGNIFICANT}: significant"
    )
    served.set(ylabel="served scores", title=_literal(f"Model version {model_version}"))
    reward.set(ylabel="reward (band: p05-p95)")
    drift.set(ylabel="PSI / KS vs reference")
    uncertain.set(ylabel="uncertain share")
    length.set(ylabel="mean length (chars)", xlabel="window (UTC)")
    for ax in axes:
        ax.grid(alpha=0.3)
    served.legend(fontsize="small")
    drift.legend(fontsize="x-small", ncol=2)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
