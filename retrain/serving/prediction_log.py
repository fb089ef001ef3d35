"""The prediction log: every answered prediction, written off the request path.

:meth:`PredictionLog.submit` appends a request's rows to a bounded in-memory buffer and returns
at once; a writer thread inserts them in batches (``batch_size`` rows, one ``executemany`` with
bound parameters, one transaction; fewer rows wait up to ``linger`` seconds for more, so a busy
server commits a few times a second, not once per request) into ``retrain_predictions``
(:mod:`~retrain.serving.tables`). A full buffer
never blocks a request: the rows are dropped, counted (:attr:`PredictionLog.dropped`) and
reported (a warning, ``/health``). A database error keeps the batch and retries with a backoff.
:meth:`PredictionLog.close` stops taking rows and drains the buffer first, so a graceful
shutdown loses nothing; it also runs at interpreter exit for a log nobody closed.
"""

from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from retrain.redact import redact
from retrain.serving.tables import PREDICTIONS, create_tables, open_engine

__all__ = ["PredictionLog"]

logger = logging.getLogger(__name__)

_OPEN: weakref.WeakSet[PredictionLog] = weakref.WeakSet()
_MAX_BACKOFF = 5.0


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
        self._rows: collections.deque[Mapping[str, Any]] = collections.deque()
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
            return len(self._rows) + self._in_flight

    def submit(self, rows: Sequence[Mapping[str, Any]]) -> bool:
        """Queue ``rows`` (all or none); ``False`` if they were dropped (buffer full or log
        closed). Never blocks on the database."""
        with self._cond:
            if self._closing or len(self._rows) + len(rows) > self.queue_size:
                self.dropped += len(rows)
                dropped = True
            else:
                self._rows.extend(rows)
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
                while self._rows or self._in_flight:
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
                while not self._rows and not self._closing:
                    self._cond.wait()
                if not self._rows:
                    return
                if self.linger:
                    self._cond.wait_for(self._batch_ready, timeout=self.linger)
                take = min(self.batch_size, len(self._rows))
                batch = [self._rows.popleft() for _ in range(take)]
                self._in_flight = len(batch)
            written = self._write(batch)
            with self._cond:
                self._in_flight = 0
                if written:
                    self.written += len(batch)
                else:
                    self.lost += len(batch) + len(self._rows)
                    self._rows.clear()
                self._cond.notify_all()

    def _batch_ready(self) -> bool:
        return len(self._rows) >= self.batch_size or self._closing or self._flushing > 0

    def _write(self, batch: list[Mapping[str, Any]]) -> bool:
        """Insert ``batch``, retrying while the database fails; ``False`` only when closing and
        past the close timeout."""
        backoff = 0.2
        while True:
            try:
                with self.engine.begin() as conn:
                    conn.execute(PREDICTIONS.insert(), list(batch))
            except sa.exc.SQLAlchemyError as exc:
                self.last_error = redact(f"{type(exc).__name__}: {exc}")[:500]
                logger.warning(
                    "prediction log %s: writing %d rows failed, retrying: %s",
                    self.shown_url,
                    len(batch),
                    self.last_error,
                )
                if self._closing and time.monotonic() >= self._deadline:
                    return False
                time.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
            else:
                self.last_error = None
                return True

    def _warn_dropped(self) -> None:
        now = time.monotonic()
        if now - self._warned_at >= 10.0:
            self._warned_at = now
            logger.warning(
                "prediction log %s: buffer full or closed, %d rows dropped so far",
                self.shown_url,
                self.dropped,
            )
