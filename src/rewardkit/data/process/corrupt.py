"""Corrupt a correct GSM8K solution at one calculation so that its first error is known (Math-Shepherd's idea,
made checkable: the error is planted, not estimated by rollouts).

``corrupt`` picks a step with a calculation whose result is a whole number that neither the question nor an
earlier step mentions, changes that result (the last annotation of the step, and the same number written after it
in the step) by a small amount, and **carries the wrong value forward**: every later numeral equal to a changed
value is replaced, every later annotation re-evaluated, and a result that changes in turn joins the changed
values. So the corrupted step's arithmetic is wrong, and every later step is arithmetically consistent with the
wrong number, as a solver who made one slip and went on would write it.

A corruption is kept only when the wrong value reaches the final answer (the answer changes), every recomputed
result is a positive number written exactly in at most 6 decimals, and the new value appears nowhere in the
original solution or the question (so it cannot be mistaken for a right one). The labels: the steps before the
corrupted one good, the corrupted step and every later step (the final answer included) bad. "Bad" after the first
error means "this prefix contains an error", the meaning Math-Shepherd's hard labels give it (no continuation of
a wrong prefix reaches the right answer), and what ProcessBench's first-error metric needs.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from fractions import Fraction

from rewardkit.data.process.arithmetic import ArithmeticSyntaxError, evaluate, format_number, parse_number
from rewardkit.data.process.gsm8k_steps import NUMERAL, annotations, numbers_in, question_numbers

# the changes tried, in a random order per solution: small slips, as a person (or a model) makes them
DELTAS: tuple[int, ...] = (1, -1, 2, -2, 3, -3, 5, -5, 10, -10)


@dataclass(frozen=True)
class Corruption:
    steps: list[str]  # the solution's steps, corrupted from ``first_error`` on (the final-answer step excluded)
    final: str  # the final answer the wrong value leads to
    first_error: int  # index of the corrupted step
    original: str  # the result as the correct solution states it
    wrong: str  # the result the corrupted step states


def _substitute(text: str, changed: dict[Fraction, Fraction]) -> str:
    """Every numeral in ``text`` whose value was changed, written as its new value."""

    def repl(m: re.Match[str]) -> str:
        value = parse_number(m.group(0))
        return format_number(changed[value]) if value in changed else m.group(0)

    return NUMERAL.sub(repl, text)


class _Unusable(Exception):
    """This corruption would not give a clean solution (see the module docstring)."""


def _carry(step: str, changed: dict[Fraction, Fraction]) -> str:
    """Rewrite a later step with the changed values, re-evaluating its annotations left to right."""
    out, pos = [], 0
    for a in annotations(step):
        out.append(_substitute(step[pos : a.start], changed))
        expr = _substitute(a.expr, changed)
        value = evaluate(expr)
        written = format_number(value)
        if value <= 0 or parse_number(written) != value:
            raise _Unusable
        old = parse_number(a.result)
        if value != old:
            changed[old] = value
        out.append(f"<<{expr}={written if value != old else a.result}>>")
        pos = a.end
    out.append(_substitute(step[pos:], changed))
    return "".join(out)


def _candidates(question: str, steps: list[str]) -> list[int]:
    """Steps whose last annotation states a whole number that the question and earlier steps do not mention."""
    known = question_numbers(question)
    out = []
    for i, step in enumerate(steps):
        found = annotations(step)
        if found:
            try:
                value = parse_number(found[-1].result)
            except ArithmeticSyntaxError:
                value = None
            if value is not None and value.denominator == 1 and value > 0 and value not in known:
                out.append(i)
        known |= numbers_in(step)
    return out


def corrupt_at(question: str, steps: list[str], final: str, index: int, delta: int) -> Corruption | None:
    """Corrupt step ``index`` by ``delta`` and carry it forward, or None when that gives no usable corruption."""
    step = steps[index]
    last = annotations(step)[-1]
    old = parse_number(last.result)
    new = old + delta
    everywhere = question_numbers(question).union(*(numbers_in(s) for s in steps))
    if new <= 0 or new in everywhere:
        return None
    changed = {old: new}
    wrong = format_number(new)
    # the corrupted step: its last annotation states the wrong result, and the text after it repeats it
    head = step[: last.start] + f"<<{last.expr}={wrong}>>"
    corrupted = [*steps[:index], head + _substitute(step[last.end :], changed)]
    try:
        corrupted.extend(_carry(s, changed) for s in steps[index + 1 :])
        final_value = parse_number(final)
    except (_Unusable, ArithmeticSyntaxError):
        return None
    if final_value not in changed:
        return None  # the slip does not reach the answer: the solution would still be right
    return Corruption(corrupted, format_number(changed[final_value]), index, last.result, wrong)


def corrupt(question: str, steps: list[str], final: str, rng: random.Random) -> Corruption | None:
    """A corruption of a correct solution, chosen with ``rng`` among the usable ones (None when there is none)."""
    candidates = _candidates(question, steps)
    rng.shuffle(candidates)
    for index in candidates:
        deltas = list(DELTAS)
        rng.shuffle(deltas)
        for delta in deltas:
            found = corrupt_at(question, steps, final, index, delta)
            if found is not None:
                return found
    return None
