"""Time ranges and buckets: 24 h, 7 d, 30 d or custom, hour / day / week buckets, the previous
period, and the SQL expression that puts a trace's request time into its bucket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from django.core.exceptions import ValidationError
from django.db import NotSupportedError
from django.db.models import BigIntegerField, Func

STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
PRESETS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
# Buckets count from these origins: hours and days from 1970-01-01 (UTC), weeks from a Monday.
ORIGINS = {"hour": datetime(1970, 1, 1, tzinfo=timezone.utc), "day": datetime(1970, 1, 1, tzinfo=timezone.utc)}
ORIGINS["week"] = datetime(1970, 1, 5, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Window:
    """[start, end) with its bucket size; `previous` is the same length just before."""

    start: datetime
    end: datetime
    interval: str
    preset: str = "custom"

    @property
    def previous(self) -> Window:
        length = self.end - self.start
        return Window(self.start - length, self.start, self.interval, self.preset)

    def buckets(self) -> list[tuple[datetime, datetime]]:
        """Every bucket overlapping the window, clipped to it, oldest first."""
        step = STEPS[self.interval]
        origin = ORIGINS[self.interval]
        first = origin + ((self.start - origin) // step) * step
        out = []
        moment = first
        while moment < self.end:
            out.append((max(moment, self.start), min(moment + step, self.end)))
            moment += step
        return out


def auto_interval(length: timedelta) -> str:
    """Hours up to two days, days up to ~three months, weeks beyond."""
    if length <= timedelta(days=2):
        return "hour"
    if length <= timedelta(days=92):
        return "day"
    return "week"


def window_for(preset: str | None, start: str | None = None, end: str | None = None, *, now: datetime) -> Window:
    """The window of a preset (ends at the next full hour, so links stay stable within the hour)
    or of custom dates (`start`/`end` as YYYY-MM-DD, end inclusive). ValidationError names the field."""
    if start or end or preset == "custom":
        first = _date(start, "start")
        last = _date(end, "end")
        if last < first:
            raise ValidationError({"end": "must not be before start"})
        if (last - first).days > 366:
            raise ValidationError({"end": "a range is at most 366 days"})
        lo = datetime.combine(first, time(), tzinfo=timezone.utc)
        hi = datetime.combine(last + timedelta(days=1), time(), tzinfo=timezone.utc)
        return Window(lo, hi, auto_interval(hi - lo), "custom")
    preset = preset or "7d"
    if preset not in PRESETS:
        raise ValidationError({"range": f"must be one of {', '.join(PRESETS)} or custom; got {preset!r}"})
    hi = now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if preset != "24h":
        hi = hi.replace(hour=0) + timedelta(days=1)
    lo = hi - PRESETS[preset]
    return Window(lo, hi, auto_interval(hi - lo), preset)


def _date(value: str | None, name: str) -> date:
    if not value:
        raise ValidationError({name: "is required for a custom range (YYYY-MM-DD)"})
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError({name: f"must be a date as YYYY-MM-DD; got {value[:40]!r}"}) from None


class BucketStartMs(Func):
    """The start (epoch milliseconds) of the bucket of `step_ms` counted from `origin_ms` that a
    datetime column falls in."""

    output_field = BigIntegerField()

    def __init__(self, expression, *, step_ms: int, origin_ms: int = 0):
        super().__init__(expression)
        self.step_ms, self.origin_ms = int(step_ms), int(origin_ms)

    def as_sql(self, compiler, connection, **extra_context):
        raise NotSupportedError("Insights support PostgreSQL and SQLite only.")

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        ms = f"floor(extract(epoch from {sql}) * 1000)"
        return f"(floor(({ms} - %s) / %s) * %s + %s)::bigint", (
            *params,
            self.origin_ms,
            self.step_ms,
            self.step_ms,
            self.origin_ms,
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        params = list(params)
        # Django stores 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC: whole seconds from strftime('%s'),
        # the milliseconds from the fraction.
        ms = f"(CAST(strftime('%%s', {sql}) AS INTEGER) * 1000 + CAST(substr(strftime('%%f', {sql}), 4, 3) AS INTEGER))"
        offset, offset_params = f"({ms} - %s)", [*params, *params, self.origin_ms]
        # integer division truncates toward zero: one bucket back for times before the origin
        return (
            f"(({offset} / %s - CASE WHEN {offset} < 0 AND {offset} %% %s <> 0 THEN 1 ELSE 0 END) * %s + %s)",
            [*offset_params, self.step_ms, *offset_params, *offset_params, self.step_ms, self.step_ms, self.origin_ms],
        )


def ms_to_datetime(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=int(ms))


def step_ms(interval: str) -> int:
    return int(STEPS[interval] / timedelta(milliseconds=1))


def origin_ms(interval: str) -> int:
    return int((ORIGINS[interval] - ORIGINS["hour"]) / timedelta(milliseconds=1))
