"""Who a run is and what it compares against: :class:`RunOptions` in, :class:`RunContext` out.

The options are what a caller asks for (the CLI's flags, the trigger form's params, a monitor
event); they are validated once, here, so the CLI and the DAG refuse the same bad values with the
same message. The context is the run's identity (retraining id, MLflow run, work directory) plus
the :class:`Baseline`: the production version resolved once, by ``check``, and used by every
later step, so a production alias moved by someone else mid-run cannot change what the run
compares against.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from retrain.config.schema import MODES, Mode
from retrain.constants import Stage, Trigger
from retrain.errors import DataError
from retrain.registry.records import Baseline
from retrain.times import now_utc, to_utc

__all__ = ["Baseline", "RunContext", "RunOptions", "fallback_context"]

_MAX_WINDOW_DAYS = 3650
#: The earliest ``as_of`` (MLflow times are milliseconds since the Unix epoch).
EARLIEST_AS_OF = datetime(1970, 1, 1, tzinfo=UTC)
#: How far ahead of now an ``as_of`` may be (a what-if check; beyond it a typo, not a plan).
AS_OF_AHEAD = timedelta(days=366)


@dataclass(frozen=True)
class RunOptions:
    """What the caller asks of one run; invalid values raise :class:`DataError` naming them."""

    trigger: Trigger = Trigger.MANUAL
    run_key: str | None = None
    as_of: datetime | None = None
    force: bool = False
    force_reason: str | None = None
    skip_ab: bool = False
    target_stage: Stage = Stage.PRODUCTION
    window_days: int | None = None
    trigger_reasons: tuple[str, ...] = ()
    approval: str | None = None
    #: ``weekly`` (the windowed retrain) or ``full_rebuild`` (all history up to ``as_of``).
    mode: Mode = "weekly"

    def __post_init__(self) -> None:
        problems: list[str] = []
        set_ = object.__setattr__  # frozen: normalise in place once, at construction
        try:
            set_(self, "trigger", Trigger(self.trigger))
        except ValueError:
            problems.append(f"trigger: expected one of {', '.join(Trigger)}, got {self.trigger!r}")
        try:
            set_(self, "target_stage", Stage(self.target_stage))
        except ValueError:
            problems.append(
                f"target_stage: expected one of {', '.join(Stage)}, got {self.target_stage!r}"
            )
        try:
            set_(self, "as_of", to_utc(self.as_of, what="as_of (--as-of)"))
        except DataError as exc:
            problems.extend(exc.problems)
        else:
            problems.extend(_as_of_problems(self.as_of))
        reason = (self.force_reason or "").strip() or None
        set_(self, "force_reason", reason)
        if self.force and reason is None:
            problems.append(
                "force: a forced run needs a reason (the 'reason' param of the trigger form or the "
                "REST conf; --reason on the CLI)"
            )
        days = self.window_days
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= _MAX_WINDOW_DAYS
        ):
            hint = (
                "; 0 is not 'all history': leave it out to use data.training_window_days "
                "(null there trains on all history), or run mode full_rebuild"
                if days == 0
                else ""
            )
            problems.append(
                f"window_days (--window-days): expected a whole number of days 1-3650, "
                f"got {days!r}{hint}"
            )
        problems.extend(_mode_problems(self.mode, days))
        set_(self, "trigger_reasons", tuple(str(r) for r in self.trigger_reasons))
        if problems:
            raise DataError(problems, source="run options")


def _mode_problems(mode: object, window_days: object) -> list[str]:
    if mode not in MODES:
        return [f"mode (--mode): expected one of {', '.join(MODES)}, got {mode!r}"]
    if mode == "full_rebuild" and window_days is not None:
        return [
            "window_days (--window-days): a full rebuild trains on all history up to as_of; "
            "leave the window out (or run mode weekly)"
        ]
    return []


def _as_of_problems(as_of: datetime | None) -> list[str]:
    if as_of is None:
        return []
    latest = now_utc() + AS_OF_AHEAD
    if as_of < EARLIEST_AS_OF:
        return [f"as_of (--as-of): {as_of.isoformat()} is earlier than 1970-01-01 (UTC)"]
    if as_of > latest:
        return [
            f"as_of (--as-of): {as_of.isoformat()} is later than a year from now "
            f"({latest:%Y-%m-%d}); a run acts at a time up to a year ahead at most"
        ]
    return []


@dataclass(frozen=True)
class RunContext:
    """Identity, options and (after ``check``) the pinned baseline of one retraining run."""

    retraining_id: str
    run_key: str
    trigger: Trigger
    as_of: datetime
    started_at: datetime
    work_dir: str
    mlflow_run_id: str
    force: bool = False
    force_reason: str | None = None
    skip_ab: bool = False
    target_stage: Stage = Stage.PRODUCTION
    window_days: int | None = None
    trigger_reasons: tuple[str, ...] = ()
    approval: str | None = None
    #: ``weekly`` or ``full_rebuild`` (:attr:`RunOptions.mode`).
    mode: Mode = "weekly"
    #: ``True`` once ``check`` resolved the production version (``baseline`` ``None`` = none).
    pinned: bool = False
    baseline: Baseline | None = None

    def pin(self, baseline: Baseline | None, *, reasons: tuple[str, ...] = ()) -> RunContext:
        """This context with its baseline resolved (and trigger reasons if it had none)."""
        return dataclasses.replace(
            self, pinned=True, baseline=baseline, trigger_reasons=self.trigger_reasons or reasons
        )

    def pinned_baseline(self) -> Baseline | None:
        """The production version this run compares against (``None``: a first model).

        Steps after ``check`` read the baseline from here and never look production up again.
        """
        if not self.pinned:
            raise DataError(
                [f"run {self.retraining_id}: no baseline pinned yet (the check step resolves it)"]
            )
        return self.baseline

    def summary(self) -> str:
        return (
            f"{self.retraining_id} (trigger {self.trigger}, mode {self.mode}, "
            f"as of {self.as_of.isoformat()})"
        )

    @property
    def baseline_version(self) -> int | None:
        return self.baseline.version if self.baseline else None


def fallback_context(work_root: str | Path, *, run_key: str, trigger: Trigger) -> RunContext:
    """A context for a run whose ``start`` failed, so its failure still gets a log record."""
    now = now_utc()
    safe = "".join(c if c.isalnum() else "_" for c in run_key)[-80:]
    return RunContext(
        retraining_id=f"retrain_{now:%Y%m%d}_{safe}"[:120],
        run_key=run_key,
        trigger=trigger,
        as_of=now,
        started_at=now,
        work_dir=str(Path(work_root) / "runs" / safe),
        mlflow_run_id="",
    )
