"""A run's work directory handed from task to task through the MLflow artifact store.

With ``storage.handoff: artifacts`` a DAG task does not assume that the files earlier tasks
wrote (extracted data, the fitted model, predictions, reports) are on its own disk: before a step
runs, :func:`fetch` downloads the files of the run's ``handoff/`` artifacts that the local work
directory lacks (or holds in another size); after it, :func:`publish` uploads what the step
wrote or changed. Paths stay those of the config's ``work_dir``, the same on every worker, so
the step results passed through XCom name files that exist wherever the next task runs.

Artifact names come from the store: one that would land outside the work directory is refused.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from mlflow import MlflowClient

from retrain.errors import DataError

__all__ = ["HANDOFF", "Snapshot", "fetch", "local_path", "publish", "snapshot"]

logger = logging.getLogger("retrain.pipeline")

#: Artifact folder of the run that mirrors its work directory.
HANDOFF = "handoff"

#: ``relative path -> (size, mtime_ns)`` of every file under a work directory.
Snapshot = dict[str, tuple[int, int]]


def snapshot(work_dir: str | os.PathLike[str]) -> Snapshot:
    """Every file under ``work_dir`` with its size and modification time (empty if absent)."""
    root = Path(work_dir)
    if not root.is_dir():
        return {}
    found: Snapshot = {}
    for path in root.rglob("*"):
        if path.is_file():
            stat = path.stat()
            found[path.relative_to(root).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return found


def publish(
    client: MlflowClient, run_id: str, work_dir: str | os.PathLike[str], before: Snapshot
) -> list[str]:
    """Upload the files of ``work_dir`` that are new or changed since ``before``; their paths."""
    root = Path(work_dir)
    changed = [rel for rel, stamp in snapshot(root).items() if before.get(rel) != stamp]
    for rel in sorted(changed):
        folder = PurePosixPath(HANDOFF, rel).parent.as_posix()
        client.log_artifact(run_id, str(root / rel), folder)
    if changed:
        logger.info("handoff: published %d file(s) to run %s", len(changed), run_id)
    return sorted(changed)


def _listing(client: MlflowClient, run_id: str, folder: str) -> dict[str, int | None]:
    """``path under handoff/ -> size`` of every artifact below ``folder``."""
    found: dict[str, int | None] = {}
    for info in client.list_artifacts(run_id, folder):
        if info.is_dir:
            found.update(_listing(client, run_id, info.path))
        else:
            found[PurePosixPath(info.path).relative_to(HANDOFF).as_posix()] = info.file_size
    return found


def local_path(root: Path, rel: str) -> Path:
    """Where artifact ``rel`` lands under ``root``; :class:`DataError` if that is outside it."""
    target = (root / rel).resolve()
    if (
        rel.startswith("/")
        or ".." in PurePosixPath(rel).parts
        or not target.is_relative_to(root.resolve())
    ):
        raise DataError([f"handoff artifact {rel!r} would land outside the work directory {root}"])
    return target


def fetch(client: MlflowClient, run_id: str, work_dir: str | os.PathLike[str]) -> list[str]:
    """Download the run's handoff files that ``work_dir`` lacks or holds in another size."""
    root = Path(work_dir)
    local = snapshot(root)
    wanted = {
        rel: local_path(root, rel)
        for rel, size in _listing(client, run_id, HANDOFF).items()
        if rel not in local or (size is not None and local[rel][0] != size)
    }
    if not wanted:
        return []
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".handoff-") as tmp:
        for rel, target in sorted(wanted.items()):
            got = client.download_artifacts(run_id, f"{HANDOFF}/{rel}", tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(got, target)
    logger.info("handoff: fetched %d file(s) of run %s", len(wanted), run_id)
    return sorted(wanted)
