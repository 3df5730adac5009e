"""Held feedback on the native API (docs/CLIENTS.md: "editable and deletable"): created for a
trace that has not arrived, then read, changed, deleted and its history read over HTTP, each
change with its revision; attaching keeps the history."""

import pytest
from rest_framework.test import APIClient

from assessments.models import Assessment, PendingAssessment

from ..factories import make_api_key, make_trace
from ..mlflow.payloads import new_trace_id

pytestmark = pytest.mark.django_db


def key_client(raw):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def client(api_key):
    return key_client(api_key[1])


def held(client, trace_id=None, **body):
    trace_id = trace_id or new_trace_id()
    response = client.post(f"/api/v1/traces/{trace_id}/feedback", {"name": "n", "value": 1, **body}, format="json")
    assert response.status_code == 201 and PendingAssessment.objects.filter(pk=response.json()["assessment_id"])
    return response.json()


def history(client, assessment_id):
    response = client.get(f"/api/v1/assessments/{assessment_id}/history")
    return response.status_code, [r["action"] for r in response.json()] if response.status_code == 200 else None


def test_held_feedback_is_readable_editable_deletable_with_history(client):
    created = held(client)
    url = f"/api/v1/assessments/{created['assessment_id']}"
    assert client.get(url).status_code == 200
    assert history(client, created["assessment_id"]) == (200, ["create"])

    patched = client.patch(url, {"value": 2, "rationale": "on second thought"}, format="json")
    assert patched.status_code == 200, patched.json()
    assert (patched.json()["value"], patched.json()["rationale"], patched["ETag"]) == (2, "on second thought", '"2"')
    assert client.get(url).json()["value"] == 2
    stale = client.patch(url, {"value": 3}, format="json", HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412 and stale["ETag"] == '"2"'
    assert client.patch(url, {"span_id": "0000000000000001"}, format="json").status_code == 400

    assert client.delete(url, HTTP_IF_MATCH='"1"').status_code == 412
    assert client.delete(url, HTTP_IF_MATCH='"2"').status_code == 204
    assert client.get(url).status_code == 404
    assert history(client, created["assessment_id"]) == (200, ["create", "update", "delete"])


def test_only_the_sending_key_sees_held_feedback(client, experiment):
    created = held(client)
    stranger = key_client(make_api_key(experiment)[1])
    url = f"/api/v1/assessments/{created['assessment_id']}"
    assert stranger.get(url).status_code == 404
    assert stranger.patch(url, {"value": 5}, format="json").status_code == 404
    assert stranger.delete(url).status_code == 404
    assert history(stranger, created["assessment_id"]) == (404, None)
    assert PendingAssessment.objects.exists()


def test_attaching_keeps_the_history(client, experiment):
    trace_id = new_trace_id()
    created = held(client, trace_id)
    url = f"/api/v1/assessments/{created['assessment_id']}"
    client.patch(url, {"value": 2}, format="json")
    make_trace(experiment, spans=1, trace_id=trace_id)
    stored = Assessment.objects.get(pk=created["assessment_id"])
    assert (stored.value, stored.version, stored.experiment_id) == (2, 2, experiment.pk)
    got = client.get(url)
    assert got.status_code == 200 and got["ETag"] == '"2"'
    assert history(client, created["assessment_id"]) == (200, ["create", "update"])
