"""Where a command writes: a console for people, one JSON document for ``--json``."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, TextIO

from rich.console import Console

__all__ = ["console", "json_output", "print_json", "version_label"]

#: Where ``--json`` output goes (stdout as it was when the command started).
_JSON_OUT: ContextVar[TextIO | None] = ContextVar("retrain_json_out", default=None)


def console(stderr: bool = False) -> Console:
    """A rich console (stdout, or stderr for progress)."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def json_output(enabled: bool) -> Iterator[None]:
    """With ``--json``, keep stdout for the JSON document: everything else printed meanwhile
    (by the command or a library, such as MLflow's "View run" lines) goes to stderr."""
    token = _JSON_OUT.set(sys.stdout)
    try:
        with contextlib.redirect_stdout(sys.stderr) if enabled else contextlib.nullcontext():
            yield
    finally:
        _JSON_OUT.reset(token)


def print_json(data: Any) -> None:
    """The command's JSON document, on the stdout the command was started with."""
    stream = _JSON_OUT.get() or sys.stdout
    stream.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def version_label(version: int | None) -> str:
    return "-" if version is None else f"v{version}"
