"""Shapes of the native API for experiments, traces and spans: `*Input` parse, `*Out` present."""
from rest_framework import serializers

from .models import Experiment, Span, Trace


class ExperimentInput(serializers.Serializer):
    name = serializers.CharField(max_length=250)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ExperimentOut(serializers.ModelSerializer):
    experiment_id = serializers.CharField(source="pk", read_only=True)

    class Meta:
        model = Experiment
        fields = ["experiment_id", "name", "description", "created_at"]
        read_only_fields = fields


class StringMapField(serializers.DictField):
    child = serializers.CharField(allow_blank=True, trim_whitespace=False)


class SpanInput(serializers.Serializer):
    span_id = serializers.RegexField(r"^[0-9a-f]{16}$", help_text="16 lowercase hex digits")
    parent_span_id = serializers.RegexField(r"^[0-9a-f]{16}$", required=False, allow_null=True, default=None)
    name = serializers.CharField(max_length=250, allow_blank=True, required=False, default="")
    span_type = serializers.CharField(max_length=50, required=False, default="UNKNOWN")
    start_time_ns = serializers.IntegerField(min_value=0, max_value=2**63 - 1)
    end_time_ns = serializers.IntegerField(min_value=0, max_value=2**63 - 1, required=False, allow_null=True, default=None)
    status_code = serializers.ChoiceField(choices=Span.StatusCode.choices, required=False, default="UNSET")
    status_message = serializers.CharField(required=False, allow_blank=True, default="")
    inputs = serializers.JSONField(required=False, allow_null=True, default=None)
    outputs = serializers.JSONField(required=False, allow_null=True, default=None)
    attributes = serializers.DictField(required=False, default=dict)
    events = serializers.ListField(child=serializers.DictField(), required=False, default=list)


class TraceInput(serializers.Serializer):
    experiment_id = serializers.CharField(required=False, help_text="Needed unless the API key has one experiment.")
    trace_id = serializers.RegexField(
        r"^tr-[0-9a-f]{32}$", required=False, help_text="'tr-' + 32 lowercase hex; generated when absent"
    )
    name = serializers.CharField(max_length=250, required=False, allow_blank=True)
    request_time = serializers.DateTimeField(required=False, help_text="Defaults to the root span's start")
    execution_time_ms = serializers.IntegerField(min_value=0, required=False, allow_null=True)
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
            "span_id", "parent_span_id", "name", "span_type", "start_time_ns", "end_time_ns",
            "status_code", "status_message", "inputs", "outputs", "attributes", "events",
        ]
        read_only_fields = fields


class TraceOut(serializers.ModelSerializer):
    experiment_id = serializers.CharField(read_only=True)

    class Meta:
        model = Trace
        fields = [
            "trace_id", "experiment_id", "name", "request_time", "execution_time_ms", "state",
            "request_preview", "response_preview", "client_request_id", "tags", "span_count",
        ]
        read_only_fields = fields


class TracePageOut(serializers.Serializer):
    traces = TraceOut(many=True)
    next_page_token = serializers.CharField(allow_null=True)
