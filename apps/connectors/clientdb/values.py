"""Values in and out of a client database.

In: what a person or an agent gave, coerced to the column's reflected type (a clear
ClientDatabaseError when it cannot be). Out: JSON-ready values, in the canonical type
where that is obvious.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeEngine

from ..errors import ClientDatabaseError

_INTEGER = re.compile(r"^[+-]?\d+$")
_TRUE, _FALSE = {"true", "1", "yes", "y", "t", "on"}, {"false", "0", "no", "n", "f", "off"}


def coerce(value: Any, type_: TypeEngine, engine: str, where: str, canonical: str | None = None) -> Any:
    """A value a person or an agent gave, as the column's type wants it (ClientDatabaseError if it cannot).

    `canonical` is the field's canonical type: a canonical boolean kept in an integer column (MySQL's
    TINYINT(1)) takes true/false like a boolean column.
    """
    if value is None:
        return None

    def refuse(what: str) -> ClientDatabaseError:
        shown = value if isinstance(value, int | float | Decimal) else repr(value)[:60]
        return ClientDatabaseError(f"{where} takes {what}; {shown} is not one.")

    if isinstance(value, dict | list | tuple | set) and not isinstance(type_, sa.JSON):
        raise refuse("a single value")
    if isinstance(type_, sa.Boolean) or (canonical == "boolean" and isinstance(type_, sa.Integer)):
        as_int = not isinstance(type_, sa.Boolean)
        if isinstance(value, bool):
            return int(value) if as_int else value
        if isinstance(value, int) and value in (0, 1):
            return value if as_int else bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            truth = value.strip().lower() in _TRUE
            return int(truth) if as_int else truth
        raise refuse("true or false")
    if isinstance(type_, sa.Integer):
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float | Decimal) and value == int(value):
            return int(value)
        if isinstance(value, str) and _INTEGER.match(value.strip()):
            return int(value.strip())
        raise refuse("a whole number")
    if isinstance(type_, sa.Numeric):
        if isinstance(value, bool):
            raise refuse("a number")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise refuse("a number") from None
        if not number.is_finite():
            raise refuse("a finite number")
        # sqlite3 cannot bind a Decimal; the column's numeric affinity turns the text into a number.
        return str(number) if engine == "sqlite" else number
    if isinstance(type_, sa.DateTime):
        moment = _datetime(value)
        if moment is None:
            raise refuse("a date and time (ISO 8601, e.g. 2025-01-31T14:00:00Z)")
        if engine != "postgresql" and moment.tzinfo is not None:
            # MySQL DATETIME and SQLite text keep no zone: store UTC.
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return moment.isoformat(sep=" ") if engine == "sqlite" else moment
    if isinstance(type_, sa.Date):
        day = _date(value)
        if day is None:
            raise refuse("a date (ISO 8601, e.g. 2025-01-31)")
        return day.isoformat() if engine == "sqlite" else day
    if isinstance(type_, sa.Time):
        try:
            moment_of_day = value if isinstance(value, time) else time.fromisoformat(str(value))
        except ValueError:
            raise refuse("a time of day (e.g. 14:30)") from None
        return moment_of_day.isoformat() if engine == "sqlite" else moment_of_day
    if isinstance(type_, sa.JSON):
        return value
    if isinstance(type_, sa.String) or engine == "sqlite":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float | Decimal):
            return str(value) if isinstance(type_, sa.String) else value
        if isinstance(value, datetime | date | time):
            return value.isoformat()
    return value


def _datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text)
        except ValueError:
            moment = _datetime(text)
            return moment.date() if moment else None
    return None


def to_json(value: Any, canonical: str | None, type_: TypeEngine | None = None) -> Any:
    """A value read from the database, JSON-ready and in the canonical type where that is obvious."""
    if value is None:
        return None
    if isinstance(value, float) and isinstance(type_, sa.Numeric) and not isinstance(type_, sa.Float):
        # SQLite keeps NUMERIC(10, 2) as a binary float: back to the column's decimal places.
        value = Decimal(repr(value))
        if type_.scale:
            value = value.quantize(Decimal(1).scaleb(-type_.scale))
    if canonical == "boolean" and isinstance(value, int) and value in (0, 1):
        return bool(value)
    if canonical == "integer" and isinstance(value, Decimal | float) and value == int(value):
        return int(value)
    if canonical == "date" and isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)
