"""Tests of retrain.drift.binning: category values are matched against the reference's whatever
their encoding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from retrain.drift import build_profile, check_drift
from tests.drift.helpers import SETTINGS, frame_profile


class TestCategoryCounts:
    def test_dictionary_encoded_and_plain_strings_compare_equal(self) -> None:
        frame = pd.DataFrame({"c": pd.Series(list("aabbbc") * 500, dtype="str")})
        profile = frame_profile(frame)
        table = pa.table({"c": pa.array(list("aabbbc") * 500).dictionary_encode()})
        feature = check_drift(profile, table, settings=SETTINGS).features[0]
        assert feature.statistics["psi"] == pytest.approx(0.0, abs=1e-12)
        assert feature.unseen_share == 0.0

    def test_integer_and_float_category_codes_are_the_same_categories(self) -> None:
        ref = pd.DataFrame({"label": np.tile([0, 1, 2], 1000)})
        cur = pd.DataFrame({"label": np.tile([0.0, 1.0, 2.0, np.nan], 750)})
        profile = build_profile(ref, numeric=[], categorical=["label"], settings=SETTINGS)
        feature = check_drift(profile, cur, settings=SETTINGS).features[0]
        assert feature.status == "ok"
        assert feature.unseen_share == 0.0
        assert feature.missing_rate_cur == pytest.approx(0.25)
