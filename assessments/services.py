"""Every write to an assessment: one function per domain verb, one transaction each,
and one Revision row per call (the audit trail).

Entry points (HTMX forms, native API, MLflow protocol, OTLP evaluation events,
admin) parse their input and call these functions with an `Actor` and the
`channel` the change came through.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import (
    IntegrityError,
    connection,
    transaction,
)
from django.utils import timezone

from feedbackhub import bulk, values
from traces.access import OWNER, REVIEWER, Actor
from traces.models import SPAN_ID_RE, TRACE_ID_RE, Span, Trace
from traces.services import Conflict

from .models import (
    Assessment,
    PendingAssessment,
    Revision,
    new_assessment_id,
    numeric_projection,
)

__all__ = [
    "Conflict",
    "StaleVersion",
    "log_feedback",
    "log_expectation",
    "update_assessment",
    "override_feedback",
    "delete_assessment",
    "log_feedback_batch",
    "BatchValidationError",
]

UNCHANGED = object()
# Choices' .values is rebuilt on every access; membership checks on the hot paths use this.
SOURCE_TYPES = frozenset(Assessment.SourceType.values)
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
    """Reject what JSON cannot carry faithfully (NaN, Infinity, NUL, lone surrogates, non-string
    keys, other types), naming the place (feedbackhub.values)."""
    values.check(value, field)

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

    kind = type(value)
    if value is None or kind is bool or kind is int:
        return  # scalars (the common case) need no walk and are never too large
    if kind is str and len(value) * 6 + 2 <= settings.FEEDBACKHUB_MAX_VALUE_BYTES:
        return  # even escaped to \\uXXXX, it fits
    walk(value, 0)
    if value is not None and len(json.dumps(value)) > settings.FEEDBACKHUB_MAX_VALUE_BYTES:
        raise ValidationError({field: f"is larger than {settings.FEEDBACKHUB_MAX_VALUE_BYTES} bytes"})


def _clean_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError({"name": "An assessment needs a non-empty name."})
    if len(name) > 250:
        raise ValidationError({"name": f"is {len(name)} characters long; the limit is 250."})
    values.check(name, "name")
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
    values.check(metadata, "metadata")
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
    values.check(rationale, "rationale")
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


def _record(
    action: str,
    assessment: Assessment,
    actor: Actor,
    channel: str,
    before,
    after,
    related=None,
) -> Revision:
    revision = _revision(action, assessment, actor, channel, before, after, related)
    revision.save(force_insert=True)
    return revision


def _revision(
    action: str,
    assessment: Assessment,
    actor: Actor,
    channel: str,
    before,
    after,
    related=None,
) -> Revision:
    """An unsaved revision row describing `action` on `assessment`."""
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


def _require_change_rights(assessment: Assessment, actor: Actor, verb: str) -> None:
    """Owners, staff and app keys may change anything; reviewers only their own assessments."""
    if actor.can(assessment.experiment_id, OWNER):
        return
    if actor.can(assessment.experiment_id, REVIEWER) and actor.is_author_of(assessment):
        return
    raise PermissionDenied(f"You may only {verb} your own assessments in this experiment.")


# --- create -----------------------------------------------------------------------------------


def _new_assessment(
    *,
    kind: str,
    trace_id: str,
    experiment_id: int | None,
    name: str,
    value,
    error,
    rationale,
    source_type: str,
    source_id: str,
    metadata,
    actor: Actor,
    assessment_id: str | None,
    create_time: datetime | None,
    idempotency_key: str | None,
    overrides: Assessment | None = None,
) -> Assessment:
    """The unsaved assessment of a create, its input checked (no query); raises ValidationError."""
    name = _clean_name(name)
    error = _clean_error(error)
    _check_value(kind, value, error)
    if source_type not in SOURCE_TYPES:
        raise ValidationError({"source.source_type": f"must be one of {', '.join(Assessment.SourceType.values)}"})
    if not isinstance(source_id, str) or len(source_id) > 250:
        raise ValidationError({"source.source_id": "must be a string of at most 250 characters"})
    values.check(source_id, "source.source_id")
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
        trace_id=trace_id,
        experiment_id=experiment_id,
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
    return assessment


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
    assessment = _new_assessment(
        kind=kind,
        trace_id=trace.pk,
        experiment_id=trace.experiment_id,
        name=name,
        value=value,
        error=error,
        rationale=rationale,
        source_type=source_type,
        source_id=source_id,
        metadata=metadata,
        actor=actor,
        assessment_id=assessment_id,
        create_time=create_time,
        idempotency_key=idempotency_key,
        overrides=overrides,
    )
    now = timezone.now()
    if overrides is None and connection.vendor == "postgresql" and not connection.in_atomic_block:
        assessment.span_id = _check_span(trace, span_id)
        return _insert_with_revision(assessment, actor, channel, idempotency_key)
    with transaction.atomic():
        assessment.span_id = _check_span(trace, span_id) if overrides is None else overrides.span_id
        if idempotency_key is not None:
            existing = Assessment.objects.filter(
                experiment_id=trace.experiment_id, idempotency_key=idempotency_key
            ).first()
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
            _record(
                Revision.Action.OVERRIDE,
                assessment,
                actor,
                channel,
                before,
                assessment.snapshot(),
                related=overrides.assessment_id,
            )
        else:
            _record(
                Revision.Action.CREATE,
                assessment,
                actor,
                channel,
                None,
                assessment.snapshot(),
            )
    assessment.replayed = False
    return assessment


def _insert_with_revision(assessment: Assessment, actor: Actor, channel: str, idempotency_key) -> Assessment:
    """Write a new assessment and its `create` revision in ONE statement (PostgreSQL, outside
    any transaction): a data-modifying CTE is atomic and, in autocommit, committed durably on
    its own, so the hot path costs one round trip instead of six (BEGIN, SAVEPOINT, INSERT,
    RELEASE, INSERT, COMMIT). Rows, revision and errors are those of the transactional path:
    a duplicate idempotency key replays (or is a Conflict), a duplicate id is a Conflict.
    """
    assessment.numeric_value = numeric_projection(assessment.value)
    revision = _revision(Revision.Action.CREATE, assessment, actor, channel, None, assessment.snapshot())
    # The column values as bulk.copy_plan prepares them (what Django's INSERT would send).
    params = [*next(bulk.copy_values(Assessment, [assessment])), *next(bulk.copy_values(Revision, [revision]))]
    try:
        with connection.cursor() as cursor:
            cursor.execute(_insert_with_revision_sql(), params)
    except IntegrityError:
        if idempotency_key is not None:
            existing = Assessment.objects.filter(
                experiment_id=assessment.experiment_id, idempotency_key=idempotency_key
            ).first()
            if existing is not None:
                return _replayed(existing, assessment)
        raise Conflict(f"An assessment with id {assessment.assessment_id} already exists.") from None
    assessment._state.adding = False
    assessment._state.db = connection.alias
    assessment.replayed = False
    return assessment


def create_by_trace_id(*, kind: str, trace_id: str, actor: Actor, channel: str, **fields) -> Assessment | None:
    """log_feedback / log_expectation (`kind`) on the trace `trace_id`, the trace lookup folded
    into the one insert statement: one round trip instead of two. For an API key's create
    without span or idempotency key, on PostgreSQL outside a transaction; same rows.

    None when it does not apply or writes nothing (input refused, trace missing or outside
    the key's experiments): the caller then takes the ordinary path (trace lookup, then the
    service), which answers 404, holds pending feedback or raises, in the usual order.
    """
    if (
        actor.api_key is None
        or not actor.key_experiment_ids
        or not isinstance(trace_id, str)
        or "\x00" in trace_id
        or fields.get("span_id")
        or fields.get("idempotency_key") is not None
        or connection.vendor != "postgresql"
        or connection.in_atomic_block
    ):
        return None
    fields.pop("span_id", None)
    fields = {"error": None, "assessment_id": None, "create_time": None, "idempotency_key": None, **fields}
    try:
        assessment = _new_assessment(kind=kind, trace_id=trace_id, experiment_id=None, actor=actor, **fields)
    except ValidationError:
        return None
    assessment.numeric_value = numeric_projection(assessment.value)
    revision = _revision(Revision.Action.CREATE, assessment, actor, channel, None, assessment.snapshot())
    params = [
        trace_id,
        sorted(actor.key_experiment_ids),
        *_without_experiment(Assessment, next(bulk.copy_values(Assessment, [assessment]))),
        *_without_experiment(Revision, next(bulk.copy_values(Revision, [revision]))),
    ]
    try:
        with connection.cursor() as cursor:
            cursor.execute(_create_by_trace_id_sql(), params)
            row = cursor.fetchone()
    except IntegrityError:
        return None  # a taken assessment id: the ordinary path says so
    if row is None:
        return None
    assessment.experiment_id = row[0]
    assessment._state.adding = False
    assessment._state.db = connection.alias
    assessment.replayed = False
    return assessment


def _without_experiment(model, values: list) -> list:
    """The column values but experiment_id (the statement takes it from the trace)."""
    return [value for field, value in zip(bulk.insert_fields(model), values) if field.attname != "experiment_id"]


@functools.cache
def _create_by_trace_id_sql() -> str:
    """The statement of create_by_trace_id: the trace (in the key's experiments), the assessment
    and its revision, both taking the trace's experiment; returns that experiment id, or no row."""
    quote = connection.ops.quote_name

    def select_list(model, experiment_source: str) -> str:
        # each type without its length: an over-long value fails as in VALUES (a cast truncates)
        return ", ".join(
            experiment_source
            if field.attname == "experiment_id"
            else f"%s::{re.sub(r'[(][0-9]+[)]$', '', field.cast_db_type(connection))}"
            for field in bulk.insert_fields(model)
        )

    trace = Trace._meta
    return (
        f"WITH trace AS (SELECT {quote(trace.get_field('experiment').column)} AS experiment_id "
        f"FROM {quote(trace.db_table)} WHERE {quote(trace.pk.column)} = %s "
        f"AND {quote(trace.get_field('experiment').column)} = ANY(%s)), "
        f"created AS (INSERT INTO {bulk.insert_target(Assessment)} "
        f"SELECT {select_list(Assessment, 'trace.experiment_id')} FROM trace RETURNING experiment_id), "
        f"revision AS (INSERT INTO {bulk.insert_target(Revision)} "
        f"SELECT {select_list(Revision, 'created.experiment_id')} FROM created) "
        "SELECT experiment_id FROM created"
    )


@functools.cache
def _insert_with_revision_sql() -> str:
    """The one statement of _insert_with_revision (built once per process)."""
    assessment_values = ", ".join(["%s"] * len(bulk.insert_fields(Assessment)))
    revision_values = ", ".join(["%s"] * len(bulk.insert_fields(Revision)))
    return (
        f"WITH created AS (INSERT INTO {bulk.insert_target(Assessment)} VALUES ({assessment_values})) "
        f"INSERT INTO {bulk.insert_target(Revision)} VALUES ({revision_values})"
    )


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
        kind=Assessment.Kind.FEEDBACK,
        trace=trace,
        name=name,
        value=value,
        error=error,
        rationale=rationale,
        source_type=source_type,
        source_id=source_id,
        span_id=span_id,
        metadata=metadata,
        actor=actor,
        channel=channel,
        assessment_id=assessment_id,
        create_time=create_time,
        idempotency_key=idempotency_key,
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
        kind=Assessment.Kind.EXPECTATION,
        trace=trace,
        name=name,
        value=value,
        error=None,
        rationale=rationale,
        source_type=source_type,
        source_id=source_id,
        span_id=span_id,
        metadata=metadata,
        actor=actor,
        channel=channel,
        assessment_id=assessment_id,
        create_time=create_time,
        idempotency_key=idempotency_key,
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
            kind=Assessment.Kind.FEEDBACK,
            trace=old.trace,
            name=old.name,
            value=value,
            error=error,
            rationale=rationale,
            source_type=source_type,
            source_id=source_id,
            span_id=None,
            metadata=metadata,
            actor=actor,
            channel=channel,
            assessment_id=assessment_id,
            create_time=create_time,
            idempotency_key=None,
            overrides=old,
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
            Revision.Action.DELETE,
            current,
            actor,
            channel,
            current.snapshot(),
            None,
            related=restored.assessment_id if restored is not None else None,
        )
        current.delete()


# --- batch ------------------------------------------------------------------------------------

MAX_BATCH_ITEMS = 1000
BATCH_ITEM_FIELDS = frozenset(
    {
        "trace_id",
        "name",
        "value",
        "error",
        "rationale",
        "source",
        "source_type",
        "source_id",
        "span_id",
        "metadata",
        "idempotency_key",
    }
)


class BatchValidationError(ValidationError):
    """Per-item errors of a batch; nothing was written.

    The error dict is keyed by item index (messages read "field: problem");
    `item_errors` keeps the same errors as {index: {field: [messages]}} for the API.
    """

    def __init__(self, item_errors: dict[int, dict[str, list[str]]]):
        self.item_errors = dict(sorted(item_errors.items()))
        super().__init__(
            {
                index: [f"{field}: {message}" for field, messages in errors.items() for message in messages]
                for index, errors in self.item_errors.items()
            }
        )


def _clean_batch_item(item, default_source_id: str) -> dict:
    """One item's fields, validated with log_feedback's rules (no database access)."""
    if not isinstance(item, dict):
        raise ValidationError({"item": "must be an object"})
    unknown = set(item) - BATCH_ITEM_FIELDS
    if unknown:
        raise ValidationError({sorted(unknown)[0]: "is not a field of a feedback item"})
    source = item.get("source")
    if source is None:
        source = {}
    elif not isinstance(source, dict) or set(source) - {"source_type", "source_id"}:
        raise ValidationError({"source": "must be an object with source_type and source_id"})
    trace_id = item.get("trace_id")
    if not isinstance(trace_id, str) or not trace_id:
        raise ValidationError({"trace_id": "is required"})
    error = _clean_error(item.get("error"))
    value = item.get("value")
    _check_value(Assessment.Kind.FEEDBACK, value, error)
    source_type = source.get("source_type") or item.get("source_type") or Assessment.SourceType.HUMAN
    if source_type not in SOURCE_TYPES:
        raise ValidationError({"source.source_type": f"must be one of {', '.join(Assessment.SourceType.values)}"})
    source_id = source.get("source_id") or item.get("source_id") or default_source_id
    if not isinstance(source_id, str) or len(source_id) > 250:
        raise ValidationError({"source.source_id": "must be a string of at most 250 characters"})
    values.check(source_id, "source.source_id")
    span_id = item.get("span_id") or None
    if span_id is not None and (not isinstance(span_id, str) or not SPAN_ID_RE.match(span_id)):
        raise ValidationError({"span_id": "must be 16 lowercase hex digits"})
    idempotency_key = item.get("idempotency_key")
    if idempotency_key is not None and (not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 200):
        raise ValidationError({"idempotency_key": "must be a string of 1 to 200 characters"})
    return {
        "trace_id": trace_id,
        "name": _clean_name(item.get("name")),
        "value": value,
        "error": error,
        "rationale": _clean_rationale(item.get("rationale")),
        "source_type": source_type,
        "source_id": source_id,
        "span_id": span_id,
        "metadata": _clean_metadata(item.get("metadata")),
        "idempotency_key": idempotency_key,
    }


def log_feedback_batch(
    *, items: list[dict], actor: Actor, channel: str, default_source_id: str = ""
) -> list[Assessment]:
    """Create many feedback assessments at once, all or nothing, each with its `create` revision.

    `items` are dicts of log_feedback's arguments plus `trace_id`; the source is given
    as `source: {source_type, source_id}` (the API's shape) or as flat `source_type` /
    `source_id`, and `default_source_id` fills a missing source id. Every item is checked with log_feedback's rules; the
    traces are read in one query, the span ids in one query, the idempotency keys in
    one query, and the assessments and revisions are written with two bulk inserts in
    one transaction. An item whose `idempotency_key` was already used in its
    experiment writes nothing and returns the stored assessment with `replayed=True`,
    so a retried batch never duplicates.

    Returns the assessments in item order. Raises BatchValidationError (keyed by item
    index) for bad items, unknown or invisible traces, spans not in their trace and
    keys reused for a different assessment; ValidationError for an empty or oversized
    batch; PermissionDenied when the actor may see a trace but not review it.
    """
    if not isinstance(items, list) or not items:
        raise ValidationError({"items": "must be a non-empty list of feedback items"})
    if len(items) > MAX_BATCH_ITEMS:
        raise ValidationError({"items": f"has {len(items)} items; the limit is {MAX_BATCH_ITEMS} per batch"})
    errors: dict[int, dict[str, list[str]]] = {}
    cleaned: dict[int, dict] = {}
    for index, item in enumerate(items):
        try:
            cleaned[index] = _clean_batch_item(item, default_source_id)
        except ValidationError as exc:
            errors[index] = exc.message_dict

    trace_ids = {fields["trace_id"] for fields in cleaned.values()}
    experiments = dict(Trace.objects.filter(pk__in=trace_ids).values_list("trace_id", "experiment_id"))
    for index, fields in list(cleaned.items()):
        experiment_id = experiments.get(fields["trace_id"])
        if experiment_id is None or actor.role(experiment_id) is None:
            errors[index] = {"trace_id": [f"Trace {fields['trace_id']} not found."]}
            del cleaned[index]
            continue
        fields["experiment_id"] = experiment_id
    for index, fields in cleaned.items():
        if not actor.can(fields["experiment_id"], REVIEWER):
            raise PermissionDenied(f"Item {index}: you need the {REVIEWER} role in this trace's experiment.")

    span_pairs = {(fields["trace_id"], fields["span_id"]) for fields in cleaned.values() if fields["span_id"]}
    if span_pairs:
        found = set(
            Span.objects.filter(
                trace_id__in={trace_id for trace_id, _ in span_pairs},
                span_id__in={span_id for _, span_id in span_pairs},
            ).values_list("trace_id", "span_id")
        )
        for index, fields in cleaned.items():
            if fields["span_id"] and (fields["trace_id"], fields["span_id"]) not in found:
                errors.setdefault(index, {})["span_id"] = [
                    f"Span {fields['span_id']} is not part of trace {fields['trace_id']}."
                ]

    seen_keys: dict[tuple[int, str], int] = {}
    for index, fields in cleaned.items():
        key = fields["idempotency_key"]
        if key is None:
            continue
        first = seen_keys.setdefault((fields["experiment_id"], key), index)
        if first != index:
            errors.setdefault(index, {})["idempotency_key"] = [f"repeats the key of item {first}"]
    if errors:
        raise BatchValidationError(errors)

    for attempt in range(2):
        try:
            return _write_batch(
                items=[cleaned[index] for index in range(len(items))],
                keys=seen_keys,
                actor=actor,
                channel=channel,
            )
        except IntegrityError:
            # A concurrent request stored one of the idempotency keys first: the retry replays it.
            if attempt or not seen_keys:
                raise Conflict("The batch clashed with a concurrent write; retry it.") from None
    raise AssertionError("unreachable")


def _write_batch(*, items: list[dict], keys: dict, actor: Actor, channel: str) -> list[Assessment]:
    user = actor.user if actor.user is not None and actor.user.is_authenticated else None
    label = actor.label[:250]
    with transaction.atomic():
        existing = {}
        if keys:
            rows = Assessment.objects.filter(
                experiment_id__in={experiment_id for experiment_id, _ in keys},
                idempotency_key__in={key for _, key in keys},
            )
            existing = {(row.experiment_id, row.idempotency_key): row for row in rows}
        results, new, errors = [], [], {}
        now = timezone.now()
        user_id = user.pk if user is not None else None
        key_id = actor.api_key.pk if actor.api_key is not None else None
        for index, fields in enumerate(items):
            key = fields["idempotency_key"]
            stored = existing.get((fields["experiment_id"], key)) if key is not None else None
            if stored is not None:
                if (stored.trace_id, stored.name, stored.kind) != (
                    fields["trace_id"],
                    fields["name"],
                    "feedback",
                ):
                    errors[index] = {"idempotency_key": ["was already used for a different assessment"]}
                stored.replayed = True
                results.append(stored)
                continue
            # Column values by attname: COPY takes them as they are, the result wraps them.
            row = {
                "assessment_id": new_assessment_id(),
                "trace_id": fields["trace_id"],
                "experiment_id": fields["experiment_id"],
                "span_id": fields["span_id"],
                "name": fields["name"],
                "kind": Assessment.Kind.FEEDBACK.value,
                "value": fields["value"],
                "numeric_value": numeric_projection(fields["value"]),
                "error": fields["error"],
                "rationale": fields["rationale"],
                "source_type": fields["source_type"],
                "source_id": fields["source_id"],
                "metadata": fields["metadata"],
                "overrides_id": None,
                "valid": True,
                "version": 1,
                "created_by_id": user_id,
                "created_by_key_id": key_id,
                "create_time": now,
                "last_update_time": now,
                "idempotency_key": key,
            }
            assessment = bulk.saved_instance(Assessment, row)
            assessment.replayed = False
            results.append(assessment)
            new.append((row, assessment))
        if errors:
            raise BatchValidationError(errors)
        if new:
            # Field values of each create revision (as _record writes them).
            revisions = [
                {
                    "assessment_id": row["assessment_id"],
                    "related_assessment_id": None,
                    "trace_id": row["trace_id"],
                    "experiment_id": row["experiment_id"],
                    "action": Revision.Action.CREATE.value,
                    "channel": channel,
                    "actor_user_id": user_id,
                    "actor_key_id": key_id,
                    "actor_label": label,
                    "created_at": now,
                    "before": None,
                    "after": assessment.snapshot(),
                }
                for row, assessment in new
            ]
            if connection.vendor == "postgresql":
                bulk.copy_rows(Assessment, [row for row, _ in new])
                bulk.copy_rows(Revision, revisions)
            else:
                Assessment.objects.bulk_create([assessment for _, assessment in new])
                Revision.objects.bulk_create([Revision(**values) for values in revisions])
    return results


# --- feedback that arrives before its trace --------------------------------------------------
#
# Apps export traces in the background (the mlflow client does), so feedback logged right
# after a traced call usually reaches the server before the trace. Such a create call is
# kept as a PendingAssessment and replayed, with the same assessment id, the moment the
# trace (or, for span feedback, the span) arrives; unclaimed items expire with a log line.

pending_logger = logging.getLogger("assessments.pending")
MAX_PENDING_PER_KEY = 10_000
PENDING_FIELDS = ("name", "value", "error", "rationale", "metadata")


def _pending_owner(actor: Actor) -> dict:
    if actor.api_key is not None:
        return {"actor_key": actor.api_key}
    raise PermissionDenied("Only API keys may send feedback for a trace that has not arrived yet.")


def can_hold_pending(actor: Actor, trace_id) -> bool:
    """Whether a create for `trace_id` may wait for its trace: an API key, a well-formed
    trace id, and no stored trace with that id (one query)."""
    return (
        actor.api_key is not None
        and isinstance(trace_id, str)
        and bool(TRACE_ID_RE.match(trace_id))
        and not Trace.objects.filter(pk=trace_id).exists()
    )


def trace_for_create(actor: Actor, trace_id: str) -> Trace | None:
    """The trace a feedback or expectation create writes to (id and experiment only), or None
    when the create is to be held until the trace arrives (`can_hold_pending`).

    Raises Http404 when the trace is neither visible nor holdable. The trace may be stored
    between the first look and the pending check (apps export spans in the background, at
    the same moment they log feedback): then it is looked up again instead of answering 404.
    """
    from django.http import Http404

    from traces import selectors as trace_selectors

    try:
        return trace_selectors.trace_for_write(actor, trace_id)
    except Http404:
        if can_hold_pending(actor, trace_id):
            return None
    return trace_selectors.trace_for_write(actor, trace_id)


def hold_pending(
    *,
    trace_id: str,
    kind: str,
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
    overrides: str | None = None,
) -> Assessment:
    """Keep a log_feedback / log_expectation call (or an override of a pending feedback) until
    trace `trace_id` (and span `span_id`, if given) is stored; see `attach_pending`.

    Validates like log_feedback, except that the trace and span need not exist yet.
    Returns the pending assessment as `assessments.selectors.pending_as_assessment` shows it
    (or the real one if the trace arrived meanwhile). Raises ValidationError,
    PermissionDenied (only API keys may hold feedback) and Conflict (the id is taken, the
    overridden item is not the key's pending feedback of that trace, or the key already
    holds MAX_PENDING_PER_KEY items).
    """
    from .selectors import pending_as_assessment

    owner = _pending_owner(actor)
    if not isinstance(trace_id, str) or not TRACE_ID_RE.match(trace_id):
        raise ValidationError({"trace_id": "must be 'tr-' followed by 32 lowercase hex digits"})
    if kind not in Assessment.Kind.values:
        raise ValidationError({"kind": f"must be one of {', '.join(Assessment.Kind.values)}"})
    name = _clean_name(name)
    error = _clean_error(error)
    _check_value(kind, value, error)
    if source_type not in SOURCE_TYPES:
        raise ValidationError({"source.source_type": f"must be one of {', '.join(Assessment.SourceType.values)}"})
    if not isinstance(source_id, str) or len(source_id) > 250:
        raise ValidationError({"source.source_id": "must be a string of at most 250 characters"})
    values.check(source_id, "source.source_id")
    if span_id in ("", None):
        span_id = None
    elif not isinstance(span_id, str) or not SPAN_ID_RE.match(span_id):
        raise ValidationError({"span_id": "must be 16 lowercase hex digits"})
    if assessment_id is not None and (
        not isinstance(assessment_id, str) or not assessment_id or len(assessment_id) > 50
    ):
        raise ValidationError({"assessment_id": "must be a string of at most 50 characters"})
    metadata = _clean_metadata(metadata)
    rationale = _clean_rationale(rationale)
    now = timezone.now()
    expire_pending(now=now)
    payload = {
        "name": name,
        "value": value,
        "error": error,
        "rationale": rationale,
        "metadata": metadata,
        "source_type": source_type,
        "source_id": source_id,
        "span_id": span_id,
        "create_time": (create_time or now).isoformat(),
        "updates": [],
    }
    with transaction.atomic():
        if overrides is not None:
            old = PendingAssessment.objects.select_for_update().filter(pk=overrides, trace_id=trace_id, **owner).first()
            if old is None or old.kind != Assessment.Kind.FEEDBACK or old.payload.get("overridden_by"):
                raise Conflict(f"{overrides} is not a pending, not yet overridden feedback of trace {trace_id}.")
            payload["overrides"] = overrides
            payload["span_id"] = old.payload.get("span_id")
        if PendingAssessment.objects.filter(**owner).count() >= MAX_PENDING_PER_KEY:
            raise Conflict(
                f"This key already holds {MAX_PENDING_PER_KEY} feedback items for traces that have not arrived."
            )
        assessment_id = assessment_id or new_assessment_id()
        if (
            Assessment.objects.filter(pk=assessment_id).exists()
            or PendingAssessment.objects.filter(pk=assessment_id).exists()
        ):
            raise Conflict(f"An assessment with id {assessment_id} already exists.")
        pending = PendingAssessment.objects.create(
            assessment_id=assessment_id,
            trace_id=trace_id,
            kind=kind,
            payload=payload,
            channel=channel,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.FEEDBACKHUB_PENDING_FEEDBACK_SECONDS),
            **owner,
        )
        if overrides is not None:
            old.payload = {**old.payload, "overridden_by": assessment_id}
            old.save(update_fields=["payload"])
    pending_logger.info("holding %s %s for trace %s until it arrives", kind, assessment_id, trace_id)
    # The trace may have been stored between the caller's check and this commit.
    trace = Trace.objects.filter(pk=trace_id).first()
    if trace is not None:
        attach_pending(trace)
        attached = Assessment.objects.filter(pk=assessment_id).first()
        if attached is not None:
            attached.replayed = False
            return attached
        pending = PendingAssessment.objects.filter(pk=assessment_id).first()
        if pending is None:
            raise PermissionDenied(f"Trace {trace_id} is in an experiment this key cannot write to.")
    return pending_as_assessment(pending)


def update_pending(*, pending: PendingAssessment, actor: Actor, **changes) -> Assessment:
    """Record an update of a pending assessment; it is replayed (with its revision) on attach.

    Same rules as update_assessment. Raises ValidationError and PermissionDenied.
    """
    from .selectors import pending_as_assessment

    owner = _pending_owner(actor)
    unknown = set(changes) - set(PENDING_FIELDS)
    if unknown:
        raise ValidationError({field: "cannot be changed" for field in sorted(unknown)})
    cleaned = {}
    if "name" in changes:
        cleaned["name"] = _clean_name(changes["name"])
    if "rationale" in changes:
        cleaned["rationale"] = _clean_rationale(changes["rationale"])
    if "metadata" in changes:
        cleaned["metadata"] = _clean_metadata(changes["metadata"])
    if "error" in changes:
        cleaned["error"] = _clean_error(changes["error"])
    if "value" in changes:
        _check_json(changes["value"], "value")
        cleaned["value"] = changes["value"]
    with transaction.atomic():
        current = PendingAssessment.objects.select_for_update().filter(pk=pending.pk, **owner).first()
        if current is None:
            raise PendingAssessment.DoesNotExist(f"Assessment {pending.pk} no longer exists.")
        view = pending_as_assessment(current)
        if "value" in cleaned or "error" in cleaned:
            _check_value(
                current.kind,
                cleaned.get("value", view.value),
                cleaned.get("error", view.error),
            )
        now = timezone.now()
        current.payload = {
            **current.payload,
            "updates": [*(current.payload.get("updates") or []), cleaned],
            "last_update_time": now.isoformat(),
        }
        current.save(update_fields=["payload"])
    return pending_as_assessment(current)


def delete_pending(*, pending: PendingAssessment, actor: Actor) -> None:
    """Drop a pending assessment; if it overrode another pending one, that one is valid again."""
    owner = _pending_owner(actor)
    with transaction.atomic():
        current = PendingAssessment.objects.select_for_update().filter(pk=pending.pk, **owner).first()
        if current is None:
            return
        overridden = current.payload.get("overrides")
        if overridden:
            old = PendingAssessment.objects.select_for_update().filter(pk=overridden).first()
            if old is not None and old.payload.get("overridden_by") == current.pk:
                old.payload = {key: value for key, value in old.payload.items() if key != "overridden_by"}
                old.save(update_fields=["payload"])
        # Overrides of this one wait for an assessment that will never exist: drop them too.
        for child in PendingAssessment.objects.filter(trace_id=current.trace_id).exclude(pk=current.pk):
            if child.payload.get("overrides") == current.pk:
                pending_logger.info(
                    "dropping pending %s: the feedback it overrode was deleted",
                    child.pk,
                )
                child.delete()
        current.delete()
    pending_logger.info(
        "pending %s %s for trace %s deleted by %s",
        current.kind,
        current.pk,
        current.trace_id,
        actor.label,
    )


def _pending_actor(pending: PendingAssessment) -> Actor | None:
    if pending.actor_key is not None:
        return Actor.for_key(pending.actor_key) if pending.actor_key.is_active else None
    if pending.actor_user is not None and pending.actor_user.is_active:
        return Actor.for_user(pending.actor_user)
    return None


def _replay(trace: Trace, pending: PendingAssessment, actor: Actor) -> Assessment:
    payload = pending.payload
    common = {
        "actor": actor,
        "channel": pending.channel,
        "value": payload.get("value"),
        "rationale": payload.get("rationale"),
        "source_type": payload.get("source_type"),
        "source_id": payload.get("source_id") or "",
        "metadata": payload.get("metadata"),
        "assessment_id": pending.assessment_id,
        "create_time": datetime.fromisoformat(payload["create_time"])
        if payload.get("create_time")
        else pending.created_at,
    }
    if payload.get("overrides"):
        old = Assessment.objects.filter(pk=payload["overrides"], trace_id=trace.pk).first()
        if old is None:
            raise ValidationError({"overrides": f"{payload['overrides']} is not an assessment of trace {trace.pk}"})
        assessment = override_feedback(assessment=old, error=payload.get("error"), **common)
    elif pending.kind == Assessment.Kind.FEEDBACK:
        assessment = log_feedback(
            trace=trace,
            name=payload["name"],
            error=payload.get("error"),
            span_id=payload.get("span_id"),
            **common,
        )
    else:
        assessment = log_expectation(trace=trace, name=payload["name"], span_id=payload.get("span_id"), **common)
    for change in payload.get("updates") or ():
        assessment = update_assessment(assessment=assessment, actor=actor, channel=pending.channel, **change)
    return assessment


def attach_pending(trace: Trace, actor: Actor | None = None, channel: str | None = None) -> list[Assessment]:
    """Turn the feedback held for `trace` into real assessments (same ids, create time and
    channel, each with its create / override / update revisions), oldest first.

    Registered in traces.services.trace_created_hooks (runs inside the ingest transaction
    when a trace is first stored) and called by the MLflow and OTLP endpoints after spans
    arrive. Feedback for a span that is not stored yet keeps waiting. An item the sender may
    no longer write (key revoked, trace in an experiment the key cannot write to) or that
    no longer validates is dropped with a warning. Query count: one when nothing is held;
    otherwise the locked pending rows, the trace's span ids and the writes.
    """
    attached = []
    # The common case (nothing held) costs one SELECT and no savepoint inside the ingest transaction.
    if not PendingAssessment.objects.filter(trace_id=trace.pk).exists():
        return attached
    with transaction.atomic():
        pendings = list(
            # of=("self",): PostgreSQL cannot lock the nullable side of the outer joins below.
            PendingAssessment.objects.select_for_update(of=("self",))
            .filter(trace_id=trace.pk)
            .select_related("actor_key", "actor_user")
            .order_by("created_at", "assessment_id")
        )
        if not pendings:
            return attached
        span_ids = set(Span.objects.filter(trace_id=trace.pk).values_list("span_id", flat=True))
        for pending in pendings:
            span_id = pending.payload.get("span_id")
            if span_id and span_id not in span_ids:
                continue
            if pending.payload.get("overrides") and any(
                other.pk == pending.payload["overrides"] and other.pk not in {a.pk for a in attached}
                for other in pendings
            ):
                continue  # the feedback it overrides is still waiting (for its span)
            sender = _pending_actor(pending)
            if sender is None or not sender.can(trace.experiment_id, REVIEWER):
                pending_logger.warning(
                    "dropped pending %s %s for trace %s: its sender may not write to experiment %s",
                    pending.kind,
                    pending.pk,
                    trace.pk,
                    trace.experiment_id,
                )
                pending.delete()
                continue
            pending_id = pending.pk
            try:
                with transaction.atomic():
                    assessment = _replay(trace, pending, sender)
                    pending.delete()
            except (
                ValidationError,
                PermissionDenied,
                Conflict,
                Assessment.DoesNotExist,
            ) as exc:
                pending_logger.warning(
                    "dropped pending %s %s for trace %s: %s",
                    pending.kind,
                    pending_id,
                    trace.pk,
                    "; ".join(exc.messages) if isinstance(exc, ValidationError) else exc,
                )
                pending.delete()
                continue
            pending_logger.info("attached pending %s %s to trace %s", pending.kind, pending_id, trace.pk)
            attached.append(assessment)
    return attached


def expire_pending(*, now: datetime | None = None) -> list[PendingAssessment]:
    """Drop pending assessments whose time (FEEDBACKHUB_PENDING_FEEDBACK_SECONDS) is up, with
    one warning line each; items whose trace did arrive are attached first. Returns the
    expired rows (unsaved copies)."""
    now = now or timezone.now()
    due = list(PendingAssessment.objects.filter(expires_at__lte=now).order_by("created_at", "assessment_id"))
    if not due:
        return []
    for trace in Trace.objects.filter(pk__in={pending.trace_id for pending in due}):
        attach_pending(trace)
    expired = list(PendingAssessment.objects.filter(pk__in=[pending.pk for pending in due], expires_at__lte=now))
    for pending in expired:
        waited_for = "span " + pending.payload["span_id"] if pending.payload.get("span_id") else "trace"
        pending_logger.warning(
            "expired pending %s %s (%r = %r) for trace %s: the %s never arrived within %s s",
            pending.kind,
            pending.pk,
            pending.payload.get("name"),
            pending.payload.get("value"),
            pending.trace_id,
            waited_for,
            settings.FEEDBACKHUB_PENDING_FEEDBACK_SECONDS,
        )
    PendingAssessment.objects.filter(pk__in=[pending.pk for pending in expired]).delete()
    return expired


def attach_pending_on_create(trace: Trace, actor: Actor, channel: str) -> None:
    """traces.services.trace_created_hooks entry: attach what was held for the new trace."""
    attach_pending(trace)
