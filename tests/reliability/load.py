"""Client threads that drive trace and feedback writes at a live server and record every outcome."""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field

import requests

SPANS_PER_TRACE = 4


def trace_body(trace_id: str, experiment_id: int) -> dict:
    start = time.time_ns()
    root = uuid.uuid4().hex[:16]
    spans = [
        {
            "span_id": root,
            "parent_span_id": None,
            "name": "root",
            "span_type": "CHAIN",
            "start_time_ns": start,
            "end_time_ns": start + 9_000_000,
            "status_code": "OK",
            "inputs": {"question": "q"},
            "outputs": "a",
        }
    ]
    for n in range(1, SPANS_PER_TRACE):
        spans.append(
            {
                "span_id": uuid.uuid4().hex[:16],
                "parent_span_id": root,
                "name": f"step_{n}",
                "span_type": "LLM",
                "start_time_ns": start + n * 1_000_000,
                "end_time_ns": start + (n + 1) * 1_000_000,
                "inputs": {"n": n},
                "outputs": {"text": "x" * 200},
            }
        )
    return {"experiment_id": str(experiment_id), "trace_id": trace_id, "spans": spans}


@dataclass
class Attempt:
    kind: str  # trace | feedback | patch
    ident: str  # trace id, idempotency key, or assessment id
    method: str
    path: str
    body: dict
    headers: dict
    status: int | None = None  # None: no answer (connection refused or cut)
    latency: float = 0.0
    started: float = 0.0
    response: dict | None = None
    response_headers: dict = field(default_factory=dict)

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def again(self) -> Attempt:
        """The same request, unsent (a client's retry)."""
        return Attempt(self.kind, self.ident, self.method, self.path, self.body, self.headers)


class Load:
    """`clients` threads, each: post a trace, post feedback on it (Idempotency-Key), then patch
    that feedback with If-Match, until stop(). Every request and its outcome is kept."""

    def __init__(self, base: str, raw_key: str, experiment_id: int, clients: int = 4, timeout: float = 10):
        self.base = base
        self.headers = {"Authorization": f"Bearer {raw_key}"}
        self.experiment_id = experiment_id
        self.clients = clients
        self.timeout = timeout
        self.attempts: list[Attempt] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def send(self, session: requests.Session, attempt: Attempt) -> Attempt:
        attempt.started = time.monotonic()
        try:
            response = session.request(
                attempt.method,
                self.base + attempt.path,
                json=attempt.body,
                headers={**self.headers, **attempt.headers},
                timeout=self.timeout,
            )
            attempt.status = response.status_code
            attempt.response_headers = dict(response.headers)
            try:
                attempt.response = response.json()
            except ValueError:
                attempt.response = {"_text": response.text[:200]}
        except requests.RequestException as exc:
            attempt.response = {"_error": exc.__class__.__name__}
        attempt.latency = time.monotonic() - attempt.started
        with self.lock:
            self.attempts.append(attempt)
        return attempt

    def post_trace(self, session, trace_id=None) -> Attempt:
        trace_id = trace_id or "tr-" + uuid.uuid4().hex
        body = trace_body(trace_id, self.experiment_id)
        return self.send(session, Attempt("trace", trace_id, "POST", "/api/v1/traces", body, {}))

    def post_feedback(self, session, trace_id: str, key=None, value=None) -> Attempt:
        key = key or uuid.uuid4().hex
        body = {
            "name": "user_satisfaction",
            "value": random.choice([True, False]) if value is None else value,
            "rationale": f"load {key[:8]}",
        }
        path = f"/api/v1/traces/{trace_id}/feedback"
        return self.send(session, Attempt("feedback", key, "POST", path, body, {"Idempotency-Key": key}))

    def patch_feedback(self, session, assessment_id: str) -> Attempt:
        body = {"value": random.randint(1, 5), "rationale": "patched"}
        path = f"/api/v1/assessments/{assessment_id}"
        return self.send(session, Attempt("patch", assessment_id, "PATCH", path, body, {"If-Match": '"1"'}))

    def _client(self):
        session = requests.Session()
        while not self.stopping.is_set():
            trace = self.post_trace(session)
            if not trace.acknowledged:
                time.sleep(0.05)
                continue
            feedback = self.post_feedback(session, trace.ident)
            if feedback.acknowledged and not self.stopping.is_set():
                self.patch_feedback(session, feedback.response["assessment_id"])
        session.close()

    def start(self) -> None:
        for n in range(self.clients):
            thread = threading.Thread(target=self._client, name=f"load-{n}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=self.timeout + 5)

    def wait_for_acknowledged(self, count: int, timeout: float) -> int:
        """Block until `count` writes got a 2xx (or `timeout` seconds passed); returns how many did."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                done = sum(a.acknowledged for a in self.attempts)
            if done >= count or time.monotonic() > deadline:
                return done
            time.sleep(0.05)

    def of(self, kind: str) -> list[Attempt]:
        return [a for a in self.attempts if a.kind == kind]


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
