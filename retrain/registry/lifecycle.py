"""The lifecycle rules: aliases, statuses, gate results and which status changes are allowed.

Pure data and functions (no MLflow): the registry asks :func:`allowed_transition` before any
alias moves and words a refusal with :func:`illegal_transition_message`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from retrain.errors import DataError

__all__ = [
    "ALIASES",
    "GATE_RESULTS",
    "RETIRED",
    "STATUSES",
    "TRANSITIONS",
    "allowed_transition",
    "illegal_transition_message",
    "require_reason",
]

#: Lifecycle aliases, in promotion order.
ALIASES: Final = ("staging", "canary", "production")
#: Values of the ``retrain.status`` version tag.
STATUSES: Final = (
    "pending",
    "staging",
    "canary",
    "production",
    "archived",
    "rolled_back",
    "rejected",
)
GATE_RESULTS: Final = ("passed", "failed", "forced")
#: Statuses of versions that served and were replaced: only a rollback returns them to production.
RETIRED: Final = ("archived", "rolled_back")

#: ``(from status, to status) -> operations that may make that change``. ``promote`` staging ->
#: production additionally needs ``deployment.skip_canary``; ``supersede`` is what happens to the
#: version an alias moves away from.
TRANSITIONS: Final[Mapping[tuple[str, str], frozenset[str]]] = {
    ("pending", "staging"): frozenset({"register"}),
    ("pending", "rejected"): frozenset({"reject"}),
    ("staging", "canary"): frozenset({"promote"}),
    ("staging", "production"): frozenset({"promote", "rollback"}),
    ("canary", "production"): frozenset({"promote", "rollback"}),
    ("archived", "production"): frozenset({"rollback"}),
    ("rolled_back", "production"): frozenset({"rollback"}),
    ("staging", "rejected"): frozenset({"reject"}),
    ("canary", "rejected"): frozenset({"reject"}),
    ("staging", "archived"): frozenset({"supersede"}),
    ("canary", "archived"): frozenset({"supersede"}),
    ("production", "archived"): frozenset({"supersede"}),
    ("production", "rolled_back"): frozenset({"rollback"}),
}


def allowed_transition(current: str, target: str, operation: str, *, skip_canary: bool) -> bool:
    """Whether ``operation`` may change a version's status from ``current`` to ``target``."""
    if operation == "promote" and (current, target) == ("staging", "production"):
        return skip_canary
    return operation in TRANSITIONS.get((current, target), frozenset())


def illegal_transition_message(
    model: str, version: int, current: str, target: str, operation: str
) -> str:
    """Why ``operation`` may not take ``version`` from ``current`` to ``target``, with a hint and
    the changes that are allowed from ``current``."""
    hint = ""
    if (current, target, operation) == ("staging", "production", "promote"):
        hint = " (canary is required: deployment.skip_canary is false)"
    elif (operation, target) == ("promote", "production") and current in (
        "archived",
        "rolled_back",
    ):
        hint = f" (use rollback --to {version})"
    allowed = sorted(
        f"{to} by {', '.join(sorted(ops))}"
        for (frm, to), ops in TRANSITIONS.items()
        if frm == current
    )
    return (
        f"illegal transition for version {version} of {model!r}: "
        f"{current} -> {target} by {operation}{hint}; "
        f"allowed from {current}: {'; '.join(allowed) or 'none'}"
    )


def require_reason(reason: str) -> None:
    """Every status change needs a reason: it goes into the audit history."""
    if not isinstance(reason, str) or not reason.strip():
        raise DataError(["a reason is required (it goes into the audit history)"])
