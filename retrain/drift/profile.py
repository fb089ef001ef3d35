"""The reference profile: a compact, JSON-serialisable summary of the training data per feature
(counts, missing rate, quantile bin edges and counts, category counts), built once at training
time and stored with the model version."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from retrain.config import DriftSettings
from retrain.drift.binning import _FMAX, _CategoryCounts
from retrain.drift.sources import (
    DataLike,
    _arrow_kind,
    _dtype_name,
    _kind_of,
    _numeric_chunks,
    _Source,
)
from retrain.errors import DataError

FORMAT_VERSION = 1
Kind: TypeAlias = Literal["numeric", "categorical"]
#: Target number of fine reference-quantile bins (KS, Wasserstein, plots).
FINE_BINS = 100


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
            raise DataError(
                [f"{name}: edges must be ascending and unique with len(counts) == len(edges)+1"]
            )
        if not set(data["coarse_edges"]) <= set(edges):
            raise DataError([f"{name}: coarse_edges must be a subset of edges"])
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
            raise DataError([f"{name}: categories must be unique and match counts"])
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
