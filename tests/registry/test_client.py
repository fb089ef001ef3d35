"""MLflow access (retrain.registry.client): clear errors within seconds, bounded settings."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from retrain.config import RetrainConfig
from retrain.errors import RegistryError, UnknownModelError
from retrain.registry import ModelRegistry
from tests.registry_builders import Fleet
from tools.mlflow_server import free_port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


class TestErrors:
    @pytest.mark.parametrize(
        "call",
        [
            pytest.param(lambda r: r.current(), id="reading the aliases"),
            pytest.param(lambda r: r.history(), id="reading the history"),
            pytest.param(lambda r: r.rollback(reason="x"), id="rolling back"),
        ],
    )
    def test_server_down_gives_a_clear_error_within_seconds(
        self, make_config: Callable[..., RetrainConfig], call: Callable[[ModelRegistry], Any]
    ) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        registry = ModelRegistry(make_config(registry={"tracking_uri": url}))

        started = time.monotonic()
        with pytest.raises(RegistryError, match=rf"{url} is unreachable \(connection refused"):
            call(registry)

        assert time.monotonic() - started < 10

    def test_a_password_in_the_tracking_uri_never_reaches_a_message(
        self, make_config: Callable[..., RetrainConfig]
    ) -> None:
        url = f"http://ops:hunter22@127.0.0.1:{free_port()}"
        registry = ModelRegistry(make_config(registry={"tracking_uri": url}))

        with pytest.raises(RegistryError) as caught:
            registry.current()

        assert "hunter22" not in str(caught.value) and "ops:***@127.0.0.1" in str(caught.value)
        cause = caught.value.__cause__
        assert cause is None or "hunter22" not in str(cause)
        assert "hunter22" not in repr(registry)

    def test_a_server_that_never_answers_times_out_within_the_configured_bound(
        self, make_config: Callable[..., RetrainConfig], silent_port: int
    ) -> None:
        url = f"http://127.0.0.1:{silent_port}"
        config = make_config(
            registry={"tracking_uri": url, "request_timeout_seconds": 1, "max_retries": 1}
        )

        started = time.monotonic()
        with pytest.raises(RegistryError, match=r"unreachable \(no answer within 1 s"):
            ModelRegistry(config).current()

        assert time.monotonic() - started < 10

    def test_client_settings_are_restored_after_a_call(
        self, registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "4")
        monkeypatch.delenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", raising=False)

        with pytest.raises(RegistryError):
            registry.history()

        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "4"
        assert "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR" not in os.environ

    def test_unknown_model_is_named(self, registry: ModelRegistry) -> None:
        with pytest.raises(UnknownModelError, match=rf"model '{registry.name}' is not registered"):
            registry.current()

    def test_unknown_version_is_named(self, fleet: Fleet) -> None:
        fleet.register()

        with pytest.raises(RegistryError, match="has no version 99"):
            fleet.registry.promote(99, "canary", reason="x")

    def test_a_reason_is_required(self, fleet: Fleet) -> None:
        with pytest.raises(ValueError, match="reason is required"):
            fleet.registry.rollback(reason=" ")
