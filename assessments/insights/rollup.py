"""Reads of the trigger-kept rollups (migrations insights 0001–0005) on PostgreSQL.

Over whole hours without a filter they serve rating-level numbers (count, positive rate, mean,
quantiles, counts per option: `read`, `tallies`), distinct-trace counts per name and value key
(`distinct_traces`) and traces per hour (`traces_in_hours`), for the insights page, the metrics
API and MLflow's QueryTraceMetrics alike. Anything else (a filter, SQLite, times inside an hour)
is read live from the assessments.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from django.db import connection

from .selection import Scope

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class Tally:
    """Ratings of one (name, bucket[, group]) from the rollup."""

    n: int = 0
    ups: int = 0
    booleans: int = 0
    numbers: int = 0
    total: float = 0.0
    values: list = field(default_factory=list)  # (number, count) for medians
    counts: dict = field(default_factory=dict)  # option → count
    inexact: int = 0  # ratings whose value the key does not carry exactly (insights 0002)
    off_grid: dict = field(default_factory=dict)  # number key → ratings above it in its cell
    kinds: set = field(default_factory=set)  # value kinds seen

    @property
    def positive_rate(self) -> float | None:
        return self.ups / self.booleans if self.booleans else None

    @property
    def mean(self) -> float | None:
        return self.total / self.numbers if self.numbers else None

    def add(self, other: Tally) -> None:
        self.n += other.n
        self.ups += other.ups
        self.booleans += other.booleans
        self.numbers += other.numbers
        self.total += other.total
        self.values.extend(other.values)
        for key, count in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + count
        self.inexact += other.inexact
        for key, count in other.off_grid.items():
            self.off_grid[key] = self.off_grid.get(key, 0) + count
        self.kinds |= other.kinds

    def quantile(self, fraction: float, values: list | None = None) -> float | None:
        """percentile_cont over the counted (number, count) `values` (by default the numbers as
        keyed: to 4 decimals)."""
        values = self.values if values is None else values
        size = sum(count for _, count in values)
        if not size:
            return None
        ordered = sorted(values)
        position = fraction * (size - 1)
        low_rank, high_rank = int(position), min(int(position) + 1, size - 1)
        seen, low, high = 0, None, None
        for number, count in ordered:
            if low is None and low_rank < seen + count:
                low = number
            if high_rank < seen + count:
                high = number
                break
            seen += count
        return low + (high - low) * (position - int(position))


def grid_key(value: float) -> float:
    """The rollup's key of a number (insights 0004): integers as they are, others floored to the
    hundredth, as PostgreSQL computes it (float8 → numeric keeps 15 significant digits)."""
    if value == math.trunc(value) or abs(value) >= 1e15:
        return value
    return float(math.floor(Decimal(format(value, ".15g")) * 100) / 100)


def whole_hour(moment: datetime | None) -> bool:
    return moment is not None and moment.minute == 0 and moment.second == 0 and moment.microsecond == 0


def serves(scope: Scope) -> bool:
    """Whether the rollup answers for this scope exactly."""
    return (
        connection.vendor == "postgresql"
        and not scope.filter_text.strip()
        and whole_hour(scope.start)
        and whole_hour(scope.end)
    )


def tallies(
    scope: Scope,
    names,
    *,
    step_ms: int | None,
    origin_ms: int = 0,
    by_source: bool = False,
    medians: bool = False,
    totals: bool = False,
) -> dict[tuple, Tally]:
    """{(name, bucket start ms or None, source type or None): Tally} of the scope's feedback."""
    return read(
        [scope.experiment.pk],
        scope.start,
        scope.end,
        names=names,
        step_ms=step_ms,
        origin_ms=origin_ms,
        group="source_type" if by_source else None,
        values=medians,
        totals=totals,
    )


# The buckets' cells summed again without the bucket: exact (bigint and numeric sums).
_TOTALS = """
        UNION ALL
        SELECT k1, NULL::bigint, k3, k4, k5, k6, k7, sum(n)::bigint,
               least(greatest(sum(total), -1e308), 1e308)::float8, sum(inexact)::bigint
        FROM cells GROUP BY k1, k3, k4, k5, k6, k7 HAVING sum(n) <> 0
"""


def read(
    experiment_ids: list[int],
    start: datetime | None,
    end: datetime | None,
    *,
    names=None,
    kinds=("feedback",),
    step_ms: int | None = None,
    origin_ms: int = 0,
    by_name: bool = True,
    group: str | None = None,
    values: bool = False,
    totals: bool = False,
) -> dict[tuple, Tally]:
    """{(name or None, bucket start ms or None, group or None): Tally} over whole hours [start,
    end) (None: unbounded), in the database's order of (bucket, name, group). `group` is "source_type" or
    "value" ((value kind, value key)); `values` reads numbers value by value (the rollup keeps a row
    per hour and distinct value), for minimum, maximum and percentiles; `totals` (with `step_ms`)
    adds the tallies over all buckets under bucket None, summed by the database from the
    buckets' exact sums (the same numbers as a read without `step_ms`, from the same scan). One
    query."""
    # date_bin on timestamps: epoch arithmetic is numeric in PostgreSQL 14+, several times slower
    bucket = "date_bin(%s, hour, %s)" if step_ms else "NULL::timestamptz"
    bucket_params = [timedelta(milliseconds=step_ms), EPOCH + timedelta(milliseconds=origin_ms)] if step_ms else []
    first, second = {"source_type": ("source_type", "''"), "value": ("value_kind", "value_key")}.get(
        group, ("NULL::text", "''")
    )
    where, params = ["experiment_id = ANY(%s)", "kind = ANY(%s)"], [list(experiment_ids), list(kinds)]
    for clause, value in (("name = ANY(%s)", names), ("hour >= %s", start), ("hour < %s", end)):
        if value is not None:
            where.append(clause)
            params.append(list(value) if clause.startswith("name") else value)
    sql = f"""
        WITH cells AS (
            SELECT {"name" if by_name else "NULL::text"} AS k1, {bucket} AS k2, {first} AS k3, {second} AS k4,
                   value_kind AS k5, value_key AS k6, {"number" if values else "0"} AS k7,
                   sum(n) AS n, sum(total) AS total, sum(inexact) AS inexact
            FROM insights_feedback_hourly
            WHERE {" AND ".join(where)}
            GROUP BY 1, 2, 3, 4, 5, 6, 7
        )
        SELECT k1, (extract(epoch FROM k2) * 1000)::bigint AS k2, k3, k4, k5, k6, k7, n::bigint, least(greatest(total, -1e308), 1e308)::float8, inexact::bigint
        FROM cells WHERE n <> 0
        {_TOTALS if totals and step_ms else ""}
        ORDER BY 2, 1, 3, 4, 5, 6, 7
    """
    out: dict[tuple, Tally] = defaultdict(Tally)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*bucket_params, *params])
        # bucket starts as epoch milliseconds: no timestamp to parse per row
        for name, bucket_ms, first, second, kind, key, number, n, total, inexact in cursor.fetchall():
            label = (first, second) if group == "value" else first
            tally = out[(name, bucket_ms, label)]
            tally.n += n
            tally.inexact += inexact
            tally.kinds.add(kind)
            if kind == "boolean":
                tally.booleans += n
                tally.ups += n if key == "true" else 0
            elif kind == "number":
                tally.numbers += n
                tally.total += total
                tally.values.append((number, n))
                if inexact:
                    tally.off_grid[number] = tally.off_grid.get(number, 0) + inexact
            elif kind == "string":
                tally.counts[key] = tally.counts.get(key, 0) + n
    return out


def distinct_traces(scope: Scope, names) -> dict[tuple[str, str], int]:
    """{(name, key): traces} of the scope's feedback from the distinct-trace rollup (insights
    0003): the number of traces with a valid rating under the name carrying the key ('' any,
    '~' a non-null value, 'b:true', 's:<text>', 'n:<integer>'). One query."""
    sql = """
        SELECT name, key, sum(traces)::bigint FROM insights_traces_hourly
        WHERE experiment_id = %s AND name = ANY(%s) AND hour >= %s AND hour < %s
        GROUP BY 1, 2 HAVING sum(traces) <> 0 ORDER BY 1, 2
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [scope.experiment.pk, list(names), scope.start, scope.end])
        return {(name, key): traces for name, key, traces in cursor.fetchall()}


def traces_in_hours(scope: Scope) -> int:
    """The number of the scope's traces, from the per-hour trace counts (insights 0005). One query."""
    sql = """
        SELECT coalesce(sum(traces), 0)::bigint FROM insights_traces_per_hour
        WHERE experiment_id = %s AND hour >= %s AND hour < %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [scope.experiment.pk, scope.start, scope.end])
        return cursor.fetchone()[0]
