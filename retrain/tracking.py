"""MLflow tracking plumbing shared by the pipeline, the retraining log and the monitor.

One client per tracking URI with bounded retries and timeouts (``registry.request_timeout_seconds``
and ``registry.max_retries``), experiments created on first use, and the retraining's training
run found again by its run key so a retried task reuses it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from retrain.config import RetrainConfig
from retrain.errors import RegistryError

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["bounded", "ensure_experiment", "find_run", "tracking_client"]


def tracking_client(config: RetrainConfig) -> MlflowClient:
    """An ``MlflowClient`` for ``registry.tracking_uri`` (tracking and registry)."""
    from mlflow import MlflowClient

    uri = config.registry.tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextlib.contextmanager
def bounded(config: RetrainConfig, what: str) -> Iterator[None]:
    """Bounded HTTP retries/timeouts for a block; MLflow errors become :class:`RegistryError`."""
    from mlflow.exceptions import MlflowException

    from retrain.registry import _client_env

    with _client_env(config.registry):
        try:
            yield
        except MlflowException as exc:
            raise RegistryError(
                f"{what}: MLflow at {config.registry.tracking_uri} failed: {exc.message}"
            ) from exc


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created if missing (safe against a concurrent creator)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    try:
        return str(client.create_experiment(name))
    except Exception:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def find_run(client: MlflowClient, experiment_id: str, tag: str, value: str) -> Any | None:
    """The newest run of ``experiment_id`` whose tag ``tag`` equals ``value``, or ``None``."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{tag}` = '{value}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None
