"""Native REST API v1 for agreement: judge vs human (two series) and reviewers among themselves.
Everyone who can read the experiment may ask. Thin views: parse, one selector call, the result."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.decorators import method_decorator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from feedbackhub.api import errors
from feedbackhub.replicas import reads_from_replica
from traces import selectors as trace_selectors
from traces.authentication import request_actor

from . import selectors
from .forms import AgreementForm, ReviewerAgreementForm


def _parsed(form):
    if not form.is_valid():
        raise ValidationError(form.errors.as_data())
    return form


def _parameters(form_class) -> list[OpenApiParameter]:
    return [
        OpenApiParameter(name, OpenApiTypes.STR, required=field.required, description=str(field.label))
        for name, field in form_class.base_fields.items()
    ]


class AgreementApi(APIView):
    @extend_schema(
        operation_id="agreement",
        tags=["insights"],
        parameters=_parameters(AgreementForm),
        description="Agreement between series A and B (a feedback name, optionally one source type, source "
        "id or queue), matched by trace and span: `n`, coverage, percent agreement and the statistics of "
        "their type, each with a 95% bootstrap interval over traces (1,000 resamples, seeded): Cohen's κ "
        "(boolean, category), quadratic-weighted κ (integer scales), Pearson, Spearman and MAE (numbers). "
        "Label types add `confusion` (every non-empty cell with its `trace_ids`).",
        responses={200: OpenApiTypes.OBJECT, **errors(400, 404)},
    )
    @method_decorator(reads_from_replica)
    def get(self, request, experiment_id):
        experiment = trace_selectors.experiment_for(request_actor(request), experiment_id)
        form = _parsed(AgreementForm(request.query_params))
        return Response(selectors.agreement(experiment, form.series("a"), form.series("b")))


class ReviewerAgreementApi(APIView):
    @extend_schema(
        operation_id="reviewer_agreement",
        tags=["insights"],
        parameters=_parameters(ReviewerAgreementForm),
        description="Agreement among the human reviewers of a feedback name (optionally within a queue): "
        "Krippendorff's α (nominal, ordinal or interval by type) with a 95% interval, Fleiss' κ when every "
        "item has the same number of ratings, and each pair of reviewers.",
        responses={200: OpenApiTypes.OBJECT, **errors(400, 404)},
    )
    @method_decorator(reads_from_replica)
    def get(self, request, experiment_id):
        experiment = trace_selectors.experiment_for(request_actor(request), experiment_id)
        form = _parsed(ReviewerAgreementForm(request.query_params))
        data = form.cleaned_data
        return Response(selectors.reviewer_agreement(experiment, data["name"], data["queue_id"]))
