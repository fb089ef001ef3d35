"""Per-feature drift of current data against a compact reference profile.

At training time :func:`build_profile` summarises every feature of the training data in a small,
JSON-serialisable :class:`ReferenceProfile` (counts, missing rate, quantile bin edges and counts
for numeric features, category counts for categorical ones). Monitoring then calls
:func:`check_drift` with current data (a DataFrame, a pyarrow Table, or a parquet file/directory
streamed in record batches) and gets a :class:`DriftReport`; the training data is never re-read.
Each numeric column is binned by sorting 64k-row blocks in cache and searching the reference
edges; categories are matched against the reference's with ``index_in``; columns run in threads.

Statistics per feature (all computed from binned counts):

* numeric: PSI and Jensen-Shannon distance on the ``bins`` reference-quantile bins (plus one bin
  below and one above the reference range), the two-sample KS statistic evaluated at the fine
  grid (about 100 quantile edges plus 100 evenly spaced ones), the 1-Wasserstein distance
  integrated over the fine grid and divided by the reference standard deviation, and a Pearson
  chi-square homogeneity test (2 x k, like ``chi2_contingency`` without continuity correction);
* categorical: PSI, Jensen-Shannon distance and the chi-square homogeneity test over the
  reference categories plus an "unseen" bin, and the share of current rows in unseen categories;
* every feature: the change of the missing rate (two-proportion z-test).

PSI floors each bin share at ``max(1e-4, 0.5 / n)`` so empty bins never divide by zero and, for
``n >= 5000``, the value does not depend on the sample size. Jensen-Shannon uses base 2 (0..1).

Severity, per feature:

1. Effect sizes are graded net of sampling noise: PSI minus its expectation under homogeneity,
   ``(k - 1)(1/n_ref + 1/n_cur)``; JS with the expected JS divergence removed; Wasserstein with
   its expected value between two samples of the reference removed in quadrature; the unseen
   share minus the share that rare categories are expected to miss the reference by chance.
   The raw values are reported in ``statistics``; the graded ones as ``<statistic>_net``.
2. Each net effect size maps to ``none | low | medium | high`` with the cut points of
   ``DriftSettings.thresholds`` (per-feature overrides in ``DriftSettings.features``).
3. A family of statistics counts only if its test is significant at ``alpha`` (distribution:
   Bonferroni of KS and chi-square; missing rate: z-test; unseen share: one-sided z-test against
   chance), so small samples do not raise alarms. Large samples make tiny shifts significant but
   not severe: effect sizes, not p-values, decide the level.
4. The severity is the highest level of the significant families; fewer than ``min_samples``
   rows on either side cap it at ``low``.

Features that cannot be checked (column missing, dtype mismatch) get severity ``unknown`` and a
status naming the problem; other degenerate cases get a status and a message (see
:class:`FeatureDrift`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy import special

from retrain.config import DriftSettings, DriftStatistic, SeverityCuts
from retrain.errors import DataError

__all__ = [
    "FORMAT_VERSION",
    "SEVERITIES",
    "CategoricalProfile",
    "DriftReport",
    "FeatureDrift",
    "NumericProfile",
    "ReferenceProfile",
    "build_profile",
    "check_drift",
    "chi2_homogeneity",
    "infer_feature_kinds",
    "js_distance",
    "load_reference",
    "psi",
]

FORMAT_VERSION = 1
Severity: TypeAlias = Literal["none", "low", "medium", "high"]
FeatureSeverity: TypeAlias = Literal["none", "low", "medium", "high", "unknown"]
Kind: TypeAlias = Literal["numeric", "categorical"]
SEVERITIES: tuple[Severity, ...] = ("none", "low", "medium", "high")
_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}

#: Rows sorted at a time when binning a numeric column (fits in L2 cache; bounds scratch memory).
BLOCK = 65_536
#: Rows per record batch when streaming a parquet file or directory.
BATCH_ROWS = 262_144
#: Smallest bin share used by PSI (also floored at 0.5 / n).
PSI_FLOOR = 1e-4
#: Target number of fine reference-quantile bins (KS, Wasserstein, plots).
FINE_BINS = 100
_FMAX = float(np.finfo(np.float64).max)

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
DataLike: TypeAlias = Any  # pandas DataFrame / Series, pyarrow Table / RecordBatch, str or Path


# --- reference profile ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NumericProfile:
    """Reference summary of one numeric feature.

    ``edges`` are the fine reference-quantile edges (ascending, unique; the first one is just below
    the reference minimum, the last one is the maximum); ``counts`` has ``len(edges) + 1`` bins
    ``(-inf, e0], (e0, e1], ..., (e_last, +inf]`` over non-missing values. ``coarse_edges`` is the
    subset of ``edges`` that bounds the ``bins`` quantile bins used by PSI, JS and chi-square.
    """

    name: str
    n: int
    n_missing: int
    n_neg_inf: int
    n_pos_inf: int
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    coarse_edges: tuple[float, ...]
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    integer_valued: bool
    dtype: str
    kind: Literal["numeric"] = "numeric"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dtype": self.dtype,
            "n": self.n,
            "n_missing": self.n_missing,
            "n_neg_inf": self.n_neg_inf,
            "n_pos_inf": self.n_pos_inf,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "integer_valued": self.integer_valued,
            "edges": list(self.edges),
            "counts": list(self.counts),
            "coarse_edges": list(self.coarse_edges),
        }

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> NumericProfile:
        edges = tuple(float(e) for e in data["edges"])
        counts = tuple(int(c) for c in data["counts"])
        if len(counts) != len(edges) + 1 or list(edges) != sorted(set(edges)):
            raise ValueError("edges must be ascending and unique with len(counts) == len(edges)+1")
        if not set(data["coarse_edges"]) <= set(edges):
            raise ValueError("coarse_edges must be a subset of edges")
        return cls(
            name=name,
            n=int(data["n"]),
            n_missing=int(data["n_missing"]),
            n_neg_inf=int(data["n_neg_inf"]),
            n_pos_inf=int(data["n_pos_inf"]),
            edges=edges,
            counts=counts,
            coarse_edges=tuple(float(e) for e in data["coarse_edges"]),
            mean=_opt_float(data.get("mean")),
            std=_opt_float(data.get("std")),
            min=_opt_float(data.get("min")),
            max=_opt_float(data.get("max")),
            integer_valued=bool(data.get("integer_valued", False)),
            dtype=str(data.get("dtype", "float64")),
        )


@dataclass(frozen=True)
class CategoricalProfile:
    """Reference summary of one categorical feature: the ``max_categories`` most frequent
    categories (as strings) with their counts; rarer ones are pooled in ``other_count``.

    When there are more than ``max_categories`` levels, the kept categories are chosen on every
    other reference row and ``counts``/``other_count`` come from the remaining rows: counting
    them on the rows that selected them would favour categories that were frequent by chance,
    and current data would then seem to drift away from them.
    """

    name: str
    n: int
    n_missing: int
    categories: tuple[str, ...]
    counts: tuple[int, ...]
    other_count: int
    n_levels: int
    value_type: str
    dtype: str
    kind: Literal["categorical"] = "categorical"

    @property
    def truncated(self) -> bool:
        """Whether rare categories were pooled (then unseen categories cannot be told apart)."""
        return self.n_levels > len(self.categories)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dtype": self.dtype,
            "value_type": self.value_type,
            "n": self.n,
            "n_missing": self.n_missing,
            "n_levels": self.n_levels,
            "other_count": self.other_count,
            "categories": list(self.categories),
            "counts": list(self.counts),
        }

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> CategoricalProfile:
        categories = tuple(str(c) for c in data["categories"])
        counts = tuple(int(c) for c in data["counts"])
        if len(categories) != len(counts) or len(set(categories)) != len(categories):
            raise ValueError("categories must be unique and match counts")
        n_levels = int(data.get("n_levels", len(categories)))
        return cls(
            name=name,
            n=int(data["n"]),
            n_missing=int(data["n_missing"]),
            categories=categories,
            counts=counts,
            other_count=int(data.get("other_count", 0)),
            n_levels=n_levels,
            value_type=str(data.get("value_type", "string")),
            dtype=str(data.get("dtype", "string")),
        )


FeatureProfile: TypeAlias = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class ReferenceProfile:
    """Compact, versioned reference summary of a data set, stored with a model version."""

    features: dict[str, FeatureProfile]
    n_rows: int
    bins: int
    fine_bins: int
    max_categories: int
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    format_version: int = FORMAT_VERSION

    @property
    def numeric(self) -> list[str]:
        return [n for n, f in self.features.items() if f.kind == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [n for n, f in self.features.items() if f.kind == "categorical"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (see :meth:`from_dict`)."""
        return {
            "format_version": self.format_version,
            "created_at": self.created_at,
            "n_rows": self.n_rows,
            "bins": self.bins,
            "fine_bins": self.fine_bins,
            "max_categories": self.max_categories,
            "features": {name: f.to_dict() for name, f in self.features.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "profile") -> ReferenceProfile:
        """Rebuild a profile; raises :class:`DataError` naming what is malformed."""
        if not isinstance(data, Mapping):
            raise DataError(["expected a JSON object"], source=source)
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise DataError(
                [f"format_version {version!r} is not supported (expected {FORMAT_VERSION})"],
                source=source,
            )
        features: dict[str, FeatureProfile] = {}
        problems: list[str] = []
        raw_features = data.get("features")
        if not isinstance(raw_features, Mapping):
            raise DataError(["'features' must be an object"], source=source)
        for name, raw in raw_features.items():
            try:
                kind = raw["kind"]
                if kind == "numeric":
                    features[name] = NumericProfile.from_dict(name, raw)
                elif kind == "categorical":
                    features[name] = CategoricalProfile.from_dict(name, raw)
                else:
                    problems.append(f"features.{name}.kind: unknown kind {kind!r}")
            except (KeyError, TypeError, ValueError) as exc:
                problems.append(f"features.{name}: {type(exc).__name__}: {exc}")
        if problems:
            raise DataError(problems, source=source)
        try:
            return cls(
                features=features,
                n_rows=int(data["n_rows"]),
                bins=int(data["bins"]),
                fine_bins=int(data["fine_bins"]),
                max_categories=int(data["max_categories"]),
                created_at=str(data.get("created_at", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError([f"{type(exc).__name__}: {exc}"], source=source) from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the profile as JSON and return the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_json(), encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReferenceProfile:
        """Read a profile written by :meth:`save`."""
        source = str(path)
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(["file not found"], source=source) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError([f"not a profile JSON file: {exc}"], source=source) from None
        return cls.from_dict(data, source=source)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


# --- input adapters ------------------------------------------------------------------------------


ValueKind: TypeAlias = Literal["numeric", "boolean", "string", "datetime", "null", "other"]


def _arrow_kind(typ: Any) -> ValueKind:
    if pa.types.is_dictionary(typ):
        return _arrow_kind(typ.value_type)
    if pa.types.is_boolean(typ):
        return "boolean"
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return "numeric"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        return "string"
    if pa.types.is_temporal(typ):
        return "datetime"
    if pa.types.is_null(typ):
        return "null"
    return "other"


def _pandas_kind(series: pd.Series[Any]) -> ValueKind:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _pandas_kind(pd.Series(dtype.categories))
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return "datetime"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        if len(series) and series.isna().all():
            return "null"
        return "string"
    return "other"


def _kind_of(column: Any) -> ValueKind:
    if isinstance(column, pd.Series):
        return _pandas_kind(column)
    return _arrow_kind(column.type)


def _dtype_name(column: Any) -> str:
    return str(column.dtype) if isinstance(column, pd.Series) else str(column.type)


class _Source:
    """Columns of a DataFrame, pyarrow Table or parquet/CSV path, read whole or in batches."""

    def __init__(self, data: DataLike, *, role: str) -> None:
        self.role = role
        self.paths: list[str] = []
        self.frame: pd.DataFrame | None = None
        self.table: Any = None  # pyarrow Table (in memory or read from CSV)
        self.dataset: Any = None  # pyarrow parquet dataset (streamed)
        if isinstance(data, pd.Series):
            data = data.to_frame(name=str(data.name) if data.name is not None else "value")
        if isinstance(data, pd.DataFrame):
            names = [str(c) for c in data.columns]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise DataError([f"duplicate column names: {', '.join(dupes)}"], source=role)
            self.frame = data.set_axis(names, axis=1) if list(data.columns) != names else data
            self.names = names
        elif isinstance(data, pa.RecordBatch | pa.Table):
            self.table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
            self.names = list(self.table.column_names)
        elif isinstance(data, str | os.PathLike):
            self._open_path(Path(data))
        else:
            raise DataError(
                [
                    "expected a pandas DataFrame, pyarrow Table or a parquet/CSV path, "
                    f"got {type(data).__name__}"
                ],
                source=role,
            )

    def _open_path(self, path: Path) -> None:
        if not path.exists():
            raise DataError(["file or directory not found"], source=str(path))
        self.role = f"{self.role} {path}"
        name = path.name.lower()
        if path.is_file() and name.endswith((".csv", ".csv.gz", ".tsv", ".txt")):
            import pyarrow.csv as pacsv

            delimiter = "\t" if name.endswith(".tsv") else ","
            try:
                self.table = pacsv.read_csv(
                    path, parse_options=pacsv.ParseOptions(delimiter=delimiter)
                )
            except pa.ArrowInvalid as exc:
                raise DataError([f"cannot read CSV: {exc}"], source=str(path)) from None
            self.names = list(self.table.column_names)
            return
        import pyarrow.dataset as ds

        try:
            dataset = ds.dataset(path, format="parquet")
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError([f"cannot read parquet: {exc}"], source=str(path)) from None
        self.paths = list(dataset.files)
        if not self.paths:
            raise DataError(["no parquet files found"], source=str(path))
        self.dataset = dataset
        self.names = list(dataset.schema.names)

    @property
    def streamed(self) -> bool:
        return bool(self.paths)

    def column(self, name: str) -> Any:
        """One whole column (pandas Series or pyarrow ChunkedArray)."""
        if self.frame is not None:
            return self.frame[name]
        if self.table is not None:
            return self.table.column(name)
        return self.dataset.to_table(columns=[name]).column(name)

    def batches(
        self, columns: Sequence[str], *, dictionary: Sequence[str], batch_rows: int
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield ``(n_rows, {name: column chunk})``; paths are streamed in record batches."""
        if self.frame is not None:
            yield len(self.frame), {c: self.frame[c] for c in columns}
            return
        if self.table is not None:
            yield self.table.num_rows, {c: self.table.column(c) for c in columns}
            return
        for file in self.paths:
            # pre_buffer=False: with pre-buffering, iter_batches buffers every column chunk of
            # the file (1.3 GB for a 10M-row file); without it memory stays at about a batch.
            handle = pq.ParquetFile(file, read_dictionary=list(dictionary), pre_buffer=False)
            present = [c for c in columns if c in handle.schema_arrow.names]
            if not present:
                yield handle.metadata.num_rows, {}
                continue
            for batch in handle.iter_batches(batch_size=batch_rows, columns=present):
                yield batch.num_rows, {c: batch.column(c) for c in present}

    def n_rows(self) -> int:
        if self.frame is not None:
            return len(self.frame)
        if self.table is not None:
            return int(self.table.num_rows)
        return int(sum(pq.ParquetFile(f).metadata.num_rows for f in self.paths))


def _numeric_chunks(column: Any) -> Iterator[npt.NDArray[Any]]:
    """The values of a numeric column as numpy arrays (NaN for missing), zero-copy when possible."""
    if isinstance(column, pd.Series):
        if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf":
            yield column.to_numpy()
        else:
            yield column.to_numpy(dtype=np.float64, na_value=np.nan)
        return
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    for chunk in chunks:
        array = chunk.dictionary_decode() if pa.types.is_dictionary(chunk.type) else chunk
        if pa.types.is_null(array.type):
            yield np.full(len(array), np.nan)
            continue
        if not pa.types.is_floating(array.type) or array.null_count:
            array = pc.fill_null(pc.cast(array, pa.float64()), np.nan)
        yield array.to_numpy(zero_copy_only=False)


def _canonical_strings(array: Any) -> Any:
    """Category values as strings; NaN becomes missing; ``1`` and ``1.0`` both become ``"1"``."""
    typ = array.type
    if pa.types.is_null(typ):
        return pa.nulls(len(array), pa.large_string())
    if pa.types.is_floating(typ):
        nan = pc.is_nan(array)
        if pc.any(nan).as_py():
            array = pc.if_else(nan, pa.scalar(None, typ), array)
    if not (pa.types.is_large_string(typ) or pa.types.is_string(typ)):
        array = pc.cast(array, pa.large_string())
    return array


def _to_arrow(column: Any) -> Any:
    if not isinstance(column, pd.Series):
        return column
    try:
        return pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        as_text = column.astype("str").where(column.notna(), None)
        return pa.array(as_text, from_pandas=True, type=pa.large_string())


class _CategoryCounts:
    """Counts of category values (as strings) and of missing values over one or more chunks.

    With ``known`` categories (the reference's), values are first matched against them
    (``index_in`` + ``bincount``) and only the remaining, unknown values are hashed and counted.
    """

    def __init__(self, known: Sequence[str] = ()) -> None:
        self.known = pa.array(list(known), pa.large_string()) if known else None
        self.known_counts = np.zeros(len(known), np.int64)
        self.values: list[Any] = []  # pyarrow string arrays of values outside `known`
        self.counts: list[IntArray] = []
        self.n = 0
        self.n_missing = 0

    def update(self, column: Any) -> None:
        array = _to_arrow(column)
        self.n += len(array)
        chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
        for chunk in chunks:
            if pa.types.is_dictionary(chunk.type):
                self._update_dictionary(chunk)
            else:
                self._add(_canonical_strings(chunk))

    def _add(self, strings: Any) -> None:
        self.n_missing += strings.null_count
        if self.known is not None:
            index = pc.index_in(strings, value_set=self.known)
            unknown = index.null_count - strings.null_count
            found = pc.fill_null(index, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
            self.known_counts += np.bincount(found, minlength=len(self.known) + 1)[1:]
            if unknown == 0:
                return
            strings = pc.filter(strings, pc.and_(pc.is_null(index), pc.is_valid(strings)))
        result = pc.value_counts(pc.drop_null(strings))
        self.values.append(result.field("values"))
        self.counts.append(result.field("counts").to_numpy(zero_copy_only=False).astype(np.int64))

    def _update_dictionary(self, chunk: Any) -> None:
        dictionary = _canonical_strings(chunk.dictionary)
        indices = pc.drop_null(chunk.indices).to_numpy(zero_copy_only=False)
        counts = np.bincount(indices, minlength=len(dictionary)).astype(np.int64)
        self.n_missing += chunk.indices.null_count
        is_null = pc.is_null(dictionary).to_numpy(zero_copy_only=False)
        self.n_missing += int(counts[is_null].sum())
        keep = ~is_null & (counts > 0)
        values, counts = pc.filter(dictionary, pa.array(keep)), counts[keep]
        if self.known is not None:
            index = pc.fill_null(pc.index_in(values, value_set=self.known), -1)
            position = index.to_numpy(zero_copy_only=False).astype(np.int64)
            matched = position >= 0
            np.add.at(self.known_counts, position[matched], counts[matched])
            values, counts = pc.filter(values, pa.array(~matched)), counts[~matched]
        if len(counts):
            self.values.append(values)
            self.counts.append(counts)

    def others(self) -> tuple[Any, IntArray]:
        """Distinct values outside ``known`` (a large_string array) and their counts."""
        if not self.values:
            return pa.array([], pa.large_string()), np.zeros(0, np.int64)
        values = [pc.cast(v, pa.large_string()) for v in self.values]
        if len(values) == 1:
            return values[0], self.counts[0]
        table = pa.table({"v": pa.concat_arrays(values), "c": np.concatenate(self.counts)})
        grouped = table.group_by("v").aggregate([("c", "sum")])
        return grouped.column("v").combine_chunks(), grouped.column("c_sum").to_numpy()


# --- numeric binning -----------------------------------------------------------------------------


class _NumericCounter:
    """Counts non-missing values at or below each edge, block by block (sorted in cache).

    Also counts missing and infinite values, sums the distance of values beyond the reference
    range (for the Wasserstein tails) and accumulates shifted moments for the summary.
    """

    def __init__(
        self, edges: FloatArray, *, lo: float | None, hi: float | None, shift: float
    ) -> None:
        self.edges = edges
        self.query = np.concatenate(([-np.inf], edges, [_FMAX, np.inf]))
        self.cum = np.zeros(len(edges), np.int64)
        self.lo, self.hi, self.shift = lo, hi, shift
        self.n = self.n_missing = self.n_neg_inf = self.n_pos_inf = 0
        self.below = self.above = self.s1 = self.s2 = 0.0
        self.min, self.max = math.inf, -math.inf

    @property
    def n_finite(self) -> int:
        return self.n - self.n_missing - self.n_neg_inf - self.n_pos_inf

    def update(self, values: npt.NDArray[Any]) -> None:
        n = len(values)
        self.n += n
        if n == 0:
            return
        buffer = np.empty(min(BLOCK, n), dtype=np.float64)
        for start in range(0, n, BLOCK):
            block = buffer[: min(BLOCK, n - start)]
            block[...] = values[start : start + BLOCK]
            block.sort()
            self._count(block)

    def _count(self, block: FloatArray) -> None:
        m = len(self.edges)
        pos = np.searchsorted(block, self.query, side="right")
        neg, fin_end, nonmissing = int(pos[0]), int(pos[m + 1]), int(pos[m + 2])
        self.n_missing += len(block) - nonmissing
        self.n_neg_inf += neg
        self.n_pos_inf += nonmissing - fin_end
        finite = block[neg:fin_end]
        if finite.size == 0:
            return
        self.min = min(self.min, float(finite[0]))
        self.max = max(self.max, float(finite[-1]))
        centred = finite - self.shift
        self.s1 += float(centred.sum())
        # einsum, not `@`: a BLAS dot wakes OpenBLAS threads (milliseconds on a busy machine)
        self.s2 += float(np.einsum("i,i->", centred, centred))
        if m == 0 or self.lo is None or self.hi is None:
            return
        self.cum += pos[1 : m + 1]
        below = block[neg : int(pos[1])]
        above = block[int(pos[m]) : fin_end]
        self.below += self.lo * below.size - float(below.sum())
        self.above += float(above.sum()) - self.hi * above.size


def _fine_bin_count(bins: int) -> int:
    return bins * max(1, math.ceil(FINE_BINS / bins))


def _numeric_profile(name: str, column: Any, *, bins: int) -> NumericProfile:
    parts = [np.asarray(c, dtype=np.float64) for c in _numeric_chunks(column)]
    values = np.concatenate(parts) if len(parts) != 1 else parts[0].copy()
    values.sort()
    n = len(values)
    neg = int(np.searchsorted(values, -np.inf, side="right"))
    fin_end = int(np.searchsorted(values, _FMAX, side="right"))
    nonmissing = int(np.searchsorted(values, np.inf, side="right"))
    finite = values[neg:fin_end]
    dtype = _dtype_name(column)
    if finite.size == 0:
        return NumericProfile(
            name, n, n - nonmissing, neg, nonmissing - fin_end, (), (nonmissing,), (),
            None, None, None, None, False, dtype,
        )  # fmt: skip
    fine = _fine_bin_count(bins)
    step = fine // bins
    m = finite.size
    levels = np.arange(fine + 1) / fine
    index = np.clip(np.ceil(levels * m).astype(np.int64) - 1, 0, m - 1)
    quantiles = finite[index]
    lo = float(np.nextafter(finite[0], -np.inf))
    # Quantile edges bound equal-mass bins; a uniform grid over [min, max] also bounds the width
    # of every bin, so the Wasserstein approximation stays tight in sparse tails.
    grid = np.linspace(finite[0], finite[-1], fine + 1)
    integer_valued = bool(np.all(np.floor(finite) == finite))
    if integer_valued:
        grid = np.round(grid)
    edges = np.unique(np.concatenate(([lo], quantiles, grid)))
    coarse = np.unique(np.concatenate(([lo], quantiles[step:-1:step][: bins - 1], [finite[-1]])))
    cum = np.searchsorted(values[:nonmissing], edges, side="right")
    counts = np.diff(np.concatenate(([0], cum, [nonmissing])))
    return NumericProfile(
        name=name,
        n=n,
        n_missing=n - nonmissing,
        n_neg_inf=neg,
        n_pos_inf=nonmissing - fin_end,
        edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in counts),
        coarse_edges=tuple(float(e) for e in coarse),
        mean=float(finite.mean()),
        std=float(finite.std()),
        min=float(finite[0]),
        max=float(finite[-1]),
        integer_valued=integer_valued,
        dtype=dtype,
    )


def _categorical_profile(
    name: str, column: Any, *, max_categories: int, value_type: str
) -> CategoricalProfile:
    counter = _CategoryCounts()
    counter.update(column)
    values, counts = counter.others()
    n_levels = len(counts)
    if n_levels > max_categories:
        # choose on even rows, count on odd rows (see CategoricalProfile)
        chooser = _CategoryCounts()
        chooser.update(_every_other(column, 0))
        values, counts = chooser.others()
    names = np.asarray(values.to_pylist(), dtype=object)
    order = np.lexsort((names, -counts)) if len(counts) else np.zeros(0, np.int64)
    kept = [str(v) for v in names[order[:max_categories]]]
    kept_counts, other_count = counts[order], 0
    if n_levels > max_categories:
        tally = _CategoryCounts(kept)
        tally.update(_every_other(column, 1))
        kept_counts, other_count = tally.known_counts, int(tally.others()[1].sum())
    return CategoricalProfile(
        name=name,
        n=counter.n,
        n_missing=counter.n_missing,
        categories=tuple(kept),
        counts=tuple(int(c) for c in kept_counts),
        other_count=other_count,
        n_levels=n_levels,
        value_type=value_type,
        dtype=_dtype_name(column),
    )


def _every_other(column: Any, start: int) -> Any:
    if isinstance(column, pd.Series):
        return column.iloc[start::2]
    return pc.take(column, pa.array(np.arange(start, len(column), 2)))


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def infer_feature_kinds(data: DataLike) -> tuple[list[str], list[str]]:
    """Split columns into numeric (int/float) and categorical (string, bool, category).

    Datetime and other columns are left out.
    """
    source = _Source(data, role="data")
    numeric: list[str] = []
    categorical: list[str] = []
    for name in source.names:
        column = source.column(name) if not source.streamed else None
        kind = (
            _kind_of(column)
            if column is not None
            else _arrow_kind(source.dataset.schema.field(name).type)
        )
        is_category = isinstance(column, pd.Series) and isinstance(
            column.dtype, pd.CategoricalDtype
        )
        if kind == "numeric" and not is_category:
            numeric.append(name)
        elif kind in {"string", "boolean"} or is_category:
            categorical.append(name)
    return numeric, categorical


def build_profile(
    data: DataLike,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str],
    settings: DriftSettings,
) -> ReferenceProfile:
    """Summarise the reference (training) data per feature.

    ``data`` is a DataFrame, a pyarrow Table or a parquet file/directory (read one column at a
    time) or CSV file. Raises :class:`DataError` naming every missing or wrongly typed column.
    """
    source = _Source(data, role="reference")
    overlap = sorted(set(numeric) & set(categorical))
    missing = [c for c in [*numeric, *categorical] if c not in source.names]
    problems = [f"{c}: listed as both numeric and categorical" for c in overlap]
    problems += [f"{c}: column not found in the reference data" for c in missing]
    if not numeric and not categorical:
        problems.append("no features given (numeric and categorical are both empty)")
    if problems:
        raise DataError(problems, source=source.role)
    n_rows = source.n_rows()
    if n_rows == 0:
        raise DataError(["reference data has no rows"], source=source.role)

    def one(name: str, kind: Kind) -> FeatureProfile:
        column = source.column(name)
        found = _kind_of(column)
        if kind == "numeric":
            if found not in {"numeric", "boolean", "null"}:
                found_dtype = _dtype_name(column)
                raise DataError(
                    [f"{name}: numeric feature has dtype {found_dtype}; expected int or float"],
                    source=source.role,
                )
            return _numeric_profile(name, column, bins=settings.bins)
        if found in {"datetime", "other"}:
            raise DataError(
                [f"{name}: categorical feature has unsupported dtype {_dtype_name(column)}"],
                source=source.role,
            )
        return _categorical_profile(
            name, column, max_categories=settings.max_categories, value_type=found
        )

    jobs: list[tuple[str, Kind]] = [(c, "numeric") for c in numeric]
    jobs += [(c, "categorical") for c in categorical]
    with ThreadPoolExecutor(_workers()) as pool:
        profiles = list(pool.map(lambda job: one(*job), jobs))
    return ReferenceProfile(
        features={p.name: p for p in profiles},
        n_rows=n_rows,
        bins=settings.bins,
        fine_bins=_fine_bin_count(settings.bins),
        max_categories=settings.max_categories,
    )


def load_reference(
    reference: DataLike,
    *,
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    settings: DriftSettings,
) -> ReferenceProfile:
    """A profile from a saved profile JSON file, or built from reference data.

    Without feature lists, kinds are inferred from the data's dtypes (:func:`infer_feature_kinds`).
    For a saved profile, given feature lists must be in it.
    """
    if isinstance(reference, ReferenceProfile):
        profile = reference
    elif isinstance(reference, str | os.PathLike) and str(reference).lower().endswith(".json"):
        profile = ReferenceProfile.load(reference)
    else:
        if numeric is None and categorical is None:
            numeric, categorical = infer_feature_kinds(reference)
        return build_profile(
            reference, numeric=numeric or [], categorical=categorical or [], settings=settings
        )
    wanted = {
        **dict.fromkeys(numeric or [], "numeric"),
        **dict.fromkeys(categorical or [], "categorical"),
    }
    problems = []
    for name, kind in wanted.items():
        feature = profile.features.get(name)
        if feature is None:
            problems.append(f"{name}: not in the reference profile")
        elif feature.kind != kind:
            problems.append(f"{name}: profiled as {feature.kind}, configured as {kind}")
    if problems:
        raise DataError(problems, source=str(reference))
    return profile


# --- statistics ----------------------------------------------------------------------------------


def _shares(counts: npt.NDArray[Any]) -> FloatArray:
    total = float(counts.sum())
    return counts / total if total > 0 else np.zeros(len(counts))


def psi(ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike) -> float:
    """Population stability index over matching bins; shares floored at ``max(1e-4, 0.5/n)``."""
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    floor_r = max(PSI_FLOOR, 0.5 / max(ref.sum(), 1.0))
    floor_c = max(PSI_FLOOR, 0.5 / max(cur.sum(), 1.0))
    r = np.maximum(_shares(ref), floor_r)
    c = np.maximum(_shares(cur), floor_c)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of the two binned distributions."""
    r = _shares(np.asarray(ref_counts, dtype=np.float64))
    c = _shares(np.asarray(cur_counts, dtype=np.float64))
    m = (r + c) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_r = np.where(r > 0, r * np.log2(r / m), 0.0).sum()
        kl_c = np.where(c > 0, c * np.log2(c / m), 0.0).sum()
    return float(math.sqrt(max((kl_r + kl_c) / 2, 0.0)))


def chi2_homogeneity(
    ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike
) -> tuple[float, int, float]:
    """Pearson chi-square test of homogeneity on the 2 x k table (``chi2_contingency`` without
    continuity correction, empty columns dropped). Returns ``(statistic, dof, p_value)``."""
    table = np.vstack(
        [np.asarray(ref_counts, dtype=np.float64), np.asarray(cur_counts, dtype=np.float64)]
    )
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    if table.shape[1] < 2 or np.any(rows == 0):
        return 0.0, max(table.shape[1] - 1, 0), 1.0
    expected = np.outer(rows, table.sum(axis=0)) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    dof = table.shape[1] - 1
    return stat, dof, float(special.chdtrc(dof, stat))


def _ks_pvalue(d: float, n_ref: int, n_cur: int) -> float:
    if n_ref == 0 or n_cur == 0:
        return 1.0
    en = math.sqrt(n_ref * n_cur / (n_ref + n_cur))
    return float(min(1.0, special.kolmogorov((en + 0.12 + 0.11 / en) * d)))


def _proportion_pvalue(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided pooled two-proportion z-test."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = abs(k2 / n2 - k1 / n1) / se
    return float(special.erfc(z / math.sqrt(2)))


def _net_psi(value: float, bins: int, n_ref: int, n_cur: int) -> float:
    """PSI minus its expectation under homogeneity, ``(k - 1) (1/n_ref + 1/n_cur)``."""
    return max(value - (bins - 1) * (1 / n_ref + 1 / n_cur), 0.0)


def _net_js(value: float, bins: int, n_ref: int, n_cur: int) -> float:
    """JS distance with the expected JS divergence under homogeneity,
    ``(k - 1) (1/n_ref + 1/n_cur) / (8 ln 2)`` bits, removed."""
    noise = (bins - 1) * (1 / n_ref + 1 / n_cur) / (8 * math.log(2))
    return math.sqrt(max(value * value - noise, 0.0))


def _unseen_excess(unseen: int, totals: IntArray, n_ref: int, n_cur: int) -> tuple[float, float]:
    """Unseen share net of chance, and a one-sided p-value.

    Under homogeneity a category with ``t`` rows in both samples together is missing from the
    reference with probability ``q**t`` (``q = n_cur / (n_ref + n_cur)``), so rare categories
    of small samples are expected to look "unseen": ``E[U] = sum t q**t``.
    """
    if unseen == 0:
        return 0.0, 1.0
    q = n_cur / (n_ref + n_cur)
    t = totals[totals > 0].astype(np.float64)
    chance = q**t
    expected = float(np.sum(t * chance))
    variance = float(np.sum(t * t * chance * (1 - chance)))
    z = (unseen - expected) / math.sqrt(variance) if variance > 0 else math.inf
    p_value = float(special.ndtr(-z))
    return max(unseen - expected, 0.0) / n_cur, p_value


def _wasserstein_noise(edges: FloatArray, ref_cdf: FloatArray, n_ref: int, n_cur: int) -> float:
    """Expected W1 between two samples of the reference distribution:
    ``sqrt(2 / pi) * integral sqrt(F (1 - F)) dx / sqrt(n_eff)`` (Brownian-bridge limit)."""
    spread = np.sqrt(np.clip(ref_cdf * (1 - ref_cdf), 0.0, None))
    integral = float(np.sum((spread[:-1] + spread[1:]) / 2 * np.diff(edges)))
    return math.sqrt(2 / math.pi) * integral * math.sqrt(1 / n_ref + 1 / n_cur)


def _wasserstein(
    edges: FloatArray,
    ref_cdf: FloatArray,
    cur_cdf: FloatArray,
    tails: float,
    *,
    step: bool,
) -> float:
    """W1 between two distributions known by their CDFs at ``edges`` (linear in between, or a
    step function for integer-valued data) plus the exact area beyond the reference range."""
    d = ref_cdf - cur_cdf
    widths = np.diff(edges)
    if step:
        return float(np.sum(np.abs(d[:-1]) * widths) + tails)
    a, b = d[:-1], d[1:]
    abs_a, abs_b = np.abs(a), np.abs(b)
    total = abs_a + abs_b
    crossing = np.divide(a * a + b * b, 2 * total, out=np.zeros_like(total), where=total > 0)
    area = np.where(a * b >= 0, total / 2, crossing)
    return float(np.sum(area * widths) + tails)


# --- severity ------------------------------------------------------------------------------------


def _level(value: float | None, cuts: SeverityCuts) -> Severity:
    if value is None or not math.isfinite(value):
        return "none"
    if value >= cuts.high:
        return "high"
    if value >= cuts.medium:
        return "medium"
    if value >= cuts.low:
        return "low"
    return "none"


def _cuts_for(settings: DriftSettings, name: str) -> dict[DriftStatistic, SeverityCuts]:
    cuts = dict(settings.thresholds)
    override = settings.features.get(name)
    if override is not None:
        cuts.update(override.thresholds)
    return cuts


@dataclass
class _Verdict:
    """Collects per-family effect sizes and tests and turns them into one severity."""

    cuts: dict[DriftStatistic, SeverityCuts]
    alpha: float
    severity: Severity = "none"
    reasons: list[str] = field(default_factory=list)

    def family(
        self,
        effects: Mapping[DriftStatistic, float | None],
        p_value: float,
        *,
        raw: Mapping[DriftStatistic, float | None] | None = None,
    ) -> None:
        """Grade one family of effect sizes (net of sampling noise) behind its test."""
        levels = {stat: _level(value, self.cuts[stat]) for stat, value in effects.items()}
        top: Severity = "none"
        for level in levels.values():
            if _RANK[level] > _RANK[top]:
                top = level
        if top == "none":
            return
        shown = [
            f"{_describe(stat, effects[stat], (raw or {}).get(stat))} >= "
            f"{_fmt(_cut(self.cuts[stat], lvl))} ({lvl})"
            for stat, lvl in levels.items()
            if lvl != "none"
        ]
        if p_value >= self.alpha:
            self.reasons.append(
                f"not significant (p={p_value:.3g} >= alpha {self.alpha:g}): ignored "
                + ", ".join(shown)
            )
            return
        self.reasons.extend(f"{s} (p={p_value:.3g})" for s in shown)
        if _RANK[top] > _RANK[self.severity]:
            self.severity = top

    def cap(self, level: Severity, why: str) -> None:
        if _RANK[self.severity] > _RANK[level]:
            self.reasons.append(f"capped at {level}: {why} (was {self.severity})")
            self.severity = level


def _describe(stat: str, net: float | None, raw: float | None) -> str:
    if raw is None or net is None or abs(raw - net) < 5e-4:
        return f"{stat} {_fmt(net)}"
    return f"{stat} {_fmt(raw)} (net of sampling noise {_fmt(net)})"


def _cut(cuts: SeverityCuts, level: Severity) -> float:
    return float(getattr(cuts, level))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


# --- report --------------------------------------------------------------------------------------


@dataclass
class FeatureDrift:
    """The drift verdict of one feature.

    ``status`` is ``ok`` or names a degenerate case (``missing_column``, ``dtype_mismatch``,
    ``all_missing``, ``all_missing_reference``, ``constant_reference``, ``infinite_values``,
    ``high_cardinality``, ``insufficient_data``); ``message`` explains it. ``severity`` is
    ``unknown`` only when the feature could not be checked.
    """

    name: str
    kind: Kind
    severity: FeatureSeverity
    statistics: dict[str, float | int | None]
    n_ref: int
    n_cur: int
    missing_rate_ref: float | None
    missing_rate_cur: float | None
    unseen_share: float | None = None
    status: str = "ok"
    message: str = ""
    reasons: list[str] = field(default_factory=list)
    distribution: dict[str, Any] = field(default_factory=dict)
    plot: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def checked(self) -> bool:
        return self.severity != "unknown"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "severity": self.severity,
            "status": self.status,
            "message": self.message,
            "reasons": list(self.reasons),
            "statistics": {k: _json_number(v) for k, v in self.statistics.items()},
            "n_ref": self.n_ref,
            "n_cur": self.n_cur,
            "missing_rate_ref": _json_number(self.missing_rate_ref),
            "missing_rate_cur": _json_number(self.missing_rate_cur),
            "unseen_share": _json_number(self.unseen_share),
            "distribution": self.distribution,
        }


def _json_number(value: float | int | None) -> float | int | None:
    if value is None or isinstance(value, int):
        return value
    return float(value) if math.isfinite(value) else None


@dataclass
class DriftReport:
    """Per-feature drift verdicts plus the summary the trigger policy reads."""

    features: list[FeatureDrift]
    n_ref: int
    n_cur: int
    alpha: float
    min_samples: int
    skipped: list[str] = field(default_factory=list)
    profile_created_at: str = ""
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def checked(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.checked]

    @property
    def unchecked(self) -> list[FeatureDrift]:
        return [f for f in self.features if not f.checked]

    @property
    def drift_count(self) -> int:
        """Number of features with severity ``high`` (the ``drift_count`` trigger signal)."""
        return sum(f.severity == "high" for f in self.features)

    @property
    def drift_share(self) -> float:
        """Share of checked features with severity ``medium`` or ``high`` (``drift_share``)."""
        checked = self.checked
        if not checked:
            return 0.0
        return sum(f.severity in {"medium", "high"} for f in checked) / len(checked)

    @property
    def drifted(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.severity in {"medium", "high"}]

    @property
    def by_severity(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {s: [] for s in (*SEVERITIES, "unknown")}
        for f in self.features:
            out[f.severity].append(f.name)
        return out

    def signals(self) -> dict[str, float]:
        """The trigger signals this report provides (see ``retrain.conditions.SIGNALS``)."""
        return {"drift_count": float(self.drift_count), "drift_share": self.drift_share}

    def feature(self, name: str) -> FeatureDrift:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: ``features``, ``drift_count``, ``drift_share`` and more."""
        return {
            "format_version": FORMAT_VERSION,
            "created_at": self.created_at,
            "profile_created_at": self.profile_created_at,
            "n_ref": self.n_ref,
            "n_cur": self.n_cur,
            "alpha": self.alpha,
            "min_samples": self.min_samples,
            "drift_count": self.drift_count,
            "drift_share": self.drift_share,
            "n_checked": len(self.checked),
            "by_severity": self.by_severity,
            "unchecked": [f.name for f in self.unchecked],
            "skipped": list(self.skipped),
            "features": [f.to_dict() for f in self.features],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_html(self, path: str | os.PathLike[str] | None = None, *, plot_all: bool = False) -> str:
        """Render a self-contained HTML report (inline PNG plots); write it when ``path`` is
        given. Plots every drifted (medium/high) feature, or every checked one with
        ``plot_all``."""
        from retrain.plots import drift_report_html

        text = drift_report_html(self, plot_all=plot_all)
        if path is not None:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return text


# --- checking ------------------------------------------------------------------------------------


class _Assessment:
    """A feature verdict under construction: statistics, severity families, status notes."""

    def __init__(
        self, p: FeatureProfile, *, n_cur: int, n_missing_cur: int, settings: DriftSettings
    ) -> None:
        self.settings = settings
        self.verdict = _Verdict(_cuts_for(settings, p.name), settings.alpha)
        self.notes: list[tuple[str, str]] = []
        self.feature = FeatureDrift(
            name=p.name,
            kind=p.kind,
            severity="none",
            statistics={},
            n_ref=p.n,
            n_cur=n_cur,
            missing_rate_ref=p.n_missing / p.n if p.n else None,
            missing_rate_cur=n_missing_cur / n_cur if n_cur else None,
        )
        self.stats = self.feature.statistics
        change = None
        if p.n and n_cur:
            change = abs(n_missing_cur / n_cur - p.n_missing / p.n)
        p_value = _proportion_pvalue(p.n_missing, p.n, n_missing_cur, n_cur)
        self.stats.update(missing_rate_change=change, missing_pvalue=p_value)
        self.verdict.family({"missing_rate": change}, p_value)

    def family(
        self,
        effects: Mapping[DriftStatistic, float | None],
        p_value: float,
        *,
        raw: Mapping[DriftStatistic, float | None] | None = None,
    ) -> None:
        """Record a family's statistics (raw values and, when given, ``<stat>_net``) and grade
        it."""
        for stat, value in effects.items():
            if raw is None:
                self.stats[stat] = value
            else:
                self.stats[stat] = raw[stat]
                self.stats[f"{stat}_net"] = value
        self.verdict.family(effects, p_value, raw=raw)

    def note(self, status: str, message: str) -> None:
        self.notes.append((status, message))

    def finish(self, n_compared: int) -> FeatureDrift:
        feature, min_samples = self.feature, self.settings.min_samples
        rows = min(feature.n_ref, feature.n_cur)
        if rows < min_samples:
            self.note(
                "insufficient_data", f"only {rows} rows on one side (min_samples {min_samples})"
            )
            self.verdict.cap("low", f"fewer than min_samples={min_samples} rows")
        feature.severity = self.verdict.severity
        feature.reasons = self.verdict.reasons
        self.stats["n_compared"] = n_compared
        if self.notes:
            feature.status = self.notes[0][0]
            messages = [m for _, m in self.notes] + ([feature.message] if feature.message else [])
            feature.message = "; ".join(messages)
        return feature


def _check_numeric(
    p: NumericProfile, counter: _NumericCounter, settings: DriftSettings
) -> FeatureDrift:
    a = _Assessment(p, n_cur=counter.n, n_missing_cur=counter.n_missing, settings=settings)
    n_inf_ref, n_inf_cur = p.n_neg_inf + p.n_pos_inf, counter.n_neg_inf + counter.n_pos_inf
    a.stats.update(n_inf_ref=n_inf_ref, n_inf_cur=n_inf_cur)
    a.stats.update(mean_ref=p.mean, std_ref=p.std, mean_cur=None, std_cur=None)
    if counter.n_finite:
        mean_c = counter.s1 / counter.n_finite
        a.stats["mean_cur"] = mean_c + counter.shift
        a.stats["std_cur"] = math.sqrt(max(counter.s2 / counter.n_finite - mean_c**2, 0.0))
    n_cur_nm = counter.n - counter.n_missing
    if not p.edges:
        a.note("all_missing_reference", "reference has no finite values")
    elif n_cur_nm == 0:
        a.note("all_missing", "current data has no non-missing values")
    else:
        _numeric_distribution(p, counter, a)
    if n_inf_ref or n_inf_cur:
        a.note(
            "infinite_values",
            f"{n_inf_ref} infinite values in reference, {n_inf_cur} in current (counted in the "
            "outermost bins, left out of Wasserstein)",
        )
    return a.finish(min(p.n - p.n_missing, n_cur_nm))


def _numeric_distribution(p: NumericProfile, counter: _NumericCounter, a: _Assessment) -> None:
    edges = np.asarray(p.edges)
    ref_counts = np.asarray(p.counts, dtype=np.int64)
    ref_cum = np.cumsum(ref_counts)[:-1]
    n_ref_nm, n_cur_nm = p.n - p.n_missing, counter.n - counter.n_missing
    cur_counts = np.diff(np.concatenate(([0], counter.cum, [n_cur_nm])))
    coarse_at = np.searchsorted(edges, np.asarray(p.coarse_edges))
    ref_coarse = np.diff(np.concatenate(([0], ref_cum[coarse_at], [n_ref_nm])))
    cur_coarse = np.diff(np.concatenate(([0], counter.cum[coarse_at], [n_cur_nm])))

    ks = float(np.max(np.abs(ref_cum / n_ref_nm - counter.cum / n_cur_nm)))
    ks_p = _ks_pvalue(ks, n_ref_nm, n_cur_nm)
    chi2, dof, chi2_p = chi2_homogeneity(ref_coarse, cur_coarse)
    wasserstein: float | None = None
    wasserstein_net: float | None = None
    ref_finite = n_ref_nm - p.n_neg_inf - p.n_pos_inf
    if not p.std:
        a.note(
            "constant_reference",
            f"reference is constant ({_fmt(p.min)}); Wasserstein is undefined, PSI/JS compare "
            "the bins below, at and above that value",
        )
    elif counter.n_finite and ref_finite:
        w = _wasserstein(
            edges,
            (ref_cum - p.n_neg_inf) / ref_finite,
            (counter.cum - counter.n_neg_inf) / counter.n_finite,
            (counter.below + counter.above) / counter.n_finite,
            step=p.integer_valued,
        )
        wasserstein = w / p.std
        noise = _wasserstein_noise(
            edges, (ref_cum - p.n_neg_inf) / ref_finite, ref_finite, counter.n_finite
        )
        wasserstein_net = math.sqrt(max(w * w - noise * noise, 0.0)) / p.std
    p_value = min(1.0, 2 * min(ks_p, chi2_p))
    a.stats.update(ks=ks, ks_pvalue=ks_p, chi2=chi2, chi2_dof=dof, chi2_pvalue=chi2_p)
    a.stats["p_value"] = p_value
    psi_value, js_value = psi(ref_coarse, cur_coarse), js_distance(ref_coarse, cur_coarse)
    k = dof + 1
    a.family(
        {
            "psi": _net_psi(psi_value, k, n_ref_nm, n_cur_nm),
            "js": _net_js(js_value, k, n_ref_nm, n_cur_nm),
            "wasserstein": wasserstein_net,
        },
        p_value,
        raw={"psi": psi_value, "js": js_value, "wasserstein": wasserstein},
    )
    a.feature.distribution = {
        "edges": [float(e) for e in p.coarse_edges],
        "ref": _shares(ref_coarse).round(6).tolist(),
        "cur": _shares(cur_coarse).round(6).tolist(),
    }
    a.feature.plot = {"edges": edges, "ref": ref_counts, "cur": cur_counts}


def _check_categorical(
    p: CategoricalProfile, counter: _CategoryCounts, settings: DriftSettings
) -> FeatureDrift:
    a = _Assessment(p, n_cur=counter.n, n_missing_cur=counter.n_missing, settings=settings)
    n_cur_nm = counter.n - counter.n_missing
    if p.n == p.n_missing:
        a.note("all_missing_reference", "reference has no non-missing values")
    elif n_cur_nm == 0:
        a.note("all_missing", "current data has no non-missing values")
    else:
        _categorical_distribution(p, counter, a)
    return a.finish(min(p.n - p.n_missing, n_cur_nm))


def _categorical_distribution(
    p: CategoricalProfile, counter: _CategoryCounts, a: _Assessment
) -> None:
    values, counts = counter.others()
    mapped = counter.known_counts
    rest = int(counts.sum())
    n_ref_nm, n_cur_nm = sum(p.counts) + p.other_count, counter.n - counter.n_missing
    labels = [*p.categories, "(other)", "(unseen)"]
    unseen_share: float | None = None
    unseen_net: float | None = None
    unseen_p = 1.0
    ref_arr = np.asarray([*p.counts, p.other_count, 0], dtype=np.int64)
    if p.truncated:
        cur_arr = np.asarray([*mapped.tolist(), rest, 0], dtype=np.int64)
        a.note(
            "high_cardinality",
            f"reference has {p.n_levels} levels; the {len(p.categories)} most frequent are "
            "compared one by one and the rest pooled as (other), so unseen categories cannot be "
            "told apart",
        )
    else:
        cur_arr = np.asarray([*mapped.tolist(), 0, rest], dtype=np.int64)
        unseen_share = rest / n_cur_nm
        totals = np.concatenate((np.asarray(p.counts) + mapped, counts))
        unseen_net, unseen_p = _unseen_excess(rest, totals, n_ref_nm, n_cur_nm)
        if rest:
            top = np.argsort(-counts, kind="stable")[:5]
            shown = ", ".join(f"{values[int(i)].as_py()!r} ({counts[i]})" for i in top)
            a.feature.message = f"{len(counts)} unseen categories: {shown}"
    chi2, dof, chi2_p = chi2_homogeneity(ref_arr, cur_arr)
    a.stats.update(chi2=chi2, chi2_dof=dof, chi2_pvalue=chi2_p, p_value=chi2_p)
    a.stats.update(unseen_pvalue=unseen_p, n_levels_ref=p.n_levels)
    a.stats["n_levels_cur"] = int(np.count_nonzero(mapped)) + len(counts)
    psi_value, js_value = psi(ref_arr, cur_arr), js_distance(ref_arr, cur_arr)
    k = dof + 1
    a.family(
        {
            "psi": _net_psi(psi_value, k, n_ref_nm, n_cur_nm),
            "js": _net_js(js_value, k, n_ref_nm, n_cur_nm),
        },
        chi2_p,
        raw={"psi": psi_value, "js": js_value},
    )
    a.family({"unseen_share": unseen_net}, unseen_p, raw={"unseen_share": unseen_share})
    a.feature.unseen_share = unseen_share
    keep = ((ref_arr > 0) | (cur_arr > 0)).tolist()
    a.feature.distribution = {
        "labels": [lab for lab, k in zip(labels, keep, strict=True) if k],
        "ref": _shares(ref_arr)[keep].round(6).tolist(),
        "cur": _shares(cur_arr)[keep].round(6).tolist(),
    }
    a.feature.plot = {"labels": labels, "ref": ref_arr, "cur": cur_arr}


def _unchecked(p: FeatureProfile, n_cur: int, status: str, message: str) -> FeatureDrift:
    return FeatureDrift(
        name=p.name,
        kind=p.kind,
        severity="unknown",
        statistics={},
        n_ref=p.n,
        n_cur=n_cur,
        missing_rate_ref=p.n_missing / p.n if p.n else None,
        missing_rate_cur=None,
        status=status,
        message=message,
    )


def _compatible(p: FeatureProfile, column: Any) -> str | None:
    """A dtype-mismatch message, or None when the current column can be compared."""
    found = _kind_of(column)
    if found == "null":
        return None
    if isinstance(p, NumericProfile):
        if found in {"numeric", "boolean"}:
            return None
        return f"expected numeric values (reference {p.dtype}), got {_dtype_name(column)}"
    if found == p.value_type:
        return None
    return (
        f"expected {p.value_type} categories (reference {p.dtype}), got "
        f"{_dtype_name(column)} ({found})"
    )


Counter: TypeAlias = _NumericCounter | _CategoryCounts


def _count(
    profile: ReferenceProfile,
    source: _Source,
    names: Sequence[str],
    *,
    batch_rows: int,
    n_jobs: int,
) -> tuple[int, dict[str, Counter], dict[str, str]]:
    """One pass over the current data: per-feature counters, rows seen, dtype mismatches."""
    counters: dict[str, Counter] = {}
    for name in names:
        p = profile.features[name]
        if isinstance(p, NumericProfile):
            edges = np.asarray(p.edges)
            counters[name] = _NumericCounter(edges, lo=p.min, hi=p.max, shift=p.mean or 0.0)
        else:
            counters[name] = _CategoryCounts(p.categories)
    dictionary = [n for n, c in counters.items() if isinstance(c, _CategoryCounts)]
    mismatch: dict[str, str] = {}
    n_rows = 0
    with ThreadPoolExecutor(n_jobs) as pool:
        for rows, batch in source.batches(names, dictionary=dictionary, batch_rows=batch_rows):
            n_rows += rows
            for name, column in batch.items():
                problem = None if name in mismatch else _compatible(profile.features[name], column)
                if problem:
                    mismatch[name] = problem
            jobs = [
                pool.submit(_update, counters[name], column)
                for name, column in batch.items()
                if name not in mismatch
            ]
            for job in jobs:
                job.result()
    return n_rows, counters, mismatch


def _update(counter: Counter, column: Any) -> None:
    if isinstance(counter, _NumericCounter):
        for chunk in _numeric_chunks(column):
            counter.update(chunk)
    else:
        counter.update(column)


def check_drift(
    profile: ReferenceProfile,
    current: DataLike,
    *,
    settings: DriftSettings,
    columns: Sequence[str] | None = None,
    batch_rows: int = BATCH_ROWS,
    n_jobs: int | None = None,
) -> DriftReport:
    """Compare ``current`` with the reference ``profile``, feature by feature.

    ``current`` is a DataFrame, a pyarrow Table, or a parquet file/directory (streamed in record
    batches of ``batch_rows``, so memory is bounded by the batch size) or a CSV file. ``columns``
    restricts the check to some profiled features. Features disabled in ``settings.features`` are
    skipped. Raises :class:`DataError` for unknown ``columns`` or current data without rows.
    """
    names = list(profile.features) if columns is None else list(columns)
    unknown = [c for c in names if c not in profile.features]
    if unknown:
        raise DataError([f"{c}: not in the reference profile" for c in unknown], source="columns")
    skipped = [c for c in names if c in settings.features and not settings.features[c].enabled]
    names = [c for c in names if c not in skipped]
    source = _Source(current, role="current")
    present = [c for c in names if c in source.names]
    n_cur, counters, mismatch = _count(
        profile, source, present, batch_rows=batch_rows, n_jobs=n_jobs or _workers()
    )
    if n_cur == 0:
        raise DataError(["current data has no rows"], source=source.role)

    features: list[FeatureDrift] = []
    for name in names:
        p, counter = profile.features[name], counters.get(name)
        if counter is None:
            features.append(_unchecked(p, n_cur, "missing_column", "column not in current data"))
        elif name in mismatch:
            features.append(_unchecked(p, n_cur, "dtype_mismatch", mismatch[name]))
        elif isinstance(p, NumericProfile) and isinstance(counter, _NumericCounter):
            features.append(_check_numeric(p, counter, settings))
        elif isinstance(p, CategoricalProfile) and isinstance(counter, _CategoryCounts):
            features.append(_check_categorical(p, counter, settings))
    return DriftReport(
        features=features,
        n_ref=profile.n_rows,
        n_cur=n_cur,
        alpha=settings.alpha,
        min_samples=settings.min_samples,
        skipped=skipped,
        profile_created_at=profile.created_at,
    )
