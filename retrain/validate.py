"""Validate: the data contract checked before anything is trained.

The contract comes from the config (columns and their kinds, NaN policy, allowed categories,
minimum rows, duplicate share) and, when a production model exists, from its reference profile
(categories it has seen). Every problem is collected, each naming the column and a count, so one
run shows everything that is wrong.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from retrain.config import RetrainConfig
from retrain.data import RowHashes
from retrain.data import row_hashes as hash_rows
from retrain.errors import DataError

__all__ = ["ValidationReport", "check_frame", "validate"]

_MAX_EXAMPLES = 5


@dataclass(frozen=True)
class ValidationReport:
    """Outcome of the contract checks: ``problems`` block training, ``warnings`` do not."""

    rows: int
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def summary(self) -> str:
        if self.ok:
            return f"{self.rows} rows passed the contract"
        return f"{len(self.problems)} problems: " + "; ".join(self.problems)


def _examples(values: Collection[Any]) -> str:
    shown = sorted(map(str, values))[:_MAX_EXAMPLES]
    more = f" and {len(values) - _MAX_EXAMPLES} more" if len(values) > _MAX_EXAMPLES else ""
    return ", ".join(repr(v) for v in shown) + more


class _Checker:
    def __init__(self, config: RetrainConfig, frame: pd.DataFrame) -> None:
        self.config = config
        self.frame = frame
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.checks: list[str] = []

    def columns(self) -> set[str]:
        model = self.config.model
        required = [self.config.data.source.event_time_column, *model.features.all, model.target]
        missing = [c for c in required if c not in self.frame.columns]
        for column in missing:
            self.problems.append(f"column {column!r}: required but missing")
        self.checks.append("required columns present")
        return set(required) - set(missing)

    def rows(self) -> None:
        n = len(self.frame)
        minimum = self.config.data.validation.min_rows
        if n < minimum:
            what = "no rows in the training window" if n == 0 else f"{n} rows"
            self.problems.append(f"rows: {what}; at least {minimum} required")
        self.checks.append(f"at least {minimum} rows")

    def numeric(self, column: str) -> None:

        series = self.frame[column]
        if not (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)):
            self.problems.append(f"column {column!r}: expected numeric, found dtype {series.dtype}")
            return
        inf = int(np.isinf(series.to_numpy(dtype="float64", na_value=np.nan)).sum())
        if inf:
            self.problems.append(f"column {column!r}: {inf} infinite values")
        self.missing(column, int(series.isna().sum()))

    def categorical(self, column: str, known: Collection[str] | None) -> None:

        series = self.frame[column]
        if pd.api.types.is_float_dtype(series):
            self.problems.append(
                f"column {column!r}: expected categorical (text), found dtype {series.dtype}"
            )
            return
        self.missing(column, int(series.isna().sum()))
        values = set(series.dropna().astype(str).unique())
        allowed = self.config.data.validation.allowed_categories.get(column)
        if allowed is not None:
            outside = values - set(allowed)
            if outside:
                count = int(series.astype(str).isin(outside).sum())
                self.problems.append(
                    f"column {column!r}: {count} rows with categories outside the allowed list: "
                    f"{_examples(outside)}"
                )
        if known is not None:
            unseen = values - set(known)
            if unseen:
                count = int(series.astype(str).isin(unseen).sum())
                text = (
                    f"column {column!r}: {count} rows with categories the production model "
                    f"never saw: {_examples(unseen)}"
                )
                if self.config.data.validation.unseen_categories == "error":
                    self.problems.append(text)
                else:
                    self.warnings.append(text)

    def missing(self, column: str, count: int) -> None:
        if not count:
            return
        settings = self.config.data.validation
        policy = settings.missing.get(column)
        share = count / max(len(self.frame), 1)
        if policy == "forbid":
            self.problems.append(f"column {column!r}: {count} missing values; policy forbids any")
        elif policy != "allow" and share > settings.max_missing_share:
            self.problems.append(
                f"column {column!r}: {count} missing values ({share:.1%}) exceed "
                f"max_missing_share {settings.max_missing_share:.1%}"
            )

    def label(self) -> None:

        target = self.config.model.target
        series = self.frame[target]
        missing = int(series.isna().sum())
        if missing:
            self.problems.append(f"label {target!r}: {missing} missing values (NaN labels)")
        labels = series.dropna()
        if pd.api.types.is_float_dtype(labels) and not (labels == labels.round()).all():
            self.problems.append(
                f"label {target!r}: expected class labels, found continuous values"
            )
            return
        classes = labels.nunique()
        if len(labels) and classes < 2:
            self.problems.append(
                f"label {target!r}: only one class ({labels.iloc[0]!r}); at least 2 required"
            )
        self.checks.append("label present with at least two classes")

    def event_time(self) -> None:

        column = self.config.data.source.event_time_column
        series = self.frame[column]
        if not pd.api.types.is_datetime64_any_dtype(series):
            self.problems.append(f"column {column!r}: expected timestamps, found {series.dtype}")
            return
        missing = int(series.isna().sum())
        if missing:
            self.problems.append(f"column {column!r}: {missing} missing event times")

    def duplicates(self, present: set[str], row_hashes: RowHashes | None) -> None:
        if not len(self.frame):
            return
        count = _duplicate_count(self.frame, sorted(present), row_hashes)
        share = count / len(self.frame)
        limit = self.config.data.validation.max_duplicate_share
        if share > limit:
            self.problems.append(
                f"rows: {count} duplicate rows ({share:.1%}) exceed max_duplicate_share {limit:.1%}"
            )
        self.checks.append(f"duplicate share <= {limit:.1%}")


def _duplicate_count(
    frame: pd.DataFrame, columns: list[str], row_hashes: RowHashes | None = None
) -> int:
    """``frame[columns].duplicated().sum()``, without comparing every row of every column.

    Equal rows have equal :func:`retrain.data.row_hashes` over the columns whose hash depends on
    the value alone (numbers with -0.0 and NaN canonicalised, booleans, times, strings), so only
    rows sharing that hash with another row can be duplicates, and ``duplicated()`` runs on
    those candidates only (without such columns: on every row). ``row_hashes`` (``(columns,
    hashes)``, computed by the extract) are used when they cover exactly those columns.
    """

    def hashable(dtype: object) -> bool:
        if isinstance(dtype, np.dtype):
            return dtype.kind in "biufmM"
        return isinstance(dtype, pd.StringDtype | pd.DatetimeTZDtype)

    hashed = sorted(c for c in columns if hashable(frame[c].dtype))
    if not hashed:
        return int(frame[columns].duplicated().sum())
    if (
        row_hashes is not None
        and list(row_hashes[0]) == hashed
        and len(row_hashes[1]) == len(frame)
    ):
        combined = row_hashes[1]
    else:
        combined = hash_rows(frame, hashed)
    candidates = pd.Series(combined).duplicated(keep=False).to_numpy()
    if not candidates.any():
        return 0
    return int(frame.loc[candidates, columns].duplicated().sum())


def check_frame(
    config: RetrainConfig,
    frame: pd.DataFrame,
    *,
    known_categories: Mapping[str, Collection[str]] | None = None,
    row_hashes: RowHashes | None = None,
) -> ValidationReport:
    """Check ``frame`` against the contract and return every problem found.

    ``row_hashes``: ``(columns, hashes)`` the extract already computed (saves hashing again).
    """
    checker = _Checker(config, frame)
    present = checker.columns()
    checker.rows()
    features = config.model.features
    for column in features.numeric:
        if column in present:
            checker.numeric(column)
    for column in features.categorical:
        if column in present:
            known = None if known_categories is None else known_categories.get(column)
            checker.categorical(column, known)
    checker.checks.append("dtypes, NaN/inf policy and categories per feature")
    if config.model.target in present:
        checker.label()
    if config.data.source.event_time_column in present:
        checker.event_time()
    checker.duplicates(present, row_hashes)
    return ValidationReport(len(frame), checker.problems, checker.warnings, checker.checks)


def validate(
    config: RetrainConfig,
    frame: pd.DataFrame,
    *,
    known_categories: Mapping[str, Collection[str]] | None = None,
    source: str | None = None,
) -> ValidationReport:
    """Like :func:`check_frame`, but raise :class:`DataError` listing every problem."""
    report = check_frame(config, frame, known_categories=known_categories)
    if not report.ok:
        raise DataError(report.problems, source=source)
    return report
