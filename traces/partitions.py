"""Spans partitioned by month of their trace's start (PostgreSQL; docs/SCALING.md, section 4).

`traces_span` is `PARTITION BY RANGE (trace_request_time)`: one partition per calendar month in
UTC, named `traces_span_pYYYYMM`, and `traces_span_default` for spans of traces outside every
month (an import of old data, a clock far off). Migration 0010 builds it; `manage.py
span_partitions` (cron, daily) creates the months ahead and gives a month found in the default
partition its own; retention (assessments.retention.services) drops whole months.

Every function here is a no-op (or answers "none") on a database that does not partition spans
(SQLite): the plain table needs none of this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone

from django.db import connection, transaction

PARENT = "traces_span"
DEFAULT = "traces_span_default"
NAME_RE = re.compile(r"^traces_span_p(\d{4})(\d{2})$")
# DDL here takes the span table's ACCESS EXCLUSIVE lock: give up rather than queue behind a long
# query (every span read and write would queue behind the waiting DDL).
LOCK_TIMEOUT = "5s"


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month in UTC: the partition of spans whose trace started in it."""

    year: int
    month: int

    @classmethod
    def of(cls, when: date | datetime) -> Month:
        if isinstance(when, datetime):
            when = when.astimezone(timezone.utc)
        return cls(when.year, when.month)

    @property
    def name(self) -> str:
        return f"traces_span_p{self.year:04d}{self.month:02d}"

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=timezone.utc)

    @property
    def end(self) -> datetime:
        return self.next().start

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def partitioned() -> bool:
    """Whether this database partitions spans (PostgreSQL after migration 0010)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [PARENT])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def months() -> list[Month]:
    """The monthly partitions that exist, oldest first (the default partition is not one)."""
    if not partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        names = [name for (name,) in cursor.fetchall()]
    found = [NAME_RE.match(name) for name in names]
    return sorted(Month(int(match[1]), int(match[2])) for match in found if match)


def months_in_default() -> list[Month]:
    """Months that have spans in the default partition (each could be a partition of its own)."""
    if not partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', trace_request_time AT TIME ZONE 'UTC') FROM {DEFAULT}"  # noqa: S608
        )
        return sorted(Month.of(when) for (when,) in cursor.fetchall())


def create(month: Month) -> int:
    """Create the month's partition; rows of that month waiting in the default partition move
    into it. Returns the number of rows moved. One transaction, under the span table's lock."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
        if month in months():
            return 0
        bounds = f"FOR VALUES FROM ('{month.start.isoformat()}') TO ('{month.end.isoformat()}')"
        waiting = "trace_request_time >= %s AND trace_request_time < %s"
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} WHERE {waiting})", [month.start, month.end])  # noqa: S608
        if not cursor.fetchone()[0]:
            cursor.execute(f"CREATE TABLE {month.name} PARTITION OF {PARENT} {bounds}")
            return 0
        # PostgreSQL refuses a partition whose rows sit in the default one: take the default out,
        # add the month, move its rows through the parent, put the default back (re-checked).
        cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {DEFAULT}")
        cursor.execute(f"CREATE TABLE {month.name} PARTITION OF {PARENT} {bounds}")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT} WHERE {waiting} RETURNING *) "  # noqa: S608
            f"INSERT INTO {PARENT} SELECT * FROM moved",
            [month.start, month.end],
        )
        moved = cursor.rowcount
        cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {DEFAULT} DEFAULT")
        return moved


def ensure(*, now: datetime, ahead: int, from_default: bool = True) -> list[tuple[Month, int]]:
    """Create the partitions of this month and the `ahead` months after it, and (from_default)
    of every month that has rows in the default partition. Returns (month, rows moved) for each
    partition created."""
    if not partitioned():
        return []
    wanted = [Month.of(now)]
    for _ in range(ahead):
        wanted.append(wanted[-1].next())
    if from_default:
        wanted += months_in_default()
    existing = set(months())
    return [(month, create(month)) for month in sorted(set(wanted) - existing)]


def drop(month: Month, *, still_droppable) -> int | None:
    """Detach and drop the month's partition if `still_droppable(month)`, asked under the span
    table's lock (so no span of that month can be written between the check and the drop).
    Returns the number of spans dropped, or None when it was not dropped."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
        if month not in months() or not still_droppable(month):
            return None
        cursor.execute(f"SELECT count(*) FROM {month.name}")  # noqa: S608
        spans = cursor.fetchone()[0]
        cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {month.name}")
        cursor.execute(f"DROP TABLE {month.name}")
        return spans
