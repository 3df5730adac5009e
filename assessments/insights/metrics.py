"""The metrics API's buckets (`GET /api/v1/experiments/{id}/metrics`): one feedback name per time
bucket, from the hourly rollup where it serves (whole hours, no filter), else live."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, F, Q

from traces.filters.sql import JSONKeyText, JSONValueText

from . import rollup
from .selection import BOOLEAN, CATEGORY, NUMBER, NameType, Scope, feedback_rows
from .selectors import PercentileCont, _postgres, _typed, _value_aggregates, quantile
from .timerange import BucketStartMs, ms_to_datetime, origin_ms, step_ms


def metric_buckets(scope: Scope, typed: NameType, interval: str, group: tuple[str, str] | None = None) -> list[dict]:
    """Buckets of one name for the metrics API: start, count (ratings), traces, and by type
    positive_rate / mean + median / counts per option; `group` splits each bucket by
    source_type, a tag or a metadata key. Two queries. Raises FilterError."""
    if rollup.serves(scope) and (group is None or group[0] == "source_type"):
        return _metric_buckets_from_rollup(scope, typed, interval, group)
    rows = _typed(feedback_rows(scope, names=[typed.name]))
    bucket = BucketStartMs("trace__request_time", step_ms=step_ms(interval), origin_ms=origin_ms(interval))
    rows = rows.annotate(bucket=bucket)
    keys = ["bucket"]
    if group is not None:
        kind, key = group
        if kind == "source_type":
            rows = rows.annotate(group=F("source_type"))
        else:
            rows = rows.annotate(group=JSONKeyText("trace__tags" if kind == "tag" else "trace__metadata", key))
        keys.append("group")
    aggregates = _value_aggregates()
    if typed.type == NUMBER and _postgres():
        aggregates["median"] = PercentileCont("numeric_value", 0.5, filter=Q(value_type="number"))
    out = {}
    for row in rows.values(*keys).annotate(**aggregates).order_by(*keys):
        entry = {"start": ms_to_datetime(row["bucket"]), "count": row["n"]}
        if group is not None:
            entry["group"] = row["group"]
        if typed.type == BOOLEAN:
            entry["positive_rate"] = row["ups"] / row["booleans"] if row["booleans"] else None
        elif typed.type == NUMBER:
            entry["mean"] = row["mean"]
            entry["median"] = row.get("median")
        else:
            entry["counts"] = {}
        out[tuple(row[k] for k in keys)] = entry
    if typed.type == NUMBER and not _postgres():
        values = defaultdict(list)
        for row in rows.filter(value_type="number").values(*keys, "numeric_value").order_by(*keys, "numeric_value"):
            values[tuple(row[k] for k in keys)].append(row["numeric_value"])
        for key, numbers in values.items():
            out[key]["median"] = quantile(numbers, 0.5)
    if typed.type == CATEGORY:
        for row in (
            rows.filter(value_type="string")
            .values(*keys, text=JSONValueText("value"))
            .annotate(n=Count("pk"))
            .order_by(*keys, "text")
        ):
            out[tuple(row[k] for k in keys)]["counts"][row["text"]] = row["n"]
    return list(out.values())


def _metric_buckets_from_rollup(scope: Scope, typed: NameType, interval: str, group) -> list[dict]:
    tallies = rollup.tallies(
        scope,
        [typed.name],
        step_ms=step_ms(interval),
        origin_ms=origin_ms(interval),
        by_source=group is not None,
        medians=typed.type == NUMBER,
    )
    out = []
    for (_, bucket_ms, source), tally in sorted(tallies.items(), key=lambda item: (item[0][1], item[0][2] or "")):
        entry = {"start": ms_to_datetime(bucket_ms), "count": tally.n}
        if group is not None:
            entry["group"] = source
        if typed.type == BOOLEAN:
            entry["positive_rate"] = tally.positive_rate
        elif typed.type == NUMBER:
            entry["mean"], entry["median"] = tally.mean, tally.quantile(0.5)
        else:
            entry["counts"] = dict(sorted(tally.counts.items()))
        out.append(entry)
    return out
