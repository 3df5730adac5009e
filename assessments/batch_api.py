"""`POST /api/v1/feedback:batch`: up to 1,000 feedback items in one request, all or nothing.

The items are validated and written by `services.log_feedback_batch` (same rules and
revision rows as the single path); this view only parses the envelope and presents
the result. The answer is deliberately small (ids, not whole assessments), so that
a batch costs its inserts rather than its serialization.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from feedbackhub.api import errors
from traces.authentication import request_actor

from . import services
from .api import default_source_id
from .serializers import AnyJSONField, ErrorInput, SourceInput


class FeedbackBatchItemInput(serializers.Serializer):
    """One item (documentation only: items are checked by the service, which names the failing index)."""

    trace_id = serializers.CharField()
    name = serializers.CharField(max_length=250)
    value = AnyJSONField(required=False, allow_null=True)
    error = ErrorInput(required=False, allow_null=True)
    rationale = serializers.CharField(required=False, allow_blank=True)
    source = SourceInput(required=False)
    span_id = serializers.CharField(required=False, allow_null=True)
    metadata = serializers.DictField(child=serializers.CharField(), required=False)
    idempotency_key = serializers.CharField(
        required=False,
        max_length=200,
        help_text="A retried batch with the same key replays this item.",
    )


class FeedbackBatchInput(serializers.Serializer):
    items = FeedbackBatchItemInput(many=True, help_text=f"1 to {services.MAX_BATCH_ITEMS} items")


class FeedbackBatchResultOut(serializers.Serializer):
    assessment_id = serializers.CharField()
    trace_id = serializers.CharField()
    name = serializers.CharField()
    replayed = serializers.BooleanField()


class FeedbackBatchOut(serializers.Serializer):
    created = serializers.IntegerField()
    replayed = serializers.IntegerField()
    assessments = FeedbackBatchResultOut(many=True)


BATCH_ERRORS = OpenApiResponse(
    inline_serializer(
        "FeedbackBatchErrors",
        {
            "detail": serializers.CharField(),
            "items": serializers.DictField(
                child=serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
                required=False,
                help_text="item index → field → messages; absent when the envelope itself is wrong",
            ),
        },
    ),
    description="Nothing was written: `detail` says why and `items` names each invalid item's fields.",
)


class FeedbackBatchApi(APIView):
    @extend_schema(
        request=FeedbackBatchInput,
        responses={
            201: FeedbackBatchOut,
            200: OpenApiResponse(
                FeedbackBatchOut,
                description="Every item was a replay; nothing was written.",
            ),
            **errors(413),
            400: BATCH_ERRORS,
        },
    )
    def post(self, request):
        actor = request_actor(request)
        body = request.data
        if not isinstance(body, dict) or "items" not in body:
            return Response(
                {"detail": 'The body must be a JSON object with an "items" list.'},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            results = services.log_feedback_batch(
                items=body["items"],
                actor=actor,
                channel="api",
                default_source_id=default_source_id(actor),
            )
        except services.BatchValidationError as exc:
            count = len(exc.item_errors)
            return Response(
                {
                    "detail": f"{count} of {len(body['items'])} items are invalid; nothing was written.",
                    "items": {str(index): errors for index, errors in exc.item_errors.items()},
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        except DjangoValidationError as exc:  # the envelope: not a list, empty, or too many items
            detail = "; ".join(
                f"{field}: {message}" for field, messages in exc.message_dict.items() for message in messages
            )
            return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)
        replayed = sum(1 for assessment in results if assessment.replayed)
        payload = {
            "created": len(results) - replayed,
            "replayed": replayed,
            "assessments": [
                {
                    "assessment_id": assessment.assessment_id,
                    "trace_id": assessment.trace_id,
                    "name": assessment.name,
                    "replayed": assessment.replayed,
                }
                for assessment in results
            ],
        }
        return Response(
            payload,
            status=status.HTTP_201_CREATED if len(results) > replayed else status.HTTP_200_OK,
        )
