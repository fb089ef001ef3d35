"""Which models a DAG file generates DAGs for, and what each generated DAG is named.

A config *file* keeps today's ids (``retrain_pipeline``, pool ``retrain_registry``); a config
*directory* gets ids ``retrain_pipeline__<model>`` and a one-slot pool ``retrain_registry__<model>``
per model, so one model's deploy and rollback never interleave while different models run in
parallel. Tasks re-read their model's config when they run (``Target.load``), so an edit or an
environment override applies at once. Only YAML is read here (parse time).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from retrain.config import CONFIG_ENV, RetrainConfig, load_catalog, load_model_config
from retrain.config.catalog import Catalog
from retrain.errors import ConfigError
from retrain_airflow.definitions import POOL, config_path

__all__ = ["CONFIG_ERROR_DAG", "Target", "broken_dag_id", "load_targets"]

log = logging.getLogger(__name__)

#: Id prefix of the DAG that stands for a broken model file (``retrain_config_error__<file>``).
CONFIG_ERROR_DAG = "retrain_config_error"


@dataclass(frozen=True)
class Target:
    """One model a DAG file generates DAGs for."""

    config: RetrainConfig
    """The config read at parse time (schedules, params, names)."""
    path: str
    """The config file or directory it came from."""
    model: str | None
    """The model's name in a directory config; ``None`` for a single file."""

    @property
    def name(self) -> str:
        return self.config.model.name

    def dag_id(self, base: str) -> str:
        """``base`` for a single file, ``base__<model>`` in a directory."""
        return base if self.model is None else f"{base}__{self.model}"

    @property
    def pool(self) -> str:
        """The model's one-slot registry pool."""
        return POOL if self.model is None else f"{POOL}__{self.model}"

    def load(self) -> RetrainConfig:
        """The model's config, read afresh (in the task that needs it)."""
        return load_model_config(self.path, self.model)


def load_targets(config: str | os.PathLike[str] | None = None) -> tuple[Catalog, list[Target]]:
    """The catalog at ``config`` (default ``$RETRAIN_CONFIG`` or the repo's config) and a target
    per model that loaded. A broken model file is logged here and stays in ``catalog.errors``."""
    root = Path(config) if config is not None else config_path()
    if config is None and CONFIG_ENV not in os.environ and not root.exists():
        raise ConfigError(
            [
                f"no config: set ${CONFIG_ENV} to a config file or directory, or pass its path "
                "to the DAG factory (e.g. pipeline_dags('/path/to/config'))"
            ],
            source=str(root),
        )
    catalog = load_catalog(root)
    for error in catalog.errors.values():
        log.error("retrain: a model config is broken, its DAGs are not generated: %s", error)
    targets = [
        Target(config=cfg, path=str(root), model=name if catalog.directory else None)
        for name, cfg in catalog.configs.items()
    ]
    return catalog, targets


def broken_dag_id(file: Path) -> str:
    """The id of the DAG standing for a broken model file (its stem, made a valid id)."""
    return f"{CONFIG_ERROR_DAG}__{re.sub(r'[^A-Za-z0-9_.-]', '_', file.stem)}"
