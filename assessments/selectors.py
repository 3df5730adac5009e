"""Reads of assessments and their history, shaped for the panel and the API."""
from __future__ import annotations

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from traces.access import Actor
from traces.models import Trace

from .models import Assessment, Revision


def mark_overrides(assessments: list[Assessment]) -> list[Assessment]:
    """Set `overridden_by_id` on each assessment from the list itself (no query)."""
    replaced_by = {a.overrides_id: a.assessment_id for a in assessments if a.overrides_id}
    for assessment in assessments:
        assessment.overridden_by_id = replaced_by.get(assessment.assessment_id)
    return assessments


def assessments_for_trace(trace: Trace) -> list[Assessment]:
    """All assessments of a trace (valid and overridden), oldest first, with `overridden_by_id`.

    Uses the prefetched `trace.assessments` when the selector that loaded the trace did so.
    """
    return mark_overrides(list(trace.assessments.all()))


def assessment_for(actor: Actor, assessment_id: str) -> Assessment:
    """An assessment the actor may see, with `overridden_by_id`; Http404 otherwise."""
    replacement = Assessment.objects.filter(overrides_id=OuterRef("pk")).values("pk")[:1]
    assessment = (
        Assessment.objects.annotate(overridden_by_id=Subquery(replacement)).filter(pk=assessment_id).first()
    )
    if assessment is None or actor.role(assessment.experiment_id) is None:
        raise Http404(f"Assessment {assessment_id} not found.")
    return assessment


def history_for(assessment_id: str) -> QuerySet[Revision]:
    """Every revision of an assessment, oldest first, including overrides and deletes that touched it."""
    return (
        Revision.objects.filter(Q(assessment_id=assessment_id) | Q(related_assessment_id=assessment_id))
        .select_related("actor_user")
        .order_by("created_at", "id")
    )


def history_visible_to(actor: Actor, assessment_id: str) -> QuerySet[Revision]:
    """The history if the actor may see the experiment it belongs to (also after a delete); Http404 otherwise."""
    first = Revision.objects.filter(assessment_id=assessment_id).only("experiment_id").first()
    if first is None or first.experiment_id is None or actor.role(first.experiment_id) is None:
        raise Http404(f"Assessment {assessment_id} not found.")
    return history_for(assessment_id)
