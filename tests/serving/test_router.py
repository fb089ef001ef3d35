"""The router (retrain.serving.router) in-process, on the session's real MLflow server."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from retrain.config import RetrainConfig
from retrain.errors import DataError, RegistryError
from retrain.registry.artifacts import TRUSTED_TYPES_TAG, _ModelCache
from retrain.serving import PredictionError, Router
from tests.registry_builders import Fleet, make_data
from tests.serving.conftest import Load, Served, count_rows, read_rows

REFRESH = 2.0


def one_row(i: int) -> pd.DataFrame:
    return pd.DataFrame({"x1": [0.1 * (i % 7)], "x2": [-0.5], "segment": ["abc"[i % 3]]})


def log_url(config: RetrainConfig) -> str:
    return f"sqlite:///{Path(config.storage.work_dir) / 'serving' / 'predictions.db'}"


class TestAnswers:
    def test_production_and_canary_split_by_entity_and_every_answer_logged(
        self, served: Served
    ) -> None:
        frame = make_data(2000, seed=4)[0]
        entities = [f"customer-{i}" for i in range(2000)]
        with Router(served.config, start=False) as router:
            first = router.predict(frame, entity_ids=entities)
            again = router.predict(frame.iloc[:200], entity_ids=entities[:200])

        arms = Counter(p.arm for p in first)
        assert abs(arms["canary"] / 2000 - 0.10) < 0.025  # deployment.canary_traffic_percent
        assert {p.arm: p.version for p in first} == {
            "production": served.production,
            "canary": served.canary,
        }
        assert [p.arm for p in again] == [p.arm for p in first[:200]], "sticky per entity"
        assert [p.feature_hash for p in again] == [p.feature_hash for p in first[:200]]
        stored = read_rows(log_url(served.config))
        assert len(stored) == 2200
        row = stored.iloc[0]
        assert (row["model"], row["entity_id"], row["request_id"]) == (
            served.config.model.name,
            "customer-0",
            first[0].request_id,
        )
        assert row["prediction"] in ("0", "1") and 0 <= row["probability"] <= 1
        assert row["latency_ms"] > 0 and len(row["feature_hash"]) == 32
        assert row["arm"] == first[0].arm and row["version"] == first[0].version

    def test_a_call_without_entity_ids_is_answered_by_one_version(self, served: Served) -> None:
        frame = make_data(20, seed=5)[0]
        with Router(served.config, start=False) as router:
            calls = [router.predict(frame) for _ in range(400)]
            named = router.predict(frame, request_ids=[f"r{i}" for i in range(20)])
            again = router.predict(frame, request_ids=[f"r{i}" for i in range(20)])
            mixed = router.predict(
                frame.iloc[:4], entity_ids=[None, "customer-1", None, "customer-2"]
            )
            alone = router.predict(frame.iloc[:2], entity_ids=["customer-1", "customer-2"])
        arms = [{p.arm for p in answers} for answers in calls]
        assert all(len(found) == 1 for found in arms), "one arm per call"
        canary_share = sum(found == {"canary"} for found in arms) / len(arms)
        assert 0.05 < canary_share < 0.16  # 10% of the calls, 400 calls
        assert len({p.arm for p in named}) == 1
        assert [p.arm for p in again] == [p.arm for p in named], "sticky per request id"
        # rows without an entity id go together; a row with one goes by its entity
        assert mixed[0].arm == mixed[2].arm
        assert [mixed[1].arm, mixed[3].arm] == [p.arm for p in alone]

    def test_without_a_canary_production_answers_everything(
        self, make_config: Callable[..., RetrainConfig], fleet: Fleet, tmp_path: Path
    ) -> None:
        version = fleet.to_production()
        config = make_config(
            storage={"work_dir": str(tmp_path / "w")}, deployment={"canary_traffic_percent": 50}
        )
        with Router(config, start=False) as router:
            assert router.traffic_fraction == 0.5
            found = router.predict(make_data(300)[0])
            assert router.status["arms"]["production"]["fraction"] == 1.0
        assert {(p.arm, p.version) for p in found} == {("production", version)}

    def test_request_ids_are_kept_and_the_log_is_shared(self, served: Served) -> None:
        url = log_url(served.config)
        with Router(served.config, start=False, prediction_log_url=url) as router:
            found = router.predict(make_data(3)[0], request_ids=["a", "b", "c"])
        assert [p.request_id for p in found] == ["a", "b", "c"]
        assert sorted(read_rows(url)["request_id"]) == ["a", "b", "c"]

    def test_bad_rows_raise_and_log_no_answer(self, served: Served) -> None:
        frame = make_data(3)[0]
        with Router(served.config, start=False) as router:
            with pytest.raises(DataError, match="missing column"):
                router.predict(frame.drop(columns=["x2"]))
            broken = frame.astype({"x1": object})
            broken.loc[1, "x1"] = "not a number"
            with pytest.raises(PredictionError, match="could not predict"):
                router.predict(broken)
            with pytest.raises(DataError, match="2 entity ids for 3 rows"):
                router.predict(frame, entity_ids=["a", "b"])
        url = log_url(served.config)
        assert count_rows(url, where="WHERE error IS NULL") == 0, "no answer was logged"
        # the rows the model failed on are logged as errors of their arm (the canary judge's
        # error-rate guardrail counts them); nothing else was
        errors = read_rows(url)
        # (the arm holding the bad row failed; the other arm's rows were not answered either)
        assert 1 <= len(errors) <= 3 and errors["error"].str.contains("could not predict").all()
        assert errors["prediction"].isna().all()

    def test_no_production_version_is_refused(self, fleet: Fleet) -> None:
        fleet.register()
        with pytest.raises(RegistryError, match="no production version"):
            Router(fleet.registry.config, start=False)


class TestFollowingTheAliases:
    @pytest.mark.slow
    def test_promotion_and_rollback_followed_under_load_without_a_failed_request(
        self, served: Served
    ) -> None:
        registry = served.fleet.registry
        with Router(served.config, refresh_seconds=REFRESH) as router:
            with Load(lambda i: router.predict(one_row(i), entity_ids=[f"e{i}"])[0]) as load:
                time.sleep(0.5)
                moved = time.monotonic()
                registry.promote(served.canary, "production", reason="canary healthy")
                to_new = load.first_after(
                    moved,
                    lambda p: p.arm == "production" and p.version == served.canary,
                    timeout=REFRESH + registry_slack(),
                )
                registry_done = time.monotonic() - moved
                time.sleep(REFRESH)  # the canary alias left v2: nothing goes to a canary now
                assert router.served() == {"production": served.canary}
                back = time.monotonic()
                registry.rollback(reason="false alarm")
                rollback_done = time.monotonic() - back
                to_old = load.first_after(
                    back,
                    lambda p: p.version == served.production,
                    timeout=REFRESH + registry_slack(),
                )
                time.sleep(0.3)
            answered = len(load.results)
        print(
            f"\npromotion followed in {to_new:.2f} s (promote call {registry_done:.2f} s), "
            f"rollback in {to_old:.2f} s (call {rollback_done:.2f} s); "
            f"{answered} requests, {len(load.failures)} failed"
        )
        assert load.failures == []
        # the alias moves inside the registry call: followed within REFRESH of the move
        assert to_new <= REFRESH + registry_done and to_old <= REFRESH + rollback_done
        assert count_rows(log_url(served.config)) == answered

    def test_a_version_that_fails_to_load_leaves_the_old_one_serving(
        self, served: Served, caplog: pytest.LogCaptureFixture
    ) -> None:
        name = served.config.model.name
        broken = served.fleet.register()
        client = MlflowClient(served.config.registry.tracking_uri)
        client.set_model_version_tag(name, str(broken), TRUSTED_TYPES_TAG, "not a list")
        with Router(served.config, start=False) as router:
            _ModelCache.models.clear()  # registered in this process: its model is cached
            client.set_registered_model_alias(name, "canary", str(broken))
            assert router.refresh() is False
            status = router.status
            answer = router.predict(one_row(1), entity_ids=["x"])

        assert router.served() == {"production": served.production, "canary": served.canary}
        assert status["status"] == "degraded"
        assert f"canary is v{broken} but v{served.canary} serves" in status["error"]
        assert "trusted types" in status["error"]
        assert answer[0].version in (served.production, served.canary)
        assert f"canary v{broken} not served (keeping v{served.canary})" in caplog.text

    def test_an_unreachable_registry_keeps_serving(self, served: Served) -> None:
        with Router(served.config, start=False) as router:
            router._registry._client.tracking_uri = "http://127.0.0.1:9"
            router._registry._client._mlflow = None
            assert router.refresh() is False
            assert router.status["status"] == "degraded"
            assert "reading the aliases" in router.status["error"]
            assert router.predict(one_row(1))[0].version in (served.production, served.canary)


def registry_slack() -> float:
    """Time a registry call may take on a loaded machine, on top of the refresh delay."""
    return 3.0


def test_a_version_moved_by_hand_that_fails_its_load_check_is_never_served(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """The MLflow UI's alias editor bypasses retrain's checks: a version that loads but cannot
    predict on its own input example is moved to canary by hand; the router keeps serving."""
    from tests.registry_builders import BrokenPredict, make_pipeline_model
    from tests.reliability.test_registry import plant

    with Router(served.config, start=False) as router:
        before = router.served()
        broken = plant(
            served.fleet.registry,
            make_pipeline_model(BrokenPredict()),
            example=served.fleet.example,
            status="canary",
            aliases=("canary",),
            skops_trusted_types=["tests.registry_builders.BrokenPredict"],
            tags={"retrain.trusted_types": '["tests.registry_builders.BrokenPredict"]'},
        )
        assert router.refresh() is False
        answers = [router.predict(one_row(i), entity_ids=[f"e{i}"])[0] for i in range(50)]

    assert before == {"production": served.production, "canary": served.canary}
    assert router.served() == before, "the old canary keeps serving"
    assert {a.version for a in answers} <= {served.production, served.canary}
    assert f"canary v{broken} not served" in caplog.text
    assert "failed its load check" in caplog.text


def test_a_pipeline_preprocesses_once_and_answers_as_predict_and_predict_proba() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from retrain.serving.router import _labels_and_proba
    from tests.registry_builders import make_pipeline_model

    frame = make_data(300, seed=4)[0]
    for model in (make_pipeline_model(), make_pipeline_model(HistGradientBoostingClassifier())):
        labels, proba = _labels_and_proba(model, frame)
        assert (labels == model.predict(frame)).all()
        assert proba is not None and (proba == model.predict_proba(frame)).all()
