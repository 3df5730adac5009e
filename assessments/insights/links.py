"""The trace-list filter behind each number on the insights page.

Every count shown is a count of distinct traces that this filter, in the one filter language,
yields on the trace list: the user's filter, the time range as `trace.timestamp_ms` bounds, and
the condition of the bar or cell. Tests compare the two counts.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from django.urls import reverse

_BARE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def quote(text: str) -> str:
    """A string literal of the filter language."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def field(entity: str, key: str) -> str | None:
    """`entity.key`, the key in backticks unless bare; None when a backtick makes it unsayable."""
    if _BARE.match(key):
        return f"{entity}.{key}"
    if "`" in key:
        return None
    return f"{entity}.`{key}`"


def literal(value) -> str:
    """A value as the language writes it: booleans and numbers unquoted, the rest quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return quote(str(value))


def epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def time_range(start: datetime | None, end: datetime | None) -> list[str]:
    """The range as conditions; bounds are whole milliseconds (the language's resolution), so
    ranges are passed already aligned to milliseconds."""
    parts = []
    if start is not None:
        parts.append(f"trace.timestamp_ms >= {epoch_ms(start)}")
    if end is not None:
        parts.append(f"trace.timestamp_ms < {epoch_ms(end)}")
    return parts


def combine(user_filter: str, *conditions: str | None) -> str | None:
    """`(user filter) AND c1 AND c2 …`; None when a condition could not be written."""
    if any(condition is None for condition in conditions):
        return None
    parts = [f"({user_filter.strip()})"] if user_filter.strip() else []
    return " AND ".join([*parts, *conditions])


def trace_list_url(experiment_id: int, filter_text: str | None) -> str | None:
    if filter_text is None:
        return None
    return reverse("traces:trace_list", args=[experiment_id]) + "?" + urlencode({"filter": filter_text})
