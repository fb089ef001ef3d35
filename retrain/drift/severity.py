"""Severity: net effect sizes graded none/low/medium/high by the configured cut points, each
family counted only when its test is significant."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from retrain.config import DriftSettings, DriftStatistic, SeverityCuts

Severity: TypeAlias = Literal["none", "low", "medium", "high"]
FeatureSeverity: TypeAlias = Literal["none", "low", "medium", "high", "unknown"]
SEVERITIES: tuple[Severity, ...] = ("none", "low", "medium", "high")
_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}


def _level(value: float | None, cuts: SeverityCuts) -> Severity:
    if value is None or not math.isfinite(value):
        return "none"
    if value >= cuts.high:
        return "high"
    if value >= cuts.medium:
        return "medium"
    if value >= cuts.low:
        return "low"
    return "none"


def _cuts_for(settings: DriftSettings, name: str) -> dict[DriftStatistic, SeverityCuts]:
    cuts = dict(settings.thresholds)
    override = settings.features.get(name)
    if override is not None:
        cuts.update(override.thresholds)
    return cuts


@dataclass
class _Verdict:
    """Collects per-family effect sizes and tests and turns them into one severity."""

    cuts: dict[DriftStatistic, SeverityCuts]
    alpha: float
    severity: Severity = "none"
    reasons: list[str] = field(default_factory=list)

    def family(
        self,
        effects: Mapping[DriftStatistic, float | None],
        p_value: float,
        *,
        raw: Mapping[DriftStatistic, float | None] | None = None,
    ) -> None:
        """Grade one family of effect sizes (net of sampling noise) behind its test."""
        levels = {stat: _level(value, self.cuts[stat]) for stat, value in effects.items()}
        top: Severity = "none"
        for level in levels.values():
            if _RANK[level] > _RANK[top]:
                top = level
        if top == "none":
            return
        shown = [
            f"{_describe(stat, effects[stat], (raw or {}).get(stat))} >= "
            f"{_fmt(_cut(self.cuts[stat], lvl))} ({lvl})"
            for stat, lvl in levels.items()
            if lvl != "none"
        ]
        if p_value >= self.alpha:
            self.reasons.append(
                f"not significant (p={p_value:.3g} >= alpha {self.alpha:g}): ignored "
                + ", ".join(shown)
            )
            return
        self.reasons.extend(f"{s} (p={p_value:.3g})" for s in shown)
        if _RANK[top] > _RANK[self.severity]:
            self.severity = top

    def cap(self, level: Severity, why: str) -> None:
        if _RANK[self.severity] > _RANK[level]:
            self.reasons.append(f"capped at {level}: {why} (was {self.severity})")
            self.severity = level


def _describe(stat: str, net: float | None, raw: float | None) -> str:
    if raw is None or net is None or abs(raw - net) < 5e-4:
        return f"{stat} {_fmt(net)}"
    return f"{stat} {_fmt(raw)} (net of sampling noise {_fmt(net)})"


def _cut(cuts: SeverityCuts, level: Severity) -> float:
    return float(getattr(cuts, level))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
