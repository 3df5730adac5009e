"""Shapes of the native API for experiments, traces and spans: `*Input` parse, `*Out` present."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from feedbackhub import values

from .models import SPAN_ID_RE, SPAN_STATUS_CODES, TRACE_ID_RE, Experiment, Span, Trace

MAX_BIGINT = 2**63 - 1
SPAN_ID_PATTERN = r"^[0-9a-f]{16}$"
SPAN_ID_ERROR = {"invalid": "must be 16 lowercase hex digits"}


@extend_schema_field(OpenApiTypes.ANY)
class JSONValueField(serializers.JSONField):
    """Any JSON value, kept exactly as sent; NUL, lone surrogates and NaN/Infinity (also 1e400)
    are refused, naming the place (feedbackhub.values)."""

    def to_internal_value(self, data):
        found = values.problem(data)
        if found is not None:
            raise serializers.ValidationError(values.message(*found))
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(JSONValueField):
    default_error_messages = {"not_an_object": "Expected an object but got {type}."}

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            self.fail("not_an_object", type=type(data).__name__)
        return data


class ExperimentInput(serializers.Serializer):
    name = serializers.CharField(max_length=250)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ExperimentOut(serializers.ModelSerializer):
    experiment_id = serializers.CharField(source="pk", read_only=True)

    class Meta:
        model = Experiment
        fields = [
            "experiment_id",
            "name",
            "description",
            "require_definitions",
            "verdict_name",
            "retention_days",
            "retention_keep_human",
            "created_at",
        ]
        read_only_fields = fields


class StringMapField(serializers.DictField):
    """An object of string keys to string values (tags, metadata)."""

    child = serializers.CharField(allow_blank=True, trim_whitespace=False)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            # CharField would turn 1 into "1"; a string map takes strings only.
            wrong = [key for key, value in data.items() if not isinstance(value, str)]
            if wrong:
                raise serializers.ValidationError(f"values must be strings (key {str(wrong[0])[:50]!r})")
        data = super().to_internal_value(data)
        found = values.problem(list(data))
        if found is not None:
            raise serializers.ValidationError(f"keys {found[1]}")
        return data


class SpanInput(serializers.Serializer):
    span_id = serializers.RegexField(SPAN_ID_PATTERN, help_text="16 lowercase hex digits", error_messages=SPAN_ID_ERROR)
    parent_span_id = serializers.RegexField(
        SPAN_ID_PATTERN, required=False, allow_null=True, default=None, error_messages=SPAN_ID_ERROR
    )
    name = serializers.CharField(max_length=250, allow_blank=True, required=False, default="")
    span_type = serializers.CharField(max_length=50, required=False, default="UNKNOWN")
    start_time_ns = serializers.IntegerField(min_value=0, max_value=MAX_BIGINT)
    end_time_ns = serializers.IntegerField(
        min_value=0, max_value=MAX_BIGINT, required=False, allow_null=True, default=None
    )
    status_code = serializers.ChoiceField(choices=Span.StatusCode.choices, required=False, default="UNSET")
    status_message = serializers.CharField(required=False, allow_blank=True, default="")
    inputs = JSONValueField(required=False, allow_null=True, default=None)
    outputs = JSONValueField(required=False, allow_null=True, default=None)
    attributes = JSONObjectField(required=False, default=dict)
    events = serializers.ListField(child=JSONObjectField(), required=False, default=list)


def plain_text(value) -> bool:
    """An ASCII string without NUL: no CharField check (NUL, surrogates) can refuse it."""
    return type(value) is str and value.isascii() and "\x00" not in value


class TraceInput(serializers.Serializer):
    experiment_id = serializers.CharField(required=False, help_text="Needed unless the API key has one experiment.")
    trace_id = serializers.RegexField(
        r"^tr-[0-9a-f]{32}$",
        required=False,
        help_text="'tr-' + 32 lowercase hex; generated when absent",
        error_messages={"invalid": "must be 'tr-' followed by 32 lowercase hex digits"},
    )
    name = serializers.CharField(max_length=250, required=False, allow_blank=True)
    request_time = serializers.DateTimeField(required=False, help_text="Defaults to the root span's start")
    execution_time_ms = serializers.IntegerField(min_value=0, max_value=MAX_BIGINT, required=False, allow_null=True)
    state = serializers.ChoiceField(choices=Trace.State.choices, required=False)
    request_preview = serializers.CharField(required=False, allow_blank=True)
    response_preview = serializers.CharField(required=False, allow_blank=True)
    client_request_id = serializers.CharField(max_length=250, required=False, allow_null=True)
    tags = StringMapField(required=False, default=dict)
    metadata = StringMapField(required=False, default=dict)
    spans = SpanInput(many=True, required=False, default=list)


class SpanOut(serializers.ModelSerializer):
    class Meta:
        model = Span
        fields = [
            "span_id",
            "parent_span_id",
            "name",
            "span_type",
            "start_time_ns",
            "end_time_ns",
            "status_code",
            "status_message",
            "inputs",
            "outputs",
            "attributes",
            "events",
        ]
        read_only_fields = fields

    def to_representation(self, span) -> dict:
        """What DRF's field walk gives (a test checks they agree), built directly: a trace's
        spans are the bulk of `GET /api/v1/traces/{id}` and the walk cost ~20 µs per field."""
        return {
            "span_id": span.span_id,
            "parent_span_id": span.parent_span_id,
            "name": span.name,
            "span_type": span.span_type,
            "start_time_ns": int(span.start_time_ns),
            "end_time_ns": None if span.end_time_ns is None else int(span.end_time_ns),
            "status_code": str(span.status_code),
            "status_message": span.status_message,
            "inputs": span.inputs,
            "outputs": span.outputs,
            "attributes": span.attributes,
            "events": span.events,
        }


class TraceOut(serializers.ModelSerializer):
    experiment_id = serializers.CharField(read_only=True)

    class Meta:
        model = Trace
        fields = [
            "trace_id",
            "experiment_id",
            "name",
            "request_time",
            "execution_time_ms",
            "state",
            "request_preview",
            "response_preview",
            "client_request_id",
            "tags",
            "span_count",
        ]
        read_only_fields = fields

    def to_representation(self, trace) -> dict:
        """TraceOut's fields built directly (search pages present 100 traces); subclasses that
        add fields present them with DRF's walk unless they override this too."""
        if type(self) is not TraceOut:
            return super().to_representation(trace)
        return trace_representation(trace)


def trace_representation(trace) -> dict:
    """TraceOut's dict, as DRF's field walk gives it (a test checks they agree)."""
    return {
        "trace_id": trace.trace_id,
        "experiment_id": str(trace.experiment_id),
        "name": trace.name,
        "request_time": iso_datetime(trace.request_time),
        "execution_time_ms": None if trace.execution_time_ms is None else int(trace.execution_time_ms),
        "state": str(trace.state),
        "request_preview": trace.request_preview,
        "response_preview": trace.response_preview,
        "client_request_id": trace.client_request_id,
        "tags": trace.tags,
        "span_count": int(trace.span_count),
    }


def iso_datetime(value) -> str | None:
    """As DRF's DateTimeField presents it: current time zone, ISO 8601, "Z" for UTC."""
    if value is None:
        return None
    if timezone.is_aware(value):
        value = value.astimezone(timezone.get_current_timezone())
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class TracePageOut(serializers.Serializer):
    traces = TraceOut(many=True)
    next_page_token = serializers.CharField(allow_null=True)


SIMPLE_TRACE_KEYS = frozenset({"experiment_id", "trace_id", "name", "tags", "metadata", "spans"})
SIMPLE_SPAN_KEYS = frozenset(SpanInput._declared_fields)


def simple_trace_input(data) -> dict | None:
    """What TraceInput would validate `data` to, for the plain bodies apps send: ASCII text,
    integer times, known keys only. None for anything else, which the serializer then decides
    (every 400 comes from it).

    The serializer walk cost about a third of a 5-span ingest's Python time (DRF deep-copies
    SpanInput's fields per instance); tests/traces/test_api.py checks both agree.
    """
    if type(data) is not dict or not data.keys() <= SIMPLE_TRACE_KEYS:
        return None
    fields = {}
    for key in ("experiment_id", "trace_id", "name"):
        if key in data:
            value = data[key]
            if not plain_text(value):
                return None
            value = value.strip()
            if (
                (key == "experiment_id" and not value)
                or (key == "trace_id" and (not TRACE_ID_RE.match(value) or value != data[key]))
                or len(value) > 250
            ):
                return None
            fields[key] = value
    for key in ("tags", "metadata"):
        value = data.get(key, {})
        if type(value) is not dict or not all(plain_text(k) and plain_text(v) for k, v in value.items()):
            return None
        fields[key] = dict(value)
    raw_spans = data.get("spans", [])
    if type(raw_spans) is not list:
        return None
    spans = []
    for raw in raw_spans:
        span = _simple_span(raw)
        if span is None:
            return None
        spans.append(span)
    fields["spans"] = spans
    return fields


def _simple_span(raw) -> dict | None:
    if type(raw) is not dict or not raw.keys() <= SIMPLE_SPAN_KEYS:
        return None
    span_id, parent = raw.get("span_id"), raw.get("parent_span_id")
    if not plain_text(span_id) or not SPAN_ID_RE.match(span_id) or len(span_id) != 16:
        return None
    if parent is not None and (not plain_text(parent) or not SPAN_ID_RE.match(parent) or len(parent) != 16):
        return None
    name, span_type = raw.get("name", ""), raw.get("span_type", "UNKNOWN")
    status_code, status_message = raw.get("status_code", "UNSET"), raw.get("status_message", "")
    if not (plain_text(name) and plain_text(span_type) and plain_text(status_message)):
        return None
    name, span_type, status_message = name.strip(), span_type.strip(), status_message.strip()
    if len(name) > 250 or not span_type or len(span_type) > 50 or status_code not in SPAN_STATUS_CODES:
        return None
    start, end = raw.get("start_time_ns"), raw.get("end_time_ns")
    if type(start) is not int or not 0 <= start <= MAX_BIGINT:
        return None
    if end is not None and (type(end) is not int or not 0 <= end <= MAX_BIGINT):
        return None
    inputs, outputs = raw.get("inputs"), raw.get("outputs")
    attributes, events = raw.get("attributes", {}), raw.get("events", [])
    if type(attributes) is not dict or type(events) is not list or any(type(event) is not dict for event in events):
        return None
    if values.problem([inputs, outputs, attributes, events]) is not None:
        return None  # the serializer names the field
    return {
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "span_type": span_type,
        "start_time_ns": start,
        "end_time_ns": end,
        "status_code": status_code,
        "status_message": status_message,
        "inputs": inputs,
        "outputs": outputs,
        "attributes": attributes,
        "events": events,
    }
