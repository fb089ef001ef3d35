"""What every command module shares: its registration signature and its collaborators."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from retrain.config import load_config

if TYPE_CHECKING:
    from retrain.pipeline.services import Services

__all__ = ["AddCommand", "Handler", "services"]

#: A command: parsed arguments in, exit code out.
Handler = Callable[[argparse.Namespace], int]
#: ``add(name, handler, help)``: a subcommand with the shared ``--config`` and ``--json``.
AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]


def services(args: argparse.Namespace) -> Services:
    """The collaborators of one command, for the config it names (built once per command)."""
    # imported here: the registry loads mlflow, and `retrain --help` or `check --signals` need none
    from retrain.pipeline.services import Services  # noqa: PLC0415

    actor: Any = getattr(args, "actor", None)
    return Services.build(load_config(args.config), actor=actor)
