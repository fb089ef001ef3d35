"""Adaptive retraining cadence: the seed's frequency table as a policy.

=====================================================  ===========
Situation                                              Cadence
=====================================================  ===========
critical performance drop                              immediate
high data change and performance degradation           daily
moderate data change, some drift, or degradation       weekly
low data change and stable performance                 monthly
=====================================================  ===========

"Data change" is the share of features with medium or high drift; "performance" is the
production model's accuracy on newly labelled data. Unknown signals never make the cadence
slower than weekly (the seed's default schedule).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from retrain.config import CadenceSettings

__all__ = ["CadenceDecision", "CadenceLevel", "decide_cadence"]

CadenceLevel = Literal["monthly", "weekly", "daily", "immediate"]


@dataclass(frozen=True)
class CadenceDecision:
    """How often to retrain now, why, and whether a retrain is due at that cadence."""

    level: CadenceLevel
    interval_days: float
    reasons: list[str] = field(default_factory=list)
    due: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_cadence(
    values: Mapping[str, float | None], settings: CadenceSettings
) -> CadenceDecision:
    """Pick the cadence for the observed signal ``values`` (keys as in ``SIGNALS``)."""
    accuracy = values.get("accuracy")
    drift_share = values.get("drift_share")
    days = values.get("days_since_training")

    if accuracy is not None and accuracy < settings.critical_accuracy:
        reason = (
            f"critical performance drop: accuracy {accuracy:.3f} < {settings.critical_accuracy}"
        )
        return CadenceDecision("immediate", 0.0, [reason], True)

    degraded = accuracy is not None and accuracy < settings.degraded_accuracy
    perf_text = (
        "accuracy unknown"
        if accuracy is None
        else f"accuracy {accuracy:.3f} {'<' if degraded else '>='} {settings.degraded_accuracy}"
    )
    if drift_share is None:
        change = "unknown"
        change_text = "drift share unknown"
    elif drift_share >= settings.high_drift_share:
        change, change_text = (
            "high",
            f"drift share {drift_share:.2f} >= {settings.high_drift_share}",
        )
    elif drift_share >= settings.moderate_drift_share:
        change = "moderate"
        change_text = f"drift share {drift_share:.2f} >= {settings.moderate_drift_share}"
    else:
        change = "low"
        change_text = f"drift share {drift_share:.2f} < {settings.moderate_drift_share}"

    level: CadenceLevel
    if change == "high" and degraded:
        level, interval, why = "daily", settings.daily_days, "high data change and degradation"
    elif change == "low" and accuracy is not None and not degraded:
        level, interval, why = "monthly", settings.monthly_days, "low data change, stable"
    elif change in {"moderate", "high"} or degraded:
        level, interval, why = "weekly", settings.weekly_days, "some drift or degradation"
    else:
        level, interval, why = "weekly", settings.weekly_days, "signals incomplete: default weekly"
    due = None if days is None else days >= interval
    return CadenceDecision(level, float(interval), [f"{why} ({change_text}; {perf_text})"], due)
