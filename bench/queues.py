"""Review-queue bench (issue 14): `next` p50 ≤ 20 ms and answer ≤ 30 ms on PostgreSQL with a queue
of 100,000 items and 10 reviewers working at once.

    .venv/bin/python bench/queues.py                  # 100,000 items, 10 reviewers, 20 s
    .venv/bin/python bench/queues.py --items 10000 --seconds 5
    BENCH_QUEUES_DATABASE_URL=postgres://…/fh_other .venv/bin/python bench/queues.py

What it does: creates the database if missing (default postgres://postgres@127.0.0.1:5432/
fh_bench_queues), migrates, generates the traces once (`generate_traces`, 1 span each) and a
queue of --items items asking one boolean definition with N = 2 (reused by later runs: answered
items stay complete, so each run tops the queue's open items up with fresh traces when fewer than
--items are open). Then --reviewers threads, each a signed-in reviewer with its own database
connection, call the native API in a loop for --seconds: `POST /api/v1/queues/{id}/next`, then
`POST …/items/{trace_id}/answers`. The requests go through Django's full stack (middleware,
session + CSRF-exempt test client, DRF, the services) in-process, without HTTP parsing or a
network hop; DEBUG off, rate limits off. Prints p50/p95/p99 per call and the answers per second,
and writes bench/results/queues-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/fh_bench_queues"
EXPERIMENT = "bench-queues"
TARGETS = {"next": 20.0, "answer": 30.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--reviewers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()

    url = os.environ.get("BENCH_QUEUES_DATABASE_URL", DEFAULT_DATABASE_URL)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_HSTS_SECONDS": "0",
        "FEEDBACKHUB_RATE_USER": "",
        "FEEDBACKHUB_RATE_API_KEY": "",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    subprocess.run([sys.executable, str(ROOT / "bench" / "ensure_database.py")], check=True, env=env)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], check=True, env=env, cwd=ROOT)

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedbackhub.settings")
    import django

    django.setup()
    queue, users = prepare(args.items, args.reviewers, env)
    figures = drive(queue, users, args.seconds)
    report(figures, args)
    return 0


def prepare(items: int, reviewers: int, env: dict):
    from django.contrib.auth import get_user_model

    from assessments.definitions import services as definition_services
    from assessments.definitions.models import Definition
    from assessments.queues import services
    from assessments.queues.models import Queue, QueueItem
    from traces.access import Actor
    from traces.models import Experiment, Membership, Trace

    system = Actor.for_system("bench")
    experiment = Experiment.objects.filter(name=EXPERIMENT).first()
    have = Trace.objects.filter(experiment=experiment).count() if experiment else 0
    queue = Queue.objects.filter(experiment=experiment, name="bench").first() if experiment else None
    open_items = QueueItem.objects.filter(queue=queue, complete=False, removed_at__isnull=True).count() if queue else 0
    free = (have - QueueItem.objects.filter(queue=queue).count()) if queue else have
    needed = max(items - open_items - free, 0) if queue else max(items - have, 0)
    if needed:
        print(f"generating {needed} traces …", flush=True)
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "generate_traces",
                "--experiment",
                EXPERIMENT,
                "--traces",
                str(needed),
                "--spans-per-trace",
                "1",
                "--feedback-per-trace",
                "0",
                "--no-progress",
            ],
            check=True,
            env=env,
            cwd=ROOT,
        )
    experiment = Experiment.objects.get(name=EXPERIMENT)
    if not Definition.objects.filter(experiment=experiment, name="bench_correct").exists():
        definition_services.create_definition(experiment=experiment, actor=system, name="bench_correct", type="boolean")
    if queue is None:
        queue = services.create_queue(
            experiment=experiment, actor=system, name="bench", questions=["bench_correct"], answers_per_item=2
        )
    open_items = QueueItem.objects.filter(queue=queue, complete=False, removed_at__isnull=True).count()
    if open_items < items:
        print(f"adding {items - open_items} traces to the queue …", flush=True)
        queued = set(QueueItem.objects.filter(queue=queue).values_list("trace_id", flat=True))
        fresh = [t for t in Trace.objects.filter(experiment=experiment).values_list("pk", flat=True) if t not in queued]
        fresh = fresh[: items - open_items]
        for start in range(0, len(fresh), 50_000):
            services.add_items(queue=queue, actor=system, trace_ids=fresh[start : start + 50_000])
    users = []
    for n in range(reviewers):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-reviewer-{n}")
        Membership.objects.get_or_create(user=user, experiment=experiment, defaults={"role": "reviewer"})
        users.append(user)
    total = QueueItem.objects.filter(queue=queue, removed_at__isnull=True).count()
    open_items = QueueItem.objects.filter(queue=queue, complete=False, removed_at__isnull=True).count()
    print(f"queue {queue.pk}: {total} items, {open_items} open; {reviewers} reviewers", flush=True)
    return queue, users


def drive(queue, users, seconds: float) -> dict:
    from django.db import connections
    from rest_framework.test import APIClient

    timings: dict[str, list[float]] = {"next": [], "answer": []}
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(users))
    stop_at = [0.0]

    def reviewer(user):
        client = APIClient()
        client.force_login(user)
        mine = {"next": [], "answer": []}
        try:
            # warm-up (URL resolution, templates of the schema, connection): one call, not counted
            client.get(f"/api/v1/queues/{queue.pk}/progress")
            start.wait()
            if not stop_at[0]:
                stop_at[0] = time.monotonic() + seconds
            while time.monotonic() < stop_at[0]:
                t0 = time.perf_counter()
                response = client.post(f"/api/v1/queues/{queue.pk}/next")
                mine["next"].append((time.perf_counter() - t0) * 1000)
                if response.status_code == 204:
                    break
                if response.status_code != 200:
                    failures.append(f"next {response.status_code} {response.content[:200]!r}")
                    break
                trace_id = response.json()["item"]["trace_id"]
                t0 = time.perf_counter()
                answered = client.post(
                    f"/api/v1/queues/{queue.pk}/items/{trace_id}/answers",
                    {"answers": {"bench_correct": True}},
                    format="json",
                )
                mine["answer"].append((time.perf_counter() - t0) * 1000)
                if answered.status_code != 201:
                    failures.append(f"answer {answered.status_code} {answered.content[:200]!r}")
                    break
        finally:
            connections.close_all()
            with lock:
                for key in timings:
                    timings[key] += mine[key]

    threads = [threading.Thread(target=reviewer, args=(user,)) for user in users]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    return {"timings": timings, "failures": failures, "elapsed": elapsed}


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def report(figures: dict, args) -> None:
    timings, failures = figures["timings"], figures["failures"]
    load = os.getloadavg()[0]
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "items": args.items,
        "reviewers": args.reviewers,
        "seconds": round(figures["elapsed"], 1),
        "load_average_1m": round(load, 2),
        "failures": failures[:10],
        "answers_per_second": round(len(timings["answer"]) / figures["elapsed"], 1),
    }
    print(f"\n{args.reviewers} reviewers, {args.items} items, {figures['elapsed']:.1f} s, load {load:.1f}")
    print("call     count    p50 ms   p95 ms   p99 ms   target (p50)")
    for name, values in timings.items():
        p50, p95, p99 = (_pct(values, p) for p in (50, 95, 99))
        verdict = "met" if p50 <= TARGETS[name] else "MISSED"
        result[name] = {"count": len(values), "p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "p99_ms": round(p99, 2)}
        result[name]["mean_ms"] = round(statistics.fmean(values), 2) if values else None
        print(f"{name:7} {len(values):6} {p50:9.1f} {p95:8.1f} {p99:8.1f}   ≤ {TARGETS[name]:.0f} ms: {verdict}")
    print(f"answers/s: {result['answers_per_second']}")
    if failures:
        print("failures:", *failures[:5], sep="\n  ")
    out = ROOT / "bench" / "results" / f"queues-{datetime.now(timezone.utc):%Y-%m-%dT%H%M}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
