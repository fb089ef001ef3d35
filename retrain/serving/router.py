"""The router: ``@production`` and ``@canary`` of one registered model, split by a sticky hash.

:class:`Router` loads the versions both aliases point at through the registry's verified loader
(:meth:`retrain.registry.ModelRegistry.load_checked`: skops with the recorded trusted types,
never unpickled, and it must predict on its own input example, the check a promotion runs),
answers :meth:`Router.predict` and logs every answer
(:class:`~retrain.serving.prediction_log.PredictionLog`).

Alias moves are followed by a background thread that reads the aliases every
``refresh_seconds / 2`` (two small registry requests), loads a version that moved, checks it
(it predicts, and the columns it was fitted on are features of the config), and only then swaps
the served pair in one assignment: a request reads the pair once, so it never sees half a swap
and never waits for a load. A version that fails to load (or a registry that cannot be read)
leaves the old one serving; the failure is logged and shown by :attr:`Router.status`
(``/health``), and the version is tried again after :data:`RETRY_FAILED_SECONDS`.

The split (:mod:`~retrain.serving.split`) sends the share ``traffic_fraction`` of entity ids
(request ids for rows without one) to the canary; without a canary, or when both aliases hold
the same version, production answers everything.

One model call per version and batch: a classifier whose ``classes_[argmax(predict_proba)]``
equals its ``predict`` on the version's load-check sample (its registered input example; true of
gradient boosting, random forests, logistic regression, not of every estimator) is asked only
``predict_proba``; any other keeps both calls (:attr:`Served.calls`, shown by ``/version``).
:meth:`Router.submit` coalesces concurrent requests (dynamic batching): while a batch computes,
the next requests queue; the next batch takes every queued request up to ``max_batch_rows``
rows, calls each version once and splits the answers back per request. While more requests are
in flight than queued (the HTTP handlers count them, :meth:`Router.in_flight`), the batching
thread first waits up to ``batch_wait_ms`` (default 5 ms) for them; a lone request never waits.
Without that pause the batching thread, which holds the GIL while a model computes, starts the
next batch at once and the event loop can neither send the answers nor read the next requests:
the batches stay small.

The work per row is columnar: a batch's arms, feature hashes, labels and probabilities are
computed as arrays, a request's answer is :class:`Answers` (columns, which read as a sequence of
:class:`Prediction`), and the prediction log gets one columnar chunk per batch. Model calls run
with ``model_threads`` OpenMP threads (``serving.model_threads``, default 1): scikit-learn's
histogram gradient boosting opens a parallel region per tree, which on a small batch costs far
more than it saves (and stalls a loaded machine: the calling thread waits for the other threads
to be scheduled).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.pipeline import Pipeline
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from retrain.config import RetrainConfig
from retrain.errors import DataError, RegistryError, RetrainError
from retrain.redact import redact
from retrain.registry import ModelRegistry
from retrain.serving.prediction_log import PredictionLog
from retrain.serving.split import CANARY, PRODUCTION, Arm, canary_share
from retrain.serving.tables import log_url

__all__ = [
    "MAX_BATCH_ROWS",
    "RETRY_FAILED_SECONDS",
    "Answers",
    "Prediction",
    "PredictionError",
    "Router",
    "RouterClosedError",
    "Served",
]

logger = logging.getLogger(__name__)

#: A version that failed to load is tried again after this many seconds.
RETRY_FAILED_SECONDS = 60.0
#: Rows per coalesced batch at most (a larger request still runs, alone).
MAX_BATCH_ROWS = 1000

Calls = Literal["predict_proba", "predict + predict_proba", "predict"]
_dumps = json.JSONEncoder().encode  # what json.dumps(value) gives, without its argument checks


class PredictionError(RetrainError):
    """The model raised on the rows of a request (its answers were not given)."""


class RouterClosedError(RetrainError):
    """The router was closed: it takes no more requests."""


@dataclass(frozen=True)
class Served:
    """One loaded version: its alias, number, model, when it was loaded and what it is asked
    (``calls``: ``predict_proba`` alone, labels as ``classes_[argmax]``, when that equals
    ``predict`` on its load-check sample; else ``predict + predict_proba``, or ``predict``
    for a model without probabilities)."""

    alias: Arm
    version: int
    model: Any
    loaded_at: datetime
    calls: Calls = "predict + predict_proba"


@dataclass(frozen=True)
class _Pair:
    production: Served
    canary: Served | None


@dataclass(frozen=True)
class Prediction:
    """One answered row, as the prediction log stores it.

    ``probability``: for a binary classifier the probability of the second class
    (``classes_[1]``), for more classes that of the predicted class; ``None`` without
    ``predict_proba``. ``latency_ms``: of the call that answered the row (its whole batch).
    ``feature_hash``: BLAKE2b (128 bits) of the row's feature values as JSON, in config order.
    """

    request_id: str
    entity_id: str | None
    model: str
    version: int
    arm: Arm
    prediction: Any
    probability: float | None
    latency_ms: float
    timestamp: datetime
    feature_hash: str
    error: str | None = None

    def to_row(self) -> dict[str, Any]:
        """The ``retrain_predictions`` row of this prediction."""
        return {
            "model": self.model,
            "request_id": self.request_id,
            "entity_id": self.entity_id,
            "version": self.version,
            "arm": self.arm,
            "prediction": None if self.error else json.dumps(self.prediction),
            "probability": self.probability,
            "latency_ms": self.latency_ms,
            "predicted_at": self.timestamp,
            "feature_hash": self.feature_hash,
            "error": self.error,
        }


@dataclass(frozen=True, eq=False)
class Answers(Sequence[Prediction]):
    """The answered rows of one request, column by column (one list entry per row).

    Reads as a sequence of :class:`Prediction` (built on access); :meth:`body` is the JSON answer
    of ``/invocations``. ``predictions``: JSON-ready labels; ``probabilities``: as
    :attr:`Prediction.probability` (``None``: none, or not finite); ``latency_ms`` and
    ``timestamp``: of the batch that answered the request.
    """

    model: str
    request_ids: list[str]
    entity_ids: list[str | None]
    versions: list[int]
    arms: list[Arm]
    predictions: list[Any]
    probabilities: list[float | None]
    feature_hashes: list[str]
    latency_ms: float
    timestamp: datetime

    def __len__(self) -> int:
        return len(self.request_ids)

    @overload
    def __getitem__(self, index: int) -> Prediction: ...
    @overload
    def __getitem__(self, index: slice) -> list[Prediction]: ...
    def __getitem__(self, index: int | slice) -> Prediction | list[Prediction]:
        if isinstance(index, slice):
            return [self._one(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._one(index)

    def __iter__(self) -> Iterator[Prediction]:
        return (self._one(i) for i in range(len(self)))

    def _one(self, i: int) -> Prediction:
        return Prediction(
            request_id=self.request_ids[i],
            entity_id=self.entity_ids[i],
            model=self.model,
            version=self.versions[i],
            arm=self.arms[i],
            prediction=self.predictions[i],
            probability=self.probabilities[i],
            latency_ms=self.latency_ms,
            timestamp=self.timestamp,
            feature_hash=self.feature_hashes[i],
        )

    def body(self) -> dict[str, Any]:
        """MLflow's ``{"predictions": [...]}`` plus ``"retrain"``: each row's ``request_id``,
        ``entity_id``, ``version``, ``arm`` and ``probability``."""
        return {
            "predictions": self.predictions,
            "retrain": [
                {"request_id": r, "entity_id": e, "version": v, "arm": a, "probability": p}
                for r, e, v, a, p in zip(
                    self.request_ids,
                    self.entity_ids,
                    self.versions,
                    self.arms,
                    self.probabilities,
                    strict=True,
                )
            ],
        }


@dataclass(frozen=True)
class _Request:
    """A checked request waiting for its answers."""

    frame: pd.DataFrame
    request_ids: list[str]
    entity_ids: list[str | None]
    started: float
    future: Future[Answers]


class Router:
    """Serves ``config.model.name``: production plus canary, following the aliases.

    ``refresh_seconds``: an alias move is served within this delay (the aliases are read twice
    as often; default ``serving.refresh_seconds``, 5). ``traffic_fraction``: the canary's share,
    default ``deployment.canary_traffic_percent / 100``. The log: ``prediction_log`` (shared,
    not closed here), else a new one at ``prediction_log_url`` (default
    ``serving.prediction_log``, else SQLite under ``storage.work_dir``/serving) with
    ``queue_size`` and ``batch_size``, closed by :meth:`close`. ``registry``: the registry to
    read (default ``ModelRegistry(config)``). ``start``: start following the aliases now (else
    call :meth:`refresh` yourself). ``max_batch_rows``: rows per batch of :meth:`submit`
    (default ``serving.max_batch_rows``). ``batch_wait_ms``: how long the batching thread waits
    for requests in flight to join a batch (:meth:`in_flight`; default
    ``serving.batch_wait_ms``). ``model_threads``: OpenMP threads per model call (default
    ``serving.model_threads``; ``0``: the library's default).

    The constructor loads production (raising :class:`RegistryError` without one) and the
    canary. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        config: RetrainConfig,
        *,
        refresh_seconds: float | None = None,
        traffic_fraction: float | None = None,
        prediction_log: PredictionLog | None = None,
        prediction_log_url: str | None = None,
        queue_size: int = 10_000,
        batch_size: int = 500,
        registry: ModelRegistry | None = None,
        start: bool = True,
        max_batch_rows: int | None = None,
        batch_wait_ms: float | None = None,
        model_threads: int | None = None,
    ) -> None:
        fraction = (
            config.deployment.canary_traffic_percent / 100
            if traffic_fraction is None
            else traffic_fraction
        )
        if not 0 <= fraction <= 1:
            raise DataError([f"traffic_fraction must be within 0..1, got {fraction}"])
        refresh = config.serving.refresh_seconds if refresh_seconds is None else refresh_seconds
        if not refresh > 0:
            raise DataError([f"refresh_seconds must be > 0, got {refresh}"])
        batch_rows = config.serving.max_batch_rows if max_batch_rows is None else max_batch_rows
        if batch_rows < 1:
            raise DataError([f"max_batch_rows must be at least 1, got {batch_rows}"])
        threads = config.serving.model_threads if model_threads is None else model_threads
        if threads < 0:
            raise DataError([f"model_threads must be >= 0, got {threads}"])
        wait = config.serving.batch_wait_ms if batch_wait_ms is None else batch_wait_ms
        if not wait >= 0:
            raise DataError([f"batch_wait_ms must be >= 0, got {wait}"])
        self.config = config
        self.name = config.model.name
        self.features = list(config.model.features.all)
        self.max_batch_rows = batch_rows
        self.batch_wait_ms = wait
        self.model_threads = threads
        self._in_flight = 0
        self._batches = {"count": 0, "requests": 0, "rows": 0}  # what the batching thread took
        self._openmp: Any = None  # threadpoolctl's OpenMP libraries, found after a model loads
        self._queue: collections.deque[_Request] = collections.deque()
        self._queue_cond = threading.Condition()
        self._closed = False
        self._batcher: threading.Thread | None = None
        self.refresh_seconds = refresh
        self.traffic_fraction = fraction
        self._registry = registry if registry is not None else ModelRegistry(config)
        self._refresh_lock = threading.Lock()
        self._failed: dict[int, tuple[str, float]] = {}
        self.last_refresh: datetime | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pair = self._first_pair()
        self._owns_log = prediction_log is None
        self.log = (
            prediction_log
            if prediction_log is not None
            else PredictionLog(
                prediction_log_url or log_url(config),
                queue_size=queue_size,
                batch_size=batch_size,
            )
        )
        if start:
            self.start()

    def __repr__(self) -> str:
        return f"Router({self.name!r}, {self.served()})"

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- answering -----------------------------------------------------------------------------

    def predict(
        self,
        frame: pd.DataFrame,
        *,
        entity_ids: Sequence[str | None] | None = None,
        request_ids: Sequence[str] | None = None,
    ) -> Answers:
        """Predict every row of ``frame`` (the config's features; other columns are ignored)
        and log each answer, in this thread; the answers read as a list of :class:`Prediction`.
        ``entity_ids`` (one per row, ``None`` allowed) choose each row's arm; the rows without
        one go to one arm together, chosen by the first of ``request_ids`` (which name the rows;
        generated when absent), so a call without entity ids is answered by one version. Raises
        :class:`DataError` for missing columns or a length mismatch, :class:`PredictionError`
        if the model raises.
        """
        request = self._request(frame, entity_ids, request_ids)
        (answer,) = self._answer(self._pair, [request])
        if isinstance(answer, PredictionError):
            raise answer
        return answer

    def submit(
        self,
        frame: pd.DataFrame,
        *,
        entity_ids: Sequence[str | None] | None = None,
        request_ids: Sequence[str] | None = None,
    ) -> Future[Answers]:
        """:meth:`predict`, batched with the requests submitted at the same time: the rows are
        checked now (:class:`DataError`), answered by the batching thread; the future holds the
        predictions, or the :class:`PredictionError` of this request's rows. The answers are
        those :meth:`predict` gives; a request the model fails on fails alone."""
        request = self._request(frame, entity_ids, request_ids)
        with self._queue_cond:
            if self._closed:
                raise RouterClosedError(f"the router of {self.name!r} is closed")
            self._queue.append(request)
            if self._batcher is None:
                self._batcher = threading.Thread(
                    target=self._batch_loop, name=f"retrain-serving-batch-{self.name}", daemon=True
                )
                self._batcher.start()
            self._queue_cond.notify()
        return request.future

    def _request(
        self,
        frame: pd.DataFrame,
        entity_ids: Sequence[str | None] | None,
        request_ids: Sequence[str] | None,
    ) -> _Request:
        """A checked request (the features in config order, an id per row)."""
        rows = len(frame)
        columns = list(frame.columns)
        if columns != self.features:
            missing = [c for c in self.features if c not in frame.columns]
            if missing:
                raise DataError([f"missing column(s): {', '.join(missing)}"])
            frame = frame[self.features]
        if entity_ids is not None and len(entity_ids) != rows:
            raise DataError([f"{len(entity_ids)} entity ids for {rows} rows"])
        if request_ids is not None and len(request_ids) != rows:
            raise DataError([f"{len(request_ids)} request ids for {rows} rows"])
        return _Request(
            frame=frame,
            request_ids=(list(request_ids) if request_ids is not None else _new_ids(rows)),
            entity_ids=list(entity_ids) if entity_ids is not None else [None] * rows,
            started=time.perf_counter(),
            future=Future(),
        )

    def _batch_loop(self) -> None:
        """The batching thread: every queued request (up to ``max_batch_rows`` rows), one
        model call per version, until closed and drained."""
        while True:
            with self._queue_cond:
                while not self._queue and not self._closed:
                    self._queue_cond.wait()
                if not self._queue:
                    return
                self._wait_for_company()
                batch: list[_Request] = []
                rows = 0
                while self._queue and (
                    not batch or rows + len(self._queue[0].frame) <= self.max_batch_rows
                ):
                    request = self._queue.popleft()
                    # a request whose client went away (cancelled) is neither answered nor logged
                    if request.future.set_running_or_notify_cancel():
                        batch.append(request)
                        rows += len(request.frame)
            if not batch:
                continue
            self._batches["count"] += 1
            self._batches["requests"] += len(batch)
            self._batches["rows"] += rows
            answers: list[Answers | BaseException]
            try:
                answers = [*self._answer(self._pair, batch)]
            except Exception as exc:  # a bug must not leave a client waiting
                logger.exception("%s: answering a batch failed", self.name)
                answers = [exc] * len(batch)
            for request, answer in zip(batch, answers, strict=True):
                if isinstance(answer, BaseException):
                    request.future.set_exception(answer)
                else:
                    request.future.set_result(answer)

    def _wait_for_company(self) -> None:
        """While other requests are in flight (:meth:`in_flight`) and the queue holds fewer
        than ``max_batch_rows`` rows, wait up to ``batch_wait_ms`` for them (the lock is held;
        waiting releases it, and the GIL: the event loop sends the last batch's answers and
        queues the requests that came meanwhile)."""
        deadline = time.monotonic() + self.batch_wait_ms / 1000
        while (
            not self._closed
            and self._in_flight > len(self._queue)
            and sum(len(r.frame) for r in self._queue) < self.max_batch_rows
        ):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._queue_cond.wait(left)

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        """Count a request as in flight while this block runs (an HTTP handler: from its
        arrival to its answer, in the event loop's thread). Only while more requests are in
        flight than queued does the batching thread wait for them (``batch_wait_ms``): a lone
        request never waits."""
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1

    def _answer(self, pair: _Pair, requests: list[_Request]) -> list[Answers | PredictionError]:
        """Answer and log ``requests`` with one call per version; if the model fails on the
        batch, each request is answered alone, so the error reaches only those it concerns."""
        if len(requests) == 1:
            request = requests[0]
            frame, ids, entities = request.frame, request.request_ids, request.entity_ids
        else:
            frame = pd.concat([r.frame for r in requests], ignore_index=True)
            ids = [i for r in requests for i in r.request_ids]
            entities = [e for r in requests for e in r.entity_ids]
        rows = len(ids)
        canary = self._canary_rows(pair, requests)
        predictions, probabilities, failure, failed = self._call_versions(pair, frame, canary)
        if failure is not None and len(requests) > 1:
            return [self._answer(pair, [r])[0] for r in requests]
        now = datetime.now(UTC)
        done = time.perf_counter()
        hashes = _feature_hashes(frame)
        arms: list[Arm] = np.where(canary, CANARY, PRODUCTION).tolist()
        canary_version = pair.canary.version if pair.canary is not None else -1
        versions: list[int] = np.where(canary, canary_version, pair.production.version).tolist()
        chances = _optional_floats(probabilities)
        latencies = [(done - r.started) * 1000 for r in requests]
        logged: dict[str, list[Any]] = {
            "model": [self.name] * rows,
            "request_id": ids,
            "entity_id": entities,
            "version": versions,
            "arm": arms,
            "prediction": _json_texts(predictions),
            "probability": chances,
            "latency_ms": [
                x for r, x in zip(requests, latencies, strict=True) for _ in r.request_ids
            ],
            "predicted_at": [now] * rows,
            "feature_hash": hashes,
            "error": [None] * rows,
        }
        if failure is not None:  # one request: nothing answered, the failed rows are logged
            error = str(failure)[:500]
            keep = failed.tolist()
            logged = {k: [v[i] for i in keep] for k, v in logged.items()}
            logged["prediction"] = [None] * len(keep)
            logged["error"] = [error] * len(keep)
            self.log.submit_columns(logged)
            return [failure]
        self.log.submit_columns(logged)
        results: list[Answers | PredictionError] = []
        start = 0
        for request, latency in zip(requests, latencies, strict=True):
            stop = start + len(request.request_ids)
            results.append(
                Answers(
                    model=self.name,
                    request_ids=ids[start:stop],
                    entity_ids=entities[start:stop],
                    versions=versions[start:stop],
                    arms=arms[start:stop],
                    predictions=predictions[start:stop],
                    probabilities=chances[start:stop],
                    feature_hashes=hashes[start:stop],
                    latency_ms=latency,
                    timestamp=now,
                )
            )
            start = stop
        return results

    def _call_versions(
        self, pair: _Pair, frame: pd.DataFrame, canary: npt.NDArray[np.bool_]
    ) -> tuple[list[Any], npt.NDArray[np.float64], PredictionError | None, npt.NDArray[np.intp]]:
        """Each version's rows, one model call each: the labels, the probabilities (NaN: none),
        the first failure and the positions of the rows whose version failed."""
        rows = len(canary)
        predictions: list[Any] = [None] * rows
        probabilities: npt.NDArray[np.float64] = np.full(rows, np.nan)
        failure: PredictionError | None = None
        failed: npt.NDArray[np.intp] = np.empty(0, dtype=np.intp)
        for served, chosen in ((pair.production, ~canary), (pair.canary, canary)):
            if served is None or not chosen.any():
                continue
            everything = bool(chosen.all())
            positions = np.arange(rows) if everything else np.flatnonzero(chosen)
            try:
                with self._threads():
                    labels, proba = _predict(
                        served, frame if everything else frame.take(positions), self.name
                    )
            except PredictionError as exc:
                failure, failed = failure or exc, np.concatenate([failed, positions])
                continue
            if everything:
                predictions = labels
            else:
                for position, label in zip(positions.tolist(), labels, strict=True):
                    predictions[position] = label
            if proba is not None:
                probabilities[positions] = proba
        return predictions, probabilities, failure, failed

    def _canary_rows(self, pair: _Pair, requests: list[_Request]) -> npt.NDArray[np.bool_]:
        """Which rows the canary answers: a row with an entity id by its own key, the other rows
        of a request together, by the request's first request id
        (:func:`~retrain.serving.split.canary_share`)."""
        rows = sum(len(r.request_ids) for r in requests)
        canary = pair.canary
        if canary is None or canary.version == pair.production.version:
            return np.zeros(rows, dtype=bool)
        name, fraction = self.name, self.traffic_fraction
        chosen: list[npt.NDArray[np.bool_]] = []
        for request in requests:
            if not request.request_ids:
                continue
            own = canary_share(name, request.request_ids[0]) < fraction
            if any(entity is not None for entity in request.entity_ids):
                chosen.append(
                    np.fromiter(
                        (
                            own if entity is None else canary_share(name, entity) < fraction
                            for entity in request.entity_ids
                        ),
                        dtype=bool,
                        count=len(request.entity_ids),
                    )
                )
            else:
                chosen.append(np.full(len(request.request_ids), own))
        return np.concatenate(chosen) if chosen else np.zeros(0, dtype=bool)

    def _threads(self) -> contextlib.AbstractContextManager[Any]:
        """The model call's OpenMP thread limit (this thread only; OpenMP's limit is per
        thread), or nothing with ``model_threads`` 0 or no OpenMP library loaded."""
        if self.model_threads == 0 or not self._openmp:
            return contextlib.nullcontext()
        limiter: contextlib.AbstractContextManager[Any] = self._openmp.limit(
            limits=self.model_threads
        )
        return limiter

    # --- following the aliases -----------------------------------------------------------------

    def start(self) -> None:
        """Start the thread that follows the aliases (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._follow, name=f"retrain-serving-refresh-{self.name}", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Answer the requests queued, take no more, stop following the aliases; write every
        logged prediction (a log of its own)."""
        with self._queue_cond:
            self._closed = True
            self._queue_cond.notify_all()
        if self._batcher is not None:
            self._batcher.join(timeout=60)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._owns_log:
            self.log.close()

    def refresh(self) -> bool:
        """Read the aliases; load and swap in versions that moved. ``True`` if the served pair
        changed. A failure keeps what serves (see :attr:`status`)."""
        with self._refresh_lock:
            try:
                wanted = self._aliases()
            except RetrainError as exc:
                self._failure(f"reading the aliases of {self.name!r} failed: {exc}")
                return False
            pair = self._pair
            production = (
                self._updated(pair.production, PRODUCTION, wanted.get(PRODUCTION))
                or pair.production
            )
            canary = pair.canary
            if wanted.get(CANARY) is None:
                canary = None
            else:
                canary = self._updated(canary, CANARY, wanted[CANARY])
            new = _Pair(production, canary)
            self.last_refresh = datetime.now(UTC)
            self.last_error = self._pending_error(wanted, new)
            if production is pair.production and canary is pair.canary:
                return False
            self._pair = new  # the swap: one assignment
            logger.info("%s now serves %s", self.name, _versions(new))
            return True

    def served(self) -> dict[str, int]:
        """The version each arm serves: ``{"production": 3, "canary": 4}``."""
        return _versions(self._pair)

    @property
    def status(self) -> dict[str, Any]:
        """What serves, each arm's fraction and load time, and the last refresh's error."""
        pair = self._pair
        canary_fraction = (
            self.traffic_fraction
            if pair.canary is not None and pair.canary.version != pair.production.version
            else 0.0
        )
        arms: dict[str, Any] = {
            PRODUCTION: _described(pair.production, 1.0 - canary_fraction),
        }
        if pair.canary is not None:
            arms[CANARY] = _described(pair.canary, canary_fraction)
        return {
            "model": self.name,
            "status": "degraded" if self.last_error else "ok",
            "arms": arms,
            "refresh_seconds": self.refresh_seconds,
            "max_batch_rows": self.max_batch_rows,
            "batch_wait_ms": self.batch_wait_ms,
            "model_threads": self.model_threads,
            "batches": dict(self._batches),
            "last_refresh": _iso(self.last_refresh),
            "error": self.last_error,
            "prediction_log": self.log.stats(),
        }

    def _follow(self) -> None:
        while not self._stop.wait(self.refresh_seconds / 2):
            try:
                self.refresh()
            except Exception as exc:  # the thread must outlive any surprise
                logger.exception("refreshing %s failed", self.name)
                self._failure(f"refresh failed: {type(exc).__name__}: {exc}")

    def _first_pair(self) -> _Pair:
        wanted = self._aliases()
        if wanted.get(PRODUCTION) is None:
            raise RegistryError(f"model {self.name!r} has no production version to serve")
        production = self._load(PRODUCTION, wanted[PRODUCTION])
        canary = None
        if wanted.get(CANARY) is not None:
            try:
                canary = self._load(CANARY, wanted[CANARY])
            except RetrainError as exc:
                self._failed[wanted[CANARY]] = (str(exc), time.monotonic())
                logger.error("%s: canary not served: %s", self.name, exc)
        pair = _Pair(production, canary)
        self.last_refresh = datetime.now(UTC)
        self.last_error = self._pending_error(wanted, pair)
        return pair

    def _aliases(self) -> dict[Arm, int]:
        current = self._registry.current(PRODUCTION, CANARY)
        return {arm: current[arm].version for arm in (PRODUCTION, CANARY) if arm in current}

    def _updated(self, served: Served | None, alias: Arm, version: int | None) -> Served | None:
        """``served`` if it is still ``version`` (or nothing better loads), else the new one."""
        if version is None or (served is not None and served.version == version):
            return served
        failed = self._failed.get(version)
        if failed is not None and time.monotonic() - failed[1] < RETRY_FAILED_SECONDS:
            return served
        try:
            return self._load(alias, version)
        except RetrainError as exc:
            self._failed[version] = (str(exc), time.monotonic())
            keeping = f"keeping v{served.version}" if served is not None else "no canary served"
            logger.error("%s: %s v%s not served (%s): %s", self.name, alias, version, keeping, exc)
            return served

    def _load(self, alias: Arm, version: int) -> Served:
        model = self._registry.load_checked(version)
        if self._openmp is None or not self._openmp:  # its OpenMP library is loaded by now
            self._openmp = ThreadpoolController().select(user_api="openmp")
        what = f"version {version} of {self.name!r}"
        _check_model(model, self.features, what)
        calls = self._calls(model, version, what)
        self._failed.pop(version, None)
        logger.info("%s %s v%s serves, asking the model %s", self.name, alias, version, calls)
        return Served(
            alias=alias, version=version, model=model, loaded_at=datetime.now(UTC), calls=calls
        )

    def _calls(self, model: Any, version: int, what: str) -> Calls:
        """What to ask ``model``: :func:`choose_calls` on its load-check sample (its input
        example, :meth:`ModelRegistry.input_example`; both calls when it cannot be read)."""
        if not hasattr(model, "predict_proba"):
            return "predict"
        try:
            sample = self._registry.input_example(version)
        except Exception as exc:  # the registry or the file: keep the safe path
            logger.warning("%s: no load-check sample (%s): both calls", what, exc)
            return "predict + predict_proba"
        return choose_calls(model, sample)

    def _pending_error(self, wanted: Mapping[Arm, int], pair: _Pair) -> str | None:
        """Why an alias's version is not served by ``pair``, if one is not."""
        served = _versions(pair)
        problems = [
            f"{alias} is v{version} but v{served[alias]} serves: {self._failed[version][0]}"
            if alias in served
            else f"{alias} v{version} is not served: {self._failed[version][0]}"
            for alias, version in wanted.items()
            if served.get(alias) != version and version in self._failed
        ]
        if PRODUCTION not in wanted:
            problems.append(f"the production alias is not set: v{served[PRODUCTION]} serves")
        return redact("; ".join(problems)) if problems else None

    def _failure(self, message: str) -> None:
        self.last_error = redact(message)
        logger.error("%s (serving %s)", self.last_error, self.served())


def _versions(pair: _Pair) -> dict[str, int]:
    found: dict[str, int] = {PRODUCTION: pair.production.version}
    if pair.canary is not None:
        found[CANARY] = pair.canary.version
    return found


def _check_model(model: Any, features: Sequence[str], what: str) -> None:
    """Refuse a model that cannot predict or was fitted on columns the config lacks."""
    if not callable(getattr(model, "predict", None)):
        raise RegistryError(f"{what} has no predict method")
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is not None:
        unknown = [str(c) for c in fitted if str(c) not in features]
        if unknown:
            raise RegistryError(
                f"{what} was fitted on column(s) the config's model.features lack: "
                f"{', '.join(unknown)}"
            )


def choose_calls(model: Any, sample: pd.DataFrame | None) -> Calls:
    """``predict_proba`` alone when ``classes_[argmax(predict_proba)]`` equals ``predict`` on
    every row of ``sample`` (the version's load-check sample), else both calls (also without a
    sample, ``classes_`` or 2-D probabilities); ``predict`` for a model without
    ``predict_proba``."""
    if not hasattr(model, "predict_proba"):
        return "predict"
    both: Calls = "predict + predict_proba"
    classes = getattr(model, "classes_", None)
    if sample is None or len(sample) == 0 or classes is None:
        return both
    try:
        labels, proba = _labels_and_proba(model, sample)
        derived = _labels_from(np.asarray(classes), np.asarray(proba))
    except Exception:  # the load check passed: a model that fails here keeps both calls
        return both
    labels = np.asarray(labels)
    if derived is None or derived.shape != labels.shape or not (derived == labels).all():
        return both
    return "predict_proba"


def _labels_from(classes: Any, proba: Any) -> Any | None:
    """``classes[argmax]`` per row of 2-D probabilities (``None`` for any other shape)."""
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        return None
    return classes.take(proba.argmax(axis=1))


def _labels_and_proba(model: Any, frame: pd.DataFrame) -> tuple[Any, Any | None]:
    """``model.predict`` and ``model.predict_proba`` (``None`` without it) of ``frame``; a
    pipeline's preprocessing runs once for both (what ``Pipeline.predict`` does, step by step),
    which halves a single row's time when the preprocessing dominates."""
    if not hasattr(model, "predict_proba"):
        return model.predict(frame), None
    if isinstance(model, Pipeline) and len(model.steps) > 1:
        features = model[:-1].transform(frame)
        final = model.steps[-1][1]
        return final.predict(features), final.predict_proba(features)
    return model.predict(frame), model.predict_proba(frame)


def _predict(
    served: Served, frame: pd.DataFrame, name: str
) -> tuple[list[Any], npt.NDArray[np.float64] | None]:
    """One version's JSON-ready labels of the rows of ``frame`` and their probabilities (see
    :attr:`Prediction.probability`; NaN: none), ``None`` for a model without probabilities."""
    model = served.model
    try:
        if served.calls == "predict_proba":
            proba = model.predict_proba(frame)
            labels = _labels_from(model.classes_, np.asarray(proba))
            if labels is None:
                raise ValueError(f"predict_proba gave shape {np.shape(proba)}")
        else:
            labels, proba = _labels_and_proba(model, frame)
    except Exception as exc:
        raise PredictionError(
            f"{name} v{served.version} could not predict: {type(exc).__name__}: {exc}"
        ) from exc
    values = _json_ready(np.asarray(labels))
    if proba is None:
        return values, None
    matrix = np.asarray(proba, dtype=float)
    if matrix.ndim == 2 and matrix.shape[1] == 2:
        return values, matrix[:, 1]
    if matrix.ndim == 2:
        return values, matrix.max(axis=1)
    return values, None


_AS_IS = {str, type(None)}


def _json_ready(values: npt.NDArray[Any]) -> list[Any]:
    """The values of a 1-D array as JSON-ready Python values (NaN as ``None``), as
    :func:`_plain` gives them one by one."""
    if values.dtype.kind == "f":
        found = values.astype(object)
        found[np.isnan(values)] = None
        return list(found.tolist())
    if values.dtype.kind in "iub":
        return list(values.tolist())
    found = values.tolist()
    if set(map(type, found)) <= _AS_IS:  # text and nulls, the usual categorical column
        return list(found)
    return [_plain(v) for v in found]


def _json_texts(values: list[Any]) -> list[str]:
    """``json.dumps`` of each value (integers, the usual labels, by ``int.__repr__``: the same
    text, faster)."""
    if set(map(type, values)) == {int}:
        return list(map(int.__repr__, values))
    return list(map(_dumps, values))


def _optional_floats(values: npt.NDArray[np.float64]) -> list[float | None]:
    """Floats, ``None`` where not finite."""
    found = values.astype(object)
    found[~np.isfinite(values)] = None
    return list(found.tolist())


def _new_ids(count: int) -> list[str]:
    """``count`` random 128-bit ids as 32 hex digits (one ``os.urandom`` call for all: a
    ``uuid4`` per row is a system call per row)."""
    text = os.urandom(16 * count).hex()
    return [text[i : i + 32] for i in range(0, 32 * count, 32)]


def _plain(value: Any) -> Any:
    """A JSON-ready value (NaN as ``None``)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _feature_hashes(frame: pd.DataFrame) -> list[str]:
    """BLAKE2b (128 bits, hex) of each row's values as compact JSON (NaN as ``null``), in the
    frame's column order; the columns are converted to Python values column by column."""
    columns = [_json_ready(frame[c].to_numpy()) for c in frame.columns]
    dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode
    blake2b = hashlib.blake2b
    return [
        blake2b(dumps(row).encode(), digest_size=16).hexdigest()
        for row in zip(*columns, strict=True)
    ]


def _described(served: Served, fraction: float) -> dict[str, Any]:
    return {
        "version": served.version,
        "fraction": round(fraction, 6),
        "loaded_at": _iso(served.loaded_at),
        "calls": served.calls,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None
