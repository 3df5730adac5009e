"""Native REST API v1 for assessments, and the trace detail that carries them.

Each write is one small APIView: parse with an `*Input` serializer, call the
service, present with `AssessmentOut`. Optimistic concurrency: responses carry
`ETag: "<version>"`; PATCH/DELETE honour `If-Match` (412 when stale).
"""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from traces import selectors as trace_selectors
from traces.authentication import request_actor

from . import selectors, services
from .serializers import (
    AssessmentOut,
    AssessmentUpdateInput,
    ExpectationInput,
    FeedbackInput,
    OverrideInput,
    RevisionOut,
    TraceDetailOut,
    source_kwargs,
)

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER,
    description="A retried request with the same key returns the original result and writes nothing.",
)
IF_MATCH_HEADER = OpenApiParameter(
    "If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER,
    description='The ETag ("<version>") you read; a stale one answers 412.',
)


def with_etag(response: Response, assessment) -> Response:
    response["ETag"] = f'"{assessment.version}"'
    return response


def if_match_version(request) -> int | None:
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    try:
        return int(header.strip().removeprefix("W/").strip('"'))
    except ValueError:
        raise ValidationError({"If-Match": ['must be an ETag this server sent, like "3"']}) from None


def idempotency_key(request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= 200:
        raise ValidationError({"Idempotency-Key": ["must be 1 to 200 characters"]})
    return key


def default_source_id(actor) -> str:
    return actor.user.get_username() if actor.user is not None else actor.label


class TraceDetailApi(APIView):
    @extend_schema(responses=TraceDetailOut)
    def get(self, request, trace_id):
        trace = trace_selectors.trace_for_detail(request_actor(request), trace_id)
        context = {"assessments": selectors.assessments_for_trace(trace)}
        return Response(TraceDetailOut(trace, context=context).data)


class _CreateApi(APIView):
    input_class = FeedbackInput
    service = staticmethod(services.log_feedback)

    def post(self, request, trace_id):
        actor = request_actor(request)
        trace = trace_selectors.trace_for(actor, trace_id)
        data = self.input_class(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        assessment = self.service(
            trace=trace, actor=actor, channel="api", idempotency_key=idempotency_key(request),
            **source_kwargs(fields, default_source_id(actor)), **fields,
        )
        replayed = getattr(assessment, "replayed", False)
        response = Response(AssessmentOut(assessment).data, status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return with_etag(response, assessment)


class FeedbackCreateApi(_CreateApi):
    @extend_schema(request=FeedbackInput, parameters=[IDEMPOTENCY_HEADER],
                   responses={201: AssessmentOut, 200: OpenApiResponse(AssessmentOut, description="Replayed")})
    def post(self, request, trace_id):
        return super().post(request, trace_id)


class ExpectationCreateApi(_CreateApi):
    input_class = ExpectationInput
    service = staticmethod(services.log_expectation)

    @extend_schema(request=ExpectationInput, parameters=[IDEMPOTENCY_HEADER],
                   responses={201: AssessmentOut, 200: OpenApiResponse(AssessmentOut, description="Replayed")})
    def post(self, request, trace_id):
        return super().post(request, trace_id)


class TraceAssessmentListApi(APIView):
    @extend_schema(responses=AssessmentOut(many=True))
    def get(self, request, trace_id):
        trace = trace_selectors.trace_for_detail(request_actor(request), trace_id)
        return Response(AssessmentOut(selectors.assessments_for_trace(trace), many=True).data)


class AssessmentDetailApi(APIView):
    @extend_schema(responses=AssessmentOut)
    def get(self, request, assessment_id):
        assessment = selectors.assessment_for(request_actor(request), assessment_id)
        return with_etag(Response(AssessmentOut(assessment).data), assessment)

    @extend_schema(request=AssessmentUpdateInput, parameters=[IF_MATCH_HEADER], responses=AssessmentOut)
    def patch(self, request, assessment_id):
        actor = request_actor(request)
        assessment = selectors.assessment_for(actor, assessment_id)
        data = AssessmentUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        updated = services.update_assessment(
            assessment=assessment, actor=actor, channel="api", expected_version=if_match_version(request),
            **data.validated_data,
        )
        updated.overridden_by_id = assessment.overridden_by_id
        return with_etag(Response(AssessmentOut(updated).data), updated)

    @extend_schema(parameters=[IF_MATCH_HEADER], responses={204: None})
    def delete(self, request, assessment_id):
        actor = request_actor(request)
        assessment = selectors.assessment_for(actor, assessment_id)
        expected = if_match_version(request)
        if expected is not None and expected != assessment.version:
            raise services.StaleVersion(assessment)
        services.delete_assessment(assessment=assessment, actor=actor, channel="api")
        return Response(status=status.HTTP_204_NO_CONTENT)


class AssessmentOverrideApi(APIView):
    @extend_schema(request=OverrideInput, responses={201: AssessmentOut})
    def post(self, request, assessment_id):
        actor = request_actor(request)
        assessment = selectors.assessment_for(actor, assessment_id)
        data = OverrideInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        new = services.override_feedback(
            assessment=assessment, actor=actor, channel="api", **source_kwargs(fields, default_source_id(actor)),
            **fields,
        )
        return with_etag(Response(AssessmentOut(new).data, status=status.HTTP_201_CREATED), new)


class AssessmentHistoryApi(APIView):
    @extend_schema(responses=RevisionOut(many=True))
    def get(self, request, assessment_id):
        revisions = selectors.history_visible_to(request_actor(request), assessment_id)
        return Response(RevisionOut(revisions, many=True).data)
