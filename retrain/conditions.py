"""Trigger conditions: a tiny grammar over named signals, parsed without ``eval``.

Grammar (case-insensitive keywords)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := atom ("and" atom)*
    atom       := comparison | "(" expr ")"
    comparison := SIGNAL OP NUMBER
    OP         := "<" | "<=" | ">" | ">=" | "==" | "!="

Evaluation is three-valued: a comparison whose signal is missing is *unknown*
(``None``), and ``and`` / ``or`` follow Kleene logic, so a missing signal is never
silently read as "fine".
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from retrain.constants import SIGNALS, SignalSpec
from retrain.errors import ConditionError

__all__ = [
    "SIGNALS",
    "And",
    "Comparison",
    "Condition",
    "ConditionError",
    "Or",
    "SignalSpec",
    "parse_condition",
]


_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z0-9_.]))
      | (?P<op><=|>=|==|!=|<|>)
      | (?P<paren>[()])
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_MAX_LENGTH = 500


@dataclass(frozen=True)
class Comparison:
    """``signal op value``."""

    signal: str
    op: str
    value: float

    def evaluate(self, values: Mapping[str, float | None]) -> bool | None:
        observed = values.get(self.signal)
        if observed is None or (isinstance(observed, float) and math.isnan(observed)):
            return None
        return _OPS[self.op](float(observed), self.value)

    @property
    def signals(self) -> frozenset[str]:
        return frozenset({self.signal})

    def explain(self, values: Mapping[str, float | None]) -> str:
        observed = values.get(self.signal)
        shown = "unknown" if observed is None else _fmt(float(observed))
        return f"{self.signal} {shown} {self.op} {_fmt(self.value)}"

    def __str__(self) -> str:
        return f"{self.signal} {self.op} {_fmt(self.value)}"


@dataclass(frozen=True)
class And:
    """All parts hold (Kleene ``and``)."""

    parts: tuple[Condition, ...]

    def evaluate(self, values: Mapping[str, float | None]) -> bool | None:
        results = [p.evaluate(values) for p in self.parts]
        if any(r is False for r in results):
            return False
        return None if any(r is None for r in results) else True

    @property
    def signals(self) -> frozenset[str]:
        return frozenset().union(*(p.signals for p in self.parts))

    def explain(self, values: Mapping[str, float | None]) -> str:
        return " and ".join(_wrap(p, p.explain(values)) for p in self.parts)

    def __str__(self) -> str:
        return " and ".join(_wrap(p, str(p)) for p in self.parts)


@dataclass(frozen=True)
class Or:
    """Any part holds (Kleene ``or``)."""

    parts: tuple[Condition, ...]

    def evaluate(self, values: Mapping[str, float | None]) -> bool | None:
        results = [p.evaluate(values) for p in self.parts]
        if any(r is True for r in results):
            return True
        return None if any(r is None for r in results) else False

    @property
    def signals(self) -> frozenset[str]:
        return frozenset().union(*(p.signals for p in self.parts))

    def explain(self, values: Mapping[str, float | None]) -> str:
        fired = [p for p in self.parts if p.evaluate(values)]
        return " or ".join(p.explain(values) for p in (fired or self.parts))

    def __str__(self) -> str:
        return " or ".join(str(p) for p in self.parts)


Condition = Comparison | And | Or


def _wrap(part: Condition, text: str) -> str:
    return f"({text})" if isinstance(part, Or) else text


def _fmt(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:g}"


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            start = len(text) - len(text[pos:].lstrip())
            raise ConditionError(
                f"unexpected character {text[start]!r} at position {start} in {text!r}; "
                "expected '<signal> <op> <number>' joined by 'and' / 'or'"
            )
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def fail(self, expected: str) -> ConditionError:
        if self.i < len(self.tokens):
            _, value, at = self.tokens[self.i]
            found = f"{value!r} at position {at}"
        else:
            found = "end of condition"
        return ConditionError(f"expected {expected} but found {found} in {self.text!r}")

    def peek_word(self) -> str | None:
        if self.i < len(self.tokens) and self.tokens[self.i][0] == "word":
            return self.tokens[self.i][1].lower()
        return None

    def take(self, kind: str, expected: str) -> str:
        if self.i >= len(self.tokens) or self.tokens[self.i][0] != kind:
            raise self.fail(expected)
        value = self.tokens[self.i][1]
        self.i += 1
        return value

    def expr(self) -> Condition:
        parts = [self.and_expr()]
        while self.peek_word() == "or":
            self.i += 1
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_expr(self) -> Condition:
        parts = [self.atom()]
        while self.peek_word() == "and":
            self.i += 1
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def at(self, value: str) -> bool:
        return self.i < len(self.tokens) and self.tokens[self.i][1] == value

    def atom(self) -> Condition:
        if self.at("("):
            self.i += 1
            inner = self.expr()
            if not self.at(")"):
                raise self.fail("')'")
            self.i += 1
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        name = self.take("word", "a signal name").lower()
        if name in {"and", "or"}:
            self.i -= 1
            raise self.fail("a signal name")
        if name not in SIGNALS:
            raise ConditionError(
                f"unknown signal {name!r} in {self.text!r}; known signals: {', '.join(SIGNALS)}"
            )
        op = self.take("op", "a comparison operator (< <= > >= == !=)")
        raw = self.take("number", f"a number after '{name} {op}'")
        value = float(raw)
        if not math.isfinite(value):
            raise ConditionError(f"{name}: threshold {raw!r} is not a finite number")
        spec = SIGNALS[name]
        if not spec.minimum <= value <= spec.maximum:
            upper = "" if math.isinf(spec.maximum) else f" and <= {_fmt(spec.maximum)}"
            raise ConditionError(
                f"{name}: threshold {_fmt(value)} is out of range; {name} is >= "
                f"{_fmt(spec.minimum)}{upper}"
            )
        return Comparison(name, op, value)


def parse_condition(text: str) -> Condition:
    """Parse ``text`` into a condition tree or raise :class:`ConditionError`."""
    if not isinstance(text, str):
        raise ConditionError(f"a condition must be a string, got {type(text).__name__}")
    if len(text) > _MAX_LENGTH:
        raise ConditionError(
            f"condition is {len(text)} characters long; the limit is {_MAX_LENGTH}"
        )
    if not text.strip():
        raise ConditionError("condition is empty; expected '<signal> <op> <number>'")
    parser = _Parser(text)
    tree = parser.expr()
    if parser.i != len(parser.tokens):
        raise parser.fail("'and', 'or' or the end of the condition")
    return tree
