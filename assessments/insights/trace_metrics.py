"""MLflow's QueryTraceMetrics for the ASSESSMENTS view, as a read over `selection`.

The request shapes are recorded in docs/mlflow-trace-metrics.md. Metrics: `assessment_count`
(COUNT; dimensions assessment_name, assessment_value) and `assessment_value` (AVG, MIN, MAX,
PERCENTILE over the numeric value: numbers, booleans as 1 / 0; dimension assessment_name).
Time buckets are MLflow's: floor(trace timestamp / interval) from 1970, labelled in ISO 8601.
Unlike MLflow's server, only valid (not overridden) assessments count, as everywhere here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Avg, Count, Max, Min, Q

from traces.filters.sql import JSONTypeOf, JSONValueText
from traces.models import Experiment

from ..models import Assessment
from . import rollup
from .selection import Scope, valid_rows
from .selectors import PercentileCont, _postgres, quantile
from .timerange import BucketStartMs, ms_to_datetime

COUNT_METRIC, VALUE_METRIC = "assessment_count", "assessment_value"
NAME_DIMENSION, VALUE_DIMENSION = "assessment_name", "assessment_value"
TIME_BUCKET = "time_bucket"
METRICS = {
    COUNT_METRIC: ({"COUNT"}, {NAME_DIMENSION, VALUE_DIMENSION}),
    VALUE_METRIC: ({"AVG", "MIN", "MAX", "PERCENTILE"}, {NAME_DIMENSION}),
}


@dataclass(frozen=True)
class Aggregation:
    type: str
    percentile: float | None = None

    @property
    def label(self) -> str:
        """MLflow's key in `values`: COUNT, AVG, … or P<percentile as float> (P50.0)."""
        return f"P{float(self.percentile)}" if self.type == "PERCENTILE" else self.type


@dataclass(frozen=True)
class MetricsRequest:
    experiments: list[Experiment]
    metric_name: str
    aggregations: list[Aggregation]
    dimensions: list[str]
    filter_text: str
    names: list[str] | None
    kinds: tuple[str, ...]
    interval_seconds: int | None
    start: datetime | None
    end: datetime | None
    max_results: int


def _rows(request: MetricsRequest):
    """The valid assessments of every requested experiment, in one queryset."""
    rows = None
    for experiment in request.experiments:
        scope = Scope(experiment, request.start, request.end, request.filter_text)
        these = valid_rows(scope, kinds=request.kinds, names=request.names)
        rows = these if rows is None else rows | these
    if request.metric_name == VALUE_METRIC:
        rows = rows.filter(numeric_value__isnull=False)
    return rows


def data_points(request: MetricsRequest) -> list[dict]:
    """MLflow MetricDataPoints ({metric_name, dimensions, values}), ordered by time bucket then
    dimensions, at most max_results. From the hourly rollup when it answers exactly (one query),
    else live: one query (one more for percentiles on SQLite, one more after a rollup that could
    not answer)."""
    if _rollup_serves(request):
        points = _points_from_rollup(request)
        if points is not None:
            return points
    return _live_points(request)


def _rollup_serves(request: MetricsRequest) -> bool:
    """Whole hours, buckets of whole hours, no trace filter, on PostgreSQL."""
    return (
        connection.vendor == "postgresql"
        and not request.filter_text.strip()
        and (request.start is None or rollup.whole_hour(request.start))
        and (request.end is None or rollup.whole_hour(request.end))
        and (not request.interval_seconds or request.interval_seconds % 3600 == 0)
    )


def _points_from_rollup(request: MetricsRequest) -> list[dict] | None:
    """The live answer read from the rollup, or None where the rollup cannot give it exactly:
    a value it keys inexactly (a number beyond 4 decimals, a string beyond 200 characters) that a
    minimum, maximum, percentile or value dimension needs (counts and means are exact); a number, object or array as a value
    dimension (their JSON text is not kept)."""
    by_value = VALUE_DIMENSION in request.dimensions
    keyed = bool(request.interval_seconds) or NAME_DIMENSION in request.dimensions or by_value
    tallies = rollup.read(
        [experiment.pk for experiment in request.experiments],
        request.start,
        request.end,
        names=request.names,
        kinds=request.kinds,
        step_ms=request.interval_seconds * 1000 if request.interval_seconds else None,
        by_name=NAME_DIMENSION in request.dimensions,
        group="value" if by_value else None,
        values=request.metric_name == VALUE_METRIC and any(a.type != "AVG" for a in request.aggregations),
    )
    if not keyed and not tallies:
        tallies = {(None, None, None): rollup.Tally()}  # live aggregates over no rows: one row
    points = []
    for (name, bucket_ms, value), tally in tallies.items():
        if by_value:
            kind, key = value
            if kind == "null":  # the live read leaves JSON nulls out of the value dimension
                continue
            if kind not in ("boolean", "string") or tally.inexact:
                return None
        if request.metric_name == VALUE_METRIC:
            if tally.inexact and any(a.type != "AVG" for a in request.aggregations):
                return None
            values = _value_aggregates(request.aggregations, tally)
        else:
            values = {"COUNT": float(tally.n)}
        dimensions = {}
        if request.interval_seconds:
            dimensions[TIME_BUCKET] = ms_to_datetime(bucket_ms).isoformat()
        if NAME_DIMENSION in request.dimensions:
            dimensions[NAME_DIMENSION] = name
        if by_value:
            dimensions[VALUE_DIMENSION] = json.dumps(key) if kind == "string" else key
        if values and len(points) < request.max_results:
            points.append({"metric_name": request.metric_name, "dimensions": dimensions, "values": values})
    return points


def _value_aggregates(aggregations: list[Aggregation], tally: rollup.Tally) -> dict:
    """AVG / MIN / MAX / percentiles over a tally's numbers and booleans (1 / 0), exact values."""
    numbers = [*tally.values, (1.0, tally.ups), (0.0, tally.booleans - tally.ups)]
    numbers = [(number, count) for number, count in numbers if count]
    if not numbers:
        return {}
    size = tally.numbers + tally.booleans
    out = {}
    for aggregation in aggregations:
        if aggregation.type == "AVG":
            out[aggregation.label] = (tally.total + tally.ups) / size
        elif aggregation.type == "MIN":
            out[aggregation.label] = min(number for number, _ in numbers)
        elif aggregation.type == "MAX":
            out[aggregation.label] = max(number for number, _ in numbers)
        else:
            out[aggregation.label] = tally.quantile(aggregation.percentile / 100, numbers)
    return out


def _live_points(request: MetricsRequest) -> list[dict]:
    keys = []
    annotations = {}
    if request.interval_seconds:
        annotations["bucket"] = BucketStartMs("trace__request_time", step_ms=request.interval_seconds * 1000)
        keys.append("bucket")
    if NAME_DIMENSION in request.dimensions:
        keys.append("name")
    if VALUE_DIMENSION in request.dimensions:
        annotations.update(value_type=JSONTypeOf("value"), value_text=JSONValueText("value"))
        keys.extend(["value_type", "value_text"])
    aggregates = {}
    for index, aggregation in enumerate(request.aggregations):
        if aggregation.type == "COUNT":
            aggregates[f"a{index}"] = Count("pk")
        elif aggregation.type in ("AVG", "MIN", "MAX"):
            aggregates[f"a{index}"] = {"AVG": Avg, "MIN": Min, "MAX": Max}[aggregation.type]("numeric_value")
        elif _postgres():
            aggregates[f"a{index}"] = PercentileCont("numeric_value", aggregation.percentile / 100)
    rows = _rows(request).annotate(**annotations)
    if VALUE_DIMENSION in request.dimensions:
        rows = rows.filter(~Q(value_type="null"), value_type__isnull=False)
    grouped = (
        list(rows.values(*keys).annotate(**aggregates).order_by(*keys)) if keys else [rows.aggregate(**aggregates)]
    )
    if any(a.type == "PERCENTILE" for a in request.aggregations) and not _postgres():
        by_key = {tuple(row.get(key) for key in keys): row for row in grouped}
        values = defaultdict(list)
        for row in rows.values(*keys, "numeric_value").order_by(*keys, "numeric_value"):
            values[tuple(row[key] for key in keys)].append(row["numeric_value"])
        for key, numbers in values.items():
            for index, aggregation in enumerate(request.aggregations):
                if aggregation.type == "PERCENTILE" and key in by_key:
                    by_key[key][f"a{index}"] = quantile(numbers, aggregation.percentile / 100)
    points = []
    for row in grouped:
        dimensions = {}
        if request.interval_seconds:
            dimensions[TIME_BUCKET] = ms_to_datetime(row["bucket"]).isoformat()
        if NAME_DIMENSION in request.dimensions:
            dimensions[NAME_DIMENSION] = row["name"]
        if VALUE_DIMENSION in request.dimensions:
            text = row["value_text"]
            dimensions[VALUE_DIMENSION] = json.dumps(text) if row["value_type"] == "string" else text
        values = {}
        for index, aggregation in enumerate(request.aggregations):
            value = row.get(f"a{index}")
            if value is not None:
                values[aggregation.label] = float(value)
        if values:
            points.append({"metric_name": request.metric_name, "dimensions": dimensions, "values": values})
        if len(points) >= request.max_results:
            break
    return points


def window(start_ms: int | None, end_ms: int | None) -> tuple[datetime | None, datetime | None]:
    """MLflow's inclusive [start_time_ms, end_time_ms] as [start, end + 1 ms)."""
    start = ms_to_datetime(start_ms) if start_ms is not None else None
    end = ms_to_datetime(end_ms) + timedelta(milliseconds=1) if end_ms is not None else None
    return start, end


KINDS = (Assessment.Kind.FEEDBACK, Assessment.Kind.EXPECTATION)
