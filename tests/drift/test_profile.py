"""Tests of retrain.drift.profile: the reference profile's contents and JSON form, building it from
data, inferring feature kinds, loading a reference, and reference data that cannot be profiled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from benchmarks.drift_data import CATEGORICAL, NUMERIC
from retrain.drift import (
    FORMAT_VERSION,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    build_profile,
    check_drift,
    infer_feature_kinds,
    load_reference,
)
from retrain.errors import DataError
from tests.drift.helpers import SETTINGS, benchmark, frame_profile, normal


class TestReferenceProfile:
    def test_round_trips_through_json(self, tmp_path: Path) -> None:
        _, _, _, profile = benchmark(10_000)
        text = json.dumps(profile.to_dict(), allow_nan=False)
        again = ReferenceProfile.from_dict(json.loads(text))
        assert again == profile
        path = profile.save(tmp_path / "deep" / "profile.json")
        assert ReferenceProfile.load(path) == profile

    def test_is_small(self) -> None:
        _, _, _, profile = benchmark(100_000)
        assert len(profile.to_json()) < 150_000
        assert profile.to_dict()["format_version"] == FORMAT_VERSION

    def test_checking_a_loaded_profile_gives_the_same_report(self, tmp_path: Path) -> None:
        _, cur, _, profile = benchmark(10_000)
        loaded = ReferenceProfile.load(profile.save(tmp_path / "p.json"))
        a = check_drift(profile, cur, settings=SETTINGS).to_dict()
        b = check_drift(loaded, cur, settings=SETTINGS).to_dict()
        assert a["features"] == b["features"]

    @pytest.mark.parametrize(
        ("mutate", "message"),
        [
            pytest.param(lambda d: d.update(format_version=99), "format_version 99",
                         id="an unknown format version is refused"),
            pytest.param(lambda d: d["features"]["num_same_normal"].update(counts=[1, 2]),
                         "features.num_same_normal", id="malformed counts name the feature"),
            pytest.param(lambda d: d["features"]["cat_same_three"].update(kind="text"),
                         "unknown kind 'text'", id="an unknown feature kind is refused"),
            pytest.param(lambda d: d.pop("n_rows"), "n_rows", id="a missing key is named"),
        ],
    )  # fmt: skip
    def test_malformed_profiles_raise_data_error(self, mutate: Any, message: str) -> None:
        _, _, _, profile = benchmark(10_000)
        data = json.loads(profile.to_json())
        mutate(data)
        with pytest.raises(DataError, match=message):
            ReferenceProfile.from_dict(data)

    def test_loading_a_file_that_is_not_a_profile_raises_data_error(self, tmp_path: Path) -> None:
        path = tmp_path / "p.json"
        path.write_text("not json")
        with pytest.raises(DataError, match="not a profile JSON"):
            ReferenceProfile.load(path)
        with pytest.raises(DataError, match="file not found"):
            ReferenceProfile.load(tmp_path / "missing.json")

    def test_numeric_profile_holds_quantile_edges_and_counts(self) -> None:
        values = np.arange(1, 1001, dtype=np.float64)
        profile = frame_profile(pd.DataFrame({"x": values}))
        p = profile.features["x"]
        assert isinstance(p, NumericProfile)
        assert sum(p.counts) == 1000
        assert (p.min, p.max, p.mean) == (1.0, 1000.0, pytest.approx(500.5))
        assert p.integer_valued
        # decile edges at 100, 200, ..., 900 plus the range bounds
        assert [e for e in p.coarse_edges if 1 < e < 1000] == [100.0 * k for k in range(1, 10)]
        assert set(p.coarse_edges) <= set(p.edges)

    def test_categorical_profile_counts_every_category(self) -> None:
        frame = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] + [None]})
        p = frame_profile(frame).features["c"]
        assert isinstance(p, CategoricalProfile)
        assert (p.categories, p.counts) == (("a", "b", "c", "d"), (5, 3, 2, 1))
        assert (p.other_count, p.n_levels, p.n_missing, p.n) == (0, 4, 1, 12)
        assert not p.truncated

    def test_too_many_categories_are_chosen_and_counted_on_different_rows(self) -> None:
        # rows 0..11: a a a a a b b b c c d None; even rows choose (a: 3, then b by name among
        # b, c, d with 1 each), odd rows count (a: 2, b: 2, other: c)
        frame = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] + [None]})
        p = frame_profile(frame, max_categories=2).features["c"]
        assert isinstance(p, CategoricalProfile)
        assert (p.categories, p.counts, p.other_count) == (("a", "b"), (2, 2), 1)
        assert (p.n_levels, p.n_missing, p.n) == (4, 1, 12)
        assert p.truncated

    def test_build_takes_a_pyarrow_table(self) -> None:
        ref, _, _, profile = benchmark(10_000)
        table = pa.Table.from_pandas(ref, preserve_index=False)
        again = build_profile(table, numeric=NUMERIC, categorical=CATEGORICAL, settings=SETTINGS)

        def without_dtype(p: ReferenceProfile) -> dict[str, Any]:
            return {k: {**v, "dtype": None} for k, v in p.to_dict()["features"].items()}

        assert without_dtype(again) == without_dtype(profile)


class TestInferFeatureKinds:
    def test_infers_kinds_from_dtypes(self) -> None:
        frame = pd.DataFrame(
            {
                "i": [1, 2],
                "f": [0.5, 1.5],
                "s": ["a", "b"],
                "b": [True, False],
                "c": pd.Categorical(["x", "y"]),
                "t": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            }
        )
        assert infer_feature_kinds(frame) == (["i", "f"], ["s", "b", "c"])


class TestLoadReference:
    def test_load_reference_accepts_data_or_a_saved_profile(self, tmp_path: Path) -> None:
        ref, _, _, profile = benchmark(10_000)
        path = profile.save(tmp_path / "p.json")
        assert load_reference(path, settings=SETTINGS) == profile
        with pytest.raises(DataError, match="nope: not in the reference profile"):
            load_reference(path, numeric=["nope"], settings=SETTINGS)
        with pytest.raises(DataError, match="profiled as numeric, configured as categorical"):
            load_reference(path, categorical=["num_same_normal"], settings=SETTINGS)
        built = load_reference(ref, numeric=["num_same_normal"], categorical=[], settings=SETTINGS)
        assert list(built.features) == ["num_same_normal"]


class TestBadReference:
    """Reference data that cannot be profiled raises a DataError naming the column."""

    def test_a_column_missing_from_reference_data_names_the_column(self) -> None:
        with pytest.raises(DataError, match="nope: column not found in the reference data"):
            build_profile(normal(100), numeric=["x", "nope"], categorical=[], settings=SETTINGS)

    def test_wrongly_typed_reference_columns_raise(self) -> None:
        frame = pd.DataFrame({"s": ["a", "b"], "t": pd.to_datetime(["2024-01-01"] * 2)})
        with pytest.raises(DataError, match="s: numeric feature has dtype str"):
            build_profile(frame, numeric=["s"], categorical=[], settings=SETTINGS)
        with pytest.raises(DataError, match="t: categorical feature has unsupported dtype"):
            build_profile(frame, numeric=[], categorical=["t"], settings=SETTINGS)

    def test_empty_reference_data_raises(self) -> None:
        with pytest.raises(DataError, match="reference data has no rows"):
            frame_profile(normal(0))

    def test_a_feature_listed_twice_raises(self) -> None:
        with pytest.raises(DataError, match="x: listed as both numeric and categorical"):
            build_profile(normal(10), numeric=["x"], categorical=["x"], settings=SETTINGS)
