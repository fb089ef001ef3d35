"""``retrain drift``: current data against reference data or a saved profile."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from retrain.cli.common import AddCommand, config_of
from retrain.cli.output import console, print_json
from retrain.cli.render import render_drift
from retrain.config import DriftSettings
from retrain.constants import ExitCode
from retrain.errors import DataError

__all__ = ["register"]


def _drift(args: argparse.Namespace) -> int:
    # imported here: numpy/pyarrow/scipy load only for this command (CLI startup stays light)
    from retrain.drift import check_drift, load_reference  # noqa: PLC0415

    if args.html and Path(args.html).is_dir():
        raise DataError(
            [f"--html: {args.html} is a directory; give a file, e.g. {args.html}/drift.html"]
        )
    numeric: list[str] | None = None
    categorical: list[str] | None = None
    settings = DriftSettings()
    if args.config or args.model:  # without either: the data's own columns, default settings
        config = config_of(args)
        numeric, categorical = config.model.features.numeric, config.model.features.categorical
        settings = config.drift
    profile = load_reference(
        args.reference, numeric=numeric, categorical=categorical, settings=settings
    )
    columns = [*numeric, *categorical] if numeric is not None and categorical is not None else None
    report = check_drift(profile, args.current, settings=settings, columns=columns)
    if args.html:
        from retrain.reports import write_drift_report  # noqa: PLC0415 - matplotlib if asked

        try:
            write_drift_report(report, args.html)
        except OSError as exc:
            raise DataError([f"--html: cannot write {args.html}: {exc.strerror or exc}"]) from None
    if args.json:
        print_json(report.to_dict())
    else:
        render_drift(report)
        if args.html:
            console().print(f"HTML report: {args.html}")
    if report.unchecked:
        names = ", ".join(f"{f.name} ({f.status})" for f in report.unchecked)
        sys.stderr.write(f"error: features could not be checked: {names}\n")
        return ExitCode.BAD_INPUT
    return ExitCode.TRIGGERED if report.drifted else ExitCode.OK


def register(add: AddCommand) -> None:
    drift = add(
        "drift",
        _drift,
        "Compare current data with reference data or a saved profile, feature by feature. "
        "Exit 0: no medium/high drift, 10: drift found, 2: bad input.",
    )
    drift.add_argument(
        "--reference", required=True, help="parquet/CSV reference data or a saved profile .json"
    )
    drift.add_argument("--current", required=True, help="parquet file/directory or CSV file")
    drift.add_argument("--html", metavar="OUT.html", help="also write a self-contained HTML report")
