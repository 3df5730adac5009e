"""Native REST API v1 for feedback definitions (the experiment's settings: assessments.experiment_api).

Everyone who sees the experiment reads; owners, staff and the experiment's API keys change
(the services decide). Thin views: parse, one service call, present.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from feedbackhub.api import errors
from traces import selectors as trace_selectors
from traces.authentication import request_actor

from . import selectors, services
from .serializers import DefinitionInput, DefinitionOut, DefinitionVersionOut


def _changes(data: DefinitionInput) -> dict:
    """The fields the client sent (a null constraint removes it on PATCH)."""
    return {key: value for key, value in data.validated_data.items() if key in data.initial_data}


class DefinitionListApi(APIView):
    @extend_schema(
        operation_id="definitions_list",
        tags=["definitions"],
        description="The experiment's definitions (archived ones too, marked `archived`), by name.",
        responses={200: DefinitionOut(many=True), **errors(404)},
    )
    def get(self, request, experiment_id):
        experiment = trace_selectors.experiment_for(request_actor(request), experiment_id)
        return Response(DefinitionOut(selectors.current_versions(experiment.pk), many=True).data)

    @extend_schema(
        operation_id="definitions_create",
        tags=["definitions"],
        request=DefinitionInput,
        description="Define an assessment name: 201 with `version: 1`; 409 if the name is defined; "
        "400 for a contradictory definition (e.g. `min` > `max`).",
        responses={201: DefinitionOut, **errors(400, 403, 404, 409)},
    )
    def post(self, request, experiment_id):
        actor = request_actor(request)
        experiment = trace_selectors.experiment_for(actor, experiment_id)
        data = DefinitionInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.create_definition(experiment=experiment, actor=actor, **_changes(data))
        return Response(DefinitionOut(version).data, status=status.HTTP_201_CREATED)


class DefinitionDetailApi(APIView):
    @extend_schema(operation_id="definitions_read", tags=["definitions"], responses={200: DefinitionOut, **errors(404)})
    def get(self, request, experiment_id, name):
        experiment = trace_selectors.experiment_for(request_actor(request), experiment_id)
        definition = selectors.definition_for(experiment, name)
        return Response(DefinitionOut(selectors.current_version(definition)).data)

    @extend_schema(
        operation_id="definitions_update",
        tags=["definitions"],
        request=DefinitionInput(partial_update=True),
        description="Write the next version: the current one with the fields sent (`null` removes a "
        "constraint). 200 with the new `version`; existing assessments keep theirs.",
        responses={200: DefinitionOut, **errors(400, 403, 404, 409)},
    )
    def patch(self, request, experiment_id, name):
        actor = request_actor(request)
        experiment = trace_selectors.experiment_for(actor, experiment_id)
        definition = selectors.definition_for(experiment, name)
        data = DefinitionInput(data=request.data, partial_update=True)
        data.is_valid(raise_exception=True)
        version = services.update_definition(definition=definition, actor=actor, **_changes(data))
        return Response(DefinitionOut(version).data)

    @extend_schema(
        operation_id="definitions_archive",
        tags=["definitions"],
        description="Archive: no longer enforced; its versions and the assessments' stamps stay.",
        responses={204: None, **errors(403, 404)},
    )
    def delete(self, request, experiment_id, name):
        actor = request_actor(request)
        experiment = trace_selectors.experiment_for(actor, experiment_id)
        definition = selectors.definition_for(experiment, name)
        services.archive_definition(definition=definition, actor=actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DefinitionVersionListApi(APIView):
    @extend_schema(
        operation_id="definitions_versions",
        tags=["definitions"],
        description="Every version of the definition, oldest first.",
        responses={200: DefinitionVersionOut(many=True), **errors(404)},
    )
    def get(self, request, experiment_id, name):
        experiment = trace_selectors.experiment_for(request_actor(request), experiment_id)
        definition = selectors.definition_for(experiment, name)
        return Response(DefinitionVersionOut(selectors.versions_of(definition), many=True).data)
