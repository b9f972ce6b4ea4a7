"""Gate a candidate against the champion: evaluate both on the same golden snapshot (human labels held out of
training), pair their per-pair results, and let the policy decide (``policy.decide``).

The golden snapshot is every split of a snapshot marked golden (``mark_golden``): it was held out of training
as a whole, so there is no reason to keep any of it aside."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from rewardkit.registry.policy import Policy, Verdict, decide, served_ece
from rewardkit.registry.versions import RegistryError
from rewardkit.store import registry as q
from rewardkit.store import session_scope


@dataclass
class GoldenEval:
    report: dict[str, Any]  # evaluate()'s report, JSON-ready
    rows: list[dict[str, Any]]  # per pair: key, prompt, chosen, rejected (what compare.paired_accuracy pairs)


@dataclass
class GateResult:
    verdict: Verdict
    golden: str
    candidate: GoldenEval
    champion: GoldenEval | None
    paired: dict[str, Any] | None

    def reports(self) -> dict[str, Any]:
        return {
            "golden_snapshot": self.golden,
            "candidate": self.candidate.report,
            "champion": self.champion.report if self.champion else None,
            "paired": self.paired,
        }


def golden_snapshot(factory: sessionmaker[Session], ref: str | None) -> tuple[str, Path]:
    """(id, folder) of the golden snapshot ``ref`` (an id or unique prefix), or of the newest one marked."""
    from rewardkit.data.snapshot import SnapshotNotFound, resolve_snapshot

    with session_scope(factory) as s:
        marked = [g.snapshot_id for g in q.list_golden(s)]
        if not marked:
            raise RegistryError("no snapshot is marked golden (rewardkit registry golden SNAPSHOT)")
        if ref is None:
            sid = marked[-1]
        else:
            found = [m for m in marked if m.startswith(ref)]
            if len(found) != 1:
                raise RegistryError(
                    f"snapshot {ref!r} is not marked golden (golden: {', '.join(m[:12] for m in marked)})"
                )
            sid = found[0]
        from rewardkit.store.queries import get_snapshot

        row = get_snapshot(s, sid)
    try:
        return sid, resolve_snapshot(row.path if row is not None else sid)
    except SnapshotNotFound as exc:
        raise RegistryError(f"golden snapshot {sid}: {exc}") from None


def golden_pairs(folder: Path) -> list[Any]:
    from rewardkit.data.snapshot import SPLITS, load_split

    return [p for split in SPLITS for p in load_split(folder, split) if not p.tie]


def evaluate_on_golden(path: str, pairs: list[Any], eval_config: Any = None, *, device: str = "auto") -> GoldenEval:
    """evaluate() of the model at ``path`` over ``pairs``, with the per-pair rows the paired test needs."""
    from rewardkit.evaluate.report import json_ready
    from rewardkit.evaluate.run import EvalConfig, evaluate
    from rewardkit.scoring.scorer import load_scorer

    scorer = load_scorer(path, device=device)

    def score_fn(prompts: Any, responses: Any) -> np.ndarray:
        return scorer.score(prompts, responses).raw

    result = evaluate(score_fn, pairs, eval_config or EvalConfig(), temperature=scorer.card.temperature)
    a = result.arrays
    rows = [
        {"key": k, "prompt": p, "chosen": float(c), "rejected": float(r)}
        for k, p, c, r in zip(a["pair_keys"], a["prompt_keys"], a["chosen"], a["rejected"], strict=True)
    ]
    return GoldenEval(report=json_ready(result.report), rows=rows)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The few numbers a version's eval_summary keeps (the full report goes with the alias move)."""
    probes = {k: v.get("rise_rate") for k, v in (report.get("probes") or {}).items() if isinstance(v, dict)}
    corr = report.get("length_bias", {}).get("score_length_correlation")
    return {
        "n_pairs": report.get("n_pairs"),
        "accuracy": (report.get("accuracy", {}).get("overall") or {}).get("accuracy"),
        "ece": served_ece(report),
        "length_spearman": corr.get("spearman") if isinstance(corr, dict) else corr,
        "probe_rise_rates": probes,
    }


def gate(
    factory: sessionmaker[Session],
    *,
    candidate_path: str,
    champion_path: str | None,
    policy: Policy,
    golden: str | None = None,
    eval_config: Any = None,
    device: str = "auto",
) -> GateResult:
    """Evaluate candidate and champion on the golden snapshot and decide."""
    from rewardkit.evaluate.compare import paired_accuracy

    sid, folder = golden_snapshot(factory, golden)
    pairs = golden_pairs(folder)
    if not pairs:
        raise RegistryError(f"golden snapshot {sid[:12]} holds no non-tie pairs")
    cand = evaluate_on_golden(candidate_path, pairs, eval_config, device=device)
    champ = evaluate_on_golden(champion_path, pairs, eval_config, device=device) if champion_path else None
    n_boot = getattr(eval_config, "n_boot", 1000)
    paired = paired_accuracy(champ.rows, cand.rows, n_boot=n_boot) if champ else None
    verdict = decide(policy, cand.report, champ.report if champ else None, paired)
    return GateResult(verdict=verdict, golden=sid, candidate=cand, champion=champ, paired=paired)
