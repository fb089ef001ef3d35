"""Where a version comes from: the code's git commit, who acted, and the packages it needs.

Stamped on every registration (``git_commit`` in the version's ``retrain.record`` tag, the audit
entries' actor) and written as the logged model's pinned pip requirements.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import os
import socket
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["default_actor", "git_commit", "pinned_requirements"]

_REQUIREMENTS = ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "scipy")


def pinned_requirements() -> list[str]:
    """Exact pins of the packages a logged model needs (skips pip's 6-16 s inference)."""
    pins = []
    for name in _REQUIREMENTS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            pins.append(f"{name}=={metadata.version(name)}")
    return pins


@functools.lru_cache(maxsize=1)
def _git_rev() -> str:
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def git_commit() -> str:
    """``$RETRAIN_GIT_COMMIT``, else ``git rev-parse HEAD`` of this code (``-dirty`` if modified),
    else ``unknown``."""
    return os.environ.get("RETRAIN_GIT_COMMIT", "").strip() or _git_rev()


def default_actor() -> str:
    """``$RETRAIN_ACTOR``, else ``<user>@<host>``: who the audit history says made a change."""
    if actor := os.environ.get("RETRAIN_ACTOR", "").strip():
        return actor
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
