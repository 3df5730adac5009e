"""Shapes of the native API for assessments: `*Input` parse only, `*Out` present only."""

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from feedbackhub import values
from traces.serializers import (
    SPAN_ID_ERROR,
    SPAN_ID_PATTERN,
    JSONValueField,
    SpanOut,
    StringMapField,
    TraceOut,
    iso_datetime,
    plain_text,
    trace_representation,
)

from .models import Assessment, Revision


@extend_schema_field(OpenApiTypes.ANY)
class AnyJSONField(JSONValueField):
    """Any JSON value: boolean, number, string, list, object or null, returned exactly as sent."""


@extend_schema_field(
    {
        "oneOf": [
            {"type": "boolean"},
            {"type": "number"},
            {"type": "string"},
            {"type": "array", "items": {}},
            {"type": "object"},
        ]
    }
)
class NonNullJSONField(AnyJSONField):
    """Any JSON value except null."""


class SourceInput(serializers.Serializer):
    source_type = serializers.ChoiceField(choices=Assessment.SourceType.choices, default=Assessment.SourceType.HUMAN)
    source_id = serializers.CharField(max_length=250, allow_blank=True, default="")


class ErrorInput(serializers.Serializer):
    error_code = serializers.CharField(max_length=250)
    error_message = serializers.CharField(required=False, allow_blank=True)
    stack_trace = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)


class ExpectationInput(serializers.Serializer):
    name = serializers.CharField(max_length=250)
    value = NonNullJSONField(help_text="Any JSON value except null")
    rationale = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    source = SourceInput(required=False)
    span_id = serializers.RegexField(
        SPAN_ID_PATTERN,
        required=False,
        allow_null=True,
        default=None,
        error_messages=SPAN_ID_ERROR,
    )
    metadata = StringMapField(required=False, default=dict)


class FeedbackInput(ExpectationInput):
    value = AnyJSONField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Any JSON value; may be left out (or null) when `error` is given",
    )
    error = ErrorInput(required=False, allow_null=True, default=None)


class AssessmentUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=250, required=False)
    value = AnyJSONField(required=False, allow_null=True)
    rationale = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    metadata = StringMapField(required=False)
    error = ErrorInput(required=False, allow_null=True)


class OverrideInput(serializers.Serializer):
    value = AnyJSONField(required=False, allow_null=True, default=None)
    error = ErrorInput(required=False, allow_null=True, default=None)
    rationale = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    source = SourceInput(required=False)
    metadata = StringMapField(required=False, default=dict)


SOURCE_TYPES = frozenset(Assessment.SourceType.values)
SPAN_ID_RE = re.compile(SPAN_ID_PATTERN)


def simple_create_input(data, kind: str) -> dict | None:
    """What FeedbackInput (kind "feedback") or ExpectationInput would validate `data` to, for the
    plain bodies apps send: ASCII text, a scalar value, no `error`, simple metadata. None for
    anything else, which the serializer then decides (every 400 comes from it).

    The serializer costs about a third of a feedback create's Python time (DRF deep-copies its
    fields per instance); tests/assessments/test_write_path.py checks both agree.
    """
    if type(data) is not dict:
        return None
    name = data.get("name")
    if not plain_text(name):
        return None
    name = name.strip()
    if not name or len(name) > 250:
        return None
    if kind == "feedback" and data.get("error") is not None:
        return None  # the error object is checked by ErrorInput
    value = data.get("value")
    if value is None:
        if kind != "feedback":
            return None  # an expectation needs a value
    elif type(value) not in (bool, int, float, str) or values.problem(value) is not None:
        return None  # lists and objects, NUL, surrogates, Infinity: JSONValueField decides
    rationale = data.get("rationale", "")
    if not plain_text(rationale):
        return None
    span_id = data.get("span_id")
    if span_id is not None and (type(span_id) is not str or not SPAN_ID_RE.match(span_id) or span_id[-1] == "\n"):
        return None
    metadata = data.get("metadata", {})
    if type(metadata) is not dict or not all(plain_text(k) and plain_text(v) for k, v in metadata.items()):
        return None
    fields = {
        "name": name,
        "value": value,
        "rationale": rationale,
        "span_id": span_id,
        "metadata": dict(metadata),
    }
    if kind == "feedback":
        fields["error"] = None
    if "source" in data:
        source = data["source"]
        if type(source) is not dict:
            return None
        source_type = source.get("source_type", Assessment.SourceType.HUMAN)
        source_id = source.get("source_id", "")
        if not isinstance(source_type, str) or source_type not in SOURCE_TYPES or not plain_text(source_id):
            return None
        source_id = source_id.strip()
        if len(source_id) > 250:
            return None
        fields["source"] = {"source_type": source_type, "source_id": source_id}
    return fields


def source_kwargs(data: dict, default_source_id: str) -> dict:
    """Flatten a validated `source` into the services' source_type / source_id arguments."""
    source = data.pop("source", None) or {}
    return {
        "source_type": source.get("source_type", Assessment.SourceType.HUMAN),
        "source_id": source.get("source_id") or default_source_id,
    }


class SourceOut(serializers.Serializer):
    source_type = serializers.CharField()
    source_id = serializers.CharField()


class AssessmentOut(serializers.ModelSerializer):
    value = AnyJSONField(read_only=True)
    source = SourceOut(source="*", read_only=True)
    overrides = serializers.CharField(source="overrides_id", read_only=True, allow_null=True)
    overridden_by = serializers.SerializerMethodField()

    class Meta:
        model = Assessment
        fields = [
            "assessment_id",
            "trace_id",
            "span_id",
            "name",
            "kind",
            "value",
            "error",
            "rationale",
            "source",
            "metadata",
            "overrides",
            "overridden_by",
            "valid",
            "version",
            "definition_version",
            "create_time",
            "last_update_time",
        ]
        read_only_fields = fields

    def get_overridden_by(self, obj) -> str | None:
        """Set by the selectors (assessments.selectors) without a query per row."""
        return getattr(obj, "overridden_by_id", None)

    def to_representation(self, instance) -> dict:
        """The dict DRF's field-by-field walk gives (tests/assessments/test_write_path.py checks
        they agree), built directly: DRF rebuilds a ModelSerializer's fields for every instance,
        which cost about a fifth of a feedback create's Python time."""
        return {
            "assessment_id": instance.assessment_id,
            "trace_id": instance.trace_id,
            "span_id": instance.span_id,
            "name": instance.name,
            "kind": str(instance.kind),
            "value": instance.value,
            "error": instance.error,
            "rationale": instance.rationale,
            "source": {
                "source_type": str(instance.source_type),
                "source_id": str(instance.source_id),
            },
            "metadata": instance.metadata,
            "overrides": instance.overrides_id,
            "overridden_by": getattr(instance, "overridden_by_id", None),
            "valid": bool(instance.valid),
            "version": int(instance.version),
            "definition_version": instance.definition_version,
            "create_time": iso_datetime(instance.create_time),
            "last_update_time": iso_datetime(instance.last_update_time),
        }


class TraceDetailOut(TraceOut):
    metadata = serializers.DictField(read_only=True)
    spans = SpanOut(many=True, read_only=True)
    assessments = serializers.SerializerMethodField()

    class Meta(TraceOut.Meta):
        fields = [*TraceOut.Meta.fields, "metadata", "spans", "assessments"]
        read_only_fields = fields

    @extend_schema_field(AssessmentOut(many=True))
    def get_assessments(self, trace):
        return AssessmentOut(self.context["assessments"], many=True).data

    def to_representation(self, trace) -> dict:
        """TraceOut's fields, then metadata, spans and assessments, built directly (a test
        checks this agrees with DRF's field walk)."""
        return {
            **trace_representation(trace),
            "metadata": {str(key): value for key, value in trace.metadata.items()},
            "spans": [SpanOut().to_representation(span) for span in trace.spans.all()],
            "assessments": [AssessmentOut().to_representation(a) for a in self.context["assessments"]],
        }


class RevisionOut(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True)

    class Meta:
        model = Revision
        fields = [
            "id",
            "assessment_id",
            "related_assessment_id",
            "trace_id",
            "action",
            "channel",
            "actor",
            "created_at",
            "before",
            "after",
        ]
        read_only_fields = fields
