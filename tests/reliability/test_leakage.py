"""A leaky feature (a copy of the label) is caught: the run stops in canary for a human."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from retrain.config import RetrainConfig
from retrain.deploy import promote
from retrain.registry import ModelRegistry
from tests.helpers import LOGREG, churn_sections, run_record
from tests.reliability.harness import record_outcome
from tools.synthetic import NUMERIC, TARGET, StreamSpec, generate_week

SPEC = StreamSpec(weeks=4, rows_per_week=1500, drift_week=None)


def leaky_stream(root: Path) -> Path:
    """The churn stream plus ``refund_issued``, filled in after the outcome: the label itself."""
    for week in range(SPEC.weeks):
        frame = generate_week(SPEC, week)
        frame["refund_issued"] = frame[TARGET].astype(float)
        part = root / f"week={week}"
        part.mkdir(parents=True)
        frame.to_parquet(part / "part-0.parquet", index=False)
    return root


@pytest.fixture
def leaky(make_config: Callable[..., RetrainConfig], tmp_path: Path) -> Callable[..., Any]:
    data = leaky_stream(tmp_path / "events")

    def make(**evaluation: Any) -> RetrainConfig:
        sections = churn_sections(
            data,
            estimator=LOGREG,
            params={"max_iter": 300},
            storage={"work_dir": str(tmp_path / "work")},
        )
        sections["model"]["features"]["numeric"] = [*NUMERIC, "refund_issued"]
        return make_config(**sections, evaluation={"leakage": evaluation})

    return make


class TestLeakyFeature:
    def test_the_candidate_waits_in_canary_naming_the_feature(
        self, leaky: Callable[..., RetrainConfig]
    ) -> None:
        config = leaky()
        record = run_record(config, as_of=SPEC.start + timedelta(weeks=4))

        assert record["metrics"]["accuracy"] == 1.0, "the leak makes the model perfect"
        assert record["status"] == "awaiting_approval"
        assert "'refund_issued' alone predicts 'churned' with accuracy 1.000" in record["notes"]
        assert record["gate"]["suspicions"], record["gate"]
        record_outcome("security", "a copy of the label as a feature", record["notes"], 0.0)
        current = ModelRegistry(config).current()
        assert "production" not in current and current["canary"].version == 1

        # a human who looked can still promote it, through the checklist
        moved = promote(
            config,
            ModelRegistry(config),
            to="production",
            reason="reviewed: refund_issued is known at prediction time here",
            approval="human: alice",
        )
        assert moved.version == 1 and ModelRegistry(config).current()["production"].version == 1

    def test_with_the_guard_off_it_is_promoted_as_before(
        self, leaky: Callable[..., RetrainConfig]
    ) -> None:
        config = leaky(single_feature_accuracy=None)
        record = run_record(config, as_of=SPEC.start + timedelta(weeks=4))

        assert record["status"] == "deployed" and record["gate"]["suspicions"] == []
        assert ModelRegistry(config).current()["production"].version == 1
