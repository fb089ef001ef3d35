from __future__ import annotations

from typing import Any

import pytest

from retrain.cadence import decide_cadence
from retrain.config import CadenceSettings

SETTINGS = CadenceSettings()


class TestDecideCadence:
    @pytest.mark.parametrize(
        ("values", "level", "interval"),
        [
            pytest.param(
                {"accuracy": 0.93, "drift_share": 0.0},
                "monthly",
                30,
                id="low change and stable performance is monthly",
            ),
            pytest.param(
                {"accuracy": 0.93, "drift_share": 0.15},
                "weekly",
                7,
                id="moderate change with stable performance is weekly",
            ),
            pytest.param(
                {"accuracy": 0.83, "drift_share": 0.05},
                "weekly",
                7,
                id="degradation without drift is weekly",
            ),
            pytest.param(
                {"accuracy": 0.83, "drift_share": 0.5},
                "daily",
                1,
                id="high change and degradation is daily",
            ),
            pytest.param(
                {"accuracy": 0.70, "drift_share": 0.0},
                "immediate",
                0,
                id="critical performance drop is immediate",
            ),
            pytest.param({"accuracy": 0.93}, "weekly", 7, id="unknown drift is weekly"),
            pytest.param({"drift_share": 0.0}, "weekly", 7, id="unknown accuracy is weekly"),
        ],
    )
    def test_seed_table(self, values: dict[str, Any], level: str, interval: float) -> None:
        decision = decide_cadence(values, SETTINGS)
        assert decision.level == level
        assert decision.interval_days == interval
        assert decision.reasons and decision.reasons[0]

    @pytest.mark.parametrize(
        ("days", "due"),
        [
            pytest.param(6.9, False, id="before the interval"),
            pytest.param(7, True, id="at the interval"),
            pytest.param(None, None, id="no model yet"),
        ],
    )
    def test_due(self, days: float | None, due: bool | None) -> None:
        values = {"accuracy": 0.9, "drift_share": 0.2, "days_since_training": days}
        assert decide_cadence(values, SETTINGS).due is due

    def test_thresholds_are_configurable(self) -> None:
        settings = CadenceSettings(moderate_drift_share=0.5, high_drift_share=0.8)
        assert decide_cadence({"accuracy": 0.93, "drift_share": 0.3}, settings).level == "monthly"
