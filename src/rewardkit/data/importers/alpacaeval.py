"""AlpacaEval annotations: ``{"instruction", "output_1", "generator_1", "output_2", "generator_2",
"preference", "annotator", "dataset"}``.

``preference`` is the judge's probability-weighted choice in [1, 2]: below 1.5 prefers ``output_1``
(choice ``a``), above 1.5 ``output_2`` (choice ``b``), exactly 1.5 is a tie. The strength is the distance
from 1.5 scaled to [0, 1]: ``|preference - 1.5| * 2`` (1.0 and 2.0 are certain, 1.5 is 0). The soft label
P(output_1 better) = ``2 - preference`` is kept as the judgement's ``probability`` (``--loss soft``). Generator names
go to ``Response.model_name``; ``dataset`` (the instruction's source set) is kept in the metadata.
Annotator: the row's ``annotator`` (default ``alpacaeval``), kind ``ai``. A row whose preference is null (the
judge gave no verdict) is rejected. Empty outputs (17 gemma-2b-it answers) and outputs identical to the
reference (732 rows, judged as ties) are real judgements of real generations and are kept: the generator
names tell the two responses apart; snapshot compilation drops pairs whose texts carry no preference.
"""

from __future__ import annotations

from typing import Any

from rewardkit.data.importers import fields
from rewardkit.data.importers.options import ImportOptions
from rewardkit.records import Annotator, Comparison, PairwiseChoice, PairwiseJudgement, RecordError, Response


def choice_and_strength(preference: float) -> tuple[PairwiseChoice, float]:
    """AlpacaEval's preference in [1, 2] -> (choice, strength in [0, 1])."""
    if not 1.0 <= preference <= 2.0:
        raise RecordError("preference", f"expected a number in [1, 2], got {preference!r}")
    choice: PairwiseChoice = "tie" if preference == 1.5 else "a" if preference < 1.5 else "b"
    return choice, abs(preference - 1.5) * 2


def parse(record: dict[str, Any], options: ImportOptions) -> Comparison:
    if "preference" not in record:
        raise RecordError(
            "preference", "is missing (expected AlpacaEval annotations: instruction, output_1, output_2, preference)"
        )
    if record["preference"] is None:
        raise RecordError("preference", "is null (the judge gave no verdict)")
    preference = fields.number(record["preference"], "preference")
    choice, strength = choice_and_strength(preference)
    out1 = fields.text(record, "output_1", allow_empty=True)
    out2 = fields.text(record, "output_2", allow_empty=True)
    dataset = fields.optional_text(record, "dataset")
    return Comparison(
        prompt=fields.text(record, "instruction"),
        responses=(
            Response(out1, model_name=fields.optional_text(record, "generator_1")),
            Response(out2, model_name=fields.optional_text(record, "generator_2")),
        ),
        judgement=PairwiseJudgement(choice, strength=strength, probability=2.0 - preference),
        annotator=Annotator(
            options.annotator_id or fields.optional_text(record, "annotator") or "alpacaeval",
            options.annotator_kind or "ai",
        ),
        source=options.source,
        metadata={"dataset": dataset} if dataset else {},
    )
