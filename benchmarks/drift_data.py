"""Synthetic drift benchmark: 20 numeric + 5 categorical features, reference vs current.

* 5 real drifts (must be ``medium`` or ``high``): a 0.25-sd mean shift, a 1.3x scale change,
  sd 1 -> 1.5, Poisson 20 -> 23, reshuffled category shares.
* 5 tiny, practically irrelevant shifts (must be at most ``low``): a 0.01-sd mean shift, a 1%
  scale change, 0.2% more missing values, 0.1% of rows in unseen categories, category shares
  moved by half a percentage point.
* 15 identical distributions (independent samples; at most ``low``), two of them with 5% NaN on
  both sides, including heavy tails, discrete, binary and long-tailed categorical features.

``make_drift_data(n)`` returns ``(reference, current, expected)`` DataFrames with
``expected[name]`` one of ``"drift"``, ``"tiny"``, ``"identical"``; ``make_drift_table(n,
current=..., seed=...)`` builds one side as a pyarrow Table (for writing big files in chunks).
Importable by tests; ``python benchmarks/drift_data.py N DIR`` writes ``DIR/reference.parquet``
and ``DIR/current.parquet``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

Gen = np.random.Generator
Maker = Callable[[Gen, int, bool], "np.ndarray | Categories"]

EXPECTED: dict[str, str] = {}
_NUMERIC: dict[str, Maker] = {}
_CATEGORICAL: dict[str, Maker] = {}


def _numeric(name: str, expected: str) -> Callable[[Maker], Maker]:
    def register(fn: Maker) -> Maker:
        _NUMERIC[name] = fn
        EXPECTED[name] = expected
        return fn

    return register


def _categorical(name: str, expected: str) -> Callable[[Maker], Maker]:
    def register(fn: Maker) -> Maker:
        _CATEGORICAL[name] = fn
        EXPECTED[name] = expected
        return fn

    return register


def _with_nan(values: np.ndarray, rng: Gen, rate: float) -> np.ndarray:
    values = values.astype(np.float64)
    values[rng.random(len(values)) < rate] = np.nan
    return values


class Categories:
    """Category codes plus labels: turned into a string column without per-row Python objects."""

    def __init__(self, codes: np.ndarray, labels: list[str]) -> None:
        self.codes, self.labels = codes, labels

    def to_arrow(self) -> pa.Array:
        dictionary = pa.array(self.labels, pa.large_string())
        indices = pa.array(self.codes.astype(np.int32))
        return pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.large_string())


def _choice(rng: Gen, n: int, labels: list[str], shares: list[float]) -> Categories:
    p = np.asarray(shares, dtype=np.float64)
    return Categories(rng.choice(len(labels), size=n, p=p / p.sum()), list(labels))


# --- real drifts ----------------------------------------------------------------------------------


@_numeric("num_mean_shift_0_25sd", "drift")
def _mean_shift(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return rng.normal(50 + (2.5 if cur else 0.0), 10, n)


@_numeric("num_scale_1_3x", "drift")
def _scale(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return rng.gamma(4.0, 250.0, n) * (1.3 if cur else 1.0)


@_numeric("num_sd_1_to_1_5", "drift")
def _sd(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return rng.normal(0, 1.5 if cur else 1.0, n)


@_numeric("num_poisson_20_to_23", "drift")
def _poisson(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return rng.poisson(23 if cur else 20, n).astype(np.int64)


@_categorical("cat_reshuffled_shares", "drift")
def _reshuffled(rng: Gen, n: int, cur: bool) -> Categories:
    shares = [0.40, 0.25, 0.15, 0.12, 0.08]
    if cur:
        shares = [0.12, 0.40, 0.08, 0.25, 0.15]
    return _choice(rng, n, ["basic", "standard", "plus", "premium", "enterprise"], shares)


# --- tiny, irrelevant shifts ----------------------------------------------------------------------


@_numeric("num_tiny_mean_shift_0_01sd", "tiny")
def _tiny_shift(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return rng.normal(100 + (0.15 if cur else 0.0), 15, n)


@_numeric("num_tiny_scale_1pct", "tiny")
def _tiny_scale(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return rng.lognormal(0.0, 0.5, n) * (1.01 if cur else 1.0)


@_numeric("num_tiny_missing_0_2pct", "tiny")
def _tiny_missing(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return _with_nan(rng.normal(0, 1, n), rng, 0.002 if cur else 0.0)


@_categorical("cat_tiny_unseen_0_1pct", "tiny")
def _tiny_unseen(rng: Gen, n: int, cur: bool) -> Categories:
    labels = [f"region_{i}" for i in range(8)] + ["region_new_a", "region_new_b"]
    shares = [0.2, 0.18, 0.15, 0.13, 0.12, 0.1, 0.07, 0.05]
    values = _choice(rng, n, labels[:8], shares)
    if cur:
        new = rng.random(n) < 0.001
        values.codes[new] = 8 + rng.integers(0, 2, int(new.sum()))
    return Categories(values.codes, labels)


@_categorical("cat_tiny_share_0_5pp", "tiny")
def _tiny_share(rng: Gen, n: int, cur: bool) -> Categories:
    shares = [0.505, 0.3, 0.195] if cur else [0.5, 0.3, 0.2]
    return _choice(rng, n, ["card", "transfer", "cash"], shares)


# --- identical distributions ----------------------------------------------------------------------


@_numeric("num_same_normal", "identical")
def _same_normal(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return rng.normal(0, 1, n)


@_numeric("num_same_normal_5pct_nan", "identical")
def _same_normal_nan(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return _with_nan(rng.normal(10, 3, n), rng, 0.05)


@_numeric("num_same_exponential_5pct_nan", "identical")
def _same_exp_nan(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return _with_nan(rng.exponential(2.0, n), rng, 0.05)


@_numeric("num_same_uniform", "identical")
def _same_uniform(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return rng.uniform(-1, 1, n)


@_numeric("num_same_lognormal", "identical")
def _same_lognormal(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return rng.lognormal(3.0, 1.0, n)


@_numeric("num_same_student_t3", "identical")
def _same_t(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return rng.standard_t(3, n)


@_numeric("num_same_poisson_3", "identical")
def _same_poisson(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return rng.poisson(3, n).astype(np.int64)


@_numeric("num_same_binary", "identical")
def _same_binary(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return (rng.random(n) < 0.3).astype(np.int64)


@_numeric("num_same_integer_0_9", "identical")
def _same_int(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return rng.integers(0, 10, n)


@_numeric("num_same_beta", "identical")
def _same_beta(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return rng.beta(2.0, 5.0, n)


@_numeric("num_same_bimodal", "identical")
def _same_bimodal(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return np.where(rng.random(n) < 0.4, rng.normal(-2, 0.5, n), rng.normal(3, 1.0, n))


@_numeric("num_same_zero_inflated", "identical")
def _same_zero_inflated(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return np.where(rng.random(n) < 0.6, 0.0, rng.gamma(2.0, 30.0, n))


@_numeric("num_same_large_values", "identical")
def _same_large(rng: Gen, n: int, cur: bool) -> np.ndarray:
    return rng.normal(1.7e9, 5e6, n)


@_categorical("cat_same_three", "identical")
def _same_three(rng: Gen, n: int, cur: bool) -> Categories:
    return _choice(rng, n, ["monthly", "yearly", "two_year"], [0.55, 0.25, 0.2])


@_categorical("cat_same_long_tail_50", "identical")
def _same_long_tail(rng: Gen, n: int, cur: bool) -> Categories:
    shares = 1.0 / np.arange(1, 51) ** 1.1
    return _choice(rng, n, [f"city_{i:02d}" for i in range(50)], list(shares))


NUMERIC: list[str] = list(_NUMERIC)
CATEGORICAL: list[str] = list(_CATEGORICAL)


def make_drift_table(n_rows: int, *, current: bool, seed: int = 0) -> pa.Table:
    """One side of the benchmark as a pyarrow Table (numeric columns, string categories)."""
    rng = np.random.default_rng([seed, 2 if current else 1])
    columns: dict[str, pa.Array] = {}
    for name, fn in _NUMERIC.items():
        values = fn(rng, n_rows, current)
        assert isinstance(values, np.ndarray)
        columns[name] = pa.array(values)
    for name, fn in _CATEGORICAL.items():
        categories = fn(rng, n_rows, current)
        assert isinstance(categories, Categories)
        columns[name] = categories.to_arrow()
    return pa.table(columns)


def make_drift_data(
    n_rows: int, *, n_cur: int | None = None, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Reference and current frames (independent samples) and the expected verdict per feature.

    NaN stays NaN in numeric columns; categorical columns are pandas ``str`` columns.
    """
    ref = make_drift_table(n_rows, current=False, seed=seed)
    cur = make_drift_table(n_cur or n_rows, current=True, seed=seed)
    return _to_pandas(ref), _to_pandas(cur), dict(EXPECTED)


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    frame: pd.DataFrame = table.to_pandas()  # float64/int64 columns and pandas str categories
    return frame


def main(argv: list[str]) -> int:
    n = int(argv[1]) if len(argv) > 1 else 100_000
    out = Path(argv[2]) if len(argv) > 2 else Path("drift-data")
    out.mkdir(parents=True, exist_ok=True)
    ref, cur, _ = make_drift_data(n)
    ref.to_parquet(out / "reference.parquet", index=False)
    cur.to_parquet(out / "current.parquet", index=False)
    print(f"wrote {out}/reference.parquet and {out}/current.parquet ({n:,} rows each)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
