"""MLflow's `POST /api/3.0/mlflow/traces/metrics` (QueryTraceMetrics) for the ASSESSMENTS view.

Translation only: the request message (docs/mlflow-trace-metrics.md) becomes a
`trace_metrics.MetricsRequest`; MLflow's filter strings are rewritten field by field into the one
filter language (`trace.tag.k` → `tags.k`, `trace.metadata.k` → `metadata.k`, `trace.status` →
`status`) and parsed by it; `assessment.name` / `assessment.type` select rows.
"""

from __future__ import annotations

import re

from feedbackhub.replicas import reads_from_replica
from traces import mlflow_protocol as protocol
from traces.filters import Comparison, parse_filter

from . import trace_metrics
from .trace_metrics import METRICS, Aggregation, MetricsRequest

MlflowError = protocol.MlflowError
MAX_RESULTS = 1000
_FILTER = re.compile(r"^\s*(?P<view>trace|span|assessment)\.(?P<rest>.+)$", re.DOTALL)
_TRACE_FIELD = re.compile(r"^(?P<entity>tag|metadata)\.(?P<key>`[^`]+`|[^\s=!<>]+)(?P<tail>\s*.*)$", re.DOTALL)
_SIMPLE_FIELD = re.compile(r"^(?P<entity>status|name|type)(?P<tail>\s*(?:=|!=).*)$", re.DOTALL)
_TRACE_TAG_FIELDS = {"mlflow.traceName": "name"}
_TRACE_METADATA_FIELDS = {"mlflow.trace.session": "session_id", "mlflow.trace.user": "user_id"}


def _literal(tail: str, original: str):
    """The value of `= 'x'` parsed by the one filter language."""
    node = parse_filter(f"name {tail.strip()}")
    if not isinstance(node, Comparison) or node.operator != "=":
        raise MlflowError.invalid(f"Invalid filter {original!r}: only '=' is supported on assessment fields.")
    return node.value.value


def _translate(filters) -> tuple[str, list[str] | None, tuple[str, ...]]:
    """(trace filter in the one language, assessment names or None, assessment kinds)."""
    if filters is None:
        filters = []
    if not isinstance(filters, list) or not all(isinstance(item, str) for item in filters):
        raise MlflowError.invalid("'filters' must be a list of strings.")
    conditions, names, kinds = [], None, trace_metrics.KINDS
    for original in filters:
        match = _FILTER.match(original)
        if match is None:
            raise MlflowError.invalid(
                f"Invalid filter {original!r}: expected trace.status, trace.tag.<key>, trace.metadata.<key>, "
                "assessment.name or assessment.type."
            )
        view, rest = match["view"], match["rest"]
        if view == "span":
            raise MlflowError.invalid("Filtering by span is only supported for SPANS view type, got ASSESSMENTS")
        if view == "assessment":
            simple = _SIMPLE_FIELD.match(rest)
            if simple is None or simple["entity"] not in ("name", "type"):
                raise MlflowError.invalid(f"Invalid filter {original!r}: assessment.name or assessment.type expected.")
            value = str(_literal(simple["tail"], original))
            if simple["entity"] == "name":
                names = [value] if names is None else [name for name in names if name == value]
            else:
                kinds = tuple(kind for kind in kinds if kind == value)
            continue
        keyed = _TRACE_FIELD.match(rest)
        if keyed is not None:
            key = keyed["key"].strip("`")
            columns = _TRACE_TAG_FIELDS if keyed["entity"] == "tag" else _TRACE_METADATA_FIELDS
            target = columns.get(key) or f"{'tags' if keyed['entity'] == 'tag' else 'metadata'}.`{key}`"
            conditions.append(f"{target}{keyed['tail']}")
            continue
        simple = _SIMPLE_FIELD.match(rest)
        if simple is None or simple["entity"] != "status":
            raise MlflowError.invalid(
                f"Invalid filter {original!r}: trace.status, trace.tag.<key> or trace.metadata.<key> expected."
            )
        conditions.append(f"status{simple['tail']}")
    text = " AND ".join(f"({condition})" for condition in conditions)
    if text:
        parse_filter(text)  # a FilterError here is MLflow's INVALID_PARAMETER_VALUE (mlflow_endpoint)
    return text, names, kinds


def _aggregations(raw, allowed: set[str]) -> list[Aggregation]:
    if not isinstance(raw, list) or not raw:
        raise MlflowError.invalid("Missing value for required parameter 'aggregations'.")
    out = []
    for item in raw:
        kind = item.get("aggregation_type") if isinstance(item, dict) else None
        percentile = item.get("percentile_value") if isinstance(item, dict) else None
        if kind not in allowed:
            raise MlflowError.invalid(
                f"Found invalid aggregation_type(s): [{kind!r}]. Supported aggregation types: {sorted(allowed)}"
            )
        if kind == "PERCENTILE":
            if not isinstance(percentile, (int, float)) or isinstance(percentile, bool) or not 0 <= percentile <= 100:
                raise MlflowError.invalid("PERCENTILE needs a percentile_value between 0 and 100.")
        elif percentile is not None:
            raise MlflowError.invalid(f"percentile_value is only allowed for PERCENTILE aggregation type, got {kind}")
        out.append(Aggregation(kind, float(percentile) if kind == "PERCENTILE" else None))
    return out


@protocol.mlflow_endpoint("POST")
@reads_from_replica
def query_trace_metrics(request, message, actor):
    """QueryTraceMetrics, view ASSESSMENTS: COUNT / AVG / MIN / MAX / percentiles by assessment
    name (and value), per time bucket of the traces' timestamps."""
    experiments = [
        protocol.experiment_or_404(actor, experiment_id)
        for experiment_id in protocol.search_experiment_ids(actor, message)
    ]
    view = protocol.field(message, "view_type", required=True)
    if view != "ASSESSMENTS":
        raise MlflowError.invalid(
            f"view_type {view!r} is not supported here: FeedbackHub answers the ASSESSMENTS view."
        )
    metric = protocol.field(message, "metric_name", required=True)
    if metric not in METRICS:
        raise MlflowError.invalid(f"metric_name must be one of {list(METRICS)}, got '{metric}'")
    allowed_aggregations, allowed_dimensions = METRICS[metric]
    aggregations = _aggregations(message.get("aggregations"), allowed_aggregations)
    dimensions = message.get("dimensions") or []
    if not isinstance(dimensions, list) or set(dimensions) - allowed_dimensions:
        raise MlflowError.invalid(
            f"Found invalid dimension(s): {sorted(set(map(str, dimensions)) - allowed_dimensions)}. "
            f"Supported dimensions: {sorted(allowed_dimensions)}"
        )
    interval = protocol.field(message, "time_interval_seconds", int)
    start_ms = protocol.field(message, "start_time_ms", int)
    end_ms = protocol.field(message, "end_time_ms", int)
    if interval is not None and interval <= 0:
        raise MlflowError.invalid("time_interval_seconds must be positive.")
    if interval and (start_ms is None or end_ms is None):
        raise MlflowError.invalid("start_time_ms and end_time_ms are required if time_interval_seconds is set")
    if interval and (end_ms - start_ms) // (interval * 1000) > 100_000:
        raise MlflowError.invalid("time_interval_seconds gives more than 100000 buckets for this range.")
    max_results = protocol.field(message, "max_results", int, default=MAX_RESULTS)
    if not 1 <= max_results <= MAX_RESULTS:
        raise MlflowError.invalid(f"max_results must be between 1 and {MAX_RESULTS}.")
    filter_text, names, kinds = _translate(message.get("filters"))
    try:
        start, end = trace_metrics.window(start_ms, end_ms)
    except (OverflowError, ValueError):
        raise MlflowError.invalid("start_time_ms / end_time_ms are outside the range of dates.") from None
    points = trace_metrics.data_points(
        MetricsRequest(
            experiments=experiments,
            metric_name=metric,
            aggregations=aggregations,
            dimensions=list(dimensions),
            filter_text=filter_text,
            names=names,
            kinds=kinds,
            interval_seconds=interval,
            start=start,
            end=end,
            max_results=max_results,
        )
    )
    return protocol.json_response({"data_points": points} if points else {})
