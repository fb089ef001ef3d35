"""Extract: read the training window and the new data since the last training from the source.

Parquet sources are read with pyarrow datasets (a file, a directory or a hive-partitioned
dataset, local or any pyarrow/fsspec URL such as ``s3://`` or ``gs://``) with the event-time
filter pushed down. SQL sources are read with SQLAlchemy. The result is written to the run's
work directory as one parquet file, identified by a deterministic data version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from retrain.config import ParquetSource, RetrainConfig, SqlSource
from retrain.errors import ConfigError, DataError
from retrain.handoff import recall, remember
from retrain.redact import redact
from retrain.times import to_utc

__all__ = [
    "ALL_HISTORY",
    "ExtractResult",
    "RowHashes",
    "content_hash",
    "count_rows",
    "extract",
    "extracted_row_hashes",
    "read_frame",
    "read_source",
    "required_columns",
    "row_hashes",
    "sample_rows",
    "select_columns",
    "write_frame",
]


_ROW_HASHES = "row_hashes"  # handoff part: (sorted columns, row_hashes) of an extracted file
RowHashes = tuple[list[str], "np.ndarray"]


@dataclass(frozen=True)
class ExtractResult:
    """What was extracted, where it was written, and which data version it is."""

    path: str
    rows: int
    new_samples: int
    data_version: str
    content_hash: str
    as_of: str
    window_start: str | None
    first_event: str | None
    last_event: str | None
    watermark: str | None
    columns: list[str]
    #: Rows in the window before a full rebuild's ``full_rebuild.max_rows`` sample (``None``:
    #: not sampled, ``rows`` are all of them).
    sampled_from: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        sampled = f" sampled of {self.sampled_from}" if self.sampled_from is not None else ""
        return f"{self.rows} rows{sampled} ({self.new_samples} new), {self.data_version}"


def required_columns(config: RetrainConfig) -> list[str]:
    """Event time, features and label, in that order."""
    return [config.data.source.event_time_column, *config.model.features.all, config.model.target]


def _dataset(path: str) -> ds.Dataset:
    """The parquet dataset at ``path`` (hive partitions discovered); unreadable files named."""

    try:
        if "://" not in path:
            if not Path(path).exists():
                raise DataError([f"data source path does not exist: {path}"], source="data.source")
            filesystem, root = None, path
        else:
            try:  # pyarrow's native filesystems: s3://, gs://, hdfs://, file://
                filesystem, root = pafs.FileSystem.from_uri(path)
            except (pa.ArrowInvalid, ValueError):  # anything else fsspec knows
                import fsspec  # noqa: PLC0415 - only for filesystems pyarrow lacks

                fs, root = fsspec.core.url_to_fs(path)
                filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(fs))
        try:
            return ds.dataset(root, filesystem=filesystem, format="parquet", partitioning="hive")
        except (pa.ArrowInvalid, OSError):
            # discovery reads the first file's footer: name the files that cannot be read
            listing = ds.dataset(root, filesystem=filesystem, format="parquet", schema=_NO_SCHEMA)
            _file_schemas(list(listing.get_fragments()))
            raise
    except DataError:
        raise
    except Exception as exc:
        problem = f"cannot open parquet dataset {path}: {exc}"
        raise DataError([problem], source="data.source") from exc


_NO_SCHEMA = pa.schema([])


def _file_schemas(fragments: list[ds.Fragment]) -> list[pa.Schema]:
    """The schema of every file (footers read in threads); :class:`DataError` naming every
    file that is not a readable parquet file."""

    def schema(fragment: ds.Fragment) -> pa.Schema | str:
        try:
            return fragment.physical_schema
        except (pa.ArrowException, OSError) as exc:
            return f"{fragment.path}: not a readable parquet file: {exc}"

    with ThreadPoolExecutor(min(8, max(1, len(fragments)))) as pool:
        found = list(pool.map(schema, fragments))
    problems = [f for f in found if isinstance(f, str)]
    if problems:
        raise DataError(problems, source="data.source")
    return [f for f in found if isinstance(f, pa.Schema)]


def _time_filter(
    column: str,
    field_type: pa.DataType,
    start: datetime | None,
    end: datetime | None,
    keep_missing: bool = False,
) -> ds.Expression | None:

    if not pa.types.is_timestamp(field_type):
        raise DataError(
            [f"column {column!r} must be a timestamp, found {field_type}"], source="data.source"
        )
    expr = None
    if start is not None:
        expr = ds.field(column) > pa_scalar_like(start, field_type)
    if end is not None:
        upper = ds.field(column) <= pa_scalar_like(end, field_type)
        expr = upper if expr is None else expr & upper
    if expr is not None and keep_missing:
        expr = expr | ds.field(column).is_null()
    return expr


def _shown(files: Sequence[str], limit: int = 3) -> str:
    more = f" and {len(files) - limit} more" if len(files) > limit else ""
    return ", ".join(files[:limit]) + more


class _Files:
    """The files of a parquet dataset with their own schemas, for the columns a read needs.

    pyarrow takes a dataset's schema from its first file; here every file's footer is read, the
    files are checked column by column (present, and of types that unify), and the read uses the
    unified schema. Only files with rows in the window count: a column added later, or retyped,
    in partitions outside the window is no problem.
    """

    def __init__(self, dataset: ds.Dataset, path: str, time_col: str) -> None:
        self.dataset, self.path, self.time_col = dataset, path, time_col
        self.fragments = list(dataset.get_fragments())
        if not self.fragments:
            raise DataError([f"no parquet files in {path}"], source="data.source")
        self.schemas = _file_schemas(self.fragments)
        # hive partition keys: what discovery added to the first file's own columns
        first = set(self.schemas[0].names)
        self.partition_fields = [f for f in dataset.schema if f.name not in first]

    def names(self) -> set[str]:
        names = {f.name for f in self.partition_fields}
        for schema in self.schemas:
            names.update(schema.names)
        return names

    def _types(self, column: str, keep: list[int]) -> tuple[dict[str, list[int]], list[int]]:
        """``({type: file indexes}, indexes of files without the column)`` among ``keep``."""
        types: dict[str, list[int]] = {}
        lacking = []
        for i in keep:
            schema = self.schemas[i]
            index = schema.get_field_index(column)
            if index < 0:
                lacking.append(i)
            else:
                types.setdefault(str(schema.field(index).type), []).append(i)
        return types, lacking

    def _field(self, column: str, files: dict[str, list[int]]) -> pa.Field | None:
        fields = [self.schemas[i[0]].field(column) for i in files.values()]
        try:
            unified = pa.unify_schemas(
                [pa.schema([f]) for f in fields], promote_options="permissive"
            )
        except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        return unified.field(column)

    def _conflict(self, column: str, files: dict[str, list[int]]) -> str:
        groups = sorted(files.items(), key=lambda kv: len(kv[1]))
        parts = []
        for type_, indexes in groups:
            paths = [self.fragments[i].path for i in indexes]
            count = f"{len(paths)} files: " if len(paths) > 1 else ""
            parts.append(f"{type_} in {count}{_shown(paths)}")
        return f"column {column!r} has types that do not convert: " + "; ".join(parts)

    def time_field(self) -> pa.Field:
        everywhere = list(range(len(self.fragments)))
        types, lacking = self._types(self.time_col, everywhere)
        if not types:
            raise DataError(
                [f"event time column {self.time_col!r} not found in {self.path}"],
                source="data.source",
            )
        problems = []
        if lacking:
            paths = [self.fragments[i].path for i in lacking]
            problems.append(
                f"event time column {self.time_col!r} is missing in {len(paths)} of "
                f"{len(self.fragments)} files: {_shown(paths)}"
            )
        field = self._field(self.time_col, types)
        if field is None:
            problems.append(self._conflict(self.time_col, types))
        if problems:
            raise DataError(problems, source="data.source")
        assert field is not None
        return field

    def scan(
        self, wanted: list[str], flt: ds.Expression | None, time_field: pa.Field
    ) -> tuple[ds.Dataset, list[str]]:
        """The dataset to read ``wanted`` from (files with rows in the window, unified schema)
        and the columns of ``wanted`` that any file has."""
        partition_names = {f.name for f in self.partition_fields}
        names = self.names()
        columns = [c for c in wanted if c in names]
        physical = [c for c in columns if c not in partition_names and c != self.time_col]
        everywhere = list(range(len(self.fragments)))
        odd: set[int] = set()
        for column in physical:
            types, lacking = self._types(column, everywhere)
            odd.update(lacking)
            if len(types) > 1:
                common = max(types.values(), key=len)
                odd.update(
                    i for indexes in types.values() if indexes is not common for i in indexes
                )
        keep = [i for i in everywhere if i not in odd or self._has_rows(i, flt, time_field)]
        problems, fields = [], [time_field]
        for column in physical:
            types, lacking = self._types(column, keep)
            if not types:  # in no file with rows in the window: the contract reports it
                columns.remove(column)
                continue
            if lacking:
                paths = [self.fragments[i].path for i in lacking]
                problems.append(
                    f"column {column!r} is missing in {len(paths)} of {len(keep)} files with rows "
                    f"in the window: {_shown(paths)}"
                )
            field = self._field(column, types)
            if field is None:
                problems.append(self._conflict(column, types))
            else:
                fields.append(field)
        if problems:
            raise DataError(problems, source="data.source")
        fields += [f for f in self.partition_fields if f.name in columns]
        schema = pa.schema(fields)
        fragments = [self.fragments[i] for i in keep]
        dataset = ds.FileSystemDataset(
            fragments, schema=schema, format=self.dataset.format, filesystem=self.dataset.filesystem
        )
        return dataset, columns

    def _has_rows(self, index: int, flt: ds.Expression | None, time_field: pa.Field) -> bool:
        fragment = self.fragments[index]
        scanner = fragment.scanner(
            schema=pa.schema([time_field]), columns=[self.time_col], filter=flt
        )
        try:
            return bool(scanner.count_rows())
        except pa.ArrowException as exc:
            raise DataError(
                [f"{fragment.path}: cannot read column {self.time_col!r}: {exc}"],
                source="data.source",
            ) from None

    def read(self, dataset: ds.Dataset, columns: list[str], flt: ds.Expression | None) -> pa.Table:
        try:
            return dataset.to_table(columns=columns, filter=flt)
        except pa.ArrowException:
            pass
        for fragment in dataset.get_fragments():  # name the file that cannot be read
            try:
                fragment.to_table(schema=dataset.schema, columns=columns, filter=flt)
            except pa.ArrowException as exc:
                raise DataError([f"{fragment.path}: {exc}"], source="data.source") from None
        return dataset.to_table(columns=columns, filter=flt)


def read_source(
    config: RetrainConfig,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    sql_url: str | None = None,
    columns: Sequence[str] | None = None,
    keep_missing_times: bool = False,
) -> pa.Table:
    """Rows with ``start < event_time <= end``, with ``columns`` (default: the columns the model
    needs), those present.

    ``keep_missing_times``: also the rows without an event time (which no window can place), so
    that the data contract sees them.

    Parquet: every file's schema is read and the files with rows in the window must agree
    (:class:`DataError` naming the column, the files and their types); SQL: see
    :func:`_read_sql`.
    """
    source = config.data.source
    wanted = list(columns) if columns is not None else required_columns(config)
    if isinstance(source, ParquetSource):
        files = _Files(_dataset(source.path), source.path, source.event_time_column)
        time_field = files.time_field()
        flt = _time_filter(
            source.event_time_column, time_field.type, start, end, keep_missing_times
        )
        dataset, present = files.scan(wanted, flt, time_field)
        return files.read(dataset, present, flt)
    return _read_sql(source, wanted, start, end, sql_url, keep_missing_times=keep_missing_times)


def count_rows(
    config: RetrainConfig,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    sql_url: str | None = None,
) -> int:
    """Rows with ``start < event_time <= end``, reading the event-time column only."""
    time_col = config.data.source.event_time_column
    table = read_source(config, start=start, end=end, sql_url=sql_url, columns=[time_col])
    return int(table.num_rows)


def _read_sql(
    source: SqlSource,
    wanted: list[str],
    start: datetime | None,
    end: datetime | None,
    sql_url: str | None,
    *,
    keep_missing_times: bool = False,
) -> pa.Table:
    """Read a SQL source: one ``SELECT`` built with SQLAlchemy, in a read-only transaction.

    The table and the event-time column are identifiers (checked again here, then quoted by the
    dialect), never pasted into SQL text; the window bounds are bound parameters. A ``query`` must
    be one read (``SELECT``/``WITH``) and becomes a subquery. The transaction is read-only where
    the database has one (PostgreSQL: ``SET TRANSACTION READ ONLY``; SQLite: ``PRAGMA
    query_only``) and is never committed.
    """
    import sqlalchemy as sa  # noqa: PLC0415 - only for SQL sources

    problems = source.sql_problems()
    if problems:
        raise ConfigError(problems, source="data.source")
    url = sql_url or source.url
    if url is None:
        raise DataError(
            [
                f"data.source.conn_id {source.conn_id!r} is resolved by Airflow; outside Airflow "
                "pass a SQLAlchemy URL (data.source.url)"
            ],
            source="data.source",
        )
    time_col = source.event_time_column
    if source.table is not None:
        schema, _, name = source.table.rpartition(".")
        selectable: Any = sa.table(name, sa.column(time_col), schema=schema or None)
    else:
        body = (source.read_statement() or "").replace(":", "\\:")  # no bind parameters
        selectable = sa.text(f"{body}\n").columns(sa.column(time_col)).subquery("src")
    engine = sa.create_engine(url)
    column = selectable.c[time_col]
    bound = start is not None or end is not None
    conditions = []
    if start is not None:
        conditions.append(column > _sql_time(start, engine.dialect.name))
    if end is not None:
        conditions.append(column <= _sql_time(end, engine.dialect.name))
    statement: Any = sa.select(sa.literal_column("*")).select_from(selectable)
    if bound:
        window = sa.and_(*conditions)
        statement = statement.where(
            sa.or_(window, column.is_(None)) if keep_missing_times else window
        )
    try:
        with engine.connect() as conn:
            _read_only(conn)
            frame = pd.read_sql(statement, conn)
            conn.rollback()
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        problem = f"SQL source query failed: {_database_error(exc)}"
        raise DataError([problem], source="data.source") from None
    finally:
        engine.dispose()
    if time_col not in frame.columns:
        raise DataError(
            [f"event time column {time_col!r} not found in SQL result"], source="data.source"
        )
    # naive UTC into arrow, then tagged UTC: pyarrow's conversion of a tz-aware column goes
    # through ``Series.values``, which pandas 3.1 deprecates
    frame[time_col] = pd.to_datetime(frame[time_col], utc=True).dt.tz_convert(None)
    table = pa.Table.from_pandas(
        frame[[c for c in wanted if c in frame.columns]], preserve_index=False
    )
    if time_col not in table.column_names:
        return table
    index = table.schema.get_field_index(time_col)
    unit = table.schema.field(index).type.unit
    return table.set_column(index, time_col, table.column(index).cast(pa.timestamp(unit, tz="UTC")))


def _sql_time(value: datetime, dialect: str) -> datetime:
    """A window bound as a query parameter: UTC, aware for PostgreSQL (right for ``timestamptz``
    whatever the session's time zone; a ``timestamp`` column ignores the offset), naive
    elsewhere."""
    utc = value.astimezone(UTC)
    return utc if dialect == "postgresql" else utc.replace(tzinfo=None)


def _read_only(conn: Any) -> None:
    """Make the connection's transaction read-only where the database supports it."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    elif dialect == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")


def _database_error(exc: BaseException) -> str:
    """The database's own message (first line, redacted), without SQLAlchemy's echo of the
    statement and its background link; pandas' wrapper unwrapped."""
    if isinstance(exc, pd.errors.DatabaseError) and exc.__cause__ is not None:
        exc = exc.__cause__
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip()
    first = text.splitlines()[0] if text else ""
    return redact(f"{type(cause).__name__}: {first}")


def row_hashes(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> np.ndarray:
    """One 64-bit hash per row of ``frame`` over ``columns`` (default: all), in name order.

    :func:`pandas.util.hash_pandas_object` without the index: a row's hash depends on its values
    only, so equal rows (of typed columns) hash equal. The basis of :func:`content_hash` and of
    the duplicate-row check.
    """

    ordered = select_columns(frame, sorted(frame.columns if columns is None else columns))
    return pd.util.hash_pandas_object(ordered, index=False).to_numpy()


def select_columns(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The columns ``names`` of ``frame``, in that order, without copying their data.

    ``frame[names]`` copies every selected value (a 1M-row window's features: ~200 MB); this
    frame shares them, and pandas copy-on-write keeps a change on either side to that side.
    ``names`` must be distinct.
    """

    if len(set(names)) != len(names):
        raise DataError([f"select_columns: a column is named twice in {list(names)}"])
    return pd.DataFrame({name: frame[name] for name in names}, index=frame.index, copy=False)


def content_hash(frame: pd.DataFrame, hashes: np.ndarray | None = None) -> str:
    """A deterministic SHA-256 of the frame's rows, independent of column and row order.

    The digest covers the column names and the sorted :func:`row_hashes` (pass them as
    ``hashes`` if already computed), i.e. the multiset of rows.
    """

    digest = hashlib.sha256(json.dumps(sorted(frame.columns)).encode())
    values = row_hashes(frame) if hashes is None else hashes
    digest.update(np.sort(values).tobytes())
    return digest.hexdigest()


def _time_range(table: pa.Table, column: str) -> tuple[datetime | None, datetime | None]:

    if table.num_rows == 0:
        return None, None

    column_type = table.schema.field(column).type
    values = table.column(column).cast(pa.timestamp("us", tz=column_type.tz), safe=False)
    bounds = pc.min_max(values)
    lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
    return to_utc(lo), to_utc(hi)


#: ``extract(window_days=ALL_HISTORY)``: no training window, all history up to ``as_of``.
ALL_HISTORY = 0


def extract(
    config: RetrainConfig,
    *,
    out_dir: str | Path,
    as_of: datetime,
    watermark: datetime | None = None,
    window_days: int | None = None,
    sql_url: str | None = None,
    max_rows: int | None = None,
) -> ExtractResult:
    """Extract the training window ending at ``as_of`` and count rows newer than ``watermark``.

    ``window_days`` overrides ``data.training_window_days`` (``None`` = use the config,
    :data:`ALL_HISTORY` = no window: every row up to ``as_of``, as a full rebuild trains).
    A window of more than ``max_rows`` rows keeps a uniform sample of ``max_rows`` of them, in
    time order, drawn with ``model.random_state`` (the same rows give the same sample); new
    rows are counted before sampling.
    The data goes to ``<out_dir>/data.parquet``; re-running with the same inputs rewrites the
    same file with the same data version.
    """

    as_of = to_utc(as_of) or datetime.now(UTC)
    days = window_days if window_days is not None else config.data.training_window_days
    # ALL_HISTORY (0) and a null config window alike: no lower bound
    start = as_of - timedelta(days=days) if days else None
    time_col = config.data.source.event_time_column
    # rows without an event time fall in no window: kept, so that the data contract reports
    # them (a problem) instead of their silent loss
    table = read_source(config, start=start, end=as_of, sql_url=sql_url, keep_missing_times=True)
    table = _sort_by_time(table, time_col)
    first, last = _time_range(table, time_col)
    watermark = to_utc(watermark)
    new = _count_after(table, time_col, watermark)
    sampled_from = None
    if max_rows is not None and table.num_rows > max_rows:
        sampled_from = table.num_rows
        table = sample_rows(table, max_rows, seed=config.model.random_state)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "data.parquet"
    frame = table.to_pandas()
    with ThreadPoolExecutor(1) as pool:  # pyarrow writes without the GIL: hash meanwhile
        written = pool.submit(
            pq.write_table, table, path, use_dictionary=_dictionary_columns(frame)
        )
        hashes = row_hashes(frame)
        digest = content_hash(frame, hashes)
        written.result()
    version = f"{(last or as_of):%Y-%m-%d}_{table.num_rows}rows_{digest[:12]}"
    remember(path, frame)
    remember(path, (sorted(frame.columns), hashes), _ROW_HASHES)
    rows, names = table.num_rows, table.column_names
    del table, frame, hashes
    release_arrow_memory()
    return ExtractResult(
        path=str(path),
        rows=rows,
        new_samples=new,
        data_version=version,
        content_hash=digest,
        as_of=as_of.isoformat(),
        window_start=start.isoformat() if start else None,
        first_event=first.isoformat() if first else None,
        last_event=last.isoformat() if last else None,
        watermark=watermark.isoformat() if watermark else None,
        columns=names,
        sampled_from=sampled_from,
    )


def sample_rows(table: pa.Table, rows: int, *, seed: int) -> pa.Table:
    """A uniform sample of ``rows`` rows of ``table`` without replacement, in table order."""
    picked = np.random.default_rng(seed).choice(table.num_rows, size=rows, replace=False)
    return table.take(pa.array(np.sort(picked)))


def _sort_by_time(table: pa.Table, column: str) -> pa.Table:
    """``table.sort_by(column)``; a table already in that order (the usual case) as is."""

    values = table.column(column)
    if values.null_count == 0 and (
        table.num_rows < 2 or pc.all(pc.less_equal(values[:-1], values[1:])).as_py()
    ):
        return table
    return table.sort_by([(column, "ascending")])


def _count_after(table: pa.Table, column: str, watermark: datetime | None) -> int:
    """Rows with ``column > watermark`` (every row with an event time without a watermark)."""

    if table.num_rows == 0:
        return 0
    values = table.column(column)
    if watermark is None:
        return int(table.num_rows - values.null_count)
    return int(pc.sum(pc.greater(values, pa_scalar_like(watermark, values.type))).as_py() or 0)


def pa_scalar_like(value: datetime, type_: pa.DataType) -> pa.Scalar:
    """``value`` as an arrow scalar of timestamp type ``type_`` (naive columns are UTC)."""

    naive_ok = value if type_.tz else value.astimezone(UTC).replace(tzinfo=None)
    return pa.scalar(naive_ok, type=pa.timestamp("us", tz=type_.tz)).cast(type_)


def _dictionary_columns(frame: pd.DataFrame) -> list[str]:
    """The columns worth dictionary-encoding in parquet: all but numbers, booleans and times.

    pyarrow tries a dictionary for every column by default and falls back for numbers, which
    costs a third of the write time for the same file size.
    """
    return [str(c) for c, dtype in frame.dtypes.items() if dtype.kind not in "biufcmM"]


def write_frame(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a step's frame to parquet (no index), for :func:`read_frame` in the next step."""
    frame.to_parquet(path, index=False, use_dictionary=_dictionary_columns(frame))
    remember(path, frame.reset_index(drop=True))


def extracted_row_hashes(path: str | Path) -> RowHashes | None:
    """``(sorted columns, row_hashes)`` of the file :func:`extract` wrote at ``path``, if it
    handed them over (inside :func:`retrain.handoff.shared_outputs` and the file unchanged)."""
    hashes: RowHashes | None = recall(path, _ROW_HASHES)
    return hashes


def read_frame(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a parquet file written by a step back into pandas.

    Inside :func:`retrain.handoff.shared_outputs` (``retrain run``) the frame the step wrote is
    handed over from memory while the file is unchanged (same result as decoding the file).
    """

    shared: pd.DataFrame | None = recall(path)
    if shared is not None:
        # copy-on-write (pandas 3): the caller's changes never reach the shared frame
        return select_columns(shared, columns) if columns is not None else shared.copy(deep=False)
    try:
        frame = pd.read_parquet(path, columns=columns)
    except FileNotFoundError:
        raise DataError([f"file not found: {path}"]) from None
    release_arrow_memory()
    return frame


def release_arrow_memory() -> None:
    """Return memory that pyarrow's allocator keeps after reading or writing to the OS.

    Decoding a parquet file leaves freed buffers (several times the data) in pyarrow's pool;
    numpy and scikit-learn allocate elsewhere and cannot reuse them, so without this they stay
    resident through the fit that follows.
    """

    pa.default_memory_pool().release_unused()
