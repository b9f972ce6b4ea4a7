"""One evaluation run: score the pairs once, then every metric over those scores.

    from rewardkit.evaluate.run import EvalConfig, evaluate
    result = evaluate(score_fn, pairs, EvalConfig(probes="all"), temperature=1.7)
    result.report["accuracy"]["overall"]

``score_fn`` is any ``ScoreFn``; ``rewardkit eval`` passes a saved model's scorer. The result holds the
JSON-ready ``report`` and the raw arrays the plots need; ``report.write_report`` puts both on disk.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rewardkit.evaluate import best_of_n as bon
from rewardkit.evaluate.accuracy import accuracy_by_group, accuracy_with_interval, strict_correct
from rewardkit.evaluate.agreement import (
    both_orientation_labels,
    cohen_kappa,
    rank_correlation,
    repeated_label_agreement,
    within_group_rank_correlation,
)
from rewardkit.evaluate.calibration_report import calibration_report
from rewardkit.evaluate.drift import drift_report
from rewardkit.evaluate.inputs import sample_rows
from rewardkit.evaluate.length_bias import length_bias_report
from rewardkit.evaluate.model_ranking import model_ranking
from rewardkit.evaluate.probe_fit import fit_probe_bases
from rewardkit.evaluate.probes import perturb, run_probes, select_probes
from rewardkit.evaluate.rewardbench import section_scores
from rewardkit.evaluate.score_fns import CachedScoreFn, ScoreFn, TimedScoreFn, prompt_key, row_key, score_pairs
from rewardkit.records import PreferencePair, content_hash, prompt_text


@dataclass(frozen=True)
class EvalConfig:
    """What one evaluation computes."""

    probes: str = "all"
    """Reward-hacking probes: 'all', 'none' or a comma-separated list of names (see evaluate/probes.py)."""
    max_probe_rows: int = 1000
    """Probe at most this many distinct chosen responses (a seeded sample spread over the data); each probe
    scores every one again, so probes are most of an evaluation's scoring. At 1,000 responses to as many
    prompts a rise rate's 95% interval is at most +-3 points (reported per probe)."""
    n_boot: int = 1000
    """Bootstrap resamples for the 95% intervals."""
    calibration_bins: int = 10
    """Equal-width probability bins for ECE and the reliability diagram."""
    best_of_n_ns: tuple[int, ...] = (1, 2, 4, 8, 16)
    """Values of N for the best-of-N curve (those larger than every group are skipped)."""
    max_reference_rows: int = 1000
    """Cap on reference (training) rows scored for the distribution-shift check: a seeded sample of its
    distinct (prompt, chosen) rows."""
    seed: int = 0
    """Seeds the bootstrap, the probe sample and the reference sample."""

    def __post_init__(self) -> None:
        select_probes(self.probes)  # raises ValueError naming an unknown probe
        if self.max_probe_rows < 1:
            raise ValueError(f"max_probe_rows: expected >= 1, got {self.max_probe_rows}")
        if self.n_boot < 10:
            raise ValueError(f"n_boot: expected >= 10 resamples, got {self.n_boot}")
        if self.calibration_bins < 2:
            raise ValueError(f"calibration_bins: expected >= 2, got {self.calibration_bins}")
        if not self.best_of_n_ns or min(self.best_of_n_ns) < 1:
            raise ValueError(f"best_of_n_ns: expected positive integers, got {self.best_of_n_ns}")
        if self.max_reference_rows < 1:
            raise ValueError(f"max_reference_rows: expected >= 1, got {self.max_reference_rows}")


@dataclass
class EvalResult:
    report: dict[str, Any]
    arrays: dict[str, Any] = field(default_factory=dict)  # chosen, rejected, lengths, reliability, curve...


def _group_labels(pairs: list[PreferencePair]) -> dict[str, list[str]]:
    """The groupings that vary in this data: source, subset, category, attribute, annotator kind. A grouping
    with one group only repeats the overall accuracy, and "source" repeats "subset" when the reader took the
    subset as the source: both are left out."""
    candidates = {
        "source": [p.source or "-" for p in pairs],
        "subset": [str(p.metadata.get("subset") or "-") for p in pairs],
        "category": [str(p.metadata.get("category") or "-") for p in pairs],
        "attribute": [p.attribute or "overall" for p in pairs],
        "annotator_kind": [p.annotator_kind or "-" for p in pairs],
    }
    if candidates["source"] == candidates["subset"]:
        del candidates["source"]
    return {name: labels for name, labels in candidates.items() if len(set(labels)) > 1}


def distinct_rows(prompts: list[Any], responses: list[str]) -> list[int]:
    """Indices of the first occurrence of each distinct (prompt, response) row, in order."""
    first: dict[tuple[str, str], int] = {}
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        first.setdefault(row_key(p, r), i)
    return list(first.values())


def pair_key(pair: PreferencePair) -> str:
    """A pair's content, as a key that matches the same pair in another evaluation (ids may be missing)."""
    return content_hash([prompt_key(pair.prompt), pair.chosen, pair.rejected])


def data_fingerprint(pair_keys: list[str]) -> str:
    """One hash of the evaluated pairs (their ``pair_key``s), in any order: two reports with the same
    fingerprint saw the same data."""
    digest = hashlib.sha256()
    for key in sorted(pair_keys):
        digest.update(key.encode("ascii"))
    return digest.hexdigest()[:32]


def _agreement(pairs: list[PreferencePair], chosen: np.ndarray, rejected: np.ndarray) -> dict[str, Any]:
    # every pair in both orientations, so where the snapshot put the chosen response cannot move kappa
    human, model = both_orientation_labels(np.asarray(chosen, float), np.asarray(rejected, float))
    kinds = np.asarray([p.annotator_kind or "unknown" for p in pairs], dtype=object)
    per_kind = {}
    for kind in sorted(set(kinds.tolist())):
        idx = np.flatnonzero(kinds == kind)
        both = np.concatenate([idx, idx + len(pairs)])
        per_kind[kind] = {"kappa": cohen_kappa([human[i] for i in both], [model[i] for i in both]), "n": int(idx.size)}
    # the same pair labelled more than once by two named annotators (in either order); a row repeated with no
    # annotator named is a duplicate, counted as such
    keys = [(prompt_key(p.prompt), *sorted((p.chosen, p.rejected))) for p in pairs]
    first_wins = [p.chosen <= p.rejected for p in pairs]
    annotators = [str(p.metadata.get("annotator") or "") for p in pairs]
    # ratings: how much better the source says chosen is (its own score gap, else the preference strength)
    # against the model's gap r_chosen - r_rejected
    rating = [p.margin if p.margin is not None else p.strength for p in pairs]
    rated = [i for i, r in enumerate(rating) if r is not None]
    gap = np.asarray(chosen, float) - np.asarray(rejected, float)
    return {
        "model_vs_annotators": {"kappa": cohen_kappa(human, model), "n": len(pairs)},
        "by_annotator_kind": per_kind,
        "between_annotators": repeated_label_agreement(keys, first_wins, annotators),
        "score_gap_vs_rating": rank_correlation(gap[rated], [rating[i] for i in rated]) if len(rated) >= 3 else None,
    }


def _rewardbench(pairs: list[PreferencePair], correct: np.ndarray) -> dict[str, Any] | None:
    subsets = [str(p.metadata.get("subset") or "") for p in pairs]
    if not any(subsets):
        return None
    labels = np.asarray(subsets, dtype=object)
    acc = {s: float(correct[labels == s].mean()) for s in sorted(set(subsets)) if s}
    result = section_scores(acc)
    return {**result, "subsets": acc} if result["sections"] else None


def _input_features(
    prompts: list[str], responses: list[str], scores: np.ndarray, extra: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The drift features of rows: score, lengths, and what the scorer measured beside (embedding_norm)."""
    return {
        "score": np.asarray(scores, float),
        "response_chars": np.asarray([len(r) for r in responses], float),
        "prompt_chars": np.asarray([len(p) for p in prompts], float),
        **extra,
    }


def evaluate(
    score_fn: ScoreFn,
    pairs: list[PreferencePair],
    config: EvalConfig | None = None,
    *,
    temperature: float | None = None,
    reference_pairs: list[PreferencePair] | None = None,
    best_of_n_groups: list[bon.ResponseGroup] | None = None,
    progress: Any = None,
) -> EvalResult:
    """Every metric of the report over ``pairs`` (non-tie PreferencePairs). ``temperature`` is the model's
    stored calibration temperature; ``reference_pairs`` (training data) enables the drift section;
    ``best_of_n_groups`` enables best-of-N and model ranking. ``progress(step_name)`` is called per stage."""
    config = config or EvalConfig()
    if not pairs:
        raise ValueError("no pairs to evaluate")
    step = progress or (lambda name: None)
    timed = TimedScoreFn(score_fn)
    start = time.perf_counter()
    prompts = [p.prompt for p in pairs]
    chosen_texts, rejected_texts = [p.chosen for p in pairs], [p.rejected for p in pairs]
    clusters = [prompt_key(p) for p in prompts]  # pairs of one prompt are resampled together (accuracy.py)
    keys = [pair_key(p) for p in pairs]
    probes = select_probes(config.probes)
    # probes and drift look at responses, and a test file repeats a chosen response across pairs: each
    # distinct (prompt, chosen) row counts once
    distinct = distinct_rows(prompts, chosen_texts)
    probed = [distinct[i] for i in sample_rows(len(distinct), config.max_probe_rows, config.seed)]
    probe_prompts, probe_chosen = [prompts[i] for i in probed], [chosen_texts[i] for i in probed]
    # a response too long to read with its edits is cut first (probe_fit): edits and bases, scored below
    probe_bases = fit_probe_bases(getattr(score_fn, "encode", None), probe_prompts, probe_chosen, probes)
    probe_edits = perturb(probe_prompts, probe_bases.texts, probes)  # (len(probes) * len(probed),), probe-major
    ref_all = reference_pairs or []
    ref_distinct = distinct_rows([p.prompt for p in ref_all], [p.chosen for p in ref_all])
    ref = [ref_all[ref_distinct[i]] for i in sample_rows(len(ref_distinct), config.max_reference_rows, config.seed)]
    groups = best_of_n_groups or []
    step("scoring")
    # Every row the report needs (pairs, probe edits, reference, best-of-N responses) goes to the scorer in
    # ONE call: it sorts all of them by length and packs them together, and a row met twice (a best-of-N
    # response that is also a pair's) is scored once. The stages below read the cache.
    all_prompts = (
        prompts * 2
        + probe_prompts * (len(probes) + 1)
        + [p.prompt for p in ref]
        + [g.prompt for g in groups for _ in g.responses]
    )
    all_responses = (
        chosen_texts
        + rejected_texts
        + probe_bases.texts
        + probe_edits
        + [p.chosen for p in ref]
        + [r for g in groups for r in g.responses]
    )
    cached = CachedScoreFn(timed)
    cached.prefetch(all_prompts, all_responses)
    chosen, rejected = score_pairs(cached, prompts, chosen_texts, rejected_texts)
    correct = strict_correct(chosen, rejected)
    chosen_len = np.asarray([len(c) for c in chosen_texts], float)
    rejected_len = np.asarray([len(r) for r in rejected_texts], float)

    boot = {"n_boot": config.n_boot, "seed": config.seed}
    report: dict[str, Any] = {
        "n_pairs": len(pairs),
        "n_prompts": len(set(clusters)),
        "data_fingerprint": data_fingerprint(keys),
        "config": asdict(config),
        "temperature": temperature,
    }
    report["accuracy"] = {
        "overall": accuracy_with_interval(correct, clusters=clusters, **boot).as_json(),
        "ties": int(np.sum(chosen == rejected)),
        "mean_margin": float(np.mean(chosen - rejected)),
        "by_group": {
            name: {g: a.as_json() for g, a in accuracy_by_group(correct, labels, clusters=clusters, **boot).items()}
            for name, labels in _group_labels(pairs).items()
        },
    }
    arrays: dict[str, Any] = {
        "chosen": chosen,
        "rejected": rejected,
        "chosen_len": chosen_len,
        "rejected_len": rejected_len,
        # per-pair identities for the scores file `rewardkit eval compare` pairs two evaluations on
        "pair_ids": [p.id for p in pairs],
        "pair_keys": keys,
        "prompt_keys": [content_hash(c, 16) for c in clusters],
    }
    step("calibration")
    report["calibration"], arrays["reliability"] = calibration_report(
        chosen - rejected, temperature, n_bins=config.calibration_bins
    )
    report["agreement"] = _agreement(pairs, chosen, rejected)
    report["length_bias"] = length_bias_report(chosen, rejected, chosen_len, rejected_len, clusters=clusters, **boot)
    rb = _rewardbench(pairs, correct)
    if rb is not None:
        report["rewardbench"] = rb

    if probes:
        step("probes")
        report["probes"] = run_probes(
            cached,
            probe_prompts,
            probe_chosen,
            probes,
            bases=probe_bases,
            clusters=[clusters[i] for i in probed],
            **boot,
        )
        report["probe_rows"] = {
            "distinct_chosen": len(distinct),
            "probed": len(probed),
            "prompts": len({clusters[i] for i in probed}),
        }

    if reference_pairs:
        step("distribution shift")
        ref_prompts, ref_chosen = [p.prompt for p in ref], [p.chosen for p in ref]
        cur_prompts, cur_chosen = [prompts[i] for i in distinct], [chosen_texts[i] for i in distinct]
        report["drift"] = drift_report(
            _input_features(
                [prompt_text(p) for p in ref_prompts],
                ref_chosen,
                cached(ref_prompts, ref_chosen),
                cached.features(ref_prompts, ref_chosen),
            ),
            _input_features(
                [prompt_text(p) for p in cur_prompts],
                cur_chosen,
                cached(cur_prompts, cur_chosen),
                cached.features(cur_prompts, cur_chosen),
            ),
        )
        # the drift rows are the distinct chosen rows; name flagged ones by their first pair
        report["drift"]["ood_rows"] = [distinct[i] for i in report["drift"]["ood_rows"]]

    if best_of_n_groups:
        step("best-of-N")
        group_scores = bon.score_groups(cached, best_of_n_groups)
        report["best_of_n"] = bon.best_of_n_report(group_scores, best_of_n_groups, config.best_of_n_ns)
        arrays["best_of_n_curve"] = report["best_of_n"]["curve"]
        qualities = [np.asarray(g.quality, float) for g in best_of_n_groups]
        # within each prompt: pooled over prompts, a correlation mostly says which prompts are easy
        report["agreement"]["reward_vs_quality"] = within_group_rank_correlation(group_scores, qualities)
        flat_scores, flat_quality = np.concatenate(group_scores), np.concatenate(qualities)
        generators = [gen for g in best_of_n_groups for gen in g.generators]
        if len(generators) == flat_scores.size and len(set(generators)) > 2:
            report["model_ranking"] = model_ranking(flat_scores.tolist(), flat_quality.tolist(), generators)

    total = time.perf_counter() - start
    report["timing"] = {
        "total_s": total,
        "scoring_s": timed.seconds,
        "scoring_share": timed.seconds / total if total else float("nan"),
        "rows_scored": timed.rows,
    }
    return EvalResult(report=report, arrays=arrays)
