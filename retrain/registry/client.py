"""MLflow access for one registered model: bounded calls with errors an operator can act on.

:class:`RegistryClient` builds the ``MlflowClient`` on first use, runs every block of requests
under :meth:`RegistryClient.calls` (bounded HTTP retries and timeouts; mlflow and network errors
become :class:`RegistryError`, a missing model :class:`UnknownModelError`) and holds the lookups
every registry operation starts from: where the aliases point, one version, an experiment id.
Every error message leaving :meth:`RegistryClient.calls` goes through
:func:`retrain.redact.redact`: a ``user:password@`` tracking URI is shown as ``user:***@``.

Alias and version-tag writes go to MLflow's registry client directly: ``MlflowClient`` reads the
registered model before each of them to refuse prompts (one extra request per write), and every
operation here has already read the model (:meth:`RegistryClient.aliases`), which refuses a
prompt the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException

from retrain.errors import RegistryError, UnknownModelError
from retrain.redact import redact
from retrain.registry.records import alias_versions
from retrain.tracking import client_env, mlflow_error

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

    from retrain.config import RegistrySettings

__all__ = ["RegistryClient"]

#: The tag that marks a registered model as a prompt of MLflow's prompt registry.
_PROMPT_TAG = "mlflow.prompt.is_prompt"


def _masked(error: RegistryError) -> RegistryError:
    """``error`` with every secret in its message masked (the same type; itself if none)."""
    message = str(error)
    masked = redact(message)
    if masked == message:
        return error
    try:
        return type(error)(masked)
    except TypeError:  # a subclass with another signature: the message as a RegistryError
        return RegistryError(masked)


def _safe_cause(cause: BaseException | None) -> BaseException | None:
    """``cause``, unless its message holds a secret (then ``None``: not chained)."""
    if cause is None or redact(str(cause)) != str(cause):
        return None
    return cause


def _not_a_prompt(rm: RegisteredModel) -> RegisteredModel:
    """``rm``, unless it is a prompt of MLflow's prompt registry (refused as not a model)."""
    if _PROMPT_TAG in (rm.tags or {}):
        raise UnknownModelError(
            f"{rm.name!r} is a prompt of MLflow's prompt registry, not a registered model"
        )
    return rm


class RegistryClient:
    """The registered model ``name`` on ``settings.tracking_uri``, one MLflow request at a time."""

    def __init__(self, name: str, settings: RegistrySettings) -> None:
        self.name = name
        self.settings = settings
        self.tracking_uri = settings.tracking_uri
        #: The tracking URI as messages show it (a password masked).
        self.shown_uri = redact(settings.tracking_uri)
        self._mlflow: MlflowClient | None = None

    @property
    def mlflow(self) -> MlflowClient:
        """The ``MlflowClient`` for ``tracking_uri`` (tracking and registry), built on first use."""
        if self._mlflow is None:
            self._mlflow = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
            )
        return self._mlflow

    @contextlib.contextmanager
    def calls(self, what: str) -> Iterator[None]:
        """Bounded HTTP settings, and mlflow/network errors turned into :class:`RegistryError`
        (:func:`retrain.tracking.mlflow_error`; a missing model is :class:`UnknownModelError`).
        Secrets in any message (a password in the tracking URI) are masked, and a cause whose
        text holds one is not chained (a task log prints the chain)."""
        with client_env(self.settings):
            try:
                yield
            except RegistryError as exc:
                masked = _masked(exc)
                if masked is exc:
                    raise
                raise masked from _safe_cause(exc.__cause__)
            except RestException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST" and "Registered Model" in str(exc):
                    raise UnknownModelError(
                        f"{what}: model {self.name!r} is not registered at {self.shown_uri} "
                        "(no version has been registered yet)"
                    ) from _safe_cause(exc)
                raise _masked(mlflow_error(what, exc, self.settings)) from _safe_cause(exc)
            except (MlflowException, OSError) as exc:
                raise _masked(mlflow_error(what, exc, self.settings)) from _safe_cause(exc)

    def registered_model(self, *, create: bool = False) -> RegisteredModel:
        """The registered model (one request); ``create``: register it first if it does not exist
        yet. A prompt of MLflow's prompt registry with this name is refused like a missing
        model, as ``MlflowClient`` refuses it."""
        try:
            return _not_a_prompt(self.mlflow.get_registered_model(self.name))
        except RestException as exc:
            if not create or exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        try:
            return _not_a_prompt(
                self.mlflow.create_registered_model(
                    self.name,
                    tags={"retrain.managed": "true"},
                    description=f"Managed by retrain (config model {self.name!r}).",
                )
            )
        except RestException:  # lost a creation race: fine
            return _not_a_prompt(self.mlflow.get_registered_model(self.name))

    def aliases(self, *, create: bool = False) -> dict[str, int]:
        """The version each alias of the model points at (one request). ``create``: register the
        model first if it does not exist yet."""
        return alias_versions(self.registered_model(create=create))

    @property
    def _store(self) -> Any:
        """MLflow's registry client: the writes of ``MlflowClient`` without its prompt check (a
        registered-model read per write); ``MlflowClient`` itself if mlflow moved it."""
        getter = getattr(self.mlflow, "_get_registry_client", None)
        return getter() if getter is not None else self.mlflow

    def set_alias(self, alias: str, version: int) -> None:
        self._store.set_registered_model_alias(self.name, alias, str(version))

    def delete_alias(self, alias: str) -> None:
        self._store.delete_registered_model_alias(self.name, alias)

    def set_version_tag(self, version: int | str, key: str, value: str) -> None:
        self._store.set_model_version_tag(self.name, str(version), key, value)

    def delete_version(self, version: int | str) -> None:
        self._store.delete_model_version(self.name, str(version))

    def version_by_alias(self, alias: str) -> ModelVersion | None:
        """The version ``alias`` points at (one request), ``None`` if the alias is not set; an
        unknown model raises :class:`UnknownModelError` through :meth:`calls`."""
        try:
            return self.mlflow.get_model_version_by_alias(self.name, alias)
        except RestException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST" and "Registered Model" in str(exc):
                raise
            if "alias" in str(exc).lower() and "not found" in str(exc).lower():
                return None
            raise

    def model_version(self, version: int | str) -> ModelVersion:
        """One version of the model; a clear :class:`RegistryError` if it does not exist."""
        try:
            return self.mlflow.get_model_version(self.name, str(int(version)))
        except RestException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise RegistryError(
                    f"model {self.name!r} has no version {version} at {self.shown_uri}"
                ) from exc
            raise
        except ValueError:
            raise RegistryError(f"not a version number: {version!r}") from None

    def resolve(self, version_or_alias: int | str) -> int:
        """A version number, or the version an alias points at (one request for an alias)."""
        if isinstance(version_or_alias, int) or str(version_or_alias).isdigit():
            return int(version_or_alias)
        mv = self.version_by_alias(str(version_or_alias))
        if mv is None:
            raise RegistryError(f"model {self.name!r} has no {version_or_alias!r} version")
        return int(mv.version)

    def all_versions(self) -> list[ModelVersion]:
        """Every version of the model, in pages of 1000."""
        found: list[ModelVersion] = []
        token: str | None = None
        while True:
            page = self.mlflow.search_model_versions(
                f"name='{self.name}'", max_results=1000, page_token=token
            )
            found.extend(page)
            token = page.token
            if not token:
                return found

    def versions_tagged(self, tag: str, value: str) -> list[ModelVersion]:
        """Versions of the model whose tag ``tag`` is ``value``."""
        return list(
            self.mlflow.search_model_versions(f"name='{self.name}' and tags.`{tag}`='{value}'")
        )

    def experiment_id(self, name: str, *, missing: bool = False) -> str:
        """Id of experiment ``name``, created if missing (``missing``: a read just found it
        missing, so it is created without asking again)."""
        experiment = None if missing else self.mlflow.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(self.mlflow.create_experiment(name))
        except RestException:  # created concurrently
            experiment = self.mlflow.get_experiment_by_name(name)
            if experiment is None:
                raise
            return str(experiment.experiment_id)
