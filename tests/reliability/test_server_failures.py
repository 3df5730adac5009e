"""The production server under failure: SIGKILL mid-load, and PostgreSQL stopped mid-load.

Both run gunicorn (gthread, production settings) on a private PostgreSQL instance
(tests/reliability/servers.py), so the shared database server is never touched.
Slow (about a minute on two cores): `make reliability` or FEEDBACKHUB_RELIABILITY=1.
"""

import time

import pytest
import requests

from .load import SPANS_PER_TRACE, Load, percentile

pytestmark = pytest.mark.reliability

# Kill once this many writes were acknowledged (or after MAX_LOAD_SECONDS), so the kill lands
# mid-load whatever the machine's speed.
WRITES_BEFORE_KILL = 60
MAX_LOAD_SECONDS = 20.0
OUTAGE_SECONDS = 3.0
FAST_503_SECONDS = 1.0
# With DB_POOL_MAX a request waits DB_POOL_TIMEOUT (default 2 s) for a pooled connection first.
POOL_503_SECONDS = 3.0
RECOVERY_LIMIT_SECONDS = 10.0


def check_database_invariants(pg) -> dict:
    """Whole-database checks that hold whatever was acknowledged: no half-written trace, every
    assessment has its create revision and one update revision per version step."""
    half_written = pg.query(
        "SELECT trace_id FROM traces_trace t WHERE span_count = 0 "
        "OR span_count <> (SELECT count(*) FROM traces_span s WHERE s.trace_id = t.trace_id)"
    )
    without_create = pg.query(
        "SELECT assessment_id FROM assessments_assessment a WHERE NOT EXISTS (SELECT 1 FROM assessments_revision r "
        "WHERE r.assessment_id = a.assessment_id AND r.action = 'create')"
    )
    version_mismatch = pg.query(
        "SELECT assessment_id FROM assessments_assessment a WHERE a.version <> 1 + (SELECT count(*) FROM "
        "assessments_revision r WHERE r.assessment_id = a.assessment_id AND r.action = 'update')"
    )
    orphan_revisions = pg.query(
        "SELECT r.id FROM assessments_revision r WHERE NOT EXISTS "
        "(SELECT 1 FROM assessments_assessment a WHERE a.assessment_id = r.assessment_id)"
    )
    assert half_written == [], f"half-written traces: {half_written[:5]}"
    assert without_create == [], f"assessments without their create revision: {without_create[:5]}"
    assert version_mismatch == [], f"versions without their update revisions: {version_mismatch[:5]}"
    assert orphan_revisions == [], f"revisions of assessments that do not exist: {orphan_revisions[:5]}"
    [(traces, spans)] = pg.query("SELECT (SELECT count(*) FROM traces_trace), (SELECT count(*) FROM traces_span)")
    [(assessments, revisions)] = pg.query(
        "SELECT (SELECT count(*) FROM assessments_assessment), (SELECT count(*) FROM assessments_revision)"
    )
    return {"traces": traces, "spans": spans, "assessments": assessments, "revisions": revisions}


def check_acknowledged(pg, load: Load) -> dict:
    """Every 2xx write is in the database exactly once, with its spans or revision rows."""
    traces = [a for a in load.of("trace") if a.acknowledged]
    stored = dict(
        pg.query(
            "SELECT trace_id, (SELECT count(*) FROM traces_span s WHERE s.trace_id = t.trace_id) FROM traces_trace t "
            "WHERE trace_id = ANY(%s)",
            ([a.ident for a in traces],),
        )
    )
    missing = [a.ident for a in traces if stored.get(a.ident) != SPANS_PER_TRACE]

    feedback = [a for a in load.of("feedback") if a.acknowledged]
    rows = pg.query(
        "SELECT idempotency_key, assessment_id FROM assessments_assessment WHERE idempotency_key = ANY(%s)",
        ([a.ident for a in feedback],),
    )
    by_key: dict[str, list[str]] = {}
    for key, assessment_id in rows:
        by_key.setdefault(key, []).append(assessment_id)
    wrong = [a.ident for a in feedback if by_key.get(a.ident) != [a.response["assessment_id"]]]
    creates = dict(
        pg.query(
            "SELECT assessment_id, count(*) FROM assessments_revision WHERE action = 'create' "
            "AND assessment_id = ANY(%s) GROUP BY assessment_id",
            ([a.response["assessment_id"] for a in feedback],),
        )
    )
    no_revision = [a.ident for a in feedback if creates.get(a.response["assessment_id"]) != 1]

    patches = [a for a in load.of("patch") if a.acknowledged]
    patched = {
        assessment_id: (version, value, updates)
        for assessment_id, version, value, updates in pg.query(
            "SELECT a.assessment_id, a.version, a.value, (SELECT count(*) FROM assessments_revision r "
            "WHERE r.assessment_id = a.assessment_id AND r.action = 'update' AND (r.after->>'version') = '2') "
            "FROM assessments_assessment a WHERE a.assessment_id = ANY(%s)",
            ([a.ident for a in patches],),
        )
    }
    lost = [a.ident for a in patches if patched.get(a.ident) != (2, a.body["value"], 1)]
    figures = {
        "traces": {"acknowledged": len(traces), "found_complete": len(traces) - len(missing)},
        "feedback": {
            "acknowledged": len(feedback),
            "found_once_with_revision": len(feedback) - len({*wrong, *no_revision}),
        },
        "edits": {"acknowledged": len(patches), "found_with_revision": len(patches) - len(lost)},
    }
    assert missing == [], f"acknowledged traces missing or incomplete: {missing[:5]}"
    assert wrong == [], f"acknowledged feedback missing, duplicated or different: {wrong[:5]}"
    assert no_revision == [], f"acknowledged feedback without exactly one create revision: {no_revision[:5]}"
    assert lost == [], f"acknowledged edits missing or without their revision: {lost[:5]}"
    return figures


def test_sigkill_mid_load_loses_no_acknowledged_write(private_postgres, gunicorn, figures):
    pg, env, raw_key, experiment_id = private_postgres
    server = gunicorn()
    load = Load(server.base, raw_key, experiment_id, clients=6)
    load.start()
    load.wait_for_acknowledged(WRITES_BEFORE_KILL, MAX_LOAD_SECONDS)
    answered_before = len(load.attempts)
    server.kill()  # master and all workers at once, no chance to finish anything
    load.stop()  # each client's request in flight fails; no new ones
    server.wait_gone()

    restart_seconds = server.start()
    acknowledged = check_acknowledged(pg, load)
    check_database_invariants(pg)

    # Clients retry what got no answer, with the same trace ids and idempotency keys.
    unanswered = [a for a in load.attempts if not a.acknowledged and a.kind in ("trace", "feedback")]
    session = requests.Session()
    retry = Load(server.base, raw_key, experiment_id)
    for attempt in unanswered:  # traces come before their feedback in the list
        again = retry.send(session, attempt.again())
        assert again.acknowledged, (attempt.kind, again.status, again.response)
    replayed = sum(a.status == 200 for a in retry.attempts)
    check_acknowledged(pg, retry)
    totals = check_database_invariants(pg)

    figures["sigkill"] = {
        "requests_answered_before_kill": answered_before,
        "after_restart": acknowledged,
        "cut_by_the_kill_then_retried": len(unanswered),
        "retries_answered_as_already_stored": replayed,
        "restart_seconds": round(restart_seconds, 2),
        "database_totals": totals,
    }
    assert acknowledged["traces"]["acknowledged"] > 0 and acknowledged["feedback"]["acknowledged"] > 0


SERVER_CONFIGS = {
    # gunicorn.conf.py's default: sync workers, persistent connections (DB_CONN_MAX_AGE=600)
    "sync_persistent": {},
    # its alternative: threaded workers with Django's psycopg pool
    "gthread_pool": {"GUNICORN_WORKER_CLASS": "gthread", "DB_POOL_MAX": "4"},
}


@pytest.mark.parametrize("connections", SERVER_CONFIGS)
def test_database_outage_gives_fast_503_and_recovers_without_restart(private_postgres, gunicorn, figures, connections):
    pg, env, raw_key, experiment_id = private_postgres
    server = gunicorn(**SERVER_CONFIGS[connections])
    master_pid = server.process.pid
    load = Load(server.base, raw_key, experiment_id, clients=3, timeout=30)
    load.start()
    load.wait_for_acknowledged(20, MAX_LOAD_SECONDS)

    stop_began = time.monotonic()
    pg.stop("immediate")  # a crash: no shutdown checkpoint, WAL replay on start
    down_at = time.monotonic()
    time.sleep(OUTAGE_SECONDS / 2)
    healthz = requests.get(server.base + "/healthz", timeout=10)
    readyz = requests.get(server.base + "/readyz", timeout=10)
    time.sleep(OUTAGE_SECONDS / 2)
    up_began = time.monotonic()
    pg.start()
    up_at = time.monotonic()

    deadline = up_at + RECOVERY_LIMIT_SECONDS + 5
    while time.monotonic() < deadline and not any(a.acknowledged and a.started >= up_at for a in load.attempts):
        time.sleep(0.05)
    time.sleep(0.5)
    load.stop()

    during = [a for a in load.attempts if down_at <= a.started and a.started + a.latency <= up_began]
    errors = [a for a in during if a.status != 503]
    assert during, "no request was made during the outage"
    assert errors == [], [(a.status, a.response) for a in errors[:5]]
    assert all(a.response_headers.get("Content-Type") == "application/json" for a in during)
    assert all(a.response_headers.get("Retry-After") == "5" for a in during)
    assert all(a.response == {"detail": "The database is unavailable; retry shortly."} for a in during)
    latencies = [a.latency for a in during]
    limit = POOL_503_SECONDS if "DB_POOL_MAX" in SERVER_CONFIGS[connections] else FAST_503_SECONDS
    assert max(latencies) < limit, f"slow 503s: max {max(latencies):.2f}s"
    assert (healthz.status_code, readyz.status_code) == (200, 503)
    assert readyz.headers["Retry-After"] == "5"
    assert not [a for a in load.attempts if a.status is None or a.status >= 500 and a.status != 503]

    recovered = [a for a in load.attempts if a.acknowledged and a.started >= up_at]
    assert recovered, "the server did not recover after the database came back"
    recovery_seconds = min(a.started + a.latency for a in recovered) - up_at
    assert recovery_seconds < RECOVERY_LIMIT_SECONDS
    assert server.alive() and server.process.pid == master_pid  # recovered without a restart
    probes = [requests.get(server.base + "/readyz", timeout=5, headers={"Connection": "close"}) for _ in range(20)]
    assert [p.status_code for p in probes] == [200] * 20  # every worker reconnected

    acknowledged = check_acknowledged(pg, load)  # a PostgreSQL crash loses no acknowledged write either
    check_database_invariants(pg)
    figures[f"outage_{connections}"] = {
        "requests_during_outage": len(during),
        "healthz_during_outage": [healthz.status_code, round(healthz.elapsed.total_seconds() * 1000, 1)],
        "status_during_outage": sorted({a.status for a in during}),
        "latency_503_p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "latency_503_p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "latency_503_max_ms": round(max(latencies) * 1000, 1),
        "postgres_stop_seconds": round(down_at - stop_began, 2),
        "postgres_start_seconds": round(up_at - up_began, 2),
        "recovery_after_postgres_up_seconds": round(recovery_seconds, 2),
        "acknowledged_and_found": acknowledged,
    }
