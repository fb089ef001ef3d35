"""The configuration reference: every config key with its type, default and meaning.

Generated from the schema's field annotations (with the bounds a number must keep), defaults
and docstrings; ``retrain config reference`` prints it and ``tools/update_readme.py`` writes it
into the README.
"""

from __future__ import annotations

import json
import types
import typing
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from retrain.config.schema import RetrainConfig, Section

_UNIONS = (typing.Union, types.UnionType)


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0])
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (list, tuple):
        return f"list[{_type_name(args[0])}]" if args else "list"
    if origin is dict:
        return f"map[{_type_name(args[0])}, {_type_name(args[1])}]"
    if origin in _UNIONS:
        return " | ".join(_type_name(a) for a in args)
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " | ".join(repr(member.value) for member in annotation)
    return getattr(annotation, "__name__", str(annotation))


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _bounds(field: FieldInfo) -> str:
    """`` (0 < x <= 300)`` or `` (x >= 1)``: the bounds a number must keep (pydantic's
    ge/gt/le/lt), or ``""``."""
    lower: tuple[str, str] | None = None
    upper: tuple[str, str] | None = None
    for item in field.metadata:
        for attr, op in (("ge", "<="), ("gt", "<")):
            if getattr(item, attr, None) is not None:
                lower = (op, _number(getattr(item, attr)))
        for attr, op in (("le", "<="), ("lt", "<")):
            if getattr(item, attr, None) is not None:
                upper = (op, _number(getattr(item, attr)))
    if lower and upper:
        return f" ({lower[1]} {lower[0]} x {upper[0]} {upper[1]})"
    if lower:
        return f" (x {lower[0].replace('<', '>')} {lower[1]})"
    if upper:
        return f" (x {upper[0]} {upper[1]})"
    return ""


def _default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, dict) and value and isinstance(next(iter(value.values())), BaseModel):
        return "see below"
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, Enum):
        value = value.value
    return json.dumps(value) if not isinstance(value, str) else f"`{value}`"


def _sections(annotation: Any) -> list[type[Section]]:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _sections(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return [annotation]
    if origin in _UNIONS:
        return [s for a in typing.get_args(annotation) for s in _sections(a)]
    return []


def _first_line(cls: type) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


def reference_rows(
    model: type[BaseModel] = RetrainConfig, prefix: str = ""
) -> list[tuple[str, str, str, str]]:
    """``(key, type, default, description)`` for every config key, in file order."""
    rows: list[tuple[str, str, str, str]] = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        key = f"{prefix}{field.alias or name}"
        annotation = field.annotation
        description = " ".join((field.description or "").split())
        nested = _sections(annotation)
        if nested:
            doc = description or " / ".join(_first_line(n) for n in nested)
            rows.append((key, "section", _default_text(field), doc))
            for section in nested:
                sub = key
                if len(nested) > 1:
                    kind = typing.get_args(section.model_fields["kind"].annotation)[0]
                    sub = f"{key} (kind: {kind})"
                rows.extend(reference_rows(section, f"{sub}."))
            continue
        if typing.get_origin(annotation) is dict:
            value_type = typing.get_args(annotation)[1]
            inner = _sections(value_type)
            if inner:
                key_type = typing.get_args(annotation)[0]
                placeholder = "<statistic>" if typing.get_origin(key_type) is Literal else "<name>"
                doc = description or _first_line(inner[0])
                rows.append((key, f"map[name, {inner[0].__name__}]", _default_text(field), doc))
                rows.extend(reference_rows(inner[0], f"{key}.{placeholder}."))
                continue
        type_ = _type_name(annotation) + _bounds(field)
        rows.append((key, type_, _default_text(field), description))
    return rows


def reference_markdown() -> str:
    """The configuration reference as a Markdown table (generated into the README)."""
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, type_, default, description in reference_rows():
        cells = [
            f"`{key}`",
            type_.replace("|", "\\|"),
            default.replace("|", "\\|"),
            description.replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
