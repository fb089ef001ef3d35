"""The files of a version: saved as an MLflow sklearn model with skops, downloaded, load-checked.

:class:`ModelArtifacts` logs a fitted model (skops with its trusted types: no pickle), downloads
a version's files, loads it and asks it to predict on its stored input example (the check before
a version exists and before any production move) and reads the drift reference profile stored
with it. Logged files never change, so fitted models and small text artifacts are cached per
process (:class:`_ModelCache`, :func:`_artifact_text`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import mlflow
import pandas as pd
from mlflow.entities import LoggedModelOutput, LoggedModelStatus
from mlflow.models import Model, infer_signature
from mlflow.utils import environment

from retrain.errors import DataError, RegistryError
from retrain.registry.provenance import pinned_requirements
from retrain.serialization import dumps_trusted, quiet_skops
from retrain.tracking import artifact_repository

if TYPE_CHECKING:
    from mlflow.entities import LoggedModel
    from mlflow.entities.model_registry import ModelVersion

    from retrain.registry.client import RegistryClient

__all__ = [
    "INPUT_EXAMPLE_ROWS",
    "PROFILE_FILE",
    "VERIFIED_FOR_SECONDS",
    "ModelArtifacts",
    "check_example",
    "load_and_predict",
    "no_requirement_check",
    "quiet_mlflow",
    "save_model",
]

INPUT_EXAMPLE_ROWS = 10
PROFILE_FILE = "reference_profile.json"
#: How long a passed load-and-predict check counts in this process (a rollback always rechecks).
VERIFIED_FOR_SECONDS: Final = 600.0


def check_example(input_example: Any) -> pd.DataFrame:
    """The first :data:`INPUT_EXAMPLE_ROWS` rows of a non-empty DataFrame, stored with the model."""
    if not isinstance(input_example, pd.DataFrame):
        raise DataError(
            [f"input_example must be a pandas DataFrame, got {type(input_example).__name__}"]
        )
    if input_example.empty:
        raise DataError(["input_example must have at least one row"])
    return input_example.head(INPUT_EXAMPLE_ROWS).reset_index(drop=True)


@contextlib.contextmanager
def no_requirement_check() -> Iterator[None]:
    """Skip mlflow's check of the pip requirements against the installed distributions.

    The check only warns, and its first call in a process scans every installed distribution
    (0.7 s here, in every Airflow deploy task). Requirements from :func:`pinned_requirements`
    are read from those same distributions, so it cannot find a mismatch. If mlflow moves the
    function, the check simply runs.
    """
    name = "warn_dependency_requirement_mismatches"
    original = getattr(environment, name, None)
    if original is None:
        yield
        return
    setattr(environment, name, lambda requirements: None)
    try:
        yield
    finally:
        setattr(environment, name, original)


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Hide warnings that are noise here.

    mlflow 3.17 raises a pandas 3 deprecation warning on every DataFrame input example; skops
    resolves function names by probing every loaded module, which makes Airflow's lazy
    deprecated-import shims warn hundreds of times when the registry runs inside a task.
    """
    with warnings.catch_warnings(), quiet_skops():
        warnings.filterwarnings("ignore", message="Operation with range is deprecated")
        yield


def load_and_predict(local: str, what: str) -> Any:
    """Load an MLflow sklearn model directory, predict on its stored input example and return
    the loaded model."""
    try:
        with quiet_mlflow():
            model = mlflow.sklearn.load_model(local)
            example = Model.load(local).load_input_example(local)
        if example is None:
            raise ValueError("the model has no stored input example")
        predictions = model.predict(example)
        if len(predictions) != len(example):
            raise ValueError(f"{len(predictions)} predictions for {len(example)} example rows")
    except Exception as exc:
        raise RegistryError(f"{what} failed its load check: {type(exc).__name__}: {exc}") from exc
    return model


def save_model(
    model: Any,
    *,
    example: pd.DataFrame,
    directory: Path,
    logged: Any,
    run_id: str,
    profile: Mapping[str, Any] | None,
    artifacts: Mapping[str, str | os.PathLike[str]],
    requirements: list[str],
    trusted_types: Sequence[str] | None = None,
) -> str:
    """Save ``model`` as an MLflow sklearn model (skops) under ``directory``; returns its path.

    Equivalent to ``mlflow.sklearn.log_model(name="model", ...)`` but bound to an explicit
    client and run instead of the process-global tracking URI and active run.
    """
    try:
        predictions = model.predict(example)
    except Exception as exc:
        raise RegistryError(
            f"the model cannot predict on its input example: {type(exc).__name__}: {exc}"
        ) from exc
    extra: list[str] = []
    staging = directory / "extra"
    staging.mkdir()
    if profile is not None:
        path = staging / PROFILE_FILE
        path.write_text(json.dumps(profile, sort_keys=True, default=str), encoding="utf-8")
        extra.append(str(path))
    for name, given in sorted(artifacts.items()):
        source = Path(given)
        if not source.is_file():
            raise DataError([f"artifact {name!r}: {source} is not a file"])
        target = staging / f"{name}{source.suffix}"
        shutil.copyfile(source, target)
        extra.append(str(target))
    local = directory / "model"
    pinned_here = requirements == pinned_requirements()
    skip = no_requirement_check() if pinned_here else contextlib.nullcontext()
    with quiet_mlflow(), skip:
        trusted = list(trusted_types) if trusted_types is not None else dumps_trusted(model)[1]
        mlflow.sklearn.save_model(
            model,
            str(local),
            mlflow_model=Model(
                artifact_path=logged.artifact_location,
                model_uuid=logged.model_id,
                run_id=run_id,
                model_id=logged.model_id,
            ),
            serialization_format="skops",
            skops_trusted_types=trusted,
            signature=infer_signature(example, predictions),
            input_example=example,
            pip_requirements=requirements,
            extra_files=extra or None,
        )
    return str(local)


class _ModelCache:
    """Fitted models loaded in this process, by artifact location (immutable once logged).

    One retraining loads the production model for the signals and again for the evaluation,
    and registers a candidate that is checked, fingerprinted and promoted: each is downloaded
    and deserialised once. ``verified`` remembers a successful load-and-predict check for
    :data:`VERIFIED_FOR_SECONDS`; a rollback always checks again.
    """

    size = 4
    lock = threading.Lock()
    models: dict[tuple[str, str], Any] = {}
    verified: dict[tuple[str, str], float] = {}

    @classmethod
    def get(cls, key: tuple[str, str]) -> Any | None:
        with cls.lock:
            model = cls.models.pop(key, None)
            if model is not None:
                cls.models[key] = model  # most recently used last
            return model

    @classmethod
    def put(cls, key: tuple[str, str], model: Any, *, verified: bool = False) -> None:
        with cls.lock:
            cls.models.pop(key, None)
            cls.models[key] = model
            while len(cls.models) > cls.size:
                cls.models.pop(next(iter(cls.models)))
            if verified:
                cls.verified[key] = time.monotonic()

    @classmethod
    def is_verified(cls, key: tuple[str, str]) -> bool:
        with cls.lock:
            checked = cls.verified.get(key)
        return checked is not None and time.monotonic() - checked < VERIFIED_FOR_SECONDS


def _fetch(repository: Any, name: str, directory: Path) -> Path:
    """Download the file ``name`` (a path relative to the repository) into ``directory``: one
    request, where ``download_artifacts`` first lists the path to see whether it is a folder."""
    target = directory.joinpath(*name.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    download = getattr(repository, "_download_file", None)
    if download is None:  # mlflow moved it: the public call, one listing more
        return Path(repository.download_artifacts(name, str(directory)))
    download(name, str(target))
    return target


def _needed_files(local: Path, *, example: bool) -> list[str] | None:
    """The files ``load_and_predict`` (``example``) or ``mlflow.sklearn.load_model`` reads
    besides ``MLmodel``, from the downloaded ``MLmodel``; ``None`` if it is not the layout
    :func:`save_model` writes (then the whole directory is downloaded)."""
    try:
        meta = Model.load(str(local / "MLmodel"))
    except Exception:
        return None
    conf = meta.flavors.get("sklearn")
    if not isinstance(conf, dict) or "pickled_model" not in conf or conf.get("code"):
        return None
    files = [str(conf["pickled_model"])]
    if example:
        info = meta.saved_input_example_info or {}
        if "artifact_path" not in info:
            return None
        files.append(str(info["artifact_path"]))
    return files


@functools.lru_cache(maxsize=16)
def _artifact_text(tracking_uri: str, artifact_uri: str, name: str) -> str:
    """A small text artifact of a logged model (immutable once logged: read once per process)."""
    with tempfile.TemporaryDirectory(prefix="retrain-artifact-") as tmp:
        # not mlflow.artifacts.load_text: it resolves against the global tracking URI
        path = _fetch(artifact_repository(artifact_uri, tracking_uri), name, Path(tmp))
        return path.read_text(encoding="utf-8")


class ModelArtifacts:
    """The model files of the versions of ``client.name``: logging, downloading, loading, checks.

    Every download names the artifact location and ``tracking_uri`` explicitly: a ``models:/``
    URI would be resolved against the process-global registry (and silently create
    ``./mlflow.db``), not this server.
    """

    def __init__(self, client: RegistryClient) -> None:
        self._client = client
        self.tracking_uri = client.tracking_uri

    def log(
        self,
        model: Any,
        *,
        example: pd.DataFrame,
        experiment_id: str,
        run_id: str,
        tags: dict[str, str],
        profile: Mapping[str, Any] | None,
        artifacts: Mapping[str, str | os.PathLike[str]],
        requirements: list[str],
        trusted_types: Sequence[str] | None,
        what: str,
        end_run_on_failure: bool,
    ) -> LoggedModel:
        """Log ``model`` as a logged model of ``run_id`` and check that it loads and predicts.

        A model that fails is finalised ``FAILED`` with the reason as its ``retrain.load_check``
        tag (and the run ends ``FAILED`` if ``end_run_on_failure``); one that passes is
        ``READY`` and recorded as an output of the run.
        """
        client = self._client.mlflow
        logged = client.create_logged_model(
            experiment_id, name="model", source_run_id=run_id, tags=tags, model_type="sklearn"
        )
        try:
            with tempfile.TemporaryDirectory(prefix="retrain-register-") as tmp:
                local = save_model(
                    model,
                    example=example,
                    directory=Path(tmp),
                    logged=logged,
                    run_id=run_id,
                    profile=profile,
                    artifacts=artifacts,
                    requirements=requirements,
                    trusted_types=trusted_types,
                )
                # the location is known: no get_logged_model to find it
                repository = artifact_repository(logged.artifact_location, self.tracking_uri)
                repository.log_artifacts(local)
            self._check_logged(logged.artifact_location, what)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                client.set_logged_model_tags(
                    logged.model_id, {"retrain.load_check": str(exc)[:500]}
                )
                client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
                if end_run_on_failure:
                    client.set_terminated(run_id, "FAILED")
            raise
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        return logged

    def _check_logged(self, artifact_uri: str, what: str) -> None:
        with tempfile.TemporaryDirectory(prefix="retrain-check-") as tmp:
            local = self._download_uri(artifact_uri, tmp, example=True)
            model = load_and_predict(local, what)
        _ModelCache.put((self.tracking_uri, artifact_uri), model, verified=True)

    def _download_uri(self, artifact_uri: str, directory: str, *, example: bool) -> str:
        """The files of the model at ``artifact_uri`` that loading it (``example``: and
        predicting on its input example) reads, downloaded into ``directory``: ``MLmodel``, the
        model file and the example, one request each. Anything else (MLflow's environment
        files, the extra files) is not read by a load, so it is not fetched; a model of another
        layout is downloaded whole."""
        local = Path(directory) / "model"
        repository = artifact_repository(artifact_uri, self.tracking_uri)
        _fetch(repository, "MLmodel", local)
        needed = _needed_files(local, example=example)
        if needed is None:
            whole: str = mlflow.artifacts.download_artifacts(
                artifact_uri=artifact_uri, dst_path=directory, tracking_uri=self.tracking_uri
            )
            return whole
        for name in needed:
            _fetch(repository, name, local)
        return str(local)

    def _cache_key(self, mv: ModelVersion) -> tuple[str, str]:
        """Where a version's artifacts live (unique per logged model), for :class:`_ModelCache`."""
        tags = mv.tags or {}
        where = tags.get("retrain.artifact_uri") or f"{mv.source}#{mv.creation_timestamp}"
        return (self.tracking_uri, where)

    def artifact_uri(self, mv: ModelVersion) -> str:
        """Where a version's model files are: the location logged at registration, else MLflow's
        download URI (one more request, for versions retrain did not register)."""
        uri = (mv.tags or {}).get("retrain.artifact_uri")
        return uri or self._client.mlflow.get_model_version_download_uri(
            self._client.name, str(mv.version)
        )

    def download(self, mv: ModelVersion, directory: str, *, example: bool = True) -> str:
        """Download what loading a version (``example``: and predicting on its input example)
        reads into ``directory``; returns the model directory's path. A version retrain did not
        register is downloaded whole."""
        uri = (mv.tags or {}).get("retrain.artifact_uri")
        if uri:
            return self._download_uri(uri, directory, example=example)
        path: str = mlflow.artifacts.download_artifacts(
            artifact_uri=self.artifact_uri(mv),
            dst_path=directory,
            tracking_uri=self.tracking_uri,
        )
        return path

    def load(self, mv: ModelVersion) -> Any:
        """The fitted scikit-learn object of a version (downloaded once per process)."""
        key = self._cache_key(mv)
        cached = _ModelCache.get(key)
        if cached is not None:
            return cached
        with tempfile.TemporaryDirectory(prefix="retrain-model-") as tmp:
            local = self.download(mv, tmp, example=False)
            with quiet_mlflow():
                model = mlflow.sklearn.load_model(local)
        _ModelCache.put(key, model)
        return model

    def check_loads(self, mv: ModelVersion, what: str, *, fresh: bool = False) -> None:
        """Download a version, load it and predict on its input example; raise if any step fails.

        A check that passed in this process less than :data:`VERIFIED_FOR_SECONDS` ago (the
        registration's own check) counts, unless ``fresh``.
        """
        key = self._cache_key(mv)
        if not fresh and _ModelCache.is_verified(key):
            return
        with tempfile.TemporaryDirectory(prefix="retrain-check-") as tmp:
            local = self.download(mv, tmp)
            model = load_and_predict(local, what)
        _ModelCache.put(key, model, verified=True)

    def reference_profile(self, mv: ModelVersion) -> dict[str, Any] | None:
        """The drift reference profile stored with a version, or ``None`` if it has none."""
        if mv.tags.get("retrain.reference_profile") != PROFILE_FILE:
            return None
        where = self.artifact_uri(mv).rstrip("/")
        text = _artifact_text(self.tracking_uri, where, f"extra_files/{PROFILE_FILE}")
        profile: dict[str, Any] = json.loads(text)
        return profile
