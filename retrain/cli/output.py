"""Where a command writes: a console for people, one JSON document for ``--json``.

Everything written through here is redacted (:func:`retrain.redact.redact`): URL passwords,
secret query values and every registered secret (such as what a secret ``${VAR}`` in the config
expanded to) are masked in tables, lines and JSON alike.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import IO, Any, TextIO, cast

from rich.console import Console

from retrain.redact import redact

__all__ = ["console", "json_output", "print_json", "redacted", "version_label"]

#: Where ``--json`` output goes (stdout as it was when the command started).
_JSON_OUT: ContextVar[TextIO | None] = ContextVar("retrain_json_out", default=None)


class _Redacting(io.TextIOBase):
    """stdout (or stderr) as it is at each write, so redirection and capture still work; every
    write redacted. Rich renders a ``print`` into one write, so a URL on one line is masked."""

    def __init__(self, stderr: bool) -> None:
        super().__init__()
        self._stderr = stderr

    @property
    def _target(self) -> TextIO:
        return sys.stderr if self._stderr else sys.stdout

    def write(self, text: str) -> int:
        self._target.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", None) or "utf-8"


def console(stderr: bool = False) -> Console:
    """A rich console (stdout, or stderr for progress) whose output is redacted."""
    return Console(file=cast("IO[str]", _Redacting(stderr)), highlight=False, soft_wrap=True)


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
    """The command's JSON document, on the stdout the command was started with; every string
    in it redacted (the structure is redacted, not the text, so the document stays valid JSON)."""
    stream = _JSON_OUT.get() or sys.stdout
    text = json.dumps(
        redacted(data), indent=2, sort_keys=True, default=lambda value: redact(str(value))
    )
    stream.write(text + "\n")


def redacted(data: Any) -> Any:
    """``data`` (JSON-like) with every string in it, keys included, redacted."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, Mapping):
        return {redact(k) if isinstance(k, str) else k: redacted(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [redacted(v) for v in data]
    return data


def version_label(version: int | None) -> str:
    return "-" if version is None else f"v{version}"
