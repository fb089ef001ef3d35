"""The reference generator: one row per config key, spelled, typed and defaulted as in a file."""

from __future__ import annotations

import re

import pytest

from retrain.config import RetrainConfig, reference_markdown, reference_rows

ROWS = {key: (type_, default, meaning) for key, type_, default, meaning in reference_rows()}


class TestRows:
    def test_every_section_has_a_row_and_the_loaded_from_path_none(self) -> None:
        sections = {key for key in ROWS if "." not in key}
        assert sections == set(RetrainConfig.model_fields) - {"source_path"}
        assert len(ROWS) == len(reference_rows()), "every key appears once"

    def test_keys_are_spelled_as_in_the_file(self) -> None:
        assert "model.estimator.class" in ROWS
        assert "model.estimator.class_path" not in ROWS

    def test_each_source_kind_has_its_own_keys(self) -> None:
        assert "data.source (kind: parquet).path" in ROWS
        assert ROWS["data.source (kind: sql).conn_id"][:2] == ("str | null", "null")

    def test_maps_of_sections_are_documented_through_a_placeholder(self) -> None:
        assert ROWS["retraining_rules"][:2] == ("map[name, Rule]", "see below")
        assert "retraining_rules.<name>.condition" in ROWS
        assert "drift.thresholds.<statistic>.high" in ROWS
        assert "drift.features.<name>.thresholds.<statistic>.low" in ROWS

    @pytest.mark.parametrize(
        ("key", "type_", "default"),
        [
            ("model", "section", "required"),
            ("triggers", "section", "(section)"),
            ("model.name", "str", "required"),
            ("model.categorical_encoding", "'onehot' | 'native'", "`onehot`"),
            ("registry.experiment", "str | null", "null"),
            ("cadence.enabled", "bool", "true"),
            ("schedule.retry_delay_minutes", "float (0 <= x <= 1,440)", "10"),
            ("registry.request_timeout_seconds", "float (0 < x <= 300)", "10.0"),
            ("model.random_state", "int (0 <= x <= 4,294,967,295)", "42"),
            ("data.training_window_days", "int | null (1 <= x <= 3,650)", "null"),
            ("drift.thresholds.<statistic>.low", "float (x >= 0)", "required"),
            ("model.estimator.allowed_modules", "list[str]", '["sklearn"]'),
            (
                "evaluation.thresholds",
                "map['accuracy' | 'precision' | 'recall' | 'f1' | 'roc_auc', float]",
                '{"accuracy": 0.85}',
            ),
        ],
    )
    def test_type_and_default(self, key: str, type_: str, default: str) -> None:
        assert ROWS[key][:2] == (type_, default)

    def test_meaning_comes_from_descriptions_and_docstrings(self) -> None:
        assert ROWS["model.target"][2] == "label column"
        assert ROWS["schedule.timezone"][2].startswith("IANA time zone of the cron schedules")
        assert ROWS["data.validation"][2] == "Data contract checked before training."
        assert " / " in ROWS["data.source"][2], "one line per source kind"
        assert "\n" not in ROWS["retraining_rules.<name>.condition"][2]


class TestMarkdown:
    def test_one_table_row_per_key_with_pipes_escaped(self) -> None:
        lines = reference_markdown().splitlines()
        assert lines[:2] == ["| key | type | default | meaning |", "|---|---|---|---|"]
        assert len(lines) == 2 + len(reference_rows())
        assert all(len(re.split(r"(?<!\\)\|", line)) == 6 for line in lines)
        row = next(line for line in lines if line.startswith("| `model.categorical_encoding` |"))
        assert "'onehot' \\| 'native'" in row
