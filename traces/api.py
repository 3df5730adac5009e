"""Native REST API v1 for experiments and traces (thin: parse, call service or selector, present)."""
from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services
from .access import visible_experiments
from .authentication import request_actor
from .filters import FilterError
from .serializers import ExperimentInput, ExperimentOut, TraceInput, TraceOut, TracePageOut

MAX_PAGE_SIZE = 500


class ExperimentListApi(APIView):
    @extend_schema(responses=ExperimentOut(many=True))
    def get(self, request):
        experiments = visible_experiments(request_actor(request)).order_by("name")
        return Response(ExperimentOut(experiments, many=True).data)

    @extend_schema(request=ExperimentInput, responses={201: ExperimentOut})
    def post(self, request):
        data = ExperimentInput(data=request.data)
        data.is_valid(raise_exception=True)
        experiment = services.create_experiment(actor=request_actor(request), **data.validated_data)
        return Response(ExperimentOut(experiment).data, status=status.HTTP_201_CREATED)


def _experiment_for_ingest(actor, experiment_id):
    if experiment_id is None:
        if actor.api_key is not None and len(actor.key_experiment_ids) == 1:
            experiment_id = next(iter(actor.key_experiment_ids))
        else:
            raise ValidationError({"experiment_id": ["This field is required (the key is not scoped to one experiment)."]})
    return selectors.experiment_for(actor, experiment_id)


class TraceListApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("experiment_id", OpenApiTypes.STR, many=True, description="Repeat for several."),
            OpenApiParameter("filter", OpenApiTypes.STR, description="Filter language, e.g. feedback.user_satisfaction = false"),
            OpenApiParameter("status", OpenApiTypes.STR, enum=["OK", "ERROR", "IN_PROGRESS", "STATE_UNSPECIFIED"]),
            OpenApiParameter("start_time", OpenApiTypes.STR, description="Epoch ms or ISO 8601, inclusive"),
            OpenApiParameter("end_time", OpenApiTypes.STR, description="Epoch ms or ISO 8601, exclusive"),
            OpenApiParameter("order_by", OpenApiTypes.STR, description="request_time|execution_time_ms ASC|DESC"),
            OpenApiParameter("page_token", OpenApiTypes.STR),
            OpenApiParameter("max_results", OpenApiTypes.INT, description="1–500, default 100"),
        ],
        responses=TracePageOut,
    )
    def get(self, request):
        actor = request_actor(request)
        params = request.query_params
        try:
            page_size = int(params.get("max_results", 100))
        except ValueError:
            raise ValidationError({"max_results": ["must be an integer"]}) from None
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValidationError({"max_results": [f"must be between 1 and {MAX_PAGE_SIZE}"]})
        try:
            queryset = selectors.search_traces(
                actor,
                experiment_ids=params.getlist("experiment_id"),
                filter_text=params.get("filter"),
                status=params.get("status"),
                start_time=params.get("start_time"),
                end_time=params.get("end_time"),
            )
        except FilterError as exc:
            raise ValidationError({"filter": [str(exc)]}) from None
        page = selectors.keyset_page(
            queryset,
            ordering=selectors.parse_ordering(params.get("order_by")),
            page_token=params.get("page_token"),
            page_size=page_size,
        )
        return Response({"traces": TraceOut(page.items, many=True).data, "next_page_token": page.next_token})

    @extend_schema(request=TraceInput, responses={201: TraceOut, 200: TraceOut})
    def post(self, request):
        actor = request_actor(request)
        data = TraceInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        experiment = _experiment_for_ingest(actor, fields.pop("experiment_id", None))
        trace, created = services.ingest_trace(experiment=experiment, actor=actor, channel="api", **fields)
        return Response(TraceOut(trace).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
