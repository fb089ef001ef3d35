"""Reading a config: bounded YAML, ``${VAR}`` expansion, validation, path resolution.

``load_config(path)`` reads the file with ``yaml.safe_load`` semantics (no Python tags) and
bounds: at most 1 MB of UTF-8, at most 100,000 values once aliases are expanded (an alias bomb is
refused before anything expands it), nesting at most 50 deep, no value that contains itself, no
key written twice (merge keys ``<<: *defaults`` work, the mapping's own keys winning). It expands
``${VAR}`` / ``${VAR:-default}`` in string values from the environment, validates everything into
the frozen :class:`~retrain.config.schema.RetrainConfig` and resolves relative paths against the
file's directory. Every problem is reported at once, each as ``<file>: <key.path>: <problem>`` in
one :class:`~retrain.errors.ConfigError`.

Secrets never reach an error: the value of a ``${VAR}`` whose name says it is secret
(``DB_PASSWORD``, ``MLFLOW_TOKEN``; :func:`retrain.redact.secret_name`), every URL password and
the Slack webhook URL are registered with :func:`retrain.redact.register_secret`, so they are
masked in everything retrain prints, logs or stores from then on; an error about a value built
from a secret variable names the variable instead of echoing the value.

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
from retrain.redact import redact, register_secret, secret_name, url_secrets

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
    if data is None:
        raise ConfigError(
            [
                "(top level): the file is empty; expected a mapping of sections (model, data, "
                "registry, ...)"
            ],
            source=source,
        )
    if not isinstance(data, dict):
        raise ConfigError(
            [f"(top level): expected a mapping of sections, got {_kind(data)}"], source=source
        )
    expansion = _Expansion(os.environ if env is None else env)
    expanded = expansion.expand(data)
    if expansion.problems:
        raise ConfigError(expansion.problems, source=source)
    try:
        return RetrainConfig.model_validate(expanded)
    except ValidationError as exc:
        problems = _messages(exc, hidden=expansion.hidden)
        raise ConfigError([redact(p) for p in problems], source=source) from None
    except ConditionError as exc:  # pragma: no cover - pydantic wraps validator errors
        raise ConfigError([redact(str(exc))], source=source) from None


# --- YAML --------------------------------------------------------------------------------------

#: Largest config file read (bytes): a config is a few kilobytes; this bounds parsing time.
MAX_BYTES = 1_000_000
#: Most values (scalars, lists and mappings, every alias expanded) a config may hold.
MAX_VALUES = 100_000
#: Deepest nesting of lists and mappings (aliases expanded); a config nests about 6 deep.
MAX_DEPTH = 50
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _at(mark: Any, problem: str) -> ConfigError:
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return ConfigError([where + problem])


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (no Python tags) that refuses what a config never needs and an
    attacker would: nesting deeper than :data:`MAX_DEPTH` (the composer recurses per level) and a
    value that contains itself through an alias. Duplicate keys are refused; merge keys
    (``<<: *defaults``) work as YAML defines them (keys written in the mapping win)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._open: list[str] = []  # anchors of the nodes being composed

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise _at(
                    event.start_mark,
                    f"recursive alias {event.anchor!r}: a value may not contain itself",
                )
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise _at(event.start_mark, f"nested deeper than {MAX_DEPTH} levels")
        anchor = getattr(event, "anchor", None)
        self._depth += 1
        self._open.append(anchor or "")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.pop()

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """Resolve merge keys as YAML defines them: the mapping's own keys win, then the merged
        mappings in the order given (PyYAML 6.0.4 compares merged keys by object identity and
        lets a later mapping win when two of them share a key)."""
        own: list[tuple[yaml.Node, yaml.Node]] = []
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                own.append((key_node, value_node))
                continue
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"expected a mapping or list of mappings to merge, found a {source.id}",
                        source.start_mark,
                    )
                self.flatten_mapping(source)
                merged.extend(source.value)
        if not merged:
            return
        taken = {self.construct_object(key) for key, _ in own}
        kept = []
        for key_node, value_node in merged:
            key = self.construct_object(key_node)
            if key not in taken:
                taken.add(key)
                kept.append((key_node, value_node))
        node.value = kept + own


def _check_keys(loader: yaml.SafeLoader, node: yaml.MappingNode) -> None:
    """Refuse a key written twice in one mapping and a key that is not a plain value. The keys
    a merge key brings in are not duplicates: the mapping's own keys override them."""
    seen: dict[Any, int] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in sources:
                if isinstance(source, yaml.MappingNode):
                    _check_keys(loader, source)
            continue
        if not isinstance(key_node, yaml.ScalarNode):
            kind = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
            raise _at(key_node.start_mark, f"a key must be a plain value (a name), not a {kind}")
        key = loader.construct_object(key_node)
        if key in seen:
            raise ConfigError(
                [
                    f"line {key_node.start_mark.line + 1}: duplicate key {key!r} "
                    f"(first defined on line {seen[key] + 1})"
                ]
            )
        seen[key] = key_node.start_mark.line


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    _check_keys(loader, node)
    return loader.construct_mapping(node)  # flattens merge keys, then builds the dict


_BoundedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand it beyond :data:`MAX_VALUES` values or
    :data:`MAX_DEPTH` levels (an alias bomb is a few hundred bytes that expand to billions).
    Each node is measured once, so this costs no more than the document as written."""
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, height)

    def measure(node: yaml.Node, level: int) -> tuple[int, int]:
        known = measured.get(id(node))
        if known is None:
            if isinstance(node, yaml.MappingNode):
                children = [child for pair in node.value for child in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            else:
                children = []
            values, height = 1, 1
            for child in children:
                child_values, child_height = measure(child, level + 1)
                values += child_values
                height = max(height, child_height + 1)
                if values > MAX_VALUES:
                    raise ConfigError(
                        [
                            f"the document holds more than {MAX_VALUES:,} values once its "
                            "aliases are expanded (an alias bomb?); write the values out or "
                            "use fewer aliases"
                        ]
                    )
            known = measured[id(node)] = (values, height)
        if level + known[1] - 1 > MAX_DEPTH:
            raise _at(node.start_mark, f"nested deeper than {MAX_DEPTH} levels once aliases expand")
        return known

    measure(root, 1)


def _read_text(file: Path) -> str:
    """The file's text: at most :data:`MAX_BYTES`, UTF-8 (a BOM is allowed)."""
    try:
        with file.open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(["file not found"], source=str(file)) from None
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror or exc}"], source=str(file)) from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(
            [f"the file is larger than 1 MB; a config may be at most 1 MB ({MAX_BYTES:,} bytes)"],
            source=str(file),
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [f"line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"],
            source=str(file),
        ) from None


def _read_yaml(file: Path) -> Any:
    """The plain data of one YAML file; unreadable, oversized or non-UTF-8 files, bad YAML,
    duplicate keys and alias bombs are :class:`ConfigError` naming the file (and the line)."""
    text = _read_text(file)
    loader = None
    try:
        loader = _BoundedLoader(text)  # the reader refuses control characters right away
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    except ConfigError as exc:
        raise ConfigError(exc.problems, source=str(file)) from None
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc, text)], source=str(file)) from None
    finally:
        if loader is not None:
            loader.dispose()


def _yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + 1
        char = exc.character
        code = f"#x{char:04x}" if isinstance(char, int) else f"#x{ord(char):04x}"
        return f"line {line}: invalid YAML: control character {code} is not allowed"
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    context, problem = getattr(exc, "context", None), getattr(exc, "problem", None)
    what = f"{context}: {problem}" if context and problem else problem or str(exc)
    return f"{where}invalid YAML: {what}"


# --- environment and paths ---------------------------------------------------------------------


#: Config keys whose whole value is a credential (a Slack webhook URL carries its token).
SECRET_KEYS = frozenset({"notifications.slack_webhook_url"})


class _Expansion:
    """``${VAR}`` / ``${VAR:-default}`` expansion over plain data, registering secrets as it goes:
    the value of every variable whose name says it is secret (``DB_PASSWORD``, ``API_TOKEN``),
    every URL password and secret query value, and the values of :data:`SECRET_KEYS`, so
    :func:`retrain.redact.redact` masks them wherever they turn up. ``hidden`` maps the key path
    of each value built from a secret variable to the variables' names: an error about that value
    names them instead of echoing it."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []
        self.hidden: dict[str, list[str]] = {}

    def expand(self, value: Any, path: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self.expand(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.expand(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value
        text = _ENV_REF.sub(lambda match: self._variable(match, path), value)
        for secret in url_secrets(text):
            register_secret(secret)
        if path in SECRET_KEYS:
            register_secret(text)
        return text

    def _variable(self, match: re.Match[str], path: str) -> str:
        name, default = match.group(1), match.group(2)
        if name in self.env and self.env[name] != "":
            value = self.env[name]
        elif default is not None:
            value = default
        else:
            self.problems.append(
                f"{path}: environment variable {name} is not set and has no default"
            )
            return match.group(0)
        if secret_name(name):
            register_secret(value)
            self.hidden.setdefault(path, []).append(name)
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


def _kind(value: Any) -> str:
    """``a list``, ``a string``, ... : what a value is, in words."""
    kinds = {
        list: "a list",
        str: "a string",
        bool: "true/false",
        int: "a number",
        float: "a number",
    }
    return kinds.get(type(value), type(value).__name__)


# --- pydantic errors as "<key.path>: <problem>" -------------------------------------------------


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for at, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"parquet", "sql"} and out.endswith("source"):
            continue  # discriminated-union tag, not a key the user wrote
        elif part in {"values", "range"} and at >= 2 and loc[at - 2] == "space":
            continue  # model.search.space.<name>'s tag (a list of values or a range)
        elif part.startswith("function-") or part.startswith("tagged-union") or part == "[key]":
            continue  # validator wrappers; "[key]": the key itself is wrong (said in the message)
        elif part == "class_path":
            out += ".class"  # a defaulted field is reported by name, not by its alias
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _messages(error: ValidationError, *, hidden: Mapping[str, list[str]]) -> list[str]:
    """Each error as ``<key.path>: <problem>``; a value built from a secret variable is named by
    its variables, never shown."""
    problems = []
    for item in error.errors():
        loc = _format_loc(tuple(item["loc"]))
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = "unknown key"
        elif item["type"] == "missing":
            msg = "required key is missing"
        elif "input" in item and item["type"] not in {"value_error", "assertion_error"}:
            names = hidden.get(loc)
            got = (
                "the value of " + ", ".join(f"${{{n}}}" for n in names) + ", not shown"
                if names
                else repr(item["input"])
            )
            msg = f"{msg} (got {got})"
        if item["loc"] and item["loc"][-1] == "[key]":
            msg = f"invalid key: {msg}"
        problems.append(f"{loc}: {msg}")
    return problems
