"""`make bench`: FeedbackHub's production server on PostgreSQL, driven over loopback.

    .venv/bin/python bench/run.py                 # the full run: 1,000,000 traces, 3 runs of 8 s
    .venv/bin/python bench/run.py --quick         # 10,000 traces, 2 short runs (development)
    .venv/bin/python bench/run.py --only single_feedback,batch_feedback --runs 3

What it does, in order:
1. creates the bench database if missing (default postgres://postgres@127.0.0.1:5432/fh_bench,
   BENCH_DATABASE_URL overrides), migrates, collects static files;
2. tops the `bench` experiment up to --traces traces with `manage.py generate_traces`
   (COPY; data from earlier runs is reused), and adds the fixtures: an API key, a 50-span
   trace, a 1,000-span trace with 100 assessments, a staff session for the HTML pages;
   then reads the indexes and the trace and assessment tables into the OS cache (pg_prewarm);
3. starts gunicorn with gunicorn.conf.py (DEBUG off, persistent connections, rate limits
   off) and drives it with `wrk` from a separate process (Lua scripts in bench/lua/ build
   the POST bodies); throughput scenarios use 8 keep-alive connections, latency scenarios
   one connection;
4. runs PostgreSQL's pgbench with the transaction one feedback write sends (BEGIN, the two
   INSERTs, COMMIT; 8 clients) between the runs, and reports single-feedback throughput as
   a fraction of it;
5. samples every worker's RSS throughout, counts the trace detail page's queries, and
   writes bench/results/<date>.json and bench/results/<date>.md (median of the runs, with
   min–max spread, next to the targets of issue 5 and the MLflow figures).

Every figure is measured on this machine with everything (server, database, load
generator) sharing its cores; the load average at the start is recorded with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "lua"
DATA = BENCH / "data"  # gitignored: server log, request bodies
RESULTS = BENCH / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/fh_bench"
EXPERIMENT = "bench"
PYTHON = sys.executable

# name → (what, target text, MLflow figure, unit, how to judge: (kind, threshold))
SCENARIOS = {
    "single_feedback": (
        "single feedback `POST /api/v1/traces/{id}/feedback`, 8 keep-alive clients",
        "≥ 1,000/s, p99 ≤ 50 ms",
        "≈ 120/s",
        "req/s",
        ("min", 1000),
    ),
    "mlflow_feedback": (
        "the same through the MLflow protocol (`POST /api/3.0/mlflow/traces/{id}/assessments`)",
        "≥ 800/s",
        "≈ 120/s",
        "req/s",
        ("min", 800),
    ),
    "batch_feedback": (
        "batch feedback (`POST /api/v1/feedback:batch`, 1,000 items per request)",
        "≥ 20,000 items/s",
        "no batch endpoint",
        "items/s",
        ("min", 20000),
    ),
    "trace_ingest": ("native trace ingest, 5 spans each", "≥ 500 traces/s", "20–28 traces/s", "traces/s", ("min", 500)),
    "otlp_ingest": ("OTLP protobuf ingest (50 spans per request)", "≥ 20,000 spans/s", "—", "spans/s", ("min", 20000)),
    "get_trace": ("`GET /api/v1/traces/{id}`, 50 spans", "p50 ≤ 10 ms", "`get_trace` ≈ 45 ms", "ms p50", ("max", 10)),
    "trace_page": (
        "trace detail page, 1,000 spans and 100 assessments",
        "p50 ≤ 100 ms, ≤ 10 queries",
        "—",
        "ms p50",
        ("max", 100),
    ),
    "search_false": (
        "first page of `feedback.user_satisfaction = false` over the bench data",
        "p50 ≤ 30 ms",
        "45–75 ms over 2,000 traces",
        "ms p50",
        ("max", 30),
    ),
    "search_span": (
        "first page of `span.type = 'TOOL' AND feedback.user_satisfaction = false` (a span subquery per trace)",
        "p50 ≤ 30 ms (as search_false)",
        "—",
        "ms p50",
        ("max", 30),
    ),
    "trace_list": ("trace list page over the same data", "p50 ≤ 100 ms", "—", "ms p50", ("max", 100)),
    "summary": ("feedback summary of the experiment", "≤ 200 ms", "—", "ms p50", ("max", 200)),
    # bench/insights.py (issue 15)
    "insights_page": ("insights page, 30 days: shell + cards + trends panels", "≤ 300 ms", "—", "ms", ("max", 300)),
    "insights_metrics": ("`GET /api/v1/experiments/{id}/metrics`, 30 days by day", "≤ 150 ms", "—", "ms", ("max", 150)),
    "insights_mlflow_metrics": (
        "MLflow QueryTraceMetrics, AVG by name and hour, 30 days",
        "≤ 150 ms",
        "—",
        "ms",
        ("max", 150),
    ),
    "insights_late": ("late feedback visible in its trace's bucket", "≤ 5,000 ms", "—", "ms", ("max", 5000)),
}
THROUGHPUT_CONNECTIONS = 8


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(cmd: list[str], env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=ROOT, check=True, **kwargs)


# --- database and data ------------------------------------------------------------------------


def django_setup(env: dict) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedbackhub.settings")
    import django

    django.setup()


def prepare_data(args, env: dict) -> dict:
    """Top the bench experiment up to --traces traces and create the fixtures; returns their ids."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from assessments import services as assessment_services
    from traces import services as trace_services
    from traces.access import Actor
    from traces.models import Experiment, Trace

    system = Actor.for_system("bench")
    experiment = Experiment.objects.filter(name=EXPERIMENT).first()
    have = Trace.objects.filter(experiment=experiment).count() if experiment else 0
    if have < args.traces:
        log(f"generating {args.traces - have:,} traces (have {have:,})")
        run(
            [
                PYTHON,
                "manage.py",
                "generate_traces",
                "--experiment",
                EXPERIMENT,
                "--traces",
                str(args.traces - have),
                "--spans-per-trace",
                str(args.spans_per_trace),
                "--feedback-per-trace",
                str(args.feedback_per_trace),
            ],
            env,
        )
        experiment = Experiment.objects.get(name=EXPERIMENT)
    # Ingestion scenarios write into their own experiment, so that the read scenarios keep
    # measuring the generated data (fresh feedback-less traces would lead every search page).
    ingest_experiment = Experiment.objects.filter(
        name=f"{EXPERIMENT}-ingest"
    ).first() or trace_services.create_experiment(name=f"{EXPERIMENT}-ingest", actor=system)
    api_key, raw_key = trace_services.create_api_key(
        experiments=[experiment, ingest_experiment], label=f"bench {datetime.now():%Y-%m-%d %H:%M}", actor=system
    )

    def fixture_trace(name: str, spans: int, assessments: int) -> str:
        existing = Trace.objects.filter(experiment=experiment, name=name).first()
        if existing is not None:
            return existing.trace_id
        start = time.time_ns()
        span_rows = [
            {
                "span_id": f"{n + 1:016x}",
                "parent_span_id": None if n == 0 else f"{(n - 1) // 10 + 1:016x}",
                "name": "agent" if n == 0 else f"step_{n}",
                "span_type": "AGENT" if n == 0 else "LLM",
                "start_time_ns": start + n * 1000,
                "end_time_ns": start + (spans + n) * 1000,
                "status_code": "OK",
                "inputs": {"question": "How do I rotate an API key?", "n": n},
                "outputs": {"answer": "Create a new key, deploy it, revoke the old one.", "n": n},
                "attributes": {"model": "gpt-4o-mini", "n": n},
            }
            for n in range(spans)
        ]
        trace, _ = trace_services.ingest_trace(
            experiment=experiment, actor=system, channel="api", spans=span_rows, metadata={"fixture": name}
        )
        Trace.objects.filter(pk=trace.pk).update(name=name)
        for n in range(assessments):
            assessment_services.log_feedback(
                trace=trace,
                name=["user_satisfaction", "relevance", "tone", "topics"][n % 4],
                value=[True, 0.5, "friendly", ["a", "b"]][n % 4],
                actor=system,
                channel="api",
                source_type="HUMAN",
                source_id=f"rater-{n}",
                span_id=f"{n % spans + 1:016x}",
            )
        return trace.trace_id

    trace_50 = fixture_trace("bench-fixture-50-spans", 50, 0)
    trace_1000 = fixture_trace("bench-fixture-1000-spans", 1000, 100)

    User = get_user_model()
    staff, _ = User.objects.get_or_create(username="bench-staff", defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(staff)
    session = client.cookies["sessionid"].value

    from django.db import connection

    with connection.cursor() as cursor:
        # A random sample of the bench traces for the feedback scenarios (TABLESAMPLE: no full scan).
        cursor.execute(
            "SELECT trace_id FROM traces_trace TABLESAMPLE SYSTEM (1) WHERE experiment_id = %s LIMIT 2000",
            [experiment.pk],
        )
        trace_ids = [row[0] for row in cursor.fetchall()]
        if len(trace_ids) < 100:
            cursor.execute("SELECT trace_id FROM traces_trace WHERE experiment_id = %s LIMIT 2000", [experiment.pk])
            trace_ids = [row[0] for row in cursor.fetchall()]
    counts = {
        "traces": Trace.objects.filter(experiment=experiment).count(),
        "assessments": experiment_assessment_count(experiment.pk),
    }
    return {
        "experiment_id": experiment.pk,
        "ingest_experiment_id": ingest_experiment.pk,
        "api_key": raw_key,
        "trace_50": trace_50,
        "trace_1000": trace_1000,
        "session": session,
        "trace_ids": trace_ids,
        "counts": counts,
        "staff": staff,
    }


def experiment_assessment_count(experiment_id: int) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM assessments_assessment WHERE experiment_id = %s", [experiment_id])
        return cursor.fetchone()[0]


def detail_page_queries(fixtures: dict) -> int | None:
    """Queries the trace detail page sends for the 1,000-span trace (in-process test client)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(fixtures["staff"])
    with CaptureQueriesContext(connection) as captured:
        response = client.get(f"/traces/{fixtures['trace_1000']}/")
    if response.status_code != 200:
        log(f"trace page answered {response.status_code}")
        return None
    # the session and user lookups of the login are part of every page
    return len(captured)


def summary_timing(fixtures: dict, runs: int) -> tuple[list[float], str]:
    """The experiment's feedback summary: the selector if one exists, else the equivalent query."""
    from django.db.models import Avg, Count, Q

    from assessments import selectors
    from assessments.models import Assessment

    experiment_id = fixtures["experiment_id"]
    selector = getattr(selectors, "experiment_feedback_summary", None)
    stats = getattr(selectors, "feedback_stats_by_experiment", None)
    if selector is None and stats is not None:

        def call():
            return stats([experiment_id])

        how = "assessments.selectors.feedback_stats_by_experiment (the home page's per-experiment summary)"
    elif selector is not None:
        from traces.access import Actor
        from traces.models import Experiment

        experiment = Experiment.objects.get(pk=experiment_id)

        def call():
            return list(
                selector(Actor.for_system("bench"), experiment) if _takes_actor(selector) else selector(experiment)
            )

        how = "assessments.selectors.experiment_feedback_summary"
    else:

        def call():
            return list(
                Assessment.objects.filter(experiment_id=experiment_id, kind="feedback", valid=True)
                .values("name")
                .annotate(count=Count("pk"), mean=Avg("numeric_value"), true=Count("pk", filter=Q(numeric_value=1.0)))
                .order_by("name")
            )

        how = "ORM aggregate (no summary selector yet): count, mean of numeric_value, count of 1.0 per name"
    call()  # warm
    timings = []
    for _ in range(max(runs, 5)):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings, how


def _takes_actor(function) -> bool:
    import inspect

    return "actor" in inspect.signature(function).parameters


# --- server and load ------------------------------------------------------------------------


class Server:
    """gunicorn in a subprocess; samples its workers' RSS every half second."""

    def __init__(self, env: dict, port: int):
        self.env, self.port = env, port
        self.process = None
        self.max_rss: dict[int, int] = {}
        self._stop = threading.Event()

    def start(self) -> None:
        DATA.mkdir(exist_ok=True)
        self.log_file = open(DATA / "server.log", "ab")
        env = {**self.env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        self.process = subprocess.Popen(
            [str(Path(PYTHON).parent / "gunicorn"), "-c", "gunicorn.conf.py", "feedbackhub.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=self.log_file,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {DATA / 'server.log'}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError(f"gunicorn did not answer on port {self.port}; see {DATA / 'server.log'}")
        threading.Thread(target=self._sample, daemon=True).start()

    def workers(self) -> list[int]:
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            for pid in self.workers():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                match = re.search(r"VmRSS:\s+(\d+) kB", status)
                if match:
                    self.max_rss[pid] = max(self.max_rss.get(pid, 0), int(match.group(1)) * 1024)

    def cpu_seconds(self) -> float:
        """User + system CPU of the workers so far."""
        total = 0
        for pid in self.workers():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self._stop.set()
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log_file.close()


def prewarm(database_url: str) -> None:
    """Read the bench tables' indexes and the trace table into the OS cache (pg_prewarm), so
    that every scenario measures the steady state rather than a disk that has not been read
    since the data was generated (random trace lookups on a cold 1M-trace index wait on I/O)."""
    import psycopg

    started = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        except psycopg.Error as exc:
            log(f"no pg_prewarm ({exc}); scenarios may start on a cold cache")
            return
        blocks = conn.execute(
            "SELECT coalesce(sum(pg_prewarm(c.oid, 'read')), 0) FROM pg_class c "
            "WHERE c.relnamespace = 'public'::regnamespace "
            "AND (c.relkind = 'i' OR c.relname IN ('traces_trace', 'assessments_assessment'))"
        ).fetchone()[0]
    log(f"prewarmed {blocks * 8 / 1024:,.0f} MiB of indexes and tables in {time.monotonic() - started:.0f} s")


def checkpoint(database_url: str) -> None:
    """Flush PostgreSQL's dirty pages before a scenario, so that it does not pay for the
    write-back of the one before (pgbench's practice; 128 MB of shared_buffers fill quickly)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def postgres_cpu_seconds(database: str) -> float:
    """CPU of the PostgreSQL backends connected to the bench database (the server's connections)."""
    import psycopg

    total = 0
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
            )
        ]
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wrk(script: str, url: str, *, connections: int, duration: float, env: dict) -> dict:
    """One wrk run; the Lua script's done() prints a JSON line with the counts and latencies."""
    threads = min(2, connections)
    cmd = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA / script),
        url,
    ]
    output = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60)
    for line in output.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON ") :])
    raise RuntimeError(f"wrk gave no result: {output.stdout}\n{output.stderr}")


def probe(script: str, url: str, env: dict) -> int:
    """The status of one request as the scenario's script builds it (wrk counts 3xx as success)."""
    probe_script = DATA / "probe.lua"
    probe_script.write_text(
        f'dofile("{LUA / script}")\n'
        "local reported = false\n"
        "response = function(status, headers, body)\n"
        "  if not reported then reported = true; io.write('BENCH_STATUS ', status, ' ', body:sub(1, 300), '\\n') end\n"
        "  wrk.thread:stop()\n"
        "end\n"
        "done = function() end\n"
    )
    output = subprocess.run(
        # wrk runs for its whole -d whatever the script does: 6 s leaves a cold server on a cold
        # database time for its first answer without making every scenario wait long
        ["wrk", "-t", "1", "-c", "1", "-d", "6s", "--timeout", "6s", "-s", str(probe_script), url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    for line in output.stdout.splitlines():
        if line.startswith("BENCH_STATUS "):
            status, _, body = line[len("BENCH_STATUS ") :].partition(" ")
            if not 200 <= int(status) < 300:
                log(f"{url} → {status}: {body}")
            return int(status)
    raise RuntimeError(f"wrk probe failed: {output.stdout}\n{output.stderr}")


def pgbench(database_url: str, duration: float, trace_id: str, experiment_id: int) -> float:
    """TPS of the single-feedback transaction (BEGIN, INSERT assessment, INSERT revision, COMMIT), 8 clients."""
    parts = urllib.parse.urlsplit(database_url)
    script = DATA / "pgbench_feedback.sql"
    script.write_text(
        "\\set r random(1, 9223372036854775806)\n"
        "BEGIN;\n"
        "INSERT INTO assessments_assessment (assessment_id, trace_id, experiment_id, span_id, name, kind, value, "
        "numeric_value, error, rationale, source_type, source_id, metadata, overrides_id, valid, version, "
        "created_by_id, created_by_key_id, create_time, last_update_time, idempotency_key) VALUES "
        f"('a-' || md5(:r::text || ':' || :client_id::text), '{trace_id}', {experiment_id}, NULL, "
        "'user_satisfaction', 'feedback', "
        "'true', 1.0, NULL, '', 'HUMAN', 'pgbench', '{}', NULL, true, 1, NULL, NULL, now(), now(), NULL);\n"
        "INSERT INTO assessments_revision (assessment_id, related_assessment_id, trace_id, experiment_id, action, "
        "channel, actor_user_id, actor_key_id, actor_label, created_at, before, after) VALUES "
        f"('a-' || md5(:r::text || ':' || :client_id::text), NULL, '{trace_id}', {experiment_id}, 'create', "
        "'api', NULL, NULL, 'pgbench', now(), "
        'NULL, \'{"name": "user_satisfaction", "kind": "feedback", "value": true, "error": null, '
        '"rationale": "", "metadata": {}, "source_type": "HUMAN", "source_id": "pgbench", '
        '"span_id": null, "overrides": null, "valid": true, "version": 1}\');\n'
        "COMMIT;\n"
    )
    cmd = [
        "pgbench",
        "-n",
        "-c",
        "8",
        "-j",
        "2",
        "-T",
        str(int(duration)),
        "-f",
        str(script),
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 5432),
        "-U",
        parts.username or "postgres",
        parts.path.lstrip("/"),
    ]
    env = {**os.environ}
    if parts.password:
        env["PGPASSWORD"] = parts.password
    output = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60)
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output.stdout)
    if not match:
        raise RuntimeError(f"pgbench failed: {output.stdout}\n{output.stderr}")
    return float(match.group(1))


def otlp_export(trace_id: bytes, now: int, label: str = "") -> bytes:
    """A serialised ExportTraceServiceRequest of one trace: an AGENT root and 49 LLM spans with
    OpenInference attributes (what the otlp_ingest scenario and bench/profile_feedback.py send)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    spans = []
    for s in range(50):
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=secrets.token_bytes(8),
                parent_span_id=spans[0].span_id if spans else b"",
                name="agent" if s == 0 else f"llm_call_{s}",
                kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=now + s * 1000,
                end_time_unix_nano=now + (50 + s) * 1000,
                attributes=[
                    KeyValue(key="openinference.span.kind", value=AnyValue(string_value="LLM" if s else "AGENT")),
                    KeyValue(key="input.value", value=AnyValue(string_value=f'{{"question": "q{label}{s}"}}')),
                    KeyValue(key="output.value", value=AnyValue(string_value=f"answer {label}{s}")),
                ],
            )
        )
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
    ).SerializeToString()


def write_bodies(fixtures: dict) -> None:
    """Request material the Lua scripts read: trace ids and OTLP protobuf bodies."""
    DATA.mkdir(exist_ok=True)
    (DATA / "trace_ids.txt").write_text("\n".join(fixtures["trace_ids"]) + "\n")
    otlp_dir = DATA / "otlp"
    shutil.rmtree(otlp_dir, ignore_errors=True)
    otlp_dir.mkdir()
    now = time.time_ns()
    for n in range(400):
        # no zero bytes: the Lua script swaps the id with a pattern, and Lua 5.1 patterns stop at NUL
        trace_id = bytes(secrets.choice(range(1, 256)) for _ in range(16))
        (otlp_dir / f"{n:04d}.pb").write_bytes(otlp_export(trace_id, now, f"{n}-"))
        (otlp_dir / f"{n:04d}.tid").write_bytes(trace_id)


# --- the run --------------------------------------------------------------------------------


def summarise(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": [round(value, 2) for value in values],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--spans-per-trace", type=int, default=3)
    parser.add_argument("--feedback-per-trace", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3, help="Runs per scenario (median and spread are reported).")
    parser.add_argument("--duration", type=float, default=8, help="Seconds per throughput run.")
    parser.add_argument("--latency-duration", type=float, default=5, help="Seconds per latency run.")
    parser.add_argument("--port", type=int, default=0, help="Default: a free port.")
    parser.add_argument("--only", help="Comma-separated scenario names: " + ", ".join([*SCENARIOS, "pgbench"]))
    parser.add_argument("--quick", action="store_true", help="10,000 traces, 2 runs of 3 s: for development.")
    parser.add_argument("--label", default="", help="Free text stored with the results (e.g. the load).")
    parser.add_argument("--skip-setup", action="store_true", help="No migrate/collectstatic (already done).")
    args = parser.parse_args(argv)
    if args.quick:
        args.traces, args.runs, args.duration, args.latency_duration = min(args.traces, 10_000), 2, 3, 2
    only = set(args.only.split(",")) if args.only else {*SCENARIOS, "pgbench"}
    unknown = only - {*SCENARIOS, "pgbench"}
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if not args.port:
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            args.port = free.getsockname()[1]
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install -y wrk; `make bench` does it)")

    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "DJANGO_SECURE_COOKIES": "false",
        # plain HTTP over loopback: no redirect to https
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_HSTS_SECONDS": "0",
        "DJANGO_LOG_LEVEL": "WARNING",
        "DB_CONN_MAX_AGE": os.environ.get("DB_CONN_MAX_AGE", "600"),
        # The courtesy rate limits would cap the load at a few hundred requests per second.
        "FEEDBACKHUB_RATE_API_KEY": "",
        "FEEDBACKHUB_RATE_USER": "",
    }
    sys.path.insert(0, str(BENCH))
    from ensure_database import ensure_database

    if ensure_database(args.database_url):
        log("created the bench database")
    if not args.skip_setup:
        log("migrate + collectstatic")
        run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], env)
        run([PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"], env)
    django_setup(env)
    fixtures = prepare_data(args, env)
    log(f"data: {fixtures['counts']['traces']:,} traces, {fixtures['counts']['assessments']:,} assessments")
    write_bodies(fixtures)
    prewarm(args.database_url)
    database = urllib.parse.urlsplit(args.database_url).path.lstrip("/")

    wrk_env = {
        **os.environ,
        "BENCH_KEY": fixtures["api_key"],
        "BENCH_DATA": str(DATA),
        "BENCH_EXPERIMENT": str(fixtures["ingest_experiment_id"]),
        "BENCH_SESSION": fixtures["session"],
    }
    base = f"http://127.0.0.1:{args.port}"
    experiment_id = fixtures["experiment_id"]
    search = urllib.parse.urlencode(
        {"experiment_id": experiment_id, "filter": "feedback.user_satisfaction = false", "max_results": 100}
    )
    span_search = urllib.parse.urlencode(
        {
            "experiment_id": experiment_id,
            "filter": "span.type = 'TOOL' AND feedback.user_satisfaction = false",
            "max_results": 100,
        }
    )
    plans = {
        # name: (lua script, url, connections, duration, value from result)
        "single_feedback": ("feedback.lua", f"{base}/api/v1/traces", THROUGHPUT_CONNECTIONS, args.duration, "rps"),
        "mlflow_feedback": (
            "mlflow_feedback.lua",
            f"{base}/api/3.0/mlflow/traces",
            THROUGHPUT_CONNECTIONS,
            args.duration,
            "rps",
        ),
        "batch_feedback": ("batch.lua", f"{base}/api/v1/feedback:batch", 4, args.duration, "items"),
        "trace_ingest": ("ingest.lua", f"{base}/api/v1/traces", THROUGHPUT_CONNECTIONS, args.duration, "rps"),
        "otlp_ingest": ("otlp.lua", f"{base}/v1/traces", THROUGHPUT_CONNECTIONS, args.duration, "spans"),
        "get_trace": ("get.lua", f"{base}/api/v1/traces/{fixtures['trace_50']}", 1, args.latency_duration, "p50"),
        "trace_page": ("page.lua", f"{base}/traces/{fixtures['trace_1000']}/", 1, args.latency_duration, "p50"),
        "search_false": ("get.lua", f"{base}/api/v1/traces?{search}", 1, args.latency_duration, "p50"),
        "search_span": ("get.lua", f"{base}/api/v1/traces?{span_search}", 1, args.latency_duration, "p50"),
        "trace_list": ("page.lua", f"{base}/experiments/{experiment_id}/traces/", 1, args.latency_duration, "p50"),
    }
    started_at = datetime.now(timezone.utc)
    load_before = os.getloadavg()
    results: dict[str, dict] = {}
    raw: dict[str, list] = {}
    server = Server(env, args.port)
    server.start()
    log(f"gunicorn up on :{args.port} with workers {server.workers()}")
    try:
        for name, (script, url, connections, duration, measure) in plans.items():
            if name not in only:
                continue
            checkpoint(args.database_url)
            status = probe(script, url, wrk_env)
            if not 200 <= status < 300:
                log(f"{name}: one request answered {status}, skipping the scenario (see the output above)")
                results[name] = {"error": f"HTTP {status}"}
                continue
            # Warm-up; longer before the first scenario, which meets a fresh server and database
            # caches still cold from the generator (the first single-feedback runs measured half speed).
            wrk(script, url, connections=connections, duration=min(2 if results else 8, duration), env=wrk_env)
            values, runs = [], []
            for attempt in range(args.runs):
                cpu_before = server.cpu_seconds()
                pg_before = postgres_cpu_seconds(database)
                result = wrk(script, url, connections=connections, duration=duration, env=wrk_env)
                result["server_cpu_s"] = round(server.cpu_seconds() - cpu_before, 2)
                result["postgres_cpu_s"] = round(postgres_cpu_seconds(database) - pg_before, 2)
                result["loadavg"] = os.getloadavg()[0]
                runs.append(result)
                seconds = result["duration_us"] / 1e6
                ok = result["requests"] - result["non2xx"] - result["errors"]
                if measure == "rps":
                    values.append(ok / seconds)
                elif measure == "items":
                    values.append(ok * 1000 / seconds)
                elif measure == "spans":
                    values.append(ok * 50 / seconds)
                else:
                    values.append(result["p50_us"] / 1000)
                log(
                    f"{name} run {attempt + 1}: {values[-1]:,.1f} {SCENARIOS[name][3]} "
                    f"(p99 {result['p99_us'] / 1000:.1f} ms, non-2xx {result['non2xx']}, errors {result['errors']}, "
                    f"load {result['loadavg']:.2f})"
                )
                if "pgbench" in only and name == "single_feedback":
                    tps = pgbench(args.database_url, duration, fixtures["trace_ids"][0], experiment_id)
                    raw.setdefault("pgbench", []).append(tps)
                    log(f"pgbench run {attempt + 1}: {tps:,.0f} TPS")
            results[name] = {**summarise(values), "detail": runs}
        if "summary" in only:
            log("summary")
            timings, how = summary_timing(fixtures, args.runs)
            results["summary"] = {**summarise(timings), "how": how}
        if only & {"insights_page", "insights_metrics", "insights_mlflow_metrics", "insights_late"}:
            from insights import measure as measure_insights

            log("insights")
            results.update(measure_insights(experiment_id, fixtures["staff"], max(args.runs, 3)))
        if "trace_page" in only:
            results["trace_page"]["queries"] = detail_page_queries(fixtures)
        if "pgbench" in only and "pgbench" not in raw:
            raw["pgbench"] = [
                pgbench(args.database_url, args.duration, fixtures["trace_ids"][0], experiment_id)
                for _ in range(args.runs)
            ]
    finally:
        server.stop()
    if raw.get("pgbench"):
        results["pgbench"] = summarise(raw["pgbench"])
        if "single_feedback" in results:
            results["pgbench"]["fraction"] = results["single_feedback"]["median"] / results["pgbench"]["median"]
    results["memory"] = {
        "max_rss_mb_per_worker": {str(pid): round(rss / 2**20, 1) for pid, rss in server.max_rss.items()}
    }
    report = {
        "started_at": started_at.isoformat(),
        "machine": machine(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "label": args.label,
        "options": {key: value for key, value in vars(args).items()},
        "data": fixtures["counts"],
        "gunicorn": gunicorn_settings(),
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    stamp = started_at.strftime("%Y-%m-%d-%H%M%S")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    table = markdown(report)
    (RESULTS / f"{stamp}.md").write_text(table)
    print(table)
    log(f"wrote {RESULTS / (stamp + '.json')} and .md")
    return 0


def machine() -> dict:
    cpu = ""
    try:
        cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def gunicorn_settings() -> dict:
    return {key: os.environ.get(key) for key in os.environ if key.startswith("GUNICORN_")} or {
        "defaults": "gunicorn.conf.py"
    }


def markdown(report: dict) -> str:
    results = report["results"]
    lines = [
        f"## FeedbackHub bench {report['started_at'][:16]} UTC",
        "",
        f"{report['machine']['cores']} cores ({report['machine']['cpu']}), {report['data']['traces']:,} traces / "
        f"{report['data']['assessments']:,} assessments in the bench experiment; load average before "
        f"{report['loadavg_before'][0]:.2f}, after {report['loadavg_after'][0]:.2f}. "
        f"Median of {report['options']['runs']} runs (min–max).",
        "",
        "| what | target | FeedbackHub | spread | met | MLflow 3.18, same machine |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, (what, target, mlflow, unit, (kind, threshold)) in SCENARIOS.items():
        result = results.get(name)
        if result is None:
            continue
        if "error" in result:
            lines.append(f"| {what} | {target} | not measured: {result['error']} | — | **no** | {mlflow} |")
            continue
        median = result["median"]
        met = median >= threshold if kind == "min" else median <= threshold
        extra = ""
        if name == "single_feedback":
            p99 = statistics.median(run["p99_us"] / 1000 for run in result["detail"])
            met = met and p99 <= 50
            extra = f", p99 {p99:.1f} ms"
        if name == "trace_page" and result.get("queries") is not None:
            met = met and result["queries"] <= 10
            extra = f", {result['queries']} queries"
        lines.append(
            f"| {what} | {target} | {median:,.1f} {unit}{extra} | {result['min']:,.1f}–{result['max']:,.1f} | "
            f"{'yes' if met else '**no**'} | {mlflow} |"
        )
    if "pgbench" in results:
        pg = results["pgbench"]
        fraction = pg.get("fraction")
        lines.append(
            f"| pgbench, the single-feedback transaction, 8 clients | — | {pg['median']:,.0f} TPS | "
            f"{pg['min']:,.0f}–{pg['max']:,.0f} | — | — |"
        )
        if fraction is not None:
            lines.append(
                f"| single feedback as a fraction of pgbench | ≥ 0.2 | {fraction:.2f} | — | "
                f"{'yes' if fraction >= 0.2 else '**no**'} | — |"
            )
    rss = results.get("memory", {}).get("max_rss_mb_per_worker", {})
    if rss:
        worst = max(rss.values())
        lines.append(
            f"| server memory, every worker | ≤ 300 MB RSS | max {worst:.0f} MB | — | "
            f"{'yes' if worst <= 300 else '**no**'} | — |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
