"""The XCom codec: every step result survives JSON and comes back as the same typed object."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from retrain import pipeline
from retrain.config import RetrainConfig, parse_config
from retrain.deploy import rollback_with_report
from retrain.errors import DataError
from retrain.monitor import check_and_log
from retrain.pipeline import RunOptions, Services
from retrain.pipeline.codec import decode, encode
from tests.conftest import _merge
from tests.helpers import LOGREG, churn_sections, run_record
from tools.synthetic import StreamSpec, write_stream

SPEC = StreamSpec(weeks=6, rows_per_week=1500, drift_week=None)
WEEK = timedelta(weeks=1)


def through_json(value: Any) -> Any:
    """What a task pushing ``value`` and the next one pulling it see: encode, JSON, decode."""
    text = json.dumps(encode(value))
    return decode(type(value), json.loads(text))


@pytest.fixture(scope="module")
def results(
    tmp_path_factory: pytest.TempPathFactory, module_make_config: Callable[..., RetrainConfig]
) -> dict[str, Any]:
    """Real results of every step of a run with a baseline (plus a rollback and a monitor
    check), produced once for the module."""
    root = tmp_path_factory.mktemp("codec")
    write_stream(root / "events", SPEC)
    config = module_make_config(
        **churn_sections(
            root / "events",
            estimator=LOGREG,
            params={"max_iter": 300},
            storage={"work_dir": str(root / "work")},
        )
    )
    assert run_record(config, as_of=SPEC.start + 4 * WEEK)["status"] == "deployed"
    services = Services.build(config)
    options = RunOptions(as_of=SPEC.start + 5 * WEEK, force=True, force_reason="codec test")
    ctx = pipeline.start(services, options)
    checked = pipeline.check(services, ctx)
    ctx = checked.context
    extracted = pipeline.extract_step(services, ctx)
    validated = pipeline.validate_step(services, ctx, extracted)
    trained = pipeline.train_step(services, ctx, extracted)
    evaluated = pipeline.evaluate_step(services, ctx, trained, extracted)
    compared = pipeline.compare_step(services, ctx, evaluated)
    deployed = pipeline.deploy_step(
        services, ctx, extracted, validated, trained, evaluated, compared
    )
    rejected = pipeline.reject_step(services, ctx, evaluated, compared)
    done = pipeline.Results()
    for name, value in (("check", checked), ("evaluate", evaluated), ("deploy", deployed)):
        done.put(name, value)
    record, _ = pipeline.finish(services, ctx, done)
    report = rollback_with_report(config, services.registry, reason="codec test")
    monitored = check_and_log(services, as_of=SPEC.start + 6 * WEEK)
    return {
        "context": ctx,
        "check": checked,
        "extract": extracted,
        "validate": validated,
        "train": trained,
        "evaluate": evaluated,
        "compare": compared,
        "deploy": deployed,
        "reject": rejected,
        "record": record,
        "rollback": report,
        "monitor": monitored,
    }


@pytest.fixture(scope="module")
def module_make_config(mlflow_server: Any) -> Callable[..., RetrainConfig]:
    """A config factory for the module (``make_config`` is per test)."""

    def make(**sections: Any) -> RetrainConfig:
        data: dict[str, Any] = {
            "model": {"name": f"t-codec-{uuid.uuid4().hex[:8]}"},
            "registry": {
                "tracking_uri": mlflow_server.url,
                "request_timeout_seconds": 5,
                "max_retries": 1,
            },
        }
        return parse_config(_merge(data, sections), source="<codec>", env=os.environ)

    return make


NAMES = [
    "context",
    "check",
    "extract",
    "validate",
    "train",
    "evaluate",
    "compare",
    "deploy",
    "reject",
    "record",
    "rollback",
    "monitor",
]


class TestRoundTrip:
    @pytest.mark.parametrize("name", NAMES)
    def test_a_result_comes_back_equal_and_of_the_same_type(
        self, results: dict[str, Any], name: str
    ) -> None:
        value = results[name]
        back = through_json(value)
        assert type(back) is type(value)
        assert back == value

    def test_the_pinned_baseline_survives(self, results: dict[str, Any]) -> None:
        ctx = through_json(results["context"])
        assert ctx.pinned and ctx.baseline is not None and ctx.baseline.version == 1

    def test_a_document_of_another_type_is_refused_naming_it(self, results: dict[str, Any]) -> None:
        with pytest.raises(DataError, match="evaluate's XCom: not a valid Evaluated"):
            decode(type(results["evaluate"]), encode(results["compare"]), what="evaluate's XCom")


def test_nothing_encodes_to_none() -> None:
    assert encode(None) is None
