"""Writes to experiments, traces and spans. The only code that creates or changes them."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime, timedelta, timezone

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.db.models.fields.json import KeyTransform
from django.http import Http404

from feedbackhub import bulk

from . import truncation, usage
from .access import OWNER, REVIEWER, Actor
from .models import (
    SPAN_ID_RE,
    SPAN_STATUS_CODES,
    TRACE_ID_RE,
    TRACE_STATES,
    ApiKey,
    Experiment,
    Membership,
    Span,
    Trace,
    new_trace_id,
)

logger = logging.getLogger(__name__)

PREVIEW_CHARS = 1000
SPAN_FIELDS = [
    "parent_span_id",
    "name",
    "span_type",
    "kind",
    "start_time_ns",
    "end_time_ns",
    "status_code",
    "status_message",
    "inputs",
    "outputs",
    "attributes",
    "events",
]
TRACE_FIELDS = [
    "name",
    "request_time",
    "execution_time_ms",
    "state",
    "request_preview",
    "response_preview",
    "client_request_id",
]
# Called inside the ingest transaction with (trace, actor, channel) when a trace id is first
# stored or receives spans. The assessments app registers the hook that attaches feedback
# which arrived early (the one mechanism: no endpoint attaches on its own).
trace_stored_hooks: list[Callable[[Trace, Actor, str], None]] = []


class Conflict(Exception):
    """The request clashes with the stored state (answered with 409)."""

    http_status = 409


class TraceIdTaken(Conflict):
    """The trace id is stored in an experiment the export does not write to.

    The message never names that experiment, nor says anything about the stored trace, unless
    the caller may see it: to anyone else the id reads exactly like a missing one.
    """

    def __init__(self, trace_id: str, experiment_id: int | None = None):
        where = f" in experiment {experiment_id}" if experiment_id is not None else ""
        super().__init__(
            f"Trace id {trace_id} is already in use{where}; trace ids are unique across FeedbackHub, "
            "so this trace was not stored (give it a new trace id)."
        )
        self.trace_id = trace_id


@dataclass
class ExportResult:
    """What `ingest_export` did: the traces stored and those refused (id, span count, reason)."""

    stored: list[Trace] = dc_field(default_factory=list)
    refused: list[tuple[str, int, str]] = dc_field(default_factory=list)

    @property
    def rejected_spans(self) -> int:
        return sum(count for _, count, _ in self.refused)

    @property
    def error_message(self) -> str:
        return "; ".join(reason for _, _, reason in self.refused)


def create_experiment(*, name: str, actor: Actor, description: str = "") -> Experiment:
    """Create an experiment; the creating user becomes its owner, the creating key gets access.

    Raises ValidationError for a bad name and Conflict when the name is taken.
    """
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "An experiment needs a name."})
    if len(name) > 250:
        raise ValidationError({"name": "The name is longer than 250 characters."})
    with transaction.atomic():
        if Experiment.objects.filter(name=name).exists():
            raise Conflict(f"An experiment named {name!r} already exists.")
        experiment = Experiment.objects.create(name=name, description=description)
        if actor.user is not None and not actor.user.is_staff:
            experiment.memberships.create(user=actor.user, role=OWNER)
        if actor.api_key is not None:
            actor.api_key.experiments.add(experiment)
            actor.key_experiment_ids = actor.key_experiment_ids | {experiment.pk}
            actor._roles.pop(experiment.pk, None)
    return experiment


# MLflow's Default experiment: apps that never call set_experiment send it. It stands for the
# key's experiment when the key is scoped to exactly one (no experiment has the id 0).
DEFAULT_EXPERIMENT_ID = "0"


def experiment_for_ingest(
    actor: Actor, *, experiment_id=None, name: str | None = None, field: str = "experiment_id"
) -> Experiment:
    """The experiment a trace export writes to, for every ingest surface (native API, MLflow
    StartTraceV3 and traces.json upload, OTLP).

    By id (MLflow's Default "0" is the key's only experiment), else by name (or an id given as
    the name), else the key's only experiment. Visibility is decided by `Actor.role`, which
    re-reads a key's scope from the database on a miss, so an experiment created a moment ago
    through another worker is found at once. `field` names where the reference came from, in
    the messages. Raises Http404 for an experiment the actor cannot see (existing or not: no
    oracle) and ValidationError when nothing names one and the key is not scoped to exactly one.
    """
    experiment = None
    if experiment_id not in (None, ""):
        reference = str(experiment_id).strip()
        if reference == DEFAULT_EXPERIMENT_ID:
            return _only_experiment(actor, field, default=True)
        if reference.isascii() and reference.isdigit() and len(reference) <= 18:
            experiment = Experiment.objects.filter(pk=int(reference)).first()
    elif name not in (None, ""):
        reference = str(name).strip()
        experiment = Experiment.objects.filter(name=reference).first()
        if experiment is None and reference.isascii() and reference.isdigit() and len(reference) <= 18:
            experiment = Experiment.objects.filter(pk=int(reference)).first()
    else:
        return _only_experiment(actor, field, default=False)
    if experiment is None or actor.role(experiment.pk) is None:
        raise Http404(f"Experiment {reference[:100]!r} ({field}) not found for this API key.")
    return experiment


def _only_experiment(actor: Actor, field: str, *, default: bool) -> Experiment:
    """The key's only experiment, when no experiment was named."""
    ids = actor.key_experiment_ids if actor.api_key is not None else frozenset()
    experiment = Experiment.objects.filter(pk=next(iter(ids))).first() if len(ids) == 1 else None
    if experiment is not None:
        return experiment
    if default:
        raise Http404(
            "No Experiment with id=0 exists: MLflow's Default experiment stands for the API key's experiment, "
            f"but this key is scoped to {len(ids)} experiments. "
            "Call mlflow.set_experiment(...) or set MLFLOW_EXPERIMENT_NAME."
        )
    raise ValidationError({field: "is required (the key is not scoped to exactly one experiment)."})


def preview(value, limit: int = PREVIEW_CHARS) -> str:
    """A one-line text preview of a JSON value (strings without their quotes)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text[:limit]


def _clean_span(raw: dict, index: int) -> dict:
    errors = {}
    span_id = raw.get("span_id")
    if not isinstance(span_id, str) or not SPAN_ID_RE.match(span_id):
        errors["span_id"] = "must be 16 lowercase hex digits"
    parent = raw.get("parent_span_id") or None
    if parent is not None and (not isinstance(parent, str) or not SPAN_ID_RE.match(parent)):
        errors["parent_span_id"] = "must be 16 lowercase hex digits or null"
    start, end = raw.get("start_time_ns"), raw.get("end_time_ns")
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        errors["start_time_ns"] = "must be a non-negative integer (nanoseconds since the epoch)"
    if end is not None and (not isinstance(end, int) or isinstance(end, bool) or end < 0):
        errors["end_time_ns"] = "must be a non-negative integer or null"
    elif end is not None and isinstance(start, int) and end < start:
        errors["end_time_ns"] = "is before start_time_ns"
    status = raw.get("status_code") or Span.StatusCode.UNSET
    if status not in SPAN_STATUS_CODES:
        errors["status_code"] = f"must be one of {', '.join(Span.StatusCode.values)}"
    name = raw.get("name") or ""
    if len(name) > 250:
        errors["name"] = "is longer than 250 characters"
    inputs, outputs = raw.get("inputs"), raw.get("outputs")
    attributes, events = raw.get("attributes") or {}, raw.get("events") or []
    limit = settings.FEEDBACKHUB_MAX_SPAN_BYTES
    size = truncation.payload_size(inputs, outputs, attributes, events)
    if size > limit:
        # Stored truncated and marked rather than refused: refusing loses the whole trace.
        fitted = (
            truncation.fit(inputs, outputs, attributes, events, limit)
            if isinstance(attributes, dict) and isinstance(events, list)
            else None
        )
        if fitted is None:
            errors["attributes"] = (
                f"inputs, outputs, attributes and events take {size} bytes as JSON and cannot be cut to "
                f"the limit of {limit} bytes per span"
            )
        else:
            inputs, outputs, attributes, events, cut = fitted
            logger.info("span %s: %d bytes cut to the %d-byte limit (%s)", span_id, size, limit, ", ".join(cut))
    if errors:
        raise ValidationError({f"spans[{index}].{key}": message for key, message in errors.items()})
    cleaned = {
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "span_type": (raw.get("span_type") or "UNKNOWN")[:50],
        "kind": (raw.get("kind") or "")[:30],
        "start_time_ns": start,
        "end_time_ns": end,
        "status_code": status,
        "status_message": raw.get("status_message") or "",
        "inputs": inputs,
        "outputs": outputs,
        "attributes": attributes,
        "events": events,
    }
    usage.derive(cleaned)
    return cleaned


def _root(spans: list[dict]) -> dict | None:
    """The span without a parent (exports may deliver children before their root)."""
    roots = [span for span in spans if not span["parent_span_id"]]
    return min(roots, key=lambda span: span["start_time_ns"]) if roots else None


def _derived_from_root(root: dict) -> dict:
    """Trace fields a root span implies, used where the caller did not give them."""
    derived = {
        "name": root["name"],
        "request_time": datetime.fromtimestamp(root["start_time_ns"] / 1e9, tz=timezone.utc),
        "request_preview": preview(root["inputs"]),
        "response_preview": preview(root["outputs"]),
        "state": Trace.State.ERROR if root["status_code"] == Span.StatusCode.ERROR else Trace.State.OK,
    }
    if root["end_time_ns"] is not None:
        derived["execution_time_ms"] = (root["end_time_ns"] - root["start_time_ns"]) // 1_000_000
    return derived


def _string_map(value, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError({field: "must be an object of string keys to string values"})
    if len(value) > settings.FEEDBACKHUB_MAX_METADATA_ENTRIES:
        raise ValidationError({field: f"has more than {settings.FEEDBACKHUB_MAX_METADATA_ENTRIES} entries"})
    bad = [key for key, item in value.items() if not isinstance(key, str) or not isinstance(item, str)]
    if bad:
        raise ValidationError({field: f"values must be strings (key {bad[0]!r})"})
    return value


def ingest_trace(
    *,
    experiment: Experiment,
    actor: Actor,
    channel: str,
    trace_id: str | None = None,
    spans: Iterable[dict] = (),
    tags: dict | None = None,
    metadata: dict | None = None,
    **fields,
) -> tuple[Trace, bool]:
    """Store a trace and its spans; posting the same trace_id again merges into the stored one.

    `fields` are Trace columns (TRACE_FIELDS); the ones not given are derived from the
    root span. Spans are upserted in one statement keyed on (trace, span_id), so a
    repeated or partial export never duplicates them; tags and metadata are merged.
    Returns (trace, created). Raises ValidationError for bad input, PermissionDenied
    when the actor may not write to the experiment and Conflict when the trace id
    belongs to another experiment.
    """
    actor.require(experiment.pk, REVIEWER)
    unknown = set(fields) - set(TRACE_FIELDS)
    if unknown:
        raise TypeError(f"unknown trace fields: {sorted(unknown)}")
    trace_id = trace_id or new_trace_id()
    if not isinstance(trace_id, str) or not TRACE_ID_RE.match(trace_id):
        raise ValidationError({"trace_id": "must be 'tr-' followed by 32 lowercase hex digits"})
    tags = _string_map(tags, "tags")
    metadata = _string_map(metadata, "metadata")
    spans = [_clean_span(raw, index) for index, raw in enumerate(spans)]
    if len(spans) > settings.FEEDBACKHUB_MAX_SPANS_PER_TRACE:
        raise ValidationError({"spans": f"has more than {settings.FEEDBACKHUB_MAX_SPANS_PER_TRACE} spans"})
    if len({span["span_id"] for span in spans}) != len(spans):
        raise ValidationError({"spans": "contains the same span_id twice"})
    for key in ("name", "client_request_id"):
        if fields.get(key) and len(fields[key]) > 250:
            raise ValidationError({key: "is longer than 250 characters"})
    if fields.get("state") and fields["state"] not in TRACE_STATES:
        raise ValidationError({"state": f"must be one of {', '.join(Trace.State.values)}"})

    root = _root(spans)
    if root:
        derived = _derived_from_root(root)
    elif spans:
        # Children without their root: only the time is known; the root fills the rest later.
        first = min(span["start_time_ns"] for span in spans)
        derived = {
            "request_time": datetime.fromtimestamp(first / 1e9, tz=timezone.utc),
            "state": Trace.State.IN_PROGRESS,
        }
    else:
        derived = {}
    given = {key: value for key, value in fields.items() if value is not None}

    values = {**derived, **given}
    values.setdefault("request_time", datetime.now(timezone.utc))
    with_usage = any(usage.has_usage(span) for span in spans)
    # A new trace has exactly these spans: no count query and no second UPDATE needed.
    new = Trace(
        trace_id=trace_id, experiment=experiment, tags=tags, metadata=dict(metadata), span_count=len(spans), **values
    )
    _lift_ids(new)
    totals = usage.aggregate(usage.node(span) for span in spans) if with_usage else (None, None)
    _set_usage(new, *(totals if totals != (None, None) else _given_usage(metadata)))
    with transaction.atomic():
        # PostgreSQL: one INSERT … ON CONFLICT DO NOTHING stores a new trace id (the common case)
        # without the lookup and savepoint below; a stored id falls through to the merge.
        created = connection.vendor == "postgresql" and bulk.insert_new(new)
        trace = new
        if not created:
            trace = Trace.objects.select_for_update().filter(pk=trace_id).first()
            created = trace is None
            if created:
                trace = new
                try:
                    with transaction.atomic():
                        trace.save(force_insert=True)
                except IntegrityError:
                    # A concurrent request stored the same trace id first: merge into it.
                    trace = Trace.objects.select_for_update().get(pk=trace_id)
                    created = False
        if not created:
            if trace.experiment_id != experiment.pk:
                visible = actor.role(trace.experiment_id) is not None
                raise TraceIdTaken(trace_id, trace.experiment_id if visible else None)
            started = trace.request_time
            _merge(trace, derived, given, tags, metadata)
            if trace.request_time != started:
                # An earlier span arrived: the stored spans follow their trace to its (maybe other) month.
                Span.objects.filter(trace_id=trace_id, trace_request_time=started).update(
                    trace_request_time=trace.request_time
                )
        if spans and created and connection.vendor == "postgresql":
            # A trace stored by this transaction has no spans yet: COPY, no conflict to handle.
            bulk.copy_rows(
                Span, [{"trace_id": trace_id, "trace_request_time": trace.request_time, **span} for span in spans]
            )
        elif spans:
            Span.objects.bulk_create(
                [Span(trace_id=trace_id, trace_request_time=trace.request_time, **span) for span in spans],
                update_conflicts=True,
                unique_fields=["trace", "span_id", "trace_request_time"],
                update_fields=SPAN_FIELDS,
                batch_size=500,
            )
            if not created:
                trace.span_count = Span.objects.of_trace(trace).count()
                changed = ["span_count", "updated_at"]
                if with_usage or trace.total_tokens is not None or trace.cost is not None:
                    # A span may arrive after its LLM child (or parent): totals over every stored span.
                    changed += _set_usage(trace, *usage.aggregate(_stored_usage_nodes(trace)))
                trace.save(update_fields=changed)
        elif not created and _given_usage(metadata) != (None, None):
            # StartTraceV3 carries the client's own totals (mlflow.trace.tokenUsage / cost).
            changed = _set_usage(trace, *_given_usage(metadata))
            if changed:
                trace.save(update_fields=changed)
        if created or spans:
            for hook in trace_stored_hooks:
                hook(trace, actor, channel)
    return trace, created


def ingest_export(
    *,
    experiment: Experiment,
    actor: Actor,
    channel: str,
    traces: Iterable[dict],
    each: Callable[[Trace, dict], None] | None = None,
) -> ExportResult:
    """Store the traces of one export (an OTLP request): `traces` are ingest_trace keyword
    dicts (trace_id, spans, tags, metadata). `each(trace, item)` runs after each stored trace,
    in the same transaction (OTLP evaluation events become feedback there).

    One transaction, the traces in trace-id order: two exports that carry spans of the same
    traces lock their rows in the same order, so concurrent exports never deadlock. A trace
    whose id is taken by another experiment is refused and reported (its savepoint rolled
    back); every other trace is stored. Any other error (ValidationError, PermissionDenied)
    refuses the whole export: a bad body stores nothing.
    """
    result = ExportResult()
    with transaction.atomic():
        for item in sorted(traces, key=lambda item: item.get("trace_id") or ""):
            try:
                # ingest_trace's own atomic block is a savepoint here: a refused trace rolls back
                # alone (it is refused before anything of it is written).
                trace, _ = ingest_trace(experiment=experiment, actor=actor, channel=channel, **item)
            except TraceIdTaken as exc:
                result.refused.append((exc.trace_id, len(item.get("spans") or ()), str(exc)))
                continue
            if each is not None:
                each(trace, item)
            result.stored.append(trace)
    return result


def _given_usage(metadata: dict) -> tuple[dict | None, dict | None]:
    """The trace totals a client sent in the metadata (MLflow's StartTraceV3 does)."""
    return usage.usage_dict(metadata.get(usage.TRACE_TOKEN_USAGE)), usage.cost_dict(metadata.get(usage.TRACE_COST))


def _stored_usage_nodes(trace: Trace) -> list[tuple]:
    """(span_id, parent_span_id, usage, cost) of every stored span of the trace; only the two
    small attributes are read, not the span payloads."""
    return list(
        Span.objects.of_trace(trace).values_list(
            "span_id",
            "parent_span_id",
            KeyTransform(usage.CHAT_USAGE, "attributes"),
            KeyTransform(usage.LLM_COST, "attributes"),
        )
    )


def _set_usage(trace: Trace, tokens: dict | None, cost: dict | None) -> list[str]:
    """Put trace totals in the metadata (as MLflow does, JSON text) and the filterable columns;
    returns the fields changed."""
    metadata = dict(trace.metadata)
    if tokens is not None:
        metadata[usage.TRACE_TOKEN_USAGE] = json.dumps(tokens)
    if cost is not None:
        metadata[usage.TRACE_COST] = json.dumps(cost)
    total_tokens = tokens.get(usage.TOTAL) if tokens is not None else trace.total_tokens
    total_cost = round(cost["total_cost"], 10) if cost is not None and "total_cost" in cost else trace.cost
    changed = []
    for name, value in (("metadata", metadata), ("total_tokens", total_tokens), ("cost", total_cost)):
        if getattr(trace, name) != value:
            setattr(trace, name, value)
            changed.append(name)
    return changed


def _lift_ids(trace: Trace) -> None:
    """Copy session and user ids out of metadata into their indexed columns."""
    trace.session_id = (trace.metadata.get("mlflow.trace.session") or trace.metadata.get("session_id") or "")[:250]
    trace.user_id = (trace.metadata.get("mlflow.trace.user") or trace.metadata.get("user_id") or "")[:250]


def _merge(trace: Trace, derived: dict, given: dict, tags: dict, metadata: dict) -> None:
    """Fold a repeated export into the stored trace: explicit fields win, then root-span facts."""
    changed = {"updated_at"}
    for key, value in {**derived, **given}.items():
        if key not in given:
            # Facts derived from spans only fill gaps; explicit trace info is not overwritten by them.
            current = getattr(trace, key)
            if key == "request_time":
                value = min(current, value)
            elif current not in (None, "", Trace.State.IN_PROGRESS):
                continue
        if getattr(trace, key) != value:
            setattr(trace, key, value)
            changed.add(key)
    if tags and {**trace.tags, **tags} != trace.tags:
        trace.tags = {**trace.tags, **tags}
        changed.add("tags")
    if metadata and {**trace.metadata, **metadata} != trace.metadata:
        trace.metadata = {**trace.metadata, **metadata}
        _lift_ids(trace)
        changed |= {"metadata", "session_id", "user_id"}
    trace.save(update_fields=sorted(changed))


def set_trace_tag(*, trace: Trace, key: str, value: str, actor: Actor) -> Trace:
    """Set one tag on a trace. Raises ValidationError for a bad key or value."""
    actor.require(trace.experiment_id, REVIEWER)
    if not isinstance(key, str) or not key or len(key) > 250:
        raise ValidationError({"key": "must be a non-empty string of at most 250 characters"})
    if not isinstance(value, str):
        raise ValidationError({"value": "must be a string"})
    with transaction.atomic():
        trace = Trace.objects.select_for_update().get(pk=trace.pk)
        trace.tags = {**trace.tags, key: value}
        trace.save(update_fields=["tags", "updated_at"])
    return trace


def delete_trace_tag(*, trace: Trace, key: str, actor: Actor) -> Trace:
    """Remove one tag from a trace (missing keys are ignored)."""
    actor.require(trace.experiment_id, REVIEWER)
    with transaction.atomic():
        trace = Trace.objects.select_for_update().get(pk=trace.pk)
        if key in trace.tags:
            trace.tags = {k: v for k, v in trace.tags.items() if k != key}
            trace.save(update_fields=["tags", "updated_at"])
    return trace


def set_membership(*, experiment: Experiment, user, role: str, actor: Actor) -> Membership:
    """Give `user` the role (viewer, reviewer, owner) in the experiment, replacing any other role.

    Raises ValidationError for an unknown role and PermissionDenied unless the actor owns the experiment.
    """
    actor.require(experiment.pk, OWNER)
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"must be one of {', '.join(Membership.Role.values)}"})
    membership, _ = Membership.objects.update_or_create(user=user, experiment=experiment, defaults={"role": role})
    return membership


# --- API keys ----------------------------------------------------------------------------------

API_KEY_MIN_LENGTH = 24


def create_api_key(
    *, experiments: Iterable[Experiment], label: str, actor: Actor, raw_key: str | None = None
) -> tuple[ApiKey, str]:
    """Create an API key scoped to `experiments`; returns (key, raw secret).

    The raw secret is returned once and never stored (only its SHA-256 and a short
    prefix are). `raw_key` lets the demo loader use a fixed, documented key; normally
    a random one is generated. Raises PermissionDenied unless the actor owns every
    experiment, ValidationError for a bad label, no experiment or a short raw_key,
    and Conflict when the raw_key is already in use.
    """
    experiments = list(experiments)
    if not experiments:
        raise ValidationError({"experiments": "A key needs at least one experiment."})
    for experiment in experiments:
        actor.require(experiment.pk, OWNER)
    label = (label or "").strip()
    if len(label) > 200:
        raise ValidationError({"label": "is longer than 200 characters"})
    if raw_key is None:
        raw_key = ApiKey.generate()
    elif not isinstance(raw_key, str) or len(raw_key) < API_KEY_MIN_LENGTH or any(c.isspace() for c in raw_key):
        raise ValidationError({"raw_key": f"must be at least {API_KEY_MIN_LENGTH} characters without spaces"})
    created_by = actor.user if actor.user is not None and actor.user.is_authenticated else None
    with transaction.atomic():
        if ApiKey.objects.filter(key_hash=ApiKey.hash(raw_key)).exists():
            raise Conflict("This key already exists.")
        api_key = ApiKey.objects.create(
            label=label, prefix=raw_key[:10], key_hash=ApiKey.hash(raw_key), created_by=created_by
        )
        api_key.experiments.set(experiments)
    logger.info("api key %s created by %s", api_key.prefix, actor.label)
    return api_key, raw_key


def revoke_api_key(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    """Revoke a key (sets revoked_at; requests with it then get 401). Revoking twice keeps the
    first time. Raises PermissionDenied unless the actor owns every experiment of the key."""
    for experiment_id in api_key.experiments.values_list("pk", flat=True):
        actor.require(experiment_id, OWNER)
    now = datetime.now(timezone.utc)
    # A key in its rotation grace period (revoked_at in the future) is revoked now.
    updated = (
        ApiKey.objects.filter(pk=api_key.pk)
        .filter(Q(revoked_at__isnull=True) | Q(revoked_at__gt=now))
        .update(revoked_at=now)
    )
    api_key.refresh_from_db(fields=["revoked_at"])
    _forget_cached_key(api_key)
    if updated:
        logger.info("api key %s revoked by %s", api_key.prefix, actor.label)
    return api_key


def _forget_cached_key(api_key: ApiKey) -> None:
    """This process stops trusting its cached copy at once (others within the cache TTL)."""
    from .authentication import forget_api_keys

    forget_api_keys(api_key.key_hash)


def rotate_api_key(*, api_key: ApiKey, actor: Actor, grace_seconds: int | None = None) -> tuple[ApiKey, str]:
    """Replace a key without downtime: create a new key (same experiments, same label) and
    schedule the old one's revocation `grace_seconds` from now (default
    FEEDBACKHUB_KEY_ROTATION_GRACE_SECONDS) by setting its revoked_at in the future; both
    keys work until then, so apps can be redeployed with the new one at leisure.
    `revoke_api_key` on the old key ends the grace period at once.

    Returns (new key, raw secret). Raises PermissionDenied unless the actor owns every
    experiment of the key, ValidationError for a negative grace period and Conflict when
    the key is already revoked.
    """
    if grace_seconds is None:
        grace_seconds = settings.FEEDBACKHUB_KEY_ROTATION_GRACE_SECONDS
    if not isinstance(grace_seconds, int) or grace_seconds < 0:
        raise ValidationError({"grace_seconds": "must be a non-negative number of seconds"})
    now = datetime.now(timezone.utc)
    with transaction.atomic():
        old = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        if old.revoked_at is not None and old.revoked_at <= now:
            raise Conflict("This API key is revoked; create a new key instead of rotating it.")
        new_key, raw_key = create_api_key(experiments=old.experiments.all(), label=old.label, actor=actor)
        ends = now + timedelta(seconds=grace_seconds)
        if old.revoked_at is None or old.revoked_at > ends:
            old.revoked_at = ends
            old.save(update_fields=["revoked_at"])
    api_key.revoked_at = old.revoked_at
    _forget_cached_key(old)
    logger.info("api key %s rotated to %s by %s; old key works until %s", old.prefix, new_key.prefix, actor.label, ends)
    return new_key, raw_key
