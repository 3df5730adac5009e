"""Profile one feedback create in-process: CPU per request, queries per request, cProfile top.

    DATABASE_URL=postgres://…/fh_perf_x .venv/bin/python bench/profile_feedback.py [--requests 2000] [--mlflow]

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
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--mlflow", action="store_true", help="the MLflow-protocol create instead")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--no-profile", action="store_true", help="only the CPU and query figures")
    parser.add_argument("--sort", default="cumulative", help="pstats order: cumulative, tottime…")
    parser.add_argument("--callees", help="also print what functions matching this name call")
    args = parser.parse_args()

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

    def post():
        trace_id = random.choice(trace_ids)
        value = random.random() < 0.7
        if args.mlflow:
            now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
            body = {
                "assessment": {
                    "assessment_name": "user_satisfaction",
                    "trace_id": trace_id,
                    "source": {"source_type": "HUMAN", "source_id": "user_123"},
                    "create_time": now,
                    "last_update_time": now,
                    "feedback": {"value": value},
                    "rationale": "bench",
                    "valid": True,
                }
            }
            path = f"/api/3.0/mlflow/traces/{trace_id}/assessments"
        else:
            body = {
                "name": "user_satisfaction",
                "value": value,
                "rationale": "bench",
                "source": {"source_type": "HUMAN", "source_id": f"bench-user-{random.randint(1, 1000)}"},
            }
            path = f"/api/v1/traces/{trace_id}/feedback"
        response = client.post(path, json.dumps(body), content_type="application/json")
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
