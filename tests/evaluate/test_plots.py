"""The report's figures say what they claim: each test draws a real figure and reads it back before it is
saved (``plots._save`` is wrapped to keep the figure's contents, then does its job)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardkit.evaluate import plots


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What each saved figure held: its axes' legend labels, bar heights and scatter series."""
    seen: list[dict[str, Any]] = []
    save = plots._save

    def reading_save(fig: Any, path: Path) -> Path:
        seen.append(
            {
                "legends": [
                    [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else [] for ax in fig.axes
                ],
                "bars": [[p.get_height() for p in ax.patches] for ax in fig.axes],
                "scatter": [[(c.get_label(), len(c.get_offsets())) for c in ax.collections] for ax in fig.axes],
            }
        )
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", reading_save)
    return seen


def test_score_vs_length_separates_chosen_and_rejected(drawn: list[dict[str, Any]], tmp_path: Path) -> None:
    plots.score_vs_length(
        np.array([3.0, 2.0, 1.0]),
        np.array([0.0, 1.0]),
        np.array([30.0, 20.0, 10.0]),
        np.array([5.0, 50.0]),
        tmp_path / "s.png",
    )
    [fig] = drawn
    assert sorted(fig["scatter"][0]) == [("chosen", 3), ("rejected", 2)]
    assert fig["legends"][0] == ["rejected", "chosen"]


def test_reliability_diagram_shows_the_count_per_bin(drawn: list[dict[str, Any]], tmp_path: Path) -> None:
    curves = {
        "raw": [
            {"lo": 0.0, "hi": 0.5, "confidence": 0.3, "accuracy": 0.2, "count": 7},
            {"lo": 0.5, "hi": 1.0, "confidence": 0.7, "accuracy": 0.8, "count": 40},
        ],
        "stored": [{"lo": 0.5, "hi": 1.0, "confidence": 0.6, "accuracy": 0.8, "count": 47}],
    }
    plots.reliability_diagram(curves, tmp_path / "r.png")
    [fig] = drawn
    assert fig["bars"][1] == [7, 40, 47]  # the lower panel: one bar per bin and curve
    assert fig["legends"][0] == ["perfect", "raw", "stored"]


def test_probe_chart_labels_the_indifference_line(drawn: list[dict[str, Any]], tmp_path: Path) -> None:
    probes = {"self_praise": {"rise_rate": 0.8, "rise_rate_low": 0.7, "rise_rate_high": 0.9, "mean_change_std": 0.2}}
    plots.probe_bars(probes, tmp_path / "p.png")
    [fig] = drawn
    assert fig["legends"][0] == ["0.5: as likely to rise as to fall"]
