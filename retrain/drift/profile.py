"""The reference profile: a compact, JSON-serialisable summary of the training data per feature
(counts, missing rate, quantile bin edges and counts, category counts), built once at training
time and stored with the model version."""

from __future__ import annotations

import itertools
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
    def from_dict(cls, name: str, data: Any, *, path: str | None = None) -> NumericProfile:
        """Rebuild a feature's profile from untrusted data; :class:`DataError` naming every
        malformed field (``path``: its key path, default ``features.<name>``)."""
        read = _Fields(data, path or f"features.{name}")
        n = read.count("n")
        n_missing, n_neg_inf, n_pos_inf = (
            read.count(k) for k in ("n_missing", "n_neg_inf", "n_pos_inf")
        )
        edges = read.numbers("edges")
        counts = read.counts("counts", limit=MAX_EDGES + 1)
        coarse = read.numbers("coarse_edges")
        mean, std, lo, hi = (read.number_or_none(k) for k in ("mean", "std", "min", "max"))
        integer_valued = read.flag("integer_valued", default=False)
        dtype = read.text("dtype", default="float64")
        read.done()
        read.check(len(counts) == len(edges) + 1, "counts: must have one more value than edges")
        read.check(
            all(a < b for a, b in itertools.pairwise(edges)),
            "edges: must be strictly ascending",
        )
        read.check(set(coarse) <= set(edges), "coarse_edges: must be a subset of edges")
        read.check(n_missing <= n, f"n_missing: {n_missing} is more than n ({n})")
        read.check(
            sum(counts) == n - n_missing,
            f"counts: add up to {sum(counts)}, but n - n_missing is {n - n_missing}",
        )
        read.check(n_neg_inf + n_pos_inf <= n - n_missing, "n_neg_inf + n_pos_inf: more than n")
        read.check(std is None or std >= 0, "std: must not be negative")
        read.done()
        return cls(
            name, n, n_missing, n_neg_inf, n_pos_inf, edges, counts, coarse,
            mean, std, lo, hi, integer_valued, dtype,
        )  # fmt: skip


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
    def from_dict(cls, name: str, data: Any, *, path: str | None = None) -> CategoricalProfile:
        """Rebuild a feature's profile from untrusted data; :class:`DataError` naming every
        malformed field (``path``: its key path, default ``features.<name>``)."""
        read = _Fields(data, path or f"features.{name}")
        n, n_missing = read.count("n"), read.count("n_missing")
        categories = read.texts("categories")
        counts = read.counts("counts", limit=MAX_VALUES)
        other_count = read.count("other_count", default=0)
        n_levels = read.count("n_levels", default=len(categories))
        value_type = read.text("value_type", default="string")
        dtype = read.text("dtype", default="string")
        read.done()
        read.check(len(categories) == len(counts), "counts: must have one value per category")
        read.check(len(set(categories)) == len(categories), "categories: must be unique")
        read.check(n_missing <= n, f"n_missing: {n_missing} is more than n ({n})")
        read.check(
            sum(counts) + other_count <= n - n_missing,
            f"counts + other_count: {sum(counts) + other_count} is more than n - n_missing "
            f"({n - n_missing})",
        )
        read.check(n_levels >= len(categories), "n_levels: fewer than the categories listed")
        read.done()
        return cls(name, n, n_missing, categories, counts, other_count, n_levels, value_type, dtype)


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
    def from_dict(cls, data: Any, *, source: str = "profile") -> ReferenceProfile:
        """Rebuild a profile from untrusted data (a profile is stored with every registered
        version); raises :class:`DataError` naming ``source`` and every malformed field.

        Every value is type-checked without recursion (a deeply nested value is refused, not
        walked), counts must be integers from 0 to 2**63-1 and add up, edges finite and
        ascending, and arrays and names are bounded (:data:`MAX_VALUES`, :data:`MAX_FEATURES`,
        :data:`MAX_TEXT`).
        """
        if not isinstance(data, Mapping):
            raise DataError([f"expected a JSON object, got {_describe(data)}"], source=source)
        version = data.get("format_version")
        if type(version) is not int or version != FORMAT_VERSION:
            raise DataError(
                [
                    f"format_version {_describe(version)} is not supported "
                    f"(expected {FORMAT_VERSION})"
                ],
                source=source,
            )
        read = _Fields(data, "")
        n_rows = read.count("n_rows")
        bins = read.count("bins")
        fine_bins = read.count("fine_bins")
        max_categories = read.count("max_categories")
        created_at = read.text("created_at", default="")
        problems = read.problems
        features = _features(data.get("features"), problems)
        if problems:
            shown = problems[:_MAX_PROBLEMS]
            if len(problems) > _MAX_PROBLEMS:
                shown.append(f"and {len(problems) - _MAX_PROBLEMS} more problems")
            raise DataError(shown, source=source)
        return cls(
            features=features,
            n_rows=n_rows,
            bins=bins,
            fine_bins=fine_bins,
            max_categories=max_categories,
            created_at=created_at,
        )

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "profile") -> ReferenceProfile:
        """Rebuild a profile from its JSON text (at most :data:`MAX_PROFILE_BYTES`); raises
        :class:`DataError` naming ``source`` for text that is too large, not UTF-8, not JSON,
        nested too deeply or not a profile."""
        return cls.from_dict(parse_profile_json(text, source=source), source=source)

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
        """Read a profile written by :meth:`save` (untrusted: see :meth:`from_json`)."""
        source = str(path)
        try:
            size = Path(path).stat().st_size
            if size > MAX_PROFILE_BYTES:
                raise DataError(
                    [f"the profile is {size} bytes; at most {MAX_PROFILE_BYTES} bytes are read"],
                    source=source,
                )
            text = Path(path).read_bytes()
        except FileNotFoundError:
            raise DataError(["file not found"], source=source) from None
        except IsADirectoryError:
            raise DataError(["is a directory, not a profile JSON file"], source=source) from None
        return cls.from_json(text, source=source)


#: Largest profile JSON read (a profile of 1,000 features with 1,000 categories each is ~25 MB).
MAX_PROFILE_BYTES = 32 * 2**20
#: Most features in a profile.
MAX_FEATURES = 10_000
#: Most bin edges of a numeric feature (a profile has about 4 per fine bin, at most ~800).
MAX_EDGES = 10_000
#: Most categories of a categorical feature.
MAX_VALUES = 1_000_000
#: Longest feature name, category or other text value.
MAX_TEXT = 10_000
_MAX_INT = 2**63 - 1
_MAX_PROBLEMS = 20
_MISSING: Any = object()


def parse_profile_json(text: str | bytes, *, source: str = "profile") -> Any:
    """The JSON value in ``text``, bounded and refused cleanly: :class:`DataError` naming
    ``source`` when it is larger than :data:`MAX_PROFILE_BYTES`, not UTF-8, not JSON or nested
    too deeply to parse."""
    size = len(text)
    if size > MAX_PROFILE_BYTES:
        raise DataError(
            [f"the profile is {size} bytes; at most {MAX_PROFILE_BYTES} bytes are read"],
            source=source,
        )

    try:
        decoded = text.decode("utf-8") if isinstance(text, bytes) else text
        return json.loads(decoded)  # NaN and Infinity parse, and are refused by their field
    except UnicodeDecodeError as exc:
        raise DataError([f"not a profile JSON file: not UTF-8 ({exc})"], source=source) from None
    except RecursionError:
        raise DataError(["not a profile JSON file: nested too deeply"], source=source) from None
    except ValueError as exc:  # json.JSONDecodeError included
        raise DataError([f"not a profile JSON file: {exc}"], source=source) from None


def _features(raw_features: Any, problems: list[str]) -> dict[str, FeatureProfile]:
    """The features of a profile's ``features`` object; problems appended to ``problems``."""
    if not isinstance(raw_features, Mapping):
        problems.append(f"features: 'features' must be an object, got {_describe(raw_features)}")
        return {}
    if len(raw_features) > MAX_FEATURES:
        problems.append(f"features: at most {MAX_FEATURES} features, got {len(raw_features)}")
        return {}
    features: dict[str, FeatureProfile] = {}
    for name, raw in raw_features.items():
        path = f"features.{_short(name)}"
        if not isinstance(name, str) or len(name) > MAX_TEXT:
            problems.append(f"{path}: a feature name must be text of at most {MAX_TEXT}")
            continue
        if not isinstance(raw, Mapping):
            problems.append(f"{path}: expected an object, got {_describe(raw)}")
            continue
        kind = raw.get("kind")
        try:
            if kind == "numeric":
                features[name] = NumericProfile.from_dict(name, raw, path=path)
            elif kind == "categorical":
                features[name] = CategoricalProfile.from_dict(name, raw, path=path)
            else:
                problems.append(f"{path}.kind: unknown kind {_describe(kind)}")
        except DataError as exc:
            problems.extend(exc.problems)
    return features


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(value: Any) -> str:
    """A short, safe description of an untrusted value (containers are never walked)."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}"
    if isinstance(value, str):
        return repr(_short(value))
    if value is None or isinstance(value, bool | int | float):
        return _short(value)
    return type(value).__name__


class _Fields:
    """Typed reads of one object's fields, collecting a problem per malformed field (named by
    its key path) instead of raising at the first."""

    def __init__(self, data: Any, path: str) -> None:
        self.data: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
        self.path = path
        self.problems: list[str] = []
        if not isinstance(data, Mapping):
            self.problems.append(f"{path}: expected an object, got {_describe(data)}")

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            self.problems.append(f"{self._where(key)}: missing")
        return default

    def _absent(self, key: str) -> int:
        self.problems.append(f"{self._where(key)}: missing")
        return 0

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(f"{self.path}.{problem}" if self.path else problem)

    def done(self) -> None:
        if self.problems:
            raise DataError(self.problems)

    @staticmethod
    def _is_count(value: Any) -> bool:
        return type(value) is int and 0 <= value <= _MAX_INT

    def count(self, key: str, *, default: Any = _MISSING) -> int:
        if key not in self.data:
            return int(self._get(key, default)) if default is not _MISSING else self._absent(key)
        value = self.data[key]
        if not self._is_count(value):
            self.problems.append(
                f"{self._where(key)}: expected an integer from 0 to 2**63-1, got {_describe(value)}"
            )
            return 0
        return int(value)

    def number_or_none(self, key: str) -> float | None:
        value = self._get(key, None)
        if value is None:
            return None
        if type(value) not in (int, float) or not math.isfinite(value):
            self.problems.append(
                f"{self._where(key)}: expected a finite number, got {_describe(value)}"
            )
            return None
        return float(value)

    def _list(self, key: str, limit: int) -> list[Any]:
        value = self._get(key, _MISSING)
        if value is _MISSING:
            return []
        if not isinstance(value, list):
            self.problems.append(f"{self._where(key)}: expected a list, got {_describe(value)}")
            return []
        if len(value) > limit:
            self.problems.append(f"{self._where(key)}: at most {limit} values, got {len(value)}")
            return []
        return value

    def _items(self, key: str, values: list[Any], ok: Any, expected: str) -> bool:
        for i, value in enumerate(values):
            if not ok(value):
                self.problems.append(
                    f"{self._where(key)}[{i}]: expected {expected}, got {_describe(value)}"
                )
                return False
        return True

    def numbers(self, key: str, *, limit: int = MAX_EDGES) -> tuple[float, ...]:
        values = self._list(key, limit)

        def finite(v: Any) -> bool:
            return type(v) in (int, float) and math.isfinite(v)

        return (
            tuple(float(v) for v in values)
            if self._items(key, values, finite, "a finite number")
            else ()
        )

    def counts(self, key: str, *, limit: int) -> tuple[int, ...]:
        values = self._list(key, limit)
        good = self._items(key, values, self._is_count, "an integer from 0 to 2**63-1")
        return tuple(int(v) for v in values) if good else ()

    def texts(self, key: str) -> tuple[str, ...]:
        values = self._list(key, MAX_VALUES)

        def text(v: Any) -> bool:
            return isinstance(v, str) and len(v) <= MAX_TEXT

        good = self._items(key, values, text, f"text of at most {MAX_TEXT} characters")
        return tuple(values) if good else ()

    def text(self, key: str, *, default: str) -> str:
        value = self._get(key, default)
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            self.problems.append(
                f"{self._where(key)}: expected text of at most {MAX_TEXT} characters, got "
                f"{_describe(value)}"
            )
            return default
        return value

    def flag(self, key: str, *, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            self.problems.append(
                f"{self._where(key)}: expected true or false, got {_describe(value)}"
            )
            return default
        return value


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
    source.require([*numeric, *categorical])
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
