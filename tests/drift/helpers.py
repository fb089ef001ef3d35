"""Shared builders for the drift tests: the benchmark data set and profile, quick checks."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.drift_data import CATEGORICAL, NUMERIC, make_drift_data
from retrain.config import DriftSettings
from retrain.drift import (
    DriftReport,
    ReferenceProfile,
    build_profile,
    check_drift,
    infer_feature_kinds,
)

SETTINGS = DriftSettings()
ALARM = {"medium", "high"}


@cache
def benchmark(n: int) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str], ReferenceProfile]:
    ref, cur, expected = make_drift_data(n)
    profile = build_profile(ref, numeric=NUMERIC, categorical=CATEGORICAL, settings=SETTINGS)
    return ref, cur, expected, profile


def frame_profile(frame: pd.DataFrame, **settings: Any) -> ReferenceProfile:
    numeric, categorical = infer_feature_kinds(frame)
    return build_profile(
        frame, numeric=numeric, categorical=categorical, settings=DriftSettings(**settings)
    )


def check(reference: pd.DataFrame, current: Any, **settings: Any) -> DriftReport:
    profile = frame_profile(reference, **settings)
    return check_drift(profile, current, settings=DriftSettings(**settings))


def normal(n: int, shift: float = 0.0, scale: float = 1.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(shift, scale, n)})
