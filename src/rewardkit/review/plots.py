"""The admin view's plots (matplotlib, Agg): labels per hour and the pairwise kappa of annotator pairs, as
``data:`` PNG URIs the page embeds (no files to serve, no state between requests)."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

from rewardkit.store.review import QueueStats


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def admin_plots(stats: QueueStats, agreement: dict[str, Any]) -> dict[str, str]:
    """{"throughput": uri, "kappa": uri}, each present only when there is something to plot."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    out: dict[str, str] = {}
    if stats.per_hour:
        fig = Figure(figsize=(6, 2.4))
        ax = fig.subplots()
        ax.bar([h[-5:] for h, _ in stats.per_hour], [n for _, n in stats.per_hour], color="#4a78b5")
        ax.set_ylabel("labels")
        ax.set_title("labels per hour (UTC), last 24 h")
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        out["throughput"] = _png(fig)
    pairs = [p for p in agreement.get("pairwise_kappa", []) if not math.isnan(p["kappa"])]
    if pairs:
        fig = Figure(figsize=(6, 0.5 + 0.35 * len(pairs)))
        ax = fig.subplots()
        ax.barh([f"{p['a']} / {p['b']} (n={p['n']})" for p in pairs], [p["kappa"] for p in pairs], color="#b5754a")
        ax.set_xlim(-1, 1)
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_xlabel("Cohen's kappa")
        ax.set_title("agreement between annotator pairs")
        out["kappa"] = _png(fig)
    return out
