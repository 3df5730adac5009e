"""The MLflow REST protocol for experiments and traces (see docs/CLIENTS.md).

An app that uses the `mlflow` client reaches FeedbackHub with `MLFLOW_TRACKING_URI`
and `MLFLOW_TRACKING_TOKEN` (an API key). This module holds the protocol plumbing
(the `mlflow_endpoint` decorator: authentication, JSON bodies, MLflow's error shape
and status codes), the JSON shapes of experiments, trace infos and spans, MLflow's
search ordering and page tokens, and the trace-tag endpoints. The server endpoints live in
`traces.mlflow_server`, the experiment endpoints in `traces.mlflow_experiments`, the ones that
read or write assessments in `assessments.mlflow_protocol`.

It only translates: every read goes through `traces.selectors`, every write through
`traces.services`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import logging
import re
from datetime import datetime, timedelta, timezone

from django.db.models import (
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    QuerySet,
    Value,
)
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import AuthenticationFailed

from feedbackhub import values
from feedbackhub.errors import DATABASE_ERRORS, translate
from feedbackhub.timeouts import SearchTimeout

from . import selectors, services
from .access import Actor
from .authentication import actor_for_key, api_key_credential
from .filters import FilterError, JSONKeyText
from .models import Experiment, Span, Trace

logger = logging.getLogger(__name__)

# The client sends spans over OTLP only to servers that report >= 3.4.
MLFLOW_VERSION = "3.18.0"
MAX_SEARCH_RESULTS = 500
DEFAULT_SEARCH_RESULTS = 100
MAX_BATCH_TRACES = 100
MAX_OFFSET = 10**9

# Server-owned tags of a trace info.
TAG_TRACE_NAME = "mlflow.traceName"
TAG_ARTIFACT_LOCATION = "mlflow.artifactLocation"
TAG_SPANS_LOCATION = "mlflow.trace.spansLocation"
TRACKING_STORE = "TRACKING_STORE"
SERVER_TAGS = frozenset({TAG_ARTIFACT_LOCATION, TAG_SPANS_LOCATION})

# MLflow's error code → HTTP status (mlflow.protos.databricks_pb2 and the server's mapping).
STATUS_FOR_CODE = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "MALFORMED_REQUEST": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "NOT_FOUND": 404,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "RESOURCE_CONFLICT": 409,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL_ERROR": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
}


class MlflowError(Exception):
    """An answer in MLflow's error shape: {"error_code": …, "message": …} with its HTTP status."""

    def __init__(self, error_code: str, message: str, status: int | None = None):
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.status = status or STATUS_FOR_CODE.get(error_code, 400)

    @classmethod
    def invalid(cls, message: str) -> MlflowError:
        return cls("INVALID_PARAMETER_VALUE", message)

    @classmethod
    def not_found(cls, message: str) -> MlflowError:
        return cls("RESOURCE_DOES_NOT_EXIST", message)


def error_response(error: MlflowError) -> JsonResponse:
    return JsonResponse({"error_code": error.error_code, "message": error.message}, status=error.status)


# --- the request plumbing ------------------------------------------------------------------


def request_actor(request) -> Actor:
    """The API key behind `Authorization: Bearer <key>` (MLFLOW_TRACKING_TOKEN) or HTTP basic
    auth whose password is the key (MLFLOW_TRACKING_USERNAME/PASSWORD); 401 otherwise."""
    raw = api_key_credential(request)
    if raw is None:
        raise MlflowError(
            "UNAUTHENTICATED",
            "Authentication required: set MLFLOW_TRACKING_TOKEN to a FeedbackHub API key "
            "(it is sent as 'Authorization: Bearer <key>').",
        )
    try:
        return actor_for_key(raw)
    except AuthenticationFailed as exc:
        raise MlflowError("UNAUTHENTICATED", str(exc.detail)) from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _json_body(request, *, export: bool = False) -> dict:
    """The request's JSON object. Hostile values (feedbackhub.values) are a 400 naming their
    place, except in an `export` (StartTrace), whose conversion replaces and marks them."""
    if not request.body:
        return {}
    if request.content_type != "application/json":
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"Bad Request. Content-Type must be one of ['application/json'] (got {request.content_type or 'none'!r}).",
        )
    try:
        body = json.loads(request.body, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MlflowError("MALFORMED_REQUEST", f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise MlflowError("MALFORMED_REQUEST", "The request body must be a JSON object.")
    found = None if export else values.problem(body)
    if found is not None:
        raise MlflowError.invalid(f"'{found[0] or 'body'}' {found[1]}.")
    return body


def _query_message(request) -> dict:
    """GET parameters as a request message: repeated keys become lists."""
    message = {}
    for key in request.GET:
        items = request.GET.getlist(key)
        message[key] = items if len(items) > 1 else items[0]
    return values.scrubbed(message)


def mlflow_endpoint(*methods: str, auth: bool = True, body: bool = True, export: bool = False):
    """Wrap a view `(request, message, actor, **kwargs)` with MLflow's conventions.

    `message` is the request message: the JSON body for POST/PATCH/DELETE (Content-Type
    must be application/json, as MLflow requires), the query parameters for GET. Every
    service exception becomes MLflow's error JSON with MLflow's status, so a client
    mistake is never a 500 (the client would retry it for minutes). `export` marks a span or
    trace export, whose hostile values are replaced instead of refused (feedbackhub.values).
    """

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                if request.method not in methods:
                    raise MlflowError(
                        "ENDPOINT_NOT_FOUND",
                        f"{request.method} is not supported on {request.path}; use {' or '.join(methods)}.",
                        status=405,
                    )
                if any("\x00" in str(value) or len(str(value)) > 1000 for value in kwargs.values()):
                    raise MlflowError.not_found(f"Nothing at {request.path[:200]!r}.")
                actor = request_actor(request) if auth else None
                if not body:
                    message = {}
                elif request.method == "GET":
                    message = _query_message(request)
                else:
                    message = _json_body(request, export=export)
                return view(request, message, actor, *args, **kwargs)
            except FilterError as exc:
                return error_response(MlflowError.invalid(f"Invalid filter: {exc}"))
            except SearchTimeout as exc:
                return error_response(MlflowError.invalid(exc.message))
            except Exception as exc:
                # the one translation (feedbackhub.errors); a lost database is the middleware's 503
                answer = None if isinstance(exc, DATABASE_ERRORS) else translate(exc)
                if answer is None:
                    raise
                return error_response(MlflowError(answer.mlflow_code, answer.message, status=answer.mlflow_status))

        return wrapper

    return decorate


def json_response(data: dict, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False})


def field(message: dict, name: str, kind=str, *, required: bool = False, default=None):
    """A typed field of a request message; 400 naming it when it has the wrong type."""
    value = message.get(name)
    if value is None or value == "":
        if required:
            raise MlflowError.invalid(f"Missing value for required parameter '{name}'.")
        return default
    if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if kind is int and isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value)
    if kind is bool and isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MlflowError.invalid(f"Invalid value {value!r} for parameter '{name}': expected {kind.__name__}.")
    return value


# --- time ----------------------------------------------------------------------------------

_FRACTION = re.compile(r"\.(\d+)")


def timestamp_json(value: datetime) -> str:
    """A protobuf Timestamp's JSON form at millisecond precision: 2026-11-26T14:22:33.625Z."""
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_timestamp(value, name: str) -> datetime | None:
    """An RFC 3339 string (protobuf Timestamp JSON) or epoch milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise MlflowError.invalid(f"'{name}' {value!r} is out of range.") from None
    if not isinstance(value, str):
        raise MlflowError.invalid(f"'{name}' must be an RFC 3339 timestamp such as 2026-01-01T00:00:00.000Z.")
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.strip()).replace("z", "Z")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise MlflowError.invalid(
            f"'{name}' {value[:40]!r} is not an RFC 3339 timestamp such as 2026-01-01T00:00:00.000Z."
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def duration_json(milliseconds: int) -> str:
    """A protobuf Duration's JSON form: 0.068s."""
    seconds, rest = divmod(int(milliseconds), 1000)
    return f"{seconds}.{rest:03d}s" if rest else f"{seconds}s"


def parse_duration(value, name: str) -> int | None:
    """A protobuf Duration ("0.068s") in whole milliseconds."""
    if value is None or value == "":
        return None
    text = value.strip().removesuffix("s") if isinstance(value, str) else value
    try:
        milliseconds = round(float(text) * 1000)
    except (TypeError, ValueError, OverflowError):
        raise MlflowError.invalid(f"'{name}' {value!r} is not a duration such as \"0.068s\".") from None
    if milliseconds < 0 or milliseconds > 10**15:
        raise MlflowError.invalid(f"'{name}' {value!r} is out of range.")
    return milliseconds


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


# --- experiments -----------------------------------------------------------------------------


DEFAULT_EXPERIMENT_ID = "0"


def resolve_experiment_id(actor: Actor, experiment_id) -> str:
    """MLflow's Default experiment ("0", used when the app never calls set_experiment) is the
    key's experiment when the key is scoped to exactly one. 404 for ids that cannot exist."""
    if not (str(experiment_id).isascii() and str(experiment_id).isdigit()) or len(str(experiment_id)) > 18:
        raise MlflowError.not_found(f"No Experiment with id={str(experiment_id)[:40]} exists")
    if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
        if actor.api_key is not None and len(actor.key_experiment_ids) == 1:
            return str(next(iter(actor.key_experiment_ids)))
        raise MlflowError.not_found(
            "No Experiment with id=0 exists: MLflow's Default experiment stands for the API key's experiment, "
            f"but this key is scoped to {len(actor.key_experiment_ids)} experiments. "
            "Call mlflow.set_experiment(...) or set MLFLOW_EXPERIMENT_NAME."
        )
    return str(experiment_id)


def ingest_experiment_or_404(actor: Actor, experiment_id) -> Experiment:
    """The experiment a StartTraceV3 or traces.json upload writes to (services.experiment_for_ingest),
    with MLflow's not-found answer."""
    try:
        return services.experiment_for_ingest(actor, experiment_id=experiment_id)
    except Http404 as exc:
        if str(experiment_id).strip() == DEFAULT_EXPERIMENT_ID:
            raise MlflowError.not_found(str(exc)) from None
        raise MlflowError.not_found(f"No Experiment with id={str(experiment_id)[:40]} exists") from None


def experiment_or_404(actor: Actor, experiment_id) -> Experiment:
    experiment_id = resolve_experiment_id(actor, experiment_id)
    try:
        return selectors.experiment_for(actor, experiment_id)
    except Http404:
        raise MlflowError.not_found(f"No Experiment with id={experiment_id} exists") from None


# --- trace infos and spans -------------------------------------------------------------------


def artifact_location(experiment_id, trace_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_id}/traces/{trace_id}/artifacts"


def trace_info_json(trace: Trace, *, assessments: list[dict] = (), spans_location: bool = True) -> dict:
    """A TraceInfoV3 in proto JSON. `spans_location` adds spansLocation=TRACKING_STORE, which
    makes the client read spans from this server instead of a traces.json artifact."""
    tags = dict(trace.tags)
    if trace.name:
        tags[TAG_TRACE_NAME] = trace.name
    tags[TAG_ARTIFACT_LOCATION] = artifact_location(trace.experiment_id, trace.trace_id)
    if spans_location:
        tags[TAG_SPANS_LOCATION] = TRACKING_STORE
    else:
        tags.pop(TAG_SPANS_LOCATION, None)
    info = {
        "trace_id": trace.trace_id,
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": str(trace.experiment_id)},
        },
        "request_time": timestamp_json(trace.request_time),
        "state": trace.state,
        "trace_metadata": dict(trace.metadata),
        "assessments": list(assessments),
        "tags": tags,
    }
    if trace.client_request_id:
        info["client_request_id"] = trace.client_request_id
    if trace.request_preview:
        info["request_preview"] = trace.request_preview
    if trace.response_preview:
        info["response_preview"] = trace.response_preview
    if trace.execution_time_ms is not None:
        info["execution_duration"] = duration_json(trace.execution_time_ms)
    return info


def _id_bytes(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def any_value_json(value) -> dict:
    """A Python value as an OTel AnyValue in proto JSON (snake_case)."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"bool_value": value}
    if isinstance(value, int):
        return {"int_value": value} if -(2**63) <= value < 2**63 else {"string_value": str(value)}
    if isinstance(value, float):
        return {"double_value": value}
    if isinstance(value, str):
        return {"string_value": value}
    if isinstance(value, (list, tuple)):
        return {"array_value": {"values": [any_value_json(item) for item in value]}}
    if isinstance(value, dict):
        return {"kvlist_value": {"values": [{"key": str(k), "value": any_value_json(v)} for k, v in value.items()]}}
    return {"string_value": str(value)}


def _key_values_json(mapping: dict) -> list[dict]:
    return [{"key": str(key), "value": any_value_json(value)} for key, value in mapping.items()]


_SPAN_KINDS = {
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
}


def span_attributes(span: Span, trace_id: str) -> dict:
    """The span's attributes with MLflow's own keys rebuilt from the columns."""
    attributes = {"mlflow.traceRequestId": trace_id, "mlflow.spanType": span.span_type}
    if span.inputs is not None:
        attributes["mlflow.spanInputs"] = span.inputs
    if span.outputs is not None:
        attributes["mlflow.spanOutputs"] = span.outputs
    if isinstance(span.attributes, dict):
        attributes.update({key: value for key, value in span.attributes.items() if key not in attributes})
    return attributes


def _events(span: Span) -> list[dict]:
    return [event for event in (span.events or []) if isinstance(event, dict) and event.get("name")]


def _event_time(event: dict) -> int:
    value = event.get("time_unix_nano", event.get("timestamp", 0))
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def span_json(span: Span, trace_id: str) -> dict:
    """One span as an OTel proto Span in MLflow's JSON (snake_case, base64 ids, typed attributes)."""
    kind = span.kind if span.kind in _SPAN_KINDS else f"SPAN_KIND_{(span.kind or 'INTERNAL').upper()}"
    data = {
        "trace_id": _id_bytes(trace_id.removeprefix("tr-")),
        "span_id": _id_bytes(span.span_id),
        "name": span.name,
        "kind": kind if kind in _SPAN_KINDS else "SPAN_KIND_INTERNAL",
        "start_time_unix_nano": span.start_time_ns,
        "attributes": _key_values_json(span_attributes(span, trace_id)),
        "status": {"code": f"STATUS_CODE_{span.status_code}"},
    }
    if span.parent_span_id:
        data["parent_span_id"] = _id_bytes(span.parent_span_id)
    if span.end_time_ns is not None:
        data["end_time_unix_nano"] = span.end_time_ns
    if span.status_message:
        data["status"]["message"] = span.status_message
    events = [
        {
            "time_unix_nano": _event_time(event),
            "name": str(event["name"]),
            "attributes": _key_values_json(
                event.get("attributes") if isinstance(event.get("attributes"), dict) else {}
            ),
        }
        for event in _events(span)
    ]
    if events:
        data["events"] = events
    return data


def ordered_spans(spans) -> list[Span]:
    """Root first, then by start time (as MLflow returns them)."""
    return sorted(spans, key=lambda span: (span.parent_span_id is not None, span.start_time_ns, span.span_id))


def _dumped(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def span_artifact_json(span: Span, trace_id: str) -> dict:
    """One span in the `traces.json` artifact format (attribute values are JSON text)."""
    return {
        "trace_id": _id_bytes(trace_id.removeprefix("tr-")),
        "span_id": _id_bytes(span.span_id),
        "parent_span_id": _id_bytes(span.parent_span_id) if span.parent_span_id else None,
        "name": span.name,
        "kind": span.kind if span.kind in _SPAN_KINDS else "SPAN_KIND_INTERNAL",
        "start_time_unix_nano": span.start_time_ns,
        "end_time_unix_nano": span.end_time_ns,
        "events": [
            {
                "name": str(event["name"]),
                "time_unix_nano": _event_time(event),
                "attributes": event.get("attributes") if isinstance(event.get("attributes"), dict) else {},
            }
            for event in _events(span)
        ],
        "status": {"code": f"STATUS_CODE_{span.status_code}", "message": span.status_message},
        "attributes": {key: _dumped(value) for key, value in span_attributes(span, trace_id).items()},
        "links": [],
    }


def trace_or_404(actor: Actor, trace_id: str) -> Trace:
    try:
        return selectors.trace_for(actor, trace_id)
    except Http404:
        raise MlflowError.not_found(f"Trace with ID '{trace_id}' not found.") from None


# --- search: ordering and page tokens ---------------------------------------------------------

_ORDER_COLUMNS = {
    "timestamp_ms": "request_time",
    "timestamp": "request_time",
    "request_time": "request_time",
    "execution_time_ms": "execution_time_ms",
    "execution_time": "execution_time_ms",
    "end_time_ms": "end_time",
    "end_time": "end_time",
    "status": "state",
    "state": "state",
    "request_id": "trace_id",
    "trace_id": "trace_id",
    "name": "name",
    "experiment_id": "experiment_id",
    "client_request_id": "client_request_id",
    "run_id": "run_id",
    "total_tokens": "total_tokens",
    "cost": "cost",
}
_ORDER_RE = re.compile(r"^\s*(?P<field>`[^`]+`|[^\s`]+(?:\.`[^`]+`)?)\s*(?P<direction>ASC|DESC)?\s*$", re.IGNORECASE)


def _end_time():
    milliseconds = ExpressionWrapper(F("execution_time_ms"), output_field=IntegerField())
    return F("request_time") + ExpressionWrapper(
        milliseconds * Value(timedelta(milliseconds=1)), output_field=DurationField()
    )


def _order_expression(clause: str):
    if not isinstance(clause, str):
        raise MlflowError.invalid(f"Invalid order_by clause {clause!r}: expected a string.")
    match = _ORDER_RE.match(clause)
    if not match:
        raise MlflowError.invalid(
            f"Invalid order_by clause '{clause}'. Use '<field> [ASC|DESC]', e.g. 'timestamp_ms DESC'."
        )
    name, descending = match["field"], (match["direction"] or "ASC").upper() == "DESC"
    entity, dot, key = name.partition(".")
    if not dot:
        entity, key = "attributes", name
    key = key.strip("`")
    entity = entity.lower()
    if entity in ("tag", "tags"):
        expression = JSONKeyText("tags", key)
    elif entity in ("metadata", "request_metadata"):
        expression = JSONKeyText("metadata", key)
    elif entity in ("attribute", "attributes", "trace") and key.lower() in _ORDER_COLUMNS:
        column = _ORDER_COLUMNS[key.lower()]
        if column == "end_time":
            expression = _end_time()
        elif column == "run_id":
            expression = JSONKeyText("metadata", "mlflow.sourceRun")
        else:
            expression = F(column)
    elif entity in ("feedback", "expectation", "assessment", "assessments", "span"):
        raise MlflowError.invalid(
            f"Invalid identifier type '{entity}' in order_by '{clause}': traces cannot be sorted by it."
        )
    else:
        raise MlflowError.invalid(
            f"Invalid order_by clause '{clause}': sort by timestamp_ms, execution_time_ms, end_time_ms, status, "
            "name, request_id, client_request_id, experiment_id, total_tokens, cost, tags.<key> or metadata.<key>."
        )
    return expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)


def order_traces(queryset: QuerySet[Trace], order_by) -> QuerySet[Trace]:
    """MLflow's order_by clauses, then its tie-breakers: timestamp_ms DESC, request_id ASC."""
    if order_by is None:
        order_by = []
    elif isinstance(order_by, str):
        order_by = [order_by]
    if not isinstance(order_by, list):
        raise MlflowError.invalid("'order_by' must be a list of strings such as ['timestamp_ms DESC'].")
    expressions = [_order_expression(clause) for clause in order_by]
    return queryset.order_by(*expressions, F("request_time").desc(), "trace_id")


def search_fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def encode_page_token(offset: int, fingerprint: str) -> str:
    return base64.b64encode(json.dumps({"offset": offset, "search": fingerprint}).encode()).decode()


def decode_page_token(token, fingerprint: str) -> int:
    """The offset an opaque page token stands for; 400 for a token this search did not issue."""
    if not token:
        return 0
    if not isinstance(token, str):
        raise MlflowError.invalid("Invalid page token: expected a string.")
    try:
        payload = json.loads(base64.b64decode(token.encode() + b"=" * (-len(token) % 4), validate=False))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise MlflowError.invalid("Invalid page token, could not base64-decode.") from None
    offset = payload.get("offset") if isinstance(payload, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise MlflowError.invalid("Invalid page token: it was not issued by this server.")
    if payload.get("search", fingerprint) != fingerprint:
        raise MlflowError.invalid("Invalid page token: it belongs to a search with other parameters.")
    return payload["offset"]


def max_results(message: dict, limit: int = MAX_SEARCH_RESULTS, default: int = DEFAULT_SEARCH_RESULTS) -> int:
    value = message.get("max_results")
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise MlflowError.invalid(f"Invalid value {value!r} for parameter 'max_results' supplied.") from None
    if isinstance(value, bool) or not 1 <= number <= limit:
        raise MlflowError.invalid(
            f"Invalid value {value} for parameter 'max_results' supplied. It must be between 1 and {limit}."
        )
    return number


def location_experiment_ids(message: dict) -> list[str]:
    """Experiment ids from SearchTracesV3 `locations` (or the older `experiment_ids`)."""
    ids = []
    locations = message.get("locations")
    if locations is not None:
        if not isinstance(locations, list):
            raise MlflowError.invalid("'locations' must be a list of trace locations.")
        for location in locations:
            experiment = location.get("mlflow_experiment") if isinstance(location, dict) else None
            experiment_id = experiment.get("experiment_id") if isinstance(experiment, dict) else None
            if experiment_id in (None, ""):
                raise MlflowError.invalid(
                    'Each location must be {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "1"}}.'
                )
            ids.append(str(experiment_id))
    experiment_ids = message.get("experiment_ids")
    if isinstance(experiment_ids, str):
        experiment_ids = [experiment_ids]
    if isinstance(experiment_ids, list):
        ids.extend(str(item) for item in experiment_ids)
    if not ids:
        raise MlflowError.invalid("Missing value for required parameter 'locations'.")
    for experiment_id in ids:
        if not (experiment_id.isascii() and experiment_id.isdigit()) or len(experiment_id) > 18:
            raise MlflowError.invalid(f"Invalid experiment id {experiment_id[:40]!r}.")
    return ids


def search_experiment_ids(actor: Actor, message: dict) -> list[str]:
    """location_experiment_ids with MLflow's Default experiment ("0") resolved for the key."""
    return [resolve_experiment_id(actor, experiment_id) for experiment_id in location_experiment_ids(message)]


# --- endpoints: trace tags ----------------------------------------------------------------------


@mlflow_endpoint("PATCH", "DELETE")
def trace_tags(request, message, actor, trace_id):
    """SetTraceTag (PATCH {"key", "value"}) and DeleteTraceTag (DELETE {"key"}), v2 and v3 paths."""
    trace = trace_or_404(actor, trace_id)
    key = field(message, "key", required=True)
    if key in SERVER_TAGS or key == TAG_TRACE_NAME:
        raise MlflowError.invalid(f"Tag '{key}' is managed by the server and cannot be changed.")
    if request.method == "PATCH":
        value = message.get("value", "")
        services.set_trace_tag(
            trace=trace, key=key, value=value if isinstance(value, str) else json.dumps(value), actor=actor
        )
    else:
        services.delete_trace_tag(trace=trace, key=key, actor=actor)
    return json_response({})
