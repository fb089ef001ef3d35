"""MLflow access for one registered model: bounded calls with errors an operator can act on.

:class:`RegistryClient` builds the ``MlflowClient`` on first use, runs every block of requests
under :meth:`RegistryClient.calls` (bounded HTTP retries and timeouts; mlflow and network errors
become :class:`RegistryError`, a missing model :class:`UnknownModelError`) and holds the lookups
every registry operation starts from: where the aliases point, one version, an experiment id.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException

from retrain.errors import RegistryError, UnknownModelError
from retrain.registry.records import alias_versions
from retrain.tracking import client_env

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

    from retrain.config import RegistrySettings

__all__ = ["RegistryClient"]


class RegistryClient:
    """The registered model ``name`` on ``settings.tracking_uri``, one MLflow request at a time."""

    def __init__(self, name: str, settings: RegistrySettings) -> None:
        self.name = name
        self.settings = settings
        self.tracking_uri = settings.tracking_uri
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
        """Bounded HTTP settings, and mlflow/network errors turned into :class:`RegistryError`."""
        with client_env(self.settings):
            try:
                yield
            except RegistryError:
                raise
            except RestException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST" and "Registered Model" in str(exc):
                    raise UnknownModelError(
                        f"{what}: model {self.name!r} is not registered at {self.tracking_uri} "
                        "(no version has been registered yet)"
                    ) from exc
                raise RegistryError(f"{what}: MLflow refused: {exc.message}") from exc
            except MlflowException as exc:
                raise self.transport_error(what, exc.message) from exc
            except OSError as exc:
                raise self.transport_error(what, str(exc)) from exc

    def transport_error(self, what: str, message: str) -> RegistryError:
        """A failed request in words: which server, why (refused, timed out, unknown host) and
        after how many retries."""
        lowered = message.lower()
        if "api request to" not in lowered and "connection" not in lowered:
            return RegistryError(f"{what}: {message}")
        if "refused" in lowered:
            cause = "connection refused"
        elif "timed out" in lowered or "timeout" in lowered:
            cause = f"no answer within {self.settings.request_timeout_seconds:g} s"
        elif "name or service not known" in lowered or "resolve" in lowered:
            cause = "host name does not resolve"
        else:
            cause = message.splitlines()[0][-200:]
        retries = self.settings.max_retries
        return RegistryError(
            f"{what}: MLflow tracking server at {self.tracking_uri} is unreachable ({cause}, "
            f"{retries} retr{'y' if retries == 1 else 'ies'}); "
            "check registry.tracking_uri and that the server is running"
        )

    def registered_model(self) -> RegisteredModel:
        return self.mlflow.get_registered_model(self.name)

    def aliases(self, *, create: bool = False) -> dict[str, int]:
        """The version each alias of the model points at (one request). ``create``: register the
        model first if it does not exist yet."""
        if not create:
            return alias_versions(self.registered_model())
        try:
            return alias_versions(self.registered_model())
        except RestException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        with contextlib.suppress(RestException):  # lost a creation race: fine
            self.mlflow.create_registered_model(
                self.name,
                tags={"retrain.managed": "true"},
                description=f"Managed by retrain (config model {self.name!r}).",
            )
        return alias_versions(self.registered_model())

    def model_version(self, version: int | str) -> ModelVersion:
        """One version of the model; a clear :class:`RegistryError` if it does not exist."""
        try:
            return self.mlflow.get_model_version(self.name, str(int(version)))
        except RestException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise RegistryError(
                    f"model {self.name!r} has no version {version} at {self.tracking_uri}"
                ) from exc
            raise
        except ValueError:
            raise RegistryError(f"not a version number: {version!r}") from None

    def resolve(self, version_or_alias: int | str) -> int:
        """A version number, or the version an alias points at (one request for an alias)."""
        if isinstance(version_or_alias, int) or str(version_or_alias).isdigit():
            return int(version_or_alias)
        aliases = self.aliases()
        if version_or_alias not in aliases:
            raise RegistryError(f"model {self.name!r} has no {version_or_alias!r} version")
        return aliases[str(version_or_alias)]

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

    def experiment_id(self, name: str) -> str:
        """Id of experiment ``name``, created if missing."""
        experiment = self.mlflow.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(self.mlflow.create_experiment(name))
        except RestException:  # created concurrently
            experiment = self.mlflow.get_experiment_by_name(name)
            if experiment is None:
                raise
            return str(experiment.experiment_id)
