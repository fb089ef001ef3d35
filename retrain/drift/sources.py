"""Input adapters: the columns of a DataFrame, pyarrow Table or parquet/CSV path.

:class:`_Source` reads whole columns or streams record batches from parquet; the helpers below
classify a column's values (numeric, boolean, string, ...) so a dtype mismatch can be named, and
turn a column into numpy floats or an arrow array.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from retrain.errors import DataError

#: Rows per record batch when streaming a parquet file or directory.
BATCH_ROWS = 262_144

DataLike: TypeAlias = Any  # pandas DataFrame / Series, pyarrow Table / RecordBatch, str or Path
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
        #: per column of a parquet directory, ``[(type, [files]), ...]``
        self.file_types: dict[str, list[tuple[Any, list[str]]]] = {}
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
            self._open_csv(path, delimiter="\t" if name.endswith(".tsv") else ",")
            return
        try:  # the files only: pyarrow would read the first file's footer for a schema
            listing = ds.dataset(path, format="parquet", schema=pa.schema([]))
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError([f"cannot read parquet: {exc}"], source=str(path)) from None
        fragments = list(listing.get_fragments())
        if not fragments:
            raise DataError(["no parquet files found"], source=str(path))
        schemas = _file_schemas(fragments, self.role)
        self.paths = [f.path for f in fragments]
        self.file_types = _column_types(self.paths, schemas)
        fields = []
        for column, types in self.file_types.items():
            unified = _unify(column, types)
            fields.append(unified if unified is not None else types[0][0])
        self.dataset = ds.dataset(self.paths, format="parquet", schema=pa.schema(fields))
        self.names = [f.name for f in fields]

    def _open_csv(self, path: Path, *, delimiter: str) -> None:
        try:
            table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=delimiter))
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError([f"cannot read CSV: {exc}"], source=str(path)) from None
        problems = []
        for field in table.schema:  # pyarrow reads text that is not UTF-8 as binary
            if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
                row = _first_non_utf8(table.column(field.name))
                problems.append(
                    f"column {field.name!r}: not UTF-8 text (row {row}); save the file as UTF-8"
                )
        if any(not isinstance(n, str) or _non_utf8(n) for n in table.column_names):
            problems.append("the header is not UTF-8 text; save the file as UTF-8")
        if problems:
            raise DataError(problems, source=str(path))
        self.table = table
        self.names = list(table.column_names)

    def require(self, columns: Sequence[str]) -> None:
        """Raise :class:`DataError` naming the files if any of ``columns`` has types across the
        files of a parquet directory that do not convert into one."""
        problems = []
        for column in columns:
            types = self.file_types.get(column, [])
            if len(types) > 1 and _unify(column, types) is None:
                parts = [f"{f.type} in {_shown(files)}" for f, files in sorted(types, key=_size)]
                problems.append(
                    f"column {column!r} has types that do not convert: " + "; ".join(parts)
                )
        if problems:
            raise DataError(problems, source=self.role)

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


def _file_schemas(fragments: Sequence[Any], role: str) -> list[Any]:
    """Every file's schema (its footer); :class:`DataError` naming each unreadable file."""
    schemas, problems = [], []
    for fragment in fragments:
        try:
            schemas.append(fragment.physical_schema)
        except (pa.ArrowException, OSError) as exc:
            problems.append(f"{fragment.path}: not a parquet file or damaged: {exc}")
    if problems:
        raise DataError(problems, source=role)
    return schemas


def _column_types(
    paths: Sequence[str], schemas: Sequence[Any]
) -> dict[str, list[tuple[Any, list[str]]]]:
    """Per column (in first-seen order), its types with the files that have each."""
    found: dict[str, dict[str, tuple[Any, list[str]]]] = {}
    for file, schema in zip(paths, schemas, strict=True):
        for field in schema:
            entry = found.setdefault(field.name, {}).setdefault(str(field.type), (field, []))
            entry[1].append(file)
    return {name: list(types.values()) for name, types in found.items()}


def _unify(column: str, types: Sequence[tuple[Any, list[str]]]) -> Any:
    """The field that every type of ``column`` converts to, or ``None``."""
    if len(types) == 1:
        return types[0][0]
    try:
        schema = pa.unify_schemas(
            [pa.schema([field]) for field, _ in types], promote_options="permissive"
        )
    except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return schema.field(column)


def _size(entry: tuple[Any, list[str]]) -> int:
    return len(entry[1])


def _shown(files: Sequence[str], limit: int = 3) -> str:
    more = f" and {len(files) - limit} more" if len(files) > limit else ""
    count = f"{len(files)} files: " if len(files) > 1 else ""
    return count + ", ".join(files[:limit]) + more


def _non_utf8(value: Any) -> bool:
    if isinstance(value, bytes):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return True
    return False


def _first_non_utf8(column: Any) -> int:
    """The 1-based data row of the first value of a binary column that is not UTF-8."""
    for i, value in enumerate(column.to_pylist(), start=1):
        if _non_utf8(value):
            return i
    return 0


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


def _to_arrow(column: Any) -> Any:
    if not isinstance(column, pd.Series):
        return column
    try:
        return pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        as_text = column.astype("str").where(column.notna(), None)
        return pa.array(as_text, from_pandas=True, type=pa.large_string())
