"""The ``retrain`` command line. Every command calls the same library functions as the DAGs.

Exit codes: 0 = success / not triggered, 10 = ``check`` triggered, 2 = bad input, 1 = failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TextIO

from retrain.constants import RunStatus, Stage, Trigger
from retrain.errors import EXIT_BAD_INPUT, EXIT_FAILURE, DataError, RetrainError, exit_code
from retrain.times import now_utc

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_TRIGGERED",
    "main",
]

EXIT_OK = 0
EXIT_REJECTED = 3
EXIT_TRIGGERED = 10
#: Where ``--json`` output goes (stdout as it was when the command started).
_JSON_OUT: ContextVar[TextIO | None] = ContextVar("retrain_json_out", default=None)

Handler = Callable[[argparse.Namespace], int]


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _print_json(data: Any) -> None:
    """The command's JSON document, on the stdout the command was started with."""
    stream = _JSON_OUT.get() or sys.stdout
    stream.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


# --- config -----------------------------------------------------------------------------------


def _cmd_config_validate(args: argparse.Namespace) -> int:
    from retrain.config import default_config_path, load_config

    path = Path(args.path) if args.path else (Path(args.config) if args.config else None)
    config = load_config(path)
    shown = path or default_config_path()
    if args.json:
        _print_json({"valid": True, "path": str(shown), "config": config.model_dump(mode="json")})
    else:
        rules = ", ".join(config.retraining_rules)
        _console().print(
            f"[green]OK[/] {shown}: model {config.model.name!r}, "
            f"{len(config.model.features.all)} features, rules: {rules}"
        )
    return EXIT_OK


def _cmd_config_reference(args: argparse.Namespace) -> int:
    from retrain.config import reference_markdown, reference_rows

    if args.json:
        keys = ("key", "type", "default", "meaning")
        _print_json([dict(zip(keys, row, strict=True)) for row in reference_rows()])
    else:
        sys.stdout.write(reference_markdown())
    return EXIT_OK


# --- check ------------------------------------------------------------------------------------


def _render_decision(decision: Any, proceed: bool, reasons: Sequence[str]) -> None:
    from rich.table import Table

    console = _console()
    verdict = "[bold red]RETRAIN[/]" if proceed else "[bold green]no retraining[/]"
    console.print(f"Decision: {verdict}  (trigger: {decision.trigger}, action: {decision.action})")
    table = Table("signal", "value")
    for name, value in decision.signals.items():
        table.add_row(name, "unknown" if value is None else f"{value:g}")
    console.print(table)
    for reason in reasons:
        console.print(f"  - {reason}")
    for note in decision.notes:
        console.print(f"  [yellow]![/] {note}")
    cadence = decision.cadence
    console.print(
        f"Cadence: {cadence.level} (every {cadence.interval_days:g} days): {cadence.reasons[0]}"
    )


def _cmd_check(args: argparse.Namespace) -> int:
    """The decision a pipeline run's ``check`` step would make (vetoes included)."""
    from retrain.config import load_config
    from retrain.pipeline import RunOptions, Services, assess, decide
    from retrain.pipeline.context import parse_as_of
    from retrain.signals import production_baseline
    from retrain.triggers import TriggerPolicy, read_signals_file

    config = load_config(args.config)
    options = RunOptions(
        trigger=Trigger.MANUAL if args.force else Trigger.SCHEDULED,
        as_of=parse_as_of(args.as_of),
        force=args.force,
        force_reason=args.reason,
    )
    live = None
    if args.signals is not None:
        signals, now, last = read_signals_file(args.signals)
        decision = decide(
            TriggerPolicy(config),
            signals,
            trigger=options.trigger,
            now=now,
            last_triggered_at=last,
            force_reason=options.force_reason,
        )
    else:
        services = Services.build(config)
        assessment = assess(
            services,
            as_of=options.as_of or now_utc(),
            baseline=production_baseline(services.registry),
            trigger=options.trigger,
            force_reason=options.force_reason,
        )
        live, decision = assessment.live, assessment.decision
    if args.json:
        _print_json(
            {
                **decision.policy.to_dict(),
                "proceed": decision.proceed,
                "run_reasons": list(decision.reasons),
                "live": live.to_dict() if live else None,
            }
        )
    else:
        _render_decision(decision.policy, decision.proceed, decision.reasons)
        if live is not None:
            _render_live(live)
    return EXIT_TRIGGERED if decision.proceed else EXIT_OK


def _render_live(live: Any) -> None:
    console = _console()
    version = live.production_version
    console.print(
        f"Live signals as of {live.as_of}: production "
        f"{'v' + str(version) if version else 'none'}, watermark {live.watermark or '-'}"
    )
    if live.drift:
        drifted = ", ".join(live.drift["drifted"]) or "none"
        console.print(f"  drifted features: {drifted}")
    for note in live.notes:
        console.print(f"  [yellow]![/] {note}")


# --- drift ------------------------------------------------------------------------------------


def _render_drift(report: Any) -> None:
    from rich.table import Table

    colors = {"none": "green", "low": "yellow", "medium": "dark_orange", "high": "red"}
    table = Table(box=None, header_style="bold")
    table.add_column("feature", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    for header in ("PSI", "JS", "W", "missing %"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("status", overflow="fold", min_width=12)
    for f in report.features:
        stats = [f.statistics.get(key) for key in ("psi", "js", "wasserstein")]
        psi, js, wasserstein = ("" if v is None else f"{v:.3f}" for v in stats)
        missing = (
            f"{100 * f.missing_rate_ref:.1f}→{100 * f.missing_rate_cur:.1f}"
            if f.missing_rate_ref is not None and f.missing_rate_cur is not None
            else ""
        )
        severity = f"[{colors.get(f.severity, 'magenta')}]{f.severity}[/]"
        status = f.status if f.status == "ok" else f"{f.status}: {f.message}"
        table.add_row(f.name, severity, psi, js, wasserstein, missing, status)
    console = _console()
    console.print(table)
    console.print(
        f"drift_count (high): {report.drift_count}  drift_share (medium+high): "
        f"{report.drift_share:.2f}  ({len(report.checked)} features checked, "
        f"{report.n_ref:,} reference rows, {report.n_cur:,} current rows)"
    )


def _cmd_drift(args: argparse.Namespace) -> int:
    from retrain.config import DriftSettings, load_config
    from retrain.drift import check_drift, load_reference

    numeric: list[str] | None = None
    categorical: list[str] | None = None
    settings = DriftSettings()
    if args.config:
        config = load_config(args.config)
        numeric, categorical = config.model.features.numeric, config.model.features.categorical
        settings = config.drift
    profile = load_reference(
        args.reference, numeric=numeric, categorical=categorical, settings=settings
    )
    columns = [*numeric, *categorical] if numeric is not None and categorical is not None else None
    report = check_drift(profile, args.current, settings=settings, columns=columns)
    if args.html:
        from retrain.reports import write_drift_report  # matplotlib only when a page is asked for

        write_drift_report(report, args.html)
    if args.json:
        _print_json(report.to_dict())
    else:
        _render_drift(report)
        if args.html:
            _console().print(f"HTML report: {args.html}")
    if report.unchecked:
        names = ", ".join(f"{f.name} ({f.status})" for f in report.unchecked)
        sys.stderr.write(f"error: features could not be checked: {names}\n")
        return EXIT_BAD_INPUT
    return EXIT_TRIGGERED if report.drifted else EXIT_OK


# --- registry ---------------------------------------------------------------------------------


def _services(args: argparse.Namespace) -> Any:
    from retrain.config import load_config
    from retrain.pipeline import Services

    return Services.build(load_config(args.config), actor=getattr(args, "actor", None))


def _registry(args: argparse.Namespace) -> Any:
    return _services(args).registry


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{max(seconds, 0):.0f}s"


def _version_label(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


def _cmd_status(args: argparse.Namespace) -> int:
    from rich.table import Table

    registry = _registry(args)
    current = registry.current()
    pending = registry.pending()
    if args.json:
        _print_json(
            {
                "model": registry.name,
                "tracking_uri": registry.tracking_uri,
                "aliases": {
                    alias: {**info.to_dict(), "age_seconds": info.age_seconds()}
                    for alias, info in current.items()
                },
                "pending": [e.to_dict() for e in pending],
            }
        )
        return EXIT_OK
    console = _console()
    console.print(f"Model {registry.name!r} at {registry.tracking_uri}")
    if not current:
        console.print("No version holds staging, canary or production yet.")
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
                _age(info.age_seconds()),
                info.record.watermark[:16].replace("T", " "),
                metrics,
            )
        console.print(table)
    for entry in pending:
        console.print(
            f"[yellow]![/] interrupted {entry.op} ({entry.alias} "
            f"{_version_label(entry.from_version)} -> {_version_label(entry.to_version)}); "
            "the next promote/rollback completes it"
        )
    return EXIT_OK


def _cmd_history(args: argparse.Namespace) -> int:
    from rich.table import Table

    registry = _registry(args)
    entries = registry.history(limit=args.limit or None)
    if args.json:
        _print_json([e.to_dict() for e in entries])
        return EXIT_OK
    table = Table("when (UTC)", "operation", "alias", "move", "actor", "reason", "run", "state")
    for e in entries:
        move = f"{_version_label(e.from_version)} -> {_version_label(e.to_version)}"
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
    _console().print(table if entries else f"No recorded alias moves for {registry.name!r}.")
    return EXIT_OK


def _print_move(args: argparse.Namespace, verb: str, entry: dict[str, Any]) -> None:
    if args.json:
        _print_json(entry)
        return
    _console().print(
        f"{verb} {entry['alias']}: {_version_label(entry['from_version'])} -> "
        f"{_version_label(entry['to_version'])} (audit {entry['id']})"
    )


def _cmd_rollback(args: argparse.Namespace) -> int:
    """The rollback DAG's function: aliases before/after, audited, announced."""
    from retrain.deploy import rollback_with_report

    services = _services(args)
    report = rollback_with_report(
        services.config,
        services.registry,
        reason=args.reason,
        to_version=args.to,
        run_id=args.run_id,
    )
    if not args.json:
        for line in report.lines[:2]:
            _console().print(line)
    _print_move(args, "[bold red]Rolled back[/]", report.entry)
    return EXIT_OK


def _cmd_promote(args: argparse.Namespace) -> int:
    """The promote DAG's function: the checklist of the target stage is re-checked first."""
    from retrain.deploy import promote

    services = _services(args)
    approval = f"operator {services.registry.actor} via retrain promote"
    result = promote(
        services.config,
        services.registry,
        to=args.to,
        version=args.version,
        reason=args.reason,
        approval=approval,
        run_id=args.run_id,
    )
    assert result.entry is not None  # a promotion always moves an alias
    _print_move(args, "[green]Promoted[/]", result.entry)
    if not args.json:
        for item in result.checklist:
            mark = "[green]ok[/]" if item.passed else "[red]no[/]"
            _console().print(f"  {mark} {item.title}: {item.evidence}")
    return EXIT_OK


# --- parser -----------------------------------------------------------------------------------


# --- run and log -------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    """Every step in-process, through the same graph and step functions as the DAG."""
    from retrain.config import load_config
    from retrain.pipeline import RunOptions, run_pipeline
    from retrain.pipeline.context import parse_as_of

    config = load_config(args.config)
    options = RunOptions(
        trigger=Trigger(args.trigger),
        as_of=parse_as_of(args.as_of),
        force=args.force,
        force_reason=args.reason,
        skip_ab=args.skip_ab,
        target_stage=Stage(args.target_stage),
        window_days=args.window_days,
    )
    err = _console(stderr=True)

    def progress(step: str, text: str) -> None:
        err.print(f"[bold cyan]{step:>9}[/] {text}")

    outcome = run_pipeline(config, progress=progress, **vars(options))
    record = outcome.record.to_dict()
    if args.json:
        _print_json(record)
    else:
        _render_records([record])
    if outcome.error is not None:
        return exit_code(outcome.error)
    return EXIT_REJECTED if outcome.record.status == RunStatus.REJECTED else EXIT_OK


def _render_records(records: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(
        "retraining_id", "trigger", "status", "version", "accuracy", "baseline", "new", "notes"
    )
    for r in records:
        acc = r.get("metrics", {}).get("accuracy")
        base = r.get("baseline_metrics", {}).get("accuracy")
        table.add_row(
            r["retraining_id"],
            r["trigger"],
            r["status"],
            r.get("model_version") or "-",
            f"{acc:.3f}" if acc is not None else "-",
            f"{base:.3f}" if base is not None else "-",
            str(r.get("new_samples") if r.get("new_samples") is not None else "-"),
            r.get("notes") or "",
        )
    _console().print(table)


def _cmd_log(args: argparse.Namespace) -> int:
    from retrain.tracking import bounded

    services = _services(args)
    config, store = services.config, services.log
    with bounded(config, "reading the retraining log"):
        if args.id:
            found = store.get(args.id)
            if found is None:
                raise DataError([f"no retraining log record {args.id!r}"])
            records = [found.to_dict()]
        else:
            records = [r.to_dict() for r in store.records(limit=args.limit)]
    if args.json:
        _print_json(records if not args.id else records[0])
    else:
        _render_records(records)
    return EXIT_OK


def _add_config_commands(sub: Any) -> None:
    """``retrain config validate`` and ``retrain config reference``."""
    config = sub.add_parser("config", help="Config file commands.")
    config_sub = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    validate = config_sub.add_parser("validate", help="Report every problem in a config file.")
    validate.set_defaults(handler=_cmd_config_validate)
    validate.add_argument(
        "path", nargs="?", help="config file (default: $RETRAIN_CONFIG or config/retraining.yaml)"
    )
    validate.add_argument("--config", "-c", help=argparse.SUPPRESS)
    validate.add_argument("--json", action="store_true", help="print JSON")
    reference = config_sub.add_parser(
        "reference", help="Print the configuration reference (every key, default, meaning)."
    )
    reference.set_defaults(handler=_cmd_config_reference)
    reference.add_argument("--json", action="store_true", help="print JSON rows")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="retrain",
        description="Keep a model good as its data changes: triggers, drift, gated retraining, "
        "promotion and rollback on MLflow.",
        epilog="Exit codes: 0 ok / not triggered, 10 triggered (check), 2 bad input, 1 failure.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        p.add_argument(
            "--config",
            "-c",
            help="config file (default: $RETRAIN_CONFIG or config/retraining.yaml)",
        )
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        return p

    check = add("check", _cmd_check, "Evaluate the trigger policy and print the decision.")
    check.add_argument(
        "--signals", help="JSON file of signal values (plus optional 'now' and 'last_triggered_at')"
    )
    check.add_argument("--force", action="store_true", help="force a run (needs --reason)")
    check.add_argument("--reason", help="why the run is forced")

    drift = add(
        "drift",
        _cmd_drift,
        "Compare current data with reference data or a saved profile, feature by feature. "
        "Exit 0: no medium/high drift, 10: drift found, 2: bad input.",
    )
    drift.add_argument(
        "--reference", required=True, help="parquet/CSV reference data or a saved profile .json"
    )
    drift.add_argument("--current", required=True, help="parquet file/directory or CSV file")
    drift.add_argument("--html", metavar="OUT.html", help="also write a self-contained HTML report")

    status = add("status", _cmd_status, "Show the staging/canary/production versions.")
    history = add("history", _cmd_history, "List the audit history of alias moves, newest first.")
    history.add_argument("--limit", type=int, default=20, help="entries to show (0 = all)")
    rollback = add(
        "rollback", _cmd_rollback, "Return production to the version that served before."
    )
    rollback.add_argument("--reason", required=True, help="why (goes into the audit history)")
    rollback.add_argument("--to", type=int, metavar="N", help="explicit target version")
    promote = add("promote", _cmd_promote, "Promote a version to canary or production.")
    promote.add_argument("version", type=int, help="model version number")
    promote.add_argument("--to", required=True, choices=["canary", "production"])
    promote.add_argument("--reason", required=True, help="why (goes into the audit history)")
    for registry_command in (status, history, rollback, promote):
        registry_command.add_argument("--actor", help="who acts (default: $RETRAIN_ACTOR or user)")
    for moving in (rollback, promote):
        moving.add_argument("--run-id", help="MLflow run id to record with the move")

    run = add("run", _cmd_run, "Run the whole retraining pipeline in-process, like the DAG.")
    run.add_argument(
        "--trigger",
        default="manual",
        choices=["manual", "scheduled", "drift", "volume", "performance"],
        help="why this run happens; non-manual runs first evaluate the policy",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="promote even if the gate fails (needs --reason; recorded as forced)",
    )
    run.add_argument("--reason", help="why the run is forced or started by hand")
    run.add_argument("--skip-ab", action="store_true", help="skip the offline A/B comparison")
    run.add_argument(
        "--target-stage",
        default="production",
        choices=["staging", "canary", "production"],
        help="promote no further than this stage",
    )
    run.add_argument("--window-days", type=int, help="training window override (days)")
    run.add_argument("--as-of", help="ISO-8601 time the run acts at (default: now)")
    log = add("log", _cmd_log, "List retraining log records, newest first.")
    log.add_argument("--limit", type=int, default=20, help="records to show")
    log.add_argument("--id", help="show one record (full, from its JSON artifact)")
    check.add_argument("--as-of", help="ISO-8601 time for live signals (default: now)")

    _add_config_commands(sub)
    return parser


def _version() -> str:
    from retrain import __version__

    return f"retrain {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``retrain`` console script.

    With ``--json``, stdout carries the JSON document only: anything else a command or a library
    prints on the way (MLflow's "View run" lines, say) goes to stderr. Errors exit with the code
    their type carries (:func:`retrain.errors.exit_code`).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    token = _JSON_OUT.set(sys.stdout)
    try:
        with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
            code: int = args.handler(args)
    except (RetrainError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exit_code(exc)
    finally:
        _JSON_OUT.reset(token)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
