"""The drift report: per-feature verdicts (:class:`FeatureDrift`) and the summary the trigger
policy reads (:class:`DriftReport`). Rendering it as HTML is :mod:`retrain.reports.drift`'s job."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from retrain.drift.profile import FORMAT_VERSION, Kind
from retrain.drift.severity import SEVERITIES, FeatureSeverity


@dataclass
class FeatureDrift:
    """The drift verdict of one feature.

    ``status`` is ``ok`` or names a degenerate case (``missing_column``, ``dtype_mismatch``,
    ``all_missing``, ``all_missing_reference``, ``constant_reference``, ``infinite_values``,
    ``high_cardinality``, ``insufficient_data``); ``message`` explains it. ``severity`` is
    ``unknown`` only when the feature could not be checked.
    """

    name: str
    kind: Kind
    severity: FeatureSeverity
    statistics: dict[str, float | int | None]
    n_ref: int
    n_cur: int
    missing_rate_ref: float | None
    missing_rate_cur: float | None
    unseen_share: float | None = None
    status: str = "ok"
    message: str = ""
    reasons: list[str] = field(default_factory=list)
    distribution: dict[str, Any] = field(default_factory=dict)
    plot: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def checked(self) -> bool:
        return self.severity != "unknown"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "severity": self.severity,
            "status": self.status,
            "message": self.message,
            "reasons": list(self.reasons),
            "statistics": {k: _json_number(v) for k, v in self.statistics.items()},
            "n_ref": self.n_ref,
            "n_cur": self.n_cur,
            "missing_rate_ref": _json_number(self.missing_rate_ref),
            "missing_rate_cur": _json_number(self.missing_rate_cur),
            "unseen_share": _json_number(self.unseen_share),
            "distribution": self.distribution,
        }


def _json_number(value: float | int | None) -> float | int | None:
    if value is None or isinstance(value, int):
        return value
    return float(value) if math.isfinite(value) else None


@dataclass
class DriftReport:
    """Per-feature drift verdicts plus the summary the trigger policy reads."""

    features: list[FeatureDrift]
    n_ref: int
    n_cur: int
    alpha: float
    min_samples: int
    skipped: list[str] = field(default_factory=list)
    profile_created_at: str = ""
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def checked(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.checked]

    @property
    def unchecked(self) -> list[FeatureDrift]:
        return [f for f in self.features if not f.checked]

    @property
    def drift_count(self) -> int:
        """Number of features with severity ``high`` (the ``drift_count`` trigger signal)."""
        return sum(f.severity == "high" for f in self.features)

    @property
    def drift_share(self) -> float:
        """Share of checked features with severity ``medium`` or ``high`` (``drift_share``)."""
        checked = self.checked
        if not checked:
            return 0.0
        return sum(f.severity in {"medium", "high"} for f in checked) / len(checked)

    @property
    def drifted(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.severity in {"medium", "high"}]

    @property
    def by_severity(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {s: [] for s in (*SEVERITIES, "unknown")}
        for f in self.features:
            out[f.severity].append(f.name)
        return out

    def signals(self) -> dict[str, float]:
        """The trigger signals this report provides (see ``retrain.conditions.SIGNALS``)."""
        return {"drift_count": float(self.drift_count), "drift_share": self.drift_share}

    def feature(self, name: str) -> FeatureDrift:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: ``features``, ``drift_count``, ``drift_share`` and more."""
        return {
            "format_version": FORMAT_VERSION,
            "created_at": self.created_at,
            "profile_created_at": self.profile_created_at,
            "n_ref": self.n_ref,
            "n_cur": self.n_cur,
            "alpha": self.alpha,
            "min_samples": self.min_samples,
            "drift_count": self.drift_count,
            "drift_share": self.drift_share,
            "n_checked": len(self.checked),
            "by_severity": self.by_severity,
            "unchecked": [f.name for f in self.unchecked],
            "skipped": list(self.skipped),
            "features": [f.to_dict() for f in self.features],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)
