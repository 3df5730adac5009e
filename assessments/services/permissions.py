"""Who may change or override which assessment. The verbs check these, and the panel's
buttons ask the same predicates, so a button shows exactly when the write would pass."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from traces.access import OWNER, REVIEWER, Actor

from ..models import Assessment


def can_change(actor: Actor, assessment: Assessment) -> bool:
    """Edit or delete: owners, staff and app keys anything; reviewers their own assessments."""
    if actor.can(assessment.experiment_id, OWNER):
        return True
    return actor.can(assessment.experiment_id, REVIEWER) and actor.is_author_of(assessment)


def can_override(actor: Actor, assessment: Assessment) -> bool:
    """Replace with a correction: valid feedback; reviewers may override judge and code
    feedback and their own human feedback, owners and keys anything."""
    return (
        assessment.kind == Assessment.Kind.FEEDBACK
        and assessment.valid
        and actor.can(assessment.experiment_id, REVIEWER)
        and (assessment.source_type != Assessment.SourceType.HUMAN or can_change(actor, assessment))
    )


def require_change(actor: Actor, assessment: Assessment, verb: str) -> None:
    if not can_change(actor, assessment):
        raise PermissionDenied(f"You may only {verb} your own assessments in this experiment.")
