"""The one JSON codec for step results, used only at the XCom edge.

Results are frozen dataclasses; pydantic's ``TypeAdapter`` turns them into JSON-safe values and
validates them back into the same types (enums, datetimes, tuples and nested results included),
so a task that receives another task's XCom gets exactly the object that task returned.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from retrain.errors import DataError

__all__ = ["decode", "encode"]

T = TypeVar("T")


_ADAPTERS: dict[object, TypeAdapter[Any]] = {}


def _adapter(kind: Any) -> TypeAdapter[Any]:
    """One adapter per type (building one costs a schema build)."""
    if kind not in _ADAPTERS:
        _ADAPTERS[kind] = TypeAdapter(kind)
    return _ADAPTERS[kind]


def encode(value: object) -> Any:
    """``value`` (a step result, or ``None``) as JSON-safe builtins."""
    if value is None:
        return None
    return _adapter(type(value)).dump_python(value, mode="json")


def decode(kind: type[T], data: Any, *, what: str = "step result") -> T:
    """``data`` (from :func:`encode`) validated back into ``kind``."""
    try:
        value: T = _adapter(kind).validate_python(data)
    except ValidationError as exc:
        raise DataError(
            [f"{what}: not a valid {kind.__name__}: {exc.errors()[0].get('msg')}"]
        ) from None
    return value
