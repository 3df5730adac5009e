"""Every write of review queues and every decision about it.

    create_queue / update_queue      owners and API keys (OWNER role) manage queues
    add_items / remove_item          by ids or by a filter of the one filter language
    next_item                        the oldest item this reviewer may take; takes a lease
    answer / decline                 a person's work on an item; answers are assessments
    delete_items_of_traces           called by assessments.trace_deletion (the one deletion)

Concurrency: every change of an item's work (lease, answer, decline, removal) holds the item's
row lock (SELECT … FOR UPDATE). `next` picks a candidate with FOR UPDATE SKIP LOCKED on
PostgreSQL and checks its free slots again with a fresh statement while holding that lock, so
answers plus other reviewers' live leases never exceed N. On SQLite every queue write first
takes the database's write lock (and a process lock), which serialises them.
"""

from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from assessments import services as assessment_services
from assessments.definitions.cache import rules_for
from assessments.models import Assessment, Revision
from traces.access import OWNER, REVIEWER, Actor
from traces.filters import FilterError, filter_traces, parse_filter
from traces.models import Experiment, Membership, Trace

from . import fastsql, rules
from .models import Queue, QueueItem, QueueWork
from .selectors import METADATA_KEY, held_lease

MAX_ADD = 100_000
DEFAULT_FILTER_LIMIT = 1000
# Rows per statement when adding many traces (well under SQLite's bound-parameter limit).
CHUNK = 500
FIELDS = (
    "name",
    "instructions",
    "questions",
    "reviewers",
    "answers_per_item",
    "blind",
    "lease_seconds",
    "rule_filter",
    "rule_sample_rate",
    "archived",
)

# The columns update_queue writes (every field a change may touch).
SAVED_FIELDS = [
    "name",
    "instructions",
    "questions",
    "answers_per_item",
    "blind",
    "lease_seconds",
    "rule_filter",
    "rule_sample_rate",
    "archived_at",
    "updated_at",
]

_sqlite_lock = threading.Lock()


class Conflict(assessment_services.Conflict):
    """The queue's state refuses the action (answered with 409)."""


# --- managing queues --------------------------------------------------------------------------------


def create_queue(*, experiment: Experiment, actor: Actor, **fields) -> Queue:
    """A new queue in `experiment` (OWNER role). `questions` (definition names, in order) is
    required; `reviewers` are usernames (empty: every reviewer). Raises ValidationError naming
    the field, PermissionDenied."""
    actor.require(experiment.pk, OWNER)
    unknown = set(fields) - set(FIELDS) - {"archived"}
    if unknown:
        raise ValidationError({sorted(unknown)[0]: "Unknown field."})
    if "questions" not in fields:
        raise ValidationError({"questions": "A queue asks at least one question (a definition name)."})
    now = timezone.now()
    queue = Queue(experiment=experiment, created_at=now, updated_at=now, created_by_label=actor.label[:250])
    reviewers = _apply(queue, fields)
    with transaction.atomic():
        queue.save(force_insert=True)
        if reviewers is not None:
            queue.reviewers.set(reviewers)
        rules.changed(experiment.pk)
    return queue


def update_queue(*, queue: Queue, actor: Actor, **changes) -> Queue:
    """Change the fields given (`archived: true/false` archives or reactivates). A changed
    `answers_per_item` re-judges which items are complete. Raises as create_queue."""
    actor.require(queue.experiment_id, OWNER)
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: "Unknown field."})
    with transaction.atomic():
        queue = Queue.objects.select_for_update().get(pk=queue.pk)
        old_n = queue.answers_per_item
        reviewers = _apply(queue, changes)
        queue.updated_at = timezone.now()
        queue.save(update_fields=SAVED_FIELDS)
        if reviewers is not None:
            queue.reviewers.set(reviewers)
        if queue.answers_per_item != old_n:
            QueueItem.objects.filter(queue=queue).update(complete=Q(answer_count__gte=queue.answers_per_item))
        rules.changed(queue.experiment_id)
    return queue


def _apply(queue: Queue, fields: dict) -> list | None:
    """Set the given fields on the unsaved queue after checking them; the reviewers to set (None:
    unchanged). Raises ValidationError naming the field."""
    if "questions" in fields:
        queue.questions = _clean_questions(queue.experiment_id, fields["questions"])
    for name in ("name", "instructions", "rule_filter"):
        if name in fields:
            value = fields[name]
            if not isinstance(value, str):
                raise ValidationError({name: "A string."})
            setattr(queue, name, value.strip() if name != "instructions" else value)
    for name in ("answers_per_item", "lease_seconds"):
        if name in fields:
            value = fields[name]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError({name: "An integer."})
            setattr(queue, name, value)
    if "rule_sample_rate" in fields:
        value = fields["rule_sample_rate"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError({"rule_sample_rate": "A number from 0 to 1."})
        queue.rule_sample_rate = float(value)
    if "blind" in fields:
        if not isinstance(fields["blind"], bool):
            raise ValidationError({"blind": "true or false."})
        queue.blind = fields["blind"]
    if "archived" in fields:
        if not isinstance(fields["archived"], bool):
            raise ValidationError({"archived": "true or false."})
        if fields["archived"] != queue.is_archived:
            queue.archived_at = timezone.now() if fields["archived"] else None
    if queue.rule_filter:
        try:
            parse_filter(queue.rule_filter)
        except FilterError as exc:
            raise ValidationError({"rule_filter": str(exc)}) from None
    queue.full_clean(exclude=["experiment", "questions"])
    if "reviewers" in fields:
        return _clean_reviewers(queue.experiment_id, fields["reviewers"])
    return None


def _clean_questions(experiment_id: int, questions) -> list[str]:
    if not isinstance(questions, list) or not questions or not all(isinstance(q, str) for q in questions):
        raise ValidationError({"questions": "A non-empty list of definition names."})
    if len(set(questions)) != len(questions):
        raise ValidationError({"questions": "Each definition is asked once."})
    defined = rules_for(experiment_id).rules
    missing = [name for name in questions if name not in defined]
    if missing:
        raise ValidationError(
            {"questions": f"No active definition named {', '.join(repr(m) for m in missing)} in this experiment."}
        )
    return list(questions)


def _clean_reviewers(experiment_id: int, usernames) -> list:
    if not isinstance(usernames, list) or not all(isinstance(u, str) for u in usernames):
        raise ValidationError({"reviewers": "A list of usernames (empty: every reviewer of the experiment)."})
    users = list(get_user_model().objects.filter(username__in=set(usernames), is_active=True))
    members = set(
        Membership.objects.filter(
            experiment_id=experiment_id, user__in=users, role__in=[Membership.Role.REVIEWER, Membership.Role.OWNER]
        ).values_list("user_id", flat=True)
    )
    allowed = {user.username for user in users if user.pk in members or user.is_staff}
    missing = sorted(set(usernames) - allowed)
    if missing:
        raise ValidationError({"reviewers": f"Not a reviewer of this experiment: {', '.join(missing)}."})
    return [user for user in users if user.username in allowed]


# --- items ------------------------------------------------------------------------------------------


def add_items(
    *,
    queue: Queue,
    actor: Actor,
    trace_ids: list[str] | None = None,
    filter: str | None = None,  # noqa: A002 (the API's field name)
    limit: int | None = None,
    restore: bool = False,
) -> dict[str, int]:
    """Add traces of the queue's experiment by ids or by a filter (its first `limit` matches,
    oldest first). Idempotent: returns {"added", "already_queued", "previously_removed"}; a
    removed item comes back only with `restore=True` (then it counts as added). Raises
    ValidationError (bad ids, filter or limit), PermissionDenied."""
    actor.require(queue.experiment_id, OWNER)
    if (trace_ids is None) == (filter is None):
        raise ValidationError("Send either `trace_ids` or `filter` (with an optional `limit`).")
    if trace_ids is not None:
        if not isinstance(trace_ids, list) or not all(isinstance(t, str) for t in trace_ids):
            raise ValidationError({"trace_ids": "A list of trace ids such as 'tr-…'."})
        if limit is not None:
            raise ValidationError({"limit": "`limit` applies to a filter only."})
        if len(trace_ids) > MAX_ADD:
            raise ValidationError({"trace_ids": f"{len(trace_ids)} trace ids; at most {MAX_ADD} per call."})
        ids = list(dict.fromkeys(trace_ids))
        known = set()
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            known.update(
                Trace.objects.filter(experiment_id=queue.experiment_id, pk__in=chunk).values_list("pk", flat=True)
            )
        unknown = [t for t in ids if t not in known]
        if unknown:
            shown = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
            raise ValidationError({"trace_ids": f"Not traces of this experiment: {shown}"})
        origin = QueueItem.Origin.IDS
    else:
        if not isinstance(filter, str):
            raise ValidationError({"filter": "A filter in the trace list's language."})
        if limit is None:
            limit = DEFAULT_FILTER_LIMIT
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ADD:
            raise ValidationError({"limit": f"An integer from 1 to {MAX_ADD}."})
        try:
            matching = filter_traces(Trace.objects.filter(experiment_id=queue.experiment_id), filter)
        except FilterError as exc:
            raise ValidationError({"filter": str(exc)}) from None
        ids = list(matching.order_by("request_time", "trace_id").values_list("pk", flat=True)[:limit])
        origin = QueueItem.Origin.FILTER
    counts = {"added": 0, "already_queued": 0, "previously_removed": 0}
    now = timezone.now()
    with transaction.atomic():
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            existing = dict(
                QueueItem.objects.filter(queue=queue, trace_id__in=chunk).values_list("trace_id", "removed_at")
            )
            removed = [t for t, removed_at in existing.items() if removed_at is not None]
            counts["already_queued"] += len(existing) - len(removed)
            if restore and removed:
                QueueItem.objects.filter(queue=queue, trace_id__in=removed).update(removed_at=None)
                counts["added"] += len(removed)
            else:
                counts["previously_removed"] += len(removed)
            new = [t for t in chunk if t not in existing]
            # ignore_conflicts: a concurrent add (or the rule) may have inserted the same trace
            QueueItem.objects.bulk_create(
                [QueueItem(queue=queue, trace_id=t, origin=origin, added_at=now) for t in new], ignore_conflicts=True
            )
            counts["added"] += len(new)
    return counts


def remove_item(*, queue: Queue, actor: Actor, trace_id: str) -> None:
    """Remove the trace from the queue (its answers stay as assessments; leases end). Removing
    a removed item does nothing. Raises Http404 (not an item), PermissionDenied."""
    actor.require(queue.experiment_id, OWNER)
    with _serial(queue), transaction.atomic():
        item = _locked_item(queue, trace_id, include_removed=True)
        if item.removed_at is not None:
            return
        item.removed_at = timezone.now()
        item.save(update_fields=["removed_at"])
        QueueWork.objects.filter(item=item, state=QueueWork.State.LEASED).delete()


def delete_items_of_traces(trace_ids: list[str]) -> int:
    """Delete the items (and their leases, answers and declines) of traces being deleted; called
    by assessments.trace_deletion inside its transaction. Returns the number of items."""
    QueueWork.objects.filter(item__trace_id__in=trace_ids).delete()
    return QueueItem.objects.filter(trace_id__in=trace_ids).delete()[0]


# --- working a queue --------------------------------------------------------------------------------


def reviewer_of(queue: Queue, actor: Actor):
    """The user working the queue; PermissionDenied for API keys, viewers and users outside
    the queue's reviewers."""
    if actor.user is None or not actor.user.is_authenticated:
        raise PermissionDenied("Working a queue is a person's job: sign in (API keys manage queues only).")
    actor.require(queue.experiment_id, REVIEWER)
    listing = getattr(queue, "reviewer_listing", None)  # read with the queue (selectors.queue_for)
    if listing is not None and listing[0] == actor.user.pk:
        listed, lists_user = listing[1], listing[2]
    else:
        listed = queue.reviewers.exists()
        lists_user = listed and queue.reviewers.filter(pk=actor.user.pk).exists()
    if listed and not lists_user:
        raise PermissionDenied("You are not one of this queue's reviewers.")
    return actor.user


def next_item(*, queue: Queue, actor: Actor) -> QueueWork | None:
    """Lease the oldest item the reviewer may take: not complete, not answered or declined by
    them, and with answers plus other reviewers' live leases fewer than N. An item the reviewer
    already holds a live lease on comes back first (the lease renewed). None when nothing is
    left. Raises PermissionDenied, Conflict (archived queue)."""
    user = reviewer_of(queue, actor)
    if queue.is_archived:
        raise Conflict("This queue is archived.")
    if connection.vendor == "postgresql":
        return _next_on_postgresql(queue, user)
    with _serial(queue), transaction.atomic():
        now = timezone.now()
        expires = now + timedelta(seconds=queue.lease_seconds)
        held = held_lease(queue, user, now)
        if held is not None:
            held.expires_at, held.updated_at = expires, now
            held.save(update_fields=["expires_at", "updated_at"])
            return held
        tried: list[int] = []
        while True:
            item_id = _candidate(queue, user, now, tried)
            if item_id is None:
                return None
            item = _with_free_slot(queue, item_id, user, now)
            if item is not None:
                break
            tried.append(item_id)
        work = QueueWork.objects.filter(item=item, reviewer=user).first()
        if work is None:
            work = QueueWork(item=item, reviewer=user, created_at=now)
        work.item = item
        work.state, work.expires_at, work.updated_at = QueueWork.State.LEASED, expires, now
        _store(work)
        return work


def _next_on_postgresql(queue: Queue, user) -> QueueWork | None:
    """next_item's decisions as two statements (fastsql): pick the held lease or a candidate
    (FOR UPDATE SKIP LOCKED), then take it under the lock with a fresh snapshot. The pick's
    snapshot may be older than its lock (a lease committed in between is not counted), so `take`
    checks the slot again and a refusal moves on to the next candidate."""
    with transaction.atomic():
        now = timezone.now()
        expires = now + timedelta(seconds=queue.lease_seconds)
        n = queue.answers_per_item
        tried: list[int] = []
        while True:
            picked = fastsql.pick(
                queue_id=queue.pk, user_id=user.pk, now=now, answers_per_item=n, tried=tried, lock=True
            )
            if picked is None:
                # SKIP LOCKED also skips an item another reviewer is answering right now, which
                # may still have a slot: before saying "nothing left", find such an item without
                # locking and wait for its lock. (Not FOR UPDATE without SKIP LOCKED: after the
                # wait PostgreSQL re-checks the item's new row against the statement's old
                # snapshot of the leases, counts the answering reviewer's lease and its answer
                # both, and finds nothing: the item kept a free slot nobody took.)
                picked = fastsql.pick(
                    queue_id=queue.pk, user_id=user.pk, now=now, answers_per_item=n, tried=tried, lock=False
                )
                if picked is not None:
                    fastsql.wait_for_lock(picked)
            if picked is None:
                return None
            work = fastsql.take(
                item_id=picked,
                user_id=user.pk,
                now=now,
                expires=expires,
                answers_per_item=n,
                commit_fast=_commits_alone(),
            )
            if work is not None:
                return work
            tried.append(picked)  # a race the snapshot did not see: the lock says no


def _commits_alone() -> bool:
    """Whether next_item's transaction is the whole transaction: then (PostgreSQL) it commits
    without waiting for its WAL flush. Other sessions see the lease at once; a server crash
    within a fraction of a second may lose it, which is an expired lease: the answer then checks
    for a free slot under the item's lock, so N is never exceeded. Answers and declines keep the
    default (durable) commit, and so do a caller's own writes around next_item."""
    return len(connection.atomic_blocks) == 1


def _live_leases(now, exclude_user=None) -> Q:
    condition = Q(work__state=QueueWork.State.LEASED, work__expires_at__gt=now)
    if exclude_user is not None:
        condition &= ~Q(work__reviewer=exclude_user)
    return condition


def _candidate(queue: Queue, user, now, tried: list[int]) -> int | None:
    """The oldest open item that looks free for the reviewer (SQLite, where queue writes are
    serialised; fastsql.pick is PostgreSQL's). _with_free_slot checks it again."""
    # A scalar subquery, looked up per candidate by the (item, reviewer) key; as NOT EXISTS the
    # planner may join every work row of the reviewer (their whole history) instead.
    mine = (
        QueueWork.objects.filter(item=OuterRef("pk"), reviewer=user)
        .filter(~Q(state=QueueWork.State.LEASED) | Q(expires_at__gt=now))
        .values("pk")[:1]
    )
    leases = (
        QueueWork.objects.filter(item=OuterRef("pk"), state=QueueWork.State.LEASED, expires_at__gt=now)
        .order_by()
        .values("item")
        .annotate(n=Count("*"))
        .values("n")
    )
    queryset = (
        QueueItem.objects.filter(queue=queue, complete=False, removed_at__isnull=True)
        .exclude(pk__in=tried)
        .alias(mine=Subquery(mine))
        .filter(mine__isnull=True)
        .alias(taken=F("answer_count") + Coalesce(Subquery(leases), 0))
        .filter(taken__lt=queue.answers_per_item)
        # oldest first: only the `queueitem_open` index gives this order, so the planner never
        # walks the primary key through the completed items instead
        .order_by("added_at", "id")
    )
    return queryset.values_list("id", flat=True).first()


def _with_free_slot(queue: Queue, item_id: int, user, now) -> QueueItem | None:
    """The item if it has a free slot for the reviewer, checked under the item's lock (a fresh
    statement sees every committed change); None otherwise."""
    item = (
        QueueItem.objects.filter(pk=item_id)
        .annotate(
            others=Count("work", filter=_live_leases(now, exclude_user=user)),
            done=Count("work", filter=Q(work__reviewer=user) & ~Q(work__state=QueueWork.State.LEASED)),
        )
        .first()
    )
    if item is None or item.complete or item.removed_at is not None or item.done:
        return None
    return item if item.answer_count + item.others < queue.answers_per_item else None


def answer(
    *, queue: Queue, actor: Actor, trace_id: str, answers: dict, rationale: dict | None = None
) -> tuple[QueueWork, bool]:
    """Answer every question of the queue on one item: one assessment per question through
    `assessments.services.create` (source HUMAN with the reviewer's username, channel `queue`,
    `{"queue_id": …}` in its metadata; the definitions check each value). Answering again
    updates those assessments (with revisions) instead of adding any. The item is complete when
    N different reviewers have answered. Returns (work, created). Raises ValidationError naming
    the question, PermissionDenied, Http404 (not an item), Conflict (declined, or no slot left)."""
    user = reviewer_of(queue, actor)
    values, reasons = _clean_answers(queue, answers, rationale)
    with _serial(queue), transaction.atomic():
        now = timezone.now()
        item = _locked_item(queue, trace_id)
        work = _work_on(item, user)
        if work is not None and work.state == QueueWork.State.ANSWERED:
            work.assessment_ids = _write(queue, item, actor, values, reasons, work.assessment_ids)
            work.updated_at = now
            work.save(update_fields=["assessment_ids", "updated_at"])
            return work, False
        if work is not None and work.state == QueueWork.State.DECLINED:
            raise Conflict("You declined this item; it is not yours to answer any more.")
        leased = work is not None and work.expires_at is not None and work.expires_at > now
        if not leased and _with_free_slot(queue, item.pk, user, now) is None:
            raise Conflict(
                f"This item already has its {queue.answers_per_item} answer(s) or other reviewers hold its slots; "
                "ask for the next item."
            )
        ids = _write(queue, item, actor, values, reasons, {})
        if work is None:
            work = QueueWork(item=item, reviewer=user, created_at=now)
        work.state, work.expires_at, work.reason = QueueWork.State.ANSWERED, None, ""
        work.assessment_ids, work.updated_at = ids, now
        _store(work)
        item.answer_count += 1
        item.complete = item.answer_count >= queue.answers_per_item
        _save_columns(item, ["answer_count", "complete"])
    return work, True


def _clean_answers(queue: Queue, answers, rationale) -> tuple[dict, dict]:
    if not isinstance(answers, dict):
        raise ValidationError({"answers": "An object: definition name → value."})
    rationale = rationale or {}
    if not isinstance(rationale, dict) or not all(isinstance(v, str) for v in rationale.values()):
        raise ValidationError({"rationale": "An object: definition name → text."})
    unknown = sorted((set(answers) | set(rationale)) - set(queue.questions))
    if unknown:
        raise ValidationError({"answers": f"Not a question of this queue: {', '.join(unknown)}."})
    missing = [name for name in queue.questions if answers.get(name) is None]
    if missing:
        raise ValidationError({"answers": f"Answer every question; missing: {', '.join(missing)}."})
    return dict(answers), dict(rationale)


def _write(queue: Queue, item: QueueItem, actor: Actor, values: dict, reasons: dict, ids: dict) -> dict:
    """Create (or update, when `ids` names it) one assessment per question; returns the ids."""
    defined = rules_for(queue.experiment_id).rules
    stored = (
        {a.name: a for a in Assessment.objects.filter(pk__in=list(ids.values()), trace_id=item.trace_id)} if ids else {}
    )
    result = {}
    for name in queue.questions:
        existing = stored.get(name)
        if existing is not None and existing.pk == ids.get(name):
            updated = assessment_services.update(
                assessment=existing,
                actor=actor,
                channel=Revision.Channel.QUEUE,
                value=values[name],
                rationale=reasons.get(name, ""),
            )
            result[name] = updated.pk
            continue
        rule = defined.get(name)
        created = assessment_services.create(
            kind=rule.kind if rule is not None else Assessment.Kind.FEEDBACK,
            trace=item.trace,
            name=name,
            value=values[name],
            rationale=reasons.get(name, ""),
            source_type=Assessment.SourceType.HUMAN,
            source_id=actor.user.get_username(),
            metadata={METADATA_KEY: str(queue.pk)},
            actor=actor,
            channel=Revision.Channel.QUEUE,
        )
        result[name] = created.assessment.pk
    return result


def decline(*, queue: Queue, actor: Actor, trace_id: str, reason: str = "") -> QueueWork:
    """Decline an item (with an optional reason): recorded, the item's slot goes back to the
    others, and it is never offered to this reviewer again. Declining twice keeps the first.
    Raises Conflict (already answered), Http404, PermissionDenied, ValidationError (reason)."""
    user = reviewer_of(queue, actor)
    if not isinstance(reason, str) or len(reason) > 2000:
        raise ValidationError({"reason": "Text of at most 2000 characters."})
    with _serial(queue), transaction.atomic():
        now = timezone.now()
        item = _locked_item(queue, trace_id)
        work = _work_on(item, user)
        if work is not None and work.state == QueueWork.State.ANSWERED:
            raise Conflict("You answered this item; change your answer instead of declining.")
        if work is not None and work.state == QueueWork.State.DECLINED:
            return work
        if work is None:
            work = QueueWork(item=item, reviewer=user, created_at=now)
        work.state, work.expires_at, work.reason, work.updated_at = QueueWork.State.DECLINED, None, reason, now
        _store(work)
    return work


def _work_on(item: QueueItem, user) -> QueueWork | None:
    """The reviewer's work row on the (locked) item, with the item attached (no query for it when
    the work is shown). Written out, as _locked_item."""
    work = next(iter(QueueWork.objects.raw(_work_on_sql(), {"item": item.pk, "user": user.pk})), None)
    if work is not None:
        work.item = item
    return work


@functools.cache
def _work_on_sql() -> str:
    quote = connection.ops.quote_name
    work = QueueWork._meta
    columns = ", ".join(quote(field.column) for field in work.concrete_fields)
    return (
        f"SELECT {columns} FROM {quote(work.db_table)} "
        f"WHERE {quote(work.get_field('item').column)} = %(item)s "
        f"AND {quote(work.get_field('reviewer').column)} = %(user)s"
    )


def _store(work: QueueWork) -> None:
    """Insert a new work row, or save the columns a lease, answer or decline changes."""
    if work.pk is None:
        work.save(force_insert=True)
    else:
        _save_columns(work, ["state", "expires_at", "reason", "assessment_ids", "updated_at"])


def _save_columns(row, names: list[str]) -> None:
    """save(update_fields=names), written out: one UPDATE by primary key with the values Django
    would send (no signals: nothing listens to queue rows). The ORM built it in 0.5–0.7 ms of CPU,
    two of them a tenth of an answer."""
    meta = type(row)._meta
    fields = [meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    values = [field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s", [*values, row.pk]
        )


def _locked_item(queue: Queue, trace_id: str, *, include_removed: bool = False) -> QueueItem:
    """The item with `item.trace` holding its trace's id and experiment (the rest deferred), both
    rows locked: a trace deletion, which locks the trace first, then either waits for this write
    or has removed the item already (never a deadlock between the two). Written out: the ORM's
    version of this one statement cost about 2 ms of CPU to build."""
    params = {"queue": queue.pk, "trace": trace_id}
    item = next(iter(QueueItem.objects.raw(_locked_item_sql(include_removed), params)), None)
    if item is None:
        raise Http404(f"Trace {trace_id} is not an item of this queue.")
    item.trace = Trace.from_db(
        connection.alias, ["trace_id", "experiment_id"], [item.trace_id, item.trace_experiment_id]
    )
    return item


@functools.cache
def _locked_item_sql(include_removed: bool) -> str:
    quote = connection.ops.quote_name
    item, trace = QueueItem._meta, Trace._meta
    columns = ", ".join(f"i.{quote(field.column)}" for field in item.concrete_fields)
    sql = (
        f"SELECT {columns}, t.{quote(trace.get_field('experiment').column)} AS trace_experiment_id "
        f"FROM {quote(item.db_table)} i JOIN {quote(trace.db_table)} t "
        f"ON t.{quote(trace.pk.column)} = i.{quote(item.get_field('trace').column)} "
        f"WHERE i.{quote(item.get_field('queue').column)} = %(queue)s "
        f"AND i.{quote(item.get_field('trace').column)} = %(trace)s"
    )
    if not include_removed:
        sql += f" AND i.{quote('removed_at')} IS NULL"
    if connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF i, t"
    return sql


@contextmanager
def _serial(queue: Queue | None = None):
    """SQLite: one queue write at a time (the process lock for threads, then the database's
    write lock taken at once so another process waits instead of racing). PostgreSQL: row locks."""
    if connection.vendor != "sqlite":
        yield
        return
    with _sqlite_lock, transaction.atomic():
        if queue is not None:
            Queue.objects.filter(pk=queue.pk).update(updated_at=F("updated_at"))
        yield
