"""``retrain check``: the decision a pipeline run's ``check`` task would make, vetoes included."""

from __future__ import annotations

import argparse
from datetime import datetime

from retrain.cli.common import AddCommand, config_of, services
from retrain.cli.output import print_json
from retrain.cli.render import render_decision, render_live
from retrain.constants import ExitCode, Trigger
from retrain.errors import DataError
from retrain.pipeline import decision
from retrain.pipeline.context import RunOptions
from retrain.times import now_utc, to_utc
from retrain.triggers import Signals, TriggerPolicy, read_signals_file

__all__ = ["register"]


def _check(args: argparse.Namespace) -> int:
    """Signals from a file (``--signals``) or measured live; then the pipeline's decision."""
    options = RunOptions(
        trigger=Trigger.MANUAL if args.force else Trigger.SCHEDULED,
        as_of=to_utc(args.as_of, what="--as-of"),
        force=args.force,
        force_reason=args.reason,
    )
    live = None
    if args.signals is not None:
        signals, now, last = _read_signals(args.signals)
        decided = decision.decide(
            TriggerPolicy(config_of(args)),
            signals,
            trigger=options.trigger,
            now=now,
            last_triggered_at=last,
            force_reason=options.force_reason,
        )
    else:
        # imported here: measuring loads pandas, pyarrow, scikit-learn and mlflow; the decision
        # on a signals file (and `retrain --help`) needs none of them
        from retrain.pipeline.assess import assess  # noqa: PLC0415
        from retrain.signals import production_baseline  # noqa: PLC0415

        built = services(args)
        assessment = assess(
            built,
            as_of=options.as_of or now_utc(),
            baseline=production_baseline(built.registry),
            trigger=options.trigger,
            force_reason=options.force_reason,
        )
        live, decided = assessment.live, assessment.decision
    if args.json:
        print_json(
            {
                **decided.policy.to_dict(),
                "proceed": decided.proceed,
                "run_reasons": list(decided.reasons),
                "live": live.to_dict() if live else None,
            }
        )
    else:
        render_decision(decided.policy, decided.proceed, decided.reasons)
        if live is not None:
            render_live(live)
    return ExitCode.TRIGGERED if decided.proceed else ExitCode.OK


def _read_signals(path: str) -> tuple[Signals, datetime | None, datetime | None]:
    """:func:`read_signals_file`, with what it lets through named as ``--signals`` and the file:
    a path it cannot read (a directory, no permission), text that is not UTF-8, JSON nested too
    deeply for the parser."""
    try:
        return read_signals_file(path)
    except UnicodeDecodeError as exc:
        problem = f"--signals: not UTF-8 text (byte 0x{exc.object[exc.start]:02x})"
    except RecursionError:
        problem = "--signals: the JSON is nested too deeply"
    except OSError as exc:
        problem = f"--signals: cannot read: {exc.strerror or exc}"
    raise DataError([problem], source=path)


def register(add: AddCommand) -> None:
    check = add("check", _check, "Evaluate the trigger policy and print the decision.")
    check.add_argument(
        "--signals", help="JSON file of signal values (plus optional 'now' and 'last_triggered_at')"
    )
    check.add_argument("--force", action="store_true", help="force a run (needs --reason)")
    check.add_argument("--reason", help="why the run is forced")
    check.add_argument("--as-of", help="ISO-8601 time for live signals (default: now)")
