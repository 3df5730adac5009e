"""Reads of evaluation datasets: lists, a dataset with its draft and versions, a version's
records, the difference between two versions, the traces pinned by records, and MLflow's
dataset search (the one filter language with the dataset's fields)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from django.db.models import Count, F, Q, QuerySet, lookups
from django.http import Http404

from traces.access import Actor, visible_experiments
from traces.filters import And, Field, FilterError, ILike, JSONKeyText, Like, Not, Or, parse_filter
from traces.filters.language import Token
from traces.models import Trace

from .models import Dataset, DatasetRecord, DatasetVersion, DatasetVersionRecord

DIFF_FIELDS = ("inputs", "expectations", "outputs", "tags")
DRAFT = "draft"


def datasets_of(experiment_id: int) -> QuerySet[Dataset]:
    """The experiment's datasets by name, with their draft's record count."""
    return Dataset.objects.filter(experiment_id=experiment_id).annotate(record_count=Count("records")).order_by("name")


def dataset_for(actor: Actor, dataset_id: str) -> Dataset:
    """A dataset the actor may see (experiment loaded); Http404 otherwise."""
    dataset = Dataset.objects.select_related("experiment").filter(pk=str(dataset_id)[:40]).first()
    if dataset is None or actor.role(dataset.experiment_id) is None:
        raise Http404(f"Dataset {dataset_id} not found.")
    return dataset


def record_for(dataset: Dataset, record_id: str) -> DatasetRecord:
    record = DatasetRecord.objects.filter(dataset=dataset, pk=str(record_id)[:40]).first()
    if record is None:
        raise Http404(f"Record {record_id} not found in dataset {dataset.pk}.")
    record.dataset = dataset
    return record


def draft_records(dataset: Dataset) -> QuerySet[DatasetRecord]:
    return DatasetRecord.objects.filter(dataset=dataset).order_by("created_at", "record_id")


def versions_of(dataset: Dataset) -> QuerySet[DatasetVersion]:
    return DatasetVersion.objects.filter(dataset=dataset).order_by("-version")


def version_for(dataset: Dataset, number) -> DatasetVersion:
    try:
        number = int(number)
    except (TypeError, ValueError):
        raise Http404(f"Version {number!r} not found.") from None
    version = DatasetVersion.objects.filter(dataset=dataset, version=number).first()
    if version is None:
        raise Http404(f"Dataset {dataset.pk} has no version {number}.")
    return version


def version_records(version: DatasetVersion) -> QuerySet[DatasetVersionRecord]:
    """A published version's records in their order (iterate with .iterator() for exports)."""
    return DatasetVersionRecord.objects.filter(version=version).order_by("position")


def record_line(record) -> dict:
    """One exported record: inputs, expectations, outputs, tags and source (provenance)."""
    source = {"type": record.source_type, **(record.source or {})}
    if record.source_trace_id:
        source["trace_id"] = record.source_trace_id
    return {
        "record_id": record.record_id,
        "inputs": record.inputs,
        "expectations": record.expectations or {},
        "outputs": record.outputs,
        "tags": record.tags or {},
        "source": source,
    }


def pinned_trace_ids(experiment) -> QuerySet:
    """Trace ids of the experiment that a dataset record points to (draft or published): a
    `values_list` queryset, usable as a subquery. A retention pin (assessments.retention.pins.PINS)."""
    experiment_id = experiment.pk
    drafts = DatasetRecord.objects.filter(dataset__experiment_id=experiment_id, source_trace_id__isnull=False)
    published = DatasetVersionRecord.objects.filter(
        version__dataset__experiment_id=experiment_id, source_trace_id__isnull=False
    )
    return (
        Trace.objects.filter(experiment_id=experiment_id)
        .filter(Q(pk__in=drafts.values("source_trace_id")) | Q(pk__in=published.values("source_trace_id")))
        .values_list("trace_id", flat=True)
    )


# --- diff ---------------------------------------------------------------------------------


@dataclass
class Change:
    record_id: str
    before: dict | None
    after: dict | None
    fields: list[str] = field(default_factory=list)

    @property
    def before_changed(self) -> dict | None:
        """Only the fields that differ (all of them for an added or removed record)."""
        return {name: self.before[name] for name in self.fields} if self.fields and self.before else self.before

    @property
    def after_changed(self) -> dict | None:
        return {name: self.after[name] for name in self.fields} if self.fields and self.after else self.after


@dataclass
class Diff:
    base: str
    other: str
    added: list[Change]
    removed: list[Change]
    changed: list[Change]
    unchanged: int

    def as_json(self) -> dict:
        def item(change: Change) -> dict:
            return {
                "record_id": change.record_id,
                "before": change.before,
                "after": change.after,
                "fields": change.fields,
            }

        return {
            "from": self.base,
            "to": self.other,
            "added": [item(c) for c in self.added],
            "removed": [item(c) for c in self.removed],
            "changed": [item(c) for c in self.changed],
            "unchanged": self.unchanged,
        }


def _side(dataset: Dataset, which) -> tuple[str, dict[str, dict]]:
    if str(which) == DRAFT:
        return DRAFT, {r.record_id: record_line(r) for r in draft_records(dataset)}
    version = version_for(dataset, which)
    return f"v{version.version}", {r.record_id: record_line(r) for r in version_records(version)}


def diff(dataset: Dataset, base, other) -> Diff:
    """What changed from `base` to `other` (version numbers or "draft"), keyed by record id:
    added, removed and changed records (with the fields that differ). Two queries."""
    base_label, before = _side(dataset, base)
    other_label, after = _side(dataset, other)
    added = [Change(rid, None, line) for rid, line in after.items() if rid not in before]
    removed = [Change(rid, line, None) for rid, line in before.items() if rid not in after]
    changed, unchanged = [], 0
    for rid, old in before.items():
        new = after.get(rid)
        if new is None:
            continue
        fields = [name for name in (*DIFF_FIELDS, "source") if old[name] != new[name]]
        if fields:
            changed.append(Change(rid, old, new, fields))
        else:
            unchanged += 1
    return Diff(base_label, other_label, added, removed, changed, unchanged)


# --- MLflow's dataset search ------------------------------------------------------------

_TEXT_COLUMNS = {
    "name": "name",
    "dataset_id": "dataset_id",
    "created_by": "created_by",
    "last_updated_by": "updated_by",
}
_TIME_COLUMNS = {"created_time": "created_at", "last_update_time": "updated_at"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _resolve(token: Token) -> Field:
    segments = token.value
    if len(segments) >= 2 and segments[0].lower() in ("tags", "tag"):
        return Field("tags", ".".join(segments[1:]), token.position, kind="text")
    key = ".".join(segments).lower()
    if key in _TEXT_COLUMNS:
        return Field("dataset", _TEXT_COLUMNS[key], token.position, kind="text")
    if key in _TIME_COLUMNS:
        return Field("dataset", _TIME_COLUMNS[key], token.position, kind="epoch_ms")
    raise FilterError(
        f"Unknown dataset field {token.text!r}; use name, created_time, last_update_time, created_by or tags.<key>",
        token.position,
        token.text,
    )


_LOOKUPS = {
    "=": lookups.Exact,
    "<": lookups.LessThan,
    "<=": lookups.LessThanOrEqual,
    ">": lookups.GreaterThan,
    ">=": lookups.GreaterThanOrEqual,
    "LIKE": Like,
    "ILIKE": ILike,
    "IN": lookups.In,
}


def _compile(node) -> Q:
    """The dataset filter's AST as a Q (a compiler for other fields, not a second parser)."""
    if isinstance(node, And):
        q = Q()
        for child in node.children:
            q &= _compile(child)
        return q
    if isinstance(node, Or):
        q = Q(pk__in=[])
        for child in node.children:
            q |= _compile(child)
        return q
    if isinstance(node, Not):
        return ~_compile(node.child)
    fld, operator = node.field, node.operator
    lhs = JSONKeyText("tags", fld.key) if fld.entity == "tags" else F(fld.key)
    present = Q(tags__has_key=fld.key) if fld.entity == "tags" else ~Q(**{fld.key: ""})
    if operator in ("IS NULL", "IS NOT NULL"):
        return ~present if operator == "IS NULL" else present
    positive = "=" if operator == "!=" else operator.removeprefix("NOT ")
    values = [
        _EPOCH + timedelta(milliseconds=literal.value) if fld.kind == "epoch_ms" else literal.value
        for literal in (node.value if isinstance(node.value, tuple) else (node.value,))
    ]
    q = Q(_LOOKUPS[positive](lhs, values if positive == "IN" else values[0]))
    return present & ~q if positive != operator else q


def search_datasets(actor: Actor, *, experiment_ids=None, filter_text: str | None = None) -> QuerySet[Dataset]:
    """Datasets the actor may see, in the experiments asked, matching an MLflow dataset filter
    (`name = 'x'`, `name LIKE 'gol%'`, `tags.team = 'qa'`, `created_time >= <epoch ms>`).
    Raises FilterError for a bad filter."""
    queryset = Dataset.objects.filter(experiment__in=visible_experiments(actor))
    if experiment_ids:
        ids = []
        for raw in experiment_ids:
            try:
                ids.append(int(raw))
            except (TypeError, ValueError):
                raise FilterError(f"{raw!r} is not an experiment id", 0, str(raw)) from None
        queryset = queryset.filter(experiment_id__in=ids)
    if filter_text and filter_text.strip():
        queryset = queryset.filter(_compile(parse_filter(filter_text, resolve=_resolve)))
    return queryset
