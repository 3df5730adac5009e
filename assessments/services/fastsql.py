"""Single-statement inserts for the hot paths on PostgreSQL (outside a transaction): a
data-modifying CTE is atomic and, in autocommit, durable on its own, so a create costs one
round trip instead of six (BEGIN, SAVEPOINT, INSERT, RELEASE, INSERT, COMMIT). Inside a
caller's transaction the same statement serves a create that cannot collide (one instead of
five: no savepoints). The rows are those the ORM path writes; only `verbs` and `rows` call these."""

from __future__ import annotations

import functools
import re

from django.db import connection

from feedbackhub import bulk
from traces.models import Trace

from ..models import Assessment, Revision


def usable() -> bool:
    """Whether a single statement is atomic on its own here (PostgreSQL, no open transaction)."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def usable_in_transaction(fields: dict) -> bool:
    """Whether the one statement may also run inside a caller's transaction (PostgreSQL): for a
    create that cannot collide, with a server-chosen id and no idempotency key. The transactional
    path wraps its insert in savepoints only to survive a collision (a replay or a taken id);
    without one to survive the statement needs none (a queue's answer: two savepoints, four
    round trips fewer)."""
    return connection.vendor == "postgresql" and fields["idempotency_key"] is None and not fields["assessment_id"]


def insert_with_revision(assessment: Assessment, revision: Revision) -> None:
    """Insert the assessment and its revision in one statement; raises IntegrityError."""
    params = [*next(bulk.copy_values(Assessment, [assessment])), *next(bulk.copy_values(Revision, [revision]))]
    with connection.cursor() as cursor:
        cursor.execute(_insert_with_revision_sql(), params)
    _mark_saved(assessment)


def insert_by_trace_id(assessment: Assessment, revision: Revision, experiment_ids) -> bool:
    """Insert the assessment and its revision on trace `assessment.trace_id` if that trace is in
    `experiment_ids`, both taking the trace's experiment: the trace lookup folded into the
    insert. False (nothing written) when the trace is missing or elsewhere; raises IntegrityError."""
    params = [
        assessment.trace_id,
        sorted(experiment_ids),
        *_without_experiment(Assessment, next(bulk.copy_values(Assessment, [assessment]))),
        *_without_experiment(Revision, next(bulk.copy_values(Revision, [revision]))),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_create_by_trace_id_sql(), params)
        row = cursor.fetchone()
    if row is None:
        return False
    assessment.experiment_id = revision.experiment_id = row[0]
    _mark_saved(assessment)
    return True


def _mark_saved(assessment: Assessment) -> None:
    assessment._state.adding = False
    assessment._state.db = connection.alias


def _without_experiment(model, values: list) -> list:
    """The column values but experiment_id (the statement takes it from the trace)."""
    return [value for field, value in zip(bulk.insert_fields(model), values) if field.attname != "experiment_id"]


@functools.cache
def _create_by_trace_id_sql() -> str:
    """The trace (in the key's experiments), the assessment and its revision, both taking the
    trace's experiment; returns that experiment id, or no row."""
    quote = connection.ops.quote_name

    def select_list(model, experiment_source: str) -> str:
        # each type without its length: an over-long value fails as in VALUES (a cast truncates)
        return ", ".join(
            experiment_source
            if field.attname == "experiment_id"
            else f"%s::{re.sub(r'[(][0-9]+[)]$', '', field.cast_db_type(connection))}"
            for field in bulk.insert_fields(model)
        )

    trace = Trace._meta
    return (
        f"WITH trace AS (SELECT {quote(trace.get_field('experiment').column)} AS experiment_id "
        f"FROM {quote(trace.db_table)} WHERE {quote(trace.pk.column)} = %s "
        f"AND {quote(trace.get_field('experiment').column)} = ANY(%s)), "
        f"created AS (INSERT INTO {bulk.insert_target(Assessment)} "
        f"SELECT {select_list(Assessment, 'trace.experiment_id')} FROM trace RETURNING experiment_id), "
        f"revision AS (INSERT INTO {bulk.insert_target(Revision)} "
        f"SELECT {select_list(Revision, 'created.experiment_id')} FROM created) "
        "SELECT experiment_id FROM created"
    )


@functools.cache
def _insert_with_revision_sql() -> str:
    assessment_values = ", ".join(["%s"] * len(bulk.insert_fields(Assessment)))
    revision_values = ", ".join(["%s"] * len(bulk.insert_fields(Revision)))
    return (
        f"WITH created AS (INSERT INTO {bulk.insert_target(Assessment)} VALUES ({assessment_values})) "
        f"INSERT INTO {bulk.insert_target(Revision)} VALUES ({revision_values})"
    )
