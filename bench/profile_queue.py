"""Profile a review queue's `next` and answer in-process: CPU per call, the queries of each, cProfile top.

    DATABASE_URL=postgres://…/fh_bench_queues .venv/bin/python bench/profile_queue.py [--calls 300]
        [--only next|answer] [--no-profile]

Runs against the database bench/queues.py prepared (its `bench` queue and `bench-reviewer-*`
accounts; run that first), with production settings (DEBUG off, rate limits off), through the
full WSGI stack with Django's test client signed in as one reviewer (session cookie and CSRF
token, as the focus page sends them). Each round is `POST /api/v1/queues/{id}/next` then
`POST …/items/{trace_id}/answers`. Prints the queries of one `next` and one answer, the CPU
milliseconds per call (process clock, medians of the rounds), then the cProfile top by
cumulative CPU time of the calls chosen with --only (both by default).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="rounds of next + answer")
    parser.add_argument("--only", choices=["next", "answer"], help="profile this call only")
    parser.add_argument("--reviewer", default="bench-reviewer-0")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--sort", default="cumulative", help="pstats order: cumulative, tottime…")
    parser.add_argument("--no-profile", action="store_true", help="only the CPU and query figures")
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
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils.crypto import get_random_string

    from assessments.queues.models import Queue

    queue = Queue.objects.get(name="bench", experiment__name="bench-queues")
    user = get_user_model().objects.get(username=args.reviewer)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    token = get_random_string(32)  # a CSRF secret, as the cookie of a signed-in page carries it
    client.cookies["csrftoken"] = token
    csrf = {"HTTP_X_CSRFTOKEN": token}
    next_url = f"/api/v1/queues/{queue.pk}/next"
    body = '{"answers": {"bench_correct": true}}'

    def take() -> str:
        response = client.post(next_url, content_type="application/json", **csrf)
        assert response.status_code == 200, (response.status_code, response.content[:300])
        return response.json()["item"]["trace_id"]

    def give(trace_id: str) -> None:
        url = f"/api/v1/queues/{queue.pk}/items/{trace_id}/answers"
        response = client.post(url, body, content_type="application/json", **csrf)
        assert response.status_code == 201, (response.status_code, response.content[:300])

    give(take())  # warm-up: caches, prepared plans
    with CaptureQueriesContext(connection) as nxt:
        trace_id = take()
    with CaptureQueriesContext(connection) as answered:
        give(trace_id)
    for title, captured in (("next", nxt), ("answer", answered)):
        print(f"--- {title}: {len(captured)} queries")
        for query in captured.captured_queries:
            print(f"  {query['time']:>6}  {query['sql'][:220]}")

    cpu: dict[str, list[float]] = {"next": [], "answer": []}
    profile = cProfile.Profile(time.process_time)  # CPU time: waits for the database do not count
    profiling = not args.no_profile
    for _ in range(args.calls):
        if profiling and args.only in (None, "next"):
            profile.enable()
        started = time.process_time()
        trace_id = take()
        cpu["next"].append((time.process_time() - started) * 1000)
        profile.disable()
        if profiling and args.only in (None, "answer"):
            profile.enable()
        started = time.process_time()
        give(trace_id)
        cpu["answer"].append((time.process_time() - started) * 1000)
        profile.disable()
    label = " (under cProfile)" if profiling else ""
    for name, values in cpu.items():
        print(f"{name}: CPU p50 {statistics.median(values):.2f} ms, mean {statistics.fmean(values):.2f} ms{label}")
    if profiling:
        pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
