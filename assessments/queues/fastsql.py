"""`next` on PostgreSQL as two written-out statements (services.next_item decides when and what
they mean; this module only holds and runs them).

    pick  the reviewer's held lease on an open item of the queue, else the oldest item that looks
          free for them, locked with FOR UPDATE SKIP LOCKED (or, `lock=False`, not locked: the
          item to wait for when everything free is locked by others)
    take  under that lock, with a fresh snapshot: renew the held lease, or check the free slot
          again and insert (or revive an expired) lease, returning the work row and its item

Written out because building the ORM's version of these statements cost more CPU than
PostgreSQL spent running them (11–13 ms of worker CPU per `next`, half of it in the ORM).
Both are planned the same way whatever the table statistics say (this server runs without
autovacuum): the reviewer's leases from the `queuework_lease` index and their items by primary
key in a scalar subquery (a join lets the planner walk the queue's 100,000 items instead), the
candidate along `queueitem_open` in queue order with per-item lookups by the (item, reviewer) key.
"""

from __future__ import annotations

import functools
from datetime import datetime

from django.db import connection

from .models import QueueItem, QueueWork

LEASED = QueueWork.State.LEASED.value


def pick(
    *, queue_id: int, user_id: int, now: datetime, answers_per_item: int, tried: list[int], lock: bool
) -> int | None:
    """The id of the item `next` should lease, or None: the reviewer's held lease (nothing locked),
    else the candidate, locked unless `lock` is false. Items in `tried` are skipped."""
    params = {"queue": queue_id, "user": user_id, "now": now, "n": answers_per_item, "tried": tried}
    with connection.cursor() as cursor:
        cursor.execute(_pick_sql(lock), params)
        row = cursor.fetchone()
    return row[0] if row is not None else None


def wait_for_lock(item_id: int) -> None:
    """Lock the item, waiting for whoever holds it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {QueueItem._meta.db_table} WHERE id = %s FOR UPDATE", [item_id])


def take(
    *, item_id: int, user_id: int, now: datetime, expires: datetime, answers_per_item: int, commit_fast: bool
) -> QueueWork | None:
    """Lease the item (its lock held, or the reviewer's live lease on it renewed): the work row with
    its item loaded, or None when the fresh snapshot says the item has no slot for the reviewer
    (complete, removed, answered or declined by them, or answers + others' live leases ≥ N).
    `commit_fast`: the transaction commits without waiting for its WAL flush."""
    params = {"item": item_id, "user": user_id, "now": now, "expires": expires, "n": answers_per_item}
    with connection.cursor() as cursor:
        cursor.execute(_take_sql(commit_fast), params)
        row = cursor.fetchone()
    if row is None:
        return None
    work_fields, item_fields = _columns(QueueWork), _columns(QueueItem)
    work_values = list(row[: len(work_fields)])
    assessment_ids = QueueWork._meta.get_field("assessment_ids")
    position = work_fields.index(assessment_ids.attname)
    work_values[position] = assessment_ids.from_db_value(work_values[position], None, connection)
    work = QueueWork.from_db(connection.alias, work_fields, work_values)
    work.item = QueueItem.from_db(
        connection.alias, item_fields, row[len(work_fields) : len(work_fields) + len(item_fields)]
    )
    return work


def _columns(model) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


def _select(model, alias: str) -> str:
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(field.column)}" for field in model._meta.concrete_fields)


# The conditions, shared by both statements (w: the work table, i: the item):
#   live lease    state = 'leased' AND expires_at > now
#   "mine"        the reviewer's row on the item that is not an expired lease (a live lease, an
#                 answer or a decline): such an item is not a candidate


@functools.cache
def _pick_sql(lock: bool) -> str:
    item, work = QueueItem._meta.db_table, QueueWork._meta.db_table
    # The held lease first (the one that expires first); the candidate's scan never runs when
    # there is one (a one-time filter on the CTE). A scalar subquery per lease reads its item by
    # primary key: any join lets the planner drive from the queue's items.
    held = (
        f"SELECT w.item_id AS id FROM {work} w "
        f"WHERE w.reviewer_id = %(user)s AND w.state = '{LEASED}' AND w.expires_at > %(now)s "
        "AND w.item_id <> ALL(%(tried)s) "
        f"AND (SELECT i.queue_id FROM {item} i WHERE i.id = w.item_id AND NOT i.complete "
        "AND i.removed_at IS NULL) = %(queue)s "
        "ORDER BY w.expires_at, w.item_id LIMIT 1"
    )
    # Oldest first along `queueitem_open`; "mine" as a scalar subquery by the (item, reviewer)
    # key (as NOT EXISTS the planner may anti-join the reviewer's whole history instead).
    candidate = (
        f"SELECT i.id FROM {item} i "
        "WHERE NOT EXISTS (SELECT FROM held) "
        "AND i.queue_id = %(queue)s AND NOT i.complete AND i.removed_at IS NULL AND i.id <> ALL(%(tried)s) "
        f"AND (SELECT w.id FROM {work} w WHERE w.item_id = i.id AND w.reviewer_id = %(user)s "
        f"AND (w.state <> '{LEASED}' OR w.expires_at > %(now)s) LIMIT 1) IS NULL "
        f"AND i.answer_count + (SELECT count(*) FROM {work} w WHERE w.item_id = i.id "
        f"AND w.state = '{LEASED}' AND w.expires_at > %(now)s) < %(n)s "
        "ORDER BY i.added_at, i.id LIMIT 1" + (" FOR UPDATE OF i SKIP LOCKED" if lock else "")
    )
    return f"WITH held AS MATERIALIZED ({held}) SELECT id FROM held UNION ALL SELECT id FROM ({candidate}) candidate"


@functools.cache
def _take_sql(commit_fast: bool) -> str:
    item, work = QueueItem._meta.db_table, QueueWork._meta.db_table
    # A new statement: its snapshot sees every change committed before the item's lock was
    # granted. The reviewer's live lease is renewed whatever the counts say (it holds a slot).
    free = (
        f"SELECT {_select(QueueItem, 'i')} FROM {item} i "
        "WHERE i.id = %(item)s AND NOT i.complete AND i.removed_at IS NULL AND ("
        f"EXISTS (SELECT FROM {work} w WHERE w.item_id = i.id AND w.reviewer_id = %(user)s "
        f"AND w.state = '{LEASED}' AND w.expires_at > %(now)s) "
        f"OR (NOT EXISTS (SELECT FROM {work} w WHERE w.item_id = i.id AND w.reviewer_id = %(user)s "
        f"AND w.state <> '{LEASED}') "
        f"AND i.answer_count + (SELECT count(*) FROM {work} w WHERE w.item_id = i.id "
        f"AND w.reviewer_id <> %(user)s AND w.state = '{LEASED}' AND w.expires_at > %(now)s) < %(n)s))"
    )
    # An expired lease of the reviewer's is revived; an answer or decline is never overwritten.
    lease = (
        f"INSERT INTO {work} AS w (item_id, reviewer_id, state, expires_at, reason, assessment_ids, "
        "created_at, updated_at) "
        f"SELECT id, %(user)s, '{LEASED}', %(expires)s, '', '{{}}'::jsonb, %(now)s, %(now)s FROM free "
        "ON CONFLICT (item_id, reviewer_id) DO UPDATE "
        "SET state = EXCLUDED.state, expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at "
        f"WHERE w.state = '{LEASED}' "
        f"RETURNING {_select(QueueWork, 'w')}"
    )
    # set_config(…, true) is SET LOCAL: this transaction only
    fast = ", set_config('synchronous_commit', 'off', true)" if commit_fast else ""
    return (
        f"WITH free AS ({free}), lease AS ({lease}) "
        f"SELECT lease.*, {_select(QueueItem, 'free')}{fast} FROM lease CROSS JOIN free"
    )
