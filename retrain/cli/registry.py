"""``retrain status|history|rollback|promote``: the registry, through the DAGs' functions."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from retrain import deploy
from retrain.cli.common import AddCommand, config_path, selected_model, services
from retrain.cli.output import console, print_json, version_label
from retrain.cli.render import age, render_models, render_move
from retrain.config import RetrainConfig, load_catalog
from retrain.constants import ExitCode, Stage
from retrain.errors import DataError, UnknownModelError
from retrain.redact import redact

__all__ = ["register"]


def _status(args: argparse.Namespace) -> int:
    if selected_model(args) is None and config_path(args).is_dir():
        return _models_status(args)
    registry = services(args).registry
    repaired = registry.repair() if args.repair else []
    current = registry.current()
    pending = registry.pending()
    unannounced = registry.unannounced()
    if args.json:
        print_json(
            {
                "model": registry.name,
                "tracking_uri": redact(registry.tracking_uri),
                "aliases": {
                    alias: {**info.to_dict(), "age_seconds": info.age_seconds()}
                    for alias, info in current.items()
                },
                "pending": [e.to_dict() for e in pending],
                "unannounced": [info.to_dict() for info in unannounced],
                **({"repaired": [e.to_dict() for e in repaired]} if args.repair else {}),
            }
        )
        return ExitCode.OK
    out = console()
    if args.repair and not repaired:
        out.print("Nothing to repair: no interrupted move, no unannounced version.")
    for entry in repaired:
        render_move(f"[yellow]Repaired[/] ({entry.op})", entry)
        out.print(f"  {entry.reason}")
    out.print(f"Model {registry.name!r} at {redact(registry.tracking_uri)}")
    if not current:
        out.print("No version holds staging, canary or production yet.")
    else:
        table = Table(
            "alias", "version", "status", "gate", "age", "data until", "metrics", box=None
        )
        for alias, info in current.items():
            metrics = "\n".join(f"{k} {v:.3f}" for k, v in info.record.metrics.items())
            table.add_row(
                alias,
                f"v{info.version}",
                info.status,
                info.record.gate,
                age(info.age_seconds()),
                info.record.watermark[:16].replace("T", " "),
                metrics,
            )
        out.print(table)
    for entry in pending:
        out.print(
            f"[yellow]![/] interrupted {entry.op} ({entry.alias} "
            f"{version_label(entry.from_version)} -> {version_label(entry.to_version)}); "
            "the next promote/rollback or `retrain status --repair` completes it"
        )
    for info in unannounced:
        out.print(
            f"[yellow]![/] v{info.version} (retraining {info.record.retraining_id or '?'}, "
            f"created {info.created_at[:19].replace('T', ' ')}) was registered but never "
            "announced as staging: its registration was interrupted (or is running now); "
            "`retrain status --repair` announces it, or rejects it if a newer version was "
            "registered"
        )
    return ExitCode.OK


def _models_status(args: argparse.Namespace) -> int:
    """``status`` of a config directory without ``--model``: one row per model (production,
    canary, last retraining run), then the model files that do not load; exit 2 if any."""
    path = config_path(args)
    if args.repair:
        raise DataError(
            [
                f"--repair: {path} is a config directory; choose the model to repair with "
                "--model NAME"
            ]
        )
    catalog = load_catalog(path)
    models = [_model_summary(args, config) for config in catalog.configs.values()]
    broken = [{"file": str(file), "error": str(error)} for file, error in catalog.errors.items()]
    if args.json:
        print_json({"models": models, "broken": broken})
    else:
        render_models(str(path), models, broken)
    return ExitCode.BAD_INPUT if broken else ExitCode.OK


def _model_summary(args: argparse.Namespace, config: RetrainConfig) -> dict[str, Any]:
    """One model's row: the versions holding production and canary (none for a model nothing
    was registered for yet) and the newest record of its retraining log."""
    from retrain.tracking import bounded  # noqa: PLC0415 - loads mlflow (CLI startup stays light)

    built = services(args, config)
    try:
        current = built.registry.current("production", "canary")
    except UnknownModelError:
        current = {}
    with bounded(config, f"reading the retraining log of {config.model.name!r}"):
        records = built.log.records(limit=1)
    err = console(stderr=True)
    for problem in built.log.problems:  # e.g. a torn spool line: named, skipped, not fatal
        err.print(f"warning: {problem}", style="yellow", markup=False, highlight=False)
    last = records[0] if records else None
    return {
        "model": config.model.name,
        "production": current["production"].version if "production" in current else None,
        "canary": current["canary"].version if "canary" in current else None,
        "last_run": {
            "retraining_id": last.retraining_id,
            "status": last.status,
            "start_time": last.start_time,
            "end_time": last.end_time,
        }
        if last is not None
        else None,
    }


def _history(args: argparse.Namespace) -> int:
    registry = services(args).registry
    entries = registry.history(limit=args.limit or None)
    if args.json:
        print_json([e.to_dict() for e in entries])
        return ExitCode.OK
    table = Table("when (UTC)", "operation", "alias", "move", "actor", "reason", "run", "state")
    for e in entries:
        move = f"{version_label(e.from_version)} -> {version_label(e.to_version)}"
        table.add_row(
            e.at[:19].replace("T", " "),
            e.op,
            e.alias,
            move,
            e.actor,
            e.reason,
            e.run_id or "",
            e.state,
        )
    console().print(table if entries else f"No recorded alias moves for {registry.name!r}.")
    return ExitCode.OK


def _rollback(args: argparse.Namespace) -> int:
    """The rollback DAG's function: aliases before/after, audited, announced."""
    built = services(args)
    report = deploy.rollback_with_report(
        built.config,
        built.registry,
        reason=args.reason,
        to_version=args.to,
        run_id=args.run_id,
        expected_version=args.expected_version,
        idempotency_key=args.idempotency_key,
        lease=built.lease,
    )
    if args.json:
        print_json(report.entry.to_dict())
        return ExitCode.OK
    for line in report.lines[:2]:
        console().print(line)
    if report.repeated:
        console().print(report.lines[2])
        return ExitCode.OK
    render_move("[bold red]Rolled back[/]", report.entry)
    return ExitCode.OK


def _promote(args: argparse.Namespace) -> int:
    """The promote DAG's function: the target stage's checklist is checked again first."""
    built = services(args)
    result = deploy.promote(
        built.config,
        built.registry,
        to=Stage(args.to),
        version=args.version,
        reason=args.reason,
        approval=f"operator {built.registry.actor} via retrain promote",
        run_id=args.run_id,
        lease=built.lease,
    )
    assert result.entry is not None  # a promotion always moves an alias
    if args.json:
        print_json(result.entry.to_dict())
        return ExitCode.OK
    render_move("[green]Promoted[/]", result.entry)
    for item in result.checklist:
        mark = "[green]ok[/]" if item.passed else "[red]no[/]"
        console().print(f"  {mark} {item.title}: {item.evidence}")
    return ExitCode.OK


def _version_number(text: str) -> int:
    """A version number argument: a whole number >= 1."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a version number >= 1, got {text!r}")
    return number


def _limit(text: str) -> int:
    """``--limit``: a whole number >= 0 (0 = all)."""
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0 (0 = all), got {text!r}")
    return number


def register(add: AddCommand) -> None:
    status = add(
        "status",
        _status,
        "Show the staging/canary/production versions (of a config directory without --model: "
        "every model's production and canary versions and last run; exit 2 if a model file "
        "is broken).",
    )
    history = add("history", _history, "List the audit history of alias moves, newest first.")
    history.add_argument("--limit", type=_limit, default=20, help="entries to show (0 = all)")
    rollback = add("rollback", _rollback, "Return production to the version that served before.")
    rollback.add_argument("--reason", required=True, help="why (goes into the audit history)")
    rollback.add_argument("--to", type=_version_number, metavar="N", help="explicit target version")
    rollback.add_argument(
        "--from",
        dest="expected_version",
        type=_version_number,
        metavar="N",
        help="refuse unless production is version N now (a repeated rollback is refused "
        "instead of undoing the first)",
    )
    rollback.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="a rollback with the key of a completed one returns it and moves nothing (use "
        "one key per intended rollback, e.g. a ticket id, when a retry is possible)",
    )
    moving = add("promote", _promote, "Promote a version to canary or production.")
    moving.add_argument("version", type=_version_number, help="model version number")
    moving.add_argument("--to", required=True, choices=[Stage.CANARY, Stage.PRODUCTION])
    moving.add_argument("--reason", required=True, help="why (goes into the audit history)")
    status.add_argument(
        "--repair",
        action="store_true",
        help="first finish what a crash left: complete interrupted moves, announce (or reject, "
        "if a newer version was registered) versions registered but never announced",
    )
    for command in (status, history, rollback, moving):
        command.add_argument("--actor", help="who acts (default: $RETRAIN_ACTOR or user)")
    for command in (rollback, moving):
        command.add_argument("--run-id", help="MLflow run id to record with the move")
