"""`GET /api/v1/experiments/{experiment_id}/export`: the experiment's assessments or traces,
streamed as JSONL, CSV or Parquet. Anyone who sees the experiment may export it."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.views import APIView

from feedbackhub.api import errors
from traces import selectors as trace_selectors
from traces.api import query_params
from traces.authentication import request_actor

from . import writers
from .selectors import FORMATS, WHATS, export_spec

PARAMS = ("what", "format", "filter", "start_time", "end_time")


class _NoFormatOverride(DefaultContentNegotiation):
    """`format` names the export's file format here, not DRF's renderer: errors stay JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ExportApi(APIView):
    content_negotiation_class = _NoFormatOverride

    @extend_schema(
        operation_id="experiments_export",
        tags=["experiments"],
        description="Stream the experiment's assessments (one row each, with their trace's session, user, "
        "tags and previews) or traces (assessments nested in JSONL and Parquet, one row per assessment in "
        "CSV). `filter` is the trace filter language; `start_time`/`end_time` (epoch ms or ISO 8601) bound "
        "the traces' request time.",
        parameters=[
            OpenApiParameter("what", str, enum=list(WHATS), default="assessments"),
            OpenApiParameter("format", str, enum=list(FORMATS), default="jsonl"),
            OpenApiParameter("filter", str),
            OpenApiParameter("start_time", str),
            OpenApiParameter("end_time", str),
        ],
        responses={
            (200, media): OpenApiResponse(OpenApiTypes.BINARY, description="The file, streamed")
            for media in ("application/x-ndjson", "text/csv", "application/vnd.apache.parquet")
        }
        | errors(400, 404),
    )
    def get(self, request, experiment_id):
        actor = request_actor(request)
        experiment = trace_selectors.experiment_for(actor, experiment_id)
        params = {name: values[-1] for name, values in query_params(request, PARAMS).items()}
        fmt = params.get("format", "jsonl")
        if fmt not in FORMATS:
            raise ValidationError({"format": f"{fmt!r} is not one of {', '.join(FORMATS)}."})
        spec = export_spec(
            actor,
            experiment,
            what=params.get("what", "assessments"),
            filter_text=params.get("filter", ""),
            start_time=params.get("start_time", ""),
            end_time=params.get("end_time", ""),
        )
        response = StreamingHttpResponse(writers.stream(spec, fmt), content_type=writers.CONTENT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="{writers.filename(spec, fmt)}"'
        response["Cache-Control"] = "no-store"
        return response
