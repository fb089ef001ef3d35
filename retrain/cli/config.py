"""``retrain config validate`` and ``retrain config reference``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrain.cli.common import selected_model
from retrain.cli.output import console, print_json
from retrain.config import (
    RetrainConfig,
    default_config_path,
    load_catalog,
    load_config,
    load_model_config,
    reference_markdown,
    reference_rows,
)
from retrain.config.schema import MODES
from retrain.constants import ExitCode
from retrain.errors import ConfigError

__all__ = ["register"]


def _validate(args: argparse.Namespace) -> int:
    """The file as the DAGs load it, then the estimator as training builds it: the class is
    imported (only from model.estimator.allowed_modules) and its parameters checked. A config
    directory without ``--model``: every model file so, each reported (exit 2 if any fails)."""
    # imported here: building the estimator loads scikit-learn and pandas (`retrain --help` and
    # the other commands do not need them)
    from retrain.train import build_pipeline  # noqa: PLC0415

    path = Path(args.path) if args.path else (Path(args.config) if args.config else None)
    shown = path or default_config_path()
    model = selected_model(args)
    if model is None and shown.is_dir():
        return _validate_directory(shown, args.json, build_pipeline)
    config = load_config(path) if model is None else load_model_config(shown, model)
    if shown.is_dir() and config.source_path is not None:
        shown = shown / config.source_path.name  # the model's own file
    build_pipeline(config)
    if args.json:
        print_json(
            {
                "valid": True,
                "path": str(shown),
                **_schedules_json(config),
                "config": config.model_dump(mode="json"),
            }
        )
    else:
        out = console()
        out.print(f"[green]OK[/] {_summary(shown, config)}")
        _print_schedules(config)
    return ExitCode.OK


def _validate_directory(root: Path, as_json: bool, build: Callable[[RetrainConfig], Any]) -> int:
    """Every model file of ``root`` (merged over its ``defaults.yaml``), in file order; a broken
    ``defaults.yaml`` (or no model file) breaks them all and is raised."""
    catalog = load_catalog(root)
    results: dict[Path, RetrainConfig | ConfigError] = dict(catalog.errors)
    for config in catalog.configs.values():
        file = root / config.source_path.name if config.source_path else root
        try:
            build(config)
        except ConfigError as exc:
            results[file] = exc
        else:
            results[file] = config
    ordered = sorted(results.items())
    broken = [(file, r) for file, r in ordered if isinstance(r, ConfigError)]
    if as_json:
        print_json(
            {
                "valid": not broken,
                "path": str(root),
                "models": [
                    {
                        "model": r.model.name,
                        "file": str(file),
                        **_schedules_json(r),
                        "config": r.model_dump(mode="json"),
                    }
                    for file, r in ordered
                    if isinstance(r, RetrainConfig)
                ],
                "broken": [{"file": str(file), "error": str(error)} for file, error in broken],
            }
        )
    else:
        out = console()
        for file, result in ordered:
            if isinstance(result, ConfigError):
                out.print("[red]BROKEN[/] ", end="")
                out.print(f"{file}: {result}", markup=False, highlight=False)
            else:
                out.print(f"[green]OK[/] {_summary(file, result)}")
                _print_schedules(result)
        good = len(ordered) - len(broken)
        out.print(
            f"{root}: {good} model{'s' if good != 1 else ''} OK, "
            f"{len(broken)} broken file{'s' if len(broken) != 1 else ''}",
            markup=False,
        )
    return ExitCode.BAD_INPUT if broken else ExitCode.OK


def _summary(shown: Path, config: RetrainConfig) -> str:
    rules = ", ".join(config.retraining_rules)
    search = config.model.search
    searched = (
        f"; the full rebuild's {search.method} search space ({', '.join(search.space)}) checked"
        if search
        else ""
    )
    return (
        f"{shown}: model {config.model.name!r}, "
        f"{len(config.model.features.all)} features, rules: {rules}; "
        f"estimator {config.model.estimator.class_path} and its parameters checked{searched}"
    )


#: How many fire times of each schedule ``config validate`` shows.
NEXT_FIRES = 3


def _when(time: datetime) -> str:
    """``Mon 2026-03-30 06:00 +02:00``: a fire time in its zone, with its UTC offset."""
    return f"{time:%a %Y-%m-%d %H:%M} {time.isoformat()[-6:]}"


def _either_day_note(cron: str) -> str | None:
    """A note when a cron restricts both day fields (standard cron then ORs them)."""
    fields = cron.split()
    if len(fields) == 5 and fields[2] != "*" and fields[4] != "*":
        return (
            f"{cron!r} restricts both day-of-month and day-of-week: it fires on a day matching "
            "EITHER (write the first Sunday of a month as '0#1' in day-of-week)"
        )
    return None


def _schedules_json(config: RetrainConfig, now: datetime | None = None) -> dict[str, Any]:
    """The weekly and full-rebuild schedules with their next fire times, and the deprecations."""
    settings = config.schedule
    after = now or datetime.now(UTC)
    return {
        "schedules": {
            mode: {
                "cron": getattr(settings, mode),
                "timezone": settings.timezone,
                "next": [
                    t.isoformat() for t in settings.next_fires(mode, after=after, count=NEXT_FIRES)
                ],
            }
            for mode in MODES
        },
        "deprecations": settings.deprecations,
    }


def _print_schedules(config: RetrainConfig, now: datetime | None = None) -> None:
    """One line per schedule (its next fire times in its zone), then any deprecation note."""
    out = console()
    settings = config.schedule
    after = now or datetime.now(UTC)
    for mode in MODES:
        cron = getattr(settings, mode)
        fires = settings.next_fires(mode, after=after, count=NEXT_FIRES)
        out.print(
            f"  schedule.{mode} {cron!r} ({settings.timezone}): next "
            + ", ".join(_when(t) for t in fires),
            markup=False,
            highlight=False,
        )
        note = _either_day_note(settings.cron(mode))
        if note:
            out.print(f"  note: schedule.{mode} {note}", style="yellow", markup=False)
    for text in settings.deprecations:
        out.print(f"  deprecated: {text}", style="yellow", markup=False, highlight=False)


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
        help="Report every problem in a config file, or in each model file of a config "
        "directory (and import the estimator to check its parameters).",
    )
    validate.set_defaults(handler=_validate)
    validate.add_argument(
        "path",
        nargs="?",
        help="config file or directory (default: $RETRAIN_CONFIG or config/retraining.yaml)",
    )
    validate.add_argument("--config", "-c", help=argparse.SUPPRESS)
    validate.add_argument(
        "--model",
        "-m",
        metavar="NAME",
        help="validate only this model of a config directory (default: $RETRAIN_MODEL; "
        "without either, every model)",
    )
    validate.add_argument("--json", action="store_true", help="print JSON")
    reference = commands.add_parser(
        "reference", help="Print the configuration reference (every key, default, meaning)."
    )
    reference.set_defaults(handler=_reference)
    reference.add_argument("--json", action="store_true", help="print JSON rows")
