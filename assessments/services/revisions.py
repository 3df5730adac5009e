"""The audit trail: one Revision row per change, written by the verb that makes the change."""

from __future__ import annotations

from django.utils import timezone

from traces.access import Actor

from ..models import Assessment, Revision


def revision(
    action: str,
    assessment: Assessment,
    actor: Actor,
    channel: str,
    before,
    after,
    related=None,
) -> Revision:
    """An unsaved revision row describing `action` on `assessment` (experiment None while held)."""
    return Revision(
        assessment_id=assessment.assessment_id,
        related_assessment_id=related,
        trace_id=assessment.trace_id,
        experiment_id=assessment.experiment_id,
        action=action,
        channel=channel,
        actor_user=actor.user if actor.user is not None and actor.user.is_authenticated else None,
        actor_key=actor.api_key,
        actor_label=actor.label[:250],
        created_at=timezone.now(),
        before=before,
        after=after,
    )


def record(action: str, assessment: Assessment, actor: Actor, channel: str, before, after, related=None) -> Revision:
    """Write one revision row (inside the caller's transaction)."""
    row = revision(action, assessment, actor, channel, before, after, related)
    row.save(force_insert=True)
    return row
