"""What every command module shares: its registration signature and its collaborators."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain.config import MODEL_ENV, RetrainConfig, default_config_path, load_model_config

if TYPE_CHECKING:
    from retrain.pipeline.services import Services

__all__ = ["AddCommand", "Handler", "config_of", "config_path", "selected_model", "services"]

#: A command: parsed arguments in, exit code out.
Handler = Callable[[argparse.Namespace], int]
#: ``add(name, handler, help)``: a subcommand with the shared ``--config``, ``--model`` and
#: ``--json``.
AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]


def config_path(args: argparse.Namespace) -> Path:
    """The config file or directory a command reads: ``--config``, else ``$RETRAIN_CONFIG``,
    else ``config/retraining.yaml``."""
    return Path(args.config) if args.config else default_config_path()


def selected_model(args: argparse.Namespace) -> str | None:
    """The model a command acts on: ``--model``, else ``$RETRAIN_MODEL``, else ``None`` (a
    single config file's model, or every model of a directory where a command lists them)."""
    return getattr(args, "model", None) or os.environ.get(MODEL_ENV) or None


def config_of(args: argparse.Namespace) -> RetrainConfig:
    """The config of the model the command acts on (:func:`retrain.config.load_model_config`):
    a single file's, or the ``--model`` of a directory (a missing or unknown one is an error
    naming the directory and its models)."""
    return load_model_config(args.config, selected_model(args))


def services(args: argparse.Namespace, config: RetrainConfig | None = None) -> Services:
    """The collaborators of one command, for the config it names (built once per command);
    ``config``: for this config instead (one model of a directory)."""
    # imported here: the registry loads mlflow, and `retrain --help` or `check --signals` need none
    from retrain.pipeline.services import Services  # noqa: PLC0415

    actor: Any = getattr(args, "actor", None)
    return Services.build(config if config is not None else config_of(args), actor=actor)
