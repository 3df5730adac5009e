"""Bulk writes the services share: the column values Django's INSERT would send, and COPY.

The services use these where the ORM's per-statement cost dominates: one-statement feedback
creates, the batch endpoint and the spans of a new trace stream their rows with PostgreSQL's
COPY (psycopg 3's `cursor.copy()`). tests/assessments/test_write_path.py checks the values
equal what Django writes.
"""

from __future__ import annotations

import functools

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models.base import ModelState


@functools.cache
def insert_fields(model) -> list:
    return [field for field in model._meta.concrete_fields if not field.primary_key or not field.auto_created]


@functools.cache
def insert_target(model) -> str:
    """`table (columns)` for every concrete field but an auto-increment id, quoted."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in insert_fields(model))
    return f"{quote(model._meta.db_table)} ({columns})"


def insert_values(obj, fields=None, db=None) -> list:
    """The values Django's INSERT would send for `obj` (pre_save + database preparation)."""
    db = db or connections[DEFAULT_DB_ALIAS]
    return [field.get_db_prep_save(field.pre_save(obj, True), db) for field in fields or insert_fields(type(obj))]


def copy_rows(model, objects: list) -> None:
    """Insert `objects` with COPY (PostgreSQL): the values Django's INSERT would send, streamed
    without building a statement. Constraint violations raise IntegrityError."""
    with connection.cursor() as cursor, connection.wrap_database_errors:
        with cursor.cursor.copy(f"COPY {insert_target(model)} FROM STDIN") as copy:
            for row in copy_values(model, objects):
                copy.write_row(row)


def copy_values(model, objects: list):
    """Each object's column values for COPY, in insert_target's order (see copy_plan).

    Objects are model instances or dicts of every column's value by attname (no pre_save for
    dicts: the caller gives final values, as the batch and ingest paths do)."""
    from psycopg.types.json import Jsonb

    plan = copy_plan(model)
    db = connections[DEFAULT_DB_ALIAS]
    attnames = [attname for _, attname, _ in plan]
    json_columns = [index for index, (_, _, how) in enumerate(plan) if how == "json"]
    prep_columns = [(index, field) for index, (field, _, how) in enumerate(plan) if how == "prep"]
    for obj in objects:
        if isinstance(obj, dict):
            row = [obj[attname] for attname in attnames]
            for index in json_columns:
                if row[index] is not None:
                    row[index] = Jsonb(row[index])
            for index, field in prep_columns:
                row[index] = field.get_db_prep_save(row[index], db)
            yield row
            continue
        row = []
        for field, attname, how in plan:
            if how is None:
                row.append(getattr(obj, attname))
            elif how == "json":
                value = getattr(obj, attname)
                row.append(None if value is None else Jsonb(value))
            else:
                row.append(field.get_db_prep_save(field.pre_save(obj, True), db))
        yield row


def insert_new(obj) -> bool:
    """INSERT `obj` unless a row with the same unique key exists (PostgreSQL: ON CONFLICT DO
    NOTHING, which waits for a concurrent insert of that key to commit or roll back); whether
    it was inserted. The values are those Django's INSERT would send (auto_now included)."""
    model = type(obj)
    values = next(copy_values(model, [obj]))
    placeholders = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {insert_target(model)} VALUES ({placeholders}) ON CONFLICT DO NOTHING RETURNING 1", values
        )
        inserted = cursor.fetchone() is not None
    if inserted:
        obj._state.adding = False
        obj._state.db = connection.alias
    return inserted


def saved_instance(model, values: dict):
    """A model instance for a row just written, from every column's value by attname: what
    `Model.from_db` gives, without Model.__init__'s per-field descriptor calls (~70 µs per
    assessment), for the batch path's thousand results."""
    obj = model.__new__(model)
    obj.__dict__.update(values)
    obj._state = ModelState()
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj


@functools.cache
def copy_plan(model) -> list:
    """(field, attname, how) per inserted column: JSON values wrapped as jsonb (None stays SQL
    NULL, as Django saves it), fields with pre_save work (auto_now…) prepared by Django, the
    rest sent as they are (psycopg adapts str, int, float, bool and aware datetimes itself).
    tests/assessments/test_write_path.py checks the rows equal Django's."""
    from django.db.models import JSONField

    plan = []
    for field in insert_fields(model):
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            how = "prep"
        elif isinstance(field, JSONField):
            # a field with its own encoder (FloatPreservingJSONEncoder) is prepared by Django
            how = "prep" if field.encoder is not None else "json"
        elif field.get_internal_type() in (
            "CharField",
            "TextField",
            "IntegerField",
            "BigIntegerField",
            "PositiveIntegerField",
            "FloatField",
            "BooleanField",
            "DateTimeField",
            "ForeignKey",
            "AutoField",
            "BigAutoField",
        ):
            how = None
        else:
            how = "prep"
        plan.append((field, field.attname, how))
    return plan
