"""Native REST API v1 for assessments, and the trace detail that carries them.

Each write is one small APIView: parse with an `*Input` serializer, call the
service, present with `AssessmentOut`. Optimistic concurrency: responses carry
`ETag: "<version>"`; PATCH/DELETE honour `If-Match` (412 when stale).
"""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from feedbackhub.api import errors
from traces import selectors as trace_selectors
from traces.authentication import request_actor
from traces.models import TRACE_ID_RE

from . import selectors, services
from .serializers import (
    AssessmentOut,
    AssessmentUpdateInput,
    ExpectationInput,
    FeedbackInput,
    OverrideInput,
    RevisionOut,
    TraceDetailOut,
    simple_create_input,
    source_kwargs,
)
from .trace_deletion import delete_traces

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 200},
    OpenApiParameter.HEADER,
    description="A retried request with the same key returns the original result (200) and writes nothing.",
)
IF_MATCH_HEADER = OpenApiParameter(
    "If-Match",
    {"type": "string", "pattern": r'^(\*|(W/)?"?[0-9]{1,9}"?)$'},
    OpenApiParameter.HEADER,
    description='The ETag ("<version>") you read; a stale one answers 412.',
)
TRACE_ID_PARAM = OpenApiParameter(
    "trace_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="'tr-' + 32 lowercase hex digits",
)
ASSESSMENT_ID_PARAM = OpenApiParameter(
    "assessment_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="'a-' + 32 lowercase hex digits",
)
MAX_ID_LENGTH = 50
# Fields of an assessment that no PATCH can change (clients often send back what they read).
IMMUTABLE_FIELDS = (
    "assessment_id",
    "trace_id",
    "span_id",
    "kind",
    "source",
    "overrides",
    "valid",
)


def checked_id(value: str, what: str, pattern=None) -> str:
    """A path id that cannot name a row answers 404 before it reaches the database."""
    if len(value) > MAX_ID_LENGTH or "\x00" in value or (pattern is not None and not pattern.fullmatch(value)):
        raise Http404(f"{what} not found.")
    return value


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
    @extend_schema(
        operation_id="traces_get",
        tags=["traces"],
        parameters=[TRACE_ID_PARAM],
        description="The trace with its spans (by start time) and all its assessments (oldest first).",
        responses={200: TraceDetailOut, **errors(404)},
    )
    def get(self, request, trace_id):
        actor = request_actor(request)
        trace = trace_selectors.trace_for_detail(actor, checked_id(trace_id, "Trace"))
        context = {"assessments": selectors.assessments_for_trace(trace, actor)}
        return Response(TraceDetailOut(trace, context=context).data)

    @extend_schema(
        operation_id="traces_delete",
        tags=["traces"],
        parameters=[TRACE_ID_PARAM],
        request=None,
        description="Delete the trace with its spans, assessments and their history (owners and API keys). "
        "The deletion is recorded (who, which trace, when).",
        responses={204: None, **errors(403, 404)},
    )
    def delete(self, request, trace_id):
        actor = request_actor(request)
        trace = trace_selectors.trace_for(actor, checked_id(trace_id, "Trace"))
        delete_traces(experiment=trace.experiment, actor=actor, channel="api", trace_ids=[trace.trace_id])
        return Response(status=status.HTTP_204_NO_CONTENT)


def create_fields(request, kind: str, actor) -> dict:
    """The create arguments of a native feedback / expectation body (400 naming what is wrong)."""
    fields = simple_create_input(request.data, kind)
    if fields is None:
        data = (FeedbackInput if kind == "feedback" else ExpectationInput)(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
    fields = dict(fields)
    source = source_kwargs(fields, default_source_id(actor))  # pops `source`
    return {**fields, **source}


class _CreateApi(APIView):
    kind = "feedback"

    def post(self, request, trace_id):
        actor = request_actor(request)
        trace_id = checked_id(trace_id, "Trace", TRACE_ID_RE)  # before the body: an id no trace has is 404
        created = services.create(
            kind=self.kind,
            trace_id=trace_id,
            actor=actor,
            channel="api",
            idempotency_key=idempotency_key(request),
            **create_fields(request, self.kind, actor),
        )
        response = Response(AssessmentOut().to_representation(created.assessment), status=201)
        if created.replayed:
            response.status_code = status.HTTP_200_OK
            response["Idempotent-Replayed"] = "true"
        return with_etag(response, created.assessment)


CREATE_RESPONSES = {
    201: AssessmentOut,
    200: OpenApiResponse(AssessmentOut, description="Replayed: the Idempotency-Key was used before"),
    **errors(400, 403, 404, 409, 413),
}


class FeedbackCreateApi(_CreateApi):
    @extend_schema(
        operation_id="feedback_create",
        tags=["assessments"],
        request=FeedbackInput,
        parameters=[TRACE_ID_PARAM, IDEMPOTENCY_HEADER],
        responses=CREATE_RESPONSES,
        description="Log feedback on the trace (or one of its spans, `span_id`): a `value` of any JSON "
        "type, or an `error` when the rater failed. `source` defaults to HUMAN and the caller.",
    )
    def post(self, request, trace_id):
        return super().post(request, trace_id)


class ExpectationCreateApi(_CreateApi):
    kind = "expectation"

    @extend_schema(
        operation_id="expectations_create",
        tags=["assessments"],
        request=ExpectationInput,
        parameters=[TRACE_ID_PARAM, IDEMPOTENCY_HEADER],
        responses=CREATE_RESPONSES,
        description="Log an expectation (ground truth) on the trace; same shape as feedback, no error.",
    )
    def post(self, request, trace_id):
        return super().post(request, trace_id)


class TraceAssessmentListApi(APIView):
    @extend_schema(
        operation_id="trace_assessments_list",
        tags=["assessments"],
        parameters=[TRACE_ID_PARAM],
        description="All assessments of the trace, valid and overridden, oldest first.",
        responses={200: AssessmentOut(many=True), **errors(404)},
    )
    def get(self, request, trace_id):
        actor = request_actor(request)
        trace = trace_selectors.trace_for_detail(actor, checked_id(trace_id, "Trace"))
        return Response(AssessmentOut(selectors.assessments_for_trace(trace, actor), many=True).data)


class AssessmentDetailApi(APIView):
    @extend_schema(
        operation_id="assessments_get",
        tags=["assessments"],
        parameters=[ASSESSMENT_ID_PARAM],
        responses={200: AssessmentOut, **errors(404)},
    )
    def get(self, request, assessment_id):
        # or_pending: feedback held for a trace that has not arrived yet reads like any other
        actor = request_actor(request)
        assessment = selectors.assessment_or_pending_for(actor, checked_id(assessment_id, "Assessment"))
        return with_etag(Response(AssessmentOut(assessment).data), assessment)

    @extend_schema(
        operation_id="assessments_update",
        tags=["assessments"],
        request=AssessmentUpdateInput,
        parameters=[ASSESSMENT_ID_PARAM, IF_MATCH_HEADER],
        description="Change name, value, error, rationale and/or metadata. Source, span and kind cannot change "
        "(sending them back unchanged is fine). Reviewers may change only their own assessments.",
        responses={200: AssessmentOut, **errors(400, 403, 404, 412, 413)},
    )
    def patch(self, request, assessment_id):
        actor = request_actor(request)
        assessment = selectors.assessment_or_pending_for(actor, checked_id(assessment_id, "Assessment"))
        data = AssessmentUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        current = AssessmentOut(assessment).data
        fixed = {
            field: [f"cannot be changed (it is {current[field]!r})"]
            for field in IMMUTABLE_FIELDS
            if field in request.data and request.data[field] != current[field]
        }
        if fixed:
            raise ValidationError(fixed)
        updated = services.update(
            assessment=assessment,
            actor=actor,
            channel="api",
            expected_version=if_match_version(request),
            **data.validated_data,
        )
        updated.overridden_by_id = assessment.overridden_by_id
        return with_etag(Response(AssessmentOut(updated).data), updated)

    @extend_schema(
        operation_id="assessments_delete",
        tags=["assessments"],
        parameters=[ASSESSMENT_ID_PARAM, IF_MATCH_HEADER],
        description="Delete the assessment; if it overrode another, that one becomes valid again.",
        responses={
            204: OpenApiResponse(description="Deleted"),
            **errors(400, 403, 404, 412),
        },
    )
    def delete(self, request, assessment_id):
        actor = request_actor(request)
        assessment = selectors.assessment_or_pending_for(actor, checked_id(assessment_id, "Assessment"))
        services.delete(assessment=assessment, actor=actor, channel="api", expected_version=if_match_version(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AssessmentOverrideApi(APIView):
    @extend_schema(
        operation_id="assessments_override",
        tags=["assessments"],
        request=OverrideInput,
        parameters=[ASSESSMENT_ID_PARAM],
        description="Replace a feedback with a corrected one: 201 with the new assessment; the old one "
        "stays, with `valid: false`. 409 for an expectation or an already overridden feedback.",
        responses={201: AssessmentOut, **errors(400, 403, 404, 409, 413)},
    )
    def post(self, request, assessment_id):
        actor = request_actor(request)
        assessment = selectors.assessment_for(actor, checked_id(assessment_id, "Assessment"))
        data = OverrideInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        new = services.override(
            assessment=assessment,
            actor=actor,
            channel="api",
            **source_kwargs(fields, default_source_id(actor)),
            **fields,
        )
        return with_etag(Response(AssessmentOut(new).data, status=status.HTTP_201_CREATED), new)


class AssessmentHistoryApi(APIView):
    @extend_schema(
        operation_id="assessments_history",
        tags=["assessments"],
        parameters=[ASSESSMENT_ID_PARAM],
        description="Every revision of the assessment, oldest first; still readable after a delete.",
        responses={200: RevisionOut(many=True), **errors(404)},
    )
    def get(self, request, assessment_id):
        revisions = selectors.history_visible_to(request_actor(request), checked_id(assessment_id, "Assessment"))
        return Response(RevisionOut(revisions, many=True).data)
