"""Many feedback creates at once (the batch endpoint): all or nothing, each item checked by
the one validator, the traces, span ids and idempotency keys read in one query each, the
rows and their revisions written with two bulk inserts (COPY on PostgreSQL)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from feedbackhub import bulk
from traces.access import REVIEWER, Actor
from traces.models import Span, Trace

from ..models import Assessment, Revision, new_assessment_id, numeric_projection
from . import hooks, validation
from .errors import Conflict

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
    """One item's fields, checked by the one validator (no database access)."""
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
    fields = validation.clean_create(
        kind=Assessment.Kind.FEEDBACK,
        name=item.get("name"),
        value=item.get("value"),
        error=item.get("error"),
        rationale=item.get("rationale"),
        source_type=source.get("source_type") or item.get("source_type") or Assessment.SourceType.HUMAN,
        source_id=source.get("source_id") or item.get("source_id") or default_source_id,
        span_id=item.get("span_id") or None,
        metadata=item.get("metadata"),
        idempotency_key=item.get("idempotency_key"),
    )
    fields["trace_id"] = trace_id
    return fields


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
    for index, fields in cleaned.items():
        try:
            validation.check_for_experiment(fields["experiment_id"], Assessment.Kind.FEEDBACK, fields)
        except ValidationError as exc:
            errors.setdefault(index, {}).update(exc.message_dict)

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
                "definition_version": fields.get("definition_version"),
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
            for experiment_id in {row["experiment_id"] for row, _ in new}:
                hooks.written(
                    experiment_id, {row["trace_id"] for row, _ in new if row["experiment_id"] == experiment_id}
                )
    return results
