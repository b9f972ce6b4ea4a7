"""The monitoring report: what the served reward did over a period, per model version and route.

    data = collect(session, since=timedelta(days=7), window=timedelta(hours=1))
    report = build_report(data)
    write_report(report, data.windows, Path("monitor-report"))

``write_report`` writes report.json (everything, every window), report.md and report.html (per model version:
its reference, warnings, a summary table per route, the over-optimization verdict and the figure) and
plots/<model>.png. Files are built in a temporary folder inside ``out`` and renamed into place, so a failed run
never leaves half a report. Model versions and routes come from the store, where clients can influence them:
the HTML escapes every string, the Markdown backslash-escapes its markup, file names are slugs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from rewardkit.atomic import temporary_folder
from rewardkit.evaluate.drift import KS_ALPHA, PSI_MODERATE, PSI_SIGNIFICANT
from rewardkit.evaluate.render import Block, Figure, Heading, Table, Text, fmt, to_html, to_markdown
from rewardkit.model.reference import usable_references
from rewardkit.monitor.alarms import OveroptimizationAlarm, alarms_by_model
from rewardkit.monitor.series import (
    DEFAULT_MIN_COUNT,
    RL_ROUTE,
    WindowStats,
    as_utc,
    format_duration,
    roll_windows,
    window_starts,
)
from rewardkit.store.score_log import get_score_references, iter_score_aggregates

FORMAT = "rewardkit.monitor_report/1"
NAMES = ("report.json", "report.md", "report.html")


@dataclass
class MonitorData:
    since: datetime
    until: datetime
    window: timedelta
    min_count: int
    windows: list[WindowStats]
    references: dict[str, dict[str, Any]]
    alarms: list[OveroptimizationAlarm]
    warnings: list[str] = field(default_factory=list)  # references that could not be used


def current_minute() -> datetime:
    """Now, floored to the minute: the minute under way is still being flushed by the service, so it is left out."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def collect(
    session: Session,
    *,
    since: timedelta,
    window: timedelta,
    until: datetime | None = None,
    min_count: int = DEFAULT_MIN_COUNT,
) -> MonitorData:
    """Read the aggregates of the ``since`` period before ``until`` (default: the current minute) and roll them
    into windows; the over-optimization alarm on every model version's RL windows."""
    until = as_utc(until) if until else current_minute()
    starts = window_starts(until - since, until, window)
    first = starts[0] if starts else until
    references, warnings = usable_references(get_score_references(session))
    rows = iter_score_aggregates(session, since=first, until=until)
    windows = roll_windows(rows, references=references, since=first, until=until, window=window, min_count=min_count)
    alarms = alarms_by_model(windows, route=RL_ROUTE)
    return MonitorData(first, until, window, min_count, windows, references, alarms, warnings)


def _weighted(windows: Sequence[WindowStats], name: str) -> float | None:
    pairs = [(getattr(w, name), w.served) for w in windows if getattr(w, name) is not None and w.served]
    total = sum(n for _, n in pairs)
    return sum(v * n for v, n in pairs) / total if total else None


def route_summary(windows: Sequence[WindowStats]) -> dict[str, Any]:
    """The period at a glance for one route's windows (oldest first)."""
    with_psi = [w for w in windows if w.psi is not None]
    worst = max(with_psi, key=lambda w: w.psi, default=None)
    latest = with_psi[-1] if with_psi else None
    return {
        "served": sum(w.served for w in windows),
        "mean": _weighted(windows, "mean"),
        "uncertain_share": _weighted(windows, "uncertain_share"),
        "length_mean": _weighted(windows, "length_mean"),
        "latest_psi": latest.psi if latest else None,
        "latest_ks": latest.ks if latest else None,
        "max_psi": worst.psi if worst else None,
        "max_psi_window": worst.start.isoformat() if worst else None,
        "windows": len(windows),
        "windows_with_drift": len(with_psi),
        "windows_psi_significant": sum(w.psi > PSI_SIGNIFICANT for w in with_psi),
    }


def reference_warning(model_version: str, reference: dict[str, Any] | None) -> str | None:
    if reference is None:
        return f"model version {model_version}: no reference distribution recorded; PSI and KS are not computed"
    if reference.get("source") == "normal":
        return (
            f"model version {model_version}: its card has no fitted reference histogram; drift is measured against "
            "a normal with the card's mean and std, so PSI/KS show the departure from a normal as well as any drift"
        )
    return None


def build_report(data: MonitorData) -> dict[str, Any]:
    """report.json's dict (strict JSON: undefined values are None)."""
    models = []
    alarms = {a.model_version: a for a in data.alarms}
    warnings = list(data.warnings)
    for mv in sorted({w.model_version for w in data.windows}):
        reference = data.references.get(mv)
        warning = reference_warning(mv, reference)
        warnings += [warning] if warning else []
        routes = []
        for route in sorted({w.route for w in data.windows if w.model_version == mv}):
            ws = [w for w in data.windows if w.model_version == mv and w.route == route]
            rows = [{k: v for k, v in w.to_dict().items() if k not in ("model_version", "route")} for w in ws]
            routes.append({"route": route, "summary": route_summary(ws), "windows": rows})
        models.append(
            {
                "model_version": mv,
                "reference": None
                if reference is None
                else {
                    "source": reference.get("source"),
                    "bins": len(reference["proportions"]),
                    "reward_mean": reference.get("reward_mean"),
                    "reward_std": reference.get("reward_std"),
                },
                "warning": warning,
                "routes": routes,
                "overoptimization": alarms[mv].to_dict() if mv in alarms else None,
            }
        )
    return strict_json(
        {
            "format": FORMAT,
            "generated_at": datetime.now(UTC).isoformat(),
            "since": data.since.isoformat(),
            "until": data.until.isoformat(),
            "window": format_duration(data.window),
            "min_count": data.min_count,
            "thresholds": {"psi_moderate": PSI_MODERATE, "psi_significant": PSI_SIGNIFICANT, "ks_alpha": KS_ALPHA},
            "overoptimization_fired": [a.model_version for a in data.alarms if a.fired],
            "warnings": warnings,
            "models": models,
        }
    )


def strict_json(value: Any) -> Any:
    """``value`` with NaN and infinities as None, so report.json is strict JSON (jq, JavaScript)."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- rendering ----------------------------------------------------------------------------------------------


def _markdown_literal(text: str) -> str:
    """A store string shown literally in Markdown: its markup characters backslash-escaped (CommonMark)."""
    return re.sub(r"([\\`*_\[\]<>|#!~&])", r"\\\1", text)


def plot_name(model_version: str) -> str:
    """A file name for a model version's figure: a readable slug and a hash (two versions never collide)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_version).strip("._")[:40] or "model"
    return f"plots/{slug}-{hashlib.sha256(model_version.encode()).hexdigest()[:8]}.png"


def report_blocks(report: dict[str, Any], images: dict[str, str], literal: Callable[[str], str]) -> list[Block]:
    """The document; ``images``: model version -> figure path; ``literal`` shows a store string as it is."""
    blocks: list[Block] = [
        Heading("Served reward monitoring", 1),
        Text(
            f"From {report['since']} to {report['until']} in windows of {report['window']}; PSI and KS against each "
            f"model version's reference, computed on windows of at least {report['min_count']} scores. PSI: below "
            f"{PSI_MODERATE} stable, {PSI_MODERATE}-{PSI_SIGNIFICANT} moderate shift, above {PSI_SIGNIFICANT} "
            "significant shift."
        ),
    ]
    if report["overoptimization_fired"]:
        fired = ", ".join(literal(m) for m in report["overoptimization_fired"])
        blocks.append(Text(f"**Over-optimization alarm** on RL traffic for: {fired}."))
    if not report["models"]:
        blocks.append(Text("No scores were served in this period."))
    for model in report["models"]:
        mv = model["model_version"]
        blocks.append(Heading(f"Model version {literal(mv)}"))
        ref = model["reference"]
        blocks.append(
            Text(
                "Reference: none recorded."
                if ref is None
                else f"Reference: {ref['bins']} bins, source {ref['source']} (fitted at training time: card; from "
                f"mean and std only: normal), mean {fmt(ref['reward_mean'])}, std {fmt(ref['reward_std'])}."
            )
        )
        if model["warning"]:
            blocks.append(Text(f"**Warning**: {literal(model['warning'])}"))
        header = ["route", "served", "mean", "latest PSI", "latest KS", "max PSI", "windows PSI > 0.25"]
        header += ["uncertain share", "mean length"]
        rows = [
            [
                literal(r["route"]),
                s["served"],
                s["mean"],
                s["latest_psi"],
                s["latest_ks"],
                s["max_psi"],
                f"{s['windows_psi_significant']} of {s['windows_with_drift']}",
                s["uncertain_share"],
                s["length_mean"],
            ]
            for r in model["routes"]
            for s in [r["summary"]]
        ]
        blocks.append(Table(header, rows))
        alarm = model["overoptimization"]
        if alarm:
            verdict = "**fired**" if alarm["fired"] else "not fired"
            blocks.append(
                Text(f"Over-optimization alarm ({literal(alarm['route'])}): {verdict}: {literal(alarm['reason'])}.")
            )
        if mv in images:
            blocks.append(Figure(images[mv]))
    return blocks


def write_report(
    report: dict[str, Any], windows: Sequence[WindowStats], out: Path, *, make_plots: bool = True
) -> dict[str, Path]:
    """Write report.json/.md/.html (+ plots/) into ``out``; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = temporary_folder(out, ".tmp-monitor-")
    try:
        images: dict[str, str] = {}
        if make_plots:
            from rewardkit.monitor.plots import model_time_series

            (tmp / "plots").mkdir()
            for mv in sorted({w.model_version for w in windows}):
                images[mv] = plot_name(mv)
                model_time_series(mv, [w for w in windows if w.model_version == mv], tmp / images[mv])
        (tmp / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        (tmp / "report.md").write_text(to_markdown(report_blocks(report, images, _markdown_literal)), encoding="utf-8")
        html_blocks = report_blocks(report, images, str)  # to_html escapes every string itself
        pngs = {path: (tmp / path).read_bytes() for path in images.values()}
        (tmp / "report.html").write_text(to_html(html_blocks, "Served reward monitoring", pngs), encoding="utf-8")
        if (out / "plots").exists():
            shutil.rmtree(out / "plots")
        for name in ("plots", *NAMES):
            if (tmp / name).exists():
                os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {name: out / name for name in NAMES}
