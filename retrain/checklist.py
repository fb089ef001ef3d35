"""The seed's retraining checklist as code, each item decided from real evidence.

Items carry the stage they guard: a required item that is not met blocks promotion to that
stage (``staging`` < ``canary`` < ``production``). The results are written to the retraining log.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from retrain.config import RetrainConfig
from retrain.constants import MONITORING_SIGNALS, Stage
from retrain.errors import ChecklistError

__all__ = [
    "ChecklistError",
    "Evidence",
    "ItemResult",
    "evaluate_checklist",
    "monitoring_rules",
    "require",
    "required_by",
]


@dataclass
class Evidence:
    """Facts gathered by the pipeline steps; ``None`` means not known (yet)."""

    validation_ok: bool | None = None
    validation_problems: list[str] = field(default_factory=list)
    rows_extracted: int | None = None
    rows_trained: int | None = None
    rows_holdout: int | None = None
    fingerprint_trained: str | None = None
    fingerprint_registered: str | None = None
    metrics: Mapping[str, float] | None = None
    baseline_compared: bool | None = None
    first_model: bool = False
    gate_status: str | None = None
    ab_passed: bool | None = None
    load_check_ok: bool | None = None
    version: str | None = None
    approval: str | None = None
    canary_version: str | None = None
    skip_canary: bool = False
    profile_stored: bool | None = None
    monitoring_rules: list[str] = field(default_factory=list)
    #: Rows in the window before a full rebuild's sample (``full_rebuild.max_rows``).
    rows_sampled_from: int | None = None
    #: A full rebuild's comprehensive tests, ``(name, passed, detail)`` each.
    rebuild_tests: list[tuple[str, bool, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ItemResult:
    """One checklist line: met or not, with the evidence that decided it."""

    key: str
    title: str
    passed: bool
    evidence: str
    required_for: Stage

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _item(key: str, title: str, stage: Stage, passed: bool, evidence: str) -> ItemResult:
    return ItemResult(key, title, bool(passed), evidence, stage)


def _data_items(ev: Evidence) -> list[ItemResult]:
    window_ok = (
        ev.rows_extracted is not None
        and ev.rows_trained is not None
        and ev.rows_holdout is not None
        and ev.rows_trained + ev.rows_holdout == ev.rows_extracted
        and ev.rows_trained > 0
    )
    same_pre = ev.fingerprint_trained is not None and (
        ev.fingerprint_registered is None or ev.fingerprint_registered == ev.fingerprint_trained
    )
    return [
        _item(
            "data_validated",
            "New data collected and validated",
            Stage.STAGING,
            ev.validation_ok is True,
            "contract passed"
            if ev.validation_ok
            else f"validation: {ev.validation_problems or 'not run'}",
        ),
        _item(
            "preprocessing_consistent",
            "Preprocessing applied consistently",
            Stage.STAGING,
            same_pre,
            f"fitted preprocessing {ev.fingerprint_trained} travels inside the model"
            + (
                f"; registered copy {ev.fingerprint_registered}"
                if ev.fingerprint_registered
                else ""
            ),
        ),
        _item(
            "trained_on_full_window",
            "Model trained on full dataset",
            Stage.STAGING,
            window_ok,
            f"{ev.rows_trained} training + {ev.rows_holdout} holdout rows of "
            f"{ev.rows_extracted} extracted"
            + (
                f" (a uniform sample of {ev.rows_sampled_from}: full_rebuild.max_rows)"
                if ev.rows_sampled_from
                else ""
            ),
        ),
    ]


REBUILD_TITLES = {
    "cross_validated": "Full rebuild: cross-validated metrics not worse than production",
    "slices": "Full rebuild: no slice worse than production",
    "calibration": "Full rebuild: calibration not worse than production",
    "robustness": "Full rebuild: robust to missing, unseen and extreme inputs",
    "latency_and_size": "Full rebuild: latency and size within limits",
}


def _rebuild_items(ev: Evidence) -> list[ItemResult]:
    """One item per comprehensive test of a full rebuild (none for a weekly run). A forced run
    passes a failed one, as the gate did, and says so."""
    forced = ev.gate_status == "forced"
    items = []
    for name, passed, detail in ev.rebuild_tests:
        shown = detail if passed or not forced else f"FAILED, forced past by the operator: {detail}"
        title = REBUILD_TITLES.get(name, f"Full rebuild: {name}")
        items.append(_item(f"rebuild_{name}", title, Stage.CANARY, passed or forced, shown))
    return items


def _model_items(ev: Evidence) -> list[ItemResult]:
    metrics = dict(ev.metrics or {})
    finite = bool(metrics) and all(math.isfinite(v) for v in metrics.values())
    compared = ev.baseline_compared is True or ev.first_model
    return [
        _item(
            "metrics_computed",
            "Performance metrics calculated",
            Stage.STAGING,
            finite,
            ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())) or "no metrics",
        ),
        _item(
            "compared_with_baseline",
            "Compared against baseline",
            Stage.CANARY,
            compared,
            "first model: no baseline exists"
            if ev.first_model and not ev.baseline_compared
            else (
                "production model scored on the same holdout"
                if ev.baseline_compared
                else "production model not compared"
            ),
        ),
        _item(
            "above_threshold",
            "Performance acceptable (> threshold)",
            Stage.CANARY,
            ev.gate_status in {"passed", "forced"} and ev.ab_passed is not False,
            f"gate {ev.gate_status or 'not run'}; A/B "
            f"{'passed' if ev.ab_passed else 'failed' if ev.ab_passed is False else 'n/a'}",
        ),
        _item(
            "passes_tests",
            "New model passes tests",
            Stage.CANARY,
            ev.load_check_ok is True,
            "loaded back from the registry, predicted its input example, signature matches"
            if ev.load_check_ok
            else "load check not passed",
        ),
        _item(
            "registered",
            "Model versioned and registered",
            Stage.CANARY,
            ev.version is not None,
            f"version {ev.version}" if ev.version else "not registered",
        ),
    ]


def _deploy_items(ev: Evidence) -> list[ItemResult]:
    canary_ok = ev.skip_canary or ev.canary_version is not None
    return [
        _item(
            "deployment_approved",
            "Deployment approved",
            Stage.PRODUCTION,
            ev.approval is not None,
            ev.approval or "awaiting approval",
        ),
        _item(
            "canary_in_place",
            "Canary deployment in place",
            Stage.PRODUCTION,
            canary_ok,
            "skipped by deployment.skip_canary"
            if ev.skip_canary
            else (
                f"version {ev.canary_version} holds the canary alias"
                if ev.canary_version
                else "no canary"
            ),
        ),
        _item(
            "monitoring_configured",
            "Monitoring alerts configured",
            Stage.PRODUCTION,
            bool(ev.profile_stored) and bool(ev.monitoring_rules),
            f"reference profile stored: {bool(ev.profile_stored)}; monitoring rules: "
            f"{', '.join(ev.monitoring_rules) or 'none'}",
        ),
    ]


def monitoring_rules(config: RetrainConfig) -> list[str]:
    """The config's rules that watch the production model (performance or drift signals)."""
    return [
        name
        for name, rule in config.retraining_rules.items()
        if rule.parsed.signals & MONITORING_SIGNALS
    ]


def evaluate_checklist(evidence: Evidence) -> list[ItemResult]:
    """Every checklist item, in the seed's order, decided from ``evidence``."""
    return [
        *_data_items(evidence),
        *_model_items(evidence),
        *_rebuild_items(evidence),
        *_deploy_items(evidence),
    ]


def required_by(items: list[ItemResult], stage: Stage | str) -> list[ItemResult]:
    """The items required at or before ``stage``."""
    rank = Stage(stage).rank
    return [i for i in items if Stage(i.required_for).rank <= rank]


def require(items: list[ItemResult], stage: Stage | str) -> None:
    """Raise :class:`ChecklistError` if an item required at or before ``stage`` is not met."""
    failed = [i for i in required_by(items, stage) if not i.passed]
    if failed:
        raise ChecklistError(str(stage), failed)
