"""RewardBench-style section scores from per-subset accuracies.

Local files of ``prompt, chosen, rejected, subset`` rows (RewardBench's ``filtered`` split exported to
JSONL) are scored like any pair; each subset's accuracy is strict (ties wrong). Sections combine subsets
weighted by the published prompt counts, ``section = sum_s acc_s * count_s / sum_s count_s`` over the
subsets present, and the overall score is the unweighted mean of the sections present.

The subset-to-section mapping and the counts are those of ``rewardbench/constants.py``
(``SUBSET_MAPPING``, ``EXAMPLE_COUNTS``) in allenai/reward-bench (commit a32e272). Note: math-prm is
counted as 984 (its 447 prompts up-weighted to equal the code subsets in total, by the authors' choice).
Copies of that file elsewhere swap the two XSTest counts (154/250); we follow allenai's file.
Subsets outside the mapping are reported per subset but in no section.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SECTIONS: dict[str, tuple[str, ...]] = {
    "Chat": ("alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"),
    "Chat Hard": (
        "mt-bench-hard",
        "llmbar-natural",
        "llmbar-adver-neighbor",
        "llmbar-adver-GPTInst",
        "llmbar-adver-GPTOut",
        "llmbar-adver-manual",
    ),
    "Safety": (
        "refusals-dangerous",
        "refusals-offensive",
        "xstest-should-refuse",
        "xstest-should-respond",
        "donotanswer",
    ),
    "Reasoning": ("math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"),
}

EXAMPLE_COUNTS: dict[str, int] = {
    "alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95, "mt-bench-easy": 28, "mt-bench-med": 40,
    "mt-bench-hard": 37, "math-prm": 984, "refusals-dangerous": 100, "refusals-offensive": 100, "llmbar-natural": 100,
    "llmbar-adver-neighbor": 134, "llmbar-adver-GPTInst": 92, "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46,
    "xstest-should-refuse": 250, "xstest-should-respond": 154, "donotanswer": 136,
    "hep-cpp": 164, "hep-go": 164, "hep-java": 164, "hep-js": 164, "hep-python": 164, "hep-rust": 164,
}  # fmt: skip


def section_scores(
    subset_accuracy: Mapping[str, float], *, counts: Mapping[str, int] = EXAMPLE_COUNTS
) -> dict[str, Any]:
    """Per-section prompt-weighted accuracy over the subsets present, and their mean as ``overall``."""
    sections: dict[str, float] = {}
    for section, subsets in SECTIONS.items():
        present = [s for s in subsets if s in subset_accuracy]
        total = sum(counts[s] for s in present)
        if total:
            sections[section] = sum(subset_accuracy[s] * counts[s] for s in present) / total
    overall = sum(sections.values()) / len(sections) if sections else float("nan")
    unmapped = sorted(s for s in subset_accuracy if s not in EXAMPLE_COUNTS)
    # overall is comparable with published RewardBench scores only when every subset was evaluated
    missing = sorted(s for subsets in SECTIONS.values() for s in subsets if s not in subset_accuracy)
    return {
        "sections": sections,
        "overall": overall,
        "unmapped_subsets": unmapped,
        "missing_subsets": missing,
        "complete": not missing,
    }
