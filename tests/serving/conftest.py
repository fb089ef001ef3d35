"""Fixtures of the serving tests: a model with a production and a canary version on the
session's real MLflow server, a PostgreSQL database of the test's own, a load client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.pipeline import Pipeline

from retrain.config import RetrainConfig
from retrain.registry import ModelRegistry
from tests.helpers import postgres_database
from tests.registry_builders import Fleet, make_data, make_pipeline_model


@pytest.fixture
def postgres() -> Iterator[str]:
    with postgres_database("retrain_serving") as url:
        yield url


def count_rows(url: str, table: str = "retrain_predictions", where: str = "") -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table} {where}").scalar_one())
    finally:
        engine.dispose()


def fetch(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def read_rows(url: str, table: str = "retrain_predictions") -> pd.DataFrame:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return pd.read_sql_table(table, conn)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def fitted() -> Pipeline:
    return make_pipeline_model()


@pytest.fixture(scope="session")
def example() -> pd.DataFrame:
    return make_data(20, seed=1)[0]


@pytest.fixture
def config(make_config: Callable[..., RetrainConfig], tmp_path: Any) -> RetrainConfig:
    return make_config(storage={"work_dir": str(tmp_path / "work")})


@pytest.fixture
def fleet(config: RetrainConfig, fitted: Pipeline, example: pd.DataFrame) -> Fleet:
    return Fleet(ModelRegistry(config, actor="tester"), fitted, example)


@dataclass
class Served:
    """A model with ``production`` (and ``canary`` when asked) versions."""

    config: RetrainConfig
    fleet: Fleet
    production: int
    canary: int | None


def register_served(config: RetrainConfig, fleet: Fleet | None = None) -> Served:
    """Production v1, canary v2 of ``config``'s model."""
    fleet = fleet or Fleet(
        ModelRegistry(config, actor="tester"), make_pipeline_model(), make_data(20, seed=1)[0]
    )
    production = fleet.to_production()
    canary = fleet.register()
    fleet.registry.promote(canary, "canary", reason="canary for serving tests")
    return Served(config, fleet, production, canary)


@pytest.fixture
def served(config: RetrainConfig, fleet: Fleet) -> Served:
    """Production v1, canary v2."""
    return register_served(config, fleet)


@dataclass
class Load:
    """A client thread calling ``send()`` back to back until stopped; every outcome counted."""

    send: Callable[[int], Any]
    results: list[Any] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            try:
                self.results.append((time.monotonic(), self.send(i)))
            except Exception as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
            i += 1

    def first_after(self, since: float, predicate: Callable[[Any], bool], timeout: float) -> float:
        """Seconds from ``since`` (``time.monotonic()``) to the first result after it that
        satisfies ``predicate``; fails after ``timeout``."""
        while time.monotonic() - since < timeout:
            for at, result in list(self.results):
                if at >= since and predicate(result):
                    return at - since
            time.sleep(0.05)
        raise AssertionError(f"no such result within {timeout} s of the move")
