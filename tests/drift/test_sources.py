"""Tests of retrain.drift.sources: current data as DataFrame, pyarrow Table, parquet file or
directory, or CSV, streamed in batches, with nullable dtypes; unreadable objects and paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retrain.drift import DriftReport, build_profile, check_drift
from retrain.errors import DataError
from tests.drift.helpers import SETTINGS, benchmark, check, frame_profile, normal


class TestInputs:
    """Current data as DataFrame, pyarrow Table, parquet file, parquet directory or CSV."""

    @staticmethod
    def statistics(report: DriftReport) -> dict[str, dict[str, Any]]:
        """Counts-based statistics exactly; float sums (mean, std) to 1e-12."""
        return {
            f.name: {
                k: pytest.approx(v, rel=1e-12) if k.startswith(("mean", "std")) else v
                for k, v in f.to_dict()["statistics"].items()
            }
            for f in report.features
        }

    def test_every_input_kind_gives_the_same_report(self, tmp_path: Path) -> None:
        _, cur, _, profile = benchmark(10_000)
        expected = self.statistics(check_drift(profile, cur, settings=SETTINGS))
        table = pa.Table.from_pandas(cur, preserve_index=False)
        cur.to_parquet(tmp_path / "cur.parquet")
        parts = tmp_path / "parts"
        parts.mkdir()
        cur.iloc[:4000].to_parquet(parts / "a.parquet")
        cur.iloc[4000:].to_parquet(parts / "b.parquet")
        for current in (table, tmp_path / "cur.parquet", str(parts)):
            got = check_drift(profile, current, settings=SETTINGS, batch_rows=999)
            assert expected == {f.name: f.to_dict()["statistics"] for f in got.features}

    def test_csv_input_matches_up_to_text_rounding(self, tmp_path: Path) -> None:
        _, cur, _, profile = benchmark(10_000)
        cur.to_csv(tmp_path / "cur.csv", index=False)
        expected = check_drift(profile, cur, settings=SETTINGS)
        got = check_drift(profile, tmp_path / "cur.csv", settings=SETTINGS)
        for a, b in zip(expected.features, got.features, strict=True):
            assert a.severity == b.severity
            assert a.statistics["psi"] == pytest.approx(b.statistics["psi"], rel=1e-6, abs=1e-9)

    def test_streaming_batches_count_every_row_once(self, tmp_path: Path) -> None:
        _, cur, _, profile = benchmark(10_000)
        pq.write_table(pa.Table.from_pandas(cur), tmp_path / "c.parquet", row_group_size=3000)
        report = check_drift(profile, tmp_path / "c.parquet", settings=SETTINGS, batch_rows=1234)
        assert report.n_cur == 10_000
        assert all(f.n_cur == 10_000 for f in report.features)
        assert report.feature("num_same_normal_5pct_nan").missing_rate_cur == pytest.approx(
            cur["num_same_normal_5pct_nan"].isna().mean()
        )

    @pytest.mark.parametrize(
        "dtype",
        [
            pytest.param("Int64", id="nullable integers"),
            pytest.param("Float64", id="nullable floats"),
            pytest.param("float32", id="float32"),
            pytest.param("double[pyarrow]", id="pyarrow-backed doubles"),
        ],
    )
    def test_numeric_dtypes_with_missing_values(self, dtype: str) -> None:
        rng = np.random.default_rng(7)
        values = pd.array(rng.integers(0, 50, 5000), dtype="Int64")
        values[::10] = pd.NA
        frame = pd.DataFrame({"x": values.astype(dtype)})
        report = check(frame, frame)
        feature = report.features[0]
        assert feature.kind == "numeric"
        assert feature.severity == "none"
        assert feature.missing_rate_cur == pytest.approx(0.1)
        assert feature.statistics["psi"] == pytest.approx(0.0, abs=1e-12)

    @pytest.mark.parametrize(
        "dtype",
        [
            pytest.param("str", id="pandas strings"),
            pytest.param("object", id="python objects"),
            pytest.param("category", id="pandas categoricals"),
            pytest.param("string[pyarrow]", id="pyarrow strings"),
        ],
    )
    def test_categorical_dtypes_with_missing_values(self, dtype: str) -> None:
        values = pd.Series(["a", "b", None, "c", "a"] * 400, dtype=dtype)
        frame = pd.DataFrame({"c": values})
        report = check(frame, frame)
        feature = report.features[0]
        assert feature.kind == "categorical"
        assert (feature.severity, feature.unseen_share) == ("none", 0.0)
        assert feature.missing_rate_cur == pytest.approx(0.2)


class TestBadSources:
    """Data objects and paths that cannot be read raise a DataError."""

    @pytest.mark.parametrize(
        "data",
        [
            pytest.param(42, id="a number"),
            pytest.param([1, 2], id="a list"),
        ],
    )
    def test_unsupported_data_objects_raise(self, data: Any) -> None:
        with pytest.raises(DataError, match="expected a pandas DataFrame"):
            build_profile(data, numeric=["x"], categorical=[], settings=SETTINGS)

    def test_missing_paths_raise(self, tmp_path: Path) -> None:
        profile = frame_profile(normal(100))
        with pytest.raises(DataError, match="file or directory not found"):
            check_drift(profile, tmp_path / "nope.parquet", settings=SETTINGS)
