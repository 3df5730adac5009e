"""Native REST API v1 for evaluation datasets.

Members read; reviewers, owners and the experiment's API keys write (the services decide).
Thin views: parse, one service call, present.
"""

import csv
import io
import json

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from feedbackhub.api import errors
from traces import selectors as trace_selectors
from traces.authentication import request_actor
from traces.filters import FilterError

from . import selectors, services
from .serializers import (
    DatasetDetailOut,
    DatasetInput,
    DatasetOut,
    RecordOut,
    RecordsAddedOut,
    RecordsAddInput,
    RecordUpdateInput,
    VersionInput,
    VersionOut,
)

CSV_COLUMNS = ("record_id", "inputs", "expectations", "outputs", "tags", "source")


class DatasetListApi(APIView):
    @extend_schema(
        operation_id="datasets_list",
        tags=["datasets"],
        responses={200: DatasetOut(many=True), **errors(404)},
    )
    def get(self, request, experiment_id):
        experiment = trace_selectors.experiment_for(request_actor(request), experiment_id)
        return Response(DatasetOut(selectors.datasets_of(experiment.pk), many=True).data)

    @extend_schema(
        operation_id="datasets_create",
        tags=["datasets"],
        request=DatasetInput,
        description="An empty dataset; 409 if the experiment has one of that name.",
        responses={201: DatasetOut, **errors(400, 403, 404, 409)},
    )
    def post(self, request, experiment_id):
        actor = request_actor(request)
        experiment = trace_selectors.experiment_for(actor, experiment_id)
        data = DatasetInput(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = services.create_dataset(experiment=experiment, actor=actor, **data.validated_data)
        return Response(DatasetOut(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailApi(APIView):
    @extend_schema(
        operation_id="datasets_read",
        tags=["datasets"],
        description="The dataset with its draft records (the next version) and its published versions.",
        responses={200: DatasetDetailOut, **errors(404)},
    )
    def get(self, request, dataset_id):
        dataset = selectors.dataset_for(request_actor(request), dataset_id)
        dataset.draft = selectors.draft_records(dataset)
        dataset.version_list = selectors.versions_of(dataset)
        return Response(DatasetDetailOut(dataset).data)

    @extend_schema(
        operation_id="datasets_delete",
        tags=["datasets"],
        description="Delete the dataset, its draft and its versions (owners and API keys).",
        responses={204: None, **errors(403, 404)},
    )
    def delete(self, request, dataset_id):
        actor = request_actor(request)
        services.delete_dataset(dataset=selectors.dataset_for(actor, dataset_id), actor=actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RecordsApi(APIView):
    @extend_schema(
        operation_id="datasets_records_add",
        tags=["datasets"],
        request=RecordsAddInput,
        description="Add a record per trace: `trace_ids`, the newest `limit` traces matching `filter` "
        "(the trace list's filter language), or the completed items of the review queue `queue_id`. "
        "A trace already in the draft has its record refreshed.",
        responses={201: RecordsAddedOut, **errors(400, 403, 404)},
    )
    def post(self, request, dataset_id):
        actor = request_actor(request)
        dataset = selectors.dataset_for(actor, dataset_id)
        data = RecordsAddInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            result = services.add_records(
                dataset=dataset,
                actor=actor,
                trace_ids=values.get("trace_ids"),
                filter_text=values.get("filter"),
                queue_id=values.get("queue_id"),
                limit=values.get("limit"),
                include_outputs=values["include_outputs"],
            )
        except FilterError as exc:
            raise DrfValidationError({"filter": [str(exc)]}) from None
        return Response(RecordsAddedOut(result).data, status=status.HTTP_201_CREATED)


class RecordDetailApi(APIView):
    @extend_schema(
        operation_id="datasets_records_update",
        tags=["datasets"],
        request=RecordUpdateInput,
        description="Edit a draft record; published versions keep their copy.",
        responses={200: RecordOut, **errors(400, 403, 404)},
    )
    def patch(self, request, dataset_id, record_id):
        actor = request_actor(request)
        record = selectors.record_for(selectors.dataset_for(actor, dataset_id), record_id)
        data = RecordUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        changes = {key: value for key, value in data.validated_data.items() if key in data.initial_data}
        return Response(RecordOut(services.update_record(record=record, actor=actor, **changes)).data)

    @extend_schema(
        operation_id="datasets_records_delete",
        tags=["datasets"],
        description="Remove a record from the draft; published versions keep their copy.",
        responses={204: None, **errors(403, 404)},
    )
    def delete(self, request, dataset_id, record_id):
        actor = request_actor(request)
        dataset = selectors.dataset_for(actor, dataset_id)
        record = selectors.record_for(dataset, record_id)
        services.delete_records(dataset=dataset, actor=actor, record_ids=[record.pk])
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionsApi(APIView):
    @extend_schema(
        operation_id="datasets_versions_list",
        tags=["datasets"],
        responses={200: VersionOut(many=True), **errors(404)},
    )
    def get(self, request, dataset_id):
        dataset = selectors.dataset_for(request_actor(request), dataset_id)
        return Response(VersionOut(selectors.versions_of(dataset), many=True).data)

    @extend_schema(
        operation_id="datasets_publish",
        tags=["datasets"],
        request=VersionInput,
        description="Publish the draft as the next numbered version; its records never change.",
        responses={201: OpenApiTypes.OBJECT, **errors(400, 403, 404)},
    )
    def post(self, request, dataset_id):
        actor = request_actor(request)
        dataset = selectors.dataset_for(actor, dataset_id)
        data = VersionInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.publish_version(dataset=dataset, actor=actor, note=data.validated_data["note"])
        return Response(
            {"version": version.version, "record_count": version.record_count}, status=status.HTTP_201_CREATED
        )


def _csv_row(line: dict) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(
        [line[name] if name == "record_id" else json.dumps(line[name], ensure_ascii=False) for name in CSV_COLUMNS]
    )
    return buffer.getvalue()


def export_lines(records, export_format: str):
    """A version's records as JSONL lines or CSV rows (JSON in each cell), streamed."""
    if export_format == "csv":
        yield ",".join(CSV_COLUMNS) + "\r\n"
    for record in records.iterator(chunk_size=500):
        line = selectors.record_line(record)
        yield _csv_row(line) if export_format == "csv" else json.dumps(line, ensure_ascii=False) + "\n"


class VersionRecordsApi(APIView):
    # `format` names the export format here, not DRF's renderer override.
    def perform_content_negotiation(self, request, force=False):
        return JSONRenderer(), "application/json"

    @extend_schema(
        operation_id="datasets_version_records",
        tags=["datasets"],
        parameters=[OpenApiParameter("format", str, enum=["jsonl", "csv"], description="default jsonl")],
        description="The version's records, one per line: `record_id`, `inputs`, `expectations`, `outputs`, "
        "`tags` and `source` (trace id, and per expectation the assessment id and revision it was taken at).",
        responses={(200, "application/jsonl"): OpenApiTypes.STR, **errors(400, 404)},
    )
    def get(self, request, dataset_id, number):
        dataset = selectors.dataset_for(request_actor(request), dataset_id)
        version = selectors.version_for(dataset, number)
        export_format = request.query_params.get("format", "jsonl")
        if export_format not in ("jsonl", "csv"):
            raise DrfValidationError({"format": [f"{export_format!r} is not jsonl or csv."]})
        content_type = "text/csv; charset=utf-8" if export_format == "csv" else "application/jsonl; charset=utf-8"
        response = StreamingHttpResponse(
            export_lines(selectors.version_records(version), export_format), content_type=content_type
        )
        filename = f"{dataset.name}-v{version.version}.{export_format}".replace('"', "")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class DiffApi(APIView):
    @extend_schema(
        operation_id="datasets_diff",
        tags=["datasets"],
        parameters=[
            OpenApiParameter("from", str, required=True, description="a version number or `draft`"),
            OpenApiParameter("to", str, required=True, description="a version number or `draft`"),
        ],
        description="Records added, removed and changed (with the fields that differ) between two versions.",
        responses={200: OpenApiTypes.OBJECT, **errors(400, 404)},
    )
    def get(self, request, dataset_id):
        dataset = selectors.dataset_for(request_actor(request), dataset_id)
        base, other = request.query_params.get("from"), request.query_params.get("to")
        if not base or not other:
            raise DrfValidationError({"from": ["Name both versions: ?from=1&to=2 (or draft)."]})
        return Response(selectors.diff(dataset, base, other).as_json())
