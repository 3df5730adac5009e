"""Reads of the trigger-kept hourly rollup (migration insights 0001) on PostgreSQL.

It serves rating-level numbers (count, positive rate, mean, median, counts per option) over
whole hours without a filter; anything else (a filter, SQLite, times inside an hour, counts of
distinct traces) is read live from the assessments.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection

from .selection import Scope


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

    @property
    def positive_rate(self) -> float | None:
        return self.ups / self.booleans if self.booleans else None

    @property
    def mean(self) -> float | None:
        return self.total / self.numbers if self.numbers else None

    def quantile(self, fraction: float) -> float | None:
        """percentile_cont over the counted values (the values as stored to 4 decimals)."""
        if not self.numbers:
            return None
        ordered = sorted(self.values)
        position = fraction * (self.numbers - 1)
        low_rank, high_rank = int(position), min(int(position) + 1, self.numbers - 1)
        seen, low, high = 0, None, None
        for number, count in ordered:
            if low is None and low_rank < seen + count:
                low = number
            if high_rank < seen + count:
                high = number
                break
            seen += count
        return low + (high - low) * (position - int(position))


def _whole_hour(moment: datetime | None) -> bool:
    return moment is not None and moment.minute == 0 and moment.second == 0 and moment.microsecond == 0


def serves(scope: Scope) -> bool:
    """Whether the rollup answers for this scope exactly."""
    return (
        connection.vendor == "postgresql"
        and not scope.filter_text.strip()
        and _whole_hour(scope.start)
        and _whole_hour(scope.end)
    )


def tallies(
    scope: Scope, names, *, step_ms: int | None, origin_ms: int = 0, by_source: bool = False, medians: bool = False
) -> dict[tuple, Tally]:
    """{(name, bucket start ms or None, source type or None): Tally}. One query; numbers are
    read value by value only for `medians` (the rollup keeps a row per distinct value)."""
    bucket = "(floor((extract(epoch from hour) * 1000 - %s) / %s) * %s + %s)::bigint" if step_ms else "NULL::bigint"
    bucket_params = [origin_ms, step_ms, step_ms, origin_ms] if step_ms else []
    source = "source_type" if by_source else "NULL::text"
    sql = f"""
        SELECT name, {bucket} AS bucket, {source} AS grp, value_kind, value_key, {"number" if medians else "0"},
               sum(n)::bigint, least(greatest(sum(total), -1e308), 1e308)::float8
        FROM insights_feedback_hourly
        WHERE experiment_id = %s AND name = ANY(%s) AND hour >= %s AND hour < %s
        GROUP BY 1, 2, 3, 4, 5, 6
        HAVING sum(n) <> 0
    """
    out: dict[tuple, Tally] = defaultdict(Tally)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*bucket_params, scope.experiment.pk, list(names), scope.start, scope.end])
        for name, bucket_ms, group, kind, key, number, n, total in cursor.fetchall():
            tally = out[(name, bucket_ms, group)]
            tally.n += n
            if kind == "boolean":
                tally.booleans += n
                tally.ups += n if key == "true" else 0
            elif kind == "number":
                tally.numbers += n
                tally.total += total
                tally.values.append((number, n))
            elif kind == "string":
                tally.counts[key] = tally.counts.get(key, 0) + n
    return out
