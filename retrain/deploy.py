"""Deploy: move a registered version staging -> canary -> production as policy and checklist allow.

Every promotion goes through :func:`_advance`: the transition must be legal, the checklist items
of the target stage must be met, then the registry moves the alias (audited). Two callers build
the evidence:

* :func:`release`, in the pipeline's ``deploy`` step, right after registration, from what the
  run measured;
* :func:`promote`, for every later promotion (``retrain promote``, the ``retrain_promote`` DAG,
  the UI), from what the registry holds for the version.

A move already made is not made again. :func:`rollback_with_report` is the one rollback path.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from retrain.checklist import (
    Evidence,
    ItemResult,
    evaluate_checklist,
    monitoring_rules,
    require,
    required_by,
)
from retrain.config import RetrainConfig
from retrain.constants import RunStatus, Stage
from retrain.errors import RegistryError
from retrain.registry.audit import AuditEntry

if TYPE_CHECKING:
    from retrain.lease import ModelLease
    from retrain.registry import ModelRegistry, ModelVersionInfo

__all__ = [
    "AUTO_APPROVAL",
    "Deployment",
    "RollbackReport",
    "promote",
    "release",
    "rollback_with_report",
]

logger = logging.getLogger(__name__)

AUTO_APPROVAL = "auto (deployment.require_approval is false)"
Say = Callable[[str, str], None]


@dataclass(frozen=True)
class Deployment:
    """Where a version ended up: its stage, the run status that means, and the checklist."""

    version: int
    stage: str
    status: RunStatus
    approval: str | None
    checklist: tuple[ItemResult, ...] = ()
    #: The version the moved alias pointed at before (a promotion's previous production).
    from_version: int | None = None
    #: The audit entry of the last alias move made (``None``: nothing moved).
    entry: AuditEntry | None = None

    def summary(self) -> str:
        return f"version {self.version} -> {self.stage} ({self.status})"

    def to_record(self) -> dict[str, Any]:
        """The log record's ``deployment`` field (the checklist has its own field)."""
        data = asdict(self)
        data.pop("checklist")
        data.pop("entry")
        return data


@dataclass(frozen=True)
class RollbackReport:
    """A rollback: aliases before and after, the audit entry, how long the move took.

    ``repeated``: the rollback had been done already (same idempotency key, or an interrupted
    one completed): ``entry`` is that rollback and this call moved no alias.
    """

    before: dict[str, int]
    after: dict[str, int]
    entry: AuditEntry
    seconds: float
    lines: list[str] = field(default_factory=list)
    repeated: bool = False


def _rank(status: str) -> int:
    return Stage(status).rank if status in set(Stage) else -1


def _advance(
    registry: ModelRegistry,
    items: list[ItemResult],
    *,
    version: int,
    to: Stage,
    reason: str,
    run_id: str | None,
) -> AuditEntry:
    """The checklist of ``to`` is met -> the registry moves the alias (gate, transition and
    load check are the registry's own guards)."""
    require(items, to)
    return registry.promote(version, to, reason=reason, run_id=run_id)


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
    say: Say | None = None,
    info: ModelVersionInfo | None = None,
    moved: Callable[[str], None] | None = None,
) -> Deployment:
    """Promote ``version`` (already in staging) as far as ``target_stage`` and policy allow.

    Canary unless ``deployment.skip_canary``; production only with ``promote_to_production:
    auto`` and an ``approval`` (``None`` = waiting for a human: stops in canary). With ``judge``
    the release stops in canary (the online judge decides), except for a first model: with no
    production to compare against it goes on as with ``auto``.
    ``info``: the version as the caller just got it from the registry (``register``'s result);
    read otherwise. The stage is read once: each promotion either moved the version to its
    target or raised, so the stage after it is known. ``moved(stage)`` is called after each
    promotion (so a caller knows how far a release that then fails got).
    """
    tell = say or (lambda step, text: logger.info("%s: %s", step, text))
    deployment = config.deployment
    evidence.approval = approval
    stage = (info if info is not None else registry.get_version(version)).status
    if (
        target_stage != Stage.STAGING
        and not deployment.skip_canary
        and _rank(stage) < Stage.CANARY.rank
    ):
        items = evaluate_checklist(evidence)
        _advance(registry, items, version=version, to=Stage.CANARY, reason=reason, run_id=run_id)
        stage = Stage.CANARY
        tell("deploy", f"version {version} -> canary")
        if moved is not None:
            moved(stage)
    if not deployment.skip_canary and _rank(stage) >= Stage.CANARY.rank:
        evidence.canary_version = str(version)
    mode = deployment.promote_to_production
    if mode == "judge" and target_stage == Stage.PRODUCTION:
        # the online judge compares the canary with production: with none serving yet there is
        # nothing to compare against, so the first model goes on as with ``auto``
        mode = "judge" if registry.current(Stage.PRODUCTION) else "auto"
    wants_production = target_stage == Stage.PRODUCTION and mode == "auto"
    items = evaluate_checklist(evidence)
    if wants_production and approval is not None and _rank(stage) < Stage.PRODUCTION.rank:
        _advance(
            registry, items, version=version, to=Stage.PRODUCTION, reason=reason, run_id=run_id
        )
        stage = Stage.PRODUCTION
        tell("deploy", f"version {version} -> production")
        if moved is not None:
            moved(stage)
    final = str(stage)
    status = RunStatus.DEPLOYED if final == Stage.PRODUCTION else RunStatus(final)
    if final == Stage.CANARY and wants_production and approval is None:
        status = RunStatus.AWAITING_APPROVAL
    return Deployment(version, final, status, approval, tuple(items))


def _registered_evidence(
    config: RetrainConfig, registry: ModelRegistry, info: ModelVersionInfo, approval: str | None
) -> Evidence:
    """The checklist's evidence for a registered version, from the registry.

    Registration itself required the staging items (validated data, consistent preprocessing,
    the full window, finite metrics) and a load-and-predict check, so those hold for every
    version the registry announced; the rest is read from its record and aliases.
    """
    return Evidence(
        validation_ok=True,
        rows_extracted=1,
        rows_trained=1,
        rows_holdout=0,
        fingerprint_trained="registered",
        metrics=dict(info.record.metrics),
        baseline_compared=True,
        gate_status=info.record.gate,
        ab_passed=True,
        load_check_ok=True,
        version=str(info.version),
        approval=approval,
        canary_version=str(info.version) if Stage.CANARY in info.aliases else None,
        skip_canary=config.deployment.skip_canary,
        profile_stored=registry.reference_profile(info.version) is not None,
        monitoring_rules=monitoring_rules(config),
    )


def promote(
    config: RetrainConfig,
    registry: ModelRegistry,
    *,
    to: Stage | str,
    reason: str,
    approval: str | None,
    version: int | None = None,
    run_id: str | None = None,
    lease: ModelLease | None = None,
) -> Deployment:
    """Take ``version`` to ``to`` (``canary`` or ``production``), re-checking the checklist.

    The one promotion path of the CLI, the ``retrain_promote`` DAG and the UI. Without
    ``version``, production takes the version holding ``canary``. Refused (nothing moves) when
    the transition is illegal, the version is not the canary, or a checklist item of ``to`` is
    not met (e.g. no approval, no reference profile for monitoring, no monitoring rule).
    ``lease``: held for the whole promotion, so it never interleaves with a run's deploy or a
    rollback of the same model in another process.
    """
    with _holding(lease, f"promote:{run_id or uuid.uuid4().hex}"):
        return _promote(
            config,
            registry,
            to=to,
            reason=reason,
            approval=approval,
            version=version,
            run_id=run_id,
        )


@contextlib.contextmanager
def _holding(lease: ModelLease | None, key: str) -> Iterator[None]:
    if lease is None:
        yield
        return
    with lease.hold(key):
        yield


def _promote(
    config: RetrainConfig,
    registry: ModelRegistry,
    *,
    to: Stage | str,
    reason: str,
    approval: str | None,
    version: int | None,
    run_id: str | None,
) -> Deployment:
    stage = Stage(to)
    if stage == Stage.STAGING:
        raise RegistryError("promote to 'canary' or 'production'; staging is set by registration")
    canary = registry.current(Stage.CANARY).get(Stage.CANARY)
    if version is None:
        if stage == Stage.CANARY:
            raise RegistryError("promote to canary: which version? (none given)")
        if canary is None:
            raise RegistryError("version ? is not the canary (no version holds canary)")
        version = canary.version
    info = canary if canary is not None and canary.version == version else None
    info = info or registry.get_version(version)
    registry.check_transition(info, stage, "promote")
    not_canary = canary is None or canary.version != info.version
    if stage == Stage.PRODUCTION and not config.deployment.skip_canary and not_canary:
        held = f"v{canary.version}" if canary else "no version"
        raise RegistryError(f"version {info.version} is not the canary ({held} holds canary)")
    items = required_by(
        evaluate_checklist(_registered_evidence(config, registry, info, approval)), stage
    )
    entry = _advance(registry, items, version=info.version, to=stage, reason=reason, run_id=run_id)
    status = RunStatus.DEPLOYED if stage == Stage.PRODUCTION else RunStatus.CANARY
    return Deployment(
        info.version, stage, status, approval, tuple(items), entry.from_version, entry
    )


def _aliases(registry: ModelRegistry) -> dict[str, int]:
    return {alias: info.version for alias, info in registry.current().items()}


def rollback_with_report(
    config: RetrainConfig,
    registry: ModelRegistry,
    *,
    reason: str,
    to_version: int | None = None,
    run_id: str | None = None,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
    lease: ModelLease | None = None,
) -> RollbackReport:
    """Roll production back (see ``ModelRegistry.rollback``) and report aliases before/after.

    The one rollback path of the CLI, the ``retrain_rollback`` DAG and the UI. A repeat never
    rolls back twice: ``idempotency_key`` (the DAG's run id) returns the completed rollback with
    that key, and ``expected_version`` (``--from``) refuses unless production is that version.
    ``lease``: held around the move (see :func:`promote`).
    """
    started = time.perf_counter()
    with _holding(lease, f"rollback:{idempotency_key or run_id or uuid.uuid4().hex}"):
        before = _aliases(registry)
        entry = registry.rollback(
            reason=reason,
            to_version=to_version,
            run_id=run_id,
            expected_version=expected_version,
            idempotency_key=idempotency_key,
        )
    seconds = time.perf_counter() - started
    # a rollback never targets the serving version: production already there means it was done
    repeated = before.get("production") == entry.to_version
    after = dict(before)  # the move as recorded: no second read of every alias
    for move in entry.moves:
        if move.to_version is None:
            after.pop(move.alias, None)
        else:
            after[move.alias] = move.to_version

    def show(aliases: dict[str, int]) -> str:
        return ", ".join(f"{a}=v{v}" for a, v in sorted(aliases.items())) or "none"

    name = config.model.name
    if repeated:
        done = (
            f"already rolled back: {name} production v{entry.from_version} -> "
            f"v{entry.to_version} by audit entry {entry.id}"
            + (f" (idempotency key {entry.idempotency_key!r})" if entry.idempotency_key else "")
            + f"; nothing moved now; reason then: {entry.reason}"
        )
    else:
        done = (
            f"rolled back {name} production v{entry.from_version} -> v{entry.to_version} "
            f"in {seconds:.2f}s; audit entry {entry.id}; reason: {reason}"
        )
    lines = [f"before: {show(before)}", f"after:  {show(after)}", done]
    return RollbackReport(before, after, entry, seconds, lines, repeated)
