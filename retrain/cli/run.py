"""``retrain run`` (the pipeline in-process, through the DAG's step graph) and ``retrain log``."""

from __future__ import annotations

import argparse
import re
import signal

from retrain.cli.common import AddCommand, config_of, services
from retrain.cli.output import console, print_json
from retrain.cli.render import render_records
from retrain.config.schema import MODES
from retrain.constants import ExitCode, RunStatus, Stage, Trigger
from retrain.errors import DataError, exit_code, is_retryable
from retrain.redact import redact
from retrain.times import to_utc

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    """Every step in-process, through the same graph and step functions as the DAG."""
    # imported here: the pipeline loads pandas, pyarrow and mlflow (CLI startup stays light)
    from retrain.pipeline.context import RunOptions  # noqa: PLC0415
    from retrain.pipeline.runner import (  # noqa: PLC0415
        Terminated,
        run_pipeline,
        terminate_on_signals,
    )

    options = RunOptions(
        trigger=Trigger(args.trigger),
        as_of=to_utc(args.as_of, what="--as-of"),
        force=args.force,
        force_reason=args.reason,
        skip_ab=args.skip_ab,
        target_stage=Stage(args.target_stage),
        window_days=args.window_days,
        mode=args.mode,
    )
    config = config_of(args)
    err = console(stderr=True)

    def progress(step: str, text: str) -> None:
        err.print(f"[bold cyan]{step:>9}[/] {text}")

    # SIGTERM/SIGHUP (a stopped container, a closed terminal): the run fails "terminated by
    # signal", its record is still written, then the command exits 128 + the signal's number
    with terminate_on_signals() as termination:
        outcome = run_pipeline(config, options, progress=progress)
    record = outcome.record.to_dict()
    if args.json:
        print_json(record)
    else:
        render_records([record])
    if outcome.error is not None:
        text = f"error: {outcome.record.failed_step} failed: {redact(str(outcome.error))}"
        err.print(text, style="red", markup=False, highlight=False)
    signum = termination.received
    if isinstance(outcome.error, Terminated):
        signum = outcome.error.signum
    if signum:  # (a signal while the record was written is honoured once it is)
        name = signal.Signals(signum).name
        err.print(f"terminated by signal {name}: the retraining log record is written")
        return 128 + signum
    if outcome.error is not None:
        if is_retryable(outcome.error):
            err.print("[yellow]the failure may be temporary: running again may succeed[/]")
        return exit_code(outcome.error)
    return ExitCode.REJECTED if outcome.record.status == RunStatus.REJECTED else ExitCode.OK


#: What ``--id`` accepts: a retraining id (``retrain_20260101_001``, or a failed start's
#: ``retrain_20260101_<run key>``); never filter syntax.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,199}$")
_MAX_LIMIT = 1000


def _limit(text: str) -> int:
    """``--limit``: a whole number of records, 1-1000 (argparse exits 2 with this message)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number 1-{_MAX_LIMIT}, got {text!r}"
        ) from None
    if not 1 <= value <= _MAX_LIMIT:
        raise argparse.ArgumentTypeError(
            f"expected 1-{_MAX_LIMIT} records, got {value} (use --id to show one record)"
        )
    return value


def _log(args: argparse.Namespace) -> int:
    from retrain.tracking import bounded  # noqa: PLC0415 - loads mlflow (CLI startup stays light)

    if args.id is not None and not _ID.match(args.id):
        raise DataError(
            [
                f"--id: expected a retraining id such as retrain_20260101_001 (letters, digits, "
                f"'_', '-', '.', ':', '+'), got {args.id!r}"
            ]
        )
    built = services(args)
    with bounded(built.config, "reading the retraining log"):
        if args.id:
            found = built.log.get(args.id)
            if found is None:
                raise DataError([f"no retraining log record {args.id!r}"])
            records = [found.to_dict()]
        else:
            records = [r.to_dict() for r in built.log.records(limit=args.limit)]
    err = console(stderr=True)
    for problem in built.log.problems:  # e.g. a torn spool line: named, skipped, not fatal
        err.print(f"warning: {problem}", style="yellow", markup=False, highlight=False)
    if args.json:
        print_json(records if not args.id else records[0])
    else:
        render_records(records)
    return ExitCode.OK


def register(add: AddCommand) -> None:
    run = add("run", _run, "Run the whole retraining pipeline in-process, like the DAG.")
    run.add_argument(
        "--trigger",
        default=Trigger.MANUAL,
        choices=list(Trigger),
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
        default=Stage.PRODUCTION,
        choices=list(Stage),
        help="promote no further than this stage",
    )
    run.add_argument(
        "--mode",
        default="weekly",
        choices=list(MODES),
        help="weekly: the windowed retrain (default); full_rebuild: all history up to --as-of "
        "(schedule.full_rebuild's run)",
    )
    run.add_argument(
        "--window-days", type=int, help="training window override (days; weekly mode only)"
    )
    run.add_argument("--as-of", help="ISO-8601 time the run acts at (default: now)")
    log = add("log", _log, "List retraining log records, newest first.")
    log.add_argument(
        "--limit", type=_limit, default=20, help=f"records to show (1-{_MAX_LIMIT}, default 20)"
    )
    log.add_argument("--id", help="show one record (full, from its JSON artifact)")
