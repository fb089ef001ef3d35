"""What every reliability case checks: a clear error that names the problem, and no state change.

A case runs inside :func:`attempt` (library calls) or :func:`cli_attempt` (the ``retrain``
command). Both snapshot the model's state before and after (registered versions and their
status, aliases, audit entries, retraining log records, the spool file, the files under the work
directory), time the attempt, and record a row for the figures table
(``tools/reliability_report.py`` -> ``docs/reliability.md``). A case fails when no error is
raised, when the error lacks the expected words, or when anything in the snapshot changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from retrain.config import RetrainConfig
from retrain.errors import UnknownModelError
from retrain.registry import ModelRegistry
from tools.reliability_report import GROUPS

__all__ = [
    "GROUPS",
    "Row",
    "attempt",
    "cli_attempt",
    "record_outcome",
    "snapshot",
    "write_rows",
]

#: Where a test session writes its rows (``tools/reliability_report.py`` reads them).
RESULTS = Path(os.environ.get("RETRAIN_RELIABILITY_RESULTS", ".state/reliability.json"))

_ROWS: list[Row] = []


@dataclass
class Row:
    """One case: its group and name, the error it got, what changed, and how long it took."""

    group: str
    case: str
    error: str
    changes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _files(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def snapshot(config: RetrainConfig | None) -> dict[str, Any]:
    """The state a bad input or a fault must not change."""
    if config is None:
        return {}
    registry = ModelRegistry(config)
    try:
        versions = {v.version: v.status for v in registry.versions()}
        aliases = {a: v.version for a, v in registry.current().items()}
        audit = [e.id for e in registry.history()]
    except UnknownModelError:
        versions, aliases, audit = {}, {}, []
    from retrain.pipeline.services import Services

    log = Services.build(config).log
    records = [(r.retraining_id, r.status) for r in log.records(limit=1000)]
    work = Path(config.storage.work_dir)
    return {
        "versions": versions,
        "aliases": aliases,
        "audit entries": audit,
        "log records": records,
        "files": _files(work),
    }


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [f"{key} changed" for key in before if before[key] != after.get(key)]


@contextlib.contextmanager
def attempt(
    group: str,
    case: str,
    config: RetrainConfig | None,
    *,
    expect: str | Sequence[str],
    error: type[BaseException] | tuple[type[BaseException], ...] = Exception,
) -> Iterator[None]:
    """Run a library call that must fail with ``error`` whose message holds every ``expect``
    fragment, and change nothing in ``config``'s state."""
    assert group in GROUPS, group
    fragments = [expect] if isinstance(expect, str) else list(expect)
    before = snapshot(config)
    started = time.perf_counter()
    with pytest.raises(error) as caught:
        yield
    seconds = time.perf_counter() - started
    message = str(caught.value)
    changes = _changes(before, snapshot(config))
    _ROWS.append(Row(group, case, message, changes, seconds))
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"
    assert changes == [], f"{case}: state changed: {changes}"


def cli_attempt(
    capsys: pytest.CaptureFixture[str],
    group: str,
    case: str,
    config: RetrainConfig | None,
    argv: Sequence[str],
    *,
    code: int,
    expect: str | Sequence[str],
) -> str:
    """Run ``retrain argv``: it must exit ``code`` with every ``expect`` fragment on stderr (or
    in argparse's usage error), print no traceback, and change nothing; returns stderr."""
    from retrain.cli import main

    fragments = [expect] if isinstance(expect, str) else list(expect)
    before = snapshot(config)
    started = time.perf_counter()
    capsys.readouterr()
    try:
        got = main(list(argv))
    except SystemExit as exc:  # argparse refuses bad arguments itself
        got = int(exc.code or 0)
    seconds = time.perf_counter() - started
    _, err = capsys.readouterr()
    changes = _changes(before, snapshot(config))
    message = err.strip().splitlines()[-1] if err.strip() else ""
    _ROWS.append(Row(group, case, message, changes, seconds))
    assert got == code, f"{case}: exit {got}, expected {code}; stderr: {err[-500:]}"
    for fragment in fragments:
        assert fragment in err, f"{case}: {fragment!r} not in stderr {err[-500:]!r}"
    assert "Traceback" not in err, f"{case}: a traceback reached the user"
    assert changes == [], f"{case}: state changed: {changes}"
    return err


def record_outcome(group: str, case: str, outcome: str, seconds: float) -> None:
    """Record a row for a case whose right end is not an error (a fault the run must survive,
    ending in a record): the test asserts what held; ``outcome`` says it for the table."""
    assert group in GROUPS, group
    _ROWS.append(Row(group, case, outcome, [], seconds))


def write_rows(path: Path = RESULTS) -> None:
    """Write the session's rows (called once at the end of the session)."""
    if not _ROWS:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in _ROWS], indent=1), encoding="utf-8")
