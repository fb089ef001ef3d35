"""The serving database: the ``retrain_predictions`` and ``retrain_labels`` tables.

SQLAlchemy Core with bound parameters only; SQLite by default (a file under
``storage.work_dir``), PostgreSQL (or any SQLAlchemy URL) in production. Tables are created when
absent. ``prediction`` and ``label`` hold JSON text (``1``, ``"yes"``), so a label compares with
the prediction it answers after ``json.loads``.

``retrain_predictions``: one row per answered prediction: ``model``, ``request_id``,
``entity_id``, ``version``, ``arm``, ``prediction``, ``probability``, ``latency_ms``,
``predicted_at`` (UTC), ``feature_hash``, ``error`` (a request the model failed on: one row per
row of that arm, ``prediction`` NULL; the canary judge's error-rate guardrail counts them),
indexed by ``model`` and ``predicted_at`` only (the canary judge's query; a secondary index on
the random request ids made every insert several times dearer; a database made before keeps
its indexes).
``retrain_labels``: one row per label received:
``model``, ``request_id`` and/or ``entity_id``, ``label``, ``received_at``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from retrain.config import RetrainConfig
from retrain.errors import DataError
from retrain.redact import redact

__all__ = [
    "LABELS",
    "METADATA",
    "PREDICTIONS",
    "create_tables",
    "default_log_url",
    "log_url",
    "open_engine",
]

METADATA = sa.MetaData()
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only

PREDICTIONS = sa.Table(
    "retrain_predictions",
    METADATA,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("entity_id", sa.String(255)),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("arm", sa.String(16), nullable=False),
    sa.Column("prediction", sa.Text),  # NULL when the model failed (``error`` says why)
    sa.Column("probability", sa.Float),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("predicted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("feature_hash", sa.String(32), nullable=False),
    sa.Column("error", sa.Text),
    # what the canary judge reads: a model's rows of a time window (it joins labels by request
    # and entity id in memory); an index on random request ids cost ~8 us per inserted row
    sa.Index("ix_retrain_predictions_model_time", "model", "predicted_at"),
)

LABELS = sa.Table(
    "retrain_labels",
    METADATA,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("request_id", sa.String(128), index=True),
    sa.Column("entity_id", sa.String(255), index=True),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)


def default_log_url(config: RetrainConfig) -> str:
    """``sqlite:///<storage.work_dir>/serving/predictions.db``; a ``work_dir`` that is a URL
    (``s3://...``) has no default: pass a database URL."""
    work_dir = config.storage.work_dir
    if "://" in work_dir:
        raise DataError(
            [
                f"storage.work_dir {redact(work_dir)!r} is not a local directory: give the "
                "prediction log a database URL (--prediction-log / prediction_log_url)"
            ]
        )
    # a loaded config's work_dir is already absolute (relative to its file)
    path = (Path(work_dir).expanduser() / "serving" / "predictions.db").resolve()
    return f"sqlite:///{path}"


def log_url(config: RetrainConfig) -> str:
    """The prediction log of ``config``: ``serving.prediction_log``, else
    :func:`default_log_url` (where the online canary judge reads it too)."""
    return config.serving.prediction_log or default_log_url(config)


def open_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite files get their directory, WAL with ``synchronous=NORMAL``
    (SQLite's advice for WAL: a commit survives a crash of the process, only a power loss may
    undo the last ones; no fsync per commit) and a 30 s busy timeout (several server workers
    write the same file)."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise DataError([f"not a database URL: {redact(url)!r}"]) from None
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def create_tables(engine: sa.Engine) -> None:
    """Create the tables that are absent (another process creating them at the same moment is
    fine: the check runs again)."""
    try:
        METADATA.create_all(engine, checkfirst=True)
    except sa.exc.SQLAlchemyError:
        METADATA.create_all(engine, checkfirst=True)  # lost a creation race: they exist now
