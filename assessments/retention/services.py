"""The purge: an experiment's traces older than its `retention_days`, minus the pinned ones, deleted
in small batches through the one deletion service (assessments.trace_deletion), so each batch is
one short transaction and concurrent writes never wait long.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from traces import partitions
from traces.access import Actor
from traces.models import Experiment, Trace

from ..trace_deletion import delete_traces
from .models import PurgeRun
from .pins import pinned_trace_ids

# Traces per batch: one transaction deletes them with their spans, assessments and revisions and
# holds only their rows' locks while it runs (0.2-0.6 s on the shared bench machine, mostly fixed
# cost per batch: 100 a batch took about as long). Writes on other traces never wait on it; the
# purge of 100,000 traces under load is measured by bench/export.py (docs/PERFORMANCE.md).
BATCH_SIZE = 200
CHANNEL = "retention"


@dataclass
class PurgeResult:
    """What a purge did (or, dry, would do) to one experiment."""

    experiment: Experiment
    cutoff: datetime
    deleted: int = 0
    kept_pinned: int = 0
    batches: int = 0
    dry_run: bool = False
    # dry run: the first ids that would go (oldest first)
    sample: list[str] = field(default_factory=list)
    run: PurgeRun | None = None


def cutoff_for(experiment: Experiment, now: datetime) -> datetime:
    return now - timedelta(days=experiment.retention_days)


def _due(experiment: Experiment, cutoff: datetime) -> QuerySet[Trace]:
    # trace_exp_time (experiment, -request_time, trace_id) serves the range and the order.
    return Trace.objects.filter(experiment_id=experiment.pk, request_time__lt=cutoff)


def purge_experiment(
    *,
    experiment: Experiment,
    actor: Actor | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    pause: float = 0.0,
    sample_size: int = 20,
) -> PurgeResult:
    """Delete the experiment's traces that started before now - retention_days, oldest first, in
    batches of `batch_size` (each its own transaction through `delete_traces`, channel
    `retention`, re-checking the pins under the rows' locks), sleeping `pause` seconds between
    batches. Pinned traces (retention.pins) stay. Writes one PurgeRun unless `dry_run`, which
    only counts (and lists the first `sample_size` ids). Raises ValueError when the experiment
    keeps its traces forever (retention_days empty).
    """
    if experiment.retention_days is None:
        raise ValueError(f"Experiment {experiment.name!r} keeps its traces forever (no retention_days).")
    actor = actor or Actor.for_system("purge")
    started = timezone.now()
    now = now or started
    result = PurgeResult(experiment=experiment, cutoff=cutoff_for(experiment, now), dry_run=dry_run)
    due = _due(experiment, result.cutoff)
    pinned = pinned_trace_ids(experiment)
    result.kept_pinned = due.filter(pk__in=pinned).count()
    if dry_run:
        candidates = due.exclude(pk__in=pinned)
        result.deleted = candidates.count()
        result.sample = list(candidates.order_by("request_time", "trace_id").values_list("pk", flat=True)[:sample_size])
        return result
    after: tuple[datetime, str] | None = None
    while True:
        batch = due.exclude(pk__in=pinned)
        if after is not None:
            batch = batch.filter(Q(request_time__gt=after[0]) | Q(request_time=after[0], trace_id__gt=after[1]))
        rows = list(batch.order_by("request_time", "trace_id").values_list("pk", "request_time")[:batch_size])
        if not rows:
            break
        after = (rows[-1][1], rows[-1][0])
        deletion = delete_traces(
            experiment=experiment, actor=actor, channel=CHANNEL, trace_ids=[pk for pk, _ in rows], keep=pinned
        )
        result.batches += 1
        result.deleted += deletion.trace_count if deletion is not None else 0
        if pause:
            time.sleep(pause)
    result.run = PurgeRun.objects.create(
        experiment=experiment,
        started_at=started,
        finished_at=timezone.now(),
        retention_days=experiment.retention_days,
        cutoff=result.cutoff,
        deleted=result.deleted,
        kept_pinned=result.kept_pinned,
        batches=result.batches,
        actor_label=actor.label,
    )
    return result


def experiments_with_retention() -> QuerySet[Experiment]:
    return Experiment.objects.filter(retention_days__isnull=False).order_by("name")


@dataclass
class MonthDrop:
    """A month of spans dropped whole (or, dry, that would be): its partition and span count."""

    month: partitions.Month
    spans: int | None = None


@dataclass
class PurgeAllResult:
    months: list[MonthDrop]
    experiments: list[PurgeResult]


def month_is_due(month: partitions.Month, now: datetime) -> bool:
    """Whether every trace that started in `month` is due in its experiment and none is pinned:
    then the month's span partition can go whole. One indexed probe per experiment with traces
    in the month (trace_exp_time), plus one for its pins."""
    if month.end > now:
        return False
    in_month = Q(request_time__gte=month.start, request_time__lt=month.end)
    experiments = Experiment.objects.filter(Exists(Trace.objects.filter(in_month, experiment_id=OuterRef("pk")))).only(
        "pk", "retention_days", "retention_keep_human"
    )
    for experiment in experiments:
        if experiment.retention_days is None or month.end > cutoff_for(experiment, now):
            return False
        if pinned_trace_ids(experiment).filter(in_month).exists():
            return False
    return True


def drop_due_months(*, now: datetime, dry_run: bool = False) -> list[MonthDrop]:
    """Drop the span partitions of months whose every trace is due and unpinned (PostgreSQL;
    nothing elsewhere), oldest first. Their traces, feedback and history then go through the
    row-by-row purge, which finds no spans left to delete: the bulk of the rows goes in one
    DROP TABLE per month. Each month is re-checked under the span table's lock."""
    due = [month for month in partitions.months() if month_is_due(month, now)]
    if dry_run:
        return [MonthDrop(month) for month in due]
    dropped = []
    for month in due:
        spans = partitions.drop(month, still_droppable=lambda month: month_is_due(month, now))
        if spans is not None:
            dropped.append(MonthDrop(month, spans))
    return dropped


def purge_all(*, now: datetime | None = None, dry_run: bool = False, **options) -> PurgeAllResult:
    """The purge of everything: first the months of spans that can go whole (drop_due_months),
    then `purge_experiment` for every experiment with a retention, by name. Only a purge of
    every experiment drops months: a month holds every experiment's traces of that month."""
    now = now or timezone.now()
    months = drop_due_months(now=now, dry_run=dry_run)
    experiments = [
        purge_experiment(experiment=experiment, now=now, dry_run=dry_run, **options)
        for experiment in experiments_with_retention()
    ]
    return PurgeAllResult(months=months, experiments=experiments)
