"""In-memory handoff of step outputs when every step runs in one process (``retrain run``).

The steps pass files to each other (a DAG's tasks run in separate processes). Inside
:func:`shared_outputs`, a step that writes a file also remembers the object it wrote, and the
next step that reads the same, unchanged file (same size and modification time) gets that object
instead of decoding the file again. The files are still written, so the run leaves exactly the
same work directory behind. Outside the block nothing is remembered and every read is a read.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

__all__ = ["recall", "remember", "shared_outputs"]

_Key = tuple[int, int]
_SHARED: ContextVar[dict[tuple[str, str], tuple[_Key, Any]] | None] = ContextVar(
    "retrain_shared_outputs", default=None
)


@contextlib.contextmanager
def shared_outputs() -> Iterator[None]:
    """Within the block, :func:`recall` returns what :func:`remember` kept; dropped at exit."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _stamp(path: Path) -> _Key | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def remember(path: str | os.PathLike[str], value: Any, part: str = "") -> None:
    """Keep ``value`` as the content of the file just written at ``path`` (inside the block).

    ``part`` names something else derived from the same file (e.g. its row hashes)."""
    shared = _SHARED.get()
    if shared is None:
        return
    resolved = Path(path).resolve()
    stamp = _stamp(resolved)
    if stamp is not None:
        shared[str(resolved), part] = (stamp, value)


def recall(path: str | os.PathLike[str], part: str = "") -> Any | None:
    """What was remembered for ``path`` (and ``part``), if the file has not changed since."""
    shared = _SHARED.get()
    if not shared:
        return None
    resolved = Path(path).resolve()
    hit = shared.get((str(resolved), part))
    if hit is None or hit[0] != _stamp(resolved):
        return None
    return hit[1]
