"""The parser of every command, and :func:`main`, the console script's entry point."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from retrain import __version__
from retrain.cli import check, config, drift, registry, run, serve
from retrain.cli.common import Handler
from retrain.cli.output import json_output
from retrain.errors import RetrainError, exit_code, is_retryable
from retrain.redact import redact

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="retrain",
        description="Keep a model good as its data changes: triggers, drift, gated retraining, "
        "promotion and rollback on MLflow.",
        epilog="Exit codes: 0 ok / not triggered, 10 triggered (check), 3 rejected (run), "
        "2 bad input, 1 failure.",
    )
    parser.add_argument("--version", action="version", version=f"retrain {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(handler=handler)
        command.add_argument(
            "--config",
            "-c",
            help="config file or directory (default: $RETRAIN_CONFIG or config/retraining.yaml)",
        )
        command.add_argument(
            "--model",
            "-m",
            metavar="NAME",
            help="the model of a config directory (default: $RETRAIN_MODEL)",
        )
        command.add_argument("--json", action="store_true", help="print JSON instead of a table")
        return command

    for group in (check, drift, registry, run, serve):
        group.register(add)
    config.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``retrain`` console script.

    With ``--json``, stdout carries the JSON document only (see
    :func:`~retrain.cli.output.json_output`). An error exits with the code its type carries
    (:func:`retrain.errors.exit_code`); a temporary one says that running again may succeed.
    Everything printed is redacted (:func:`retrain.redact.redact`): an unexpected error's
    traceback too, which is printed (it is a bug or a failure nobody foresaw) and exits 1.
    """
    args = build_parser().parse_args(argv)
    try:
        with json_output(args.json):
            code: int = args.handler(args)
    except (RetrainError, ValueError) as exc:
        hint = " (temporary: running again may succeed)" if is_retryable(exc) else ""
        sys.stderr.write(redact(f"error: {exc}{hint}") + "\n")
        return exit_code(exc)
    except Exception as exc:  # a bug or an unexpected failure: its traceback, redacted
        sys.stderr.write(redact("".join(traceback.format_exception(exc))))
        return exit_code(exc)
    return code
