"""Deploy: move a registered version staging -> canary -> production as policy and checklist allow.

Used by the pipeline right after registration, and by the promotion path (``retrain promote`` /
the ``retrain_promote`` DAG) that takes a canary to production once it is approved. Every move is
guarded by the checklist items of its stage; a move already made is not made again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from retrain.checklist import Evidence, evaluate_checklist, require
from retrain.config import RetrainConfig
from retrain.errors import RegistryError

if TYPE_CHECKING:
    from retrain.registry import ModelRegistry

__all__ = ["AUTO_APPROVAL", "promote_canary", "release"]

logger = logging.getLogger(__name__)

AUTO_APPROVAL = "auto (deployment.require_approval is false)"
_ORDER = {"staging": 0, "canary": 1, "production": 2}
Stage = Literal["staging", "canary", "production"]


def _stage(registry: ModelRegistry, version: int) -> int:
    return _ORDER.get(registry.get_version(version).status, -1)


def release(
    config: RetrainConfig,
    registry: ModelRegistry,
    *,
    version: int,
    evidence: Evidence,
    target_stage: Stage,
    approval: str | None,
    reason: str,
    run_id: str | None = None,
    say: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """Promote ``version`` (already in staging) as far as ``target_stage`` and policy allow.

    Canary unless ``deployment.skip_canary``; production only with ``promote_to_production:
    auto`` and an ``approval`` (``None`` = waiting for a human: stops in canary).
    """
    tell = say or (lambda step, text: logger.info("%s: %s", step, text))
    deployment = config.deployment
    evidence.approval = approval
    if target_stage != "staging" and not deployment.skip_canary and _stage(registry, version) < 1:
        require(evaluate_checklist(evidence), "canary")
        registry.promote(version, "canary", reason=reason, run_id=run_id)
        tell("deploy", f"version {version} -> canary")
    if not deployment.skip_canary and _stage(registry, version) >= 1:
        evidence.canary_version = str(version)
    wants_production = target_stage == "production" and deployment.promote_to_production == "auto"
    items = evaluate_checklist(evidence)
    if wants_production and approval is not None and _stage(registry, version) < 2:
        require(items, "production")
        registry.promote(version, "production", reason=reason, run_id=run_id)
        tell("deploy", f"version {version} -> production")
    final = registry.get_version(version).status
    status = "deployed" if final == "production" else final
    if final == "canary" and wants_production and approval is None:
        status = "awaiting_approval"
    return {
        "version": version,
        "stage": final,
        "status": status,
        "approval": approval,
        "checklist": [i.to_dict() for i in items],
    }


def promote_canary(
    config: RetrainConfig,
    registry: ModelRegistry,
    *,
    reason: str,
    approval: str,
    version: int | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Take the canary (or ``version``, which must hold canary) to production, once approved.

    The production checklist items are re-checked from the registry: the version passed its gate,
    holds the canary alias, carries a reference profile for monitoring, and is approved.
    """
    current = registry.current()
    canary = current.get("canary")
    if canary is None or (version is not None and canary.version != int(version)):
        held = f"v{canary.version}" if canary else "no version"
        raise RegistryError(f"version {version or '?'} is not the canary ({held} holds canary)")
    monitoring = [
        name
        for name, rule in config.retraining_rules.items()
        if rule.parsed.signals & {"drift_count", "drift_share", "accuracy"}
    ]
    evidence = Evidence(
        validation_ok=True,
        rows_extracted=1,
        rows_trained=1,
        rows_holdout=0,
        fingerprint_trained="registered",
        metrics=dict(canary.record.metrics),
        baseline_compared=True,
        gate_status=canary.record.gate,
        ab_passed=True,
        load_check_ok=True,
        version=str(canary.version),
        approval=approval,
        canary_version=str(canary.version),
        profile_stored=registry.reference_profile(canary.version) is not None,
        monitoring_rules=monitoring,
    )
    items = evaluate_checklist(evidence)
    require(items, "production")
    entry = registry.promote(canary.version, "production", reason=reason, run_id=run_id)
    return {
        "version": canary.version,
        "stage": "production",
        "status": "deployed",
        "approval": approval,
        "from_version": entry.from_version,
        "checklist": [i.to_dict() for i in items if i.required_for == "production"],
    }


def _aliases(registry: ModelRegistry) -> dict[str, int]:
    return {alias: info.version for alias, info in registry.current().items()}


def rollback_with_report(
    config: RetrainConfig, *, reason: str, to_version: int | None = None, run_id: str | None = None
) -> dict[str, Any]:
    """Roll production back (see ``ModelRegistry.rollback``) and report aliases before/after."""
    import time

    from retrain.notify import notifier_from_config
    from retrain.registry import ModelRegistry

    registry = ModelRegistry(config, notifier=notifier_from_config(config))
    before = _aliases(registry)
    started = time.perf_counter()
    entry = registry.rollback(reason=reason, to_version=to_version, run_id=run_id)
    seconds = time.perf_counter() - started
    after = _aliases(registry)

    def show(aliases: dict[str, int]) -> str:
        return ", ".join(f"{a}=v{v}" for a, v in sorted(aliases.items())) or "none"

    lines = [
        f"before: {show(before)}",
        f"after:  {show(after)}",
        f"rolled back {config.model.name} production v{entry.from_version} -> v{entry.to_version} "
        f"in {seconds:.2f}s; audit entry {entry.id}; reason: {reason}",
    ]
    return {
        "before": before,
        "after": after,
        "entry": entry.to_dict(),
        "seconds": seconds,
        "lines": lines,
    }
