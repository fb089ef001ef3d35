"""MLflow tracking plumbing shared by the pipeline, the retraining log and the monitor.

One client per tracking URI with bounded retries and timeouts (``registry.request_timeout_seconds``
and ``registry.max_retries``), experiments created on first use, and the retraining's training
run found again by its run key so a retried task reuses it.

A process remembers, per tracking URI, when MLflow last failed to answer (:func:`unreachable`):
whoever must finish a run in bounded time (``finish``, the retraining log) asks it before waiting
on the same server again.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException, RestException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.utils.uri import add_databricks_profile_info_to_artifact_uri

from retrain.config import RegistrySettings
from retrain.errors import RegistryError, RegistryUnavailableError
from retrain.redact import redact

if TYPE_CHECKING:
    from retrain.config import RetrainConfig

__all__ = [
    "TEMPORARY_ERROR_CODES",
    "RunTracker",
    "artifact_repository",
    "bounded",
    "call_seconds",
    "client_env",
    "ensure_experiment",
    "find_run",
    "mlflow_error",
    "tracking_client",
    "unreachable",
]

_CLIENT_ENV = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT",
)


def tracking_client(config: RetrainConfig) -> MlflowClient:
    """An ``MlflowClient`` for ``registry.tracking_uri`` (tracking and registry)."""

    uri = config.registry.tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


#: MLflow error codes of a server that may answer if asked again.
TEMPORARY_ERROR_CODES = frozenset({"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"})


def mlflow_error(what: str, exc: BaseException, settings: RegistrySettings) -> RegistryError:
    """An MLflow client or network failure as our error, in words: which server, why (refused,
    timed out, unknown host, refused the request) and after how many retries.

    :class:`RegistryUnavailableError` (a retry may help) when the server was not reached or
    said it is temporarily unavailable; :class:`RegistryError` (final) when it refused. The
    message is redacted (a ``user:password@`` in the tracking URI is masked), and an unreachable
    server is remembered for :func:`unreachable`.
    """
    error = _mapped(what, exc, settings)
    if isinstance(error, RegistryUnavailableError):
        _Reachability.note(settings.tracking_uri, reachable=False)
    return error


def _mapped(what: str, exc: BaseException, settings: RegistrySettings) -> RegistryError:
    uri = redact(settings.tracking_uri)
    if isinstance(exc, RestException):
        if exc.error_code in TEMPORARY_ERROR_CODES:
            return RegistryUnavailableError(redact(f"{what}: MLflow at {uri}: {exc.message}"))
        return RegistryError(redact(f"{what}: MLflow refused: {exc.message}"))
    message = exc.message if isinstance(exc, MlflowException) else str(exc)
    lowered = message.lower()
    reached = "api request to" not in lowered and "connection" not in lowered
    if reached and not isinstance(exc, OSError):
        return RegistryError(redact(f"{what}: {message}"))
    if "refused" in lowered:
        cause = "connection refused"
    elif "timed out" in lowered or "timeout" in lowered:
        cause = f"no answer within {settings.request_timeout_seconds:g} s"
    elif "name or service not known" in lowered or "resolve" in lowered:
        cause = "host name does not resolve"
    else:
        cause = redact(message.splitlines()[0][-200:]) if message else type(exc).__name__
    retries = settings.max_retries
    return RegistryUnavailableError(
        f"{what}: MLflow tracking server at {uri} is unreachable ({cause}, "
        f"{retries} retr{'y' if retries == 1 else 'ies'}); "
        "check registry.tracking_uri and that the server is running"
    )


class _Reachability:
    """When each tracking URI last failed to answer (monotonic seconds), process-wide."""

    lock = threading.Lock()
    failed: dict[str, float] = {}

    @classmethod
    def note(cls, uri: str, *, reachable: bool) -> None:
        with cls.lock:
            if reachable:
                cls.failed.pop(uri, None)
            else:
                cls.failed[uri] = time.monotonic()


def call_seconds(settings: RegistrySettings) -> float:
    """The longest one bounded MLflow call may wait: ``(max_retries + 1) x timeout``."""
    return (settings.max_retries + 1) * settings.request_timeout_seconds


def unreachable(settings: RegistrySettings, *, within: float | None = None) -> bool:
    """Whether a call of this process found MLflow at ``settings.tracking_uri`` unreachable in
    the last ``within`` seconds (default: twice what one bounded call may take, at least 60 s)
    with no call answered since. Who must end a run in bounded time asks this before waiting on
    the same server again (the run ends in seconds; the record is spooled)."""
    window = within if within is not None else max(60.0, 2 * call_seconds(settings))
    with _Reachability.lock:
        failed = _Reachability.failed.get(settings.tracking_uri)
    return failed is not None and time.monotonic() - failed <= window


@contextlib.contextmanager
def bounded(config: RetrainConfig | RegistrySettings, what: str) -> Iterator[None]:
    """Bounded HTTP retries/timeouts for a block; MLflow and network errors (artifact uploads
    raise ``OSError``s) become :class:`RegistryError` through :func:`mlflow_error`.

    ``config``: the whole config or just its ``registry`` settings. A block that ends without
    an error clears what :func:`unreachable` remembers of the server.
    """
    settings = config if isinstance(config, RegistrySettings) else config.registry
    with client_env(settings):
        try:
            yield
        except RegistryError:
            raise
        except (MlflowException, OSError) as exc:
            raise mlflow_error(what, exc, settings) from exc
    _Reachability.note(settings.tracking_uri, reachable=True)


def ensure_experiment(client: MlflowClient, name: str, *, missing: bool = False) -> str:
    """The id of experiment ``name``, created if missing (safe against a concurrent creator);
    ``missing``: a read just found it missing, so it is created without asking again."""
    experiment = None if missing else client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    try:
        return str(client.create_experiment(name))
    except Exception:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def artifact_repository(artifact_uri: str, tracking_uri: str) -> Any:
    """The artifact repository of a run's or logged model's ``artifact_uri``.

    What ``MlflowClient.log_artifact`` uploads through, without the ``get_run`` (or
    ``get_logged_model``) it sends to find the location when the caller already knows it.
    """

    uri = add_databricks_profile_info_to_artifact_uri(artifact_uri, tracking_uri)  # type: ignore[no-untyped-call]
    return get_artifact_repository(uri, tracking_uri=tracking_uri)


_UNSAFE_IN_FILTER = re.compile(r"['\"\\`]")


def find_run(client: MlflowClient, experiment_id: str, tag: str, value: str) -> Any | None:
    """The newest run of ``experiment_id`` whose tag ``tag`` equals ``value``, or ``None``.

    ``value`` never becomes filter syntax: one with a quote, a backtick or a backslash (which
    MLflow's filter strings cannot escape) is searched by its longest plain fragment with
    ``LIKE`` and compared exactly here, so it can neither break nor widen the query.
    """
    if not _UNSAFE_IN_FILTER.search(value):
        runs = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{tag}` = '{value}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0] if runs else None
    fragment = max(_UNSAFE_IN_FILTER.split(value), key=len)
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{tag}` LIKE '%{fragment}%'",
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )
    return next((run for run in runs if run.data.tags.get(tag) == value), None)


class _ClientEnv:
    """Process-wide, reference-counted override of mlflow client variables."""

    lock = threading.Lock()
    depth = 0
    saved: dict[str, str | None] = {}


@contextlib.contextmanager
def client_env(settings: RegistrySettings) -> Iterator[None]:
    """Apply ``request_timeout_seconds``/``max_retries`` to mlflow's HTTP client for a block.

    mlflow 3.17 reads ``MLFLOW_HTTP_REQUEST_*`` from the environment on every request (defaults:
    7 retries, backoff factor 2, 120 s timeout: minutes against a dead server). The variables are
    set for the outermost registry call in the process and restored afterwards, so other mlflow
    clients keep their own settings outside registry calls. "View run at" URLs, which mlflow
    prints to stdout when a run ends, are suppressed (they would corrupt ``--json`` output).
    """
    values = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(settings.max_retries),
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, math.ceil(settings.request_timeout_seconds))),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # int only; retries wait 0, 2, 4, ... s
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.2",
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    }
    with _ClientEnv.lock:
        if _ClientEnv.depth == 0:
            _ClientEnv.saved = {key: os.environ.get(key) for key in _CLIENT_ENV}
            os.environ.update(values)
        _ClientEnv.depth += 1
    try:
        yield
    finally:
        with _ClientEnv.lock:
            _ClientEnv.depth -= 1
            if _ClientEnv.depth == 0:
                for key, old in _ClientEnv.saved.items():
                    if old is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = old


_BATCH_LIMITS = {"metrics": 1000, "params": 100, "tags": 100}  # MLflow's log_batch caps
_PARAM_LIMIT = 6000  # characters of a param value


class RunTracker:
    """What the steps record in the retraining's MLflow run, sent in batches.

    Steps call :meth:`log` as they go; :meth:`flush` sends everything gathered since the last
    flush as one ``log_batch`` (plus one upload per artifact). Params cannot be logged twice with
    another value, so a re-run (same run key, same MLflow run) skips the ones the run has; the run
    is read for that (and for where its artifacts go) once per tracker, unless whoever created or
    found the run handed it over with :meth:`bind`. Every call is bounded like the registry's.
    """

    def __init__(self, config: RetrainConfig, client: MlflowClient, run_id: str) -> None:
        self.config = config
        self.client = client
        self.run_id = run_id
        self._params: dict[str, str] = {}
        self._metrics: dict[str, float] = {}
        self._tags: dict[str, str] = {}
        self._artifacts: list[str] = []
        self._logged_params: set[str] | None = None
        self._artifact_uri: str | None = None
        #: The run's experiment, once known (from :meth:`bind`).
        self.experiment_id: str | None = None

    def bind(self, run: Any) -> RunTracker:
        """Take what a run just created or found (``create_run``, ``search_runs``) says about
        itself: its params, experiment and artifact location, so none is read again."""
        self._logged_params = set(run.data.params or {})
        self._artifact_uri = run.info.artifact_uri or None
        self.experiment_id = str(run.info.experiment_id)
        return self

    def _read_run(self) -> None:
        run = self.client.get_run(self.run_id)
        self._logged_params = set(run.data.params)
        self._artifact_uri = run.info.artifact_uri or None

    def log(
        self,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, Any] | None = None,
        artifacts: list[str] | None = None,
    ) -> None:
        """Gather values for the next :meth:`flush` (a later value of a key replaces it)."""
        self._params.update({k: str(v)[:_PARAM_LIMIT] for k, v in (params or {}).items()})
        self._metrics.update({k: float(v) for k, v in (metrics or {}).items()})
        self._tags.update({k: str(v) for k, v in (tags or {}).items()})
        self._artifacts.extend(a for a in artifacts or [] if a not in self._artifacts)

    def flush(self) -> None:
        """Send what was gathered; nothing is sent when nothing was gathered."""

        if not (self._params or self._metrics or self._tags or self._artifacts):
            return
        stamp = int(time.time() * 1000)
        with bounded(self.config, f"logging to MLflow run {self.run_id}"):
            if self._params and self._logged_params is None:
                self._read_run()
            done = self._logged_params or set()
            params = [Param(k, v) for k, v in self._params.items() if k not in done]
            metrics = [Metric(k, v, stamp, 0) for k, v in self._metrics.items()]
            tags = [RunTag(k, v) for k, v in self._tags.items()]
            while params or metrics or tags:
                self.client.log_batch(
                    self.run_id,
                    metrics=metrics[: _BATCH_LIMITS["metrics"]],
                    params=params[: _BATCH_LIMITS["params"]],
                    tags=tags[: _BATCH_LIMITS["tags"]],
                )
                metrics = metrics[_BATCH_LIMITS["metrics"] :]
                params = params[_BATCH_LIMITS["params"] :]
                tags = tags[_BATCH_LIMITS["tags"] :]
            if self._artifacts and self._artifact_uri is None:
                self._read_run()
            repository = (
                artifact_repository(self._artifact_uri, self.config.registry.tracking_uri)
                if self._artifact_uri
                else None
            )
            for path in self._artifacts:
                if repository is None:
                    self.client.log_artifact(self.run_id, path)
                else:
                    repository.log_artifact(path)
        if self._logged_params is not None:
            self._logged_params |= set(self._params)
        self._params, self._metrics, self._tags, self._artifacts = {}, {}, {}, []
