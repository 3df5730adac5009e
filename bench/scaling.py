"""The figures of docs/SCALING.md: one vs two app servers, reads with and without a replica.

    .venv/bin/python bench/scaling.py --traces 50000 --duration 8 --runs 2

On a private PostgreSQL primary and a `pg_basebackup -R` streaming replica (initdb in a temporary
folder, own ports; nothing shared is touched), with the data and Lua scripts of bench/run.py:

1. ingest (`ingest.lua`, 5-span traces) and single feedback (`feedback.lua`) throughput, 8
   keep-alive wrk connections in total, against: one gunicorn (per-host cache), one gunicorn with
   Redis, two gunicorns with Redis (4 connections each, counts added). Rate limits stay ON (set
   high) so the shared counters are paid for on every request;
2. p50/p99 of the trace search API and the trace list page (one connection) while 4 other
   connections ingest traces, with reads on the primary and then on the replica;
3. the capacity arithmetic: bytes per span and per trace on disk, rows per second per core.

Writes bench/results/scaling-<date>.json. Every process shares this machine's cores.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import run as bench  # noqa: E402  (bench/run.py: data, server, wrk)

from tests.reliability.servers import PostgresInstance, Replica, free_port  # noqa: E402


def redis_server(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        cwd=folder,
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return process, f"redis://127.0.0.1:{port}/0"


def throughput(servers: list[bench.Server], script: str, path: str, duration: float, env: dict) -> dict:
    """8 connections split over the servers, run at once; requests/s added, p99 the worst."""
    results: list[dict] = []
    per_server = 8 // len(servers)

    def drive(server):
        results.append(
            bench.wrk(
                script, f"http://127.0.0.1:{server.port}{path}", connections=per_server, duration=duration, env=env
            )
        )

    threads = [threading.Thread(target=drive, args=(server,)) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "rps": sum(r["requests"] / (r["duration_us"] / 1e6) for r in results),
        "p99_ms": max(r["p99_us"] for r in results) / 1000,
        "non2xx": sum(r["non2xx"] + r["errors"] for r in results),
    }


def latency_under_writes(server: bench.Server, script: str, path: str, duration: float, env: dict) -> dict:
    """One connection reading while 4 connections ingest traces on the same server."""
    background = threading.Thread(
        target=bench.wrk,
        args=("ingest.lua", f"http://127.0.0.1:{server.port}/api/v1/traces"),
        kwargs={"connections": 4, "duration": duration + 2, "env": env},
    )
    background.start()
    time.sleep(1)
    result = bench.wrk(script, f"http://127.0.0.1:{server.port}{path}", connections=1, duration=duration, env=env)
    background.join()
    return {"p50_ms": result["p50_us"] / 1000, "p99_ms": result["p99_us"] / 1000, "non2xx": result["non2xx"]}


def median_of(runs: list[dict]) -> dict:
    return {key: round(statistics.median(run[key] for run in runs), 2) for key in runs[0]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=50_000)
    parser.add_argument("--spans-per-trace", type=int, default=3)
    parser.add_argument("--feedback-per-trace", type=int, default=2)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--only", choices=["writes", "reads"], help="One half of the figures.")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="fh-scaling-"))
    primary = PostgresInstance()
    replica = redis = None
    servers: list[bench.Server] = []
    try:
        primary.init()
        env = {
            **os.environ,
            "DATABASE_URL": primary.url,
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "DJANGO_SECURE_COOKIES": "false",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_HSTS_SECONDS": "0",
            "DJANGO_LOG_LEVEL": "WARNING",
            "DB_CONN_MAX_AGE": "600",
            # On, but out of reach: every request pays for its counter, none is refused.
            "FEEDBACKHUB_RATE_API_KEY": "100000000/minute",
            "FEEDBACKHUB_RATE_USER": "100000000/minute",
        }
        for name in ("FEEDBACKHUB_REDIS_URL", "DATABASE_REPLICA_URLS"):
            env.pop(name, None)
        bench.log(f"primary on port {primary.port}; migrate, {args.traces:,} traces")
        bench.run([bench.PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], env)
        bench.run([bench.PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"], env)
        bench.django_setup(env)
        started = time.monotonic()
        fixtures = bench.prepare_data(args, env)
        generated_s = time.monotonic() - started
        bench.write_bodies(fixtures)
        sizes = primary.query(
            "SELECT (SELECT count(*) FROM traces_span), (SELECT count(*) FROM traces_trace), "
            "(SELECT count(*) FROM assessments_assessment), "
            # the span table is partitioned by month: its size is its partitions'
            "(SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('traces_span')), "
            "pg_total_relation_size('traces_trace'), pg_total_relation_size('assessments_assessment'), "
            "pg_database_size('feedbackhub')"
        )[0]
        replica = Replica(primary)
        replica.init()
        bench.log(f"replica on port {replica.port}")
        redis, redis_url = redis_server(folder)
        wrk_env = {
            **os.environ,
            "BENCH_KEY": fixtures["api_key"],
            "BENCH_DATA": str(bench.DATA),
            "BENCH_EXPERIMENT": str(fixtures["ingest_experiment_id"]),
            "BENCH_SESSION": fixtures["session"],
        }
        report: dict = {
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": bench.machine(),
            "data": {
                "traces": int(sizes[1]),
                "spans": int(sizes[0]),
                "assessments": int(sizes[2]),
                "span_bytes": int(sizes[3]),
                "trace_bytes": int(sizes[4]),
                "assessment_bytes": int(sizes[5]),
                "database_bytes": int(sizes[6]),
                "generate_seconds": round(generated_s, 1),
            },
            "args": vars(args),
        }

        def start(**extra) -> bench.Server:
            server = bench.Server({**env, **extra}, free_port())
            server.start()
            servers.append(server)
            return server

        def stop_all():
            while servers:
                servers.pop().stop()

        writes = {}
        write_configs = (
            ()
            if args.only == "reads"
            else (
                ("1 server, per-host cache", 1, {}),
                ("1 server, Redis", 1, {"FEEDBACKHUB_REDIS_URL": redis_url}),
                ("2 servers, Redis", 2, {"FEEDBACKHUB_REDIS_URL": redis_url}),
            )
        )
        for label, count, extra in write_configs:
            group = [start(**extra) for _ in range(count)]
            row = {}
            for name, script, path in (
                ("ingest", "ingest.lua", "/api/v1/traces"),
                ("feedback", "feedback.lua", "/api/v1/traces"),
            ):
                runs = [throughput(group, script, path, args.duration, wrk_env) for _ in range(args.runs)]
                row[name] = median_of(runs)
                bench.log(f"{label}: {name} {row[name]}")
            writes[label] = row
            stop_all()
        report["writes"] = writes

        search = urllib.parse.urlencode(
            {
                "experiment_id": fixtures["experiment_id"],
                "filter": "feedback.user_satisfaction = false",
                "max_results": 50,
            }
        )
        reads = {}
        read_configs = (
            ()
            if args.only == "writes"
            else (
                ("primary only", {}),
                ("with a replica", {"DATABASE_REPLICA_URLS": replica.url}),
            )
        )
        for label, extra in read_configs:
            server = start(**extra)
            row = {}
            for name, script, path in (
                ("search", "get.lua", f"/api/v1/traces?{search}"),
                ("list_page", "page.lua", f"/experiments/{fixtures['experiment_id']}/traces/"),
            ):
                runs = [latency_under_writes(server, script, path, args.duration, wrk_env) for _ in range(args.runs)]
                row[name] = median_of(runs)
                bench.log(f"{label}: {name} {row[name]}")
            reads[label] = row
            stop_all()
        report["reads_under_write_load"] = reads

        bench.RESULTS.mkdir(exist_ok=True)
        target = bench.RESULTS / f"scaling-{datetime.now():%Y-%m-%d-%H%M}.json"
        target.write_text(json.dumps(report, indent=2) + "\n")
        bench.log(f"wrote {target}")
        print(json.dumps(report, indent=2))
    finally:
        for server in servers:
            server.stop()
        if redis is not None:
            redis.terminate()
        if replica is not None:
            replica.destroy()
        primary.destroy()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
