"""Queue rules: a queue's filter (and sample rate) adds traces as they arrive and as feedback
makes them match. Called from traces.services.trace_stored_hooks and
assessments.services.hooks (registered by QueuesConfig.ready).

Every write asks `active_queues(experiment_id)`, kept per worker process: a dict lookup and a
clock read while fresh (FEEDBACKHUB_QUEUE_RULES_RECHECK_MS), then one small query for the
experiment's active queues. A queue change through this process drops the entry at once (and
again on commit). An experiment without queues costs no query between rechecks.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from traces.access import Actor
from traces.filters import FilterError, filter_traces
from traces.models import Trace

from .models import Queue, QueueItem


@dataclass(frozen=True)
class ActiveQueue:
    """What the write paths and the trace page need to know about an active queue."""

    queue_id: int
    blind: bool
    questions: tuple[str, ...]
    rule_filter: str
    rule_sample_rate: float

    @property
    def has_rule(self) -> bool:
        return bool(self.rule_filter.strip()) and self.rule_sample_rate > 0


_entries: dict[int, tuple[float, tuple[ActiveQueue, ...]]] = {}


def forget(experiment_id: int | None = None) -> None:
    """Drop this process's cached queues (of one experiment, or all)."""
    if experiment_id is None:
        _entries.clear()
    else:
        _entries.pop(experiment_id, None)


def changed(experiment_id: int) -> None:
    """Called by the queue services inside their transaction."""
    forget(experiment_id)
    transaction.on_commit(lambda: forget(experiment_id))


def active_queues(experiment_id: int) -> tuple[ActiveQueue, ...]:
    """The experiment's active queues (see the module docstring for freshness)."""
    now = time.monotonic()
    entry = _entries.get(experiment_id)
    if entry is not None and (now - entry[0]) * 1000 < settings.FEEDBACKHUB_QUEUE_RULES_RECHECK_MS:
        return entry[1]
    rows = Queue.objects.filter(experiment_id=experiment_id, archived_at__isnull=True).values_list(
        "pk", "blind", "questions", "rule_filter", "rule_sample_rate"
    )
    queues = tuple(ActiveQueue(pk, blind, tuple(questions), rule, rate) for pk, blind, questions, rule, rate in rows)
    _entries[experiment_id] = (now, queues)
    return queues


def sampled(trace_id: str, queue_id: int, rate: float) -> bool:
    """Deterministic by trace id (and queue): the same trace is always in or out of the sample."""
    if rate >= 1:
        return True
    digest = hashlib.sha256(f"{queue_id}:{trace_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def apply_rules(experiment_id: int, trace_ids: list[str]) -> None:
    """Add the given traces to every active queue of the experiment whose rule they match (and
    whose sample takes them). A trace already in the queue, or removed from it, is left as is."""
    for queue in active_queues(experiment_id):
        if not queue.has_rule:
            continue
        candidates = [t for t in trace_ids if sampled(t, queue.queue_id, queue.rule_sample_rate)]
        if not candidates:
            continue
        try:
            matching = filter_traces(
                Trace.objects.filter(experiment_id=experiment_id, pk__in=candidates), queue.rule_filter
            ).values_list("pk", flat=True)
            matching = list(matching)
        except FilterError:
            continue  # checked when the rule was saved; a definition change may break it later
        if matching:
            now = timezone.now()
            QueueItem.objects.bulk_create(
                [
                    QueueItem(queue_id=queue.queue_id, trace_id=t, origin=QueueItem.Origin.RULE, added_at=now)
                    for t in matching
                ],
                ignore_conflicts=True,
            )


def _has_rule(experiment_id: int) -> bool:
    return any(queue.has_rule for queue in active_queues(experiment_id))


def on_trace_stored(trace: Trace, actor: Actor, channel: str) -> None:
    """traces.services.trace_stored_hooks entry (inside the ingest transaction): the rule is
    checked after the commit, when the trace and its spans are all stored."""
    experiment_id, trace_id = trace.experiment_id, trace.pk
    if _has_rule(experiment_id):
        transaction.on_commit(lambda: apply_rules(experiment_id, [trace_id]))


def on_assessments_written(experiment_id: int, trace_ids: list[str]) -> None:
    """assessments.services.hooks entry (after the commit)."""
    if _has_rule(experiment_id):
        apply_rules(experiment_id, trace_ids)
