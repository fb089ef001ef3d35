"""``python -m retrain_airflow pools [--config PATH]``: the registry pools the DAGs need, as JSON
for ``airflow pools import`` (one one-slot pool per model of a config file or directory)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from retrain.errors import RetrainError, exit_code
from retrain_airflow.dags import pools

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the pools of ``--config`` (default ``$RETRAIN_CONFIG``) for Airflow to import."""
    parser = argparse.ArgumentParser(prog="python -m retrain_airflow")
    sub = parser.add_subparsers(dest="command", required=True)
    command = sub.add_parser("pools", help="the registry pools, for `airflow pools import`")
    command.add_argument(
        "--config", "-c", help="config file or directory (default: $RETRAIN_CONFIG)"
    )
    args = parser.parse_args(argv)
    try:
        print(json.dumps(pools(args.config), indent=2))
    except RetrainError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exit_code(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
