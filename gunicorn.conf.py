"""Gunicorn settings for FeedbackHub, sized for a small machine (measured on 2 cores).

    gunicorn -c gunicorn.conf.py feedbackhub.wsgi      (what `make serve` runs)

Every value can be overridden from the environment (GUNICORN_*), see docs/PERFORMANCE.md
for the measurements behind the defaults:

- Worker class and count: sync workers, 1.5 per core (3 on 2 cores). They were the
  steadiest: each sync worker handles one connection at a time and closes it after the
  response, so the kernel keeps handing new connections to whichever worker is free. In
  the calibration threaded (gthread) workers often piled every keep-alive connection onto
  one worker and left a core idle. GUNICORN_WORKER_CLASS=gthread switches; it then turns
  on SO_REUSEPORT (one listening socket per worker), so the kernel spreads connections
  across workers instead of letting the first one accept them all, and keeps connections
  alive for `keepalive` seconds.
- Database: sync workers pair with persistent connections (DB_CONN_MAX_AGE, default 600 s
  here); threaded workers with Django's psycopg pool (DB_POOL_MAX). A new connection per
  request was 5x slower than either.
- TCP_NODELAY stays on (gunicorn sets it on every TCP listener): without it a keep-alive
  client waits for delayed ACKs and throughput falls about four-fold.
"""

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
workers = _int("GUNICORN_WORKERS", max(2, (multiprocessing.cpu_count() * 3 + 1) // 2))
threads = _int("GUNICORN_THREADS", 4 if worker_class == "gthread" else 1)
# Threaded workers keep client connections; sync workers close them after each response.
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# One socket per worker: the kernel spreads connections (needed for keep-alive with gthread).
reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "true" if worker_class == "gthread" else "false") == "true"
backlog = _int("GUNICORN_BACKLOG", 2048)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20)
# Recycle workers now and then so that a slow leak can never exhaust memory (≤ 300 MB each).
max_requests = _int("GUNICORN_MAX_REQUESTS", 100_000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 10_000)
# Load the application once in the master and fork it: faster start, shared memory pages.
preload_app = os.environ.get("GUNICORN_PRELOAD", "true") == "true"
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None  # off by default: a line per request on the hot path
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "feedbackhub"
# gunicorn's control socket (gunicornc) defaults to one path per user, which several servers on
# one machine (a bench next to `make serve`) would share; on only when a path is given.
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
if _control_socket:
    control_socket = _control_socket
control_socket_disable = not _control_socket
# Persistent database connections per worker (settings.DB_CONN_MAX_AGE) unless the pool is on.
os.environ.setdefault("DB_CONN_MAX_AGE", "600")


def pre_fork(server, worker):
    """Workers must not inherit a database connection the master opened (preload_app)."""
    from django.db import connections

    connections.close_all()
