"""Raw MLflow REST calls through Django's test client, and checks of MLflow's response shapes."""

import json

from django.test import Client
from google.protobuf.json_format import ParseDict

from . import payloads
from .payloads import new_trace_id

V3 = "/api/3.0/mlflow"


class MlflowApi:
    """Raw MLflow REST calls with the key, as the client makes them."""

    def __init__(self, raw_key: str | None):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {raw_key}"} if raw_key else {}

    def get(self, path, **params):
        return self.client.get(path, params, headers=self.headers)

    def _send(self, method, path, body, content_type):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return getattr(self.client, method)(path, data, content_type=content_type, headers=self.headers)

    def post(self, path, body=None, content_type="application/json"):
        return self._send("post", path, {} if body is None else body, content_type)

    def patch(self, path, body, content_type="application/json"):
        return self._send("patch", path, body, content_type)

    def delete(self, path, body=None):
        return self._send("delete", path, {} if body is None else body, "application/json")

    def put(self, path, body, content_type="text/plain"):
        return self._send("put", path, body, content_type)

    def otlp(self, trace_id, spans, experiment_id):
        return self.client.post(
            "/v1/traces",
            payloads.otlp_body(trace_id, spans),
            content_type="application/x-protobuf",
            headers={**self.headers, "x-mlflow-experiment-id": str(experiment_id)},
        )

    def start(self, trace_id, experiment_id, **kwargs):
        return self.post(f"{V3}/traces", payloads.trace_info(trace_id, experiment_id, **kwargs))

    def log(self, trace_id, assessment):
        return self.post(f"{V3}/traces/{trace_id}/assessments", {"assessment": assessment})


def proto(data: dict, message):
    """Parse strictly with the client's message: a wrong field name or type fails the test."""
    return ParseDict(data, message(), ignore_unknown_fields=False)


def error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error_code"] == code
    return body["message"]


def stored_trace(api, experiment, trace_id=None, spans=2):
    trace_id = trace_id or new_trace_id()
    assert api.otlp(trace_id, payloads.mlflow_spans(trace_id, spans), experiment.pk).status_code == 200
    assert api.start(trace_id, experiment.pk, num_spans=spans).status_code == 200
    return trace_id
