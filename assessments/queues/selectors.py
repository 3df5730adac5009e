"""Reads of review queues, shaped for their pages and endpoints."""

from __future__ import annotations

import functools

from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from traces.access import Actor, visible_experiments
from traces.models import Experiment, Membership, Trace

from .models import Queue, QueueItem, QueueWork

# The metadata key that marks an assessment as a queue's answer (services.METADATA_KEY).
METADATA_KEY = "queue_id"
ITEM_STATES = ("open", "complete", "removed", "all")
ITEMS_PER_PAGE = 100


def queue_for(actor: Actor, queue_id) -> Queue:
    """The queue (experiment loaded) if the actor sees its experiment; Http404 otherwise."""
    try:
        queue = Queue.objects.select_related("experiment").get(pk=int(queue_id))
    except (Queue.DoesNotExist, TypeError, ValueError):
        raise Http404(f"Queue {queue_id} not found.") from None
    if actor.role(queue.experiment_id) is None:
        raise Http404(f"Queue {queue_id} not found.")
    return queue


def queue_for_work(actor: Actor, queue_id) -> Queue:
    """The queue a person works (`next`, answers, declines, focus mode) if the actor sees its
    experiment; Http404 otherwise. The experiment is not loaded.

    One written-out query (the ORM's version cost 2 ms of CPU to build, this one 0.3 ms) that
    also reads the user's membership role in the experiment (kept on the actor: no role query)
    and `reviewer_listing` = (user id, whether the queue lists reviewers, whether it lists this
    user), which services.reviewer_of uses instead of asking: two queries fewer per call."""
    try:
        pk = int(queue_id)
    except (TypeError, ValueError):
        raise Http404(f"Queue {queue_id} not found.") from None
    user_id = actor.user.pk if actor.user is not None and actor.user.is_authenticated else None
    queue = next(iter(Queue.objects.raw(_queue_for_work_sql(), {"user": user_id, "queue": pk})), None)
    if queue is None:
        raise Http404(f"Queue {queue_id} not found.")
    if user_id is not None:
        actor.know_membership(queue.experiment_id, queue.member_role)
        queue.reviewer_listing = (user_id, bool(queue.lists_reviewers), bool(queue.lists_user))
    if actor.role(queue.experiment_id) is None:
        raise Http404(f"Queue {queue_id} not found.")
    return queue


@functools.cache
def _queue_for_work_sql() -> str:
    quote = connection.ops.quote_name
    queue, membership = Queue._meta, Membership._meta
    listed = Queue.reviewers.through._meta
    columns = ", ".join(f"q.{quote(field.column)}" for field in queue.concrete_fields)
    return (
        f"SELECT {columns}, "
        f"(SELECT m.{quote('role')} FROM {quote(membership.db_table)} m "
        f"WHERE m.{quote('user_id')} = %(user)s AND m.{quote('experiment_id')} = q.{quote('experiment_id')}) "
        "AS member_role, "
        f"EXISTS (SELECT 1 FROM {quote(listed.db_table)} r WHERE r.{quote('queue_id')} = q.{quote('id')}) "
        "AS lists_reviewers, "
        f"EXISTS (SELECT 1 FROM {quote(listed.db_table)} r WHERE r.{quote('queue_id')} = q.{quote('id')} "
        f"AND r.{quote('user_id')} = %(user)s) AS lists_user "
        f"FROM {quote(queue.db_table)} q WHERE q.{quote('id')} = %(queue)s"
    )


def _with_counts(queryset: QuerySet[Queue]) -> QuerySet[Queue]:
    live = Q(items__removed_at__isnull=True)
    return queryset.annotate(
        total=Count("items", filter=live), complete=Count("items", filter=live & Q(items__complete=True))
    )


def queues_of_experiment(experiment: Experiment) -> QuerySet[Queue]:
    """The experiment's queues, newest first, with `total` and `complete` item counts."""
    return _with_counts(Queue.objects.filter(experiment=experiment)).prefetch_related("reviewers")


def visible_queues(actor: Actor, *, include_archived: bool = False) -> list[Queue]:
    """Every queue the actor can see, with item counts and `percent` complete (one query)."""
    queryset = Queue.objects.filter(experiment__in=visible_experiments(actor)).select_related("experiment")
    if not include_archived:
        queryset = queryset.filter(archived_at__isnull=True)
    queues = list(_with_counts(queryset).order_by("experiment__name", "name", "id"))
    for queue in queues:
        queue.percent = round(100 * queue.complete / queue.total) if queue.total else 0
    return queues


def active_queues_of(experiment: Experiment) -> list[Queue]:
    """The experiment's active queues by name (the trace list's 'add to a queue' picker)."""
    return list(Queue.objects.filter(experiment=experiment, archived_at__isnull=True).order_by("name", "id"))


def progress(queue: Queue) -> dict:
    """{"total", "complete", "declined", "reviewers": {username: {"answered", "declined",
    "leased"}}} over the queue's live items (two queries)."""
    counts = QueueItem.objects.filter(queue=queue, removed_at__isnull=True).aggregate(
        total=Count("id"), complete=Count("id", filter=Q(complete=True))
    )
    now = timezone.now()
    rows = (
        QueueWork.objects.filter(item__queue=queue, item__removed_at__isnull=True)
        .values("reviewer__username")
        .annotate(
            answered=Count("id", filter=Q(state=QueueWork.State.ANSWERED)),
            declined=Count("id", filter=Q(state=QueueWork.State.DECLINED)),
            leased=Count("id", filter=Q(state=QueueWork.State.LEASED, expires_at__gt=now)),
        )
        .order_by("reviewer__username")
    )
    reviewers = {
        row["reviewer__username"]: {"answered": row["answered"], "declined": row["declined"], "leased": row["leased"]}
        for row in rows
    }
    return {
        "total": counts["total"],
        "complete": counts["complete"],
        "declined": sum(r["declined"] for r in reviewers.values()),
        "reviewers": reviewers,
    }


def items_page(queue: Queue, *, state: str = "open", page: int = 1) -> tuple[list[QueueItem], bool]:
    """One page of the queue's items in queue order, each with `trace` (previews only) and
    `answered_by` / `declined_by` / `leased_by` (usernames); and whether more follow. Two
    queries whatever the page holds."""
    queryset = QueueItem.objects.filter(queue=queue)
    if state == "open":
        queryset = queryset.filter(removed_at__isnull=True, complete=False)
    elif state == "complete":
        queryset = queryset.filter(removed_at__isnull=True, complete=True)
    elif state == "removed":
        queryset = queryset.filter(removed_at__isnull=False)
    start = (max(page, 1) - 1) * ITEMS_PER_PAGE
    items = list(
        queryset.select_related("trace")
        .only(
            "id",
            "queue_id",
            "added_at",
            "removed_at",
            "answer_count",
            "complete",
            "origin",
            "trace__trace_id",
            "trace__name",
            "trace__request_preview",
            "trace__request_time",
            "trace__experiment_id",
        )
        .order_by("id")[start : start + ITEMS_PER_PAGE + 1]
    )
    more = len(items) > ITEMS_PER_PAGE
    items = items[:ITEMS_PER_PAGE]
    now = timezone.now()
    by_item: dict[int, dict[str, list[str]]] = {
        item.pk: {"answered": [], "declined": [], "leased": []} for item in items
    }
    for item_id, state_, expires_at, username in QueueWork.objects.filter(item_id__in=list(by_item)).values_list(
        "item_id", "state", "expires_at", "reviewer__username"
    ):
        if state_ == QueueWork.State.LEASED and (expires_at is None or expires_at <= now):
            continue
        by_item[item_id][state_].append(username)
    for item in items:
        item.answered_by = sorted(by_item[item.pk]["answered"])
        item.declined_by = sorted(by_item[item.pk]["declined"])
        item.leased_by = sorted(by_item[item.pk]["leased"])
        item.state = "removed" if item.removed_at else ("complete" if item.complete else "open")
    return items, more


def unfinished_item_trace_ids(experiment) -> QuerySet:
    """Trace ids of the experiment that sit in a live, unfinished queue item: a values_list
    queryset to use as a subquery. A retention pin (assessments.retention.pins.PINS)."""
    return QueueItem.objects.filter(
        queue__experiment_id=experiment.pk, removed_at__isnull=True, complete=False
    ).values_list("trace_id", flat=True)


def completed_trace_ids(queue: Queue, limit: int) -> list[str]:
    """The traces of the queue's completed (live) items, the first `limit` in queue order."""
    items = QueueItem.objects.filter(queue=queue, removed_at__isnull=True, complete=True).order_by("pk")
    return list(items.values_list("trace_id", flat=True)[:limit])


def item_for_review(queue: Queue, user, trace_id: str) -> QueueItem | None:
    """The live item of `trace_id` with this reviewer's work on it (`mine`, or None)."""
    item = QueueItem.objects.filter(queue=queue, trace_id=trace_id, removed_at__isnull=True).first()
    if item is not None:
        item.mine = QueueWork.objects.filter(item=item, reviewer=user).first()
    return item


def previous_answered(queue: Queue, user, before_trace_id: str | None) -> str | None:
    """The trace of the reviewer's answer before the one on `before_trace_id` (their latest
    answer when None or not answered): what `u` goes back to."""
    answered = QueueWork.objects.filter(
        item__queue=queue, reviewer=user, state=QueueWork.State.ANSWERED, item__removed_at__isnull=True
    ).order_by("-created_at", "-id")
    if before_trace_id:
        current = answered.filter(item__trace_id=before_trace_id).first()
        if current is not None:
            answered = answered.filter(
                Q(created_at__lt=current.created_at) | Q(created_at=current.created_at, id__lt=current.pk)
            )
    return answered.values_list("item__trace_id", flat=True).first()


def held_lease(queue: Queue, user, now=None) -> QueueWork | None:
    """The reviewer's live lease on an open item of the queue (the lowest item first), if any,
    with its item loaded. One query when the reviewer holds no lease, two when they do.

    The leases are read from the reviewer's side only (the `queuework_lease` index: their live
    leases, about one per queue they work), then their items by primary key. Any join of the two
    lets the planner walk the queue's items instead (all 100,000 open ones when the reviewer
    holds nothing: 0.9 s), or the primary key up to the leased item."""
    leases = list(
        QueueWork.objects.filter(
            reviewer=user, state=QueueWork.State.LEASED, expires_at__gt=now or timezone.now()
        ).order_by("item_id")
    )
    if not leases:
        return None
    items = QueueItem.objects.filter(
        pk__in=[work.item_id for work in leases], queue=queue, complete=False, removed_at__isnull=True
    )
    held = {item.pk: item for item in items}
    for work in leases:
        if work.item_id in held:
            work.item = held[work.item_id]
            return work
    return None


def current_lease(queue: Queue, user) -> str | None:
    """The trace of the reviewer's live lease in the queue, if any (focus mode resumes it)."""
    held = held_lease(queue, user)
    return held.item.trace_id if held is not None else None


def other_open_queues(actor: Actor, queue: Queue) -> list[Queue]:
    """Active queues the actor sees, other than `queue`, that still have open items (the all-done
    state offers them)."""
    return [q for q in visible_queues(actor) if q.pk != queue.pk and q.complete < q.total]


def answered_count(queue: Queue, user) -> int:
    return QueueWork.objects.filter(
        item__queue=queue, reviewer=user, state=QueueWork.State.ANSWERED, item__removed_at__isnull=True
    ).count()


def hide_blind(actor: Actor | None, trace: Trace, assessments: list) -> list:
    """The assessments without other reviewers' answers from blind queues that the actor reviews
    and has not answered this trace in yet. An answer is recognised by the `queue_id` in its
    metadata; no query unless another author's queue answer is among the assessments."""
    if actor is None or actor.user is None or not actor.user.is_authenticated:
        return assessments
    queue_ids = {
        a.metadata.get(METADATA_KEY)
        for a in assessments
        if isinstance(a.metadata, dict) and a.metadata.get(METADATA_KEY) and not actor.is_author_of(a)
    }
    ids = [int(q) for q in queue_ids if isinstance(q, str) and q.isascii() and q.isdigit()]
    if not ids:
        return assessments
    answered = QueueWork.objects.filter(reviewer=actor.user, state=QueueWork.State.ANSWERED).values("item_id")
    blind = {
        str(queue_id)
        for queue_id in QueueItem.objects.filter(
            trace_id=trace.pk,
            queue_id__in=ids,
            queue__blind=True,
            queue__archived_at__isnull=True,
            removed_at__isnull=True,
        )
        .filter(Q(queue__reviewers__isnull=True) | Q(queue__reviewers=actor.user))
        .exclude(pk__in=answered)
        .values_list("queue_id", flat=True)
        .distinct()
    }
    if not blind:
        return assessments
    return [
        a
        for a in assessments
        if actor.is_author_of(a) or not isinstance(a.metadata, dict) or a.metadata.get(METADATA_KEY) not in blind
    ]
