"""The prediction log: every answered prediction, written off the request path.

:meth:`PredictionLog.submit_columns` (a batch's rows as columns: one list per column, how the
router hands them over) or :meth:`PredictionLog.submit` (row dicts) appends rows to a bounded
in-memory buffer and returns at once; a writer thread inserts them in batches (``batch_size``
rows, one ``executemany`` with bound parameters, one transaction; fewer rows wait up to
``linger`` seconds for more, so a busy server commits a few times a second, not once per
request) into ``retrain_predictions`` (:mod:`~retrain.serving.tables`). On SQLite the rows go
as multi-row ``INSERT ... VALUES (...), (...)`` statements of :data:`SQLITE_ROWS` rows, the
values processed as SQLAlchemy's insert processes them (same stored text): Python's ``sqlite3``
releases the GIL around every statement it steps, and an ``executemany`` steps once per row,
so under load (the request threads holding the GIL) each row waited for the GIL and the writer
fell behind. PostgreSQL gets SQLAlchemy's ``executemany`` (already multi-row). A full buffer never
blocks a request: the rows are dropped, counted (:attr:`PredictionLog.dropped`) and reported
(a warning, ``/health``). A database error keeps the batch and retries with a backoff.
:meth:`PredictionLog.close` stops taking rows and drains the buffer first, so a graceful
shutdown loses nothing; it also runs at interpreter exit for a log nobody closed.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from retrain.redact import redact
from retrain.serving.tables import PREDICTIONS, create_tables, open_engine

__all__ = ["PredictionLog"]

logger = logging.getLogger(__name__)

_OPEN: weakref.WeakSet[PredictionLog] = weakref.WeakSet()
_MAX_BACKOFF = 5.0
#: Rows per SQLite ``INSERT`` statement (11 values each: within SQLite's oldest limit of 999).
SQLITE_ROWS = 90
_COLUMNS = [c.name for c in PREDICTIONS.c if not c.primary_key]


@dataclass(frozen=True)
class _Chunk:
    """Rows as columns: ``columns[name][i]`` is row ``i``'s value."""

    columns: Mapping[str, Sequence[Any]]
    rows: int

    def split(self, rows: int) -> tuple[_Chunk, _Chunk]:
        """The first ``rows`` rows and the rest."""
        head = {k: v[:rows] for k, v in self.columns.items()}
        tail = {k: v[rows:] for k, v in self.columns.items()}
        return _Chunk(head, rows), _Chunk(tail, self.rows - rows)

    def dicts(self) -> list[dict[str, Any]]:
        """The rows as dicts (what SQLAlchemy's executemany takes)."""
        names = list(self.columns)
        values = zip(*self.columns.values(), strict=True)
        return [dict(zip(names, row, strict=True)) for row in values]

    def values(self, processors: Mapping[str, Any]) -> list[Any]:
        """Every row's values of :data:`_COLUMNS` in order, one flat list (a column the chunk
        lacks is NULL), each column through its SQLAlchemy bind processor, if any: once per
        distinct value (a batch's rows share one timestamp)."""
        columns = []
        for name in _COLUMNS:
            found = self.columns.get(name)
            column = list(found) if found is not None else [None] * self.rows
            process = processors.get(name)
            if process is not None:
                done: dict[Any, Any] = {}
                column = [done[v] if v in done else done.setdefault(v, process(v)) for v in column]
            columns.append(column)
        return list(itertools.chain.from_iterable(zip(*columns, strict=True)))


@atexit.register
def _close_open_logs() -> None:
    for log in list(_OPEN):
        log.close()


class PredictionLog:
    """Rows of ``retrain_predictions`` at ``url``, written in batches by a background thread.

    ``queue_size``: rows held in memory at most (more are dropped and counted); ``batch_size``:
    rows per insert; ``linger``: seconds a smaller batch waits for more rows (not when flushing
    or closing). ``engine``: an engine to use instead of opening ``url``.
    """

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 10_000,
        batch_size: int = 500,
        linger: float = 0.05,
        engine: sa.Engine | None = None,
    ) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be at least 1")
        if linger < 0:
            raise ValueError("linger must be >= 0")
        self.url = url
        self.shown_url = redact(url)
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.linger = linger
        self._flushing = 0
        self.engine = engine if engine is not None else open_engine(url)
        create_tables(self.engine)
        dialect = self.engine.dialect
        self._sqlite = dialect.name == "sqlite"
        self._processors = {
            c.name: c.type.dialect_impl(dialect).bind_processor(dialect) for c in PREDICTIONS.c
        }
        self._chunks: collections.deque[_Chunk] = collections.deque()
        self._queued = 0  # rows in the chunks
        self._cond = threading.Condition()
        self._in_flight = 0
        self._closing = False
        self._deadline = float("inf")
        self.written = 0
        self.dropped = 0
        self.lost = 0
        self.last_error: str | None = None
        self._warned_at = 0.0
        self._thread = threading.Thread(
            target=self._run, name="retrain-prediction-log", daemon=True
        )
        self._thread.start()
        _OPEN.add(self)

    def __repr__(self) -> str:
        return f"PredictionLog({self.shown_url})"

    @property
    def pending(self) -> int:
        """Rows taken but not yet written."""
        with self._cond:
            return self._queued + self._in_flight

    def submit(self, rows: Sequence[Mapping[str, Any]]) -> bool:
        """Queue ``rows`` (dicts of ``retrain_predictions`` columns, all with the same keys;
        all or none); ``False`` if they were dropped (buffer full or log closed). Never blocks
        on the database."""
        if not rows:
            return True
        names = list(rows[0])
        return self.submit_columns({n: [r[n] for r in rows] for n in names})

    def submit_columns(self, columns: Mapping[str, Sequence[Any]]) -> bool:
        """:meth:`submit` of rows given as columns: ``columns[name]`` holds every row's value
        of ``name`` (lists of one length; sliceable sequences)."""
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        count = lengths.pop() if lengths else 0
        if not count:
            return True
        with self._cond:
            if self._closing or self._queued + count > self.queue_size:
                self.dropped += count
                dropped = True
            else:
                self._chunks.append(_Chunk(columns, count))
                self._queued += count
                self._cond.notify()
                dropped = False
        if dropped:
            self._warn_dropped()
        return not dropped

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every row taken so far is written; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._queued or self._in_flight:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
            finally:
                self._flushing -= 1
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Take no more rows, write those held (for ``timeout`` seconds at most while the
        database fails), then stop the writer and release the engine. Idempotent."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._deadline = time.monotonic() + timeout
            self._cond.notify_all()
        self._thread.join(timeout + 1.0)
        _OPEN.discard(self)
        if self.lost:
            logger.error(
                "prediction log %s: %d rows lost at shutdown (%s)",
                self.shown_url,
                self.lost,
                self.last_error,
            )
        self.engine.dispose()

    def stats(self) -> dict[str, Any]:
        """Counters for ``/health``: written, pending, dropped, lost, last error."""
        return {
            "url": self.shown_url,
            "written": self.written,
            "pending": self.pending,
            "dropped": self.dropped,
            "lost": self.lost,
            "last_error": self.last_error,
        }

    # --- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queued and not self._closing:
                    self._cond.wait()
                if not self._queued:
                    return
                if self.linger:
                    self._cond.wait_for(self._batch_ready, timeout=self.linger)
                chunks = self._take(self.batch_size)
                taken = sum(c.rows for c in chunks)
                self._in_flight = taken
            written = self._write(chunks)
            with self._cond:
                self._in_flight = 0
                if written:
                    self.written += taken
                else:
                    self.lost += taken + self._queued
                    self._chunks.clear()
                    self._queued = 0
                self._cond.notify_all()

    def _take(self, rows: int) -> list[_Chunk]:
        """Whole chunks from the buffer's front, the last one split, up to ``rows`` rows (the
        lock is held)."""
        taken: list[_Chunk] = []
        left = rows
        while self._chunks and left > 0:
            chunk = self._chunks.popleft()
            if chunk.rows > left:
                chunk, rest = chunk.split(left)
                self._chunks.appendleft(rest)
            taken.append(chunk)
            left -= chunk.rows
        self._queued -= rows - left
        return taken

    def _batch_ready(self) -> bool:
        return self._queued >= self.batch_size or self._closing or self._flushing > 0

    def _write(self, chunks: list[_Chunk]) -> bool:
        """Insert the rows of ``chunks`` in one transaction, retrying while the database fails;
        ``False`` only when closing and past the close timeout."""
        rows = sum(c.rows for c in chunks)
        backoff = 0.2
        while True:
            try:
                with self.engine.begin() as conn:
                    if self._sqlite:
                        self._insert_sqlite(conn, chunks)
                    else:
                        conn.execute(PREDICTIONS.insert(), [r for c in chunks for r in c.dicts()])
            except sa.exc.SQLAlchemyError as exc:
                self.last_error = redact(f"{type(exc).__name__}: {exc}")[:500]
                logger.warning(
                    "prediction log %s: writing %d rows failed, retrying: %s",
                    self.shown_url,
                    rows,
                    self.last_error,
                )
                if self._closing and time.monotonic() >= self._deadline:
                    return False
                time.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
            else:
                self.last_error = None
                return True

    def _insert_sqlite(self, conn: sa.Connection, chunks: list[_Chunk]) -> None:
        """Multi-row inserts of :data:`SQLITE_ROWS` rows (bound parameters only)."""
        width = len(_COLUMNS)
        values = [v for chunk in chunks for v in chunk.values(self._processors)]
        head = f"INSERT INTO {PREDICTIONS.name} ({', '.join(_COLUMNS)}) VALUES "
        one = "(" + ", ".join("?" * width) + ")"
        step = SQLITE_ROWS * width
        for start in range(0, len(values), step):
            part = values[start : start + step]
            sql = head + ", ".join([one] * (len(part) // width))
            conn.exec_driver_sql(sql, tuple(part))

    def _warn_dropped(self) -> None:
        now = time.monotonic()
        if now - self._warned_at >= 10.0:
            self._warned_at = now
            logger.warning(
                "prediction log %s: buffer full or closed, %d rows dropped so far",
                self.shown_url,
                self.dropped,
            )
