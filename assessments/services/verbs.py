"""The verbs: one entry point each for create, update, override, delete and rate. Each
takes every decision about its write (trace lookup, holding, duplicates, overrides,
idempotency, permissions, the fast path) and writes its own revision in the same
transaction. Surfaces translate their input to one of these calls and the result back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from feedbackhub.deadlocks import retry_on_deadlock
from traces.access import REVIEWER, Actor
from traces.models import Span, Trace

from ..models import Assessment, Revision
from ..selectors import assessments_for_trace, verdict_name_for
from . import fastsql, held, hooks, rows, validation
from .errors import Conflict, DuplicateId, StaleVersion
from .permissions import can_change, require_change
from .revisions import record, revision

CREATED, REPLAYED, HELD = "created", "replayed", "held"


@dataclass(frozen=True)
class Created:
    """What a create did: `created` a row, `replayed` an earlier one (same idempotency key) or
    `held` it until its trace arrives; `assessment` as the caller shows it."""

    assessment: Assessment
    outcome: str

    @property
    def replayed(self) -> bool:
        return self.outcome == REPLAYED


def create(
    *,
    kind: str,
    actor: Actor,
    channel: str,
    name,
    trace_id: str | None = None,
    trace: Trace | None = None,
    value=None,
    error=None,
    rationale="",
    source_type: str = Assessment.SourceType.HUMAN,
    source_id: str = "",
    span_id=None,
    metadata=None,
    assessment_id: str | None = None,
    create_time: datetime | None = None,
    idempotency_key: str | None = None,
    overrides: str | None = None,
) -> Created:
    """Create feedback or an expectation (`kind`) on trace `trace_id` (or the given `trace`),
    or a feedback that overrides assessment `overrides` of that trace.

    Decides, in this order: a client-chosen id that is taken (DuplicateId); the one-statement
    insert for a plain create by an API key (fastsql); the trace lookup (Http404 when it is
    neither visible nor holdable); the input check (ValidationError, raised after the lookup
    so an unknown trace answers 404 first) and the override kind rule; holding the create
    when the trace, the overridden held feedback or (MLflow) the span has not arrived yet;
    the override; idempotency (a used key replays). With `trace` given (UI, admin, OTLP
    events, embedded assessments) there is no lookup and nothing waits. Raises
    PermissionDenied, ValidationError, Conflict, Http404 and Assessment.DoesNotExist (an
    unknown overridden assessment).
    """
    trace_id = trace.pk if trace is not None else trace_id
    try:
        fields, invalid = (
            validation.clean_create(
                kind=kind,
                name=name,
                value=value,
                error=error,
                rationale=rationale,
                source_type=source_type,
                source_id=source_id,
                span_id=span_id,
                metadata=metadata,
                assessment_id=assessment_id,
                idempotency_key=idempotency_key,
            ),
            None,
        )
    except ValidationError as exc:
        fields, invalid = None, exc
    if trace is None and fields is not None and fields["assessment_id"] and held.id_taken(fields["assessment_id"]):
        raise DuplicateId(fields["assessment_id"])
    if trace is None and fields is not None and not overrides:
        created = _create_by_trace_id(kind, trace_id, fields, actor, channel, create_time)
        if created is not None:
            hooks.written(created.experiment_id, [created.trace_id])
            return Created(created, CREATED)
    # A create on a trace the caller already has (UI, admin, embedded, OTLP events) never waits.
    looked_up = trace is None
    holds_override = looked_up and held.holds_override(actor, overrides, trace_id)
    if looked_up:
        trace = held.trace_or_hold(actor, trace_id)
    if trace is None and overrides and not holds_override:
        raise Assessment.DoesNotExist(f"Assessment with ID '{overrides}' not found for trace '{trace_id}'")
    if trace is not None:
        actor.require(trace.experiment_id, REVIEWER)  # a reader learns nothing about the input
    if invalid is not None:
        raise invalid
    if overrides and kind != Assessment.Kind.FEEDBACK:
        raise ValidationError("Only feedback can override another assessment.")
    if (
        trace is None
        or holds_override
        or (looked_up and not overrides and held.waits_for_span(trace, fields["span_id"], channel))
    ):
        assessment = held.hold(
            trace_id=trace_id,
            kind=kind,
            fields=fields,
            actor=actor,
            channel=channel,
            create_time=create_time,
            overrides=overrides,
        )
        # the trace may have arrived meanwhile: then the hold attached it at once
        return Created(assessment, HELD if getattr(assessment, "pending", False) else CREATED)
    if overrides:
        old = Assessment.objects.filter(pk=overrides, trace_id=trace.pk).first()
        if old is None:
            raise Assessment.DoesNotExist(f"Assessment with ID '{overrides}' not found for trace '{trace.pk}'")
        if old.kind != Assessment.Kind.FEEDBACK:
            raise ValidationError(f"Assessment {old.pk} is not a feedback assessment; only feedback can be overridden.")
        return Created(_override(old, fields, actor, channel, create_time), CREATED)
    assessment = _create_on_trace(kind, trace, fields, actor, channel, create_time)
    if not assessment.replayed:
        hooks.written(assessment.experiment_id, [assessment.trace_id])
    return Created(assessment, REPLAYED if assessment.replayed else CREATED)


@retry_on_deadlock
def _create_by_trace_id(kind, trace_id, fields, actor, channel, create_time) -> Assessment | None:
    """The trace lookup folded into the one insert statement (one round trip instead of two):
    an API key's create without span or idempotency key, on PostgreSQL outside a transaction.
    None when it does not apply or writes nothing (trace missing or outside the key's
    experiments, id taken): the ordinary path then answers 404, holds or raises as usual."""
    if (
        actor.api_key is None
        or not actor.key_experiment_ids
        or not isinstance(trace_id, str)
        or "\x00" in trace_id
        or fields["span_id"]
        or fields["idempotency_key"] is not None
        or not fastsql.usable()
    ):
        return None
    try:
        if not validation.check_before_experiment_known(actor.key_experiment_ids, kind, fields):
            return None
    except ValidationError:
        return None  # the ordinary path answers (404 first for a trace the key cannot see)
    assessment = rows.new_assessment(
        kind=kind, trace_id=trace_id, experiment_id=None, fields=fields, actor=actor, create_time=create_time
    )
    row = revision(Revision.Action.CREATE, assessment, actor, channel, None, assessment.snapshot())
    try:
        if fastsql.insert_by_trace_id(assessment, row, actor.key_experiment_ids):
            return assessment
    except IntegrityError:
        pass  # a taken assessment id: the ordinary path says so
    return None


@retry_on_deadlock
def _create_on_trace(kind, trace: Trace, fields: dict, actor: Actor, channel: str, create_time) -> Assessment:
    actor.require(trace.experiment_id, REVIEWER)
    validation.check_for_experiment(trace.experiment_id, kind, fields)
    assessment = rows.new_assessment(
        kind=kind,
        trace_id=trace.pk,
        experiment_id=trace.experiment_id,
        fields=fields,
        actor=actor,
        create_time=create_time,
    )
    span_id = fields["span_id"]
    if span_id is not None and not Span.objects.filter(trace_id=trace.pk, span_id=span_id).exists():
        raise ValidationError({"span_id": f"Span {span_id} is not part of trace {trace.pk}."})
    if fastsql.usable() or fastsql.usable_in_transaction(fields):
        try:
            fastsql.insert_with_revision(
                assessment, revision(Revision.Action.CREATE, assessment, actor, channel, None, assessment.snapshot())
            )
        except IntegrityError:
            existing = rows.stored_for_key(assessment)
            if existing is not None:
                return rows.replayed(existing, assessment)
            raise rows.taken(assessment) from None
        return assessment
    with transaction.atomic():
        stored = rows.insert(assessment)
        if not stored.replayed:
            record(Revision.Action.CREATE, stored, actor, channel, None, stored.snapshot())
    return stored


def _override(old: Assessment, fields: dict, actor: Actor, channel: str, create_time) -> Assessment:
    return override(
        assessment=old,
        actor=actor,
        channel=channel,
        create_time=create_time,
        **{key: fields[key] for key in ("value", "error", "rationale", "source_type", "source_id", "metadata")},
        assessment_id=fields["assessment_id"],
    )


def log_feedback(*, trace: Trace, name: str, actor: Actor, channel: str, **fields) -> Assessment:
    """Create a feedback on a stored trace (`create` with the trace given); returns the assessment
    (`replayed=True` when its idempotency key was used before). Raises as `create`."""
    return create(
        kind=Assessment.Kind.FEEDBACK, trace=trace, name=name, actor=actor, channel=channel, **fields
    ).assessment


def log_expectation(*, trace: Trace, name: str, value, actor: Actor, channel: str, **fields) -> Assessment:
    """Create an expectation (ground truth) on a stored trace. Raises as `create`."""
    return create(
        kind=Assessment.Kind.EXPECTATION, trace=trace, name=name, value=value, actor=actor, channel=channel, **fields
    ).assessment


def update(
    *,
    assessment: Assessment,
    actor: Actor,
    channel: str,
    expected_version: int | None = None,
    **changes,
) -> Assessment:
    """Change name, value, error, rationale and/or metadata of a stored or held assessment;
    writes one `update` revision (an update that changes nothing writes nothing).

    Source, span and the override chain cannot change. `expected_version` (from If-Match or
    the edit form) makes a concurrent edit fail with StaleVersion instead of being
    overwritten. Raises ValidationError, PermissionDenied, StaleVersion, DoesNotExist.
    """
    if getattr(assessment, "pending", False):
        return held.update(held=assessment, actor=actor, channel=channel, expected_version=expected_version, **changes)
    validation.reject_fixed_fields(changes)
    with transaction.atomic():
        current = Assessment.objects.select_for_update().filter(pk=assessment.pk).first()
        if current is None:
            raise Assessment.DoesNotExist(f"Assessment {assessment.pk} no longer exists.")
        require_change(actor, current, "edit")
        if expected_version is not None and expected_version != current.version:
            raise StaleVersion(current)
        before = current.snapshot()
        cleaned = validation.clean_changes(current.kind, {"value": current.value, "error": current.error}, changes)
        for field, value in cleaned.items():
            setattr(current, field, value)
        if current.snapshot() == before:
            return current
        checked = []
        # Only a changed name, value or error is judged again (a rationale edit keeps the
        # version the value was checked against).
        if {"name", "value", "error"} & set(cleaned):
            state = current.snapshot()
            validation.check_for_experiment(current.experiment_id, current.kind, state)
            current.definition_version = state.get("definition_version")
            checked = ["definition_version"]
        current.version += 1
        current.last_update_time = timezone.now()
        current.save(update_fields=[*cleaned, *checked, "version", "last_update_time"])
        record(Revision.Action.UPDATE, current, actor, channel, before, current.snapshot())
        hooks.written(current.experiment_id, [current.trace_id])
    return current


def override(
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

    Reviewers may override judge and code feedback and their own; owners and keys anything
    (`permissions.can_override`). Raises Conflict when the old assessment is an expectation
    or already overridden, ValidationError, PermissionDenied.
    """
    with transaction.atomic():
        old = Assessment.objects.select_for_update().filter(pk=assessment.pk).first()
        if old is None:
            raise Assessment.DoesNotExist(f"Assessment {assessment.pk} no longer exists.")
        actor.require(old.experiment_id, REVIEWER)
        if old.kind != Assessment.Kind.FEEDBACK:
            raise Conflict(f"{old.assessment_id} is an expectation; only feedback can be overridden.")
        if not old.valid:
            raise Conflict(f"{old.assessment_id} was already overridden; override the assessment that replaced it.")
        if old.source_type == Assessment.SourceType.HUMAN:
            require_change(actor, old, "override")
        fields = validation.clean_create(
            kind=Assessment.Kind.FEEDBACK,
            name=old.name,
            value=value,
            error=error,
            rationale=rationale,
            source_type=source_type,
            source_id=source_id,
            metadata=metadata,
            assessment_id=assessment_id,
        )
        fields["span_id"] = old.span_id
        validation.check_for_experiment(old.experiment_id, Assessment.Kind.FEEDBACK, fields)
        new = rows.new_assessment(
            kind=Assessment.Kind.FEEDBACK,
            trace_id=old.trace_id,
            experiment_id=old.experiment_id,
            fields=fields,
            actor=actor,
            create_time=create_time,
            overrides=old,
        )
        new = rows.insert(new)
        before = old.snapshot()
        rows.invalidate(old, timezone.now())
        record(Revision.Action.OVERRIDE, new, actor, channel, before, new.snapshot(), related=old.assessment_id)
        hooks.written(new.experiment_id, [new.trace_id])
    return new


def delete(*, assessment: Assessment, actor: Actor, channel: str, expected_version: int | None = None) -> None:
    """Delete a stored or held assessment; if it overrode another, that one becomes valid again.

    Writes one `delete` revision (naming the restored assessment, if any). Deleting what is
    already gone does nothing. Raises PermissionDenied, StaleVersion (`expected_version`).
    """
    if getattr(assessment, "pending", False):
        return held.delete(held=assessment, actor=actor, channel=channel, expected_version=expected_version)
    with transaction.atomic():
        current = Assessment.objects.select_for_update().filter(pk=assessment.pk).first()
        if current is None:
            return None
        require_change(actor, current, "delete")
        if expected_version is not None and expected_version != current.version:
            raise StaleVersion(current)
        restored = None
        if current.overrides_id is not None:
            restored = Assessment.objects.select_for_update().filter(pk=current.overrides_id).first()
            if restored is not None and not restored.valid:
                restored.valid = True
                restored.version += 1
                restored.last_update_time = timezone.now()
                restored.save(update_fields=["valid", "version", "last_update_time"])
        record(
            Revision.Action.DELETE,
            current,
            actor,
            channel,
            current.snapshot(),
            None,
            related=restored.assessment_id if restored is not None else None,
        )
        current.delete()
        hooks.written(current.experiment_id, [current.trace_id])
    return None


def rate(
    *,
    trace: Trace,
    actor: Actor,
    channel: str,
    value: bool,
    name: str | None = None,
    assessments: list[Assessment] | None = None,
    source_type: str = Assessment.SourceType.HUMAN,
    source_id: str = "",
) -> Assessment:
    """The one-click thumb: set the actor's own verdict on the trace to `value`, changing their
    latest valid one or adding one. The verdict is the experiment's `verdict_name` setting (a
    definition of that name governs the value); a different `name` raises ValidationError, so a
    reviewer's thumb never lands in end users' or a judge's series. `assessments` are the
    trace's, when the caller has them."""
    verdict = verdict_name_for(trace)
    if name and name != verdict:
        raise ValidationError(
            {
                "name": f"The one-key rating writes this experiment's verdict, {verdict}, not {name}; add other names with the form."
            }
        )
    name = verdict
    if assessments is None:
        assessments = assessments_for_trace(trace)
    mine = [
        a
        for a in assessments
        if a.valid
        and a.kind == Assessment.Kind.FEEDBACK
        and a.name == name
        and isinstance(a.value, bool)
        and actor.is_author_of(a)
    ]
    if mine:
        rated = mine[-1]
        if rated.value != value:
            rated = update(assessment=rated, actor=actor, channel=channel, value=value)
        return rated
    return log_feedback(
        trace=trace, name=name, value=value, actor=actor, channel=channel, source_type=source_type, source_id=source_id
    )


__all__ = [
    "CREATED",
    "HELD",
    "REPLAYED",
    "Created",
    "can_change",
    "create",
    "delete",
    "log_expectation",
    "log_feedback",
    "override",
    "rate",
    "update",
]
