"""Native REST API v1: feedback metrics of an experiment, bucketed by the traces' time.

Same access as the experiment (404 outside it). Thin: parse, one selector call, present.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.decorators import method_decorator
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from feedbackhub.api import errors
from feedbackhub.replicas import reads_from_replica
from traces import selectors as trace_selectors
from traces.authentication import request_actor
from traces.filters import FilterError

from . import metrics
from .selection import Scope, name_types
from .timerange import STEPS, auto_interval

DEFAULT_RANGE = timedelta(days=7)
MAX_BUCKETS = 5000


class MetricsQuery(serializers.Serializer):
    name = serializers.CharField(max_length=250)
    interval = serializers.ChoiceField(choices=list(STEPS), required=False)
    start_time = serializers.CharField(
        required=False, help_text="Epoch milliseconds or ISO 8601; default end_time − 7 days."
    )
    end_time = serializers.CharField(
        required=False, help_text="Epoch milliseconds or ISO 8601 (exclusive); default now."
    )
    filter = serializers.CharField(required=False, allow_blank=True, max_length=10000)
    group_by = serializers.CharField(required=False, help_text="source_type, tag:<key> or metadata:<key>.")


class BucketOut(serializers.Serializer):
    start = serializers.DateTimeField()
    count = serializers.IntegerField(help_text="Valid feedback rows of the name on the bucket's traces.")
    group = serializers.CharField(required=False, allow_null=True)
    positive_rate = serializers.FloatField(required=False, allow_null=True)
    mean = serializers.FloatField(required=False, allow_null=True)
    median = serializers.FloatField(required=False, allow_null=True)
    counts = serializers.DictField(child=serializers.IntegerField(), required=False)


class MetricsOut(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    interval = serializers.CharField()
    start_time = serializers.DateTimeField()
    end_time = serializers.DateTimeField()
    buckets = BucketOut(many=True)


def _group(text: str | None):
    if not text:
        return None
    if text == "source_type":
        return ("source_type", "")
    kind, _, key = text.partition(":")
    if kind in ("tag", "metadata") and key:
        return (kind, key)
    raise ValidationError({"group_by": "must be source_type, tag:<key> or metadata:<key>"})


class MetricsApi(APIView):
    @extend_schema(
        operation_id="experiments_metrics",
        tags=["insights"],
        parameters=[MetricsQuery],
        description="Buckets of one feedback name over the traces' request time: `count`, and by type "
        "`positive_rate` (boolean), `mean` and `median` (number) or `counts` per option (category). "
        "Only valid feedback counts; `filter` is the trace list's filter language.",
        responses={200: MetricsOut, **errors(400, 404)},
    )
    @method_decorator(reads_from_replica)
    def get(self, request, experiment_id):
        experiment = trace_selectors.experiment_for(request_actor(request), experiment_id)
        query = MetricsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        # default: up to the next whole hour (the hourly rollup answers whole hours)
        next_hour = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        end = trace_selectors._epoch_ms_or_iso(data["end_time"], "end_time") if data.get("end_time") else next_hour
        start = (
            trace_selectors._epoch_ms_or_iso(data["start_time"], "start_time")
            if data.get("start_time")
            else end - DEFAULT_RANGE
        )
        if start >= end:
            raise ValidationError({"start_time": "must be before end_time"})
        interval = data.get("interval") or auto_interval(end - start)
        if (end - start) / STEPS[interval] > MAX_BUCKETS:
            raise ValidationError(
                {"interval": f"gives more than {MAX_BUCKETS} buckets for this range; pick a longer one"}
            )
        group = _group(data.get("group_by"))
        typed = name_types(experiment, names=[data["name"]]).get(data["name"])
        if typed is None:
            raise ValidationError({"name": f"no feedback named {data['name']!r} in this experiment"})
        scope = Scope(experiment, start, end, data.get("filter") or "")
        try:
            buckets = metrics.metric_buckets(scope, typed, interval, group)
        except FilterError as exc:
            raise ValidationError({"filter": str(exc)}) from None
        out = {
            "name": typed.name,
            "type": typed.type,
            "interval": interval,
            "start_time": start,
            "end_time": end,
            "buckets": buckets,
        }
        return Response(MetricsOut(out).data)
