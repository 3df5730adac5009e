"""The MLflow REST protocol for everything that involves assessments: trace export
(StartTraceV3 with its embedded assessments, the traces.json artifact), trace reads
(which carry the trace's assessments), search, and the assessment endpoints behind
`mlflow.log_feedback`, `log_expectation`, `get_assessment`, `update_assessment`,
`override_feedback` and `delete_assessment`.

Translation only: writes go through `traces.services` / `assessments.services`, reads
through the selectors. The shapes and quirks follow the recorded mlflow 3.18 protocol;
the deliberate differences are listed in docs/CLIENTS.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.http import Http404, HttpResponse

from feedbackhub import values
from feedbackhub.replicas import reads_from_replica
from feedbackhub.timeouts import bounded_search
from traces import mlflow_protocol as protocol
from traces import selectors as trace_selectors
from traces import services as trace_services
from traces.models import SPAN_ID_RE, TRACE_ID_RE, Trace
from traces.otlp import (
    COLUMN_ATTRIBUTES,
    MAX_TIME_NS,
    span_inputs,
    span_outputs,
    span_type,
)

from . import selectors, services
from .models import Assessment

logger = logging.getLogger(__name__)

CHANNEL = "mlflow"
# GetTrace(allow_partial=False) re-reads an incomplete trace after these pauses, then answers
# 404 as MLflow does (MLflow waits 1 s and 2 s; the client's own export usually lands sooner).
PARTIAL_RETRY_SECONDS = (0.25, 0.5)
SOURCE_TYPES = {
    "HUMAN": "HUMAN",
    "LLM_JUDGE": "LLM_JUDGE",
    "AI_JUDGE": "LLM_JUDGE",
    "CODE": "CODE",
}
# update_mask paths, compared without underscores and case (assessmentName = assessment_name).
UPDATE_PATHS = {
    "assessmentname": "name",
    "name": "name",
    "feedback": "feedback",
    "expectation": "expectation",
    "rationale": "rationale",
    "metadata": "metadata",
}
IMMUTABLE_PATHS = {
    "valid": "'valid' is set by the server: override the assessment (override_feedback) to replace it, "
    "or delete the override to make the original valid again.",
    "source": "'source' cannot be changed after create.",
    "spanid": "'span_id' cannot be changed after create.",
    "overrides": "'overrides' cannot be changed after create; log a new override instead.",
    "createtime": "'create_time' cannot be changed.",
    "lastupdatetime": "'last_update_time' is set by the server.",
    "traceid": "'trace_id' cannot be changed.",
    "assessmentid": "'assessment_id' cannot be changed.",
    "runid": "'run_id' cannot be changed.",
}
MlflowError = protocol.MlflowError


# --- assessment JSON ----------------------------------------------------------------------------


def assessment_json(assessment: Assessment) -> dict:
    """An Assessment in MLflow's proto JSON (snake_case)."""
    data = {
        "assessment_id": assessment.assessment_id,
        "assessment_name": assessment.name,
        "trace_id": assessment.trace_id,
        "source": {
            "source_type": assessment.source_type,
            "source_id": assessment.source_id or "default",
        },
        "create_time": protocol.timestamp_json(assessment.create_time),
        "last_update_time": protocol.timestamp_json(assessment.last_update_time),
        "valid": assessment.valid,
    }
    if assessment.span_id:
        data["span_id"] = assessment.span_id
    if assessment.kind == Assessment.Kind.EXPECTATION:
        if isinstance(assessment.value, (dict, list)):
            data["expectation"] = {
                "serialized_value": {
                    "serialization_format": "JSON_FORMAT",
                    "value": json.dumps(assessment.value),
                }
            }
        else:
            data["expectation"] = {"value": assessment.value}
    else:
        feedback = {"value": assessment.value}
        if assessment.error:
            feedback["error"] = dict(assessment.error)
        data["feedback"] = feedback
    if assessment.rationale:
        data["rationale"] = assessment.rationale
    if assessment.metadata:
        data["metadata"] = dict(assessment.metadata)
    if assessment.overrides_id:
        data["overrides"] = assessment.overrides_id
    return data


def _source(raw, kind: str) -> tuple[str, str]:
    """(source_type, source_id); a missing or unspecified source gets the client's default."""
    default = "CODE" if kind == Assessment.Kind.FEEDBACK else "HUMAN"
    if raw is None:
        return default, "default"
    if not isinstance(raw, dict):
        raise MlflowError.invalid("'source' must be an object with source_type and source_id.")
    source_type = raw.get("source_type") or "SOURCE_TYPE_UNSPECIFIED"
    if not isinstance(source_type, str):
        raise MlflowError.invalid("'source.source_type' must be a string.")
    if source_type.upper() == "SOURCE_TYPE_UNSPECIFIED":
        source_type = default
    elif source_type.upper() not in SOURCE_TYPES:
        raise MlflowError.invalid(
            f"Invalid assessment source type: {source_type}. Valid source types: ['HUMAN', 'LLM_JUDGE', 'CODE']."
        )
    source_id = raw.get("source_id", "default")
    if source_id is None:
        source_id = "default"
    if not isinstance(source_id, str):
        raise MlflowError.invalid("'source.source_id' must be a string.")
    return SOURCE_TYPES[source_type.upper()], source_id


def _error(raw) -> dict | None:
    if raw in (None, {}):
        return None
    if not isinstance(raw, dict):
        raise MlflowError.invalid("'feedback.error' must be an object with error_code, error_message and stack_trace.")
    if not raw.get("error_code"):
        raise MlflowError.invalid("'feedback.error.error_code' is required.")
    return {key: raw[key] for key in ("error_code", "error_message", "stack_trace") if raw.get(key) not in (None, "")}


def _expectation_value(raw):
    if not isinstance(raw, dict):
        raise MlflowError.invalid("'expectation' must be an object with 'value' or 'serialized_value'.")
    serialized = raw.get("serialized_value")
    if serialized is not None:
        if not isinstance(serialized, dict) or not isinstance(serialized.get("value"), str):
            raise MlflowError.invalid(
                '\'expectation.serialized_value\' must be {"serialization_format": "JSON_FORMAT", "value": "<json>"}.'
            )
        if serialized.get("serialization_format", "JSON_FORMAT") != "JSON_FORMAT":
            raise MlflowError.invalid("Only the JSON_FORMAT serialization of expectation values is supported.")
        try:
            return json.loads(serialized["value"])
        except ValueError:
            raise MlflowError.invalid("'expectation.serialized_value.value' is not valid JSON.") from None
    return raw.get("value")


def parse_assessment(raw, *, trace_id: str) -> dict:
    """An Assessment message → {"kind", and the create arguments of the services}.

    The trace comes from the path (MLflow ignores the body's trace_id too); `valid` is
    server-owned and ignored, as in MLflow.
    """
    if not isinstance(raw, dict):
        raise MlflowError.invalid(
            "Missing value for required parameter 'assessment'. See the API docs for more information about request "
            "parameters."
        )
    raw = values.scrubbed(raw)
    has_feedback, has_expectation = (
        raw.get("feedback") is not None,
        raw.get("expectation") is not None,
    )
    if raw.get("issue") is not None:
        raise MlflowError.invalid("Issue references are not supported by FeedbackHub; log feedback or an expectation.")
    if has_feedback == has_expectation:
        raise MlflowError.invalid(
            "Unknown assessment type: an assessment needs exactly one of 'feedback' or 'expectation'."
        )
    kind = Assessment.Kind.FEEDBACK if has_feedback else Assessment.Kind.EXPECTATION
    source_type, source_id = _source(raw.get("source"), kind)
    fields = {
        "kind": kind,
        "name": raw.get("assessment_name", ""),
        "rationale": raw.get("rationale") or "",
        "source_type": source_type,
        "source_id": source_id,
        "span_id": raw.get("span_id") or None,
        "metadata": raw.get("metadata") or {},
        "assessment_id": raw.get("assessment_id") or None,
        "create_time": protocol.parse_timestamp(raw.get("create_time"), "create_time"),
        "overrides": raw.get("overrides") or None,
    }
    if not isinstance(fields["name"], str) or not fields["name"].strip():
        raise MlflowError.invalid("'assessment_name' must be a non-empty string.")
    if len(fields["name"]) > 250:
        raise MlflowError.invalid(f"'assessment_name' is {len(fields['name'])} characters long; the limit is 250.")
    if len(source_id) > 250:
        raise MlflowError.invalid(f"'source.source_id' is {len(source_id)} characters long; the limit is 250.")
    if fields["assessment_id"] is not None and (
        not isinstance(fields["assessment_id"], str) or len(fields["assessment_id"]) > 50
    ):
        raise MlflowError.invalid("'assessment_id' must be a string of at most 50 characters.")
    if fields["span_id"] is not None and (
        not isinstance(fields["span_id"], str) or not SPAN_ID_RE.match(fields["span_id"])
    ):
        raise MlflowError.invalid("'span_id' must be 16 lowercase hex digits (the OTel span id).")
    if fields["overrides"] is not None and not isinstance(fields["overrides"], str):
        raise MlflowError.invalid("'overrides' must be an assessment id.")
    if has_feedback:
        feedback = raw["feedback"]
        if not isinstance(feedback, dict):
            raise MlflowError.invalid("'feedback' must be an object with 'value' and/or 'error'.")
        fields["value"] = feedback.get("value")
        fields["error"] = _error(feedback.get("error") if feedback.get("error") is not None else raw.get("error"))
    else:
        if fields["overrides"]:
            raise MlflowError.invalid("Only feedback can override another assessment.")
        fields["value"] = _expectation_value(raw["expectation"])
        fields["error"] = None
    return fields


# --- trace infos with their assessments -------------------------------------------------------


def _assessments_prefetch() -> Prefetch:
    return Prefetch(
        "assessments",
        queryset=Assessment.objects.order_by("create_time", "assessment_id"),
    )


def trace_info(trace: Trace, *, spans_location: bool = True, pending=()) -> dict:
    """TraceInfoV3 with every assessment (valid and overridden), from `trace.assessments`
    (prefetch it: `_assessments_prefetch`), plus the caller's `pending` ones."""
    assessments = [assessment_json(assessment) for assessment in [*trace.assessments.all(), *pending]]
    return protocol.trace_info_json(trace, assessments=assessments, spans_location=spans_location)


def _traces(actor, trace_ids, *, spans: bool) -> list[Trace]:
    """Visible traces among `trace_ids`, in the order asked, with assessments (and spans) prefetched."""
    ids = [trace_id for trace_id in dict.fromkeys(trace_ids) if isinstance(trace_id, str)]
    if len(ids) > protocol.MAX_BATCH_TRACES:
        raise MlflowError.invalid(f"At most {protocol.MAX_BATCH_TRACES} trace ids per request.")
    prefetch = [_assessments_prefetch()]
    if spans:
        prefetch.append("spans")
    found = {
        trace.trace_id: trace
        for trace in Trace.objects.filter(pk__in=ids).prefetch_related(*prefetch)
        if actor.role(trace.experiment_id) is not None
    }
    return [found[trace_id] for trace_id in ids if trace_id in found]


def _one_trace(actor, trace_id: str, *, spans: bool) -> Trace:
    traces = _traces(actor, [trace_id], spans=spans)
    if not traces:
        raise MlflowError.not_found(f"Trace with ID '{trace_id}' not found.")
    return traces[0]


def _trace_with_spans_json(trace: Trace, pending=()) -> dict:
    return {
        "trace_info": trace_info(trace, pending=pending),
        "spans": [protocol.span_json(span, trace.trace_id) for span in protocol.ordered_spans(trace.spans.all())],
    }


# --- trace export ---------------------------------------------------------------------------


def _string_map(value, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MlflowError.invalid(f"'{name}' must be an object of string keys to string values.")
    return {str(key): item if isinstance(item, str) else json.dumps(item) for key, item in value.items()}


def _ingest_fields(info: dict) -> dict:
    """TraceInfoV3 → ingest_trace arguments."""
    tags = _string_map(info.get("tags"), "tags")
    for key in protocol.SERVER_TAGS:
        tags.pop(key, None)
    name = tags.pop(protocol.TAG_TRACE_NAME, None)
    metadata = _string_map(info.get("trace_metadata", info.get("request_metadata")), "trace_metadata")
    metadata["mlflow.trace.infoFinalized"] = "true"
    client_request_id = info.get("client_request_id")
    state = info.get("state") or None
    if state is not None and state not in Trace.State.values:
        raise MlflowError.invalid(f"Invalid trace state {state!r}: use OK, ERROR or IN_PROGRESS.")
    fields = {
        "name": name,
        "tags": tags,
        "metadata": metadata,
        "request_time": protocol.parse_timestamp(info.get("request_time"), "request_time"),
        "execution_time_ms": protocol.parse_duration(info.get("execution_duration"), "execution_duration"),
        "state": state,
        "request_preview": info.get("request_preview") if isinstance(info.get("request_preview"), str) else None,
        "response_preview": info.get("response_preview") if isinstance(info.get("response_preview"), str) else None,
        "client_request_id": str(client_request_id) if client_request_id not in (None, "") else None,
    }
    return values.scrubbed(fields)


def _store_embedded(trace: Trace, raw_assessments, actor) -> None:
    """Assessments logged while the trace was active ride in StartTraceV3 with client ids.

    A retried export must not duplicate them, and one bad item must not lose the trace:
    known ids are skipped, invalid items are logged and skipped.
    """
    if not isinstance(raw_assessments, list):
        return
    known = set(Assessment.objects.filter(trace_id=trace.pk).values_list("pk", flat=True))
    for raw in raw_assessments:
        try:
            fields = parse_assessment(raw, trace_id=trace.pk)
            if fields["assessment_id"] in known:
                continue
            with transaction.atomic():
                created = services.create(trace=trace, actor=actor, channel=CHANNEL, **fields)
            known.add(created.assessment.pk)
        except (MlflowError, ValidationError, trace_services.Conflict, Http404) as exc:
            logger.warning(
                "StartTraceV3 for %s: skipped embedded assessment %r: %s",
                trace.pk,
                raw.get("assessment_name") if isinstance(raw, dict) else raw,
                exc.message if isinstance(exc, MlflowError) else exc,
            )


@protocol.mlflow_endpoint("POST", export=True)
def start_trace(request, message, actor):
    """StartTraceV3 (sent when the trace has finished): create or merge the trace info."""
    trace_message = message.get("trace")
    info = trace_message.get("trace_info") if isinstance(trace_message, dict) else None
    if not isinstance(info, dict):
        raise MlflowError.invalid("Missing value for required parameter 'trace.trace_info'.")
    trace_id = info.get("trace_id") or info.get("request_id")
    if not isinstance(trace_id, str) or not TRACE_ID_RE.match(trace_id):
        raise MlflowError.invalid(f"Invalid trace_id {trace_id!r}: FeedbackHub stores 'tr-' + 32 lowercase hex ids.")
    location = info.get("trace_location")
    experiment = location.get("mlflow_experiment") if isinstance(location, dict) else None
    experiment_id = experiment.get("experiment_id") if isinstance(experiment, dict) else None
    if experiment_id in (None, ""):
        raise MlflowError.invalid(
            "Missing value for required parameter 'trace.trace_info.trace_location.mlflow_experiment'."
        )
    experiment = protocol.ingest_experiment_or_404(actor, experiment_id)
    fields = _ingest_fields(info)
    with transaction.atomic():
        trace, _ = trace_services.ingest_trace(
            experiment=experiment,
            actor=actor,
            channel=CHANNEL,
            trace_id=trace_id,
            **fields,
        )
        _store_embedded(trace, info.get("assessments"), actor)
    trace = _one_trace(actor, trace_id, spans=False)
    # Without spansLocation the client uploads the spans as a traces.json artifact as well,
    # which is the fallback when this arrived before the OTLP export.
    return protocol.json_response({"trace": {"trace_info": trace_info(trace, spans_location=trace.span_count > 0)}})


def _artifact_spans(body: bytes) -> list[dict]:
    """The spans of a traces.json artifact (MLflow's Span.to_dict shape) as ingest dicts."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MlflowError.invalid("traces.json is not valid JSON.") from None
    spans = data.get("spans") if isinstance(data, dict) else None
    if not isinstance(spans, list):
        raise MlflowError.invalid("traces.json must be an object with a 'spans' list.")
    result = []
    for index, raw in enumerate(spans):
        if not isinstance(raw, dict):
            raise MlflowError.invalid(f"traces.json spans[{index}] must be an object.")
        try:
            attributes = {key: values.parsed_json(value) for key, value in (raw.get("attributes") or {}).items()}
            events = [
                {
                    "name": event.get("name", ""),
                    "time_unix_nano": int(event.get("time_unix_nano") or 0),
                    "attributes": event.get("attributes") or {},
                }
                for event in raw.get("events") or []
            ]
            span = {
                "span_id": _hex_id(raw.get("span_id")),
                "parent_span_id": _hex_id(raw.get("parent_span_id")) if raw.get("parent_span_id") else None,
                "name": str(raw.get("name") or "")[:250],
                "span_type": span_type(attributes),
                "kind": str(raw.get("kind") or "")[:30],
                "start_time_ns": int(raw["start_time_unix_nano"]),
                "end_time_ns": int(raw["end_time_unix_nano"]) if raw.get("end_time_unix_nano") else None,
                "status_code": str((raw.get("status") or {}).get("code", "UNSET")).removeprefix("STATUS_CODE_"),
                "status_message": (raw.get("status") or {}).get("message") or "",
                "inputs": span_inputs(attributes, events),
                "outputs": span_outputs(attributes, events),
                "attributes": {k: v for k, v in attributes.items() if k not in COLUMN_ATTRIBUTES},
                "events": events,
            }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MlflowError.invalid(
                f"traces.json spans[{index}] is malformed ({exc.__class__.__name__}: {exc})."
            ) from None
        if max(span["start_time_ns"], span["end_time_ns"] or 0) > MAX_TIME_NS:
            raise MlflowError.invalid(f"traces.json spans[{index}]: start/end time is out of range.")
        result.append(values.scrubbed_span(span))
    return result


def _hex_id(value) -> str:
    """A span id from traces.json: base64 of the 8 bytes, or already hex."""
    if not isinstance(value, str):
        raise ValueError("span ids must be strings")
    if SPAN_ID_RE.match(value):
        return value
    try:
        return base64.b64decode(value, validate=True).hex()
    except binascii.Error:
        raise ValueError(f"{value!r} is neither base64 nor hex") from None


@protocol.mlflow_endpoint("GET", "PUT", body=False)
def trace_artifact(request, message, actor, experiment_id, trace_id, path):
    """The mlflow-artifacts fallback for spans: PUT traces.json stores its spans like an OTLP
    export; GET serves the stored spans in the same format. Other artifacts are not kept."""
    if path != "traces.json":
        raise MlflowError(
            "NOT_IMPLEMENTED",
            f"FeedbackHub keeps no trace artifacts other than traces.json (got {path!r}).",
        )
    experiment = protocol.ingest_experiment_or_404(actor, experiment_id)
    if request.method == "GET":
        trace = _one_trace(actor, trace_id, spans=True)
        if trace.experiment_id != experiment.pk:
            raise MlflowError.not_found(f"Trace with ID '{trace_id}' not found in experiment {experiment_id}.")
        spans = [
            protocol.span_artifact_json(span, trace.trace_id) for span in protocol.ordered_spans(trace.spans.all())
        ]
        return protocol.json_response({"spans": spans})
    if not TRACE_ID_RE.match(trace_id):
        raise MlflowError.invalid(f"Invalid trace_id {trace_id!r}.")
    spans = _artifact_spans(request.body)
    with transaction.atomic():
        trace, _ = trace_services.ingest_trace(
            experiment=experiment,
            actor=actor,
            channel=CHANNEL,
            trace_id=trace_id,
            spans=spans,
        )
    return HttpResponse(status=200)


# --- trace reads ------------------------------------------------------------------------------


@protocol.mlflow_endpoint("GET")
def get_trace_info(request, message, actor, trace_id):
    """GetTraceInfoV3: the trace info with all its assessments (valid and overridden), and the
    caller's feedback that still waits for its span."""
    trace = _one_trace(actor, trace_id, spans=False)
    pending = selectors.pending_for_trace(actor, trace.pk)
    return protocol.json_response({"trace": {"trace_info": trace_info(trace, pending=pending)}})


@protocol.mlflow_endpoint("GET")
def get_trace(request, message, actor):
    """GetTrace: trace info and spans. With allow_partial=False (the client's default) a trace
    whose span count is below the client's `num_spans` is re-read briefly, then 404."""
    trace_id = protocol.field(message, "trace_id", required=True)
    allow_partial = protocol.field(message, "allow_partial", bool, default=False)
    trace = _one_trace(actor, trace_id, spans=True)
    for pause in PARTIAL_RETRY_SECONDS:
        if allow_partial or trace.spans_complete:
            break
        time.sleep(pause)
        trace = _one_trace(actor, trace_id, spans=True)
    if not allow_partial and not trace.spans_complete:
        raise MlflowError.not_found(f"Trace with ID {trace_id} is not fully exported yet, please try again later.")
    pending = selectors.pending_for_trace(actor, trace.pk)
    return protocol.json_response({"trace": _trace_with_spans_json(trace, pending)})


def _trace_ids(message: dict) -> list[str]:
    ids = message.get("trace_ids") or []
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
        raise MlflowError.invalid("'trace_ids' must be a list of trace ids.")
    return ids


@protocol.mlflow_endpoint("GET", "POST")
def batch_get_traces(request, message, actor):
    """BatchGetTraces: visible traces with spans; unknown ids are left out."""
    traces = _traces(actor, _trace_ids(message), spans=True)
    return protocol.json_response({"traces": [_trace_with_spans_json(trace) for trace in traces]})


@protocol.mlflow_endpoint("GET", "POST")
def batch_get_trace_infos(request, message, actor):
    """BatchGetTraceInfos: visible trace infos without spans."""
    traces = _traces(actor, _trace_ids(message), spans=False)
    return protocol.json_response({"trace_infos": [trace_info(trace) for trace in traces]})


@protocol.mlflow_endpoint("POST", "GET")
@reads_from_replica
def search_traces(request, message, actor):
    """SearchTracesV3: the shared filter language (MLflow's grammar plus OR / parentheses),
    MLflow's order_by and tie-breakers, max_results <= 500, opaque page tokens."""
    experiment_ids = protocol.search_experiment_ids(actor, message)
    text = protocol.field(message, "filter")
    order_by = message.get("order_by")
    size = protocol.max_results(message)
    fingerprint = protocol.search_fingerprint(sorted(experiment_ids), text, order_by)
    offset = protocol.decode_page_token(protocol.field(message, "page_token"), fingerprint)
    queryset = trace_selectors.search_traces(actor, experiment_ids=experiment_ids, filter_text=text).defer(None)
    queryset = protocol.order_traces(queryset, order_by).prefetch_related(_assessments_prefetch())
    with bounded_search():
        rows = list(queryset[offset : offset + size + 1])
    data = {}
    if rows:
        data["traces"] = [trace_info(trace) for trace in rows[:size]]
    if len(rows) > size:
        data["next_page_token"] = protocol.encode_page_token(offset + size, fingerprint)
    return protocol.json_response(data)


# --- assessments ----------------------------------------------------------------------------


@protocol.mlflow_endpoint("POST")
def create_assessment(request, message, actor, trace_id):
    """CreateAssessment (log_feedback, log_expectation, override_feedback). Feedback for a
    trace (or span) that has not arrived yet is held and attached when it does."""
    fields = parse_assessment(message.get("assessment"), trace_id=trace_id)
    try:
        created = services.create(trace_id=trace_id, actor=actor, channel=CHANNEL, **fields)
    except Http404:
        raise MlflowError.not_found(f"Trace with ID '{trace_id}' not found.") from None
    return protocol.json_response({"assessment": assessment_json(created.assessment)})


def _assessment(actor, trace_id: str, assessment_id: str) -> Assessment:
    """The stored or held assessment; 404 in MLflow's words otherwise."""
    found = selectors.assessment_on_trace(actor, trace_id, assessment_id)
    if found is None:
        raise MlflowError.not_found(f"Assessment with ID '{assessment_id}' not found for trace '{trace_id}'")
    return found


def _update_mask(message: dict) -> list[str]:
    mask = message.get("update_mask")
    if isinstance(mask, dict):  # {"paths": [...]} as some JSON encoders write a FieldMask
        mask = mask.get("paths")
    if isinstance(mask, str):
        paths = [path.strip() for path in mask.split(",") if path.strip()]
    elif isinstance(mask, list) and all(isinstance(path, str) for path in mask):
        paths = [path.strip() for path in mask if path.strip()]
    else:
        paths = []
    if not paths:
        raise MlflowError.invalid(
            "Missing value for required parameter 'update_mask' (comma-separated paths such as "
            '"assessmentName,feedback,rationale,metadata").'
        )
    return paths


def _changes(message: dict, kind: str, current_metadata: dict) -> dict:
    """UpdateAssessment → update_assessment's changes (metadata is merged, as in MLflow)."""
    raw = message.get("assessment")
    if not isinstance(raw, dict):
        raise MlflowError.invalid("Missing value for required parameter 'assessment'.")
    raw = values.scrubbed(raw)
    changes = {}
    for path in _update_mask(message):
        key = path.replace("_", "").lower()
        normal = UPDATE_PATHS.get(key)
        if normal is None:
            raise MlflowError.invalid(
                IMMUTABLE_PATHS.get(key)
                or f"Unknown update_mask path '{path}'. Use assessmentName, feedback, expectation, rationale or metadata."
            )
        if normal == "name":
            changes["name"] = raw.get("assessment_name", "")
        elif normal == "rationale":
            changes["rationale"] = raw.get("rationale") or ""
        elif normal == "metadata":
            metadata = raw.get("metadata") or {}
            if not isinstance(metadata, dict):
                raise MlflowError.invalid("'metadata' must be an object of strings.")
            changes["metadata"] = {**current_metadata, **metadata}
        elif normal == "feedback":
            if kind != Assessment.Kind.FEEDBACK:
                raise MlflowError.invalid("Cannot update feedback value on an Expectation assessment.")
            feedback = raw.get("feedback") or {}
            if not isinstance(feedback, dict):
                raise MlflowError.invalid("'feedback' must be an object with 'value' and/or 'error'.")
            changes["value"] = feedback.get("value")
            changes["error"] = _error(feedback.get("error"))
        else:
            if kind != Assessment.Kind.EXPECTATION:
                raise MlflowError.invalid("Cannot update expectation value on a Feedback assessment.")
            changes["value"] = _expectation_value(raw.get("expectation") or {})
    return changes


@protocol.mlflow_endpoint("GET", "PATCH", "DELETE")
def assessment_detail(request, message, actor, trace_id, assessment_id):
    """GetAssessment, UpdateAssessment (update_mask) and DeleteAssessment (idempotent)."""
    if request.method == "DELETE":
        found = selectors.assessment_on_trace(actor, trace_id, assessment_id)
        if found is not None:
            services.delete(assessment=found, actor=actor, channel=CHANNEL)
        return protocol.json_response({})
    assessment = _assessment(actor, trace_id, assessment_id)
    if request.method == "PATCH":
        changes = _changes(message, assessment.kind, assessment.metadata or {})
        assessment = services.update(assessment=assessment, actor=actor, channel=CHANNEL, **changes)
    return protocol.json_response({"assessment": assessment_json(assessment)})
