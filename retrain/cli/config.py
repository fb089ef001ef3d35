"""``retrain config validate`` and ``retrain config reference``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from retrain.cli.output import console, print_json
from retrain.config import default_config_path, load_config, reference_markdown, reference_rows
from retrain.constants import ExitCode

__all__ = ["register"]


def _validate(args: argparse.Namespace) -> int:
    """The file as the DAGs load it, then the estimator as training builds it: the class is
    imported (only from model.estimator.allowed_modules) and its parameters checked."""
    # imported here: building the estimator loads scikit-learn and pandas (`retrain --help` and
    # the other commands do not need them)
    from retrain.train import build_pipeline  # noqa: PLC0415

    path = Path(args.path) if args.path else (Path(args.config) if args.config else None)
    config = load_config(path)
    shown = path or default_config_path()
    build_pipeline(config)
    if args.json:
        print_json({"valid": True, "path": str(shown), "config": config.model_dump(mode="json")})
    else:
        rules = ", ".join(config.retraining_rules)
        console().print(
            f"[green]OK[/] {shown}: model {config.model.name!r}, "
            f"{len(config.model.features.all)} features, rules: {rules}; "
            f"estimator {config.model.estimator.class_path} and its parameters checked"
        )
    return ExitCode.OK


def _reference(args: argparse.Namespace) -> int:
    if args.json:
        keys = ("key", "type", "default", "meaning")
        print_json([dict(zip(keys, row, strict=True)) for row in reference_rows()])
    else:
        sys.stdout.write(reference_markdown())
    return ExitCode.OK


def register(sub: Any) -> None:
    """``config validate`` and ``config reference`` (a group with its own subcommands)."""
    group = sub.add_parser("config", help="Config file commands.")
    commands = group.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    validate = commands.add_parser(
        "validate",
        help="Report every problem in a config file (and import the estimator to check its "
        "parameters).",
    )
    validate.set_defaults(handler=_validate)
    validate.add_argument(
        "path", nargs="?", help="config file (default: $RETRAIN_CONFIG or config/retraining.yaml)"
    )
    validate.add_argument("--config", "-c", help=argparse.SUPPRESS)
    validate.add_argument("--json", action="store_true", help="print JSON")
    reference = commands.add_parser(
        "reference", help="Print the configuration reference (every key, default, meaning)."
    )
    reference.set_defaults(handler=_reference)
    reference.add_argument("--json", action="store_true", help="print JSON rows")
