"""Fixtures for the real-client tests: a live FeedbackHub, an API key, the mlflow client
pointed at both, and a fake OpenAI chat-completions server on loopback."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ..live_server import fh_live_server, key, live  # noqa: F401  (fixtures)
from .rawapi import MlflowApi


@pytest.fixture
def mlflow(live, key, monkeypatch):
    """The mlflow tracing client talking to the live server with the key as its token."""
    import mlflow as client

    monkeypatch.setenv("MLFLOW_TRACKING_URI", live)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", key[1])
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    client.set_tracking_uri(live)
    yield client
    client.flush_trace_async_logging()


class _FakeOpenAI(BaseHTTPRequestHandler):
    """POST /v1/chat/completions → a fixed chat.completion; remembers the requests."""

    answer = "MLflow is an open source platform for the ML lifecycle."

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.requests.append(body)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self.send_error(404)
            return
        payload = json.dumps(
            {
                "id": f"chatcmpl-{len(self.server.requests)}",
                "object": "chat.completion",
                "created": 1795702948,
                "model": body.get("model", "gpt-4o-mini"),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": self.answer}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_openai(monkeypatch):
    """A chat-completions server on loopback; OPENAI_BASE_URL points at it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def api(api_key):
    """Raw MLflow REST calls (Django's test client) with the `experiment` key."""
    return MlflowApi(api_key[1])
