"""Reading a config: YAML with unique keys, ``${VAR}`` expansion, validation, path resolution.

``load_config(path)`` reads the file with ``yaml.safe_load`` semantics (plus duplicate-key
detection), expands ``${VAR}`` / ``${VAR:-default}`` in string values from the environment,
validates everything into the frozen :class:`~retrain.config.schema.RetrainConfig` and resolves
relative paths against the file's directory. Every problem is reported at once, each as
``<file>: <key.path>: <problem>`` in one :class:`~retrain.errors.ConfigError`.

The steps are separate: ``_read_yaml`` (one file to plain data), ``parse_config`` (plain data to
a config) and ``_resolve_paths`` (paths relative to the file made absolute).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from retrain.conditions import ConditionError
from retrain.config.schema import ParquetSource, RetrainConfig
from retrain.errors import ConfigError

CONFIG_ENV = "RETRAIN_CONFIG"
"""Environment variable naming the config file used when no path is given."""

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def default_config_path() -> Path:
    """``$RETRAIN_CONFIG`` if set, else ``config/retraining.yaml`` under the current directory."""
    return Path(os.environ.get(CONFIG_ENV) or "config/retraining.yaml")


def load_config(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> RetrainConfig:
    """Load and validate a config file (default: ``$RETRAIN_CONFIG`` or ``config/retraining.yaml``).

    Relative data paths in the file are resolved against the file's directory.
    """
    file = Path(path) if path is not None else default_config_path()
    data = _read_yaml(file)
    config = parse_config(data, source=str(file), env=env)
    return _resolve_paths(config, file.resolve())


def parse_config(
    data: Any, *, source: str = "<config>", env: Mapping[str, str] | None = None
) -> RetrainConfig:
    """Validate an already-loaded mapping (e.g. from a test) into a :class:`RetrainConfig`."""
    if not isinstance(data, dict):
        raise ConfigError(
            [f"(top level): expected a mapping of sections, got {type(data).__name__}"],
            source=source,
        )
    problems: list[str] = []
    expanded = _expand_env(data, os.environ if env is None else env, "", problems)
    if problems:
        raise ConfigError(problems, source=source)
    try:
        return RetrainConfig.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(_messages(exc), source=source) from None
    except ConditionError as exc:  # pragma: no cover - pydantic wraps validator errors
        raise ConfigError([str(exc)], source=source) from None


# --- YAML --------------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (yaml silently keeps the last one)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise ConfigError(
                [
                    f"line {key_node.start_mark.line + 1}: duplicate key {key!r} "
                    f"(first defined on line {seen[key] + 1})"
                ]
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(file: Path) -> Any:
    """The plain data of one YAML file; unreadable files, bad YAML and duplicate keys are
    :class:`ConfigError` naming the file (and the line where there is one)."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(["file not found"], source=str(file)) from None
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror}"], source=str(file)) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except ConfigError as exc:
        raise ConfigError(exc.problems, source=str(file)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(
            [f"{where}invalid YAML: {getattr(exc, 'problem', exc)}"], source=str(file)
        ) from None


# --- environment and paths ---------------------------------------------------------------------


def _expand_env(value: Any, env: Mapping[str, str], path: str, problems: list[str]) -> Any:
    if isinstance(value, dict):
        return {
            k: _expand_env(v, env, f"{path}.{k}" if path else str(k), problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand_env(v, env, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            problems.append(f"{path}: environment variable {name} is not set and has no default")
            return match.group(0)

        return _ENV_REF.sub(replace, value)
    return value


def _resolve_paths(config: RetrainConfig, file: Path) -> RetrainConfig:
    base = file.parent
    source = config.data.source
    if isinstance(source, ParquetSource) and "://" not in source.path:
        path = Path(source.path).expanduser()
        if not path.is_absolute():
            source = source.model_copy(update={"path": str((base / path).resolve())})
    data = config.data.model_copy(update={"source": source})
    storage = config.storage
    if "://" not in storage.work_dir and not Path(storage.work_dir).expanduser().is_absolute():
        work_dir = str((base / Path(storage.work_dir).expanduser()).resolve())
        storage = storage.model_copy(update={"work_dir": work_dir})
    return config.model_copy(update={"data": data, "storage": storage, "source_path": file})


# --- pydantic errors as "<key.path>: <problem>" -------------------------------------------------


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"parquet", "sql"} and out.endswith("source"):
            continue  # discriminated-union tag, not a key the user wrote
        elif part.startswith("function-") or part.startswith("tagged-union"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _messages(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        loc = _format_loc(tuple(item["loc"]))
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = "unknown key"
        elif item["type"] == "missing":
            msg = "required key is missing"
        elif "input" in item and item["type"] not in {"value_error", "assertion_error"}:
            msg = f"{msg} (got {item['input']!r})"
        problems.append(f"{loc}: {msg}")
    return problems
