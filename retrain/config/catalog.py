"""Many models from one path: a config file (one model) or a directory (one file per model).

A directory holds one YAML file per model (``*.yaml`` / ``*.yml``) and an optional
``defaults.yaml`` deep-merged under each: mappings merge key by key (so a model file overrides
one rule or one threshold and keeps the rest), anything else (lists, scalars, null) is replaced by
the model file's value. In a directory:

* ``model.name`` defaults to the file's stem;
* each model's ``storage.work_dir`` gets the model's name appended, so two models never share
  working files or a log spool;
* two files naming the same model, MLflow experiment or log experiment are refused (the later
  file is the broken one): models never write into each other's registry entries or log.

A broken model file does not hide the others: :func:`load_catalog` returns the good models and,
per broken file, its :class:`~retrain.errors.ConfigError` (``<file>: <key.path>: <problem>``; a
problem with a value that came from ``defaults.yaml`` says so). A broken ``defaults.yaml`` (or a
directory without model files) breaks every model and is raised. Reading the catalog reads the
YAML files and nothing else (DAG files call it at parse time).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrain.config.loader import (
    _read_yaml,
    _resolve_paths,
    default_config_path,
    load_config,
    parse_config,
)
from retrain.config.schema import RetrainConfig
from retrain.errors import ConfigError

__all__ = [
    "DEFAULTS_FILE",
    "MODEL_ENV",
    "Catalog",
    "deep_merge",
    "load_catalog",
    "load_model_config",
]

#: Environment variable naming the model of a directory config (``--model`` overrides it).
MODEL_ENV = "RETRAIN_MODEL"
#: The file in a config directory that every model file is merged over.
DEFAULTS_FILE = "defaults.yaml"
_DEFAULTS = frozenset({DEFAULTS_FILE, "defaults.yml"})
_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Catalog:
    """The models one config path describes.

    ``configs`` maps each model name to its config (file order); ``errors`` maps each broken
    model file to its error; ``directory`` says whether the path was a directory (DAG ids and
    pools then carry the model's name).
    """

    root: Path
    directory: bool
    configs: Mapping[str, RetrainConfig]
    errors: Mapping[Path, ConfigError] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """The models that loaded, in file order."""
        return list(self.configs)

    def select(self, model: str | None = None) -> RetrainConfig:
        """The config of ``model``; without a name, the only model there is.

        Raises :class:`ConfigError` naming the path and the models it holds when the name is
        unknown or missing, or the broken file's own error when that model's file is broken.
        """
        if model is None:
            if len(self.configs) == 1 and not self.errors:
                return next(iter(self.configs.values()))
            raise ConfigError(
                [
                    f"holds {self._describe()}: choose one with --model NAME "
                    "(or RETRAIN_MODEL for DAG tasks)"
                ],
                source=str(self.root),
            )
        if model in self.configs:
            return self.configs[model]
        for file, error in self.errors.items():
            if file.stem == model:
                raise error
        raise ConfigError(
            [f"no model {model!r} here; it holds {self._describe()}"], source=str(self.root)
        )

    def _describe(self) -> str:
        parts = [", ".join(self.configs) or "no valid model"]
        if self.errors:
            broken = ", ".join(file.name for file in self.errors)
            parts.append(f"broken files: {broken}")
        return f"{len(self.configs)} model{'s' if len(self.configs) != 1 else ''} (" + (
            "; ".join(parts) + ")"
        )


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: mappings merge recursively, any other value replaces."""
    merged = dict(base)
    for key, value in override.items():
        below = merged.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(below, value)
        else:
            merged[key] = value
    return merged


def load_catalog(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> Catalog:
    """The models of a config file or directory (default ``$RETRAIN_CONFIG``).

    A single file is loaded as :func:`~retrain.config.load_config` loads it (an error there is
    raised). In a directory each broken model file is collected in ``errors``.
    """
    root = Path(path) if path is not None else default_config_path()
    if not root.is_dir():
        config = load_config(root, env=env)
        return Catalog(root=root, directory=False, configs={config.model.name: config})
    defaults = _read_defaults(root)
    files = sorted(
        p
        for p in root.iterdir()
        if p.suffix in _SUFFIXES and p.name not in _DEFAULTS and not p.name.startswith(".")
    )
    if not files:
        raise ConfigError(
            [
                "no model files: a config directory holds one YAML file per model "
                f"(plus an optional {DEFAULTS_FILE})"
            ],
            source=str(root),
        )
    configs: dict[str, RetrainConfig] = {}
    owners: dict[tuple[str, str], Path] = {}
    errors: dict[Path, ConfigError] = {}
    for file in files:
        try:
            config = _load_model_file(file, defaults, env=env)
            _claim(config, file, owners)
        except ConfigError as exc:
            errors[file] = exc
            continue
        configs[config.model.name] = config
    return Catalog(root=root, directory=True, configs=configs, errors=errors)


def load_model_config(
    path: str | os.PathLike[str] | None = None,
    model: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> RetrainConfig:
    """One model's config from a file or a directory (``model`` selects; see
    :meth:`Catalog.select`). With a single file, a ``model`` other than its own is an error."""
    root = Path(path) if path is not None else default_config_path()
    if not root.is_dir():
        config = load_config(root, env=env)
        if model is not None and model != config.model.name:
            raise ConfigError(
                [f"model.name is {config.model.name!r}, not {model!r} (--model)"],
                source=str(root),
            )
        return config
    return load_catalog(root, env=env).select(model)


# --- one model file ----------------------------------------------------------------------------


def _read_defaults(root: Path) -> dict[str, Any]:
    found = [root / name for name in sorted(_DEFAULTS) if (root / name).is_file()]
    if len(found) > 1:
        raise ConfigError(
            [f"both {found[0].name} and {found[1].name} exist; keep one"], source=str(root)
        )
    if not found:
        return {}
    data = _read_yaml(found[0])
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(["(top level): expected a mapping of sections"], source=str(found[0]))
    if isinstance(data.get("model"), dict) and "name" in data["model"]:
        raise ConfigError(
            ["model.name: a name shared by every model cannot be a default; set it per file"],
            source=str(found[0]),
        )
    return data


def _load_model_file(
    file: Path, defaults: Mapping[str, Any], *, env: Mapping[str, str] | None
) -> RetrainConfig:
    data = _read_yaml(file)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["(top level): expected a mapping of sections"], source=str(file))
    merged = deep_merge(defaults, data)
    model = merged.get("model")
    if isinstance(model, dict) and "name" not in model:
        merged["model"] = {"name": file.stem, **model}
    try:
        config = parse_config(merged, source=str(file), env=env)
    except ConfigError as exc:
        problems = [_origin(problem, data, defaults) for problem in exc.problems]
        raise ConfigError(problems, source=str(file)) from None
    config = _resolve_paths(config, file.resolve())
    work_dir = config.storage.work_dir.rstrip("/")
    storage = config.storage.model_copy(update={"work_dir": f"{work_dir}/{config.model.name}"})
    return config.model_copy(update={"storage": storage})


def _claim(config: RetrainConfig, file: Path, owners: dict[tuple[str, str], Path]) -> None:
    """Refuse a model name or experiment another file already uses."""
    name = config.model.name
    claims = {
        ("model.name", name): "model",
        ("registry.experiment", config.experiment_name): "experiment",
        ("registry.log_experiment", config.log_experiment_name): "log experiment",
    }
    problems = [
        f"{key}: {what} {value!r} is already used by {owners[(key, value)].name}"
        for (key, value), what in claims.items()
        if (key, value) in owners
    ]
    if problems:
        raise ConfigError(problems, source=str(file))
    for claim in claims:
        owners[claim] = file


def _origin(problem: str, data: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    """``problem`` with ``(from defaults.yaml)`` when its key is set in the defaults only."""
    path = problem.split(": ", 1)[0]
    if _has(defaults, path) and not _has(data, path):
        return f"{problem} (from {DEFAULTS_FILE})"
    return problem


def _has(data: Any, path: str) -> bool:
    """Whether the dotted key path (list indexes ignored) is set in ``data``."""
    node = data
    for part in path.split("."):
        key = part.split("[", 1)[0]
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True
