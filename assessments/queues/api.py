"""Native REST API v1 for review queues. Owners and API keys manage queues and items; `next`,
answers and declines are a person's (session + CSRF, as the panel). Thin views: parse, one
service call, present."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from feedbackhub.api import errors
from traces import selectors as trace_selectors
from traces.authentication import request_actor

from . import selectors, services
from .serializers import (
    AnswerInput,
    DeclineInput,
    ItemsAddedOut,
    ItemsAddInput,
    NextOut,
    ProgressOut,
    QueueInput,
    QueueOut,
    WorkOut,
)


def _sent(data) -> dict:
    """The fields the client sent (and the rule's columns, which validate() derives)."""
    sent = set(data.initial_data) | {"rule_filter", "rule_sample_rate"}
    return {key: value for key, value in data.validated_data.items() if key in sent}


class QueueListApi(APIView):
    @extend_schema(
        operation_id="queues_list",
        tags=["queues"],
        description="The experiment's review queues, newest first (archived ones too).",
        responses={200: QueueOut(many=True), **errors(404)},
    )
    def get(self, request, experiment_id):
        experiment = trace_selectors.experiment_for(request_actor(request), experiment_id)
        return Response(QueueOut(selectors.queues_of_experiment(experiment), many=True).data)

    @extend_schema(
        operation_id="queues_create",
        tags=["queues"],
        request=QueueInput,
        description="Create a queue asking the named definitions: 201 with its `queue_id`. Owners and API keys.",
        responses={201: QueueOut, **errors(400, 403, 404)},
    )
    def post(self, request, experiment_id):
        actor = request_actor(request)
        experiment = trace_selectors.experiment_for(actor, experiment_id)
        data = QueueInput(data=request.data)
        data.is_valid(raise_exception=True)
        queue = services.create_queue(experiment=experiment, actor=actor, **_sent(data))
        return Response(QueueOut(queue).data, status=status.HTTP_201_CREATED)


class QueueDetailApi(APIView):
    @extend_schema(operation_id="queues_read", tags=["queues"], responses={200: QueueOut, **errors(404)})
    def get(self, request, queue_id):
        return Response(QueueOut(selectors.queue_for(request_actor(request), queue_id)).data)

    @extend_schema(
        operation_id="queues_update",
        tags=["queues"],
        request=QueueInput(partial_update=True),
        description="Change the fields sent; `archived: true` archives, `rule: null` removes the rule.",
        responses={200: QueueOut, **errors(400, 403, 404)},
    )
    def patch(self, request, queue_id):
        actor = request_actor(request)
        queue = selectors.queue_for(actor, queue_id)
        data = QueueInput(data=request.data, partial_update=True)
        data.is_valid(raise_exception=True)
        changes = {k: v for k, v in data.validated_data.items() if k in request.data or k.startswith("rule_")}
        queue = services.update_queue(queue=queue, actor=actor, **changes)
        return Response(QueueOut(queue).data)


class QueueItemsApi(APIView):
    @extend_schema(
        operation_id="queues_items_add",
        tags=["queues"],
        request=ItemsAddInput,
        description='`{"trace_ids": […]}` or `{"filter": "…", "limit": n}` (default 1000, oldest first). '
        "Idempotent: counts what was added, already queued, or removed before (re-added only with "
        "`restore: true`).",
        responses={200: ItemsAddedOut, **errors(400, 403, 404)},
    )
    def post(self, request, queue_id):
        actor = request_actor(request)
        queue = selectors.queue_for(actor, queue_id)
        data = ItemsAddInput(data=request.data)
        data.is_valid(raise_exception=True)
        counts = services.add_items(
            queue=queue,
            actor=actor,
            trace_ids=data.validated_data.get("trace_ids"),
            filter=data.validated_data.get("filter"),
            limit=data.validated_data.get("limit"),
            restore=data.validated_data["restore"],
        )
        return Response(ItemsAddedOut(counts).data)


class QueueItemDeleteApi(APIView):
    @extend_schema(
        operation_id="queues_items_remove",
        tags=["queues"],
        description="Remove the trace from the queue (its answers stay).",
        responses={204: None, **errors(403, 404)},
    )
    def delete(self, request, queue_id, trace_id):
        actor = request_actor(request)
        queue = selectors.queue_for(actor, queue_id)
        services.remove_item(queue=queue, actor=actor, trace_id=trace_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class QueueNextApi(APIView):
    @extend_schema(
        operation_id="queues_next",
        tags=["queues"],
        request=None,
        description="Lease the next item for the signed-in reviewer; 204 when nothing is left for them.",
        responses={200: NextOut, 204: None, **errors(403, 404, 409)},
    )
    def post(self, request, queue_id):
        actor = request_actor(request)
        queue = selectors.queue_for_work(actor, queue_id)
        work = services.next_item(queue=queue, actor=actor)
        if work is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(NextOut({"item": work}).data)


class QueueAnswerApi(APIView):
    @extend_schema(
        operation_id="queues_answer",
        tags=["queues"],
        request=AnswerInput,
        description="Answer every question of the queue on the item: 201 the first time, 200 when an "
        "answer is changed (its assessments are updated, never duplicated).",
        responses={201: WorkOut, 200: WorkOut, **errors(400, 403, 404, 409)},
    )
    def post(self, request, queue_id, trace_id):
        actor = request_actor(request)
        queue = selectors.queue_for_work(actor, queue_id)
        data = AnswerInput(data=request.data)
        data.is_valid(raise_exception=True)
        work, created = services.answer(
            queue=queue,
            actor=actor,
            trace_id=trace_id,
            answers=data.validated_data["answers"],
            rationale=data.validated_data.get("rationale"),
        )
        return Response(WorkOut(work).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class QueueDeclineApi(APIView):
    @extend_schema(
        operation_id="queues_decline",
        tags=["queues"],
        request=DeclineInput,
        description="Decline the item (optional `reason`): it goes back to the others, never to you.",
        responses={200: WorkOut, **errors(400, 403, 404, 409)},
    )
    def post(self, request, queue_id, trace_id):
        actor = request_actor(request)
        queue = selectors.queue_for_work(actor, queue_id)
        data = DeclineInput(data=request.data)
        data.is_valid(raise_exception=True)
        work = services.decline(queue=queue, actor=actor, trace_id=trace_id, reason=data.validated_data["reason"])
        return Response(WorkOut(work).data)


class QueueProgressApi(APIView):
    @extend_schema(operation_id="queues_progress", tags=["queues"], responses={200: ProgressOut, **errors(404)})
    def get(self, request, queue_id):
        queue = selectors.queue_for(request_actor(request), queue_id)
        return Response(ProgressOut(selectors.progress(queue)).data)
