"""The files of a version: saved as an MLflow sklearn model with skops, downloaded, load-checked.

:class:`ModelArtifacts` logs a fitted model (skops with its trusted types: no pickle), downloads
a version's files, loads it and asks it to predict on its stored input example (the check before
a version exists and before any production move) and reads the drift reference profile stored
with it. Logged files never change, so fitted models and small text artifacts are cached per
process (:class:`_ModelCache`, :func:`artifact_text`).

**No pickle, for every version loaded.** Anyone with write access to MLflow can register a
version whose ``MLmodel`` declares ``pickle`` or ``cloudpickle`` (``mlflow.sklearn.load_model``
would unpickle it, running whatever it holds) or lists types for skops to trust. So nothing
here calls mlflow's loader: :func:`read_flavor` reads ``MLmodel`` (YAML, ``safe_load``) first and
refuses any version whose sklearn flavor is not ``serialization_format: skops`` with the model
file ``model.skops`` and no code, before its model file is downloaded; :func:`load_skops` then
loads that file itself, trusting only the types recorded at registration (``trusted_types`` in
the version's ``retrain.record`` tag; a ``retrain.trusted_types`` tag, as older versions carry,
overrides it) and never one that runs code (:func:`retrain.serialization.unsafe_types`). The
``MLmodel``'s own ``skops_trusted_types`` are ignored, except for a version retrain registered
before it recorded the list; a version not registered by retrain loads with skops' default
trusted types only.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
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
import yaml
from mlflow.entities import LoggedModelOutput, LoggedModelStatus
from mlflow.models import Model, infer_signature
from mlflow.utils import environment

from retrain.drift.profile import parse_profile_json
from retrain.errors import DataError, RegistryError
from retrain.redact import redact
from retrain.registry.provenance import pinned_requirements
from retrain.registry.records import TAG_VALUE_LIMIT, stored_fields
from retrain.serialization import dumps_trusted, load_trusted, quiet_skops, unsafe_types
from retrain.tracking import artifact_repository

if TYPE_CHECKING:
    from mlflow.entities import LoggedModel
    from mlflow.entities.model_registry import ModelVersion

    from retrain.registry.client import RegistryClient

__all__ = [
    "INPUT_EXAMPLE_ROWS",
    "PROFILE_FILE",
    "SKOPS_FILE",
    "TRUSTED_TYPES_TAG",
    "VERIFIED_FOR_SECONDS",
    "ModelArtifacts",
    "artifact_text",
    "check_example",
    "load_and_predict",
    "load_skops",
    "no_requirement_check",
    "quiet_mlflow",
    "read_flavor",
    "save_model",
    "trusted_types_tag",
]

INPUT_EXAMPLE_ROWS = 10
PROFILE_FILE = "reference_profile.json"
#: The one model file a version may have (what ``mlflow.sklearn`` names a skops model).
SKOPS_FILE: Final = "model.skops"
#: Version tag: JSON list of the types skops must trust to load the version. Registration records
#: the list in ``retrain.record`` (older versions carry this tag); an operator may set the tag to
#: trust types for a version retrain did not register, and it overrides the record.
TRUSTED_TYPES_TAG: Final = "retrain.trusted_types"
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
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


def read_flavor(local: str | Path, what: str) -> dict[str, Any]:
    """The sklearn flavor of the downloaded ``MLmodel`` in ``local``, if it is one retrain loads:
    ``serialization_format: skops``, the model file :data:`SKOPS_FILE`, no code, an input example
    (if any) under a plain file name. Anything else is refused with a :class:`RegistryError`
    naming ``what`` and the problem, before any model file is read. ``MLmodel`` is parsed with
    ``yaml.safe_load`` (no object tags)."""
    try:
        meta = yaml.safe_load(Path(local, "MLmodel").read_text(encoding="utf-8"))
    except (OSError, UnicodeError, yaml.YAMLError) as exc:
        raise RegistryError(f"{what} is refused: its MLmodel file cannot be read: {exc}") from exc
    flavors = meta.get("flavors") if isinstance(meta, dict) else None
    conf = flavors.get("sklearn") if isinstance(flavors, dict) else None
    if not isinstance(conf, dict):
        raise RegistryError(
            f"{what} is refused: its MLmodel has no sklearn flavor (retrain loads only "
            "scikit-learn models saved with skops)"
        )
    fmt = conf.get("serialization_format", "pickle")  # what mlflow assumes when it is missing
    if fmt != "skops":
        raise RegistryError(
            f"{what} is refused: its MLmodel declares serialization_format {fmt!r}; retrain "
            "loads only 'skops' (pickle and cloudpickle run code when loaded), so it was not "
            "loaded"
        )
    if conf.get("pickled_model") != SKOPS_FILE:
        raise RegistryError(
            f"{what} is refused: its model file is {conf.get('pickled_model')!r}, not "
            f"{SKOPS_FILE!r}"
        )
    if conf.get("code"):
        raise RegistryError(
            f"{what} is refused: it ships code ({conf['code']!r}) that loading it would import"
        )
    info = meta.get("saved_input_example_info")
    example = info.get("artifact_path") if isinstance(info, dict) else None
    if example is not None and not (
        isinstance(example, str) and _PLAIN_NAME.fullmatch(example) and ".." not in example
    ):
        raise RegistryError(f"{what} is refused: its input example path {example!r} is not a file")
    return dict(meta)


def load_skops(local: str | Path, trusted: Sequence[str] | None, what: str) -> Any:
    """The fitted model in the downloaded model directory ``local``: its ``MLmodel`` checked by
    :func:`read_flavor`, its skops file loaded trusting only ``trusted`` beyond skops' defaults
    (``None``: the ``skops_trusted_types`` its ``MLmodel`` recorded when retrain saved it), never
    a type that runs code. Refusals are :class:`RegistryError` naming ``what``; a file that
    cannot be read raises what skops raised."""
    flavor = read_flavor(local, what)["flavors"]["sklearn"]
    if trusted is None:
        recorded = flavor.get("skops_trusted_types") or []
        if not isinstance(recorded, list) or not all(isinstance(t, str) for t in recorded):
            raise RegistryError(
                f"{what} is refused: its MLmodel's skops_trusted_types is not a list"
            )
        trusted = recorded
    bad = unsafe_types(trusted)
    if bad:
        raise RegistryError(
            f"{what} is refused: its trusted types include {', '.join(bad)}, which run code "
            "or reach the system and are never trusted"
        )
    try:
        return load_trusted(Path(local, SKOPS_FILE), list(trusted))
    except TypeError as exc:  # skops' UntrustedTypesFoundException is a TypeError
        if type(exc).__name__ != "UntrustedTypesFoundException":
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        found = ", ".join(re.findall(r"'([^']+)'", first)) or first
        raise RegistryError(
            f"{what} is refused: its skops file holds untrusted types: {found} (trusted for it: "
            f"{', '.join(trusted) or 'none beyond skops defaults'}). A version retrain did not "
            f"register loads with skops' default trusted types only; if you trust where it came "
            f"from, set {TRUSTED_TYPES_TAG} to a JSON list of them"
        ) from None


def load_and_predict(local: str, what: str, trusted: Sequence[str] | None = ()) -> Any:
    """Load an MLflow sklearn model directory (:func:`load_skops`), predict on its stored input
    example and return the loaded model. A refused version raises as :func:`load_skops` says;
    any other failure is a :class:`RegistryError` saying the load check failed."""
    try:
        model = load_skops(local, trusted, what)
        with quiet_mlflow():
            example = Model.load(local).load_input_example(local)
        if example is None:
            raise ValueError("the model has no stored input example")
        predictions = model.predict(example)
        if len(predictions) != len(example):
            raise ValueError(f"{len(predictions)} predictions for {len(example)} example rows")
    except RegistryError:
        raise
    except Exception as exc:
        raise RegistryError(
            redact(f"{what} failed its load check: {type(exc).__name__}: {exc}")
        ) from exc
    return model


def trusted_types_tag(trusted: Sequence[str]) -> str:
    """The JSON list of types a version trusting ``trusted`` records; a list naming a type that
    runs code, or too long for a tag, is refused (no version is created)."""
    bad = unsafe_types(trusted)
    if bad:
        raise RegistryError(
            f"the model needs skops to trust {', '.join(bad)}, which run code or reach the "
            "system and are never trusted: it cannot be registered"
        )
    value = json.dumps(sorted(trusted))
    if len(value) > TAG_VALUE_LIMIT:
        raise RegistryError(
            f"the model needs {len(trusted)} types trusted beyond skops' defaults: too many to "
            f"record with the version ({len(value)} > {TAG_VALUE_LIMIT} characters)"
        )
    return value


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


def _needed_files(local: Path, what: str, *, example: bool) -> list[str]:
    """The files loading a version (``example``: and predicting on its input example) reads
    besides ``MLmodel``, from the downloaded ``MLmodel``, which :func:`read_flavor` checks first:
    a version retrain does not load is refused before its model file is fetched."""
    meta = read_flavor(local, what)
    files = [SKOPS_FILE]
    info = meta.get("saved_input_example_info")
    if example and isinstance(info, dict) and info.get("artifact_path"):
        files.append(str(info["artifact_path"]))
    return files


@functools.lru_cache(maxsize=16)
def artifact_text(tracking_uri: str, artifact_uri: str, name: str) -> str:
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
        trusted_types: Sequence[str],
        what: str,
        end_run_on_failure: bool,
    ) -> LoggedModel:
        """Log ``model`` as a logged model of ``run_id`` and check that it loads and predicts,
        trusting ``trusted_types`` (what the version records) as every later load will.

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
            self._check_logged(logged.artifact_location, what, trusted_types)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                client.set_logged_model_tags(
                    logged.model_id, {"retrain.load_check": redact(str(exc))[:500]}
                )
                client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
                if end_run_on_failure:
                    client.set_terminated(run_id, "FAILED")
            raise
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        return logged

    def _check_logged(self, artifact_uri: str, what: str, trusted: Sequence[str]) -> None:
        with tempfile.TemporaryDirectory(prefix="retrain-check-") as tmp:
            local = self._download_uri(artifact_uri, tmp, what, example=True)
            model = load_and_predict(local, what, trusted)
        _ModelCache.put((self.tracking_uri, artifact_uri), model, verified=True)

    def _download_uri(self, artifact_uri: str, directory: str, what: str, *, example: bool) -> str:
        """The files of the model at ``artifact_uri`` that loading it (``example``: and
        predicting on its input example) reads, downloaded into ``directory``: ``MLmodel``, the
        skops file and the example, one request each. ``MLmodel`` is checked before anything
        else is fetched (:func:`read_flavor`); nothing else (MLflow's environment files, the
        extra files) is read by a load, so it is not fetched."""
        local = Path(directory) / "model"
        repository = artifact_repository(artifact_uri, self.tracking_uri)
        _fetch(repository, "MLmodel", local)
        for name in _needed_files(local, what, example=example):
            _fetch(repository, name, local)
        return str(local)

    def _cache_key(self, mv: ModelVersion) -> tuple[str, str]:
        """Where a version's artifacts live (unique per logged model), for :class:`_ModelCache`."""
        uri = stored_fields(mv.tags or {}).get("artifact_uri")
        return (self.tracking_uri, str(uri or f"{mv.source}#{mv.creation_timestamp}"))

    def artifact_uri(self, mv: ModelVersion) -> str:
        """Where a version's model files are: the location logged at registration, else MLflow's
        download URI (one more request, for versions retrain did not register)."""
        uri = stored_fields(mv.tags or {}).get("artifact_uri")
        if isinstance(uri, str) and uri:
            return uri
        return str(
            self._client.mlflow.get_model_version_download_uri(self._client.name, str(mv.version))
        )

    def what(self, mv: ModelVersion) -> str:
        """How errors name a version: ``version 3 of 'churn'``."""
        return f"version {mv.version} of {self._client.name!r}"

    def trusted_types(self, mv: ModelVersion, what: str) -> list[str] | None:
        """The types skops may trust to load a version beyond its defaults: those recorded at
        registration (:data:`TRUSTED_TYPES_TAG`, else ``trusted_types`` in ``retrain.record``);
        ``None`` for a version retrain registered before it recorded them (its ``MLmodel``
        records the list retrain computed when saving it: :func:`load_skops` uses that); none
        for a version retrain did not register. Whoever can change a tag can change ``MLmodel``
        too, so neither list is trusted for what it holds: a type that runs code is refused from
        both."""
        fields = stored_fields(mv.tags or {})
        trusted = fields.get("trusted_types")
        if trusted is None:
            return None if fields.get("model_id") else []
        if not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted):
            raise RegistryError(
                f"{what} is refused: its recorded trusted types ({TRUSTED_TYPES_TAG}) are not a "
                f"JSON list of type names: {str(trusted)[:200]!r}"
            )
        return trusted

    def download(
        self, mv: ModelVersion, directory: str, *, example: bool = True, what: str | None = None
    ) -> str:
        """Download what loading a version (``example``: and predicting on its input example)
        reads into ``directory``; returns the model directory's path. Its ``MLmodel`` comes
        first and a version retrain does not load is refused before anything else is fetched
        (``what`` names it in the error)."""
        return self._download_uri(
            self.artifact_uri(mv), directory, what or self.what(mv), example=example
        )

    def load(self, mv: ModelVersion) -> Any:
        """The fitted scikit-learn object of a version (downloaded once per process), loaded
        by :func:`load_skops` with the version's recorded trusted types: never unpickled."""
        key = self._cache_key(mv)
        cached = _ModelCache.get(key)
        if cached is not None:
            return cached
        what = self.what(mv)
        trusted = self.trusted_types(mv, what)
        with tempfile.TemporaryDirectory(prefix="retrain-model-") as tmp:
            local = self.download(mv, tmp, example=False, what=what)
            try:
                model = load_skops(local, trusted, what)
            except RegistryError:
                raise
            except Exception as exc:
                message = f"{what} cannot be loaded: {type(exc).__name__}: {exc}"
                raise RegistryError(redact(message)) from exc
        _ModelCache.put(key, model)
        return model

    def check_loads(self, mv: ModelVersion, what: str, *, fresh: bool = False) -> None:
        """Download a version, load it (:func:`load_skops`, never unpickled) and predict on its
        input example; raise if any step fails or the version is refused.

        A check that passed in this process less than :data:`VERIFIED_FOR_SECONDS` ago (the
        registration's own check) counts, unless ``fresh``.
        """
        key = self._cache_key(mv)
        if not fresh and _ModelCache.is_verified(key):
            return
        trusted = self.trusted_types(mv, what)
        with tempfile.TemporaryDirectory(prefix="retrain-check-") as tmp:
            local = self.download(mv, tmp, what=what)
            model = load_and_predict(local, what, trusted)
        _ModelCache.put(key, model, verified=True)

    def reference_profile(self, mv: ModelVersion) -> dict[str, Any] | None:
        """The drift reference profile stored with a version, or ``None`` if it has none."""
        if stored_fields(mv.tags or {}).get("reference_profile") != PROFILE_FILE:
            return None
        where = self.artifact_uri(mv).rstrip("/")
        text = artifact_text(self.tracking_uri, where, f"extra_files/{PROFILE_FILE}")
        # stored by whoever could write the version: bounded and parsed without recursion
        source = f"reference profile of {self.what(mv)}"
        profile = parse_profile_json(text, source=source)
        if not isinstance(profile, dict):
            raise DataError(
                [f"expected a JSON object, got {type(profile).__name__}"], source=source
            )
        return profile
