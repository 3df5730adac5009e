"""Every write to an evaluation dataset: create and delete a dataset, add records from traces
(by id, by a filter, from a list such as a review queue's completed items), merge records
(MLflow's merge_records), edit and remove draft records, publish a version.

Reviewers, owners, staff and the experiment's API keys write; viewers get PermissionDenied;
deleting a dataset takes an owner (or a key). Published versions are never changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.http import Http404
from django.utils import timezone

from assessments.models import Assessment, Revision
from assessments.queues.selectors import completed_trace_ids, queue_for
from feedbackhub import values
from traces import selectors as trace_selectors
from traces.access import OWNER, REVIEWER, Actor
from traces.models import Experiment, Span, Trace
from traces.services import Conflict

from .models import Dataset, DatasetRecord, DatasetVersion, DatasetVersionRecord, SourceType

__all__ = [
    "create_dataset",
    "delete_dataset",
    "add_records_from_traces",
    "add_records_from_filter",
    "merge_records",
    "update_record",
    "delete_records",
    "publish_version",
    "set_tags",
]

MAX_TRACES_PER_CALL = 1000
DEFAULT_FILTER_LIMIT = 100
RECORD_FIELDS = ("inputs", "expectations", "outputs", "tags")


@dataclass
class AddResult:
    added: int
    updated: int
    records: list[DatasetRecord]


def inputs_key(inputs) -> str:
    """The identity of a record's inputs (MLflow merges records with equal inputs)."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _clean_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError({"name": "A dataset needs a non-empty name."})
    if len(name.strip()) > 250:
        raise ValidationError({"name": f"is {len(name.strip())} characters long; the limit is 250."})
    return name.strip()


def _clean_tags(tags, field: str = "tags") -> dict:
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise ValidationError({field: "must be an object of string keys to string values."})
    return {str(key): value if isinstance(value, str) else json.dumps(value) for key, value in tags.items()}


def _clean_object(value, field: str, *, allow_none: bool = False) -> dict | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, dict):
        raise ValidationError({field: "must be a JSON object."})
    return value


@transaction.atomic
def create_dataset(
    *, experiment: Experiment, actor: Actor, name: str, description: str = "", tags: dict | None = None
) -> Dataset:
    """Create an empty dataset in the experiment. Raises PermissionDenied below reviewer,
    ValidationError for a bad name or tags, Conflict when the name is taken in the experiment."""
    actor.require(experiment.pk, REVIEWER)
    now = timezone.now()
    dataset = Dataset(
        experiment=experiment,
        name=_clean_name(name),
        description=description or "",
        tags=_clean_tags(tags),
        created_at=now,
        updated_at=now,
        created_by=actor.label,
        updated_by=actor.label,
    )
    try:
        with transaction.atomic():
            dataset.save(force_insert=True)
    except IntegrityError:
        raise Conflict(f"A dataset named {dataset.name!r} exists in this experiment.") from None
    return dataset


@transaction.atomic
def delete_dataset(*, dataset: Dataset, actor: Actor) -> None:
    """Delete the dataset with its draft and every published version (owners and keys)."""
    actor.require(dataset.experiment_id, OWNER)
    Dataset.objects.filter(pk=dataset.pk).delete()


def _lock(dataset: Dataset) -> None:
    """Serialize the writes to one dataset's draft (PostgreSQL row lock), so two calls adding the
    same trace or inputs at once update one record instead of failing on the unique key."""
    Dataset.objects.select_for_update().filter(pk=dataset.pk).values_list("pk", flat=True).first()


def _touch(dataset: Dataset, actor: Actor, now) -> None:
    Dataset.objects.filter(pk=dataset.pk).update(updated_at=now, updated_by=actor.label)
    dataset.updated_at, dataset.updated_by = now, actor.label


def _as_inputs(value) -> dict:
    """A trace's request as record inputs: an object as it is, anything else under "request"."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {"request": value}
        return parsed if isinstance(parsed, dict) else {"request": parsed}
    return {} if value is None else {"request": value}


def _trace_contents(trace_ids: list[str], *, include_outputs: bool) -> dict[str, dict]:
    """For each trace: inputs, outputs, expectations and their provenance (four queries)."""
    roots = {
        span["trace_id"]: span
        for span in Span.objects.filter(trace_id__in=trace_ids, parent_span_id__isnull=True)
        .order_by("start_time_ns")
        .values("trace_id", "inputs", "outputs")
    }
    expectations = list(
        Assessment.objects.filter(trace_id__in=trace_ids, kind=Assessment.Kind.EXPECTATION, valid=True)
        .order_by("create_time", "assessment_id")
        .values("assessment_id", "trace_id", "name", "value", "version")
    )
    revisions = dict(
        Revision.objects.filter(assessment_id__in=[row["assessment_id"] for row in expectations])
        .values("assessment_id")
        .annotate(last=Max("id"))
        .values_list("assessment_id", "last")
    )
    by_trace: dict[str, dict] = {}
    for row in expectations:  # several raters under one name: the latest one counts
        by_trace.setdefault(row["trace_id"], {})[row["name"]] = row
    contents = {}
    for trace in Trace.objects.filter(pk__in=trace_ids).values(
        "trace_id", "request_preview", "response_preview", "session_id"
    ):
        trace_id = trace["trace_id"]
        root = roots.get(trace_id)
        taken = by_trace.get(trace_id, {})
        source = {
            "trace_id": trace_id,
            "expectations": {
                name: {
                    "assessment_id": row["assessment_id"],
                    "version": row["version"],
                    "revision_id": revisions.get(row["assessment_id"]),
                }
                for name, row in taken.items()
            },
        }
        if trace["session_id"]:
            source["session_id"] = trace["session_id"]
        inputs = root["inputs"] if root is not None and root["inputs"] is not None else trace["request_preview"]
        outputs = None
        if include_outputs:
            outputs = root["outputs"] if root is not None and root["outputs"] is not None else None
            if outputs is None and trace["response_preview"]:
                outputs = values.parsed_json(trace["response_preview"])
        contents[trace_id] = {
            "inputs": _as_inputs(inputs),
            "outputs": outputs,
            "expectations": {name: row["value"] for name, row in taken.items()},
            "source": source,
        }
    return contents


@transaction.atomic
def add_records_from_traces(*, dataset: Dataset, actor: Actor, trace_ids, include_outputs: bool = True) -> AddResult:
    """Add one record per trace of the dataset's experiment (a trace already in the draft has
    its record refreshed from the trace). The entry point for the trace list selection, the
    native API, a filter and a review queue's completed items.

    Raises PermissionDenied below reviewer and ValidationError naming ids that are not traces
    of the experiment. A constant number of queries whatever the number of traces.
    """
    actor.require(dataset.experiment_id, REVIEWER)
    if isinstance(trace_ids, str) or not isinstance(trace_ids, (list, tuple)):
        raise ValidationError({"trace_ids": "must be a list of trace ids."})
    ids = list(dict.fromkeys(trace_ids))
    if not ids:
        raise ValidationError({"trace_ids": "is empty: name at least one trace."})
    if len(ids) > MAX_TRACES_PER_CALL:
        raise ValidationError({"trace_ids": f"has {len(ids)} ids; the limit is {MAX_TRACES_PER_CALL} per call."})
    if any(not isinstance(trace_id, str) for trace_id in ids):
        raise ValidationError({"trace_ids": "must hold trace id strings."})
    found = set(
        Trace.objects.filter(pk__in=ids, experiment_id=dataset.experiment_id).values_list("trace_id", flat=True)
    )
    missing = [trace_id for trace_id in ids if trace_id not in found]
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise ValidationError({"trace_ids": f"not traces of this experiment: {shown}"})
    _lock(dataset)
    contents = _trace_contents(ids, include_outputs=include_outputs)
    existing = {
        record.source_trace_id: record
        for record in DatasetRecord.objects.select_for_update().filter(dataset=dataset, source_trace_id__in=ids)
    }
    now = timezone.now()
    created, updated = [], []
    for trace_id in ids:
        content = contents[trace_id]
        record = existing.get(trace_id)
        if record is None:
            record = DatasetRecord(
                dataset=dataset,
                source_type=SourceType.TRACE,
                source_trace_id=trace_id,
                created_at=now,
                created_by=actor.label,
            )
            created.append(record)
        else:
            updated.append(record)
        for name in RECORD_FIELDS[:3]:
            setattr(record, name, content[name])
        record.source = content["source"]
        record.inputs_key = inputs_key(record.inputs)
        record.updated_at, record.updated_by = now, actor.label
    DatasetRecord.objects.bulk_create(created)
    DatasetRecord.objects.bulk_update(
        updated,
        ["inputs", "outputs", "expectations", "source", "inputs_key", "updated_at", "updated_by"],
    )
    _touch(dataset, actor, now)
    return AddResult(len(created), len(updated), created + updated)


def add_records_from_filter(
    *, dataset: Dataset, actor: Actor, filter_text: str, limit: int = DEFAULT_FILTER_LIMIT, include_outputs=True
) -> AddResult:
    """Add the newest `limit` traces of the experiment that match the filter (the one filter
    language). Raises FilterError for a bad filter, ValidationError for a bad limit or no match."""
    if not isinstance(filter_text, str) or not filter_text.strip():
        raise ValidationError({"filter": "is empty: write a filter such as expectation.expected_answer IS NOT NULL."})
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_TRACES_PER_CALL:
        raise ValidationError({"limit": f"must be a whole number from 1 to {MAX_TRACES_PER_CALL}."})
    actor.require(dataset.experiment_id, REVIEWER)
    matches = trace_selectors.search_traces(actor, experiment_ids=[dataset.experiment_id], filter_text=filter_text)
    trace_ids = list(matches.order_by("-request_time", "-trace_id").values_list("trace_id", flat=True)[:limit])
    if not trace_ids:
        raise ValidationError({"filter": "matches no trace of this experiment."})
    return add_records_from_traces(dataset=dataset, actor=actor, trace_ids=trace_ids, include_outputs=include_outputs)


def add_records_from_queue(
    *, dataset: Dataset, actor: Actor, queue_id, limit: int = MAX_TRACES_PER_CALL, include_outputs=True
) -> AddResult:
    """Add the traces of a review queue's completed items (the first `limit`): what reviewers
    finished becomes evaluation records. The queue must belong to the dataset's experiment."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_TRACES_PER_CALL:
        raise ValidationError({"limit": f"must be a whole number from 1 to {MAX_TRACES_PER_CALL}."})
    try:
        queue = queue_for(actor, queue_id)
    except Http404:
        raise ValidationError({"queue_id": f"{queue_id} is not a queue you can see."}) from None
    if queue.experiment_id != dataset.experiment_id:
        raise ValidationError({"queue_id": f"queue {queue.pk} belongs to another experiment than the dataset."})
    trace_ids = completed_trace_ids(queue, limit)
    if not trace_ids:
        raise ValidationError({"queue_id": f"queue {queue.pk} has no completed items yet."})
    return add_records_from_traces(dataset=dataset, actor=actor, trace_ids=trace_ids, include_outputs=include_outputs)


def add_records(
    *,
    dataset: Dataset,
    actor: Actor,
    trace_ids=None,
    filter_text: str | None = None,
    queue_id=None,
    limit: int | None = None,
    include_outputs: bool = True,
) -> AddResult:
    """Add records from exactly one of: trace ids, a filter (newest `limit` matches), a review
    queue's completed items (first `limit`). The native API's one call."""
    given = [
        name
        for name, value in (("trace_ids", trace_ids), ("filter", filter_text), ("queue_id", queue_id))
        if value is not None
    ]
    if len(given) != 1:
        raise ValidationError({"non_field_errors": "Send exactly one of trace_ids, filter (with limit) or queue_id."})
    if trace_ids is not None:
        return add_records_from_traces(
            dataset=dataset, actor=actor, trace_ids=trace_ids, include_outputs=include_outputs
        )
    if filter_text is not None:
        return add_records_from_filter(
            dataset=dataset,
            actor=actor,
            filter_text=filter_text,
            limit=DEFAULT_FILTER_LIMIT if limit is None else limit,
            include_outputs=include_outputs,
        )
    return add_records_from_queue(
        dataset=dataset,
        actor=actor,
        queue_id=queue_id,
        limit=MAX_TRACES_PER_CALL if limit is None else limit,
        include_outputs=include_outputs,
    )


def _merge_source(raw) -> tuple[str, dict, str | None]:
    if raw is None:
        return SourceType.UNSPECIFIED, {}, None
    if not isinstance(raw, dict):
        raise ValidationError({"source": "must be an object with source_type and source_data."})
    source_type = str(raw.get("source_type") or "UNSPECIFIED").upper().removeprefix("SOURCE_TYPE_")
    if source_type not in SourceType.values:
        raise ValidationError({"source": f"source_type must be one of {', '.join(SourceType.values)}."})
    data = raw.get("source_data") or {}
    if not isinstance(data, dict):
        raise ValidationError({"source": "source_data must be an object."})
    trace_id = data.get("trace_id") if source_type == SourceType.TRACE else None
    return source_type, data, trace_id if isinstance(trace_id, str) and len(trace_id) <= 35 else None


@transaction.atomic
def merge_records(*, dataset: Dataset, actor: Actor, records) -> tuple[int, int]:
    """MLflow's merge_records: a record whose inputs equal a draft record's merges into it
    (expectations and tags updated key by key, outputs replaced when given, its source kept);
    the others are added. Returns (inserted, updated). Raises ValidationError naming the record."""
    actor.require(dataset.experiment_id, REVIEWER)
    if not isinstance(records, list):
        raise ValidationError({"records": "must be a list of records."})
    prepared = {}
    for index, raw in enumerate(records):
        if not isinstance(raw, dict) or not isinstance(raw.get("inputs"), dict):
            raise ValidationError({"records": f"record {index} needs an 'inputs' object."})
        for name in ("expectations", "tags"):
            if raw.get(name) is not None and not isinstance(raw[name], dict):
                raise ValidationError({"records": f"record {index}: '{name}' must be an object."})
        key = inputs_key(raw["inputs"])
        prepared.setdefault(key, []).append((raw, _merge_source(raw.get("source"))))
    _lock(dataset)
    existing = {
        record.inputs_key: record
        for record in DatasetRecord.objects.select_for_update().filter(dataset=dataset, inputs_key__in=list(prepared))
    }
    taken_traces = set(
        DatasetRecord.objects.filter(
            dataset=dataset,
            source_trace_id__in=[source[2] for items in prepared.values() for _, source in items if source[2]],
        ).values_list("source_trace_id", flat=True)
    )
    now = timezone.now()
    created, updated = [], {}
    for key, items in prepared.items():
        for raw, (source_type, source_data, trace_id) in items:
            record = existing.get(key)
            if record is None:
                if trace_id in taken_traces:
                    trace_id = None  # the trace's record has other inputs; keep the trace on that one
                record = DatasetRecord(
                    dataset=dataset,
                    inputs=raw["inputs"],
                    inputs_key=key,
                    expectations={},
                    tags={},
                    source_type=source_type,
                    source=source_data,
                    source_trace_id=trace_id,
                    created_at=now,
                    created_by=actor.label,
                )
                if trace_id:
                    taken_traces.add(trace_id)
                existing[key] = record
                created.append(record)
            elif record not in created:
                updated[record.pk] = record
            record.expectations = {**(record.expectations or {}), **(raw.get("expectations") or {})}
            record.tags = {**(record.tags or {}), **_clean_tags(raw.get("tags"), "records")}
            if raw.get("outputs") is not None:
                record.outputs = raw["outputs"]
            record.updated_at, record.updated_by = now, actor.label
    DatasetRecord.objects.bulk_create(created)
    DatasetRecord.objects.bulk_update(
        list(updated.values()), ["expectations", "tags", "outputs", "updated_at", "updated_by"]
    )
    _touch(dataset, actor, now)
    return len(created), len(updated)


@transaction.atomic
def update_record(*, record: DatasetRecord, actor: Actor, **changes) -> DatasetRecord:
    """Edit a draft record's inputs, expectations, outputs or tags (published copies keep
    theirs). An edited expectation no longer comes from its assessment, so its provenance
    entry is marked `edited_by`. Raises ValidationError naming the field."""
    dataset = record.dataset
    actor.require(dataset.experiment_id, REVIEWER)
    unknown = set(changes) - set(RECORD_FIELDS)
    if unknown:
        raise ValidationError({name: "cannot be changed." for name in sorted(unknown)})
    if "inputs" in changes:
        record.inputs = _clean_object(changes["inputs"], "inputs")
        record.inputs_key = inputs_key(record.inputs)
    if "expectations" in changes:
        expectations = _clean_object(changes["expectations"], "expectations")
        taken = (record.source or {}).get("expectations") or {}
        for name, entry in taken.items():
            if expectations.get(name, object()) != (record.expectations or {}).get(name):
                entry["edited_by"] = actor.label
        record.expectations = expectations
    if "outputs" in changes:
        record.outputs = changes["outputs"]
    if "tags" in changes:
        record.tags = _clean_tags(changes["tags"])
    now = timezone.now()
    record.updated_at, record.updated_by = now, actor.label
    record.save(
        update_fields=["inputs", "inputs_key", "expectations", "outputs", "tags", "source", "updated_at", "updated_by"]
    )
    _touch(dataset, actor, now)
    return record


@transaction.atomic
def delete_records(*, dataset: Dataset, actor: Actor, record_ids) -> int:
    """Remove draft records (published versions keep their copies); returns how many went."""
    actor.require(dataset.experiment_id, REVIEWER)
    if not isinstance(record_ids, (list, tuple)) or any(not isinstance(item, str) for item in record_ids):
        raise ValidationError({"dataset_record_ids": "must be a list of record ids."})
    deleted, _ = DatasetRecord.objects.filter(dataset=dataset, pk__in=list(record_ids)).delete()
    if deleted:
        _touch(dataset, actor, timezone.now())
    return deleted


@transaction.atomic
def publish_version(*, dataset: Dataset, actor: Actor, note: str = "") -> DatasetVersion:
    """Freeze the draft as the next numbered version: its records are copied and never change.
    Raises ValidationError for an empty draft. Two publishers get consecutive numbers (the
    dataset row is locked)."""
    actor.require(dataset.experiment_id, REVIEWER)
    if not isinstance(note, str) or len(note) > 500:
        raise ValidationError({"note": "must be text of at most 500 characters."})
    locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
    records = list(DatasetRecord.objects.filter(dataset=locked).order_by("created_at", "record_id"))
    if not records:
        raise ValidationError({"records": "The draft has no records: add some before publishing."})
    now = timezone.now()
    version = DatasetVersion.objects.create(
        dataset=locked,
        version=locked.current_version + 1,
        note=note,
        record_count=len(records),
        created_at=now,
        created_by=actor.label,
    )
    DatasetVersionRecord.objects.bulk_create(
        [
            DatasetVersionRecord(
                version=version,
                record_id=record.record_id,
                position=position,
                inputs=record.inputs,
                expectations=record.expectations,
                outputs=record.outputs,
                tags=record.tags,
                source_type=record.source_type,
                source=record.source,
                source_trace_id=record.source_trace_id,
            )
            for position, record in enumerate(records)
        ],
        batch_size=1000,
    )
    Dataset.objects.filter(pk=locked.pk).update(current_version=version.version, updated_at=now, updated_by=actor.label)
    dataset.current_version, dataset.updated_at, dataset.updated_by = version.version, now, actor.label
    return version


@transaction.atomic
def set_tags(*, dataset: Dataset, actor: Actor, tags: dict | None = None, remove=()) -> Dataset:
    """Merge `tags` into the dataset's tags and drop the keys in `remove` (MLflow's
    set_dataset_tags / delete_dataset_tag). Raises ValidationError for non-object tags."""
    actor.require(dataset.experiment_id, REVIEWER)
    locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
    merged = {**locked.tags, **_clean_tags(tags)}
    for key in remove:
        merged.pop(key, None)
    now = timezone.now()
    Dataset.objects.filter(pk=dataset.pk).update(tags=merged, updated_at=now, updated_by=actor.label)
    dataset.tags, dataset.updated_at, dataset.updated_by = merged, now, actor.label
    return dataset
