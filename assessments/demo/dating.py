"""Demo data only: revisions dated with the assessments they record.

`load_demo` writes feedback with a past `create_time` (an end user's thumb 2 minutes after a
request of yesterday), but the services stamp each revision with the moment it was written, so
the history said "created 11 min ago" under a card saying "18 h ago". Two statements move each
demo revision back to its assessment's time; real writes are never re-dated.
"""

from __future__ import annotations

from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce, Least

from ..models import Assessment, Revision


def date_revisions_with_assessments(*, experiment_id: int) -> int:
    """Set each create revision of the experiment to its assessment's create_time, and each later
    revision to no later than its assessment's last_update_time. Returns the rows changed."""
    assessments = Assessment.objects.filter(pk=OuterRef("assessment_id"))
    created = Subquery(assessments.values("create_time")[:1])
    updated = Subquery(assessments.values("last_update_time")[:1])
    revisions = Revision.objects.filter(experiment_id=experiment_id)
    changed = revisions.filter(action=Revision.Action.CREATE).update(created_at=Coalesce(created, F("created_at")))
    changed += revisions.exclude(action=Revision.Action.CREATE).update(
        created_at=Least(F("created_at"), Coalesce(updated, F("created_at")))
    )
    return changed
