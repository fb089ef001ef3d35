"""retrain.redact: secrets are masked in any text, and ordinary text is left alone."""

from __future__ import annotations

import pytest

from retrain.redact import MASK, redact, register_secret


class TestRedact:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                "http://bob:hunter2@mlflow:5000/api",
                f"http://bob:{MASK}@mlflow:5000/api",
                id="a URL password",
            ),
            pytest.param(
                "postgresql+psycopg2://u:p%40ss@db:5432/x is unreachable",
                f"postgresql+psycopg2://u:{MASK}@db:5432/x is unreachable",
                id="an escaped password in a SQLAlchemy URL",
            ),
            pytest.param(
                "https://hooks.example/x?token=abc123&channel=ml",
                f"https://hooks.example/x?token={MASK}&channel=ml",
                id="a secret query parameter, not the others",
            ),
            pytest.param(
                "http://mlflow:5000 and user@example.com",
                "http://mlflow:5000 and user@example.com",
                id="text without secrets is unchanged",
            ),
        ],
    )
    def test_masks_what_is_secret(self, text: str, expected: str) -> None:
        assert redact(text) == expected

    def test_a_registered_value_is_masked_everywhere(self) -> None:
        register_secret("value-of-a-secret-variable")
        assert redact("bad: value-of-a-secret-variable!") == f"bad: {MASK}!"

    def test_short_values_are_not_registered(self) -> None:
        register_secret("abc")
        assert redact("abc abc") == "abc abc"
