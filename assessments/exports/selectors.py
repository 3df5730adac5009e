"""The rows of an export, read in chunks through one server-side cursor.

A row is a tuple in the order of its `columns` list, as the database returns it: JSON columns
(and `tags`) as JSON text, times as ISO 8601 text in UTC (formatted by the database: parsing
and re-formatting a million datetimes in Python would cost more than the rest of the row).
Nothing is decoded per row here, so the writers pay only for what their format needs. Query counts: an assessments export is one query
(with the revision count as a correlated subquery on its index); a traces export is one query for
the traces plus one per chunk of traces for their assessments.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from itertools import islice

from django.core.exceptions import ValidationError
from django.db import NotSupportedError, connection, transaction
from django.db.models import Count, F, Func, IntegerField, OuterRef, QuerySet, Subquery, TextField, Value
from django.db.models.functions import Cast, Coalesce
from django.db.models.sql.constants import MULTI
from psycopg.types.string import ByteaBinaryLoader

from traces import selectors as trace_selectors
from traces.access import Actor
from traces.filters import FilterError
from traces.models import Experiment, Trace

from ..models import Assessment, Revision
from . import columns

WHATS = ("assessments", "traces")
FORMATS = ("jsonl", "csv", "parquet")
# Rows fetched per round trip (and per Parquet row group / progress step).
CHUNK_SIZE = 5000


@dataclass(frozen=True)
class ExportSpec:
    """What to export: the experiment, the kind of row and the traces they come from."""

    experiment: Experiment
    what: str
    traces: QuerySet[Trace]
    # False when no filter or time range narrows the experiment's traces: the assessments are then
    # read by experiment alone, without the trace subquery.
    narrowed: bool

    @property
    def columns(self) -> tuple:
        return columns.ASSESSMENT_COLUMNS if self.what == "assessments" else columns.TRACE_OWN


def export_spec(
    actor: Actor,
    experiment: Experiment,
    *,
    what: str,
    filter_text: str = "",
    start_time: str = "",
    end_time: str = "",
) -> ExportSpec:
    """Check the parameters and compile the filter (nothing is read yet): ValidationError naming
    the field for a bad `what`, filter or time. The actor must see the experiment (the caller
    loaded it through `experiment_for`)."""
    if what not in WHATS:
        raise ValidationError({"what": f"{what!r} is not one of {', '.join(WHATS)}."})
    try:
        traces = trace_selectors.search_traces(
            actor,
            experiment_ids=[experiment.pk],
            filter_text=filter_text or None,
            start_time=start_time or None,
            end_time=end_time or None,
        )
    except FilterError as exc:
        raise ValidationError({"filter": str(exc)}) from None
    narrowed = bool((filter_text or "").strip() or start_time or end_time)
    return ExportSpec(experiment=experiment, what=what, traces=traces, narrowed=narrowed)


def count_rows(spec: ExportSpec) -> int:
    """How many rows the export will have (traces, or assessments): one COUNT query."""
    if spec.what == "traces":
        return spec.traces.count()
    return _assessments(spec).count()


def _assessments(spec: ExportSpec) -> QuerySet[Assessment]:
    queryset = Assessment.objects.filter(experiment_id=spec.experiment.pk)
    if spec.narrowed:
        queryset = queryset.filter(trace_id__in=spec.traces.order_by().values("pk"))
    return queryset


class IsoTime(Func):
    """A timestamp column as ISO 8601 text in UTC (`2026-11-01T12:00:00.123456+00:00`)."""

    output_field = TextField()

    def as_sql(self, compiler, connection, **extra_context):
        raise NotSupportedError("Exports support PostgreSQL and SQLite only.")

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"""to_char({sql} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')""", params

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django stores aware datetimes on SQLite as UTC text, 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(replace({sql}, ' ', 'T') || '+00:00')", params


def _revision_count() -> Coalesce:
    per_assessment = (
        Revision.objects.filter(assessment_id=OuterRef("pk"))
        .order_by()
        .values("assessment_id")
        .annotate(n=Count("*"))
        .values("n")
    )
    return Coalesce(Subquery(per_assessment, output_field=IntegerField()), Value(0))


def _own_fields(prefix: str = "", *, json_as_text: bool = True) -> dict:
    """Expressions for ASSESSMENT_OWN, as `values_list` annotations (JSON as text, or as stored
    when not `json_as_text`)."""

    def json(name: str):
        return Cast(f"{prefix}{name}", TextField()) if json_as_text else F(f"{prefix}{name}")

    return {
        "x_assessment_id": F(f"{prefix}assessment_id"),
        "x_span_id": F(f"{prefix}span_id"),
        "x_kind": F(f"{prefix}kind"),
        "x_name": F(f"{prefix}name"),
        "x_value": json("value"),
        "x_value_type": Value(None, output_field=TextField()),  # derived from the value's text
        "x_error": json("error"),
        "x_rationale": F(f"{prefix}rationale"),
        "x_source_type": F(f"{prefix}source_type"),
        "x_source_id": F(f"{prefix}source_id"),
        "x_metadata": json("metadata"),
        "x_valid": F(f"{prefix}valid"),
        "x_overrides": F(f"{prefix}overrides_id"),
        "x_definition_version": F(f"{prefix}definition_version"),
        "x_created_at": IsoTime(f"{prefix}create_time"),
        "x_updated_at": IsoTime(f"{prefix}last_update_time"),
        "x_revision_count": _revision_count(),
    }


def _reading():
    """The transaction an export reads in. On PostgreSQL, Django declares the server-side cursor
    WITHOUT HOLD inside a transaction, so rows stream as they are fetched; outside one it declares
    it WITH HOLD, and PostgreSQL computes the whole result before the first row. On SQLite a
    transaction would take the write lock (transaction_mode IMMEDIATE) for the whole download, and
    its cursor streams without one."""
    if connection.vendor != "postgresql":
        return nullcontext()
    return _postgresql_reading()


@contextmanager
def _postgresql_reading():
    with transaction.atomic():
        with connection.cursor() as cursor:
            # A big export's cost estimate turns JIT compilation on: seconds before the first row.
            cursor.execute("SET LOCAL jit = off")
        yield


def _chunks(rows: Iterator, size: int) -> Iterator[list]:
    while chunk := list(islice(rows, size)):
        yield chunk


def _fetched(queryset: QuerySet, chunk_size: int) -> Iterator[list[tuple]]:
    """The rows of a values_list queryset as the database cursor fetches them, `chunk_size` per
    round trip (a server-side cursor where the database has them), without Django's per-row
    converters: every column here arrives in its final type, but for booleans on SQLite (0/1),
    which the writers turn into booleans."""
    compiler = queryset.query.get_compiler(using=queryset.db)
    chunked = connection.features.can_use_chunked_reads
    yield from compiler.execute_sql(MULTI, chunked_fetch=chunked, chunk_size=chunk_size)


def assessment_chunks(spec: ExportSpec, *, chunk_size: int = CHUNK_SIZE) -> Iterator[list[tuple]]:
    """The assessment rows (ASSESSMENT_COLUMNS order, value_type still None) by trace id (a
    trace's together, oldest id first), `chunk_size` at a time from one server-side cursor. The
    trace order lets PostgreSQL merge-join the traces' primary key with assessment_trace_name,
    streaming from the first row; by assessment id it looked every trace up at random (2x slower)."""
    with _reading():
        yield from _fetched(_assessment_rows(spec).order_by("trace_id", "assessment_id"), chunk_size)


def _assessment_rows(spec: ExportSpec, *, json_as_text: bool = True) -> QuerySet:
    """The assessments export as a values_list in ASSESSMENT_COLUMNS order (aliases `x_<column>`),
    unordered."""
    fields = {
        "x_trace_id": F("trace_id"),
        **_own_fields(json_as_text=json_as_text),
        "x_session_id": F("trace__session_id"),
        "x_user_id": F("trace__user_id"),
        "x_tags": Cast("trace__tags", TextField()) if json_as_text else F("trace__tags"),
        "x_request_preview": F("trace__request_preview"),
        "x_response_preview": F("trace__response_preview"),
    }
    return _assessments(spec).annotate(**fields).order_by().values_list(*fields)


# --- JSONL lines written by PostgreSQL ----------------------------------------------------------
#
# Building a million JSON lines in Python (a tuple from the driver, a dict, orjson) costs more than
# the database's whole read, so on PostgreSQL the database writes each line (row_to_json) and
# Python only passes the lines on. The line is byte for byte what the writers'
# orjson path makes (tests/assessments/test_exports.py compares them on PostgreSQL): keys in column
# order, no spaces, strings escaped as orjson does (\" \\ \b \f \n \r \t, other control
# characters as \u00xx, the rest as UTF-8), stored JSON (jsonb) embedded as its text.

# writers.value_type in SQL (the value's JSON type, "error" for no value but an error)
_VALUE_TYPE_SQL = """CASE
    WHEN r.x_value IS NULL OR jsonb_typeof(r.x_value) = 'null'
        THEN CASE WHEN r.x_error IS NOT NULL AND jsonb_typeof(r.x_error) <> 'null' THEN 'error' ELSE 'none' END
    WHEN jsonb_typeof(r.x_value) = 'array' THEN 'list'
    ELSE jsonb_typeof(r.x_value) END"""


def assessment_jsonl_chunks(spec: ExportSpec, *, chunk_size: int | None = None) -> Iterator[tuple[bytes, int]]:
    """PostgreSQL only: the assessments export as JSONL, `(lines, how many)` for `chunk_size` rows at
    a time (whole lines, newline-terminated), in `assessment_chunks`' order, from one server-side
    cursor (one query, one FETCH per chunk)."""
    chunk_size = chunk_size or CHUNK_SIZE
    rows = _assessment_rows(spec, json_as_text=False).order_by("trace_id", "assessment_id")
    sql, params = rows.query.get_compiler(using=rows.db).as_sql()
    keys = ", ".join(
        f'{_VALUE_TYPE_SQL if name == "value_type" else f"r.x_{name}"} AS "{name}"'
        for name in columns.names(columns.ASSESSMENT_COLUMNS)
    )
    # The order stays inside: the subquery is then planned on its own (the merge join that streams,
    # as in assessment_chunks) and the outer scan keeps its order. Ordered outside, the narrower
    # lines made a hash join and a full sort look cheaper: nothing sent before the sort ended.
    lines_sql = f"SELECT row_to_json(j)::text FROM (SELECT {keys} FROM ({sql}) AS r) AS j"
    with _reading():
        connection.ensure_connection()
        with connection.connection.cursor(name=f"export_{id(spec):x}") as cursor:
            # Each line as the bytes the server sent (binary text is UTF-8 as is): no str per row.
            # Cheaper for Python than COPY (a libpq call per row) and than decoding and re-encoding.
            cursor.adapters.register_loader("text", ByteaBinaryLoader)
            cursor.execute(lines_sql, params, binary=True)
            while lines := cursor.fetchmany(chunk_size):
                yield b"\n".join([line for (line,) in lines]) + b"\n", len(lines)


def trace_chunks(spec: ExportSpec, *, chunk_size: int = CHUNK_SIZE) -> Iterator[list[tuple[tuple, list[tuple]]]]:
    """(trace row in TRACE_OWN order, its assessment rows in ASSESSMENT_OWN order) pairs, newest
    trace first (the trace list's order), `chunk_size` traces at a time; the assessments of a chunk
    come in one query, oldest first."""
    fields = {name: F(name) for name in columns.names(columns.TRACE_OWN)}
    fields.update(
        tags=Cast("tags", TextField()), metadata=Cast("metadata", TextField()), request_time=IsoTime("request_time")
    )
    renamed = {f"x_{name}": expression for name, expression in fields.items()}
    queryset = spec.traces.order_by().annotate(**renamed).order_by("-request_time", "trace_id").values_list(*renamed)
    own = _own_fields()
    with _reading():
        yield from _with_assessments(_chunks(queryset.iterator(chunk_size=chunk_size), chunk_size), own)


def _with_assessments(chunks: Iterator[list[tuple]], own: dict) -> Iterator[list[tuple[tuple, list[tuple]]]]:
    for traces in chunks:
        by_trace: dict[str, list[tuple]] = {row[0]: [] for row in traces}
        assessments = (
            Assessment.objects.filter(trace_id__in=list(by_trace))
            .annotate(x_trace_id=F("trace_id"), **own)
            .order_by("create_time", "assessment_id")
            .values_list("x_trace_id", *own)
        )
        for row in assessments:
            by_trace[row[0]].append(row[1:])
        yield [(trace, by_trace[trace[0]]) for trace in traces]
