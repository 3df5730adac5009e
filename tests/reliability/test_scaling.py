"""Past one machine (issue 18, docs/SCALING.md): two app servers sharing Redis enforce one rate
limit and one lockout; a streaming replica serves the list and search reads, and stopping it
mid-load costs no request.

Each test starts what it needs on its own ports (a private redis-server; a primary and a
`pg_basebackup -R` replica), never a shared server.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from .load import trace_body
from .servers import ROOT, Gunicorn, PostgresInstance, Replica, free_port, manage, production_env

pytestmark = pytest.mark.reliability


class PrivateRedis:
    """redis-server on its own port, nothing persisted."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def static_collected() -> bool:
    """staticfiles/ holds a manifest newer than every file under static/."""
    manifest = ROOT / "staticfiles" / "staticfiles.json"
    if not manifest.exists():
        return False
    newest = max(path.stat().st_mtime for path in (ROOT / "static").rglob("*") if path.is_file())
    return manifest.stat().st_mtime >= newest


def login_attempt(base: str, username: str, password: str) -> int:
    session = requests.Session()
    page = session.get(f"{base}/accounts/login/", timeout=10)
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert found, (page.status_code, page.text[:500])
    token = found.group(1)
    answer = session.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/accounts/login/"},
        allow_redirects=False,
        timeout=10,
    )
    return answer.status_code


def test_two_app_servers_enforce_one_rate_limit_and_one_lockout(private_postgres, gunicorn, tmp_path, figures):
    _, env, raw_key, _ = private_postgres
    redis_server = PrivateRedis(tmp_path)
    try:
        manage(
            env,
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            "User.objects.filter(username='twohosts').exists() or User.objects.create_user('twohosts', password='right-pass-123')",
        )
        if not static_collected():  # the login page links hashed static files (seconds to minutes)
            manage(env, "collectstatic", "--noinput", "--verbosity", "0", timeout=900)
        shared = {
            "FEEDBACKHUB_REDIS_URL": redis_server.url,
            "FEEDBACKHUB_REDIS_KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
            "FEEDBACKHUB_RATE_API_KEY": "10/day",
            "FEEDBACKHUB_LOGIN_MAX_FAILURES": "4",
        }
        hosts = [gunicorn(**shared).base, gunicorn(**shared).base]
        headers = {"Authorization": f"Bearer {raw_key}"}

        # One key, ten requests spread over both hosts: all allowed; the eleventh, on either, is not.
        answers = [requests.get(f"{hosts[n % 2]}/api/v1/experiments", headers=headers, timeout=10) for n in range(10)]
        assert [answer.status_code for answer in answers] == [200] * 10
        over = [requests.get(f"{host}/api/v1/experiments", headers=headers, timeout=10) for host in hosts]
        assert [answer.status_code for answer in over] == [429, 429]
        assert all(int(answer.headers["Retry-After"]) > 0 for answer in over)

        # Four wrong passwords over both hosts lock the username out on both, right password or not.
        failures = [login_attempt(hosts[n % 2], "twohosts", "wrong") for n in range(4)]
        assert failures == [200] * 4  # the form again, with its error
        assert [login_attempt(host, "twohosts", "right-pass-123") for host in hosts] == [429, 429]
        # Another username from the same address is not locked out: the pair is what counts.
        assert login_attempt(hosts[1], "nobody-else", "wrong") == 200
        figures["two_app_servers_shared_state"] = {"hosts": 2, "rate_limit": "10/day", "lockout_after": 4}
    finally:
        redis_server.stop()


# --- read replicas ----------------------------------------------------------------------------


TRACE_READS = (
    "SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0) FROM pg_stat_user_tables WHERE relname = 'traces_trace'"
)


def trace_reads(instance: PostgresInstance) -> int:
    return int(instance.query(TRACE_READS)[0][0])


def settled_trace_reads(instance: PostgresInstance, at_least: int = 0, wait: float = 15) -> int:
    """The counter once backends have flushed their statistics (they do so within ~10 s when idle)."""
    deadline = time.monotonic() + wait
    previous = trace_reads(instance)
    while time.monotonic() < deadline:
        time.sleep(1)
        current = trace_reads(instance)
        if current >= at_least and current == previous:
            return current
        previous = current
    return previous


@pytest.fixture
def primary_and_replica():
    primary = PostgresInstance()
    replica = None
    try:
        primary.init()
        replica = Replica(primary)
        replica.init()
        yield primary, replica
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


def test_replica_serves_list_and_search_and_losing_it_costs_no_request(primary_and_replica, tmp_path, figures):
    primary, replica = primary_and_replica
    env = production_env(
        primary.url,
        DATABASE_REPLICA_URLS=replica.url,
        FEEDBACKHUB_REPLICA_CHECK_SECONDS="1",
        FEEDBACKHUB_REPLICA_MAX_LAG_SECONDS="5",
        DB_CONN_MAX_AGE="0",  # a backend per request: its statistics are flushed when it exits
    )
    manage(env, "migrate", "--noinput")
    raw_key = manage(env, "createapikey", "--experiment", "replicas", "--create", "--label", "load").strip()
    [(experiment_id,)] = primary.query("SELECT id FROM traces_experiment WHERE name = 'replicas'")
    server = Gunicorn(env, tmp_path)
    server.start()
    try:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {raw_key}"
        base = server.base

        # Writes go to the primary (the replica is read-only: a write there would be a 500), and a
        # GET right after each POST reads it back from the primary.
        for _ in range(10):
            trace_id = f"tr-{uuid.uuid4().hex}"
            assert (
                session.post(f"{base}/api/v1/traces", json=trace_body(trace_id, experiment_id), timeout=10).status_code
                == 201
            )
            assert session.get(f"{base}/api/v1/traces/{trace_id}", timeout=10).status_code == 200

        # List and search: the replica's trace table is scanned, the primary's is not.
        time.sleep(1)  # the replica replays the writes above (lag well under a second)
        replica_before, primary_before = settled_trace_reads(replica), settled_trace_reads(primary)
        reads = 20
        for n in range(reads):
            if n % 2:
                answer = session.get(f"{base}/api/v1/traces", params={"experiment_id": experiment_id}, timeout=10)
                assert answer.status_code == 200 and len(answer.json()["traces"]) == 10
            else:
                answer = session.post(
                    f"{base}/api/3.0/mlflow/traces/search",
                    json={"locations": [{"mlflow_experiment": {"experiment_id": str(experiment_id)}}],
                          "filter": "status = 'OK'"},
                    timeout=10,
                )  # fmt: skip
                assert answer.status_code == 200 and len(answer.json()["traces"]) == 10, answer.text
        replica_delta = settled_trace_reads(replica, at_least=replica_before + reads) - replica_before
        primary_delta = settled_trace_reads(primary) - primary_before
        assert replica_delta >= reads, (replica_delta, primary_delta)
        assert primary_delta == 0, (replica_delta, primary_delta)

        # Mixed load (list, search, ingest) while the replica is stopped: every request answers.
        outcomes: list[tuple[str, float, int | None]] = []
        stop = threading.Event()

        def client(kind: str) -> None:
            own = requests.Session()
            own.headers["Authorization"] = f"Bearer {raw_key}"
            while not stop.is_set():
                started = time.monotonic()
                try:
                    if kind == "list":
                        answer = own.get(f"{base}/api/v1/traces", params={"experiment_id": experiment_id}, timeout=15)
                    else:
                        trace_id = f"tr-{uuid.uuid4().hex}"
                        answer = own.post(f"{base}/api/v1/traces", json=trace_body(trace_id, experiment_id), timeout=15)
                    outcomes.append((kind, started, answer.status_code))
                except requests.RequestException:
                    outcomes.append((kind, started, None))

        threads = [threading.Thread(target=client, args=(kind,)) for kind in ("list", "list", "ingest")]
        for thread in threads:
            thread.start()
        time.sleep(2)
        stopped_at = time.monotonic()
        replica.stop("immediate")
        time.sleep(4)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

        failed = [outcome for outcome in outcomes if outcome[2] not in (200, 201)]
        after = [outcome for outcome in outcomes if outcome[1] > stopped_at and outcome[0] == "list"]
        assert not failed, failed[:5]
        assert len(after) >= 10  # reads went on, from the primary
        figures["read_replica"] = {
            "replica_trace_scans": replica_delta,
            "primary_trace_scans": primary_delta,
            "requests_during_replica_stop": len(outcomes),
            "list_reads_after_stop": len(after),
            "failed": len(failed),
        }
    finally:
        server.stop()
