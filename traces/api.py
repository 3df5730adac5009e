"""Native REST API v1 for experiments and traces (thin: parse, call service or selector, present)."""

from django.utils.decorators import method_decorator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from feedbackhub.api import errors
from feedbackhub.replicas import reads_from_replica
from feedbackhub.timeouts import bounded_search

from . import selectors, services
from .access import visible_experiments
from .authentication import request_actor
from .filters import FilterError
from .serializers import ExperimentInput, ExperimentOut, TraceInput, TraceOut, TracePageOut, simple_trace_input

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100
SEARCH_PARAMS = ("experiment_id", "filter", "status", "start_time", "end_time", "order_by", "page_token", "max_results")


def query_params(request, names) -> dict[str, list[str]]:
    """The named query parameters (all values of each); NUL characters are refused, naming the parameter."""
    params = {name: request.query_params.getlist(name) for name in names if name in request.query_params}
    for name, values in params.items():
        if any("\x00" in value for value in values):
            raise ValidationError({name: ["must not contain NUL characters"]})
    return params


class ExperimentListApi(APIView):
    @extend_schema(
        operation_id="experiments_list", tags=["experiments"], responses={200: ExperimentOut(many=True), **errors()}
    )
    def get(self, request):
        experiments = visible_experiments(request_actor(request)).order_by("name")
        return Response(ExperimentOut(experiments, many=True).data)

    @extend_schema(
        operation_id="experiments_create",
        tags=["experiments"],
        request=ExperimentInput,
        description="Create an experiment. A user becomes its owner; a key gets access to it. 409 if the name is taken.",
        responses={201: ExperimentOut, **errors(400, 403, 409, 413)},
    )
    def post(self, request):
        data = ExperimentInput(data=request.data)
        data.is_valid(raise_exception=True)
        experiment = services.create_experiment(actor=request_actor(request), **data.validated_data)
        return Response(ExperimentOut(experiment).data, status=status.HTTP_201_CREATED)


class TraceListApi(APIView):
    @extend_schema(
        operation_id="traces_search",
        tags=["traces"],
        description="Traces visible to the caller, newest first by default, one page at a time: pass "
        "`next_page_token` back as `page_token` for the next page (it is null on the last one).",
        parameters=[
            OpenApiParameter(
                "experiment_id",
                OpenApiTypes.STR,
                many=True,
                description="Repeat for several; each must be visible (404 otherwise).",
            ),
            OpenApiParameter(
                "filter", OpenApiTypes.STR, description="Filter language, e.g. feedback.user_satisfaction = false"
            ),
            OpenApiParameter("status", OpenApiTypes.STR, enum=["OK", "ERROR", "IN_PROGRESS", "STATE_UNSPECIFIED"]),
            OpenApiParameter("start_time", OpenApiTypes.STR, description="Epoch ms or ISO 8601, inclusive"),
            OpenApiParameter("end_time", OpenApiTypes.STR, description="Epoch ms or ISO 8601, exclusive"),
            OpenApiParameter("order_by", OpenApiTypes.STR, description="request_time|execution_time_ms ASC|DESC"),
            OpenApiParameter("page_token", OpenApiTypes.STR),
            OpenApiParameter(
                "max_results",
                {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
                description=f"Page size, default {DEFAULT_PAGE_SIZE}",
            ),
        ],
        responses={200: TracePageOut, **errors(400, 404)},
    )
    @method_decorator(reads_from_replica)
    def get(self, request):
        actor = request_actor(request)
        params = {name: values[-1] for name, values in query_params(request, SEARCH_PARAMS).items()}
        experiment_ids = request.query_params.getlist("experiment_id")
        try:
            page_size = int(params.get("max_results", DEFAULT_PAGE_SIZE))
        except ValueError:
            raise ValidationError({"max_results": ["must be an integer"]}) from None
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValidationError({"max_results": [f"must be between 1 and {MAX_PAGE_SIZE}"]})
        # Asking for an experiment the caller cannot see is a 404, as for every other endpoint.
        for experiment_id in experiment_ids:
            selectors.experiment_for(actor, experiment_id)
        try:
            queryset = selectors.search_traces(
                actor,
                experiment_ids=experiment_ids,
                filter_text=params.get("filter"),
                status=params.get("status"),
                start_time=params.get("start_time"),
                end_time=params.get("end_time"),
            )
        except FilterError as exc:
            raise ValidationError({"filter": [str(exc)]}) from None
        with bounded_search():  # a 400 naming the filter when it runs past the statement timeout
            page = selectors.keyset_page(
                queryset,
                ordering=selectors.parse_ordering(params.get("order_by")),
                page_token=params.get("page_token"),
                page_size=page_size,
            )
        return Response({"traces": TraceOut(page.items, many=True).data, "next_page_token": page.next_token})

    @extend_schema(
        operation_id="traces_ingest",
        tags=["traces"],
        request=TraceInput,
        description="Store a trace with its spans. Posting the same `trace_id` again merges into the stored trace "
        "(spans are upserted by `span_id`, tags and metadata merged) and answers 200 instead of 201. "
        "`experiment_id` may be left out when the API key is scoped to a single experiment.",
        responses={
            201: OpenApiResponse(TraceOut, description="Created"),
            200: OpenApiResponse(TraceOut, description="Merged into the stored trace"),
            **errors(400, 403, 404, 409, 413),
        },
    )
    def post(self, request):
        actor = request_actor(request)
        fields = simple_trace_input(request.data)
        if fields is None:
            data = TraceInput(data=request.data)
            data.is_valid(raise_exception=True)
            fields = dict(data.validated_data)
        experiment = services.experiment_for_ingest(actor, experiment_id=fields.pop("experiment_id", None))
        trace, created = services.ingest_trace(experiment=experiment, actor=actor, channel="api", **fields)
        return Response(TraceOut(trace).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
