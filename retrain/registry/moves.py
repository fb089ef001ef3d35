"""Crash-repairable alias moves: record, move, mirror the status, mark done.

An audited move is written as a ``pending`` entry *before* any alias moves; then the aliases
move, the ``retrain.status`` tags change, and the entry becomes ``done``. Every step is
idempotent, so completing a ``pending`` entry is running it again: :meth:`AuditedMoves.reconcile`
does that for whatever a crash interrupted (the next mutating call runs it first), unless a
later move superseded the entry or its production target no longer loads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from retrain.errors import RegistryError
from retrain.registry.audit import AuditEntry
from retrain.registry.lifecycle import ALIASES
from retrain.registry.records import STATUS_TAG, AliasMove

if TYPE_CHECKING:
    from retrain.registry.artifacts import ModelArtifacts
    from retrain.registry.audit import AuditStore
    from retrain.registry.client import RegistryClient

__all__ = ["AuditedMoves", "aliases_after", "plan_alias"]

logger = logging.getLogger(__name__)


def plan_alias(
    aliases: Mapping[str, int],
    version: int,
    alias: str,
    *,
    op: str,
    displaced: str,
    reason: str,
    run_id: str | None,
    actor: str,
    idempotency_key: str | None = None,
) -> AuditEntry:
    """Entry moving ``alias`` to ``version``; the version leaves any other lifecycle alias and the
    version ``alias`` pointed at before becomes ``displaced``."""
    previous = aliases.get(alias)
    moves = [AliasMove(alias, previous, version)]
    moves += [
        AliasMove(a, version, None) for a in ALIASES if a != alias and aliases.get(a) == version
    ]
    statuses = {version: alias}
    if previous is not None and previous != version:
        statuses[previous] = displaced
    return AuditEntry.new(
        op=op,
        moves=tuple(moves),
        statuses=statuses,
        reason=reason,
        run_id=run_id,
        actor=actor,
        idempotency_key=idempotency_key,
    )


def aliases_after(aliases: Mapping[str, int], entry: AuditEntry) -> dict[str, int]:
    """Where the aliases point once ``entry``'s moves are made (what :meth:`AuditedMoves.run`
    leaves behind, so a caller need not read it back)."""
    after = dict(aliases)
    for move in entry.moves:
        if move.to_version is None:
            if after.get(move.alias) == move.from_version:
                after.pop(move.alias, None)
        else:
            after[move.alias] = move.to_version
    return after


class AuditedMoves:
    """Runs the alias moves of ``client.name`` through its audit history, in crash-safe order."""

    def __init__(
        self, client: RegistryClient, artifacts: ModelArtifacts, audit: AuditStore
    ) -> None:
        self._client = client
        self._artifacts = artifacts
        self._audit = audit

    def run(
        self, entry: AuditEntry, aliases: Mapping[str, int], *, recorded: bool = False
    ) -> AuditEntry:
        """Record first, then move, then mirror the status, then mark done (crash-safe order).

        Every step is idempotent, so completing a ``pending`` entry is running it again.
        """
        if not recorded:
            entry = self._audit.write(entry)
        self.move_aliases(entry, aliases)
        self.write_statuses(entry)
        return self._audit.finish(entry, "done")

    def move_aliases(self, entry: AuditEntry, aliases: Mapping[str, int]) -> None:
        """Point each alias as the entry says; an alias already where it belongs is left alone."""
        for move in entry.moves:
            current = aliases.get(move.alias)
            if move.to_version is None:
                if current is not None and current == move.from_version:
                    self._client.delete_alias(move.alias)
            elif current != move.to_version:
                self._client.set_alias(move.alias, move.to_version)

    def write_statuses(self, entry: AuditEntry) -> None:
        """Mirror the entry's statuses into the versions' ``retrain.status`` tags."""
        for version, status in entry.statuses.items():
            self._client.set_version_tag(version, STATUS_TAG, status)

    def reconcile(self) -> list[AuditEntry]:
        """Complete entries left ``pending`` by a crash; returns the entries completed."""
        name = self._client.name
        completed: list[AuditEntry] = []
        for entry in list(self._audit.pending(oldest_first=True)):
            if self._audit.superseded(entry):
                logger.warning("audit entry %s superseded before completion", entry.id)
                self._audit.finish(entry, "superseded")
                continue
            aliases = self._client.aliases()
            production = next((m for m in entry.moves if m.alias == "production"), None)
            target = production.to_version if production else None
            if target is not None and aliases.get("production") != target:
                # completing a move to production is a production move: its target must load
                try:
                    mv = self._client.model_version(target)
                    self._artifacts.check_loads(mv, f"version {target} of {name!r}", fresh=True)
                except RegistryError as exc:
                    logger.error("not completing audit entry %s: %s", entry.id, exc)
                    self._audit.finish(entry, "failed")
                    continue
            logger.warning(
                "completing interrupted %s of %s (entry %s: %s v%s -> v%s)",
                entry.op,
                name,
                entry.id,
                entry.alias,
                entry.from_version,
                entry.to_version,
            )
            completed.append(self.run(entry, aliases, recorded=True))
        return completed
