"""Native REST API v1 for assessments, and the trace detail that carries them.

Each write is one small APIView: parse with an `*Input` serializer, call the
service, present with `AssessmentOut`. Optimistic concurrency: responses carry
`ETag: "<version>"`; PATCH/DELETE honour `If-Match` (412 when stale).
"""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError, UnsupportedMediaType, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from feedbackhub.api import errors
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


def checked_id(value: str, what: str) -> str:
    """A path id that cannot name a row answers 404 before it reaches the database."""
    if len(value) > MAX_ID_LENGTH or "\x00" in value:
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
        trace = trace_selectors.trace_for_detail(request_actor(request), checked_id(trace_id, "Trace"))
        context = {"assessments": selectors.assessments_for_trace(trace)}
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


class _CreateApi(APIView):
    input_class = FeedbackInput
    service = staticmethod(services.log_feedback)
    kind = "feedback"

    def post(self, request, trace_id):
        actor = request_actor(request)
        try:
            fields, unreadable = simple_create_input(request.data, self.kind), None
        except (ParseError, UnsupportedMediaType) as exc:
            fields, unreadable = None, exc  # raised after the trace lookup, as before
        if fields is not None and "Idempotency-Key" not in request.headers:
            # An API key's plain create: the trace lookup and the insert in one statement; when
            # that writes nothing, the path below decides (404, pending feedback, errors).
            assessment = services.create_by_trace_id(
                kind=self.kind,
                trace_id=checked_id(trace_id, "Trace"),
                actor=actor,
                channel="api",
                **source_kwargs(dict(fields), default_source_id(actor)),
                **{key: value for key, value in fields.items() if key != "source"},
            )
            if assessment is not None:
                response = Response(AssessmentOut().to_representation(assessment), status=status.HTTP_201_CREATED)
                return with_etag(response, assessment)
        # Apps export traces in the background, so feedback may overtake its trace: an API key's
        # create for a well-formed, unseen trace id is held until the trace arrives.
        trace = services.trace_for_create(actor, checked_id(trace_id, "Trace"))
        hold = trace is None
        if unreadable is not None:
            raise unreadable
        if fields is None:
            data = self.input_class(data=request.data)
            data.is_valid(raise_exception=True)
            fields = dict(data.validated_data)
        if hold:
            pending = services.hold_pending(
                trace_id=trace_id,
                kind=self.kind,
                actor=actor,
                channel="api",
                **source_kwargs(fields, default_source_id(actor)),
                **fields,
            )
            return with_etag(
                Response(AssessmentOut(pending).data, status=status.HTTP_201_CREATED),
                pending,
            )
        assessment = self.service(
            trace=trace,
            actor=actor,
            channel="api",
            idempotency_key=idempotency_key(request),
            **source_kwargs(fields, default_source_id(actor)),
            **fields,
        )
        replayed = getattr(assessment, "replayed", False)
        response = Response(
            AssessmentOut().to_representation(assessment),
            status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED,
        )
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return with_etag(response, assessment)


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
    input_class = ExpectationInput
    service = staticmethod(services.log_expectation)
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
        trace = trace_selectors.trace_for_detail(request_actor(request), checked_id(trace_id, "Trace"))
        return Response(AssessmentOut(selectors.assessments_for_trace(trace), many=True).data)


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
        assessment = selectors.assessment_for(actor, checked_id(assessment_id, "Assessment"))
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
        updated = services.update_assessment(
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
        assessment = selectors.assessment_for(actor, checked_id(assessment_id, "Assessment"))
        expected = if_match_version(request)
        if expected is not None and expected != assessment.version:
            raise services.StaleVersion(assessment)
        services.delete_assessment(assessment=assessment, actor=actor, channel="api")
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
        new = services.override_feedback(
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
