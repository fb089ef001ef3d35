from __future__ import annotations

import builtins
import math
import operator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrain.conditions import (
    SIGNALS,
    And,
    Comparison,
    ConditionError,
    Or,
    parse_condition,
)

OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
CLEAR_MESSAGE_WORDS = (
    "expected",
    "unknown signal",
    "unexpected character",
    "out of range",
    "empty",
    "limit",
    "finite",
)


def _threshold(signal: str) -> st.SearchStrategy[float]:
    spec = SIGNALS[signal]
    hi = 1.0 if spec.maximum == 1.0 else 1e6
    values = st.integers(0, int(hi)) if spec.integer or hi > 1 else st.floats(0, 1)
    return values.map(lambda v: round(float(v), 4))


@st.composite
def comparisons(draw: st.DrawFn) -> tuple[str, str, str, float]:
    signal = draw(st.sampled_from(sorted(SIGNALS)))
    op = draw(st.sampled_from(sorted(OPS)))
    value = draw(_threshold(signal))
    return f"{signal} {op} {value:g}", signal, op, value


@st.composite
def expressions(draw: st.DrawFn) -> tuple[str, list[list[tuple[str, str, float]]]]:
    """A condition in disjunctive form and its structure for a reference evaluation."""
    groups = draw(st.lists(st.lists(comparisons(), min_size=1, max_size=3), min_size=1, max_size=3))
    text = " or ".join(" and ".join(c[0] for c in group) for group in groups)
    return text, [[c[1:] for c in group] for group in groups]


def _reference(structure: list[list[tuple[str, str, float]]], values: dict[str, float]) -> bool:
    return any(all(OPS[op](values[s], v) for s, op, v in group) for group in structure)


class TestParseCondition:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                "accuracy < 0.85", Comparison("accuracy", "<", 0.85), id="seed performance rule"
            ),
            pytest.param(
                "days_since_training > 7",
                Comparison("days_since_training", ">", 7),
                id="seed schedule rule",
            ),
            pytest.param(
                "new_samples > 10000", Comparison("new_samples", ">", 10000), id="seed volume rule"
            ),
            pytest.param(
                "drift_count > 5", Comparison("drift_count", ">", 5), id="seed drift rule"
            ),
            pytest.param(
                "ACCURACY<=0.9",
                Comparison("accuracy", "<=", 0.9),
                id="signal names are case insensitive and spaces optional",
            ),
            pytest.param(
                "drift_share >= 1e-1",
                Comparison("drift_share", ">=", 0.1),
                id="scientific notation",
            ),
        ],
    )
    def test_parses_single_comparison(self, text: str, expected: Comparison) -> None:
        assert parse_condition(text) == expected

    def test_and_binds_tighter_than_or(self) -> None:
        tree = parse_condition("accuracy < 0.8 or drift_count > 2 and new_samples > 100")
        assert isinstance(tree, Or)
        assert isinstance(tree.parts[1], And)

    def test_parentheses_override_precedence(self) -> None:
        tree = parse_condition("(accuracy < 0.8 or drift_count > 2) and new_samples > 100")
        assert isinstance(tree, And)
        assert isinstance(tree.parts[0], Or)

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            pytest.param(
                "__import__('os').system('true')",
                "unexpected character",
                id="python import injection",
            ),
            pytest.param(
                "accuracy < 0.85; import os", "unexpected character", id="statement injection"
            ),
            pytest.param(
                "accuracy < eval('1')", "unexpected character", id="eval call as a threshold"
            ),
            pytest.param("accuracy < eval", "expected a number", id="a name as a threshold"),
            pytest.param("acuracy < 0.85", "unknown signal 'acuracy'", id="misspelled signal"),
            pytest.param("accuracy =< 0.85", "unexpected character", id="reversed operator"),
            pytest.param("accuracy = 0.85", "unexpected character", id="single equals"),
            pytest.param("accuracy < ", "expected a number", id="missing threshold"),
            pytest.param("< 0.85", "expected a signal name", id="missing signal"),
            pytest.param("accuracy < 0.85 and", "expected a signal name", id="dangling and"),
            pytest.param(
                "accuracy < 0.85 or or drift_count > 1", "expected a signal name", id="doubled or"
            ),
            pytest.param("(accuracy < 0.85", "expected ')'", id="unclosed parenthesis"),
            pytest.param("accuracy < 0.85)", "expected 'and', 'or'", id="stray parenthesis"),
            pytest.param("accuracy < 1.5", "out of range", id="accuracy above one"),
            pytest.param("new_samples > -5", "out of range", id="negative sample count"),
            pytest.param("accuracy < 0.85 0.9", "expected 'and', 'or'", id="two numbers"),
            pytest.param("", "empty", id="empty string"),
            pytest.param("accuracy < 0.8.5", "unexpected character", id="malformed number"),
            pytest.param("accuracy < 1e999", "finite", id="infinite threshold"),
            pytest.param("x" * 600, "limit", id="overlong input"),
        ],
    )
    def test_rejects_outside_grammar_with_clear_message(self, text: str, fragment: str) -> None:
        with pytest.raises(ConditionError, match=None) as info:
            parse_condition(text)
        assert fragment in str(info.value)

    def test_non_string_is_rejected(self) -> None:
        with pytest.raises(ConditionError, match="must be a string"):
            parse_condition(0.85)  # type: ignore[arg-type]


class TestEvaluate:
    @pytest.mark.parametrize(
        ("text", "values", "expected"),
        [
            pytest.param("accuracy < 0.85", {"accuracy": 0.81}, True, id="below threshold fires"),
            pytest.param("accuracy < 0.85", {"accuracy": 0.85}, False, id="at threshold holds"),
            pytest.param("accuracy < 0.85", {}, None, id="missing signal is unknown"),
            pytest.param("accuracy < 0.85", {"accuracy": math.nan}, None, id="nan is unknown"),
            pytest.param(
                "accuracy < 0.85 and drift_count > 1",
                {"accuracy": 0.9},
                False,
                id="and with one false part is false even if another is unknown",
            ),
            pytest.param(
                "accuracy < 0.85 and drift_count > 1",
                {"accuracy": 0.8},
                None,
                id="and with true and unknown is unknown",
            ),
            pytest.param(
                "accuracy < 0.85 or drift_count > 1",
                {"drift_count": 3},
                True,
                id="or with one true part is true even if another is unknown",
            ),
            pytest.param(
                "accuracy < 0.85 or drift_count > 1",
                {"drift_count": 0},
                None,
                id="or with false and unknown is unknown",
            ),
        ],
    )
    def test_three_valued_logic(self, text: str, values: dict[str, float], expected: Any) -> None:
        assert parse_condition(text).evaluate(values) is expected

    def test_explain_shows_observed_values(self) -> None:
        condition = parse_condition("accuracy < 0.85 or drift_count > 5")
        assert condition.explain({"accuracy": 0.81, "drift_count": 1}) == "accuracy 0.81 < 0.85"


class TestProperties:
    @settings(max_examples=300, deadline=None)
    @given(expressions(), st.data())
    def test_valid_expressions_parse_and_match_reference_evaluation(
        self, expr: tuple[str, list[list[tuple[str, str, float]]]], data: st.DataObject
    ) -> None:
        text, structure = expr
        values = {s: data.draw(_threshold(s)) for s in SIGNALS}
        tree = parse_condition(text)
        assert tree.evaluate(values) is _reference(structure, values)
        # the canonical form parses to the same tree
        assert parse_condition(str(tree)) == tree

    @settings(max_examples=500, deadline=None)
    @given(
        st.text(
            alphabet=st.sampled_from(
                list("abcdefghijklmnopqrstuvwxyz_()'\".;:=<>!+-*/0123456789 ,[]{}\\$#@`\n")
            ),
            max_size=80,
        )
        | st.sampled_from(
            [
                "__import__('os').system('touch /tmp/pwned')",
                "open('/etc/passwd').read()",
                "exec('x=1')",
                "accuracy < (lambda: 1)()",
                "accuracy.__class__",
                "${HOME}",
            ]
        )
    )
    def test_arbitrary_input_never_executes_and_errors_clearly(self, text: str) -> None:
        def forbidden(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the parser must never execute input")

        names = ("eval", "exec", "compile", "__import__", "open")
        saved = {name: getattr(builtins, name) for name in names}
        for name in names:
            setattr(builtins, name, forbidden)
        try:
            tree = parse_condition(text)
            error: ConditionError | None = None
        except ConditionError as exc:
            error = exc
        finally:
            for name, value in saved.items():
                setattr(builtins, name, value)
        if error is None:
            assert tree.signals <= set(SIGNALS)
        else:
            assert any(word in str(error) for word in CLEAR_MESSAGE_WORDS), str(error)
