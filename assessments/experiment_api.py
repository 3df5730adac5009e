"""Native REST API v1: one experiment, read by everyone who sees it, its settings changed by
owners, staff and its API keys (assessments.experiment_settings decides)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from feedbackhub.api import errors
from traces import selectors as trace_selectors
from traces.authentication import request_actor
from traces.serializers import ExperimentOut

from .experiment_settings import MAX_RETENTION_DAYS, SETTINGS, update_experiment_settings


class ExperimentSettingsInput(serializers.Serializer):
    require_definitions = serializers.BooleanField(required=False)
    verdict_name = serializers.CharField(required=False, max_length=250)
    retention_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_RETENTION_DAYS
    )
    retention_keep_human = serializers.BooleanField(required=False)

    def validate(self, attrs):
        if isinstance(self.initial_data, dict):
            unknown = sorted(set(self.initial_data) - set(SETTINGS))
            if unknown:
                raise serializers.ValidationError(
                    {unknown[0]: f"is not a setting; the settings are {', '.join(SETTINGS)}"}
                )
        if not attrs:
            raise serializers.ValidationError({"settings": f"send at least one of {', '.join(SETTINGS)}"})
        return attrs


class ExperimentDetailApi(APIView):
    @extend_schema(operation_id="experiments_read", tags=["experiments"], responses={200: ExperimentOut, **errors(404)})
    def get(self, request, experiment_id):
        experiment = trace_selectors.experiment_for(request_actor(request), experiment_id)
        return Response(ExperimentOut(experiment).data)

    @extend_schema(
        operation_id="experiments_update",
        tags=["experiments"],
        request=ExperimentSettingsInput,
        description="Change any of the experiment's settings; the others stay. "
        "`require_definitions: true` refuses, on every write path, assessment names that have no "
        "definition; `verdict_name` is the name the reviewer's one-key thumbs write; "
        "`retention_days` (null = forever) and `retention_keep_human` govern `manage.py purge`. "
        "Owners, staff and the experiment's API keys.",
        responses={200: ExperimentOut, **errors(400, 403, 404)},
    )
    def patch(self, request, experiment_id):
        actor = request_actor(request)
        experiment = trace_selectors.experiment_for(actor, experiment_id)
        data = ExperimentSettingsInput(data=request.data)
        data.is_valid(raise_exception=True)
        experiment = update_experiment_settings(experiment=experiment, actor=actor, **data.validated_data)
        return Response(ExperimentOut(experiment).data)
