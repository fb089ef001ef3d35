"""The collaborators of a run, built once and passed to every step.

:class:`Services` holds the config, the model registry, the retraining log store, the model's
lease, the notifier, the data source's connection URL and one
:class:`~retrain.tracking.RunTracker` per MLflow run.
``retrain run`` builds it once per run; a DAG task builds it once per task process. Steps never
construct a registry or a client themselves, so a test can hand them other implementations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from mlflow import MlflowClient

from retrain.config import RetrainConfig
from retrain.lease import ModelLease
from retrain.log import LogStore
from retrain.notify import Notifier, notifier_from_config
from retrain.registry import ModelRegistry
from retrain.tracking import RunTracker, tracking_client

__all__ = ["Progress", "Services"]

logger = logging.getLogger("retrain.pipeline")

#: ``progress(step, text)``: one line of what a step did.
Progress = Callable[[str, str], None]


def _log_progress(step: str, text: str) -> None:
    logger.info("%s: %s", step, text)


@dataclass(frozen=True)
class Services:
    """Everything a step talks to besides its inputs."""

    config: RetrainConfig
    registry: ModelRegistry
    log: LogStore
    notifier: Notifier
    client: MlflowClient
    #: The model's lease, held by the steps that write to the registry (runs of one model never
    #: interleave their registrations and promotions, whoever runs them).
    lease: ModelLease
    #: SQLAlchemy URL of the data source when it comes from outside the config (an Airflow
    #: connection); ``None`` = the config's own ``data.source``.
    sql_url: str | None = None
    #: Where steps report progress (``retrain run`` prints it; tasks log it).
    progress: Progress = field(default=_log_progress, compare=False)
    _trackers: dict[str, RunTracker] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        config: RetrainConfig,
        *,
        sql_url: str | None = None,
        actor: str | None = None,
        notifier: Notifier | None = None,
    ) -> Services:
        """The real collaborators for ``config`` (no network call is made here)."""

        chosen = notifier or notifier_from_config(config)
        client = tracking_client(config)
        return cls(
            config=config,
            registry=ModelRegistry(config, actor=actor, notifier=chosen),
            log=LogStore.of(config, client),
            notifier=chosen,
            client=client,
            lease=ModelLease(config, client),
            sql_url=sql_url,
        )

    def tracker(self, run_id: str) -> RunTracker:
        """The (buffering) tracker of MLflow run ``run_id``, one per run."""
        if run_id not in self._trackers:
            self._trackers[run_id] = RunTracker(self.config, self.client, run_id)
        return self._trackers[run_id]

    def flush(self) -> None:
        """Send what every tracker gathered."""
        for tracker in self._trackers.values():
            tracker.flush()
