"""Scoring requests in MLflow's formats, checked against the model's features.

:func:`parse_invocation` reads the JSON body MLflow's scoring server accepts (exactly one of
``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``) plus two optional lists of
one value per row, ``entity_ids`` (the split key) and ``request_ids`` (generated when absent).
Every problem raises :class:`RequestError` naming it: an unknown or missing column, a value of the
wrong type (numeric features take numbers or null, categorical features take text or null), too
many rows. Nothing is predicted or logged for a request that fails here.

The work is column by column: rows become columns with ``zip`` (C loops, no Python loop per
cell), a column's types are checked as the set of its values' types (each value is looked at
again, one by one, only to name the first bad one), numeric columns become float arrays in one
numpy call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from retrain.config import Features

__all__ = ["FORMATS", "Invocation", "Limits", "RequestError", "parse_invocation"]

#: The body keys holding the rows, as MLflow's scoring server names them.
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_EXTRA = ("entity_ids", "request_ids", "params")
_MAX_ID = 128
_NUMBER_TYPES = frozenset({int, float, type(None)})
_TEXT_TYPES = frozenset({str, type(None)})


@dataclass(frozen=True)
class Limits:
    """Request size limits: rows per request and bytes per body."""

    max_rows: int = 10_000
    max_bytes: int = 10 * 1024 * 1024


class RequestError(Exception):
    """A request the server refuses: ``status`` (4xx), ``error_code`` and a message naming
    the problem (MLflow's error body: ``{"error_code": ..., "message": ...}``)."""

    def __init__(self, message: str, *, status: int = 400, error_code: str = "BAD_REQUEST"):
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_code = error_code


@dataclass(frozen=True)
class Invocation:
    """A checked request: the feature frame (the model's columns, in config order) and one
    entity id and request id (``None``: none given) per row."""

    frame: pd.DataFrame
    entity_ids: list[str | None] | None
    request_ids: list[str] | None


def parse_invocation(body: Any, features: Features, limits: Limits) -> Invocation:
    """The rows of a decoded JSON body, checked (see the module docstring)."""
    if not isinstance(body, dict):
        raise RequestError(f"the body must be a JSON object with one of {_names(FORMATS)}")
    unknown = sorted(k for k in body if k not in FORMATS and k not in _EXTRA)
    given = [k for k in FORMATS if k in body]
    if unknown:
        raise RequestError(f"unknown field(s) {_names(unknown)}: expected one of {_names(FORMATS)}")
    if len(given) != 1:
        raise RequestError(f"give exactly one of {_names(FORMATS)}, got {len(given)}")
    if body.get("params"):
        raise RequestError("'params' are not supported by this model")
    columns = _columns(given[0], body[given[0]], features.all)
    rows = _check_columns(columns, features, limits)
    return Invocation(
        frame=_frame(columns, features),
        entity_ids=_ids(body.get("entity_ids"), rows, "entity_ids", required=False),
        request_ids=_request_ids(body.get("request_ids"), rows),
    )


# --- formats -----------------------------------------------------------------------------------


def _columns(kind: str, value: Any, order: Sequence[str]) -> dict[str, list[Any]]:
    """Column name -> values, from any of the formats."""
    if kind == "dataframe_split":
        return _from_split(value)
    if kind == "inputs" and isinstance(value, dict):
        return _from_columnar(value)
    if not isinstance(value, list):
        raise RequestError(f"'{kind}' must be a list of rows")
    if kind != "dataframe_records" and value and all(isinstance(r, list) for r in value):
        return _from_split({"columns": list(order), "data": value}, what=kind)
    return _from_records(value, kind)


def _from_split(value: Any, what: str = "dataframe_split") -> dict[str, list[Any]]:
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise RequestError(f"'{what}' must be an object with 'columns' and 'data'")
    names = value.get("columns")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RequestError(f"'{what}.columns' must be a list of column names")
    if len(set(names)) != len(names):
        raise RequestError(f"'{what}.columns' names a column twice")
    data = value["data"]
    width = len(names)
    if not all(isinstance(row, list) and len(row) == width for row in data):
        i = next(i for i, r in enumerate(data) if not isinstance(r, list) or len(r) != width)
        raise RequestError(f"'{what}' row {i} must be a list of {width} values")
    if not data:
        return {n: [] for n in names}
    return dict(zip(names, map(list, zip(*data, strict=True)), strict=True))


def _from_records(value: list[Any], what: str) -> dict[str, list[Any]]:
    if not all(isinstance(record, dict) for record in value):
        i = next(i for i, r in enumerate(value) if not isinstance(r, dict))
        raise RequestError(f"'{what}' row {i} must be an object of column: value")
    if not value:
        return {}
    keys = value[0].keys()
    if len(keys) > 1 and all(r.keys() == keys for r in value):  # the usual case: one row shape
        rows = map(itemgetter(*keys), value)
        return dict(zip(keys, map(list, zip(*rows, strict=True)), strict=True))
    names: dict[str, None] = {}
    for record in value:
        names.update(dict.fromkeys(record))
    return {n: [r.get(n) for r in value] for n in names}


def _from_columnar(value: dict[str, Any]) -> dict[str, list[Any]]:
    lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
    if -1 in lengths or len(lengths) > 1:
        raise RequestError("'inputs' as an object must map each column to a list of equal length")
    return {str(k): list(v) for k, v in value.items()}


# --- checks ------------------------------------------------------------------------------------


def _check_columns(columns: Mapping[str, list[Any]], features: Features, limits: Limits) -> int:
    """The number of rows, after checking names, row count and value types."""
    expected = features.all
    takes = _names(expected)
    unknown = [c for c in columns if c not in expected]
    if unknown:
        raise RequestError(f"unknown column(s) {_names(unknown)}; the model takes {takes}")
    missing = [c for c in expected if c not in columns]
    if missing:
        raise RequestError(f"missing column(s) {_names(missing)}; the model takes {takes}")
    rows = len(columns[expected[0]])
    if rows == 0:
        raise RequestError("the request has no rows")
    if rows > limits.max_rows:
        raise RequestError(
            f"{rows} rows: at most {limits.max_rows} per request",
            status=413,
            error_code="REQUEST_TOO_LARGE",
        )
    problems = [
        p
        for name in expected
        if (p := _type_problem(name, columns[name], numeric=name in features.numeric))
    ]
    if problems:
        raise RequestError("; ".join(problems))
    return rows


def _type_problem(name: str, values: list[Any], *, numeric: bool) -> str | None:
    """The first value of a column of the wrong type, named; ``None`` if all are fine."""
    if set(map(type, values)) <= (_NUMBER_TYPES if numeric else _TEXT_TYPES):
        return None
    for i, value in enumerate(values):
        if value is None:
            continue
        if numeric:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            wanted = "a number" if numeric else "text"
            return f"column {name!r} takes {wanted} or null: row {i} has {_shown(value)}"
    return None


def _frame(columns: Mapping[str, list[Any]], features: Features) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for name in features.all:
        if name in features.numeric:
            try:  # None becomes NaN
                data[name] = np.array(columns[name], dtype=float)
            except OverflowError:
                raise RequestError(f"column {name!r} holds a number too large") from None
        else:
            data[name] = pd.Series(columns[name], dtype=object)
    return pd.DataFrame(data)


def _ids(value: Any, rows: int, field: str, *, required: bool) -> list[str | None] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != rows:
        raise RequestError(f"'{field}' must be a list of one value per row ({rows})")
    ids: list[str | None] = []
    for i, item in enumerate(value):
        if item is None and not required:
            ids.append(None)
            continue
        if isinstance(item, bool) or not isinstance(item, str | int) or str(item) == "":
            raise RequestError(f"'{field}' row {i}: expected a non-empty id, got {_shown(item)}")
        if len(str(item)) > _MAX_ID:
            raise RequestError(f"'{field}' row {i}: longer than {_MAX_ID} characters")
        ids.append(str(item))
    return ids


def _request_ids(value: Any, rows: int) -> list[str] | None:
    ids = _ids(value, rows, "request_ids", required=True)
    if ids is None:
        return None
    if len(set(ids)) != len(ids):
        raise RequestError("'request_ids' must be unique within a request")
    return [str(i) for i in ids]


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    kind = {str: "text", bool: "true/false", list: "a list", dict: "an object"}.get(
        type(value), "a number"
    )
    text = repr(value)
    return f"{text[:40]}{'...' if len(text) > 40 else ''} ({kind})"
