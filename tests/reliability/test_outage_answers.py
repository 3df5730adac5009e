"""What clients see while the database is away, checked in-process (the real outage, with a
stopped PostgreSQL behind gunicorn, is tests/reliability/test_server_failures.py)."""

import pytest
from django.db import connection
from django.db.utils import InterfaceError, OperationalError
from django.test import Client

from traces import selectors as trace_selectors

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_down(monkeypatch):
    def fail(*args, **kwargs):
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

    return fail


def test_api_request_gets_json_503_with_retry_after(api_client, trace, monkeypatch, database_down):
    monkeypatch.setattr(trace_selectors, "trace_for_detail", database_down)
    response = api_client.get(f"/api/v1/traces/{trace.trace_id}")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "5"
    assert response.json() == {"detail": "The database is unavailable; retry shortly."}


def test_interface_error_counts_as_an_outage(api_client, trace, monkeypatch):
    def closed(*args, **kwargs):
        raise InterfaceError("connection already closed")

    monkeypatch.setattr(trace_selectors, "trace_for_detail", closed)
    assert api_client.get(f"/api/v1/traces/{trace.trace_id}").status_code == 503


def test_outage_inside_middleware_is_a_503_too(reviewer, monkeypatch, database_down):
    """Sessions are loaded by middleware, outside any view: handler500 turns that into the 503."""
    client = Client(raise_request_exception=False)
    client.force_login(reviewer)
    from django.contrib.sessions.backends.db import SessionStore

    monkeypatch.setattr(SessionStore, "load", database_down)
    response = client.get("/api/v1/experiments")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response.json()["detail"].startswith("The database is unavailable")


def test_other_server_errors_on_api_paths_are_json(api_client, trace, monkeypatch):
    def bug(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(trace_selectors, "trace_for_detail", bug)
    api_client.raise_request_exception = False
    response = api_client.get(f"/api/v1/traces/{trace.trace_id}")
    assert response.status_code == 500 and response.json() == {"detail": "Server error."}


def test_readyz_reports_the_database_and_healthz_does_not(client, monkeypatch, database_down):
    assert client.get("/readyz").json() == {"status": "ok"}
    monkeypatch.setattr(connection, "cursor", database_down)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready["Retry-After"] == "5"
    assert ready.json() == {"status": "unavailable", "detail": "database: OperationalError"}
    assert client.get("/healthz").json() == {"status": "ok"}


def test_probes_are_get_only(client):
    assert client.post("/healthz").status_code == 405


def test_body_over_the_limit_is_a_413_before_it_is_read(api_client, trace, settings):
    settings.FEEDBACKHUB_MAX_BODY_BYTES = 1000
    response = api_client.post(
        f"/api/v1/traces/{trace.trace_id}/feedback", {"name": "n", "value": "x" * 2000}, format="json"
    )
    assert response.status_code == 413
    assert "limit is 1000 bytes" in response.json()["detail"]


def test_mlflow_clients_get_their_error_shape(client, settings):
    settings.FEEDBACKHUB_MAX_BODY_BYTES = 10
    response = client.post("/api/2.0/mlflow/traces", "x" * 100, content_type="application/json")
    assert response.status_code == 413 and response.json()["error_code"] == "RESOURCE_EXHAUSTED"
