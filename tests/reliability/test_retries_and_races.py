"""Retries are safe and edits are not lost: idempotency keys (also under concurrent duplicates),
idempotent trace ingestion, ETag / If-Match between racing editors, token uses under a race."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from rest_framework.test import APIClient

from assessments.models import Assessment, Revision
from traces.models import Span, Trace

from ..factories import make_api_key, make_experiment, make_feedback, make_spans, make_trace

THREADS = 6


def key_client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def run_together(count: int, request) -> list:
    """Call request(i) from `count` threads released at the same moment, as clients do: a 503
    (database busy or away, with Retry-After) is retried. Each thread has its own database
    connection, closed afterwards.

    SQLite's in-memory test database answers concurrent writers with "table is locked" (503)
    instead of waiting; PostgreSQL (and a SQLite file, with its busy timeout) make them wait.
    """
    barrier = threading.Barrier(count)

    def worker(i):
        try:
            barrier.wait(timeout=10)
            for _ in range(100):
                response = request(i)
                if response.status_code != 503:
                    return response
                assert connections["default"].vendor == "sqlite", response.content
                time.sleep(0.01)
            return response
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(worker, range(count)))


# --- idempotency keys --------------------------------------------------------------------------


@pytest.mark.django_db
def test_retry_with_the_same_key_returns_the_original_and_writes_nothing(api_client, trace):
    url = f"/api/v1/traces/{trace.trace_id}/feedback"
    body = {"name": "user_satisfaction", "value": True, "rationale": "first"}
    first = api_client.post(url, body, format="json", headers={"Idempotency-Key": "req-1"})
    retry = api_client.post(url, {**body, "rationale": "retried"}, format="json", headers={"Idempotency-Key": "req-1"})

    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    assert retry.status_code == 200 and retry["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json() and retry["ETag"] == first["ETag"]
    assert Assessment.objects.count() == 1 and Revision.objects.count() == 1


@pytest.mark.django_db
def test_expectations_accept_idempotency_keys_too(api_client, trace):
    url = f"/api/v1/traces/{trace.trace_id}/expectations"
    body = {"name": "expected_answer", "value": "42"}
    statuses = [
        api_client.post(url, body, format="json", headers={"Idempotency-Key": "e-1"}).status_code for _ in range(3)
    ]
    assert statuses == [201, 200, 200] and Assessment.objects.count() == 1


@pytest.mark.django_db
def test_reusing_a_key_for_a_different_assessment_is_a_409(api_client, trace):
    url = f"/api/v1/traces/{trace.trace_id}/feedback"
    api_client.post(url, {"name": "a", "value": 1}, format="json", headers={"Idempotency-Key": "k"})
    response = api_client.post(url, {"name": "b", "value": 1}, format="json", headers={"Idempotency-Key": "k"})
    assert response.status_code == 409 and "idempotency key" in response.json()["detail"]
    assert Assessment.objects.count() == 1


@pytest.mark.django_db
def test_keys_are_scoped_to_the_experiment(trace, api_client):
    other = make_experiment()
    other_trace = make_trace(other)
    other_client = key_client(make_api_key(other)[1])
    for client, t in ((api_client, trace), (other_client, other_trace)):
        response = client.post(
            f"/api/v1/traces/{t.trace_id}/feedback",
            {"name": "n", "value": 1},
            format="json",
            headers={"Idempotency-Key": "same"},
        )
        assert response.status_code == 201
    assert Assessment.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "k" * 201])
def test_bad_idempotency_key_is_a_400(api_client, trace, key):
    response = api_client.post(
        f"/api/v1/traces/{trace.trace_id}/feedback",
        {"name": "n", "value": 1},
        format="json",
        headers={"Idempotency-Key": key},
    )
    assert response.status_code == 400 and "Idempotency-Key" in response.json()


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_create_exactly_once(trace, api_key):
    url = f"/api/v1/traces/{trace.trace_id}/feedback"
    body = {"name": "user_satisfaction", "value": False}

    responses = run_together(
        THREADS, lambda i: key_client(api_key[1]).post(url, body, format="json", headers={"Idempotency-Key": "dup"})
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (THREADS - 1) + [201], [r.content for r in responses]
    assert len({r.json()["assessment_id"] for r in responses}) == 1
    assert Assessment.objects.count() == 1
    assert Revision.objects.count() == 1


@pytest.mark.django_db
def test_posting_the_same_trace_again_stores_it_once(api_client, experiment):
    body = {"trace_id": "tr-" + "a" * 32, "spans": make_spans(3)}
    first = api_client.post("/api/v1/traces", body, format="json")
    again = api_client.post("/api/v1/traces", body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert Trace.objects.count() == 1 and Span.objects.count() == 3
    assert Trace.objects.get().span_count == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_traces_store_one_trace_with_its_spans(experiment, api_key):
    body = {"trace_id": "tr-" + "b" * 32, "spans": make_spans(5)}

    responses = run_together(THREADS, lambda i: key_client(api_key[1]).post("/api/v1/traces", body, format="json"))

    assert sorted(r.status_code for r in responses) == [200] * (THREADS - 1) + [201], [r.content for r in responses]
    assert Trace.objects.count() == 1 and Span.objects.count() == 5
    assert Trace.objects.get().span_count == 5


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_with_one_public_token_store_max_uses(experiment, api_key, settings):
    # SQLite's 503 retries (see run_together) must not run into the per-token rate limit.
    settings.FEEDBACKHUB_RATE_LIMITS = {**settings.FEEDBACKHUB_RATE_LIMITS, "public_token": "1000/minute"}
    trace = make_trace(experiment)
    token = (
        key_client(api_key[1])
        .post(f"/api/v1/traces/{trace.trace_id}/feedback-tokens", {"max_uses": 2}, format="json")
        .json()["token"]
    )

    responses = run_together(
        THREADS,
        lambda i: APIClient(REMOTE_ADDR=f"192.0.2.{i}").post(
            "/api/v1/public/feedback", {"token": token, "name": "user_satisfaction", "value": i % 2 == 0}, format="json"
        ),
    )

    assert sorted(r.status_code for r in responses) == [201, 201] + [409] * (THREADS - 2), [
        r.content for r in responses
    ]
    assert Assessment.objects.count() == 2 and Revision.objects.count() == 2


# --- ETag / If-Match ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_second_editor_with_a_stale_etag_gets_412_and_loses_nothing(api_client, trace):
    feedback = make_feedback(trace, value=3)
    url = f"/api/v1/assessments/{feedback.pk}"
    alice_etag = api_client.get(url)["ETag"]
    bob_etag = api_client.get(url)["ETag"]
    assert alice_etag == bob_etag == '"1"'

    alice = api_client.patch(url, {"value": 4}, format="json", headers={"If-Match": alice_etag})
    bob = api_client.patch(url, {"value": 5}, format="json", headers={"If-Match": bob_etag})

    assert alice.status_code == 200 and alice["ETag"] == '"2"'
    assert bob.status_code == 412 and bob["ETag"] == '"2"' and "changed since you read it" in bob.json()["detail"]
    assert Assessment.objects.get().value == 4
    assert Revision.objects.filter(action="update").count() == 1
    # Bob re-reads, sees Alice's value, and applies his change on top of it.
    assert api_client.get(url).json()["value"] == 4
    assert api_client.patch(url, {"value": 5}, format="json", headers={"If-Match": '"2"'}).status_code == 200


@pytest.mark.django_db
def test_stale_delete_is_refused(api_client, trace):
    feedback = make_feedback(trace)
    url = f"/api/v1/assessments/{feedback.pk}"
    api_client.patch(url, {"rationale": "edited"}, format="json", headers={"If-Match": '"1"'})
    assert api_client.delete(url, headers={"If-Match": '"1"'}).status_code == 412
    assert Assessment.objects.filter(pk=feedback.pk).exists()
    assert api_client.delete(url, headers={"If-Match": '"2"'}).status_code == 204


@pytest.mark.django_db
@pytest.mark.parametrize("header", ['"x"', "abc", '"1.5"'])
def test_unparseable_if_match_is_a_400(api_client, trace, header):
    feedback = make_feedback(trace)
    response = api_client.patch(
        f"/api/v1/assessments/{feedback.pk}", {"value": 1}, format="json", headers={"If-Match": header}
    )
    assert response.status_code == 400 and "If-Match" in response.json()


@pytest.mark.django_db(transaction=True)
def test_racing_editors_exactly_one_wins(experiment, api_key):
    feedback = make_feedback(make_trace(experiment), value=0)
    url = f"/api/v1/assessments/{feedback.pk}"

    responses = run_together(
        THREADS,
        lambda i: key_client(api_key[1]).patch(url, {"value": i + 1}, format="json", headers={"If-Match": '"1"'}),
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * (THREADS - 1), [r.content for r in responses]
    winner = next(r for r in responses if r.status_code == 200).json()
    stored = Assessment.objects.get()
    assert (stored.version, stored.value) == (2, winner["value"])
    assert Revision.objects.filter(action="update").count() == 1
