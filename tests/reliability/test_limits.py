"""Every configured limit answers a clear 4xx naming the field, and stores nothing (except the
span size limit: an oversized span is stored truncated and marked)."""

import json

import pytest

from assessments.models import Assessment
from traces.models import Span, Trace

from ..factories import make_spans

pytestmark = pytest.mark.django_db


def feedback_url(trace):
    return f"/api/v1/traces/{trace.trace_id}/feedback"


def test_request_body_limit(api_client, trace, settings):
    settings.FEEDBACKHUB_MAX_BODY_BYTES = 2000
    response = api_client.post(feedback_url(trace), {"name": "n", "value": "x" * 3000}, format="json")
    assert response.status_code == 413 and "limit is 2000 bytes" in response.json()["detail"]
    assert not Assessment.objects.exists()


def test_span_count_limit(api_client, experiment, settings):
    settings.FEEDBACKHUB_MAX_SPANS_PER_TRACE = 5
    response = api_client.post("/api/v1/traces", {"spans": make_spans(6)}, format="json")
    assert response.status_code == 400 and "more than 5 spans" in str(response.json()["spans"])
    assert not Trace.objects.exists()
    assert api_client.post("/api/v1/traces", {"spans": make_spans(5)}, format="json").status_code == 201


def test_an_oversized_span_is_stored_truncated_and_marked(api_client, experiment, settings):
    settings.FEEDBACKHUB_MAX_SPAN_BYTES = 1000
    spans = make_spans(2)
    spans[1]["outputs"] = {"text": "x" * 1000}
    spans[1]["attributes"] = {"small": 1}
    response = api_client.post("/api/v1/traces", {"spans": spans}, format="json")
    assert response.status_code == 201, response.content
    span = Span.objects.get(span_id=spans[1]["span_id"])
    assert span.outputs.startswith('{"text": "xxx') and span.outputs.endswith("[truncated by FeedbackHub]")
    assert span.attributes == {"small": 1, "feedbackhub.truncated": {"outputs": len(json.dumps(spans[1]["outputs"]))}}
    stored = [span.inputs, span.outputs, span.attributes, span.events]
    assert len(json.dumps(stored)) <= 1000
    assert Span.objects.get(span_id=spans[0]["span_id"]).attributes == spans[0].get("attributes", {})


def test_a_span_that_cannot_be_cut_to_the_limit_is_refused(api_client, experiment, settings):
    settings.FEEDBACKHUB_MAX_SPAN_BYTES = 1000
    spans = make_spans(1)
    spans[0]["attributes"] = {f"key{n}": n for n in range(200)}
    response = api_client.post("/api/v1/traces", {"spans": spans}, format="json")
    assert response.status_code == 400, response.content
    [(field, messages)] = response.json().items()
    assert field == "spans[0].attributes" and "limit of 1000 bytes per span" in messages[0]
    assert not Trace.objects.exists()


def test_value_size_limit(api_client, trace, settings):
    settings.FEEDBACKHUB_MAX_VALUE_BYTES = 100
    response = api_client.post(feedback_url(trace), {"name": "n", "value": {"text": "x" * 100}}, format="json")
    assert response.status_code == 400 and "larger than 100 bytes" in response.json()["value"][0]
    response = api_client.post(feedback_url(trace), {"name": "n", "value": 1, "rationale": "r" * 101}, format="json")
    assert response.status_code == 400 and "rationale" in response.json()
    assert not Assessment.objects.exists()


def test_value_nesting_limit(api_client, trace):
    value = "leaf"
    for _ in range(40):
        value = [value]
    response = api_client.post(feedback_url(trace), {"name": "n", "value": value}, format="json")
    assert response.status_code == 400 and "nested" in response.json()["value"][0]


def test_metadata_entries_limit(api_client, trace, experiment, settings):
    settings.FEEDBACKHUB_MAX_METADATA_ENTRIES = 3
    metadata = {f"k{i}": "v" for i in range(4)}
    response = api_client.post(feedback_url(trace), {"name": "n", "value": 1, "metadata": metadata}, format="json")
    assert response.status_code == 400 and "more than 3 entries" in response.json()["metadata"][0]
    response = api_client.post("/api/v1/traces", {"spans": make_spans(1), "metadata": metadata}, format="json")
    assert response.status_code == 400 and "metadata" in response.json()
    response = api_client.post("/api/v1/traces", {"spans": make_spans(1), "tags": metadata}, format="json")
    assert response.status_code == 400 and "tags" in response.json()


def test_filter_length_limit(api_client, experiment, settings):
    settings.FEEDBACKHUB_MAX_FILTER_LENGTH = 50
    text = "tags.env = '" + "x" * 60 + "'"
    response = api_client.get("/api/v1/traces", {"experiment_id": experiment.pk, "filter": text})
    assert response.status_code == 400 and "limit is 50" in str(response.json()["filter"])


def test_filter_nesting_limit(api_client, experiment):
    text = "(" * 30 + "tags.env = 'x'" + ")" * 30
    response = api_client.get("/api/v1/traces", {"experiment_id": experiment.pk, "filter": text})
    assert response.status_code == 400 and "levels deep" in str(response.json()["filter"])
    text = "NOT " * 30 + "tags.env = 'x'"
    assert api_client.get("/api/v1/traces", {"experiment_id": experiment.pk, "filter": text}).status_code == 400


def test_name_and_id_lengths(api_client, trace, experiment):
    assert "name" in api_client.post(feedback_url(trace), {"name": "n" * 251, "value": 1}, format="json").json()
    response = api_client.post(
        "/api/v1/traces", {"spans": make_spans(1), "client_request_id": "c" * 251}, format="json"
    )
    assert response.status_code == 400 and "client_request_id" in response.json()
