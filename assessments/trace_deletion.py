"""Deleting traces: the one service behind MLflow's DeleteTraces, `DELETE /api/v1/traces/{id}`,
the trace page's delete button and the admin.

A deleted trace takes with it its spans, its assessments, their revisions, feedback held for it
its review-queue items and its run links; PostgreSQL's feedback rollup follows the assessment rows (its triggers fire on
the DELETE). Revisions go too: a deletion is meant to remove what was recorded about the trace
(values and rationales sit in the revision snapshots), and the TraceDeletion row written in the
same transaction records who deleted which trace ids when, with the counts removed.
"""

from __future__ import annotations

from datetime import datetime, timezone

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone as django_timezone

from traces.access import OWNER, Actor
from traces.models import Experiment, Span, Trace, TraceDeletion

from .models import Assessment, PendingAssessment, Revision
from .queues.services import delete_items_of_traces

# Rows per DELETE ... WHERE trace_id IN (...): well under SQLite's bound-parameter limit.
CHUNK = 500


def max_traces_per_call() -> int:
    return settings.FEEDBACKHUB_DELETE_TRACES_MAX


def delete_traces(
    *,
    experiment: Experiment,
    actor: Actor,
    channel: str,
    trace_ids: list[str] | None = None,
    max_timestamp_millis: int | None = None,
    max_traces: int | None = None,
    keep: QuerySet | None = None,
) -> TraceDeletion | None:
    """Delete the experiment's traces named by `trace_ids`, or its oldest traces that started at or
    before `max_timestamp_millis` (at most `max_traces`, and at most FEEDBACKHUB_DELETE_TRACES_MAX).

    Ids of unknown traces or of other experiments are skipped, and so are the traces in `keep` (a
    subquery of trace ids, read by the statement that locks the rows: retention's pins). Writes one
    TraceDeletion row when anything was deleted and returns it (None otherwise). Raises
    PermissionDenied unless the actor owns the experiment (an API key scoped to it does),
    ValidationError for bad criteria.
    """
    actor.require(experiment.pk, OWNER)
    limit = max_traces_per_call()
    traces = Trace.objects.filter(experiment=experiment)
    if keep is not None:
        traces = traces.exclude(pk__in=keep)
    if (trace_ids is None) == (max_timestamp_millis is None):
        raise ValidationError(
            "Either `max_timestamp_millis` or `trace_ids` must be specified."
            if trace_ids is None
            else "Only one of `max_timestamp_millis` and `trace_ids` can be specified."
        )
    if trace_ids is not None:
        if not isinstance(trace_ids, list) or not all(isinstance(item, str) for item in trace_ids):
            raise ValidationError({"trace_ids": "Trace ids are a list of strings such as 'tr-…'."})
        if len(trace_ids) > limit:
            raise ValidationError({"trace_ids": f"{len(trace_ids)} trace ids; at most {limit} per call."})
        if max_traces is not None:
            raise ValidationError({"max_traces": "max_traces applies to a delete by max_timestamp_millis only."})
        criteria = {"trace_ids": sorted(set(trace_ids))}
        queryset = traces.filter(pk__in=set(trace_ids)).order_by("pk")
    else:
        if isinstance(max_timestamp_millis, bool) or not isinstance(max_timestamp_millis, int):
            raise ValidationError({"max_timestamp_millis": "Epoch milliseconds, an integer."})
        if max_traces is not None and (isinstance(max_traces, bool) or not isinstance(max_traces, int)):
            raise ValidationError({"max_traces": "An integer."})
        if max_traces is not None and max_traces < 1:
            raise ValidationError({"max_traces": "Must be at least 1."})
        try:
            # MLflow compares whole milliseconds: a trace at 12.3456 ms is at 12 ms
            before = datetime.fromtimestamp((max_timestamp_millis + 1) / 1000, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise ValidationError({"max_timestamp_millis": f"{max_timestamp_millis} is out of range."}) from None
        criteria = {"max_timestamp_millis": max_timestamp_millis, "max_traces": max_traces}
        queryset = traces.filter(request_time__lt=before).order_by("request_time", "trace_id")[
            : min(max_traces or limit, limit)
        ]

    with transaction.atomic():
        # Locks the rows: a concurrent ingest of the same trace waits, then finds it gone.
        ids = list(queryset.select_for_update().values_list("pk", flat=True))
        if not ids:
            return None
        removed = {"spans": 0, "assessments": 0, "revisions": 0, "held": 0, "queue_items": 0}
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            removed["revisions"] += Revision.objects.filter(trace_id__in=chunk).delete()[0]
            removed["held"] += PendingAssessment.objects.filter(trace_id__in=chunk).delete()[0]
            # queue items with their leases, answers and declines (the answers' assessments go below)
            removed["queue_items"] += delete_items_of_traces(chunk)
            removed["spans"] += Span.objects.filter(trace_id__in=chunk).delete()[0]
            # `overrides` points within the trace only, so deleting a trace's assessments together
            # leaves no dangling override; the queryset delete clears it first all the same.
            removed["assessments"] += (
                Assessment.objects.filter(trace_id__in=chunk).delete()[1].get(Assessment._meta.label, 0)
            )
            Trace.objects.filter(pk__in=chunk).delete()
        return TraceDeletion.objects.create(
            experiment_id=experiment.pk,
            trace_ids=ids,
            trace_count=len(ids),
            removed=removed,
            criteria=criteria,
            channel=channel,
            actor_user=actor.user if actor.user is not None and actor.user.is_authenticated else None,
            actor_key=actor.api_key,
            actor_label=actor.label,
            created_at=django_timezone.now(),
        )
