"""Profile one write request in-process: CPU per request, queries per request, cProfile top.

    DATABASE_URL=postgres://…/fh_bench .venv/bin/python bench/profile_feedback.py [--requests 2000]
        [--scenario feedback|mlflow|batch|ingest|otlp]

The scenarios send what bench/run.py's Lua scripts send: one feedback (native or MLflow
protocol), a batch of 1,000 feedback items, a new trace of 5 spans, an OTLP protobuf export
of 50 spans.

Runs the production settings (DEBUG off, rate limits off) against an existing database
that holds at least one experiment with traces; drives the full WSGI stack (middleware,
DRF, the view, the services) with Django's test client, which costs about what gunicorn's
request parsing does. Prints CPU milliseconds per request (process clock), the queries of
one request, then the cProfile top 30 by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--scenario", default="feedback", choices=["feedback", "mlflow", "batch", "ingest", "otlp"])
    parser.add_argument("--mlflow", action="store_true", help="same as --scenario mlflow")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--no-profile", action="store_true", help="only the CPU and query figures")
    parser.add_argument("--sort", default="cumulative", help="pstats order: cumulative, tottime…")
    parser.add_argument("--callees", help="also print what functions matching this name call")
    args = parser.parse_args()
    if args.mlflow:
        args.scenario = "mlflow"

    os.environ.update(
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="profile-" + "x" * 50,
        DJANGO_ALLOWED_HOSTS="testserver",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_COOKIES="false",
        DJANGO_HSTS_SECONDS="0",
        DJANGO_LOG_LEVEL="WARNING",
        DB_CONN_MAX_AGE="600",
        FEEDBACKHUB_RATE_API_KEY="",
        FEEDBACKHUB_RATE_USER="",
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedbackhub.settings")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from traces import services as trace_services
    from traces.access import Actor
    from traces.models import Experiment, Trace

    experiment = Experiment.objects.order_by("pk").first()
    trace_ids = list(Trace.objects.filter(experiment=experiment).values_list("pk", flat=True)[:5000])
    _, raw_key = trace_services.create_api_key(
        experiments=[experiment], label="profile", actor=Actor.for_system("profile")
    )
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw_key}")

    def feedback_body(trace_id):
        return {
            "name": "user_satisfaction",
            "value": random.random() < 0.7,
            "rationale": "bench",
            "source": {"source_type": "HUMAN", "source_id": f"bench-user-{random.randint(1, 1000)}"},
        }

    def mlflow_request():
        trace_id = random.choice(trace_ids)
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        body = {
            "assessment": {
                "assessment_name": "user_satisfaction",
                "trace_id": trace_id,
                "source": {"source_type": "HUMAN", "source_id": "user_123"},
                "create_time": now,
                "last_update_time": now,
                "feedback": {"value": random.random() < 0.7},
                "rationale": "bench",
                "valid": True,
            }
        }
        return f"/api/3.0/mlflow/traces/{trace_id}/assessments", json.dumps(body), "application/json", {}

    def feedback_request():
        trace_id = random.choice(trace_ids)
        path = f"/api/v1/traces/{trace_id}/feedback"
        return path, json.dumps(feedback_body(trace_id)), "application/json", {}

    def batch_request():
        values = [lambda: True, lambda: round(random.random(), 3), lambda: "friendly"]
        names = ["user_satisfaction", "relevance", "tone"]
        items = []
        for _ in range(1000):
            n = random.randrange(3)
            items.append(
                {
                    "trace_id": random.choice(trace_ids),
                    "name": names[n],
                    "value": values[n](),
                    "source": {"source_type": "LLM_JUDGE", "source_id": "bench-judge"},
                }
            )
        return "/api/v1/feedback:batch", json.dumps({"items": items}), "application/json", {}

    def ingest_request():
        start = time.time_ns()
        root = secrets.token_hex(6) + "0000"
        spans = [
            {
                "span_id": root[:12] + f"{n:04x}",
                "parent_span_id": None if n == 0 else root,
                "name": "rag_pipeline" if n == 0 else f"step_{n}",
                "span_type": "CHAIN" if n == 0 else "LLM",
                "start_time_ns": start + n * 1_000_000,
                "end_time_ns": start + (n + 1) * 1_000_000 + (5_000_000 if n == 0 else 0),
                "status_code": "OK",
                "inputs": {"question": "How do I rotate an API key?", "step": n},
                "outputs": {"answer": "Create a new key, deploy it, then revoke the old one.", "step": n},
                "attributes": {"model": "gpt-4o-mini"},
            }
            for n in range(5)
        ]
        body = {
            "experiment_id": str(experiment.pk),
            "trace_id": "tr-" + secrets.token_hex(16),
            "metadata": {"mlflow.trace.session": "bench-session", "mlflow.trace.user": "bench-user"},
            "spans": spans,
        }
        return "/api/v1/traces", json.dumps(body), "application/json", {}

    def otlp_request():
        from run import otlp_export  # bench/run.py: the body the otlp_ingest scenario sends

        body = otlp_export(secrets.token_bytes(16), time.time_ns())
        return "/v1/traces", body, "application/x-protobuf", {"HTTP_X_MLFLOW_EXPERIMENT_ID": str(experiment.pk)}

    make = {
        "feedback": feedback_request,
        "mlflow": mlflow_request,
        "batch": batch_request,
        "ingest": ingest_request,
        "otlp": otlp_request,
    }[args.scenario]
    # Bodies are built before the clock starts: only the server side is measured. Traces are
    # new in every request, so those bodies are never reused.
    fresh = args.scenario in ("ingest", "otlp")
    bodies = [make() for _ in range(2 * args.requests + 51 if fresh else min(args.requests, 500))]

    def post():
        path, body, content_type, headers = bodies.pop() if fresh else random.choice(bodies)
        response = client.post(path, body, content_type=content_type, **headers)
        assert response.status_code in (200, 201), (response.status_code, response.content[:300])

    for _ in range(50):  # warm: key cache, last_used_at, compiled paths
        post()
    with CaptureQueriesContext(connection) as captured:
        post()
    print(f"queries per request: {len(captured)}")
    for query in captured:
        print("   ", query["sql"][:160])

    started = time.process_time()
    for _ in range(args.requests):
        post()
    cpu = time.process_time() - started
    print(f"CPU per request (this process, no profiler): {cpu / args.requests * 1000:.3f} ms")

    if args.no_profile:
        return
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(args.requests):
        post()
    profiler.disable()
    stats = pstats.Stats(profiler).sort_stats(args.sort)
    stats.print_stats(args.top)
    if args.callees:
        stats.print_callees(args.callees)


if __name__ == "__main__":
    main()
