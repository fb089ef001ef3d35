"""A run's work directory handed over through a real MLflow server's artifact store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlflow import MlflowClient

from retrain.errors import DataError
from retrain.pipeline.workdir import fetch, local_path, publish, snapshot


@pytest.fixture
def run_id(tracking_uri: str) -> str:
    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment(f"handoff-{os.urandom(4).hex()}")
    return str(client.create_run(experiment).info.run_id)


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_a_second_worker_gets_exactly_what_the_first_wrote(
    tracking_uri: str, run_id: str, tmp_path: Path
) -> None:
    client = MlflowClient(tracking_uri)
    first, second = tmp_path / "a" / "run", tmp_path / "b" / "run"
    _write(first, "extract/window.parquet", "rows")
    before = snapshot(first)
    _write(first, "model/model.skops", "fitted")
    _write(first, "reports/evaluation.html", "<html>")
    assert publish(client, run_id, first, before) == [
        "model/model.skops",
        "reports/evaluation.html",
    ]
    assert publish(client, run_id, first, {}) == sorted(snapshot(first))
    assert sorted(fetch(client, run_id, second)) == sorted(snapshot(first))
    assert {rel: (second / rel).read_text() for rel in snapshot(second)} == {
        rel: (first / rel).read_text() for rel in snapshot(first)
    }
    assert fetch(client, run_id, second) == []  # nothing missing: nothing downloaded


def test_a_changed_file_is_published_again_and_a_stale_copy_replaced(
    tracking_uri: str, run_id: str, tmp_path: Path
) -> None:
    client = MlflowClient(tracking_uri)
    first, second = tmp_path / "a", tmp_path / "b"
    _write(first, "state.json", "{}")
    publish(client, run_id, first, {})
    fetch(client, run_id, second)
    before = snapshot(first)
    _write(first, "state.json", '{"step": "deploy"}')
    assert publish(client, run_id, first, before) == ["state.json"]
    assert fetch(client, run_id, second) == ["state.json"]
    assert (second / "state.json").read_text() == '{"step": "deploy"}'


@pytest.mark.parametrize("rel", ["../evil.txt", "/etc/passwd", "a/../../evil.txt"])
def test_an_artifact_that_would_land_outside_the_work_directory_is_refused(
    tmp_path: Path, rel: str
) -> None:
    with pytest.raises(DataError, match="outside the work directory"):
        local_path(tmp_path / "work", rel)
    assert local_path(tmp_path / "work", "a/b.txt") == (tmp_path / "work" / "a" / "b.txt").resolve()
