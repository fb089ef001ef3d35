"""The prediction log (retrain.serving.prediction_log) on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from retrain.serving.prediction_log import PredictionLog
from retrain.serving.tables import LABELS, PREDICTIONS
from tests.serving.conftest import count_rows, postgres_database, read_rows


def row(i: int, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "model": "churn",
        "request_id": f"r{i}",
        "entity_id": f"e{i}",
        "version": 1,
        "arm": "production",
        "prediction": "1",
        "probability": 0.75,
        "latency_ms": 1.5,
        "predicted_at": datetime.now(UTC),
        "feature_hash": "0" * 32,
    }
    data.update(overrides)
    return data


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'deep' / 'predictions.db'}"
    else:
        with postgres_database() as found:
            yield found


class TestPredictionLog:
    def test_creates_the_tables_and_writes_every_row(self, url: str) -> None:
        log = PredictionLog(url, batch_size=7)
        for start in range(0, 100, 10):
            assert log.submit([row(i) for i in range(start, start + 10)])
        log.close()

        assert count_rows(url) == 100
        assert log.stats()["written"] == 100 and log.dropped == 0
        names = set(sa.inspect(sa.create_engine(url)).get_table_names())
        assert {PREDICTIONS.name, LABELS.name} <= names

    def test_values_are_bound_parameters_stored_verbatim(self, url: str) -> None:
        nasty = "x'); DROP TABLE retrain_predictions; --"
        log = PredictionLog(url)
        log.submit([row(1, entity_id=nasty, request_id='r"1')])
        log.close()

        stored = read_rows(url)
        assert stored["entity_id"].tolist() == [nasty]
        assert stored["request_id"].tolist() == ['r"1']

    def test_a_second_log_on_the_same_database_finds_the_tables(self, url: str) -> None:
        PredictionLog(url).close()
        log = PredictionLog(url)
        log.submit([row(1)])
        log.close()
        assert count_rows(url) == 1


class TestBoundedBuffer:
    def test_a_full_buffer_drops_and_counts_without_blocking(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'p.db'}"
        log = PredictionLog(url, queue_size=10, batch_size=10)
        gate = threading.Event()
        original = log._write

        def slow(batch: list[Any]) -> bool:
            gate.wait(10)
            return original(batch)

        log._write = slow  # type: ignore[method-assign]
        assert log.submit([row(i) for i in range(10)])  # taken by the writer, which now waits
        deadline = threading.Event()
        while log.pending != 10 or log._in_flight != 10:
            deadline.wait(0.01)
        assert log.submit([row(i) for i in range(10, 20)])  # fills the buffer
        assert not log.submit([row(20), row(21)])  # full: dropped at once, all or nothing
        assert log.dropped == 2
        gate.set()
        log.close()

        assert count_rows(url) == 20
        assert log.stats()["dropped"] == 2

    def test_a_closed_log_takes_nothing(self, tmp_path: Path) -> None:
        log = PredictionLog(f"sqlite:///{tmp_path / 'p.db'}")
        log.close()
        assert not log.submit([row(1)])
        assert log.dropped == 1

    def test_database_errors_are_retried_until_the_rows_are_written(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'p.db'}"
        log = PredictionLog(url)
        failures = iter([True, True])
        real = log.engine

        class Flaky:
            def begin(self) -> Any:
                if next(failures, False):
                    raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
                return real.begin()

            def dispose(self) -> None:
                real.dispose()

        log.engine = Flaky()  # type: ignore[assignment]
        log.submit([row(1), row(2)])
        assert log.flush(timeout=10)
        log.close()

        assert count_rows(url) == 2
        assert log.last_error is None and log.lost == 0

    def test_close_gives_up_on_a_dead_database_after_its_timeout(self, tmp_path: Path) -> None:
        log = PredictionLog(f"sqlite:///{tmp_path / 'p.db'}")

        class Dead:
            def begin(self) -> Any:
                raise sa.exc.OperationalError("INSERT", {}, Exception("gone"))

            def dispose(self) -> None:
                pass

        log.engine = Dead()  # type: ignore[assignment]
        log.submit([row(1), row(2), row(3)])
        log.close(timeout=0.5)

        assert log.lost == 3
        assert "gone" in str(log.last_error)
