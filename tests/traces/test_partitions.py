"""Spans partitioned by month of their trace's start (traces/partitions.py, migration 0010).

On every database a span carries its trace's request_time and follows it when an earlier span
moves the trace's start. On PostgreSQL the span table is partitioned by it: spans land in their
month's partition (or the default one), `manage.py span_partitions` creates months and moves
waiting rows, and the purge drops whole months whose every trace is due.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from io import StringIO
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from assessments.retention import services as retention
from traces import partitions
from traces.models import Span, Trace
from traces.partitions import Month

from ..factories import make_experiment, make_feedback, make_spans, make_trace

# Plain test transactions: the partition DDL of a test is rolled back with it.
pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL partitions the span table")
ROOT = Path(__file__).resolve().parents[2]


def ns(when: datetime) -> int:
    return int(when.timestamp() * 1e9)


def span_partition(trace: Trace) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT tableoid::regclass::text FROM traces_span WHERE trace_id = %s", [trace.pk])
        return {name for (name,) in cursor.fetchall()}


def test_spans_carry_their_traces_start_and_follow_it_when_an_earlier_span_arrives():
    experiment = make_experiment()
    late_child = make_spans(2, start_ns=ns(datetime(2026, 12, 1, 0, 0, 5, tzinfo=timezone.utc)))[1:]
    trace = make_trace(experiment, spans=late_child, trace_id="tr-" + "1" * 32)
    assert trace.request_time == datetime(2026, 12, 1, 0, 0, 5, 1000, tzinfo=timezone.utc)
    root = make_spans(1, start_ns=ns(datetime(2026, 11, 30, 23, 59, 58, tzinfo=timezone.utc)))
    trace = make_trace(experiment, spans=root, trace_id=trace.pk)
    trace.refresh_from_db()
    assert trace.request_time == datetime(2026, 11, 30, 23, 59, 58, tzinfo=timezone.utc)
    assert trace.span_count == 2
    assert set(Span.objects.filter(trace_id=trace.pk).values_list("trace_request_time", flat=True)) == {
        trace.request_time
    }
    # Re-sent spans update in place: still two.
    make_trace(experiment, spans=root, trace_id=trace.pk)
    assert Span.objects.of_trace(trace).count() == 2


@postgres_only
def test_spans_land_in_their_months_partition_and_outside_every_month_in_the_default():
    assert partitions.partitioned()
    now = datetime.now(timezone.utc)
    recent = make_trace(spans=make_spans(3, start_ns=ns(now)))
    assert span_partition(recent) == {Month.of(now).name}
    ancient = make_trace(spans=make_spans(2, start_ns=ns(datetime(2003, 5, 17, tzinfo=timezone.utc))))
    assert span_partition(ancient) == {partitions.DEFAULT}
    out = StringIO()
    call_command("span_partitions", stdout=out)
    assert "created traces_span_p200305 (moved 2 span(s) from the default)" in out.getvalue()
    assert span_partition(ancient) == {"traces_span_p200305"}
    assert Month(2003, 5) in partitions.months()
    # Nothing left to do the second time; the trace reads as before.
    out = StringIO()
    call_command("span_partitions", stdout=out)
    assert "Every partition needed exists." in out.getvalue()
    assert [span.span_id for span in Span.objects.of_trace(ancient).order_by("start_time_ns")] == [
        span["span_id"] for span in make_spans(2)
    ]


@postgres_only
def test_an_earlier_root_moves_the_traces_spans_to_the_earlier_month():
    partitions.create(Month(2026, 11))
    partitions.create(Month(2026, 12))
    experiment = make_experiment()
    child = make_spans(2, start_ns=ns(datetime(2026, 12, 1, 0, 0, 5, tzinfo=timezone.utc)))[1:]
    trace = make_trace(experiment, spans=child)
    assert span_partition(trace) == {"traces_span_p202612"}
    root = make_spans(1, start_ns=ns(datetime(2026, 11, 30, 23, 59, 58, tzinfo=timezone.utc)))
    make_trace(experiment, spans=root, trace_id=trace.pk)
    assert span_partition(trace) == {"traces_span_p202611"}


@postgres_only
def test_the_purge_drops_a_month_whose_every_trace_is_due_and_keeps_one_with_a_pinned_trace():
    now = datetime(2026, 12, 3, 12, tzinfo=timezone.utc)
    for month in (Month(2026, 6), Month(2026, 7)):
        partitions.create(month)
    experiment = make_experiment("kept 90 days")
    experiment.retention_days, experiment.retention_keep_human = 90, True
    experiment.save(update_fields=["retention_days", "retention_keep_human"])
    june = [
        make_trace(experiment, spans=make_spans(3, start_ns=ns(datetime(2026, 6, d, tzinfo=timezone.utc))))
        for d in (2, 20)
    ]
    july = [
        make_trace(experiment, spans=make_spans(3, start_ns=ns(datetime(2026, 7, d, tzinfo=timezone.utc))))
        for d in (3, 9)
    ]
    make_feedback(july[0], value=False)  # human feedback: pinned by retention_keep_human
    # The purge runs in its own transaction in production; here it shares the test's, whose
    # deferred foreign-key checks on the new spans must run before their partition can go.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    dry = retention.purge_all(now=now, dry_run=True)
    assert [drop.month for drop in dry.months] == [Month(2026, 6)]
    assert Month(2026, 6) in partitions.months()

    outcome = retention.purge_all(now=now)
    assert [(drop.month, drop.spans) for drop in outcome.months] == [(Month(2026, 6), 6)]
    assert Month(2026, 6) not in partitions.months() and Month(2026, 7) in partitions.months()
    [result] = outcome.experiments
    assert result.deleted == 3 and result.kept_pinned == 1
    assert set(Trace.objects.values_list("pk", flat=True)) == {july[0].pk}
    assert Span.objects.of_trace(july[0]).count() == 3
    assert not Span.objects.filter(trace_id__in=[trace.pk for trace in june + july[1:]]).exists()


@postgres_only
def test_a_month_with_a_trace_kept_forever_or_not_yet_due_is_not_dropped():
    now = datetime(2026, 12, 3, 12, tzinfo=timezone.utc)
    partitions.create(Month(2026, 8))
    short = make_experiment("kept 30 days")
    short.retention_days = 30
    short.save(update_fields=["retention_days"])
    august = ns(datetime(2026, 8, 10, tzinfo=timezone.utc))
    make_trace(short, spans=make_spans(2, start_ns=august))
    assert retention.month_is_due(Month(2026, 8), now)
    # Not while the month's last day is still within the retention, nor for the month under way.
    assert not retention.month_is_due(Month(2026, 8), datetime(2026, 9, 20, tzinfo=timezone.utc))
    assert not retention.month_is_due(Month(2026, 12), now)
    # An experiment without retention keeps its traces, so the month stays.
    forever = make_experiment("kept forever")
    kept = make_trace(forever, spans=make_spans(2, start_ns=august + 10**9))
    assert not retention.month_is_due(Month(2026, 8), now)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as in the test above
    outcome = retention.purge_all(now=now)
    assert outcome.months == [] and outcome.experiments[0].deleted == 1
    assert span_partition(kept) == {"traces_span_p202608"}


def test_span_partitions_says_what_it_does_where_nothing_is_partitioned():
    out = StringIO()
    call_command("span_partitions", "--list", stdout=out)
    if connection.vendor == "postgresql":
        assert f"{partitions.DEFAULT}  months waiting: none" in out.getvalue()
        assert Month.of(datetime.now(timezone.utc)).name in out.getvalue()
    else:
        assert "not partitioned on this database" in out.getvalue()


@postgres_only
def test_migration_converts_a_database_with_spans_into_monthly_partitions(tmp_path):
    """A database at 0009 with traces and spans, migrated: every span kept, in its trace's month
    (the oldest month up to two ahead get partitions), keys and identity carried over."""
    settings = connection.settings_dict
    name = settings["NAME"] + "_convert"
    admin = psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], user=settings["USER"], dbname="postgres", autocommit=True
    )
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{name}"
    env = {**os.environ, "DATABASE_URL": url}

    def manage(*args):
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)

    try:
        manage("migrate", "traces", "0009", "--noinput")
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(
                "INSERT INTO traces_experiment (name, description, created_at, updated_at, definitions_stamp, "
                "require_definitions, retention_keep_human, verdict_name) VALUES ('old', '', now(), now(), 0, false, false, 'v')"
            )
            for n, when in enumerate(["2026-01-15 10:00+00", "2026-03-01 00:00+00", "2026-03-31 23:59:59+00"]):
                trace_id = f"tr-{n:032x}"
                db.execute(
                    "INSERT INTO traces_trace (trace_id, experiment_id, name, request_time, state, request_preview, "
                    "response_preview, tags, metadata, session_id, user_id, span_count, created_at, updated_at) "
                    "SELECT %s, id, '', %s, 'OK', '', '', '{}', '{}', '', '', 2, now(), now() FROM traces_experiment",
                    (trace_id, when),
                )
                for s in range(2):
                    db.execute(
                        "INSERT INTO traces_span (trace_id, span_id, name, span_type, kind, start_time_ns, status_code, "
                        "status_message, attributes, events) VALUES (%s, %s, 'step', 'LLM', '', 1, 'OK', '', '{}', '[]')",
                        (trace_id, f"{s:016x}"),
                    )
        manage("migrate", "--noinput")
        with psycopg.connect(url, autocommit=True) as db:
            placed = db.execute(
                "SELECT s.tableoid::regclass::text, count(*), bool_and(s.trace_request_time = t.request_time) "
                "FROM traces_span s JOIN traces_trace t USING (trace_id) GROUP BY 1 ORDER BY 1"
            ).fetchall()
            assert placed == [("traces_span_p202601", 2, True), ("traces_span_p202603", 4, True)]
            [(kind,)] = db.execute("SELECT relkind FROM pg_class WHERE relname = 'traces_span'").fetchall()
            assert kind == "p"
            months = {row[0] for row in db.execute("SELECT relname FROM pg_class WHERE relname LIKE 'traces_span_p%'")}
            assert {"traces_span_p202601", "traces_span_p202602", "traces_span_p202603"} <= months
            assert Month.of(datetime.now(timezone.utc)).next().next().name in months
            keys = {
                row[0]
                for row in db.execute(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'traces_span'::regclass"
                )
            }
            assert "PRIMARY KEY (id, trace_request_time)" in keys
            assert "UNIQUE (trace_id, span_id, trace_request_time)" in keys
            # New spans keep numbering after the copied ones.
            [(next_id,)] = db.execute("SELECT nextval(pg_get_serial_sequence('traces_span', 'id'))").fetchall()
            [(top,)] = db.execute("SELECT max(id) FROM traces_span").fetchall()
            assert next_id > top
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
