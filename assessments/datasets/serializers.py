"""Shapes of evaluation datasets on the native API."""

from rest_framework import serializers

from traces.serializers import JSONValueField

from .models import Dataset, DatasetRecord, DatasetVersion
from .services import DEFAULT_FILTER_LIMIT, MAX_TRACES_PER_CALL


class DatasetInput(serializers.Serializer):
    name = serializers.CharField(max_length=250)
    description = serializers.CharField(allow_blank=True, required=False, max_length=10_000)
    tags = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)


class RecordsAddInput(serializers.Serializer):
    """`{"trace_ids": [...]}`, `{"filter": "...", "limit": n}` or `{"queue_id": "...", "limit": n}`."""

    trace_ids = serializers.ListField(
        child=serializers.CharField(max_length=35), required=False, max_length=MAX_TRACES_PER_CALL
    )
    filter = serializers.CharField(required=False, max_length=10_000)
    queue_id = serializers.CharField(
        required=False, max_length=40, help_text="a review queue of the experiment: its completed items"
    )
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_TRACES_PER_CALL,
        help_text=f"with filter (default {DEFAULT_FILTER_LIMIT}) or queue_id (default {MAX_TRACES_PER_CALL})",
    )
    include_outputs = serializers.BooleanField(
        required=False, default=True, help_text="copy the trace's output as a reference"
    )

    def validate(self, attrs):
        if sum(key in attrs for key in ("trace_ids", "filter", "queue_id")) != 1:
            raise serializers.ValidationError(
                {"non_field_errors": ["Send exactly one of trace_ids, filter (with limit) or queue_id."]}
            )
        return attrs


class RecordUpdateInput(serializers.Serializer):
    inputs = serializers.DictField(required=False)
    expectations = serializers.DictField(required=False)
    outputs = JSONValueField(required=False, allow_null=True)
    tags = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)


class VersionInput(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class RecordOut(serializers.ModelSerializer):
    source = serializers.SerializerMethodField()
    inputs = JSONValueField()
    expectations = JSONValueField()
    outputs = JSONValueField()
    tags = JSONValueField()

    class Meta:
        model = DatasetRecord
        fields = ["record_id", "inputs", "expectations", "outputs", "tags", "source", "created_at", "updated_at"]

    def get_source(self, record) -> dict:
        from .selectors import record_line

        return record_line(record)["source"]


class VersionOut(serializers.ModelSerializer):
    class Meta:
        model = DatasetVersion
        fields = ["version", "note", "record_count", "created_at", "created_by"]


class DatasetOut(serializers.ModelSerializer):
    experiment_id = serializers.CharField()
    tags = JSONValueField()

    class Meta:
        model = Dataset
        fields = [
            "dataset_id",
            "experiment_id",
            "name",
            "description",
            "tags",
            "current_version",
            "created_at",
            "updated_at",
            "created_by",
            "updated_by",
        ]


class DatasetDetailOut(DatasetOut):
    records = RecordOut(many=True, source="draft")
    versions = VersionOut(many=True, source="version_list")

    class Meta(DatasetOut.Meta):
        fields = [*DatasetOut.Meta.fields, "records", "versions"]


class RecordsAddedOut(serializers.Serializer):
    added = serializers.IntegerField()
    updated = serializers.IntegerField()
    records = RecordOut(many=True)
