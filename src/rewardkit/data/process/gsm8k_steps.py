"""GSM8K's human solutions as steps, and the check that labels a step good.

A GSM8K answer is one step a line, each calculation annotated as ``<<expr=result>>``, ending in ``#### FINAL``::

    Natalia sold 48/2 = <<48/2=24>>24 clips in May.
    Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.
    #### 72

``split_solution`` gives the step lines (blank lines dropped) and the final answer; the final line becomes the step
``A: 72``, the form the shared model solutions end in, so generated training data and the real evaluation data
look alike.

``check_step`` decides whether a step is **correct**, and this is exactly what it checks:

1. **the arithmetic**: every annotation's expression, evaluated exactly (``arithmetic.evaluate``), agrees with the
   result it states, to the precision the result is written with (``arithmetic.agrees``);
2. **it follows from earlier steps**: every number the expressions use (every literal operand) is a *known*
   number: one written in the question (``question_numbers``: numerals, ``p%`` also as ``p/100``, ``a/b`` also as
   its value, and number words such as ``three``, ``half``, ``dozen``), one written anywhere in an earlier step
   (its text or its annotations), the result of an earlier annotation in the same step, or one of ``CONSTANTS``
   (units and the small numbers that word problems leave implicit: 60 minutes, 7 days, 100 percent...).

The final-answer step is correct when its number is one written in an earlier step. A step without an annotation
states no calculation, so only rule 2's bookkeeping applies to it (its numbers become known for later steps).
What the check does not see: a calculation done in words outside an annotation, a right calculation of the
wrong quantity (a reasoning error); those are what outcome labels are for (``gsm8k_models.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from rewardkit.data.process.arithmetic import ArithmeticSyntaxError, agrees, evaluate_with_operands, parse_number
from rewardkit.records import content_hash

ANNOTATION = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
# thousands commas only in groups of three ("1,200"), so a list like "3,4" reads as two numbers
NUMERAL = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+")
PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|percent)")
FRACTION = re.compile(r"(?<![\d.])(\d+)\s*/\s*(\d+)(?![\d.])")
FINAL_PREFIX = "A: "

_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty"
).split()
NUMBER_WORDS: dict[str, tuple[Fraction, ...]] = {
    **{w: (Fraction(i),) for i, w in enumerate(_WORDS)},
    **{w: (Fraction(10 * i),) for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), 3)},
    "hundred": (Fraction(100),),
    "thousand": (Fraction(1000),),
    "million": (Fraction(10**6),),
    "dozen": (Fraction(12),),
    "half": (Fraction(1, 2), Fraction(2)),
    "twice": (Fraction(2),),
    "double": (Fraction(2),),
    "triple": (Fraction(3),),
    "thrice": (Fraction(3),),
    "quarter": (Fraction(1, 4), Fraction(4)),
    "third": (Fraction(1, 3), Fraction(3)),
    "fourth": (Fraction(1, 4), Fraction(4)),
    "fifth": (Fraction(1, 5), Fraction(5)),
    "tenth": (Fraction(1, 10), Fraction(10)),
    "pair": (Fraction(2),),
    "couple": (Fraction(2),),
}
# Units and the numbers word problems leave unsaid: 1 and 2 (each, both, halving), 3 (a third), 4 (weeks in a
# month, quarters), 7, 10, 12, 24, 30, 52, 60, 100 (percent, cents), 365, 1000, and 0.5 and 0.01 (half, percent).
# With them 91% of the 7,473 training solutions check clean; the commonest operands still untraced are 5, 6 and
# 1.5 (a fact the solution knows but the question does not say), and such solutions are left out, not guessed at.
CONSTANTS: frozenset[Fraction] = frozenset(
    [*(Fraction(n) for n in (1, 2, 3, 4, 7, 10, 12, 24, 30, 52, 60, 100, 365, 1000)), Fraction(1, 2), Fraction(1, 100)]
)


@dataclass(frozen=True)
class Annotation:
    """One ``<<expr=result>>`` of a step: the texts as written and the span of the whole annotation."""

    expr: str
    result: str
    start: int
    end: int


def annotations(step: str) -> list[Annotation]:
    return [Annotation(m.group(1), m.group(2), m.start(), m.end()) for m in ANNOTATION.finditer(step)]


def numbers_in(text: str) -> set[Fraction]:
    """Every numeral written in ``text`` (annotations included)."""
    return {parse_number(n) for n in NUMERAL.findall(text)}


def question_numbers(question: str) -> set[Fraction]:
    """The numbers a question gives: its numerals, percentages also as fractions, ``a/b`` also as its value, and
    number words (see ``NUMBER_WORDS``)."""
    known = numbers_in(question)
    known.update(parse_number(p) / 100 for p in PERCENT.findall(question))
    known.update(Fraction(int(a), int(b)) for a, b in FRACTION.findall(question) if int(b) != 0)
    for word in re.findall(r"[a-z]+", question.lower()):
        known.update(NUMBER_WORDS.get(word.removesuffix("s"), ()))
    return known


def split_solution(answer: str) -> tuple[list[str], str]:
    """The step lines of a GSM8K answer (blank lines dropped) and its final answer (the text after ``####``)."""
    lines = [line.strip() for line in answer.strip().split("\n") if line.strip()]
    if not lines or not lines[-1].startswith("####"):
        raise ValueError("expected the answer to end in a '#### FINAL' line")
    final = lines[-1].removeprefix("####").strip()
    if not final:
        raise ValueError("the '####' line has no final answer")
    return lines[:-1], final


def problem_id(question: str) -> str:
    """A problem's id: a hash of its text, the same in every file that holds the problem."""
    return content_hash({"question": question}, 16)


def final_step(final: str) -> str:
    return f"{FINAL_PREFIX}{final}"


@dataclass(frozen=True)
class StepCheck:
    """What ``check_step`` found: ``wrong`` the annotations whose arithmetic disagrees (indices), ``untraced``
    the operands that are no known number, ``unparsable`` the annotations that are not plain arithmetic."""

    wrong: tuple[int, ...] = ()
    untraced: tuple[Fraction, ...] = ()
    unparsable: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.wrong or self.untraced or self.unparsable)


def check_step(step: str, known: set[Fraction]) -> StepCheck:
    """Check one step against the numbers known before it (see the module docstring); ``known`` is not changed."""
    wrong, untraced, unparsable = [], [], []
    seen = set(known)
    for i, a in enumerate(annotations(step)):
        try:
            value, operands = evaluate_with_operands(a.expr)
            stated = parse_number(a.result)
        except ArithmeticSyntaxError:
            unparsable.append(i)
            continue
        untraced.extend(x for x in operands if x not in seen and x not in CONSTANTS)
        if not agrees(value, a.result):
            wrong.append(i)
        seen.add(stated)
    return StepCheck(tuple(wrong), tuple(untraced), tuple(unparsable))


def check_final(final: str, earlier_steps: Iterable[str]) -> bool:
    """The final answer is a number written in an earlier step."""
    try:
        value = parse_number(final)
    except ArithmeticSyntaxError:
        return False
    return any(value in numbers_in(step) for step in earlier_steps)


def check_solution(question: str, steps: list[str], final: str) -> list[StepCheck | bool]:
    """``check_step`` for every step in order, each against the question and the steps before it, then
    ``check_final`` for the final answer."""
    known = question_numbers(question)
    out: list[StepCheck | bool] = []
    for step in steps:
        out.append(check_step(step, known))
        known |= numbers_in(step)
    out.append(check_final(final, steps))
    return out
