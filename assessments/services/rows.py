"""Writing one assessment row on a stored trace: the unsaved row from cleaned fields, the
insert with its idempotent replay, and the invalidation an override makes. Shared by the
verbs and by held feedback when it is attached."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from traces.access import Actor

from ..models import Assessment, new_assessment_id, numeric_projection
from .errors import Conflict


def new_assessment(
    *,
    kind: str,
    trace_id: str,
    experiment_id: int | None,
    fields: dict,
    actor: Actor,
    create_time: datetime | None = None,
    overrides: Assessment | None = None,
) -> Assessment:
    """The unsaved assessment of a create from `validation.clean_create`'s fields (no query)."""
    now = timezone.now()
    assessment = Assessment(
        assessment_id=fields["assessment_id"] or new_assessment_id(),
        trace_id=trace_id,
        experiment_id=experiment_id,
        span_id=fields["span_id"],
        name=fields["name"],
        kind=kind,
        value=fields["value"],
        numeric_value=numeric_projection(fields["value"]),
        error=fields["error"],
        rationale=fields["rationale"],
        source_type=fields["source_type"],
        source_id=fields["source_id"],
        metadata=fields["metadata"],
        overrides=overrides,
        created_by=actor.user if actor.user is not None and actor.user.is_authenticated else None,
        created_by_key=actor.api_key,
        create_time=create_time or now,
        last_update_time=create_time or now,
        idempotency_key=fields["idempotency_key"],
        definition_version=fields.get("definition_version"),
    )
    assessment.replayed = False
    return assessment


def stored_for_key(assessment: Assessment) -> Assessment | None:
    """The assessment stored earlier under `assessment`'s idempotency key, if any."""
    if assessment.idempotency_key is None:
        return None
    return Assessment.objects.filter(
        experiment_id=assessment.experiment_id, idempotency_key=assessment.idempotency_key
    ).first()


def replayed(existing: Assessment, attempted: Assessment) -> Assessment:
    """A retried create: hand back the original if it says the same thing, else refuse."""
    if existing.trace_id != attempted.trace_id or existing.name != attempted.name or existing.kind != attempted.kind:
        raise Conflict("This idempotency key was already used for a different assessment.")
    existing.replayed = True
    return existing


def taken(assessment: Assessment) -> Conflict:
    return Conflict(f"An assessment with id {assessment.assessment_id} already exists.")


def insert(assessment: Assessment) -> Assessment:
    """Save a new assessment inside the caller's transaction; a used idempotency key replays
    (returns the stored row with `replayed=True`), a taken id raises Conflict."""
    existing = stored_for_key(assessment)
    if existing is not None:
        return replayed(existing, assessment)
    try:
        with transaction.atomic():
            assessment.save(force_insert=True)
    except IntegrityError:
        existing = stored_for_key(assessment)
        if existing is not None:
            return replayed(existing, assessment)
        raise taken(assessment) from None
    return assessment


def invalidate(old: Assessment, now: datetime) -> None:
    """Mark `old` as overridden (valid=False, next version)."""
    old.valid = False
    old.version += 1
    old.last_update_time = now
    old.save(update_fields=["valid", "version", "last_update_time"])
