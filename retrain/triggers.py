"""Trigger policy: evaluate the ``retraining_rules`` on observed signals and decide.

A decision says whether to retrain, which rules fired (with the observed values and a readable
reason such as ``accuracy 0.81 < 0.85``), which rules could not be evaluated because a signal is
missing, the strongest action, the adaptive cadence, and whether a cooldown held the run back or a
forced run bypassed it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from retrain.cadence import CadenceDecision, decide_cadence
from retrain.conditions import SIGNALS
from retrain.config import RetrainConfig
from retrain.constants import Action
from retrain.errors import DataError
from retrain.times import to_utc

__all__ = [
    "Decision",
    "FiredRule",
    "Signals",
    "TriggerPolicy",
    "UnknownRule",
    "read_signals_file",
]


@dataclass(frozen=True)
class Signals:
    """Observed values of the trigger signals; ``None`` means unknown."""

    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    roc_auc: float | None = None
    days_since_training: float | None = None
    new_samples: float | None = None
    drift_count: float | None = None
    drift_share: float | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "signals") -> Signals:
        """Build from a mapping, naming every unknown key or out-of-range value."""
        problems = [
            f"unknown signal {key!r} (known: {', '.join(SIGNALS)})"
            for key in data
            if key not in SIGNALS
        ]
        values: dict[str, float | None] = {}
        for key, raw in data.items():
            if key not in SIGNALS:
                continue
            if raw is None:
                values[key] = None
                continue
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                problems.append(f"{key}: expected a number or null, got {raw!r}")
                continue
            spec = SIGNALS[key]
            value = float(raw)
            if not math.isfinite(value) or not spec.minimum <= value <= spec.maximum:
                problems.append(
                    f"{key}: {raw!r} is out of range [{spec.minimum:g}, {spec.maximum:g}]"
                )
                continue
            values[key] = value
        if problems:
            raise DataError(problems, source=source)
        return cls(**values)

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


@dataclass(frozen=True)
class FiredRule:
    """A rule whose condition held."""

    rule: str
    trigger: str
    action: str
    condition: str
    reason: str
    observed: dict[str, float | None]


@dataclass(frozen=True)
class UnknownRule:
    """A rule that could not be decided because signals are missing."""

    rule: str
    trigger: str
    condition: str
    missing: list[str]


@dataclass(frozen=True)
class Decision:
    """The outcome of evaluating the trigger policy once."""

    triggered: bool
    trigger: str
    action: str | None
    reasons: list[str]
    fired: list[FiredRule]
    unknown: list[UnknownRule]
    cadence: CadenceDecision
    signals: dict[str, float | None]
    evaluated_at: str
    bootstrap: bool = False
    forced: bool = False
    force_reason: str | None = None
    cooldown_active: bool = False
    cooldown_bypassed: bool = False
    next_allowed_at: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


class TriggerPolicy:
    """The retraining rules, cooldown and cadence of one config."""

    def __init__(self, config: RetrainConfig) -> None:
        self.config = config
        self.rules = {name: (rule, rule.parsed) for name, rule in config.retraining_rules.items()}

    def evaluate(
        self,
        signals: Signals,
        *,
        now: datetime | None = None,
        last_triggered_at: datetime | None = None,
        force: bool = False,
        force_reason: str | None = None,
    ) -> Decision:
        """Decide whether to retrain for ``signals``.

        ``days_since_training`` of ``None`` means no model has been trained yet: a ``bootstrap``
        run. A forced run needs ``force_reason`` and bypasses the cooldown (recorded).
        """
        if force and not (force_reason and force_reason.strip()):
            raise DataError(["a forced run needs a reason (force_reason)"])
        now = (now or datetime.now(UTC)).astimezone(UTC)
        values = signals.as_dict()
        fired: list[FiredRule] = []
        unknown: list[UnknownRule] = []
        for name, (rule, condition) in self.rules.items():
            outcome = condition.evaluate(values)
            if outcome is None:
                missing = sorted(s for s in condition.signals if values.get(s) is None)
                unknown.append(UnknownRule(name, rule.trigger, rule.condition, missing))
            elif outcome:
                observed = {s: values.get(s) for s in sorted(condition.signals)}
                reason = f"{rule.trigger}: {condition.explain(values)}"
                fired.append(
                    FiredRule(name, rule.trigger, rule.action, rule.condition, reason, observed)
                )

        cadence = decide_cadence(values, self.config.cadence)
        bootstrap = values["days_since_training"] is None
        reasons = [f.reason for f in fired]
        strongest = max(fired, key=lambda f: Action(f.action).strength, default=None)
        action = strongest.action if strongest else None
        trigger = strongest.trigger if strongest else "none"
        wants = any(Action(f.action).retrains for f in fired)
        if self.config.cadence.enabled and not bootstrap and cadence.due:
            reasons.append(f"adaptive_cadence: {cadence.level} ({cadence.reasons[0]})")
            if not wants:
                trigger, action = f"cadence_{cadence.level}", "retrain"
            wants = True
        if bootstrap:
            reasons.insert(0, "bootstrap: no trained model yet")
            trigger, action, wants = "bootstrap", "retrain", True
        notes = [f"{u.rule}: unknown ({', '.join(u.missing)} missing)" for u in unknown]

        cooldown_active = False
        next_allowed: datetime | None = None
        cooldown = timedelta(hours=self.config.triggers.cooldown_hours)
        if last_triggered_at is not None and cooldown > timedelta(0):
            next_allowed = last_triggered_at.astimezone(UTC) + cooldown
            cooldown_active = now < next_allowed
        bypassed = False
        if force:
            bypassed = cooldown_active
            reasons.insert(0, f"forced: {force_reason}")
            trigger, action, wants = "manual", action or "retrain", True
        elif wants and cooldown_active and next_allowed is not None:
            notes.append(
                f"cooldown: last triggered run at {last_triggered_at:%Y-%m-%dT%H:%M:%SZ}; "
                f"next allowed at {next_allowed:%Y-%m-%dT%H:%M:%SZ}"
            )
            wants = False
        if not wants and not reasons:
            reasons = ["no rule fired"]
        return Decision(
            triggered=wants,
            trigger=trigger,
            action=action if wants else None,
            reasons=reasons,
            fired=fired,
            unknown=unknown,
            cadence=cadence,
            signals=values,
            evaluated_at=now.isoformat(timespec="seconds"),
            bootstrap=bootstrap,
            forced=force,
            force_reason=force_reason if force else None,
            cooldown_active=cooldown_active,
            cooldown_bypassed=bypassed,
            next_allowed_at=next_allowed.isoformat(timespec="seconds") if next_allowed else None,
            notes=notes,
        )


def read_signals_file(path: str | Path) -> tuple[Signals, datetime | None, datetime | None]:
    """Read a signals JSON file: signal values plus optional ``now`` and ``last_triggered_at``.

    Returns ``(signals, now, last_triggered_at)``.
    """
    source = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(["file not found"], source=source) from None
    except json.JSONDecodeError as exc:
        raise DataError([f"invalid JSON at line {exc.lineno}: {exc.msg}"], source=source) from None
    if not isinstance(data, dict):
        raise DataError(["expected a JSON object of signal values"], source=source)
    try:
        now = to_utc(data.pop("now", None), what="now")
        last = to_utc(data.pop("last_triggered_at", None), what="last_triggered_at")
    except DataError as exc:
        raise DataError(exc.problems, source=source) from None
    return Signals.from_mapping(data, source=source), now, last
