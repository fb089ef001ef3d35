"""The one way a time is read: ISO-8601 or a datetime, naive taken as UTC, aware UTC out.

A run's ``as_of``, a watermark, a signals file's ``now`` or a trigger form value all go through
:func:`parse_time`; a value that is not a time is a :class:`~retrain.errors.DataError` that names
where it came from and what it was.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from retrain.errors import DataError

__all__ = ["iso_z", "now_utc", "parse_time", "to_utc"]


def parse_time(value: object, *, what: str = "time") -> datetime:
    """An aware UTC datetime from ``value`` (a datetime, or an ISO-8601 string; ``Z`` allowed).

    Naive values are taken as UTC. Anything else raises :class:`DataError` naming ``what``, and
    so does a time that has no UTC equivalent a datetime can hold (``9999-12-31T23:59-05:00``).
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text else "-")
        except ValueError:
            raise DataError([f"{what}: not an ISO-8601 time: {value!r}"]) from None
    elif isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        raise DataError([f"{what}: expected an ISO-8601 time, got {value!r}"])
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:
        raise DataError(
            [f"{what}: {value!s} is out of range (in UTC it falls outside the years 1-9999)"]
        ) from None


def to_utc(value: object, *, what: str = "time") -> datetime | None:
    """:func:`parse_time`, with ``None`` (and an empty string) passed through as ``None``."""
    if value is None or value == "":
        return None
    return parse_time(value, what=what)


def iso_z(value: object, *, what: str = "time") -> str:
    """``value`` as ISO-8601 UTC with a ``Z`` suffix (the form stored in registry tags)."""
    return parse_time(value, what=what).isoformat().replace("+00:00", "Z")


def now_utc() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)
