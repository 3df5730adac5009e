"""Every write to an assessment: one function per domain verb, one transaction each,
and one Revision row per call (the audit trail).

Entry points (HTMX forms, native API, MLflow protocol, OTLP evaluation events,
admin) parse their input and call these functions with an `Actor` and the
`channel` the change came through.
"""
from __future__ import annotations

import json
import math
from datetime import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from traces.access import OWNER, REVIEWER, Actor
from traces.models import SPAN_ID_RE, Span, Trace
from traces.services import Conflict

from .models import Assessment, Revision, new_assessment_id

__all__ = [
    "Conflict", "StaleVersion", "log_feedback", "log_expectation", "update_assessment",
    "override_feedback", "delete_assessment",
]

UNCHANGED = object()
EDITABLE_FIELDS = ("name", "value", "error", "rationale", "metadata")


class StaleVersion(Conflict):
    """The caller edited an older version than the stored one (answered with 412)."""

    http_status = 412

    def __init__(self, assessment: Assessment):
        self.assessment = assessment
        super().__init__(
            f"Assessment {assessment.assessment_id} changed since you read it (now version {assessment.version})."
        )


# --- validation shared by every verb -------------------------------------------------------


def _check_json(value, field: str) -> None:
    """Reject what JSON cannot carry faithfully (NaN, Infinity, non-string keys, other types)."""

    def walk(item, depth: int):
        if depth > 32:
            raise ValidationError({field: "is nested more than 32 levels deep"})
        if item is None or isinstance(item, (bool, str, int)):
            return
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ValidationError({field: "must not contain NaN or Infinity"})
            return
        if isinstance(item, list):
            for child in item:
                walk(child, depth + 1)
            return
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise ValidationError({field: "object keys must be strings"})
                walk(child, depth + 1)
            return
        raise ValidationError({field: f"must be JSON (got {type(item).__name__})"})

    walk(value, 0)
    if value is not None and len(json.dumps(value)) > settings.FEEDBACKHUB_MAX_VALUE_BYTES:
        raise ValidationError({field: f"is larger than {settings.FEEDBACKHUB_MAX_VALUE_BYTES} bytes"})


def _clean_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError({"name": "An assessment needs a non-empty name."})
    if len(name) > 250:
        raise ValidationError({"name": f"is {len(name)} characters long; the limit is 250."})
    return name.strip()


def _clean_metadata(metadata) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValidationError({"metadata": "must be an object of string keys to string values"})
    if len(metadata) > settings.FEEDBACKHUB_MAX_METADATA_ENTRIES:
        raise ValidationError({"metadata": f"has more than {settings.FEEDBACKHUB_MAX_METADATA_ENTRIES} entries"})
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValidationError({"metadata": f"values must be strings (key {key!r})"})
        if len(key) > 250:
            raise ValidationError({"metadata": f"key {key[:20]!r}… is longer than 250 characters"})
    return metadata


def _clean_error(error) -> dict | None:
    if error is None:
        return None
    if not isinstance(error, dict):
        raise ValidationError({"error": "must be an object with error_code, error_message, stack_trace"})
    unknown = set(error) - {"error_code", "error_message", "stack_trace"}
    if unknown:
        raise ValidationError({"error": f"unknown field {sorted(unknown)[0]!r}"})
    code = error.get("error_code")
    if not isinstance(code, str) or not code:
        raise ValidationError({"error": "error_code is required and must be a string"})
    for key in ("error_message", "stack_trace"):
        if error.get(key) is not None and not isinstance(error[key], str):
            raise ValidationError({"error": f"{key} must be a string"})
    cleaned = {key: error[key] for key in ("error_code", "error_message", "stack_trace") if error.get(key)}
    _check_json(cleaned, "error")
    return cleaned


def _clean_rationale(rationale) -> str:
    if rationale is None:
        return ""
    if not isinstance(rationale, str):
        raise ValidationError({"rationale": "must be a string"})
    if len(rationale) > settings.FEEDBACKHUB_MAX_VALUE_BYTES:
        raise ValidationError({"rationale": f"is longer than {settings.FEEDBACKHUB_MAX_VALUE_BYTES} characters"})
    return rationale


def _check_value(kind: str, value, error) -> None:
    _check_json(value, "value")
    if kind == Assessment.Kind.EXPECTATION:
        if error is not None:
            raise ValidationError({"error": "An expectation cannot carry an error."})
        if value is None:
            raise ValidationError({"value": "An expectation needs a value."})
    elif value is None and error is None:
        raise ValidationError({"value": "Feedback needs a value or an error."})


def _check_span(trace: Trace, span_id) -> str | None:
    if span_id in (None, ""):
        return None
    if not isinstance(span_id, str) or not SPAN_ID_RE.match(span_id):
        raise ValidationError({"span_id": "must be 16 lowercase hex digits"})
    if not Span.objects.filter(trace_id=trace.pk, span_id=span_id).exists():
        raise ValidationError({"span_id": f"Span {span_id} is not part of trace {trace.pk}."})
    return span_id


def _record(action: str, assessment: Assessment, actor: Actor, channel: str, before, after, related=None) -> Revision:
    return Revision.objects.create(
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


def _require_change_rights(assessment: Assessment, actor: Actor, verb: str) -> None:
    """Owners, staff and app keys may change anything; reviewers only their own assessments."""
    if actor.can(assessment.experiment_id, OWNER):
        return
    if actor.can(assessment.experiment_id, REVIEWER) and actor.is_author_of(assessment):
        return
    raise PermissionDenied(f"You may only {verb} your own assessments in this experiment.")


# --- create -----------------------------------------------------------------------------------


def _create(
    *,
    kind: str,
    trace: Trace,
    name: str,
    value,
    error,
    rationale,
    source_type: str,
    source_id: str,
    span_id,
    metadata,
    actor: Actor,
    channel: str,
    assessment_id: str | None,
    create_time: datetime | None,
    idempotency_key: str | None,
    overrides: Assessment | None = None,
) -> Assessment:
    actor.require(trace.experiment_id, REVIEWER)
    name = _clean_name(name)
    error = _clean_error(error)
    _check_value(kind, value, error)
    if source_type not in Assessment.SourceType.values:
        raise ValidationError({"source.source_type": f"must be one of {', '.join(Assessment.SourceType.values)}"})
    if not isinstance(source_id, str) or len(source_id) > 250:
        raise ValidationError({"source.source_id": "must be a string of at most 250 characters"})
    if assessment_id is not None and (
        not isinstance(assessment_id, str) or not assessment_id or len(assessment_id) > 50
    ):
        raise ValidationError({"assessment_id": "must be a string of at most 50 characters"})
    if idempotency_key is not None and (not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 200):
        raise ValidationError({"idempotency_key": "must be a string of 1 to 200 characters"})
    metadata = _clean_metadata(metadata)
    rationale = _clean_rationale(rationale)
    now = timezone.now()
    assessment = Assessment(
        assessment_id=assessment_id or new_assessment_id(),
        trace_id=trace.pk,
        experiment_id=trace.experiment_id,
        name=name,
        kind=kind,
        value=value,
        error=error,
        rationale=rationale,
        source_type=source_type,
        source_id=source_id,
        metadata=metadata,
        overrides=overrides,
        created_by=actor.user if actor.user is not None and actor.user.is_authenticated else None,
        created_by_key=actor.api_key,
        create_time=create_time or now,
        last_update_time=create_time or now,
        idempotency_key=idempotency_key,
    )
    with transaction.atomic():
        assessment.span_id = _check_span(trace, span_id) if overrides is None else overrides.span_id
        if idempotency_key is not None:
            existing = Assessment.objects.filter(experiment_id=trace.experiment_id, idempotency_key=idempotency_key).first()
            if existing is not None:
                return _replayed(existing, assessment)
        try:
            with transaction.atomic():
                assessment.save(force_insert=True)
        except IntegrityError:
            if idempotency_key is not None:
                existing = Assessment.objects.filter(
                    experiment_id=trace.experiment_id, idempotency_key=idempotency_key
                ).first()
                if existing is not None:
                    return _replayed(existing, assessment)
            raise Conflict(f"An assessment with id {assessment.assessment_id} already exists.") from None
        if overrides is not None:
            before = overrides.snapshot()
            overrides.valid = False
            overrides.version += 1
            overrides.last_update_time = now
            overrides.save(update_fields=["valid", "version", "last_update_time"])
            _record(Revision.Action.OVERRIDE, assessment, actor, channel, before, assessment.snapshot(),
                    related=overrides.assessment_id)
        else:
            _record(Revision.Action.CREATE, assessment, actor, channel, None, assessment.snapshot())
    assessment.replayed = False
    return assessment


def _replayed(existing: Assessment, attempted: Assessment) -> Assessment:
    """A retried create: hand back the original if it says the same thing, else refuse."""
    if existing.trace_id != attempted.trace_id or existing.name != attempted.name or existing.kind != attempted.kind:
        raise Conflict("This idempotency key was already used for a different assessment.")
    existing.replayed = True
    return existing


def log_feedback(
    *,
    trace: Trace,
    name: str,
    actor: Actor,
    channel: str,
    value=None,
    error: dict | None = None,
    rationale: str | None = "",
    source_type: str = Assessment.SourceType.HUMAN,
    source_id: str = "",
    span_id: str | None = None,
    metadata: dict | None = None,
    assessment_id: str | None = None,
    create_time: datetime | None = None,
    idempotency_key: str | None = None,
) -> Assessment:
    """Create a feedback assessment and its `create` revision.

    Raises ValidationError (bad value, name, source, span not in the trace),
    PermissionDenied (actor is not a reviewer of the experiment) and Conflict
    (assessment id taken, idempotency key reused for something else).
    A repeated idempotency key returns the stored assessment with `replayed=True`.
    """
    return _create(
        kind=Assessment.Kind.FEEDBACK, trace=trace, name=name, value=value, error=error, rationale=rationale,
        source_type=source_type, source_id=source_id, span_id=span_id, metadata=metadata, actor=actor,
        channel=channel, assessment_id=assessment_id, create_time=create_time, idempotency_key=idempotency_key,
    )


def log_expectation(
    *,
    trace: Trace,
    name: str,
    value,
    actor: Actor,
    channel: str,
    rationale: str | None = "",
    source_type: str = Assessment.SourceType.HUMAN,
    source_id: str = "",
    span_id: str | None = None,
    metadata: dict | None = None,
    assessment_id: str | None = None,
    create_time: datetime | None = None,
    idempotency_key: str | None = None,
) -> Assessment:
    """Create an expectation (ground truth) and its `create` revision. Raises as `log_feedback`."""
    return _create(
        kind=Assessment.Kind.EXPECTATION, trace=trace, name=name, value=value, error=None, rationale=rationale,
        source_type=source_type, source_id=source_id, span_id=span_id, metadata=metadata, actor=actor,
        channel=channel, assessment_id=assessment_id, create_time=create_time, idempotency_key=idempotency_key,
    )


# --- change -----------------------------------------------------------------------------------


def update_assessment(
    *,
    assessment: Assessment,
    actor: Actor,
    channel: str,
    expected_version: int | None = None,
    **changes,
) -> Assessment:
    """Change name, value, error, rationale and/or metadata; writes one `update` revision.

    Source, span and the override chain cannot change. `expected_version` (from
    If-Match or the edit form) makes a concurrent edit fail with StaleVersion
    instead of being overwritten. Raises ValidationError, PermissionDenied,
    StaleVersion; an update that changes nothing writes nothing.
    """
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({field: "cannot be changed" for field in sorted(unknown)})
    with transaction.atomic():
        current = Assessment.objects.select_for_update().filter(pk=assessment.pk).first()
        if current is None:
            raise Assessment.DoesNotExist(f"Assessment {assessment.pk} no longer exists.")
        _require_change_rights(current, actor, "edit")
        if expected_version is not None and expected_version != current.version:
            raise StaleVersion(current)
        before = current.snapshot()
        if "name" in changes:
            current.name = _clean_name(changes["name"])
        if "rationale" in changes:
            current.rationale = _clean_rationale(changes["rationale"])
        if "metadata" in changes:
            current.metadata = _clean_metadata(changes["metadata"])
        if "error" in changes:
            current.error = _clean_error(changes["error"])
        if "value" in changes:
            current.value = changes["value"]
        if "value" in changes or "error" in changes:
            _check_value(current.kind, current.value, current.error)
        after = current.snapshot()
        if after == before:
            return current
        current.version += 1
        current.last_update_time = timezone.now()
        current.save(update_fields=[*changes, "version", "last_update_time"])
        _record(Revision.Action.UPDATE, current, actor, channel, before, current.snapshot())
    return current


def override_feedback(
    *,
    assessment: Assessment,
    actor: Actor,
    channel: str,
    value=None,
    error: dict | None = None,
    rationale: str | None = "",
    source_type: str = Assessment.SourceType.HUMAN,
    source_id: str = "",
    metadata: dict | None = None,
    assessment_id: str | None = None,
    create_time: datetime | None = None,
) -> Assessment:
    """Replace a feedback with a corrected one: a new assessment (same name and span) that
    `overrides` the old, which becomes `valid=False`. One `override` revision on the new
    assessment names the replaced one.

    Reviewers may override judge and code feedback and their own; owners and keys anything.
    Raises Conflict when the old assessment is an expectation or already overridden.
    """
    with transaction.atomic():
        old = Assessment.objects.select_for_update().select_related("trace").filter(pk=assessment.pk).first()
        if old is None:
            raise Assessment.DoesNotExist(f"Assessment {assessment.pk} no longer exists.")
        actor.require(old.experiment_id, REVIEWER)
        if old.kind != Assessment.Kind.FEEDBACK:
            raise Conflict(f"{old.assessment_id} is an expectation; only feedback can be overridden.")
        if not old.valid:
            raise Conflict(f"{old.assessment_id} was already overridden; override the assessment that replaced it.")
        if old.source_type == Assessment.SourceType.HUMAN:
            _require_change_rights(old, actor, "override")
        return _create(
            kind=Assessment.Kind.FEEDBACK, trace=old.trace, name=old.name, value=value, error=error,
            rationale=rationale, source_type=source_type, source_id=source_id, span_id=None, metadata=metadata,
            actor=actor, channel=channel, assessment_id=assessment_id, create_time=create_time,
            idempotency_key=None, overrides=old,
        )


def delete_assessment(*, assessment: Assessment, actor: Actor, channel: str) -> None:
    """Delete an assessment; if it overrode another, that one becomes valid again.

    Writes one `delete` revision (naming the restored assessment, if any).
    Raises PermissionDenied.
    """
    with transaction.atomic():
        current = Assessment.objects.select_for_update().filter(pk=assessment.pk).first()
        if current is None:
            return
        _require_change_rights(current, actor, "delete")
        restored = None
        if current.overrides_id is not None:
            restored = Assessment.objects.select_for_update().filter(pk=current.overrides_id).first()
            if restored is not None and not restored.valid:
                restored.valid = True
                restored.version += 1
                restored.last_update_time = timezone.now()
                restored.save(update_fields=["valid", "version", "last_update_time"])
        _record(
            Revision.Action.DELETE, current, actor, channel, current.snapshot(), None,
            related=restored.assessment_id if restored is not None else None,
        )
        current.delete()
