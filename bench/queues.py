"""Review-queue bench (issue 14): `next` p50 ≤ 20 ms and answer ≤ 30 ms on PostgreSQL with a queue
of 100,000 items and 10 reviewers working at once, measured over HTTP as a deployment is used.

    .venv/bin/python bench/queues.py --items 100000 --reviewers 10 --seconds 15
    .venv/bin/python bench/queues.py --items 10000 --seconds 5
    BENCH_QUEUES_DATABASE_URL=postgres://…/fh_other .venv/bin/python bench/queues.py

What it does: creates the database if missing (default postgres://postgres@127.0.0.1:5432/
fh_bench_queues), migrates, generates the traces once (`generate_traces`, 1 span each) and a
queue of --items items asking one boolean definition with N = 2 (reused by later runs: answered
items stay complete, so each run tops the queue's open items up with fresh traces when fewer than
--items are open). Then it starts gunicorn with gunicorn.conf.py (what `make serve` runs: sync
workers, DEBUG off, persistent connections; rate limits off) on a free port, and --reviewers
client processes, each a reviewer signed in through the login form (session cookie + CSRF token,
as the focus page), call the native API in a loop for --seconds: `POST /api/v1/queues/{id}/next`,
then `POST …/items/{trace_id}/answers`. Prints p50/p95/p99 per call as the client saw it and as
the server spent it (gunicorn's access log: request in, response out), the answers per second,
and writes bench/results/queues-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/fh_bench_queues"
EXPERIMENT = "bench-queues"
TARGETS = {"next": 20.0, "answer": 30.0}
PASSWORD = "bench-queues-reviewer"  # noqa: S105 (a throwaway bench account)
# gunicorn's access log line: method and path, status, time in the worker (microseconds).
ACCESS_FORMAT = "%(m)s %(U)s %(s)s %(D)s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--reviewers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: gunicorn.conf.py's)")
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0.0,
        help="a reviewer's pause after each answer, reading the next trace (default 0: back to back, a stress test)",
    )
    args = parser.parse_args()

    url = os.environ.get("BENCH_QUEUES_DATABASE_URL", DEFAULT_DATABASE_URL)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_HSTS_SECONDS": "0",
        "FEEDBACKHUB_RATE_USER": "",
        "FEEDBACKHUB_RATE_API_KEY": "",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    if args.workers:
        env["GUNICORN_WORKERS"] = str(args.workers)
    os.environ.update(env)
    subprocess.run([sys.executable, str(ROOT / "bench" / "ensure_database.py")], check=True, env=env)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], check=True, env=env, cwd=ROOT)
    # DEBUG off: pages (the login form) need the static manifest, as `make serve` builds it
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], check=True, env=env, cwd=ROOT
    )

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedbackhub.settings")
    import django

    django.setup()
    queue, users = prepare(args.items, args.reviewers, env)
    from django.db import connections

    connections.close_all()  # the clients fork; the server has its own connections
    figures = drive(queue.pk, [user.username for user in users], args.seconds, env, args.think_ms / 1000)
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
        if not user.check_password(PASSWORD):
            user.set_password(PASSWORD)
            user.save(update_fields=["password"])
        Membership.objects.get_or_create(user=user, experiment=experiment, defaults={"role": "reviewer"})
        users.append(user)
    total = QueueItem.objects.filter(queue=queue, removed_at__isnull=True).count()
    open_items = QueueItem.objects.filter(queue=queue, complete=False, removed_at__isnull=True).count()
    print(f"queue {queue.pk}: {total} items, {open_items} open; {reviewers} reviewers", flush=True)
    return queue, users


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict, port: int, access_log: Path) -> subprocess.Popen:
    """gunicorn as `make serve` runs it (gunicorn.conf.py), on `port`, logging each request's time."""
    access_log.unlink(missing_ok=True)
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "feedbackhub.wsgi"]
        + ["--access-logfile", str(access_log), "--access-logformat", ACCESS_FORMAT],
        cwd=ROOT,
        env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_LOG_LEVEL": "warning"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    server.terminate()
    raise RuntimeError(f"gunicorn did not answer on port {port}")


def reviewer(base: str, queue_id: int, username: str, think: float, ready, go, stop_at, results) -> None:
    """One reviewer in its own process: signs in through the login form, then next → answer
    until the time is up or nothing is left. Sends back {"next": [ms…], "answer": [ms…], "failures"}."""
    import requests

    mine: dict = {"next": [], "answer": [], "failures": []}
    session = requests.Session()
    try:
        session.get(f"{base}/accounts/login/")
        signed_in = session.post(
            f"{base}/accounts/login/",
            data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
            allow_redirects=False,
        )
        if signed_in.status_code != 302 or "sessionid" not in session.cookies:
            raise RuntimeError(f"login of {username} failed: {signed_in.status_code}")
        # the login rotates the CSRF token: the API checks the new one (X-CSRFToken, as the page sends it)
        session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
        session.get(f"{base}/api/v1/queues/{queue_id}/progress")  # warm-up, not counted
        ready.release()
        go.wait()
        while time.time() < stop_at.value:
            t0 = time.perf_counter()
            response = session.post(f"{base}/api/v1/queues/{queue_id}/next")
            mine["next"].append((time.perf_counter() - t0) * 1000)
            if response.status_code == 204:
                break
            if response.status_code != 200:
                mine["failures"].append(f"next {response.status_code} {response.content[:200]!r}")
                break
            trace_id = response.json()["item"]["trace_id"]
            t0 = time.perf_counter()
            answered = session.post(
                f"{base}/api/v1/queues/{queue_id}/items/{trace_id}/answers", json={"answers": {"bench_correct": True}}
            )
            mine["answer"].append((time.perf_counter() - t0) * 1000)
            if answered.status_code != 201:
                mine["failures"].append(f"answer {answered.status_code} {answered.content[:200]!r}")
                break
            if think:
                time.sleep(think)
    except Exception as exc:  # noqa: BLE001 (reported with the figures)
        mine["failures"].append(f"{username}: {exc!r}")
        ready.release()
    results.put(mine)


def worker_cpu_seconds(server: subprocess.Popen) -> float:
    """User + system CPU of gunicorn's workers so far (its children, from /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server.pid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def server_times(access_log: Path) -> dict[str, list[float]]:
    """Milliseconds the workers spent on each counted call, from gunicorn's access log."""
    times: dict[str, list[float]] = {"next": [], "answer": []}
    pattern = re.compile(r"^POST /api/v1/queues/\d+/(next|items/[^/]+/answers) (\d{3}) (\d+)$")
    for line in access_log.read_text().splitlines():
        match = pattern.match(line.strip())
        if match and match.group(2) in ("200", "201", "204"):
            times["next" if match.group(1) == "next" else "answer"].append(int(match.group(3)) / 1000)
    return times


def drive(queue_id: int, usernames: list[str], seconds: float, env: dict, think: float) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    access_log = ROOT / "bench" / "results" / "queues-access.log"
    access_log.parent.mkdir(exist_ok=True)
    server = start_server(env, port, access_log)
    context = multiprocessing.get_context("fork")
    ready, go, results = context.Semaphore(0), context.Event(), context.Queue()
    stop_at = context.Value("d", 0.0)
    clients = [
        context.Process(target=reviewer, args=(base, queue_id, name, think, ready, go, stop_at, results))
        for name in usernames
    ]
    try:
        for client in clients:
            client.start()
        for _ in clients:
            ready.acquire()
        cpu_before = worker_cpu_seconds(server)
        began = time.monotonic()
        stop_at.value = time.time() + seconds
        go.set()
        gathered = [results.get() for _ in clients]
        elapsed = time.monotonic() - began
        cpu = worker_cpu_seconds(server) - cpu_before
        for client in clients:
            client.join()
    finally:
        server.terminate()
        server.wait(30)
    timings = {key: [ms for one in gathered for ms in one[key]] for key in ("next", "answer")}
    failures = [failure for one in gathered for failure in one["failures"]]
    return {
        "timings": timings,
        "server": server_times(access_log),
        "failures": failures,
        "elapsed": elapsed,
        "worker_cpu_seconds": cpu,
    }


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def _line(name: str, values: list[float], target: float | None) -> dict:
    p50, p95, p99 = (_pct(values, p) for p in (50, 95, 99))
    verdict = "" if target is None else f"   ≤ {target:.0f} ms: {'met' if p50 <= target else 'MISSED'}"
    print(f"{name:15} {len(values):6} {p50:9.1f} {p95:8.1f} {p99:8.1f}{verdict}")
    return {
        "count": len(values),
        "p50_ms": round(p50, 2),
        "p95_ms": round(p95, 2),
        "p99_ms": round(p99, 2),
        "mean_ms": round(statistics.fmean(values), 2) if values else None,
    }


def report(figures: dict, args) -> None:
    timings, failures = figures["timings"], figures["failures"]
    load = os.getloadavg()[0]
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "transport": "http (gunicorn.conf.py)",
        "items": args.items,
        "reviewers": args.reviewers,
        "think_ms": args.think_ms,
        "seconds": round(figures["elapsed"], 1),
        "load_average_1m": round(load, 2),
        "failures": failures[:10],
        "answers_per_second": round(len(timings["answer"]) / figures["elapsed"], 1),
    }
    print(
        f"\n{args.reviewers} reviewers over HTTP (think {args.think_ms:.0f} ms), {args.items} items, "
        f"{figures['elapsed']:.1f} s, load {load:.1f}"
    )
    print("call             count    p50 ms   p95 ms   p99 ms   target (p50, client)")
    for name, values in timings.items():
        result[name] = _line(name, values, TARGETS[name])
    for name, values in figures["server"].items():
        result[f"{name}_server"] = _line(f"{name} (server)", values, None)
    calls = sum(len(values) for values in timings.values())
    result["worker_cpu_ms_per_call"] = round(1000 * figures["worker_cpu_seconds"] / calls, 1) if calls else None
    print(
        f"answers/s: {result['answers_per_second']}; gunicorn workers' CPU per call: {result['worker_cpu_ms_per_call']} ms"
    )
    if failures:
        print("failures:", *failures[:5], sep="\n  ")
    out = ROOT / "bench" / "results" / f"queues-{datetime.now(timezone.utc):%Y-%m-%dT%H%M}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
