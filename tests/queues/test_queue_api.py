"""The native API of review queues: shapes, status codes, access and query counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers as drf
from rest_framework.test import APIClient

from assessments.queues import services
from assessments.queues.models import QueueItem
from assessments.queues.serializers import NextOut, WorkOut
from traces.access import Actor

from ..factories import make_api_key, make_trace
from .conftest import GOOD, SYSTEM

pytestmark = pytest.mark.django_db


def session(user, *, csrf=False):
    client = APIClient(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def test_key_creates_a_queue_and_adds_items(api_client, defined, traces):
    response = api_client.post(
        f"/api/v1/experiments/{defined.pk}/queues",
        {
            "name": "Weekly",
            "questions": ["correct", "helpfulness"],
            "answers_per_item": 2,
            "blind": True,
            "rule": {"filter": "feedback.correct = false", "sample_rate": 0.5},
        },
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    queue_id = body["queue_id"]
    assert body["rule"] == {"filter": "feedback.correct = false", "sample_rate": 0.5}
    assert body["answers_per_item"] == 2 and body["blind"] is True and body["lease_seconds"] == 600
    ids = [t.trace_id for t in traces]
    added = api_client.post(f"/api/v1/queues/{queue_id}/items", {"trace_ids": ids})
    assert added.json() == {"added": 5, "already_queued": 0, "previously_removed": 0}
    again = api_client.post(f"/api/v1/queues/{queue_id}/items", {"filter": "trace.status = 'OK'", "limit": 10})
    assert again.json() == {"added": 0, "already_queued": 5, "previously_removed": 0}
    assert api_client.delete(f"/api/v1/queues/{queue_id}/items/{ids[0]}").status_code == 204
    assert api_client.delete(f"/api/v1/queues/{queue_id}/items/tr-nope").status_code == 404
    patched = api_client.patch(f"/api/v1/queues/{queue_id}", {"archived": True, "rule": None})
    assert patched.status_code == 200 and patched.json()["archived"] is True and patched.json()["rule"] is None
    listed = api_client.get(f"/api/v1/experiments/{defined.pk}/queues").json()
    assert [q["queue_id"] for q in listed] == [queue_id]


def test_bad_input_names_the_field(api_client, defined, queue):
    response = api_client.post(f"/api/v1/experiments/{defined.pk}/queues", {"name": "x", "questions": ["nope"]})
    assert response.status_code == 400 and "questions" in response.json()
    response = api_client.post(
        f"/api/v1/experiments/{defined.pk}/queues", {"name": "x", "questions": ["correct"], "answers_per_item": 0}
    )
    assert response.status_code == 400 and "answers_per_item" in response.json()
    response = api_client.post(f"/api/v1/queues/{queue.pk}/items", {"filter": "feedback.correct ="})
    assert response.status_code == 400 and "filter" in response.json()
    response = api_client.post(f"/api/v1/queues/{queue.pk}/items", {})
    assert response.status_code == 400
    response = api_client.patch(f"/api/v1/queues/{queue.pk}", {"colour": "red"})
    assert response.status_code == 400 and "colour" in response.json()


def test_reviewer_works_through_session_with_csrf(defined, queue, traces, reviewer):
    client = session(reviewer)
    nxt = client.post(f"/api/v1/queues/{queue.pk}/next")
    assert nxt.status_code == 200
    item = nxt.json()["item"]
    assert item["trace_id"] == traces[0].trace_id and item["lease_expires_at"]
    answered = client.post(
        f"/api/v1/queues/{queue.pk}/items/{item['trace_id']}/answers",
        {"answers": GOOD, "rationale": {"correct": "matches the docs"}},
    )
    assert answered.status_code == 201 and answered.json()["state"] == "answered"
    again = client.post(f"/api/v1/queues/{queue.pk}/items/{item['trace_id']}/answers", {"answers": GOOD})
    assert again.status_code == 200
    bad = client.post(
        f"/api/v1/queues/{queue.pk}/items/{traces[1].trace_id}/answers", {"answers": {"correct": 3, "helpfulness": 1}}
    )
    assert bad.status_code == 400
    declined = client.post(f"/api/v1/queues/{queue.pk}/items/{traces[1].trace_id}/decline", {"reason": "unclear"})
    assert declined.status_code == 200 and declined.json()["state"] == "declined"
    progress = client.get(f"/api/v1/queues/{queue.pk}/progress").json()
    assert progress == {
        "total": 5,
        "complete": 0,
        "declined": 1,
        "reviewers": {"alice": {"answered": 1, "declined": 1, "leased": 0}},
    }
    # without the CSRF token a session cannot work the queue
    assert session(reviewer, csrf=True).post(f"/api/v1/queues/{queue.pk}/next").status_code == 403


def test_nothing_left_is_204(defined, reviewer):
    queue = services.create_queue(experiment=defined, actor=SYSTEM, name="empty", questions=["correct"])
    assert session(reviewer).post(f"/api/v1/queues/{queue.pk}/next").status_code == 204


def test_access_viewer_403_outsider_404_key_cannot_work(defined, queue, viewer, outsider, reviewer, api_client):
    assert session(viewer).post(f"/api/v1/queues/{queue.pk}/next").status_code == 403
    assert session(viewer).post(f"/api/v1/queues/{queue.pk}/items", {"trace_ids": []}).status_code == 403
    assert session(reviewer).patch(f"/api/v1/queues/{queue.pk}", {"name": "mine"}).status_code == 403
    assert session(outsider).get(f"/api/v1/queues/{queue.pk}").status_code == 404
    assert session(outsider).post(f"/api/v1/queues/{queue.pk}/next").status_code == 404
    assert session(outsider).get(f"/api/v1/experiments/{defined.pk}/queues").status_code == 404
    assert api_client.post(f"/api/v1/queues/{queue.pk}/next").status_code == 403
    other_key = APIClient()
    other_key.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(label='elsewhere')[1]}")
    assert other_key.get(f"/api/v1/queues/{queue.pk}").status_code == 404
    assert session(viewer).get(f"/api/v1/queues/{queue.pk}/progress").status_code == 200


def test_next_and_answer_query_counts_do_not_grow(defined, reviewer, settings):
    # the per-worker caches stay fresh during the test (a recheck is one more read, by time)
    settings.FEEDBACKHUB_DEFINITIONS_RECHECK_MS = settings.FEEDBACKHUB_QUEUE_RULES_RECHECK_MS = 600_000
    small = services.create_queue(experiment=defined, actor=SYSTEM, name="small", questions=["correct"])
    big = services.create_queue(experiment=defined, actor=SYSTEM, name="big", questions=["correct"])
    for n, queue in ((2, small), (40, big)):
        ids = [make_trace(defined).trace_id for _ in range(n)]
        services.add_items(queue=queue, actor=SYSTEM, trace_ids=ids)
    client = session(reviewer)
    counts = []
    for queue in (small, big):
        with CaptureQueriesContext(connection) as nxt:
            item = client.post(f"/api/v1/queues/{queue.pk}/next").json()["item"]
        url = f"/api/v1/queues/{queue.pk}/items/{item['trace_id']}/answers"
        with CaptureQueriesContext(connection) as answered:
            assert client.post(url, {"answers": {"correct": True}}).status_code == 201
        counts.append((len(nxt), len(answered)))
    # the head of both: session, user, the queue with the role and the reviewers list (one query)
    # PostgreSQL (inside the test's transaction: a savepoint and its release around each):
    #   next: pick (held lease or candidate, FOR UPDATE SKIP LOCKED), take (slot re-check + lease)
    #   answer: item + trace lock, work row, assessment + revision (one statement), work, item
    # SQLite (serialised): the write lock, then next as the ORM path (live leases, candidate, slot
    # check, work row, lease) and the answer with its savepoints
    assert counts[0] == counts[1]
    if connection.vendor == "postgresql":
        assert counts[0] == (3 + 2 + 2, 3 + 2 + 5)
    else:
        assert counts[0][0] <= 13 and counts[0][1] <= 18
    assert QueueItem.objects.filter(answer_count=1).count() == 2


def test_work_out_agrees_with_drfs_field_walk(defined, queue, traces, reviewer):
    alice = Actor.for_user(reviewer)
    leased = services.next_item(queue=queue, actor=alice)
    answered, _ = services.answer(queue=queue, actor=alice, trace_id=leased.item.trace_id, answers=GOOD)
    declined = services.decline(queue=queue, actor=alice, trace_id=traces[1].trace_id, reason="not my language")
    for work in (leased, answered, declined):
        assert WorkOut(work).data == dict(drf.Serializer.to_representation(WorkOut(), work))
    assert NextOut({"item": leased}).data == {"item": dict(drf.Serializer.to_representation(WorkOut(), leased))}
