from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain.errors import DataError
from retrain.validate import check_frame, validate
from tests.helpers import churn_config
from tools.synthetic import StreamSpec, generate_week

CONFIG = churn_config(Path("/unused"))
FRAME = generate_week(StreamSpec(rows_per_week=1000, drift_week=None), 0)


def broken(**changes: object) -> pd.DataFrame:
    frame = FRAME.copy()
    for column, value in changes.items():
        if value is None:
            frame = frame.drop(columns=[column])
        else:
            frame[column] = value
    return frame


class TestValidate:
    def test_clean_data_passes(self) -> None:
        report = validate(CONFIG, FRAME)
        assert report.ok and report.rows == 1000
        assert report.problems == []

    @pytest.mark.parametrize(
        ("frame", "fragment"),
        [
            pytest.param(
                broken(tenure=None),
                "column 'tenure': required but missing",
                id="missing feature column",
            ),
            pytest.param(
                broken(churned=None),
                "column 'churned': required but missing",
                id="missing label column",
            ),
            pytest.param(broken(churned=0), "label 'churned': only one class", id="a single class"),
            pytest.param(
                broken(churned=np.where(np.arange(1000) < 3, np.nan, FRAME["churned"])),
                "label 'churned': 3 missing values",
                id="NaN labels",
            ),
            pytest.param(
                broken(churned=np.linspace(0, 1, 1000)),
                "expected class labels, found continuous",
                id="continuous label",
            ),
            pytest.param(
                broken(monthly_charges="cheap"),
                "column 'monthly_charges': expected numeric",
                id="text in a numeric column",
            ),
            pytest.param(
                broken(tenure=np.where(np.arange(1000) < 2, np.inf, FRAME["tenure"])),
                "column 'tenure': 2 infinite values",
                id="infinite values",
            ),
            pytest.param(
                broken(tenure=np.where(np.arange(1000) < 300, np.nan, FRAME["tenure"])),
                "column 'tenure': 300 missing values (30.0%) exceed",
                id="too many NaN",
            ),
            pytest.param(
                FRAME.iloc[:50], "rows: 50 rows; at least 200 required", id="too few rows"
            ),
            pytest.param(FRAME.iloc[:0], "rows: no rows in the training window", id="empty window"),
            pytest.param(
                pd.concat([FRAME, FRAME.iloc[:200]]), "200 duplicate rows", id="duplicated rows"
            ),
            pytest.param(
                broken(contract=np.linspace(0, 1, 1000)),
                "column 'contract': expected categorical",
                id="float in a categorical column",
            ),
        ],
    )
    def test_problem_is_named(self, frame: pd.DataFrame, fragment: str) -> None:
        with pytest.raises(DataError) as info:
            validate(CONFIG, frame, source="week 0")
        assert any(fragment in p for p in info.value.problems), info.value.problems
        assert str(info.value).startswith("week 0: ")

    def test_all_problems_reported_at_once(self) -> None:
        frame = broken(tenure=None, churned=0, monthly_charges="x")
        report = check_frame(CONFIG, frame)
        assert len(report.problems) == 3

    def test_forbidden_missing_values(self) -> None:
        config = churn_config(Path("/u"), data={"validation": {"missing": {"tenure": "forbid"}}})
        frame = broken(tenure=np.where(np.arange(1000) < 1, np.nan, FRAME["tenure"]))
        report = check_frame(config, frame)
        assert report.problems == ["column 'tenure': 1 missing values; policy forbids any"]

    def test_allowed_categories(self) -> None:
        config = churn_config(
            Path("/u"),
            data={
                "validation": {"allowed_categories": {"contract": ["month-to-month", "one-year"]}}
            },
        )
        report = check_frame(config, FRAME)
        assert len(report.problems) == 1
        assert "categories outside the allowed list: 'two-year'" in report.problems[0]

    @pytest.mark.parametrize(
        ("policy", "blocking"),
        [
            pytest.param("warn", False, id="unseen categories warn by default"),
            pytest.param("error", True, id="unseen categories can block"),
        ],
    )
    def test_unseen_categories_against_reference(self, policy: str, blocking: bool) -> None:
        config = churn_config(Path("/u"), data={"validation": {"unseen_categories": policy}})
        known = {"internet_service": ["dsl", "fiber"]}
        report = check_frame(config, FRAME, known_categories=known)
        messages = report.problems if blocking else report.warnings
        assert any("never saw: 'none'" in m for m in messages)
        assert report.ok is not blocking


class TestDuplicateRowsFromExtractHashes:
    """The extract's row hashes stand in for hashing again, with the same verdict."""

    DUPED = pd.concat([FRAME, FRAME.iloc[:200]], ignore_index=True)

    def test_same_count_with_the_extract_hashes(self) -> None:
        from retrain.data import row_hashes

        hashes = (sorted(self.DUPED.columns), row_hashes(self.DUPED))
        with_hashes = check_frame(CONFIG, self.DUPED, row_hashes=hashes)
        without = check_frame(CONFIG, self.DUPED)
        assert with_hashes.problems == without.problems
        assert any("200 duplicate rows" in p for p in with_hashes.problems)

    def test_hashes_of_other_columns_or_rows_are_not_used(self) -> None:
        from retrain.data import row_hashes

        wrong_columns = (["tenure"], row_hashes(self.DUPED[["tenure"]]))
        wrong_rows = (sorted(FRAME.columns), row_hashes(FRAME))
        for hashes in (wrong_columns, wrong_rows):
            report = check_frame(CONFIG, self.DUPED, row_hashes=hashes)
            assert any("200 duplicate rows" in p for p in report.problems)
        unique = np.arange(len(self.DUPED), dtype=np.uint64)  # "no duplicates", but not believed
        report = check_frame(CONFIG, self.DUPED, row_hashes=(["tenure"], unique))
        assert any("200 duplicate rows" in p for p in report.problems)


class TestMissingEventTimes:
    def test_rows_without_an_event_time_are_a_problem(self) -> None:
        frame = broken(event_time=FRAME["event_time"].where(np.arange(1000) >= 4))
        report = check_frame(CONFIG, frame)
        assert report.problems == ["column 'event_time': 4 missing event times"]
