"""No span lost under concurrent export (issue 11): production gunicorn with several workers on a
private PostgreSQL, driven by plain HTTP from several processes and by the full mlflow client.

- An experiment created through one worker is written to at once through every other worker
  (a worker's cached key scope is re-read on a miss): no 404 for a span the key may write.
- The real mlflow client (8 threads, span export over OTLP plus StartTraceV3) stores every trace
  complete, and neither gunicorn nor PostgreSQL logs a deadlock or a 5xx.
"""

import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import requests

from .servers import ROOT

pytestmark = pytest.mark.reliability

MLFLOW_PYTHON = Path(os.environ.get("FEEDBACKHUB_MLFLOW_VENV", ROOT / ".venv-mlflow")) / "bin" / "python"
LOAD_SCRIPT = Path(__file__).with_name("mlflow_load.py")
BAD_LOG_LINES = ("deadlock detected", "Internal Server Error", "Service Unavailable", "Traceback")


def _otlp_body(trace_id: str, span_id: int = 0xA1) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    message = ExportTraceServiceRequest()
    span = message.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes.fromhex(trace_id)
    span.span_id = span_id.to_bytes(8, "big")
    span.name = "root"
    span.start_time_unix_nano = time.time_ns()
    span.end_time_unix_nano = span.start_time_unix_nano + 1_000_000
    return message.SerializeToString()


def _export(args) -> list[int]:
    """One process: export `count` traces to the experiment as fast as it can, one connection
    per request (so that the requests spread over the gunicorn workers)."""
    base, raw_key, experiment_id, count = args
    statuses = []
    for _ in range(count):
        response = requests.post(
            f"{base}/v1/traces",
            data=_otlp_body(uuid.uuid4().hex),
            headers={
                "Authorization": f"Bearer {raw_key}",
                "Content-Type": "application/x-protobuf",
                "x-mlflow-experiment-id": str(experiment_id),
                "Connection": "close",
            },
            timeout=30,
        )
        statuses.append(response.status_code)
    return statuses


def _export_shuffled(args) -> list[int]:
    """One process: `rounds` exports, each carrying new spans of the same traces in a random order."""
    import random

    base, raw_key, experiment_id, trace_ids, rounds, seed = args
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    rng = random.Random(seed)
    statuses = []
    for _ in range(rounds):
        message = ExportTraceServiceRequest()
        for trace_id in rng.sample(trace_ids, len(trace_ids)):
            message.MergeFromString(_otlp_body(trace_id, rng.getrandbits(63) | 1))
        response = requests.post(
            f"{base}/v1/traces",
            data=message.SerializeToString(),
            headers={
                "Authorization": f"Bearer {raw_key}",
                "Content-Type": "application/x-protobuf",
                "x-mlflow-experiment-id": str(experiment_id),
            },
            timeout=30,
        )
        statuses.append(response.status_code)
    return statuses


def _bad_lines(*logs: Path) -> list[str]:
    lines = []
    for log in logs:
        if log.exists():
            lines += [
                line for line in log.read_text(errors="replace").splitlines() if any(b in line for b in BAD_LOG_LINES)
            ]
    return lines


def test_a_new_experiment_takes_spans_at_once_from_every_worker(private_postgres, gunicorn, figures):
    instance, _, raw_key, _ = private_postgres
    server = gunicorn(GUNICORN_WORKERS="3", FEEDBACKHUB_API_KEY_CACHE_SECONDS="60")
    headers = {"Authorization": f"Bearer {raw_key}"}
    # Every worker caches the key's scope first (a long cache, so that only the reload saves it).
    for _ in range(12):
        assert requests.get(f"{server.base}/api/v1/experiments", headers={**headers, "Connection": "close"}).ok
    response = requests.post(
        f"{server.base}/api/2.0/mlflow/experiments/create",
        json={"name": f"fresh-{uuid.uuid4().hex[:8]}"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    experiment_id = response.json()["experiment_id"]
    started = time.monotonic()
    with ProcessPoolExecutor(4) as pool:
        statuses = [s for part in pool.map(_export, [(server.base, raw_key, experiment_id, 10)] * 4) for s in part]
    elapsed = time.monotonic() - started
    assert statuses == [200] * 40, statuses
    [(stored,)] = instance.query("SELECT count(*) FROM traces_trace WHERE experiment_id = %s", (int(experiment_id),))
    assert stored == 40
    figures["new experiment, 40 exports from 4 processes"] = {"refused": 0, "seconds": round(elapsed, 2)}


def test_exports_of_the_same_traces_in_any_order_never_deadlock(private_postgres, gunicorn, figures):
    instance, _, raw_key, experiment_id = private_postgres
    server = gunicorn(GUNICORN_WORKERS="4")
    trace_ids = [uuid.uuid4().hex for _ in range(6)]
    started = time.monotonic()
    with ProcessPoolExecutor(6) as pool:
        jobs = [(server.base, raw_key, experiment_id, trace_ids, 15, seed) for seed in range(6)]
        statuses = [s for part in pool.map(_export_shuffled, jobs) for s in part]
    assert statuses == [200] * 90, statuses
    assert _bad_lines(server.log_path, instance.log) == []
    figures["90 exports of 6 shared traces in random orders"] = {"seconds": round(time.monotonic() - started, 2)}


def test_the_mlflow_client_under_concurrency_stores_every_trace_complete(private_postgres, gunicorn, figures):
    if not MLFLOW_PYTHON.exists():
        pytest.skip(f"{MLFLOW_PYTHON} not found (make mlflow-venv)")
    instance, _, raw_key, _ = private_postgres
    server = gunicorn(GUNICORN_WORKERS="3")
    traces, threads = int(os.environ.get("FEEDBACKHUB_LOAD_TRACES", "200")), 8
    experiment = f"load-{uuid.uuid4().hex[:8]}"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "MLFLOW_TRACKING_URI": server.base,
        "MLFLOW_TRACKING_TOKEN": raw_key,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        # The client drops traces when its export queue (1,000 tasks) overflows: a client-side limit.
        "MLFLOW_ASYNC_TRACE_LOGGING_MAX_QUEUE_SIZE": "10000",
    }
    result = subprocess.run(
        [str(MLFLOW_PYTHON), str(LOAD_SCRIPT), str(traces), str(threads), experiment],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads(result.stdout.strip().splitlines()[-1].removeprefix("RESULT="))
    ids = set(out["ids"])
    assert len(ids) == traces
    rows = instance.query(
        "SELECT t.trace_id, t.span_count, t.state, (SELECT count(*) FROM traces_span s WHERE s.trace_id = t.trace_id) "
        "FROM traces_trace t JOIN traces_experiment e ON e.id = t.experiment_id WHERE e.name = %s",
        (experiment,),
    )
    stored = {trace_id: (span_count, state, spans) for trace_id, span_count, state, spans in rows}
    assert set(stored) == ids
    incomplete = {trace_id: row for trace_id, row in stored.items() if row != (out["spans_per_trace"], "OK", 3)}
    assert not incomplete, incomplete
    assert not [line for line in result.stderr.splitlines() if "Failed to" in line or "ERROR" in line]
    assert _bad_lines(server.log_path, instance.log) == []
    figures[f"mlflow client, {traces} traces from {threads} threads"] = {
        "stored_complete": len(stored),
        "seconds_to_flush": round(out["flushed_s"], 1),
    }


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run with `make reliability`")
