"""tools.replay against a real ``retrain serve`` process (production v1, canary v2 on the session's
MLflow server): every row answered exactly once, the split sticky per entity, per-arm counts
summing to the rows, every label stored in ``retrain_labels``; the CLI, pacing, the
``/models/<name>/`` paths and a refused token."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from retrain.config import RetrainConfig
from tests.helpers import write_config
from tests.registry_builders import make_data
from tests.serving.conftest import Served, count_rows, fetch, register_served
from tests.test_cli_serve import TOKEN, Server
from tools.replay import TOKEN_ENV, main, replay

FEATURES = ["x1", "x2", "segment"]


def labelled_rows(n: int, seed: int) -> pd.DataFrame:
    """``n`` rows of the served models' features with their label and 60 repeating customers."""
    frame, label = make_data(n, seed=seed)
    return frame.assign(label=label, customer=[f"cust-{i % 60}" for i in range(n)])


@pytest.fixture
def served(make_config: Callable[..., RetrainConfig], tmp_path: Path) -> Served:
    """Production v1, canary v2 with 30% of the traffic; the prediction log under tmp_path."""
    config = make_config(
        storage={"work_dir": str(tmp_path / "work")},
        deployment={"canary_traffic_percent": 30},
    )
    return register_served(config)


@pytest.fixture
def server(served: Served, tmp_path: Path) -> Iterator[Server]:
    config = write_config(served.config, tmp_path / "model.yaml")
    started = Server(config, tmp_path / "serve.log")
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


def db_url(served: Served) -> str:
    return f"sqlite:///{Path(served.config.storage.work_dir) / 'serving' / 'predictions.db'}"


def wait_for_rows(url: str, where: str, expected: int, timeout: float = 15.0) -> int:
    """Rows of ``retrain_predictions`` matching ``where`` once the log has written them."""
    deadline = time.monotonic() + timeout
    found = count_rows(url, where=where)
    while found < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        found = count_rows(url, where=where)
    return found


def test_rows_must_have_the_columns() -> None:
    with pytest.raises(ValueError, match=r"lack column.*'label'"):
        replay(
            "http://127.0.0.1:1", None, pd.DataFrame({"x1": [1.0]}), features=["x1"], target="label"
        )
    with pytest.raises(ValueError, match="batch_rows"):
        replay(
            "http://127.0.0.1:1",
            None,
            labelled_rows(2, 0),
            features=FEATURES,
            target="label",
            batch_rows=0,
        )


@pytest.mark.slow
def test_every_row_answered_once_and_every_label_stored(
    served: Served,
    server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = labelled_rows(400, seed=5)
    report = replay(
        server.url,
        TOKEN,
        rows,
        features=FEATURES,
        target="label",
        entity_column="customer",
        batch_rows=25,
        label_delay_seconds=0.3,
    )
    print("\n" + "\n".join(report.lines()))
    answers = report.answers

    # every row answered exactly once, in its own request id
    assert (report.rows, report.requests, report.failures) == (400, 16, {})
    assert sorted(answers["row"]) == list(range(400))
    assert answers["request_id"].is_unique
    assert list(answers["entity_id"]) == list(rows["customer"])
    # per-arm and per-version counts sum to the rows; the split is sticky per customer
    assert sum(report.by_arm.values()) == sum(report.by_version.values()) == 400
    assert report.by_version == {
        served.production: report.by_arm["production"],
        served.canary: report.by_arm["canary"],
    }
    assert 0.15 < report.by_arm["canary"] / 400 < 0.45
    assert (answers.groupby("entity_id")["arm"].nunique() == 1).all()
    assert {a: v for a, v in zip(answers["arm"], answers["version"], strict=True)} == {
        "production": served.production,
        "canary": served.canary,
    }
    # every label stored, by request id, with the row's true value
    assert report.labels_stored == 400 and report.label_failures == {}
    assert report.labelled == report.by_arm
    assert all(0.9 <= acc <= 1.0 for acc in report.accuracy.values())
    db = db_url(served)
    stored = dict(fetch(db, "SELECT request_id, label FROM retrain_labels"))
    expected = {r: str(y) for r, y in zip(answers["request_id"], rows["label"], strict=True)}
    assert stored == expected
    # the server logged one prediction per answered row, in the arm the answer named
    assert wait_for_rows(db, "WHERE request_id LIKE 'replay-%'", 400) == 400
    logged = dict(fetch(db, "SELECT request_id, arm FROM retrain_predictions"))
    assert logged == dict(zip(answers["request_id"], answers["arm"], strict=True))

    # paced, on the /models/<name>/ paths: 5 requests at 25/s take at least 4/25 s
    paced = replay(
        server.url,
        TOKEN,
        rows.head(50),
        features=FEATURES,
        target="label",
        batch_rows=10,
        rate=25,
        model=served.config.model.name,
    )
    assert (paced.answered, paced.requests, paced.labels_stored) == (50, 5, 50)
    assert paced.seconds >= 4 / 25
    assert len(paced.latencies_ms) == 5 and paced.latency_ms["p50"] > 0

    # a wrong token: every row counted as failed, nothing raised, no label sent
    refused = replay(
        server.url, "not-the-token-0123456789", rows.head(30), features=FEATURES, target="label"
    )
    assert (refused.answered, refused.failed_rows, refused.labels_stored) == (0, 30, 0)
    assert list(refused.failures) == ["HTTP 401: wrong bearer token"]
    assert count_rows(db, "retrain_labels") == 450

    # the CLI: a parquet directory, the token from the environment, the first N rows
    parquet = tmp_path / "rows"
    parquet.mkdir()
    labelled_rows(120, seed=9).to_parquet(parquet / "part-0.parquet", index=False)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    code = main(
        [
            "--url",
            server.url,
            "--parquet",
            str(parquet),
            "--rows",
            "70",
            "--rate",
            "200",
            "--label-delay",
            "0.1",
            "--features",
            ",".join(FEATURES),
            "--target",
            "label",
            "--entity-column",
            "customer",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "70 rows in 4 requests" in out and "70 answered, 0 failed" in out
    assert "labels stored: 70" in out
    assert count_rows(db, "retrain_labels") == 520
