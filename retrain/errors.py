"""Exceptions shared across the library; each names what was wrong and where."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "DataError",
    "RegistryError",
    "RetrainError",
    "UnknownModelError",
]


class RetrainError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(RetrainError, ValueError):
    """A config file or value is invalid. ``problems`` lists every ``key.path: problem``."""

    def __init__(self, problems: Sequence[str], *, source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        lines = [f"{prefix}{p}" for p in self.problems]
        head = f"invalid config ({len(lines)} problem{'s' if len(lines) != 1 else ''})"
        super().__init__(head + ":\n  " + "\n  ".join(lines))


class DataError(RetrainError, ValueError):
    """Input data is missing, malformed or fails its contract. ``problems`` names each column."""

    def __init__(self, problems: Sequence[str], *, source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + "; ".join(self.problems))


class RegistryError(RetrainError):
    """The model registry refused an operation or could not be reached."""


class UnknownModelError(RegistryError):
    """The registered model does not exist on the tracking server (nothing registered yet)."""
