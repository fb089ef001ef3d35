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
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from retrain.config import RetrainConfig
from retrain.errors import DataError, RegistryError, RetrainError
from retrain.redact import redact
from retrain.registry import ModelRegistry
from retrain.serving.prediction_log import PredictionLog
from retrain.serving.split import CANARY, PRODUCTION, Arm, choose_arm
from retrain.serving.tables import log_url

__all__ = ["RETRY_FAILED_SECONDS", "Prediction", "PredictionError", "Router", "Served"]

logger = logging.getLogger(__name__)

#: A version that failed to load is tried again after this many seconds.
RETRY_FAILED_SECONDS = 60.0


class PredictionError(RetrainError):
    """The model raised on the rows of a request (nothing was logged)."""


@dataclass(frozen=True)
class Served:
    """One loaded version: its alias, number, model and when it was loaded."""

    alias: Arm
    version: int
    model: Any
    loaded_at: datetime


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


class Router:
    """Serves ``config.model.name``: production plus canary, following the aliases.

    ``refresh_seconds``: an alias move is served within this delay (the aliases are read twice
    as often; default ``serving.refresh_seconds``, 5). ``traffic_fraction``: the canary's share,
    default ``deployment.canary_traffic_percent / 100``. The log: ``prediction_log`` (shared,
    not closed here), else a new one at ``prediction_log_url`` (default
    ``serving.prediction_log``, else SQLite under ``storage.work_dir``/serving) with
    ``queue_size`` and ``batch_size``, closed by :meth:`close`. ``registry``: the registry to
    read (default ``ModelRegistry(config)``). ``start``: start following the aliases now (else
    call :meth:`refresh` yourself).

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
        self.config = config
        self.name = config.model.name
        self.features = config.model.features.all
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
    ) -> list[Prediction]:
        """Predict every row of ``frame`` (the config's features; other columns are ignored)
        and log each answer. ``entity_ids`` (one per row, ``None`` allowed) choose each row's
        arm; ``request_ids`` name the rows (generated when absent). Raises :class:`DataError`
        for missing columns or a length mismatch, :class:`PredictionError` if the model raises.
        """
        started = time.perf_counter()
        pair = self._pair  # one read: the whole request sees one pair of versions
        rows = len(frame)
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise DataError([f"missing column(s): {', '.join(missing)}"])
        if entity_ids is not None and len(entity_ids) != rows:
            raise DataError([f"{len(entity_ids)} entity ids for {rows} rows"])
        if request_ids is not None and len(request_ids) != rows:
            raise DataError([f"{len(request_ids)} request ids for {rows} rows"])
        features = frame[self.features].reset_index(drop=True)
        ids = (
            list(request_ids)
            if request_ids is not None
            else [uuid.uuid4().hex for _ in range(rows)]
        )
        entities: list[str | None] = [None] * rows
        if entity_ids is not None:
            entities = list(entity_ids)
        arms = self._arms(pair, ids, entities)
        answers: list[tuple[Any, float | None]] = [(None, None)] * rows
        failure: PredictionError | None = None
        failed: list[int] = []
        for served in (pair.production, pair.canary):
            if served is None:
                continue
            positions = [i for i, arm in enumerate(arms) if arm == served.alias]
            if positions:
                try:
                    found = _predict(served, features.iloc[positions], self.name)
                except PredictionError as exc:  # logged below: the judge counts an arm's errors
                    failure, failed = failure or exc, [*failed, *positions]
                    continue
                for position, answer in zip(positions, found, strict=True):
                    answers[position] = answer
        now = datetime.now(UTC)
        latency = (time.perf_counter() - started) * 1000
        hashes = _feature_hashes(features)
        versions = {PRODUCTION: pair.production.version}
        if pair.canary is not None:
            versions[CANARY] = pair.canary.version
        predictions = [
            Prediction(
                request_id=ids[i],
                entity_id=entities[i],
                model=self.name,
                version=versions[arms[i]],
                arm=arms[i],
                prediction=answers[i][0],
                probability=answers[i][1],
                latency_ms=latency,
                timestamp=now,
                feature_hash=hashes[i],
            )
            for i in range(rows)
        ]
        if failure is not None:  # nothing was answered: only the failed rows are logged
            error = str(failure)[:500]
            self.log.submit(
                [dataclasses.replace(predictions[i], error=error).to_row() for i in failed]
            )
            raise failure
        self.log.submit([p.to_row() for p in predictions])
        return predictions

    def _arms(self, pair: _Pair, ids: list[str], entities: list[str | None]) -> list[Arm]:
        canary = pair.canary
        if canary is None or canary.version == pair.production.version:
            return [PRODUCTION] * len(ids)
        return [
            choose_arm(self.name, entity if entity is not None else request, self.traffic_fraction)
            for request, entity in zip(ids, entities, strict=True)
        ]

    # --- following the aliases -----------------------------------------------------------------

    def start(self) -> None:
        """Start the thread that follows the aliases (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._follow, name=f"retrain-serving-refresh-{self.name}", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop following the aliases; write every logged prediction (a log of its own)."""
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
        _check_model(model, self.features, f"version {version} of {self.name!r}")
        self._failed.pop(version, None)
        return Served(alias=alias, version=version, model=model, loaded_at=datetime.now(UTC))

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


def _predict(served: Served, frame: pd.DataFrame, name: str) -> list[tuple[Any, float | None]]:
    """(prediction, probability) per row of ``frame`` from one version."""
    model = served.model
    try:
        labels, proba = _labels_and_proba(model, frame)
    except Exception as exc:
        raise PredictionError(
            f"{name} v{served.version} could not predict: {type(exc).__name__}: {exc}"
        ) from exc
    values = [_plain(v) for v in np.asarray(labels).tolist()]
    if proba is None:
        return [(v, None) for v in values]
    matrix = np.asarray(proba, dtype=float)
    if matrix.ndim == 2 and matrix.shape[1] == 2:
        chosen = matrix[:, 1]
    elif matrix.ndim == 2:
        chosen = matrix.max(axis=1)
    else:
        return [(v, None) for v in values]
    return [
        (v, float(p) if math.isfinite(p) else None)
        for v, p in zip(values, chosen.tolist(), strict=True)
    ]


def _plain(value: Any) -> Any:
    """A JSON-ready value (NaN as ``None``)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _feature_hashes(frame: pd.DataFrame) -> list[str]:
    hashes = []
    for row in frame.itertuples(index=False, name=None):
        text = json.dumps([_plain(v) for v in row], separators=(",", ":"), default=str)
        hashes.append(hashlib.blake2b(text.encode(), digest_size=16).hexdigest())
    return hashes


def _described(served: Served, fraction: float) -> dict[str, Any]:
    return {
        "version": served.version,
        "fraction": round(fraction, 6),
        "loaded_at": _iso(served.loaded_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None
