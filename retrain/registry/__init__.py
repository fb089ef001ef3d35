"""The model registry: versions with lineage, staging -> canary -> production, audit, rollback.

MLflow is the system of record. :class:`ModelRegistry` wraps ``mlflow.MlflowClient`` for one
registered model (``config.model.name``) and adds what MLflow lacks:

* **Records.** Each version carries the seed's version record (version id, timestamp, algorithm,
  training data version, metrics, features, status) plus lineage (retraining id, trigger reasons,
  gate result, training-data watermark, git commit, idempotency key) as ``retrain.*`` version tags.
* **Status flow.** Aliases ``staging``, ``canary`` and ``production`` point at versions; the tag
  ``retrain.status`` mirrors them (plus ``archived``, ``rolled_back``, ``rejected``). Allowed
  changes are the explicit :data:`TRANSITIONS`; anything else raises :class:`RegistryError`.
* **Audit history.** Every alias move is an :class:`AuditEntry`, stored as ONE MLflow run in the
  experiment ``<experiment>/audit`` (``retrain/<model>/audit``), created with all its fields as
  tags in a single request. Concurrent writers create separate rows, so none can overwrite
  another; the server filters and pages the history (reads cost what they return, not the whole
  log), and the MLflow UI shows it as a table. The entry's state is the run's status.
* **Crash safety.** A move is written as an entry in state ``pending`` (run ``RUNNING``) *before*
  any alias moves; then the aliases move, the status tags change, and the entry becomes ``done``
  (run ``FINISHED``; its only change). The next mutating call (or :meth:`ModelRegistry.repair`)
  completes pending entries, so a crash anywhere leaves either nothing changed or a recorded move
  that a re-run finishes; never a moved pointer without a record. A version created but never
  announced (a crash right after MLflow created it) is listed by
  :meth:`ModelRegistry.unannounced` and settled by :meth:`ModelRegistry.repair` (or by
  registering again with the same key).
* **No pickle.** Every version is loaded by retrain itself (never ``mlflow.sklearn.load_model``):
  ``MLmodel`` is checked first and anything but a skops model is refused before its files are
  read; the skops file is loaded trusting only the types recorded at registration
  (``trusted_types`` in the ``retrain.record`` tag), never one that runs code
  (:mod:`~retrain.registry.artifacts`).
* **Repeats.** A rollback with the idempotency key of a completed one returns it and moves
  nothing; ``expected_version`` refuses unless production is that version.

One concept per module: :mod:`~retrain.registry.lifecycle` (statuses and allowed transitions),
:mod:`~retrain.registry.records` (version records and their tags),
:mod:`~retrain.registry.provenance` (git commit, actor, pinned requirements),
:mod:`~retrain.registry.client` (MLflow calls and their errors),
:mod:`~retrain.registry.artifacts` (model files, load check, caches),
:mod:`~retrain.registry.registration` (new versions, idempotent by key),
:mod:`~retrain.registry.audit` (the audit history), :mod:`~retrain.registry.moves` (crash-safe
alias moves) and :mod:`~retrain.registry.model_registry` (the :class:`ModelRegistry` facade).

No Airflow import. Importing this package loads no mlflow, scikit-learn or pandas: public names
resolve lazily on first use. Alias-moving calls for one model are expected to be serialised by
the caller (the DAG runs with ``max_active_runs=1``); the audit log itself loses no entry under
concurrency.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "ALIASES": "retrain.registry.lifecycle",
    "GATE_RESULTS": "retrain.registry.lifecycle",
    "STATUSES": "retrain.registry.lifecycle",
    "TRANSITIONS": "retrain.registry.lifecycle",
    "allowed_transition": "retrain.registry.lifecycle",
    "STATUS_TAG": "retrain.registry.records",
    "TAG": "retrain.registry.records",
    "AliasMove": "retrain.registry.records",
    "Baseline": "retrain.registry.records",
    "ModelVersionInfo": "retrain.registry.records",
    "VersionRecord": "retrain.registry.records",
    "git_commit": "retrain.registry.provenance",
    "pinned_requirements": "retrain.registry.provenance",
    "INPUT_EXAMPLE_ROWS": "retrain.registry.artifacts",
    "PROFILE_FILE": "retrain.registry.artifacts",
    "VERIFIED_FOR_SECONDS": "retrain.registry.artifacts",
    "AuditEntry": "retrain.registry.audit",
    "ModelRegistry": "retrain.registry.model_registry",
    "RegistryError": "retrain.errors",
    "UnknownModelError": "retrain.errors",
}

__all__ = [
    "ALIASES",
    "GATE_RESULTS",
    "INPUT_EXAMPLE_ROWS",
    "PROFILE_FILE",
    "STATUSES",
    "STATUS_TAG",
    "TAG",
    "TRANSITIONS",
    "VERIFIED_FOR_SECONDS",
    "AliasMove",
    "AuditEntry",
    "Baseline",
    "ModelRegistry",
    "ModelVersionInfo",
    "RegistryError",
    "UnknownModelError",
    "VersionRecord",
    "allowed_transition",
    "git_commit",
    "pinned_requirements",
]

if TYPE_CHECKING:
    from retrain.errors import RegistryError, UnknownModelError
    from retrain.registry.artifacts import INPUT_EXAMPLE_ROWS, PROFILE_FILE, VERIFIED_FOR_SECONDS
    from retrain.registry.audit import AuditEntry
    from retrain.registry.lifecycle import (
        ALIASES,
        GATE_RESULTS,
        STATUSES,
        TRANSITIONS,
        allowed_transition,
    )
    from retrain.registry.model_registry import ModelRegistry
    from retrain.registry.provenance import git_commit, pinned_requirements
    from retrain.registry.records import (
        STATUS_TAG,
        TAG,
        AliasMove,
        Baseline,
        ModelVersionInfo,
        VersionRecord,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'retrain.registry' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
