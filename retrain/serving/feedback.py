"""Feedback: the true labels of answered predictions, stored next to the prediction log.

A label names the prediction it answers by ``request_id`` (one row of the log) or
``entity_id`` (every prediction for that entity; the judge picks by time), or both. The body of
``POST /feedback`` is ``{"labels": [{"request_id": "...", "label": 1}, ...]}`` (or one such
object); labels are written to ``retrain_labels`` at once (bound parameters, one transaction),
so an answered feedback request is stored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from retrain.serving.inputs import Limits, RequestError
from retrain.serving.tables import LABELS

__all__ = ["Label", "parse_labels", "store_labels"]

_KEYS = frozenset({"request_id", "entity_id", "label"})
_MAX_ID = 128


@dataclass(frozen=True)
class Label:
    """The true ``label`` of a request id and/or an entity id."""

    label: Any
    request_id: str | None = None
    entity_id: str | None = None


def parse_labels(body: Any, limits: Limits) -> list[Label]:
    """The labels of a decoded JSON body; :class:`RequestError` naming the first bad one."""
    items = body.get("labels") if isinstance(body, dict) and "labels" in body else [body]
    if not isinstance(items, list) or not items:
        raise RequestError("'labels' must be a non-empty list of {request_id/entity_id, label}")
    if len(items) > limits.max_rows:
        raise RequestError(
            f"{len(items)} labels: at most {limits.max_rows} per request",
            status=413,
            error_code="REQUEST_TOO_LARGE",
        )
    return [_label(item, i) for i, item in enumerate(items)]


def store_labels(engine: sa.Engine, model: str, labels: Sequence[Label]) -> int:
    """Insert ``labels`` for ``model`` in one transaction; the number stored."""
    now = datetime.now(UTC)
    rows = [
        {
            "model": model,
            "request_id": label.request_id,
            "entity_id": label.entity_id,
            "label": json.dumps(label.label),
            "received_at": now,
        }
        for label in labels
    ]
    with engine.begin() as conn:
        conn.execute(LABELS.insert(), rows)
    return len(rows)


def _label(item: Any, i: int) -> Label:
    if not isinstance(item, dict):
        raise RequestError(f"label {i} must be an object with request_id/entity_id and label")
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise RequestError(f"label {i}: unknown field(s) {', '.join(map(repr, unknown))}")
    ids = {key: _id(item.get(key), key, i) for key in ("request_id", "entity_id")}
    if ids["request_id"] is None and ids["entity_id"] is None:
        raise RequestError(f"label {i} needs a request_id or an entity_id")
    value = item.get("label")
    finite = not isinstance(value, float) or math.isfinite(value)
    if not isinstance(value, str | int | float) or not finite:
        raise RequestError(f"label {i}: 'label' must be a number, text or true/false")
    return Label(label=value, request_id=ids["request_id"], entity_id=ids["entity_id"])


def _id(value: Any, key: str, i: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise RequestError(f"label {i}: {key!r} must be a non-empty string")
    if len(str(value)) > _MAX_ID:
        raise RequestError(f"label {i}: {key!r} is longer than {_MAX_ID} characters")
    return str(value)
