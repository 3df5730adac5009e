"""Feedback that arrives before its trace (or span): held, editable and deletable like any
assessment, with its revisions, until the trace arrives (attach) or its time is up (expire).

Apps export traces in the background (the mlflow client does), so feedback logged right
after a traced call usually reaches the server before the trace. The create is kept as a
PendingAssessment and becomes the real assessment, with the same id, the moment the trace
(or, for span feedback, the span) arrives. Its revisions are written as it happens, with no
experiment yet (only the key that sent it reads them); attaching fills the experiment in.
Only `verbs` calls into this module, and `traces.services` through the ingest hook.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.http import Http404
from django.utils import timezone

from traces import selectors as trace_selectors
from traces.access import REVIEWER, Actor
from traces.models import TRACE_ID_RE, Span, Trace

from ..models import Assessment, PendingAssessment, Revision, new_assessment_id
from ..selectors import pending_as_assessment, pending_for
from . import rows, validation
from .errors import Conflict, StaleVersion
from .revisions import record, revision

logger = logging.getLogger("assessments.pending")
MAX_PENDING_PER_KEY = 10_000
# Span feedback waits for its span only on the MLflow protocol, whose clients export spans in
# the background and say how many to expect; elsewhere an unknown span is an input error.
WAITS_FOR_SPAN_CHANNELS = frozenset({Revision.Channel.MLFLOW})


def _owner(actor: Actor) -> dict:
    if actor.api_key is not None:
        return {"actor_key": actor.api_key}
    raise PermissionDenied("Only API keys may send feedback for a trace that has not arrived yet.")


def _can_hold(actor: Actor, trace_id) -> bool:
    """An API key, a well-formed trace id, and no stored trace with that id that the key can see
    (one query). Another experiment's trace reads exactly like a missing one (no existence
    oracle, issue 12): feedback held for it never attaches (attach checks the sender) and expires."""
    if actor.api_key is None or not isinstance(trace_id, str) or not TRACE_ID_RE.fullmatch(trace_id):
        return False
    experiment_id = Trace.objects.filter(pk=trace_id).values_list("experiment_id", flat=True).first()
    return experiment_id is None or actor.role(experiment_id) is None


def trace_or_hold(actor: Actor, trace_id: str) -> Trace | None:
    """The trace a create writes to (id and experiment only), or None when the create is to
    be held until the trace arrives. Raises Http404 when the trace is neither visible nor
    holdable. The trace may be stored between the first look and the hold check (apps export
    spans while they log feedback): then it is looked up again instead of answering 404."""
    try:
        return trace_selectors.trace_for_write(actor, trace_id)
    except Http404:
        if _can_hold(actor, trace_id):
            return None
    return trace_selectors.trace_for_write(actor, trace_id)


def holds_override(actor: Actor, overrides: str | None, trace_id: str) -> bool:
    """Whether `overrides` names the actor's own held feedback of the trace."""
    return bool(overrides) and pending_for(actor, overrides, trace_id) is not None


def waits_for_span(trace: Trace, span_id: str | None, channel: str) -> bool:
    """Span feedback waits when its span is not stored yet and more spans may still come."""
    if channel not in WAITS_FOR_SPAN_CHANNELS or not span_id:
        return False
    if Span.objects.filter(trace_id=trace.pk, span_id=span_id).exists():
        return False
    trace = Trace.objects.get(pk=trace.pk)  # the span count and metadata (the create read only the id)
    return trace.expected_span_count is None or not trace.spans_complete


def id_taken(assessment_id: str) -> bool:
    return (
        Assessment.objects.filter(pk=assessment_id).exists()
        or PendingAssessment.objects.filter(pk=assessment_id).exists()
    )


def hold(
    *,
    trace_id: str,
    kind: str,
    fields: dict,
    actor: Actor,
    channel: str,
    create_time: datetime | None = None,
    overrides: str | None = None,
) -> Assessment:
    """Keep a create (checked by `validation.clean_create`) until trace `trace_id` (and span
    `fields["span_id"]`) is stored; writes its create (or override) revision. Returns the held
    assessment as the selectors show it (or the real one if the trace arrived meanwhile).

    Raises PermissionDenied (only API keys may hold feedback) and Conflict (the id is taken,
    the overridden item is not the key's held feedback of that trace, or the key already holds
    MAX_PENDING_PER_KEY items).
    """
    owner = _owner(actor)
    if not isinstance(trace_id, str) or not TRACE_ID_RE.fullmatch(trace_id):
        raise ValidationError({"trace_id": "must be 'tr-' followed by 32 lowercase hex digits"})
    # Checked when held against the rules current then, if the key's experiment is known
    # (a key scoped to one); the rules run again when the trace arrives.
    validation.check_before_experiment_known(actor.key_experiment_ids, kind, dict(fields))
    now = timezone.now()
    expire(now=now)
    payload = {
        **{key: fields[key] for key in ("name", "value", "error", "rationale", "metadata", "source_type")},
        "source_id": fields["source_id"],
        "span_id": fields["span_id"],
        "create_time": (create_time or now).isoformat(),
        "updates": [],
    }
    with transaction.atomic():
        _serialize_with_ingest(trace_id)
        old = None
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
        assessment_id = fields["assessment_id"] or new_assessment_id()
        if id_taken(assessment_id):
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
        shown = pending_as_assessment(pending)
        if old is not None:
            before = pending_as_assessment(old).snapshot()
            old.payload = {**old.payload, "overridden_by": assessment_id}
            old.save(update_fields=["payload"])
            record(Revision.Action.OVERRIDE, shown, actor, channel, before, shown.snapshot(), related=overrides)
        else:
            record(Revision.Action.CREATE, shown, actor, channel, None, shown.snapshot())
    logger.info("holding %s %s for trace %s until it arrives", kind, assessment_id, trace_id)
    # The trace may have been stored between the caller's check and this commit.
    trace = Trace.objects.filter(pk=trace_id).first()
    # Another experiment's trace stays "missing" to this key: its feedback waits and expires.
    if trace is not None and actor.role(trace.experiment_id) is not None:
        attach(trace)
        attached = Assessment.objects.filter(pk=assessment_id).first()
        if attached is not None:
            attached.replayed = False
            return attached
        pending = PendingAssessment.objects.filter(pk=assessment_id).first()
        if pending is None:
            raise PermissionDenied(f"Trace {trace_id} is in an experiment this key cannot write to.")
    return pending_as_assessment(pending)


def _locked(held: Assessment, actor: Actor) -> PendingAssessment:
    current = PendingAssessment.objects.select_for_update().filter(pk=held.pk, **_owner(actor)).first()
    if current is None:
        raise PendingAssessment.DoesNotExist(f"Assessment {held.pk} no longer exists.")
    return current


def update(*, held: Assessment, actor: Actor, channel: str, expected_version: int | None = None, **changes):
    """Change a held assessment (same rules as a stored one) and write its `update` revision;
    the change is applied when it is attached. Raises ValidationError, PermissionDenied,
    StaleVersion."""
    with transaction.atomic():
        current = _locked(held, actor)
        view = pending_as_assessment(current)
        if expected_version is not None and expected_version != view.version:
            raise StaleVersion(view)
        cleaned = validation.clean_changes(current.kind, {"value": view.value, "error": view.error}, changes)
        before = view.snapshot()
        if all(getattr(view, field) == value for field, value in cleaned.items()):
            return view
        if {"name", "value", "error"} & set(cleaned):
            validation.check_before_experiment_known(actor.key_experiment_ids, current.kind, {**before, **cleaned})
        current.payload = {
            **current.payload,
            "updates": [*(current.payload.get("updates") or []), cleaned],
            "last_update_time": timezone.now().isoformat(),
        }
        current.save(update_fields=["payload"])
        after = pending_as_assessment(current)
        record(Revision.Action.UPDATE, after, actor, channel, before, after.snapshot())
    return after


def delete(*, held: Assessment, actor: Actor, channel: str, expected_version: int | None = None) -> None:
    """Drop a held assessment and write its `delete` revision; if it overrode another held one,
    that one is valid again. Held overrides of it are dropped too (nothing left to override)."""
    with transaction.atomic():
        current = PendingAssessment.objects.select_for_update().filter(pk=held.pk, **_owner(actor)).first()
        if current is None:
            return
        view = pending_as_assessment(current)
        if expected_version is not None and expected_version != view.version:
            raise StaleVersion(view)
        restored = None
        overridden = current.payload.get("overrides")
        if overridden:
            old = PendingAssessment.objects.select_for_update().filter(pk=overridden).first()
            if old is not None and old.payload.get("overridden_by") == current.pk:
                old.payload = {key: value for key, value in old.payload.items() if key != "overridden_by"}
                old.save(update_fields=["payload"])
                restored = old.pk
        for child in PendingAssessment.objects.filter(trace_id=current.trace_id).exclude(pk=current.pk):
            if child.payload.get("overrides") == current.pk:
                logger.info("dropping pending %s: the feedback it overrode was deleted", child.pk)
                _drop(child, "override-of-deleted")
        record(Revision.Action.DELETE, view, actor, channel, view.snapshot(), None, related=restored)
        current.delete()
    logger.info("pending %s %s for trace %s deleted by %s", current.kind, current.pk, current.trace_id, actor.label)


def _drop(pending: PendingAssessment, reason: str) -> None:
    """Delete a held row the system gives up on, closing its history with a `delete` revision
    by `system:<reason>`."""
    view = pending_as_assessment(pending)
    record(Revision.Action.DELETE, view, Actor.for_system(reason), pending.channel, view.snapshot(), None)
    pending.delete()


def _sender(pending: PendingAssessment) -> Actor | None:
    if pending.actor_key is not None:
        return Actor.for_key(pending.actor_key) if pending.actor_key.is_active else None
    if pending.actor_user is not None and pending.actor_user.is_active:
        return Actor.for_user(pending.actor_user)
    return None


def _materialize(trace: Trace, pending: PendingAssessment) -> Assessment:
    """The held assessment as a stored row on `trace`, in its current state (its revisions
    were written as it changed). Raises ValidationError, Conflict."""
    view = pending_as_assessment(pending)
    fields = validation.clean_create(
        kind=pending.kind,
        name=view.name,
        value=view.value,
        error=view.error,
        rationale=view.rationale,
        source_type=view.source_type,
        source_id=view.source_id,
        span_id=view.span_id,
        metadata=view.metadata,
        assessment_id=pending.assessment_id,
    )
    validation.check_for_experiment(trace.experiment_id, pending.kind, fields)
    old = None
    if view.overrides_id:
        old = Assessment.objects.select_for_update().filter(pk=view.overrides_id, trace_id=trace.pk).first()
        if old is None:
            raise ValidationError({"overrides": f"{view.overrides_id} is not an assessment of trace {trace.pk}"})
        if old.kind != Assessment.Kind.FEEDBACK or not old.valid:
            raise Conflict(f"{old.pk} is not a valid feedback any more.")
    assessment = rows.new_assessment(
        kind=pending.kind,
        trace_id=trace.pk,
        experiment_id=trace.experiment_id,
        fields=fields,
        actor=_sender(pending),
        create_time=view.create_time,
        overrides=old,
    )
    assessment.version, assessment.last_update_time = view.version, view.last_update_time
    try:
        with transaction.atomic():
            assessment.save(force_insert=True)
    except IntegrityError:
        raise rows.taken(assessment) from None
    if old is not None:
        rows.invalidate(old, timezone.now())
    filled = Revision.objects.filter(assessment_id=assessment.pk, experiment_id__isnull=True).update(
        experiment_id=trace.experiment_id
    )
    if not filled:  # held before held feedback wrote revisions: its create revision now
        row = revision(
            Revision.Action.CREATE, assessment, _sender(pending), pending.channel, None, assessment.snapshot()
        )
        row.save(force_insert=True)
    return assessment


def attach(trace: Trace) -> list[Assessment]:
    """Turn the feedback held for `trace` into stored assessments (same ids, create time,
    channel and revisions), oldest first. Feedback for a span not stored yet keeps waiting.
    An item whose sender may no longer write to the trace's experiment, or that no longer
    validates, is dropped with a warning and a `delete` revision. Query count: one when
    nothing is held; otherwise the locked rows, the trace's span ids and the writes.
    """
    attached: list[Assessment] = []
    # The common case (nothing held) costs one SELECT and no savepoint inside the ingest transaction.
    if not PendingAssessment.objects.filter(trace_id=trace.pk).exists():
        return attached
    with transaction.atomic():
        # The trace first, then its held rows: the order ingest takes them in (it holds the trace
        # FOR UPDATE while it attaches). Taken the other way round, a client's feedback attaching
        # here and a span export of the same trace deadlock. (Already held when called by ingest.)
        Trace.objects.select_for_update().filter(pk=trace.pk).values_list("pk", flat=True).first()
        pendings = list(
            # of=("self",): PostgreSQL cannot lock the nullable side of the outer joins below.
            PendingAssessment.objects.select_for_update(of=("self",))
            .filter(trace_id=trace.pk)
            .select_related("actor_key", "actor_user")
            .order_by("created_at", "assessment_id")
        )
        span_ids = set(Span.objects.filter(trace_id=trace.pk).values_list("span_id", flat=True)) if pendings else ()
        done = set()
        for pending in pendings:
            span_id = pending.payload.get("span_id")
            if span_id and span_id not in span_ids:
                continue
            overrides = pending.payload.get("overrides")
            if overrides and overrides not in done and any(other.pk == overrides for other in pendings):
                continue  # the feedback it overrides is still waiting (for its span)
            sender = _sender(pending)
            if sender is None or not sender.can(trace.experiment_id, REVIEWER):
                logger.warning(
                    "dropped pending %s %s for trace %s: its sender may not write to experiment %s",
                    pending.kind,
                    pending.pk,
                    trace.pk,
                    trace.experiment_id,
                )
                _drop(pending, "sender-without-access")
                continue
            try:
                with transaction.atomic():
                    assessment = _materialize(trace, pending)
                    pending.delete()
            except (ValidationError, Conflict) as exc:
                reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                logger.warning("dropped pending %s %s for trace %s: %s", pending.kind, pending.pk, trace.pk, reason)
                _drop(pending, "invalid-on-attach")
                continue
            logger.info("attached pending %s %s to trace %s", pending.kind, pending.assessment_id, trace.pk)
            done.add(assessment.pk)
            attached.append(assessment)
    return attached


def _serialize_with_ingest(trace_id: str) -> None:
    """Inside a transaction: wait for (and block) the other side's transaction on this trace id.
    A hold commits its row and then looks for the trace; an ingest stores the trace and then
    looks for held rows. Without this lock each can miss the other (both look before the other
    commits) and the feedback stays held although its trace is stored. PostgreSQL only: SQLite
    runs one writer at a time."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", [trace_id])


def attach_on_ingest(trace: Trace, actor: Actor, channel: str) -> None:
    """traces.services.trace_stored_hooks entry (inside the ingest transaction): attach what
    was held for the trace."""
    _serialize_with_ingest(trace.pk)
    attach(trace)


def expire(*, now: datetime | None = None) -> list[PendingAssessment]:
    """Drop held assessments whose time (FEEDBACKHUB_PENDING_FEEDBACK_SECONDS) is up, each with
    a warning line and a `delete` revision; items whose trace did arrive are attached first.
    Returns the expired rows (unsaved copies)."""
    now = now or timezone.now()
    due = list(PendingAssessment.objects.filter(expires_at__lte=now).order_by("created_at", "assessment_id"))
    if not due:
        return []
    for trace in Trace.objects.filter(pk__in={pending.trace_id for pending in due}):
        attach(trace)
    expired = list(PendingAssessment.objects.filter(pk__in=[pending.pk for pending in due], expires_at__lte=now))
    system = Actor.for_system("expired")
    revisions = []
    for pending in expired:
        waited_for = "span " + pending.payload["span_id"] if pending.payload.get("span_id") else "trace"
        logger.warning(
            "expired pending %s %s (%r = %r) for trace %s: the %s never arrived within %s s",
            pending.kind,
            pending.pk,
            pending.payload.get("name"),
            pending.payload.get("value"),
            pending.trace_id,
            waited_for,
            settings.FEEDBACKHUB_PENDING_FEEDBACK_SECONDS,
        )
        view = pending_as_assessment(pending)
        revisions.append(revision(Revision.Action.DELETE, view, system, pending.channel, view.snapshot(), None))
    with transaction.atomic():
        Revision.objects.bulk_create(revisions)
        PendingAssessment.objects.filter(pk__in=[pending.pk for pending in expired]).delete()
    return expired
