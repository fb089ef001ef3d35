"""One model call per version (labels from ``predict_proba`` when the load check allows it) and
dynamic batching (``Router.submit``), on the session's real MLflow server."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads  # loads OpenMP

from retrain.config import RetrainConfig
from retrain.errors import DataError
from retrain.serving import Prediction, PredictionError, Router, RouterClosedError
from retrain.serving.router import Answers, _feature_hashes, _json_texts, choose_calls
from retrain.serving.split import choose_arm
from tests.registry_builders import make_data, make_pipeline_model
from tests.serving.conftest import Served, read_rows


def log_url(config: RetrainConfig) -> str:
    return f"sqlite:///{Path(config.storage.work_dir) / 'serving' / 'predictions.db'}"


class Contrarian(LogisticRegression):
    """A classifier whose ``predict`` is not ``classes_[argmax(predict_proba)]``."""

    def predict(self, X: Any) -> Any:  # noqa: N803 - scikit-learn's name
        return self.classes_.take(1 - self.predict_proba(X).argmax(axis=1))


class TestChoosingCalls:
    def test_argmax_equal_to_predict_on_the_sample_means_one_call(self) -> None:
        sample = make_data(10, seed=2)[0]
        assert choose_calls(make_pipeline_model(), sample) == "predict_proba"

    def test_otherwise_both_calls_are_kept(self) -> None:
        sample = make_data(10, seed=2)[0]
        assert choose_calls(make_pipeline_model(Contrarian()), sample) == (
            "predict + predict_proba"
        )
        assert choose_calls(make_pipeline_model(), None) == "predict + predict_proba"
        assert choose_calls(make_pipeline_model(LinearSVC()), sample) == "predict"

    def test_served_versions_say_which_calls_they_use(self, served: Served) -> None:
        frame = make_data(300, seed=5)[0]
        model = served.fleet.model
        with Router(served.config, start=False, traffic_fraction=0.0) as router:
            arms = router.status["arms"]
            found = router.predict(frame)
        # both registered versions are logistic regressions: argmax(proba) is their predict
        assert {arm: a["calls"] for arm, a in arms.items()} == {
            "production": "predict_proba",
            "canary": "predict_proba",
        }
        assert [p.prediction for p in found] == model.predict(frame).tolist()
        assert [p.probability for p in found] == model.predict_proba(frame)[:, 1].tolist()


class Gated:
    """A model that holds its first call until ``release`` is set; records each call's rows."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.classes_ = model.classes_
        self.sizes: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def predict(self, frame: pd.DataFrame) -> Any:
        return self._call("predict", frame)

    def predict_proba(self, frame: pd.DataFrame) -> Any:
        return self._call("predict_proba", frame)

    def _call(self, method: str, frame: pd.DataFrame) -> Any:
        self.sizes.append(len(frame))
        self.entered.set()
        assert self.release.wait(30), "never released"
        return getattr(self.model, method)(frame)


@pytest.fixture
def gated(served: Served) -> Iterator[tuple[Router, Gated]]:
    """A router (canary share 0) whose production model waits for the test to release it."""
    with Router(served.config, start=False, traffic_fraction=0.0) as router:
        pair = router._pair
        gate = Gated(pair.production.model)
        router._pair = dataclasses.replace(
            pair, production=dataclasses.replace(pair.production, model=gate)
        )
        try:
            yield router, gate
        finally:
            gate.release.set()


def requests(count: int, rows: int = 3) -> list[tuple[pd.DataFrame, list[str], list[str]]]:
    frame = make_data(count * rows, seed=7)[0]
    return [
        (
            frame.iloc[i * rows : (i + 1) * rows].reset_index(drop=True),
            [f"e{i}-{j}" for j in range(rows)],
            [f"r{i}-{j}" for j in range(rows)],
        )
        for i in range(count)
    ]


def plain(predictions: list[Prediction]) -> list[tuple[Any, ...]]:
    return [
        (p.request_id, p.entity_id, p.arm, p.version, p.prediction, p.probability, p.feature_hash)
        for p in predictions
    ]


class TestDynamicBatching:
    def test_queued_requests_take_one_call_and_answer_as_predict_does(
        self, gated: tuple[Router, Gated], served: Served
    ) -> None:
        router, gate = gated
        sent = requests(5)
        first = router.submit(sent[0][0], entity_ids=sent[0][1], request_ids=sent[0][2])
        assert gate.entered.wait(30)
        rest = [router.submit(f, entity_ids=e, request_ids=r) for f, e, r in sent[1:]]
        gate.release.set()
        answers = [future.result(30) for future in (first, *rest)]

        assert gate.sizes == [3, 12], "the four queued requests were one call"
        assert router.status["batches"] == {"count": 2, "requests": 5, "rows": 15}
        router._pair = dataclasses.replace(
            router._pair, production=dataclasses.replace(router._pair.production, model=gate.model)
        )
        alone = [router.predict(f, entity_ids=e, request_ids=r) for f, e, r in sent]
        assert [plain(a) for a in answers] == [plain(a) for a in alone]
        assert all(p.latency_ms > 0 for a in answers for p in a)
        router.log.flush()
        stored = read_rows(log_url(served.config))
        assert len(stored) == 2 * 15, "one row per answered row, each time"
        assert sorted(stored["request_id"]) == sorted(
            [f"r{i}-{j}" for i in range(5) for j in range(3)] * 2
        )

    def test_the_split_stays_sticky_per_entity_in_a_batch(self, served: Served) -> None:
        frame = make_data(400, seed=8)[0]
        entities = [f"customer-{i}" for i in range(400)]
        with Router(served.config, start=False, traffic_fraction=0.3) as router:
            futures = [
                router.submit(frame.iloc[i : i + 4], entity_ids=entities[i : i + 4])
                for i in range(0, 400, 4)
            ]
            found = [p for future in futures for p in future.result(30)]
        expected = [choose_arm(served.config.model.name, e, 0.3) for e in entities]
        assert [p.arm for p in found] == expected
        assert {p.arm: p.version for p in found} == {
            "production": served.production,
            "canary": served.canary,
        }

    def test_a_request_the_model_fails_on_fails_alone(
        self, gated: tuple[Router, Gated], served: Served
    ) -> None:
        router, gate = gated
        sent = requests(4)
        broken = sent[2][0].astype({"x1": object})
        broken.loc[1, "x1"] = "not a number"
        first = router.submit(sent[0][0], entity_ids=sent[0][1], request_ids=sent[0][2])
        assert gate.entered.wait(30)
        rest = [
            router.submit(broken if i == 2 else f, entity_ids=e, request_ids=r)
            for i, (f, e, r) in enumerate(sent)
            if i
        ]
        gate.release.set()

        assert len(first.result(30)) == 3
        assert len(rest[0].result(30)) == 3 and len(rest[2].result(30)) == 3
        with pytest.raises(PredictionError, match="could not predict"):
            rest[1].result(30)
        router.log.flush()
        stored = read_rows(log_url(served.config))
        answered = stored[stored["error"].isna()]
        assert sorted(answered["request_id"]) == sorted(
            f"r{i}-{j}" for i in (0, 1, 3) for j in range(3)
        )
        errors = stored[stored["error"].notna()]
        assert set(errors["request_id"]) == {"r2-0", "r2-1", "r2-2"}
        assert errors["prediction"].isna().all()

    def test_batches_hold_at_most_max_batch_rows(self, served: Served) -> None:
        with Router(served.config, start=False, traffic_fraction=0.0, max_batch_rows=7) as router:
            pair = router._pair
            gate = Gated(pair.production.model)
            router._pair = dataclasses.replace(
                pair, production=dataclasses.replace(pair.production, model=gate)
            )
            sent = [*requests(4), (make_data(9, seed=3)[0], None, None)]
            futures: list[Future[Answers]] = [router.submit(sent[0][0])]
            assert gate.entered.wait(30)
            futures += [router.submit(f) for f, _, _ in sent[1:]]
            gate.release.set()
            sizes = [len(f.result(30)) for f in futures]
        assert sizes == [3, 3, 3, 3, 9]
        assert gate.sizes == [3, 6, 3, 9], "3+3 fit in 7 rows; a larger request runs alone"

    def test_bad_requests_are_refused_before_batching_and_cancelled_ones_are_not_logged(
        self, gated: tuple[Router, Gated], served: Served
    ) -> None:
        router, gate = gated
        sent = requests(3)
        with pytest.raises(DataError, match="missing column"):
            router.submit(sent[0][0].drop(columns=["x2"]))
        with pytest.raises(DataError, match="2 entity ids for 3 rows"):
            router.submit(sent[0][0], entity_ids=["a", "b"])
        first = router.submit(sent[0][0], request_ids=sent[0][2])
        assert gate.entered.wait(30)
        gone = router.submit(sent[1][0], request_ids=sent[1][2])
        kept = router.submit(sent[2][0], request_ids=sent[2][2])
        assert gone.cancel()  # its client went away while it waited
        gate.release.set()
        first.result(30), kept.result(30)
        router.log.flush()
        stored = read_rows(log_url(served.config))
        assert sorted(stored["request_id"]) == sorted(sent[0][2] + sent[2][2])

    def test_close_answers_what_is_queued_then_refuses(
        self, gated: tuple[Router, Gated], served: Served
    ) -> None:
        router, gate = gated
        sent = requests(3)
        futures = [router.submit(sent[0][0])]
        assert gate.entered.wait(30)
        futures += [router.submit(f) for f, _, _ in sent[1:]]
        closing = threading.Thread(target=router.close)
        closing.start()
        gate.release.set()
        closing.join(60)
        assert [len(f.result(0)) for f in futures] == [3, 3, 3]
        with pytest.raises(RouterClosedError):
            router.submit(sent[0][0])
        assert len(read_rows(log_url(served.config))) == 9


def test_feature_hashes_are_blake2b_of_the_row_as_json() -> None:
    import hashlib
    import json

    frame = pd.DataFrame({"x1": [1.5, np.nan], "x2": [2.0, 3.0], "segment": ["a", None]})
    expected = [
        hashlib.blake2b(json.dumps(row, separators=(",", ":")).encode(), digest_size=16)
        for row in ([1.5, 2.0, "a"], [None, 3.0, None])
    ]
    assert _feature_hashes(frame) == [h.hexdigest() for h in expected]


def test_answers_read_as_predictions_and_give_the_json_body(served: Served) -> None:
    frame = make_data(6, seed=4)[0]
    ids = [f"r{i}" for i in range(6)]
    entities = ["a", None, "c", "d", None, "f"]
    with Router(served.config, start=False, traffic_fraction=0.5) as router:
        found = router.predict(frame, entity_ids=entities, request_ids=ids)
    listed = list(found)
    assert len(found) == 6 and all(isinstance(p, Prediction) for p in listed)
    assert found[-1] == listed[5] and found[1:4] == listed[1:4]
    with pytest.raises(IndexError):
        found[6]
    assert found.body() == {
        "predictions": [p.prediction for p in listed],
        "retrain": [
            {
                "request_id": p.request_id,
                "entity_id": p.entity_id,
                "version": p.version,
                "arm": p.arm,
                "probability": p.probability,
            }
            for p in listed
        ],
    }
    assert [p.entity_id for p in listed] == entities and [p.request_id for p in listed] == ids


@pytest.mark.parametrize("values", [[0, 1, -3], ["yes", 'a "b"', None], [1.5, None, True]])
def test_logged_predictions_are_json_dumps_of_each(values: list[Any]) -> None:
    import json

    assert _json_texts(values) == [json.dumps(v) for v in values]


class Threads:
    """A model that records the OpenMP threads scikit-learn would use in each call."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.classes_ = model.classes_
        self.seen: list[int] = []

    def predict(self, frame: pd.DataFrame) -> Any:
        self.seen.append(_openmp_effective_n_threads())
        return self.model.predict(frame)

    def predict_proba(self, frame: pd.DataFrame) -> Any:
        self.seen.append(_openmp_effective_n_threads())
        return self.model.predict_proba(frame)


@pytest.mark.parametrize("threads", [1, 0])
def test_model_calls_run_with_model_threads(served: Served, threads: int) -> None:
    default = _openmp_effective_n_threads()
    with Router(served.config, start=False, traffic_fraction=0.0, model_threads=threads) as router:
        pair = router._pair
        model = Threads(pair.production.model)
        router._pair = dataclasses.replace(
            pair, production=dataclasses.replace(pair.production, model=model)
        )
        frame = make_data(5, seed=6)[0]
        router.predict(frame)
        router.submit(frame).result(30)  # in the batching thread too
    assert model.seen == [threads or default] * 2
    assert _openmp_effective_n_threads() == default, "the caller's threads are restored"


def test_a_batch_waits_for_requests_in_flight_and_a_lone_request_never_waits(
    served: Served,
) -> None:
    with Router(
        served.config,
        start=False,
        traffic_fraction=0.0,
        max_batch_rows=6,
        batch_wait_ms=600_000,  # ends when the batch is full, or nobody else is in flight
    ) as router:
        pair = router._pair
        gate = Gated(pair.production.model)
        gate.release.set()  # records each call's rows, holds none
        router._pair = dataclasses.replace(
            pair, production=dataclasses.replace(pair.production, model=gate)
        )
        sent = requests(2)
        with router.in_flight():  # alone: answered at once
            assert len(router.submit(sent[0][0]).result(30)) == 3
        with router.in_flight(), router.in_flight():  # the first waits for the second
            first = router.submit(sent[0][0])
            second = router.submit(sent[1][0])
            assert len(first.result(30)) == 3 and len(second.result(30)) == 3
        assert router._in_flight == 0
    assert gate.sizes == [3, 6]
