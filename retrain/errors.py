"""Every exception this package raises on purpose, and the one policy that reads them.

Each error names what was wrong and where, and knows two things about itself:

* ``retryable``: whether running the same thing again may succeed (an unreachable server may
  come back; a bad config, bad data or a refused checklist will not). Airflow task retries and
  the ``retrain`` CLI both ask :func:`is_retryable`, so a failure is final in both or in neither.
* ``exit_code``: what the CLI returns for it (:data:`EXIT_BAD_INPUT` for input the user must
  fix, :data:`EXIT_FAILURE` otherwise).

Errors of bad input also subclass :class:`ValueError`, so callers that only know the standard
library can still catch them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from retrain.constants import ExitCode

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILURE",
    "ChecklistError",
    "ConditionError",
    "ConfigError",
    "DataError",
    "LeaseHeldError",
    "NotificationError",
    "ProductionMovedError",
    "RegistryError",
    "RegistryUnavailableError",
    "RetrainError",
    "UnknownModelError",
    "exit_code",
    "is_retryable",
]

#: CLI exit code of a failure (a server refused, a step crashed, a checklist blocked).
EXIT_FAILURE = ExitCode.FAILURE
#: CLI exit code of input the user must fix (config, data, arguments).
EXIT_BAD_INPUT = ExitCode.BAD_INPUT


class RetrainError(Exception):
    """Base class of every error this package raises on purpose."""

    retryable: ClassVar[bool] = False
    exit_code: ClassVar[int] = EXIT_FAILURE


class _InputError(RetrainError, ValueError):
    """Bad input with a list of problems, each naming its key or column."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: Sequence[str], *, source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self._message())

    def _message(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        return prefix + "; ".join(self.problems)


class ConfigError(_InputError):
    """A config file or value is invalid. ``problems`` lists every ``key.path: problem``."""

    def _message(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        lines = [f"{prefix}{p}" for p in self.problems]
        head = f"invalid config ({len(lines)} problem{'s' if len(lines) != 1 else ''})"
        return head + ":\n  " + "\n  ".join(lines)


class DataError(_InputError):
    """Input data (or a run argument) is missing, malformed or fails its contract."""


class ConditionError(RetrainError, ValueError):
    """A condition string is outside the grammar or names an unknown signal."""

    exit_code = EXIT_BAD_INPUT


class RegistryError(RetrainError):
    """The model registry refused an operation (an illegal move, a version that fails its
    load check, an unknown version). Retrying the same request gets the same answer."""


class RegistryUnavailableError(RegistryError):
    """The tracking server could not be reached or did not answer in time: worth a retry."""

    retryable = True


class UnknownModelError(RegistryError):
    """The registered model does not exist on the tracking server (nothing registered yet)."""


class ChecklistError(RetrainError):
    """A required checklist item is not met; promotion is refused (final: the evidence does
    not change by asking again). ``stage`` is the stage refused, ``failed`` the items."""

    def __init__(self, stage: str, failed: Sequence[object]) -> None:
        self.stage = stage
        self.failed = list(failed)
        items = "; ".join(
            f"{getattr(i, 'title', i)}: {getattr(i, 'evidence', '')}" for i in self.failed
        )
        super().__init__(f"checklist blocks promotion to {stage}: {items}")


class LeaseHeldError(RetrainError):
    """Another run holds the model's lease; running again later may succeed."""

    retryable = True


class ProductionMovedError(RetrainError):
    """Production moved since the run's ``check`` pinned it (another run deployed meanwhile):
    the candidate was compared against an old baseline, so it is not deployed. Running again
    compares against the new production."""

    retryable = True


class NotificationError(RetrainError):
    """A notification could not be delivered (the channel refused or was unreachable)."""

    retryable = True


def is_retryable(exc: BaseException) -> bool:
    """Whether running the failed work again may succeed.

    Our own errors say so themselves. Of anything else, a ``ValueError``/``TypeError``/
    ``KeyError`` is a bad input or a bug that a retry repeats; other exceptions (``OSError``,
    ``MemoryError``, a crashed library) may be transient.
    """
    if isinstance(exc, RetrainError):
        return exc.retryable
    return not isinstance(exc, ValueError | TypeError | KeyError)


def exit_code(exc: BaseException) -> int:
    """The CLI exit code for ``exc`` (bad input 2, anything else 1)."""
    if isinstance(exc, RetrainError):
        return exc.exit_code
    return EXIT_BAD_INPUT if isinstance(exc, ValueError) else EXIT_FAILURE
