"""A tiny arithmetic evaluator for GSM8K's calculator annotations (``<<48/2=24>>``), never ``eval()``.

The grammar is what the 23,716 annotations of the GSM8K training set use, and nothing more::

    expr   := term (("+" | "-") term)*
    term   := factor (("*" | "/") factor)*
    factor := ("+" | "-") factor | NUMBER | "(" expr ")"
    NUMBER := digits with an optional decimal point (``12``, ``0.5``, ``.5``, ``3.``)

Arithmetic is exact (``fractions.Fraction``): ``0.1 + 0.2`` is ``3/10``, so a check never fails on float rounding.
Anything else (a letter, ``**``, an unbalanced bracket, a division by zero) raises ``ArithmeticSyntaxError``.
"""

from __future__ import annotations

import re
from fractions import Fraction

_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*|\.\d+)|(.))")


class ArithmeticSyntaxError(ValueError):
    """The expression is not plain arithmetic (or divides by zero)."""


def parse_number(text: str) -> Fraction:
    """A decimal numeral as an exact fraction; thousands commas are allowed (``1,200``)."""
    try:
        return Fraction(text.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        raise ArithmeticSyntaxError(f"not a number: {text!r}") from None


def _tokens(expr: str) -> list[str]:
    out = []
    for number, other in _TOKEN.findall(expr.strip()):
        if number:
            out.append(number)
        elif other in "+-*/()":
            out.append(other)
        else:
            raise ArithmeticSyntaxError(f"unexpected {other!r} in {expr!r}")
    return out


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr, self.tokens, self.pos = expr, _tokens(expr), 0
        self.numbers: list[Fraction] = []  # every literal operand, in order

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ArithmeticSyntaxError(f"{self.expr!r} ends too early")
        self.pos += 1
        return token

    def expr_(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        return value

    def term(self) -> Fraction:
        value = self.factor()
        while self.peek() in ("*", "/"):
            op, right = self.take(), self.factor()
            if op == "/" and right == 0:
                raise ArithmeticSyntaxError(f"division by zero in {self.expr!r}")
            value = value * right if op == "*" else value / right
        return value

    def factor(self) -> Fraction:
        token = self.take()
        if token in ("+", "-"):
            value = self.factor()
            return value if token == "+" else -value
        if token == "(":
            value = self.expr_()
            if self.take() != ")":
                raise ArithmeticSyntaxError(f"unbalanced brackets in {self.expr!r}")
            return value
        if token in ("*", "/", ")"):
            raise ArithmeticSyntaxError(f"unexpected {token!r} in {self.expr!r}")
        number = parse_number(token)
        self.numbers.append(number)
        return number


def evaluate(expr: str) -> Fraction:
    """The exact value of an arithmetic expression (see the module docstring)."""
    return evaluate_with_operands(expr)[0]


def evaluate_with_operands(expr: str) -> tuple[Fraction, list[Fraction]]:
    """The value of ``expr`` and its literal operands in order (what "follows from earlier steps" checks)."""
    parser = _Parser(expr)
    value = parser.expr_()
    if parser.peek() is not None:
        raise ArithmeticSyntaxError(f"unexpected {parser.peek()!r} in {expr!r}")
    return value, parser.numbers


def decimals(text: str) -> int:
    """How many digits a numeral has after its decimal point."""
    return len(text.split(".", 1)[1]) if "." in text else 0


def agrees(computed: Fraction, stated: str) -> bool:
    """``stated`` is ``computed`` written to the precision it shows: within half a unit of its last digit
    (``10/3=3.33`` and ``10/3=3`` agree, ``10/3=3.4`` does not; an exact value always agrees)."""
    value = parse_number(stated)
    return abs(computed - value) <= Fraction(1, 2 * 10 ** decimals(stated))


def format_number(value: Fraction) -> str:
    """How a result is written: an integer without a point, else the exact decimal when it has at most 6 digits
    after the point, else rounded to 2 (as GSM8K's annotators round money)."""
    if value.denominator == 1:
        return str(value.numerator)
    for places in range(1, 7):
        scaled = value * 10**places
        if scaled.denominator == 1:
            return f"{float(value):.{places}f}"
    return f"{float(value):.2f}"
